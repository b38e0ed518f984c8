"""The catalog CSV: its columns, reading it back with the right types, writing it atomically."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from moodbox import files
from moodbox.catalog.model import SPOTIFY_FEATURES
from moodbox.vocabulary import AUDIO_EXTENSIONS  # noqa: F401 (defined once, used by scan)

logger = logging.getLogger(__name__)

FILE_COLUMNS = ("path", "size", "mtime_ns", "format", "duration_s", "title", "artist", "album",
                "tag_source")
FEATURE_COLUMNS = ("analysed_s", "loudness_db", "tempo_bpm", "tempo_strength", "centroid_hz",
                   "key", "mode", "key_corr", "mode_margin")
SPOTIFY_COLUMNS = tuple(f"sp_{name}" for name in SPOTIFY_FEATURES) + ("sp_match",)
CATALOG_COLUMNS = FILE_COLUMNS + FEATURE_COLUMNS + ("error",) + SPOTIFY_COLUMNS
TEXT_COLUMNS = ("path", "format", "title", "artist", "album", "tag_source", "key", "mode",
                "error", "sp_match")
INT_COLUMNS = ("size", "mtime_ns")


class CatalogError(Exception):
    """Bad input the owner can fix; the message names the file or option and the fix."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write text (UTF-8) to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write(path, text.encode("utf-8"), mode=0o644)


def empty_catalog() -> pd.DataFrame:
    """A catalog with every known column and no rows."""
    return normalise_types(pd.DataFrame(columns=list(CATALOG_COLUMNS)))


def normalise_types(df: pd.DataFrame) -> pd.DataFrame:
    """Known columns present with their types: text "" for missing, sizes as integers."""
    df = df.copy()
    for col in CATALOG_COLUMNS:
        if col not in df.columns:
            df[col] = "" if col in TEXT_COLUMNS else float("nan")
    for col in TEXT_COLUMNS:
        df[col] = df[col].fillna("").astype(str)
    for col in INT_COLUMNS:
        df[col] = _int_column(df[col])
    for col in set(CATALOG_COLUMNS) - set(TEXT_COLUMNS) - set(INT_COLUMNS):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    extra = [c for c in df.columns if c not in CATALOG_COLUMNS]
    return df[list(CATALOG_COLUMNS) + extra].reset_index(drop=True)


def _int_column(values: pd.Series) -> pd.Series:
    """Whole numbers as int64, -1 for missing, never through float64 (which would round a
    nanosecond mtime: 2**53 < 1.7e18)."""
    if values.dtype == "int64":
        return values
    def whole(v: object) -> int:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int(v)
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v)
        if isinstance(v, float) and v == v:
            return int(v)
        return -1
    return pd.Series([whole(v) for v in values], index=values.index, dtype="int64")


def read_catalog(path: Path) -> pd.DataFrame:
    """Read a catalog CSV written by `moodbox catalog scan` or `import`."""
    if not files.is_file(path):
        raise CatalogError(f"catalog {path} does not exist or is not a file; create it with "
                           f"`moodbox catalog scan MUSIC_DIR --out {path}`")
    try:
        df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS + INT_COLUMNS},
                         keep_default_na=False, na_values=[""], encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CatalogError(f"catalog {path} cannot be read as CSV ({exc}); re-create it with "
                           "`moodbox catalog scan`") from None
    if "path" not in df.columns:
        raise CatalogError(f"{path} is not a moodbox catalog (no 'path' column); pass the CSV "
                           "written by `moodbox catalog scan`, or choose another file name")
    return normalise_types(df)


def write_catalog(df: pd.DataFrame, path: Path) -> None:
    """Write the catalog atomically, known columns first, rows sorted by path."""
    out = normalise_types(df).sort_values("path", kind="stable")
    atomic_write_text(path, out.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def check_output_file(path: Path, option: str) -> None:
    """Refuse an output that would replace a music file or some unrelated file."""
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        raise CatalogError(f"{option} {path} looks like a music file; give a .csv name so no "
                           "music is overwritten")
    k = files.kind(path)
    if k == files.FOLDER:
        raise CatalogError(f"{option} {path} is a folder; give a file name such as catalog.csv")
    if k == files.DENIED:
        raise CatalogError(f"{option} {path}: {files.describe_denied(path)}")
    if k == files.OTHER:
        raise CatalogError(f"{option} {path} is not a regular file; give a file name such as "
                           "catalog.csv")
    if k == files.FILE:
        read_catalog(path)    # raises unless it is a catalog we may replace
