"""Sorts catalog tracks into the happy / sad / energetic / calm playlists and writes .m3u files."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from moodbox.catalog.audio_model import AudioMoodModel
from moodbox.catalog.model import SPOTIFY_FEATURES, MoodModel
from moodbox.catalog.spotify import has_spotify_features
from moodbox.catalog.table import CatalogError, atomic_write_text
from moodbox import files

logger = logging.getLogger(__name__)

MOODS = ("happy", "sad", "energetic", "calm")
METHOD_SPOTIFY = "spotify-model"
METHOD_AUDIO = "audio-model"                   # scanned loudness and tempo
METHOD_AUDIO_NO_TEMPO = "audio-model-no-tempo"  # scanned loudness alone (no steady pulse found)


@dataclass(frozen=True)
class Assignment:
    """One track's mood and how it was decided."""

    mood: str
    method: str            # METHOD_SPOTIFY | METHOD_AUDIO | METHOD_AUDIO_NO_TEMPO
    confidence: float      # the model's probability of the mood
    valence: float         # Spotify's, where imported; NaN for the audio model
    energy: float


def _finite(value: float) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def assign_by_audio(catalog: pd.DataFrame, rows: np.ndarray,
                    audio: AudioMoodModel) -> list[Assignment]:
    """Moods of the given catalog rows from their scanned loudness and tempo."""
    if len(rows) == 0:
        return []
    prediction = audio.predict_scan(catalog["loudness_db"].to_numpy(float)[rows],
                                    catalog["tempo_bpm"].to_numpy(float)[rows])
    out = []
    for p, used_tempo in zip(prediction.proba, prediction.used_tempo):
        best = int(np.argmax(p))
        out.append(Assignment(prediction.classes[best],
                              METHOD_AUDIO if used_tempo else METHOD_AUDIO_NO_TEMPO,
                              float(p[best]), math.nan, math.nan))
    return out


def assign_moods(catalog: pd.DataFrame, model: MoodModel, audio: AudioMoodModel) -> pd.DataFrame:
    """One row per usable track: path, artist, title, duration_s, mood, method, confidence.

    Tracks with all nine imported Spotify features use `model`; tracks with only a scan
    use `audio` (loudness and tempo; loudness alone when no tempo was found); tracks the
    scan could not decode are left out.
    """
    playable = (catalog["error"] == "").to_numpy()        # decode errors never reach a playlist
    spotify = has_spotify_features(catalog) & playable
    scanned = catalog["loudness_db"].notna().to_numpy() & playable
    results = [None] * len(catalog)
    if spotify.any():
        x = catalog.loc[spotify, [f"sp_{f}" for f in SPOTIFY_FEATURES]].to_numpy(float)
        for i, p in zip(np.flatnonzero(spotify), model.predict_proba(x)):
            best = int(np.argmax(p))
            results[i] = Assignment(model.classes[best], METHOD_SPOTIFY, float(p[best]),
                                    float(catalog["sp_valence"].iat[i]),
                                    float(catalog["sp_energy"].iat[i]))
    audio_rows = np.flatnonzero(~spotify & scanned)
    for i, result in zip(audio_rows, assign_by_audio(catalog, audio_rows, audio)):
        results[i] = result
    keep = [i for i, r in enumerate(results) if r is not None]
    out = catalog.iloc[keep][["path", "artist", "title", "duration_s"]].reset_index(drop=True)
    for name in ("mood", "method", "confidence", "valence", "energy"):
        out[name] = [getattr(results[i], name) for i in keep]
    return out


def _extinf(row: pd.Series) -> str:
    seconds = int(round(row["duration_s"])) if _finite(row["duration_s"]) else -1
    label = f"{row['artist']} - {row['title']}" if row["artist"] else str(row["title"])
    return f"#EXTINF:{seconds},{' '.join(label.split())}"


# What assign writes carries this mark (the .m3u's second line, moods.csv's header row), so a
# later assign replaces its own files and never a playlist the owner made by hand.
MARK = "written by moodbox catalog assign"
MOODS_CSV_COLUMNS = ("path", "artist", "title", "duration_s", "mood", "method", "confidence",
                     "valence", "energy")


def m3u_text(tracks: pd.DataFrame, mood: str = "") -> str:
    """Extended M3U: #EXTM3U, #PLAYLIST:<mood> (<MARK>), then #EXTINF:<secs>,<artist> - <title>
    and the absolute path of each track."""
    lines = ["#EXTM3U", f"#PLAYLIST:{mood or 'moodbox'} ({MARK}; re-running it replaces this file)"]
    for _, row in tracks.sort_values(["artist", "title", "path"], key=lambda s: s.str.casefold()).iterrows():
        lines += [_extinf(row), str(Path(row["path"]).absolute())]
    return "\n".join(lines) + "\n"


def written_by_assign(path: Path) -> bool:
    """True when `path` is a file a previous `catalog assign` wrote (it carries the mark)."""
    try:
        head = files.read_head(path, 4096).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return False
    if path.suffix.lower() == ".m3u":
        return len(head) >= 2 and head[0].strip() == "#EXTM3U" and head[1].startswith(
            "#PLAYLIST:") and MARK in head[1]
    return bool(head) and head[0].strip() == ",".join(MOODS_CSV_COLUMNS)


def output_files(out_dir: Path) -> list[Path]:
    return [out_dir / f"{mood}.m3u" for mood in MOODS] + [out_dir / "moods.csv"]


def check_replaceable(out_dir: Path, force: bool) -> None:
    """Refuse (before anything is written) to replace a file assign did not write itself,
    unless `force`; never replace a folder, FIFO or device."""
    for path in output_files(out_dir):
        k = files.kind(path)
        if k == files.MISSING:
            continue
        if k == files.DENIED:
            raise CatalogError(f"--out: {path} cannot be checked ({files.describe_denied(path)})")
        if k != files.FILE:
            raise CatalogError(f"--out: {path} is a {'folder' if k == files.FOLDER else 'special file'}"
                               f", not a playlist; choose another --out folder")
        if not force and not written_by_assign(path):
            raise CatalogError(f"--out: {path} exists and was not written by moodbox catalog "
                               "assign (a hand-made playlist?); nothing was written. Choose "
                               "another --out folder, or pass --force to replace it")


def write_playlists(assigned: pd.DataFrame, out_dir: Path, force: bool = False) -> dict[str, int]:
    """happy.m3u, sad.m3u, energetic.m3u, calm.m3u and moods.csv in out_dir; counts per mood.
    Files there that assign did not write are left alone (CatalogError) unless `force`."""
    if files.kind(out_dir) not in (files.FOLDER, files.MISSING):
        raise CatalogError(f"--out {out_dir} is not a folder; give a folder for the playlists")
    check_replaceable(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for mood in MOODS:
        tracks = assigned[assigned["mood"] == mood]
        atomic_write_text(out_dir / f"{mood}.m3u", m3u_text(tracks, mood))
        counts[mood] = len(tracks)
    table = assigned[list(MOODS_CSV_COLUMNS)].sort_values("path").to_csv(
        index=False, float_format="%.4g", lineterminator="\n")
    atomic_write_text(out_dir / "moods.csv", table)
    return counts
