"""Playlists from folders, .m3u/.m3u8 files and single tracks; shuffle without repeats."""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import unquote, urlparse

from moodbox import files
from moodbox.config import PlaylistConfig
from moodbox.vocabulary import PLAYLIST_EXTENSIONS, unplayable_reason

logger = logging.getLogger(__name__)

_IGNORED = {".jpg", ".jpeg", ".png", ".txt", ".nfo", ".cue", ".log", ".md", ".json", ".db", ".ini"}


MAX_PLAYLIST_BYTES = 16 * 1024 * 1024  # an .m3u of ~200,000 entries; /dev/zero never fits
SHOW_SKIPPED = 3                       # per source in the log; `moodbox check` lists them all
NOT_THERE = "source does not exist (not mounted yet?); picked up when it appears"


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str
    source: Path | None = None  # the configured source it came from


@dataclass
class Playlist:
    name: str
    tracks: list[Path]
    shuffle: bool = True
    volume: float = 1.0
    weight: float = 1.0
    skipped: list[Skipped] = field(default_factory=list)
    # sources missing or empty (a late USB stick or NAS): rechecked by the daemon
    pending: list[Path] = field(default_factory=list)
    # MPD stored playlists (`mpd:NAME` sources); their tracks come from the MPD output
    stored: tuple[str, ...] = ()


def parse_m3u(path: Path) -> tuple[list[Path], list[Skipped]]:
    """Entries of an M3U/M3U8 playlist, resolved against its folder. Only a regular file
    of at most MAX_PLAYLIST_BYTES is read (a FIFO or /dev/zero is refused, not waited on)."""
    tracks: list[Path] = []
    skipped: list[Skipped] = []
    try:
        raw = files.read_bounded(path, MAX_PLAYLIST_BYTES)
    except OSError as exc:
        return [], [Skipped(path, f"cannot read playlist ({files.problem(exc)})", path)]
    text = raw.decode("utf-8-sig", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("file://"):
            try:
                line = unquote(urlparse(line).path)
            except ValueError:  # "file://[x": not a URL urlparse accepts
                skipped.append(Skipped(Path(line), "not a valid file:// address", path))
                continue
        elif "://" in line:
            skipped.append(Skipped(Path(line), "network streams are not played (local files only)",
                                   path))
            continue
        p = Path(line.replace("\\", "/"))
        tracks.append(p if p.is_absolute() else path.parent / p)
    return tracks, skipped


def walk_music(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """Files under `folder` (recursively, sorted; hidden ones and symlinked folders left
    out). A subfolder that cannot be listed is skipped and named; the rest is kept."""
    found: list[Path] = []
    skipped: list[Skipped] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            skipped.append(Skipped(current, f"cannot list folder ({files.problem(exc)}); "
                                   "its tracks are left out", folder))
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                    continue
            except OSError:
                pass
            found.append(Path(e.path))
    return sorted(found), skipped


def _collect(sources: tuple[Path, ...]) -> tuple[list[Path], list[Skipped], list[Path]]:
    found: list[Path] = []
    skipped: list[Skipped] = []
    pending: list[Path] = []
    candidates: list[tuple[Path, Path]] = []
    for src in sources:
        k = files.kind(src)
        if k == files.FOLDER:
            listed, bad = walk_music(src)
            skipped.extend(bad)
            listed = [p for p in listed if p.suffix.lower() not in PLAYLIST_EXTENSIONS
                      and p.suffix.lower() not in _IGNORED]
            if not listed and not bad:
                pending.append(src)  # an empty mount point: the stick is not in yet
            candidates.extend((p, src) for p in listed)
        elif k == files.MISSING:
            skipped.append(Skipped(src, NOT_THERE, src))
            pending.append(src)
        elif k == files.DENIED:
            skipped.append(Skipped(src, f"cannot be reached ({files.describe_denied(src)})", src))
        elif src.suffix.lower() in PLAYLIST_EXTENSIONS:
            entries, bad = parse_m3u(src)
            candidates.extend((p, src) for p in entries)
            skipped.extend(bad)
        else:
            candidates.append((src, src))
    seen: set[Path] = set()
    for p, src in candidates:
        if p in seen:
            continue
        seen.add(p)
        reason = unplayable_reason(p)
        if reason:
            skipped.append(Skipped(p, reason, src))
        else:
            found.append(p)
    return found, skipped, pending


def collect(sources: tuple[Path, ...]) -> tuple[list[Path], list[Skipped]]:
    """Playable tracks from the sources (deduplicated, in source order) and what was skipped."""
    found, skipped, _ = _collect(sources)
    return found, skipped


def load_playlists(configs: Mapping[str, PlaylistConfig]) -> dict[str, Playlist]:
    out = {}
    for name, cfg in configs.items():
        tracks, skipped, pending = _collect(cfg.sources)
        out[name] = Playlist(name, tracks, cfg.shuffle, cfg.volume, cfg.weight, skipped, pending,
                             cfg.mpd_playlists)
    return out


def skipped_summary(playlist: Playlist, show: int = SHOW_SKIPPED) -> list[str]:
    """One line per source with skipped files: the count and the first few (so one bad
    .m3u of 100,000 lines logs one line, not 100,000)."""
    by_source: dict[str, list[Skipped]] = {}
    for s in playlist.skipped:
        by_source.setdefault(str(s.source or s.path), []).append(s)
    lines = []
    for source, items in by_source.items():
        if len(items) == 1 and str(items[0].path) == source:
            lines.append(f"playlist {playlist.name}: {source}: {items[0].reason}")
            continue
        shown = "; ".join(f"{s.path.name}: {s.reason}" for s in items[:show])
        more = f"; and {len(items) - show} more" if len(items) > show else ""
        lines.append(f"playlist {playlist.name}: {len(items)} file(s) skipped in {source} "
                     f"({shown}{more}); `moodbox check` lists them all")
    return lines


def sources_appeared(pending: list[Path]) -> list[Path]:
    """The pending sources that are there now (a folder with something in it, or a file)."""
    back = []
    for src in pending:
        k = files.kind(src)
        if k == files.FILE or (k == files.FOLDER and _has_entries(src)):
            back.append(src)
    return back


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(not e.name.startswith(".") for e in it)
    except OSError:
        return False


class LibraryWatch:
    """When to look again for playlist sources that were missing (a late USB stick, a NAS
    that is down): after `first_s`, doubling to `max_s`; pure, the caller passes the time."""

    def __init__(self, first_s: float = 5.0, max_s: float = 300.0):
        self.first_s, self.max_s = first_s, max_s
        self.interval = first_s
        self.next_at: float | None = None

    def reset(self, now: float, pending: bool) -> None:
        """New playlists were loaded: watch again from the first interval (if any is pending)."""
        self.interval = self.first_s
        self.next_at = now + self.first_s if pending else None

    def due(self, now: float) -> bool:
        return self.next_at is not None and now >= self.next_at

    def not_yet(self, now: float) -> None:
        """Checked, nothing new: wait longer next time."""
        self.interval = min(self.max_s, self.interval * 2)
        self.next_at = now + self.interval


class TrackQueue:
    """Cycles through a playlist; with shuffle, every track plays once per round and a
    new round never starts with the track that just played."""

    def __init__(self, tracks: list[Path], shuffle: bool, rng: random.Random):
        self.tracks = list(tracks)
        self.shuffle = shuffle
        self._rng = rng
        self._round: list[Path] = []
        self._last: Path | None = None

    def remove(self, track: Path) -> None:
        self.tracks = [t for t in self.tracks if t != track]
        self._round = [t for t in self._round if t != track]

    def next(self, weight: Callable[[Path], float] | None = None) -> Path | None:
        """The next track. With `weight` (track -> 0..1, learned from skips) a track whose
        turn comes is played with that probability, else passed over for this round; when
        every track was passed over, the best-weighted of them plays."""
        if not self.tracks:
            return None
        passed: list[Path] = []
        for _ in range(2 * len(self.tracks)):
            if not self._round:
                self._new_round()
            track = self._round.pop(0)
            w = 1.0 if weight is None else weight(track)
            if w >= 1.0 or self._rng.random() < w:
                self._last = track
                return track
            passed.append(track)
        track = max(passed, key=weight)
        self._last = track
        return track

    def _new_round(self) -> None:
        self._round = list(self.tracks)
        if self.shuffle:
            self._rng.shuffle(self._round)
            if len(self._round) > 1 and self._round[0] == self._last:
                self._round.append(self._round.pop(0))
