"""Sorts catalog tracks into the happy / sad / energetic / calm playlists and writes .m3u files."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edge.catalog.model import SPOTIFY_FEATURES, MoodModel
from edge.catalog.spotify import has_spotify_features
from edge.catalog.table import atomic_write_text

logger = logging.getLogger(__name__)

MOODS = ("happy", "sad", "energetic", "calm")
THRESHOLD = 0.5            # estimated valence / energy at or above this is "high"

# Audio-only mapping (see docs/CATALOG.md). Loudness and tempo weights were fitted to
# Spotify's energy on data_moods.csv (energy ~ sigmoid(0.25 (loudness + 10.4)
# + 0.15 (tempo - 120) / 30), r = 0.90); brightness and mode weights are judgement.
LOUDNESS_MID_DB, LOUDNESS_SLOPE = -10.5, 0.25      # per dB
TEMPO_MID_BPM, TEMPO_STEP_BPM = 120.0, 30.0
ENERGY_TEMPO_WEIGHT = 0.15
BRIGHTNESS_MID_HZ, BRIGHTNESS_STEP_HZ, BRIGHTNESS_CLIP = 1500.0, 1000.0, 1.5
ENERGY_BRIGHTNESS_WEIGHT = 0.3
MODE_SCALE = 0.15          # a major-minus-minor margin this large counts fully
VALENCE_MODE_WEIGHT, VALENCE_BRIGHTNESS_WEIGHT, VALENCE_TEMPO_WEIGHT = 1.5, 0.3, 0.3


@dataclass(frozen=True)
class Assignment:
    """One track's mood and how it was decided."""

    mood: str
    method: str            # "spotify-model" | "audio-quadrant"
    confidence: float      # model probability of the mood; distance from the quadrant edge
    valence: float
    energy: float


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _finite(value: float) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _scaled(value: float, mid: float, step: float, clip: float = math.inf) -> float:
    """(value - mid) / step, limited to +-clip; 0 (neutral) when the value is unknown."""
    if not _finite(value):
        return 0.0
    return max(-clip, min(clip, (value - mid) / step))


def audio_energy(loudness_db: float, tempo_bpm: float, centroid_hz: float) -> float:
    """Estimated Spotify-like energy (0..1) from RMS loudness, tempo and brightness."""
    z = (LOUDNESS_SLOPE * _scaled(loudness_db, LOUDNESS_MID_DB, 1.0)
         + ENERGY_TEMPO_WEIGHT * _scaled(tempo_bpm, TEMPO_MID_BPM, TEMPO_STEP_BPM, 3.0)
         + ENERGY_BRIGHTNESS_WEIGHT * _scaled(centroid_hz, BRIGHTNESS_MID_HZ,
                                              BRIGHTNESS_STEP_HZ, BRIGHTNESS_CLIP))
    return _sigmoid(z)


def audio_valence(mode_margin: float, centroid_hz: float, tempo_bpm: float) -> float:
    """Estimated valence (0..1): major mode, brightness and a quick tempo read as positive."""
    z = (VALENCE_MODE_WEIGHT * _scaled(mode_margin, 0.0, MODE_SCALE, 1.0)
         + VALENCE_BRIGHTNESS_WEIGHT * _scaled(centroid_hz, BRIGHTNESS_MID_HZ,
                                               BRIGHTNESS_STEP_HZ, BRIGHTNESS_CLIP)
         + VALENCE_TEMPO_WEIGHT * _scaled(tempo_bpm, TEMPO_MID_BPM, TEMPO_STEP_BPM, 2.0))
    return _sigmoid(z)


def quadrant(valence: float, energy: float) -> str:
    """happy = high valence + energy, calm = high valence only, energetic = high energy only."""
    if valence >= THRESHOLD:
        return "happy" if energy >= THRESHOLD else "calm"
    return "energetic" if energy >= THRESHOLD else "sad"


def assign_by_audio(row: pd.Series) -> Assignment:
    """The quadrant of the valence and energy estimated from the scanned audio features."""
    energy = audio_energy(row["loudness_db"], row["tempo_bpm"], row["centroid_hz"])
    valence = audio_valence(row["mode_margin"], row["centroid_hz"], row["tempo_bpm"])
    margin = min(abs(valence - THRESHOLD), abs(energy - THRESHOLD)) * 2
    return Assignment(quadrant(valence, energy), "audio-quadrant", margin, valence, energy)


def assign_moods(catalog: pd.DataFrame, model: MoodModel) -> pd.DataFrame:
    """One row per usable track: path, artist, title, duration_s, mood, method, confidence.

    Tracks with all nine imported Spotify features use the model; tracks with only a
    scan use the audio quadrant; tracks the scan could not decode are left out.
    """
    playable = (catalog["error"] == "").to_numpy()        # decode errors never reach a playlist
    spotify = has_spotify_features(catalog) & playable
    scanned = catalog["loudness_db"].notna().to_numpy() & playable
    results = [None] * len(catalog)
    if spotify.any():
        x = catalog.loc[spotify, [f"sp_{f}" for f in SPOTIFY_FEATURES]].to_numpy(float)
        for i, p in zip(np.flatnonzero(spotify), model.predict_proba(x)):
            best = int(np.argmax(p))
            results[i] = Assignment(model.classes[best], "spotify-model", float(p[best]),
                                    float(catalog["sp_valence"].iat[i]),
                                    float(catalog["sp_energy"].iat[i]))
    for i in np.flatnonzero(~spotify & scanned):
        results[i] = assign_by_audio(catalog.iloc[i])
    keep = [i for i, r in enumerate(results) if r is not None]
    out = catalog.iloc[keep][["path", "artist", "title", "duration_s"]].reset_index(drop=True)
    for name in ("mood", "method", "confidence", "valence", "energy"):
        out[name] = [getattr(results[i], name) for i in keep]
    return out


def _extinf(row: pd.Series) -> str:
    seconds = int(round(row["duration_s"])) if _finite(row["duration_s"]) else -1
    label = f"{row['artist']} - {row['title']}" if row["artist"] else str(row["title"])
    return f"#EXTINF:{seconds},{' '.join(label.split())}"


def m3u_text(tracks: pd.DataFrame) -> str:
    """Extended M3U: #EXTM3U, then #EXTINF:<secs>,<artist> - <title> and the absolute path."""
    lines = ["#EXTM3U"]
    for _, row in tracks.sort_values(["artist", "title", "path"], key=lambda s: s.str.casefold()).iterrows():
        lines += [_extinf(row), str(Path(row["path"]).absolute())]
    return "\n".join(lines) + "\n"


def write_playlists(assigned: pd.DataFrame, out_dir: Path) -> dict[str, int]:
    """happy.m3u, sad.m3u, energetic.m3u, calm.m3u and moods.csv in out_dir; counts per mood."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for mood in MOODS:
        tracks = assigned[assigned["mood"] == mood]
        atomic_write_text(out_dir / f"{mood}.m3u", m3u_text(tracks))
        counts[mood] = len(tracks)
    table = assigned.sort_values("path").to_csv(index=False, float_format="%.4g", lineterminator="\n")
    atomic_write_text(out_dir / "moods.csv", table)
    return counts
