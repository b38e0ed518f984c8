"""Imports Spotify-style audio features from a CSV and matches them to local files."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from moodbox.catalog.match import artist_keys, title_key
from moodbox.catalog.model import SPOTIFY_FEATURES
from moodbox.catalog.table import CatalogError, normalise_types

logger = logging.getLogger(__name__)

TITLE_ALIASES = ("name", "title", "track_name", "track", "song", "song_name", "track_title")
ARTIST_ALIASES = ("artist", "artists", "artist_name", "artist_name_s", "artist_names",
                  "artist_s", "artists_names")
FEATURE_ALIASES = {"loudness": ("loudness_db",), "tempo": ("tempo_bpm", "bpm")}


@dataclass
class ImportReport:
    """How the feature rows met the local files."""

    feature_rows: int = 0
    matched_rows: int = 0
    matched_tracks: int = 0
    by_artist_title: int = 0
    by_title_only: int = 0
    duplicates: int = 0
    unmatched: list[str] = field(default_factory=list)   # "artist - title" of rows left over

    def summary(self) -> str:
        return (f"matched {self.matched_rows} of {self.feature_rows} feature rows to "
                f"{self.matched_tracks} local tracks ({self.by_artist_title} by artist + title, "
                f"{self.by_title_only} by title only); {len(self.unmatched)} rows had no local "
                f"file" + (f"; {self.duplicates} duplicate rows ignored" if self.duplicates else ""))


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def read_features_csv(path: Path) -> pd.DataFrame:
    """Columns title, artist and the nine features (floats), whatever the export called them."""
    try:
        raw = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise CatalogError(f"features file {path} does not exist; pass the CSV exported from "
                           "your streaming account (or data_moods.csv)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CatalogError(f"features file {path} cannot be read as CSV ({exc})") from None
    columns = {_snake(c): c for c in raw.columns}
    wanted = {"title": _pick(columns, TITLE_ALIASES), "artist": _pick(columns, ARTIST_ALIASES)}
    wanted.update({f: _pick(columns, (f,) + FEATURE_ALIASES.get(f, ())) for f in SPOTIFY_FEATURES})
    missing = [k for k, v in wanted.items() if v is None]
    if missing:
        raise CatalogError(f"features file {path} lacks column(s) {', '.join(missing)}; it needs "
                           "name (or title), artist and " + ", ".join(SPOTIFY_FEATURES))
    out = pd.DataFrame({k: raw[v] for k, v in wanted.items()})
    for f in SPOTIFY_FEATURES:
        out[f] = pd.to_numeric(out[f], errors="coerce")
    bad = out[list(SPOTIFY_FEATURES)].isna().any(axis=1)
    if bad.any():
        logger.warning("%s: %d rows with missing or non-numeric features ignored", path, bad.sum())
    return out[~bad].reset_index(drop=True)


def _local_index(catalog: pd.DataFrame) -> tuple[dict, dict]:
    """(artist key, title key) -> rows, and title key -> rows of tracks with no artist."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    by_title: dict[str, list[int]] = {}
    for i, (artist, title) in enumerate(zip(catalog["artist"], catalog["title"])):
        tkey = title_key(title)
        if not tkey:
            continue
        keys = artist_keys(artist)
        for akey in keys:
            by_pair.setdefault((akey, tkey), []).append(i)
        if not keys:
            by_title.setdefault(tkey, []).append(i)
    return by_pair, by_title


def match_features(catalog: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, ImportReport]:
    """The catalog with sp_* columns filled in for every local track a feature row matches.

    A feature row matches a track when the normalised titles are equal and any of the
    artists are; tracks with no artist at all (title from a bare file name) match on a
    title that only one feature row has. Tracks matched by no row keep earlier values.
    """
    out = normalise_types(catalog)
    report = ImportReport(feature_rows=len(features))
    by_pair, by_title = _local_index(out)
    title_counts = features["title"].map(title_key).value_counts()
    seen: set[tuple[str, str]] = set()
    matched: set[int] = set()
    for row in features.itertuples(index=False):
        tkey, akeys = title_key(row.title), artist_keys(row.artist)
        ident = (min(akeys) if akeys else "", tkey)
        if ident in seen:
            report.duplicates += 1
            continue
        seen.add(ident)
        hits = sorted({i for a in akeys for i in by_pair.get((a, tkey), [])})
        how = "artist+title"
        if not hits and title_counts.get(tkey, 0) == 1:
            hits, how = by_title.get(tkey, []), "title"
        if not hits:
            report.unmatched.append(f"{row.artist} - {row.title}")
            continue
        _assign(out, hits, row, how)
        report.matched_rows += 1
        report.by_artist_title += how == "artist+title"
        report.by_title_only += how == "title"
        matched.update(hits)
    report.matched_tracks = len(matched)
    return out, report


def _assign(out: pd.DataFrame, rows: list[int], feature_row: tuple, how: str) -> None:
    for name in SPOTIFY_FEATURES:
        out.loc[rows, f"sp_{name}"] = float(getattr(feature_row, name))
    out.loc[rows, "sp_match"] = how


def has_spotify_features(catalog: pd.DataFrame) -> np.ndarray:
    """Boolean mask of rows that carry all nine imported features."""
    cols = [f"sp_{name}" for name in SPOTIFY_FEATURES]
    return catalog[cols].notna().all(axis=1).to_numpy()
