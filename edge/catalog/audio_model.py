"""Mood from scanned audio alone: softmax regression on loudness and tempo, numpy inference."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from moodbox import jsonio
from moodbox.catalog.model import (FORMAT_VERSION, ModelFileError, MoodModel, model_from_dict,
                                read_model_json)

logger = logging.getLogger(__name__)

AUDIO_MODEL_PATH = Path(__file__).with_name("audio_mood_model.json")

# The scan's loudness_db is the RMS level (dBFS) of a 90 s excerpt mixed to mono; the
# model is fitted on Spotify's `loudness`, taken to be an integrated loudness in LUFS
# (ITU-R BS.1770). Scan value + this = LUFS for a stereo mix with identical channels
# (or a mono file played on two speakers) with a pink-noise spectrum: +3.0 dB because
# BS.1770 adds the channels' powers while the scan averages the channels, +0.8 dB from
# K-weighting pink noise. Measured through the real decoder by
# `workshop/fit_mood_model.py` (loudness.measure_scan_gap); other spectra and less
# correlated channels give -1.6 .. +6.9 dB (docs/CATALOG.md, "Loudness calibration").
SCAN_TO_SPOTIFY_LOUDNESS_DB = 3.8
LOUDNESS_RANGE_DB = (-45.0, 2.0)    # Spotify-scale loudness is clipped to about the training range
LOUDNESS_SQ_CENTRE_DB = -10.0       # about the training median, so the square term is small there
TEMPO_CENTRE_BPM = 120.0
TEMPO_FOLD_BPM = (70.0, 180.0)      # folded tempo: doubled below, halved above this range

Term = Callable[[np.ndarray, np.ndarray], np.ndarray]


def fold_tempo(tempo_bpm: np.ndarray) -> np.ndarray:
    """Tempo moved by octaves into TEMPO_FOLD_BPM (undoes half- and double-tempo readings)."""
    t = np.asarray(tempo_bpm, dtype=np.float64).copy()
    lo, hi = TEMPO_FOLD_BPM
    for _ in range(4):          # 40..240 BPM needs at most one step; NaN stays NaN
        t = np.where(t < lo, 2.0 * t, np.where(t > hi, t / 2.0, t))
    return t


def _loudness(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return loud


def _loudness_sq(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return (loud - LOUDNESS_SQ_CENTRE_DB) ** 2


def _log2_tempo(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return np.log2(tempo / TEMPO_CENTRE_BPM)


def _log2_tempo_sq(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return np.log2(tempo / TEMPO_CENTRE_BPM) ** 2


def _log2_folded_tempo(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return np.log2(fold_tempo(tempo) / TEMPO_CENTRE_BPM)


def _loudness_x_log2_tempo(loud: np.ndarray, tempo: np.ndarray) -> np.ndarray:
    return (loud - LOUDNESS_SQ_CENTRE_DB) * np.log2(tempo / TEMPO_CENTRE_BPM)


# Model inputs, each computed from (Spotify-scale loudness in dB, tempo in BPM).
TERMS: dict[str, Term] = {
    "loudness": _loudness,
    "loudness_sq": _loudness_sq,
    "log2_tempo": _log2_tempo,
    "log2_tempo_sq": _log2_tempo_sq,
    "log2_folded_tempo": _log2_folded_tempo,
    "loudness_x_log2_tempo": _loudness_x_log2_tempo,
}
LOUDNESS_TERMS = ("loudness", "loudness_sq")     # the terms a track without a tempo has


def design(terms: tuple[str, ...], loudness: np.ndarray, tempo_bpm: np.ndarray) -> np.ndarray:
    """The model inputs (rows x terms) for Spotify-scale loudness and tempo."""
    loud, tempo = np.asarray(loudness, np.float64), np.asarray(tempo_bpm, np.float64)
    return np.column_stack([TERMS[name](loud, tempo) for name in terms])


def spotify_loudness(scan_loudness_db: np.ndarray) -> np.ndarray:
    """The scan's RMS dBFS as the Spotify-like integrated loudness the model was fitted on."""
    return np.clip(np.asarray(scan_loudness_db, np.float64) + SCAN_TO_SPOTIFY_LOUDNESS_DB,
                   *LOUDNESS_RANGE_DB)


@dataclass(frozen=True)
class AudioPrediction:
    """Mood probabilities for scanned tracks, and which of the two models gave each row."""

    classes: tuple[str, ...]
    proba: np.ndarray          # (rows, classes)
    used_tempo: np.ndarray     # (rows,) bool: False where the tempo was unknown

    def moods(self) -> list[str]:
        return [self.classes[i] for i in np.argmax(self.proba, axis=1)]


@dataclass(frozen=True)
class AudioMoodModel:
    """Two softmax models over TERMS: loudness and tempo, and loudness alone (no tempo)."""

    with_tempo: MoodModel
    without_tempo: MoodModel
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.with_tempo.classes

    def predict_proba(self, loudness: np.ndarray, tempo_bpm: np.ndarray) -> AudioPrediction:
        """Probabilities from Spotify-scale loudness and tempo; NaN tempo: loudness alone."""
        loud = np.asarray(loudness, np.float64)
        tempo = np.asarray(tempo_bpm, np.float64)
        used = np.isfinite(tempo)
        proba = np.empty((len(loud), len(self.classes)))
        if used.any():
            x = design(self.with_tempo.features, loud[used], tempo[used])
            proba[used] = self.with_tempo.predict_proba(x)
        if (~used).any():
            x = design(self.without_tempo.features, loud[~used], tempo[~used])
            proba[~used] = self.without_tempo.predict_proba(x)
        return AudioPrediction(self.classes, proba, used)

    def predict_scan(self, scan_loudness_db: np.ndarray, tempo_bpm: np.ndarray) -> AudioPrediction:
        """Probabilities from the scan's loudness_db (RMS dBFS, calibrated here) and tempo_bpm."""
        return self.predict_proba(spotify_loudness(scan_loudness_db), tempo_bpm)

    def to_json(self) -> str:
        doc = {"format": FORMAT_VERSION, "kind": "audio", "with_tempo": self.with_tempo.to_dict(),
               "without_tempo": self.without_tempo.to_dict(), "info": self.info}
        return jsonio.dumps(doc, indent=1) + "\n"


def _known_terms(features: tuple[str, ...]) -> bool:
    return bool(features) and len(set(features)) == len(features) and set(features) <= set(TERMS)


def _loudness_only(features: tuple[str, ...]) -> bool:
    return _known_terms(features) and set(features) <= set(LOUDNESS_TERMS)


def audio_model_from_dict(doc: Any, source: Path) -> AudioMoodModel:
    """Check a parsed audio model file and build it; every problem names the key."""
    if not isinstance(doc, dict) or doc.get("kind") != "audio":
        raise ModelFileError(f"{source}: not a moodbox audio mood model (no \"kind\": \"audio\"); "
                             "regenerate it with workshop/fit_mood_model.py")
    for key in ("with_tempo", "without_tempo"):
        if not isinstance(doc.get(key), dict):
            raise ModelFileError(f"{source}: '{key}' is missing; regenerate it with "
                                 "workshop/fit_mood_model.py")
    terms = f"distinct terms among {list(TERMS)}"
    with_tempo = model_from_dict(doc["with_tempo"], source, _known_terms, terms)
    without_tempo = model_from_dict(doc["without_tempo"], source, _loudness_only,
                                    f"distinct terms among {list(LOUDNESS_TERMS)}")
    if with_tempo.classes != without_tempo.classes:
        raise ModelFileError(f"{source}: 'with_tempo' and 'without_tempo' have different "
                             "classes; regenerate it with workshop/fit_mood_model.py")
    return AudioMoodModel(with_tempo, without_tempo, dict(doc.get("info", {})))


def load_audio_model(path: Path = AUDIO_MODEL_PATH) -> AudioMoodModel:
    """Read an audio mood model JSON file (default: the one shipped beside this module)."""
    return audio_model_from_dict(read_model_json(path, "--audio-model"), Path(path))
