"""Indexes a music folder into the catalog, resumably: finished files are never analysed twice."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from moodbox import jsonio
from moodbox.catalog.decode import DecodeError
from moodbox.vocabulary import sniff_format
from moodbox.catalog.features import MAX_ANALYSIS_S, START_FRACTION, AnalysisError, analyse
from moodbox.catalog.table import (AUDIO_EXTENSIONS, FEATURE_COLUMNS, INT_COLUMNS, TEXT_COLUMNS,
                                   CatalogError,
                                normalise_types, read_catalog, write_catalog)
from moodbox import files
from moodbox.catalog.tags import read_track_info
from moodbox.vocabulary import unplayable_reason

logger = logging.getLogger(__name__)

Decoder = Callable[[Path], "tuple[np.ndarray, int]"]
Progress = Callable[[int, int, Path], None]
CRASHED = ("the decoder crashed or was stopped on this file in an earlier scan; "
           "run scan with --retry-errors to try it again")
MAX_TRACK_S = 3600.0      # whole files are decoded into memory: skip hour-long mixes
DIGITS = {"duration_s": 2, "analysed_s": 2, "loudness_db": 2, "tempo_bpm": 2,
          "tempo_strength": 3, "centroid_hz": 1, "key_corr": 4, "mode_margin": 4}


@dataclass
class ScanResult:
    """What one scan did; errors are (path, reason) for every file listed with an error."""

    catalog: Path
    total: int = 0
    analysed: int = 0
    reused: int = 0
    removed: int = 0
    interrupted: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)
    unplayable: list[Path] = field(default_factory=list)  # music in formats the box cannot play


# music formats the player cannot decode (pygame plays .ogg .mp3 .wav .flac): counted and
# named by a scan, so an iTunes folder of .m4a files is never silently "empty"
OTHER_MUSIC_EXTENSIONS = (".m4a", ".m4b", ".aac", ".alac", ".wma", ".opus", ".aif", ".aiff",
                          ".ape", ".wv", ".mka", ".mp2", ".mpc", ".dsf")


def list_music_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(playable-format files, music files in other formats) under root, recursively,
    sorted; macOS "._" shadow files are skipped."""
    found: list[Path] = []
    other: list[Path] = []

    def unreadable(exc: OSError) -> None:  # one folder is skipped, named; the scan goes on
        logger.warning("skipping folder %s: %s", exc.filename, files.problem(exc))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        dirs.sort()
        for name in sorted(names):
            ext = Path(name).suffix.lower()
            if name.startswith("._"):
                continue
            if ext in AUDIO_EXTENSIONS:
                found.append(Path(folder) / name)
            elif ext in OTHER_MUSIC_EXTENSIONS:
                other.append(Path(folder) / name)
    return found, other


def list_audio_files(root: Path) -> list[Path]:
    """Music files the box can play under root, recursively, sorted."""
    return list_music_files(root)[0]


def _text(value: Any) -> str:
    """A text cell as str: None and NaN (pandas' empty cell) are ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, (float, np.floating)):
            value = float(value)
            value = round(value, DIGITS[key]) if key in DIGITS and math.isfinite(value) else value
        out[key] = value
    return out


def file_row(path: Path) -> dict[str, Any]:
    """The file columns of a catalog row: identity (path, size, mtime) and tags, no audio."""
    stat = path.stat()
    info = read_track_info(path)
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "format": path.suffix.lower().lstrip("."), "duration_s": info.duration_s,
            "title": info.title, "artist": info.artist, "album": info.album,
            "tag_source": info.source, "error": ""}


def analyse_file(path: Path, decoder: Decoder) -> dict[str, Any]:
    """A full catalog row for one file; problems end up in its "error" column."""
    row = {**file_row(path), **{c: "" if c in TEXT_COLUMNS else math.nan for c in FEATURE_COLUMNS}}
    row["error"] = _precheck(path, row)
    if row["error"]:
        return _rounded(row)
    row["format"] = sniff_format(path)
    try:
        read_excerpt = getattr(decoder, "excerpt", None)
        if read_excerpt is not None:   # decode only the part that is analysed
            samples, rate, row["duration_s"] = read_excerpt(path, START_FRACTION, MAX_ANALYSIS_S)
            row.update(analyse(samples, rate, excerpted=True).as_row())
        else:
            samples, rate = decoder(path)
            row["duration_s"] = len(samples) / rate
            row.update(analyse(samples, rate).as_row())
    except (DecodeError, AnalysisError) as exc:
        row["error"] = str(exc)
    return _rounded(row)


def _precheck(path: Path, row: dict[str, Any]) -> str:
    """Why a file is not worth decoding ("" if it is): not playable (the one definition the
    player and `moodbox check` use too, so no playlist gets a track the player refuses),
    or far too long."""
    reason = unplayable_reason(path)
    if reason:
        return reason
    if row["duration_s"] > MAX_TRACK_S:     # NaN (length unknown) compares False
        return (f"longer than {MAX_TRACK_S / 60:.0f} min (a mix or an audio book?); "
                "not decoded, to spare memory")
    return ""


class ScanJournal:
    """Append-only JSON-lines log beside the catalog: survives a kill, replayed on resume."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(jsonio.dumps(record, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def started(self, path: Path) -> None:
        self._write({"event": "start", "path": str(path)})

    def finished(self, row: dict[str, Any]) -> None:
        self._write({"event": "row", "row": row})

    def cancelled(self, path: Path) -> None:
        self._write({"event": "cancel", "path": str(path)})

    def replay(self) -> dict[str, dict[str, Any]]:
        """Rows recorded so far; a file started but never finished counts as a crash."""
        rows: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return rows
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = jsonio.loads(line)
            except ValueError:
                continue          # a line cut short by a kill
            if record.get("event") == "row":
                rows[record["row"]["path"]] = record["row"]
            elif record.get("event") == "start":
                rows[record["path"]] = {**file_row_or_empty(Path(record["path"])), "error": CRASHED}
            elif record.get("event") == "cancel":
                rows.pop(record["path"], None)
        return rows

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def file_row_or_empty(path: Path) -> dict[str, Any]:
    """file_row, or just the path when the file has gone."""
    try:
        return file_row(path)
    except OSError:
        return {"path": str(path)}


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _check_journal(path: Path) -> None:
    """Refuse to append to (and later delete) a file beside the catalog that is not ours."""
    k = files.kind(path)
    if k == files.MISSING:
        return
    ours = False
    if k == files.FILE:
        try:
            first = files.read_head(path, 64 * 1024).split(b"\n", 1)[0]
            record = jsonio.loads(first) if first.strip() else {"event": "empty"}
            ours = isinstance(record, dict) and "event" in record
        except (OSError, ValueError):
            ours = False
    if not ours:
        raise CatalogError(f"{path} exists and is not a scan journal written by moodbox (the "
                           "scan keeps its progress in that file and deletes it at the end); "
                           "move or rename it, or choose another --out")


def _previous_rows(out: Path, journal: ScanJournal) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    if out.exists():
        rows = {r["path"]: r for r in read_catalog(out).to_dict("records")}
    for path, row in journal.replay().items():
        rows[path] = {**rows.get(path, {}), **row}
    return rows


def is_finished(row: Optional[dict[str, Any]], stat: os.stat_result, retry_errors: bool) -> bool:
    """True when the row describes this very file (same size and mtime) and needs no work."""
    if not row or row.get("size") != stat.st_size or row.get("mtime_ns") != stat.st_mtime_ns:
        return False
    if _text(row.get("error")):
        return not retry_errors
    analysed = row.get("analysed_s")
    return analysed is not None and not (isinstance(analysed, float) and math.isnan(analysed))


def _under(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip(os.sep) + os.sep)


def scan_library(root: Path, out: Path, decoder: Decoder, progress: Optional[Progress] = None,
                 retry_errors: bool = False) -> ScanResult:
    """Bring the catalog `out` up to date with the music under `root`.

    Files whose path, size and mtime match a finished row are kept as they are. Each
    newly analysed row goes to a journal first, so a stopped scan (Ctrl-C, a kill, a
    power cut) resumes where it was; the catalog itself is replaced atomically at the
    end. Rows of files under `root` that have gone are dropped; rows outside `root`
    (another folder scanned into the same catalog) are kept.
    """
    if not root.is_dir():
        raise CatalogError(f"music folder {root} does not exist or is not a folder; "
                           "pass the folder that holds your music")
    root = root.resolve()
    _check_journal(journal_path(out))
    journal = ScanJournal(journal_path(out))
    previous = _previous_rows(out, journal)
    files, other = list_music_files(root)
    result = ScanResult(out, total=len(files), unplayable=other)
    rows: dict[str, dict[str, Any]] = {}
    try:
        for done, path in enumerate(files, 1):
            rows[str(path)] = _scan_one(path, previous.get(str(path)), decoder, journal,
                                        retry_errors, result)
            if progress:
                progress(done, len(files), path)
    except KeyboardInterrupt:
        result.interrupted = True
    _finish(rows, previous, root, result)
    write_catalog(catalog_frame(rows.values()), out)
    journal.remove()
    return result


def catalog_frame(rows: Any) -> pd.DataFrame:
    """Rows as a catalog table. A row without size or mtime_ns (a broken symlink) gets -1
    before the table is built: a missing cell would make pandas store the column as
    floats, rounding every nanosecond mtime, and every later scan would re-analyse all."""
    rows = [{**{c: -1 for c in INT_COLUMNS}, **r} for r in rows]
    return normalise_types(pd.DataFrame(rows) if rows else pd.DataFrame())


def _scan_one(path: Path, prev: Optional[dict[str, Any]], decoder: Decoder,
              journal: ScanJournal, retry_errors: bool, result: ScanResult) -> dict[str, Any]:
    try:
        stat = path.stat()
    except OSError as exc:
        return {"path": str(path), "error": f"cannot read ({exc.strerror})"}
    if is_finished(prev, stat, retry_errors):
        result.reused += 1
        return prev
    journal.started(path)
    try:
        row = {**(prev or {}), **analyse_file(path, decoder)}
    except OSError as exc:
        row = {**(prev or {}), "path": str(path), "error": f"cannot read ({exc.strerror})"}
    except KeyboardInterrupt:
        journal.cancelled(path)
        raise
    journal.finished(row)
    result.analysed += 1
    return row


def _finish(rows: dict[str, dict[str, Any]], previous: dict[str, dict[str, Any]], root: Path,
            result: ScanResult) -> None:
    """Add the previous rows that stay (other folders; unvisited files when interrupted)."""
    for path, row in previous.items():
        if path in rows:
            continue
        if not _under(path, root) or result.interrupted:
            rows[path] = row
        else:
            result.removed += 1
    result.errors = [(p, _text(r.get("error"))) for p, r in sorted(rows.items())
                     if _under(p, root) and _text(r.get("error"))]


def index_tags(root: Path) -> pd.DataFrame:
    """Catalog rows (file columns only, no audio analysis) for the music under root."""
    if not root.is_dir():
        raise CatalogError(f"music folder {root} does not exist or is not a folder; "
                           "pass the folder that holds your music")
    rows = []
    for path in list_audio_files(root.resolve()):
        try:
            rows.append(file_row(path))
        except OSError as exc:
            logger.warning("skipping %s: %s", path, exc.strerror)
    return normalise_types(pd.DataFrame(rows))
