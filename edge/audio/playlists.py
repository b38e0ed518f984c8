"""Playlists from folders, .m3u/.m3u8 files and single tracks; shuffle without repeats."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import unquote, urlparse

from moodbox.config import PlaylistConfig
from moodbox.vocabulary import PLAYLIST_EXTENSIONS, unplayable_reason

logger = logging.getLogger(__name__)

_IGNORED = {".jpg", ".jpeg", ".png", ".txt", ".nfo", ".cue", ".log", ".md", ".json", ".db", ".ini"}


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class Playlist:
    name: str
    tracks: list[Path]
    shuffle: bool = True
    volume: float = 1.0
    weight: float = 1.0
    skipped: list[Skipped] = field(default_factory=list)


def parse_m3u(path: Path) -> tuple[list[Path], list[Skipped]]:
    """Entries of an M3U/M3U8 playlist, resolved against its folder."""
    tracks: list[Path] = []
    skipped: list[Skipped] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Skipped(path, f"cannot read playlist ({exc.strerror})")]
    text = raw.decode("utf-8-sig", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("file://"):
            line = unquote(urlparse(line).path)
        elif "://" in line:
            skipped.append(Skipped(Path(line), "network streams are not played (local files only)"))
            continue
        p = Path(line.replace("\\", "/"))
        tracks.append(p if p.is_absolute() else path.parent / p)
    return tracks, skipped


def collect(sources: tuple[Path, ...]) -> tuple[list[Path], list[Skipped]]:
    """Playable tracks from the sources (deduplicated, in source order) and what was skipped."""
    found: list[Path] = []
    skipped: list[Skipped] = []
    candidates: list[Path] = []
    for src in sources:
        if src.is_dir():
            try:
                files = sorted(p for p in src.rglob("*") if p.is_file())
            except OSError as exc:
                skipped.append(Skipped(src, f"cannot list folder ({exc.strerror})"))
                continue
            for p in files:
                ext = p.suffix.lower()
                if ext in PLAYLIST_EXTENSIONS or ext in _IGNORED or p.name.startswith("."):
                    continue
                candidates.append(p)
        elif src.suffix.lower() in PLAYLIST_EXTENSIONS:
            entries, bad = parse_m3u(src)
            candidates.extend(entries)
            skipped.extend(bad)
        elif src.exists() or src.suffix:
            candidates.append(src)
        else:
            skipped.append(Skipped(src, "source does not exist"))
    seen: set[Path] = set()
    for p in candidates:
        if p in seen:
            continue
        seen.add(p)
        reason = unplayable_reason(p)
        if reason:
            skipped.append(Skipped(p, reason))
        else:
            found.append(p)
    return found, skipped


def load_playlists(configs: Mapping[str, PlaylistConfig]) -> dict[str, Playlist]:
    out = {}
    for name, cfg in configs.items():
        tracks, skipped = collect(cfg.sources)
        out[name] = Playlist(name, tracks, cfg.shuffle, cfg.volume, cfg.weight, skipped)
    return out


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
