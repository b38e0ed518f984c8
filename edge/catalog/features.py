"""Audio features of decoded samples (loudness, tempo, brightness, key and mode), numpy only."""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

logger = logging.getLogger(__name__)

START_FRACTION = 0.10      # analysis starts this far into the track (skips intros)
MAX_ANALYSIS_S = 90.0      # ... and covers at most this much audio
MIN_ANALYSIS_S = 2.0       # shorter tracks are reported as errors
SILENCE_DB = -120.0        # loudness floor for digital silence

ONSET_FFT, ONSET_HOP = 1024, 256   # about 46 ms windows every 11.6 ms at 22.05 kHz
ONSET_BANDS, ONSET_FMIN = 40, 30.0
CHROMA_FFT, CHROMA_HOP = 8192, 2048
CHROMA_FMIN, CHROMA_FMAX = 55.0, 2000.0   # A1 .. B6: where the harmony lives
PEAK_FLOOR = 0.02          # spectral peaks below this fraction of the frame maximum are noise
TEMPO_MIN, TEMPO_MAX = 40.0, 240.0
TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 120.0, 1.0
MIN_TEMPO_STRENGTH = 0.1   # autocorrelation below this at the best lag: no steady pulse
MIN_ONSET_PEAK = 0.5       # onset envelope (99th percentile) below this: no onsets at all
CHUNK_FRAMES = 256         # STFT frames transformed at once (bounds memory on a Pi)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


class AnalysisError(ValueError):
    """Samples that cannot be analysed (too short); the message says why."""


@dataclass(frozen=True)
class AudioFeatures:
    """What the scan measures on one track's excerpt; NaN/"" where nothing was found."""

    analysed_s: float
    loudness_db: float        # RMS level of the excerpt, dB relative to full scale
    tempo_bpm: float
    tempo_strength: float     # normalised autocorrelation at the chosen beat period, 0..1
    centroid_hz: float        # spectral centroid ("brightness"), power-weighted mean
    key: str                  # tonic pitch class, e.g. "A"
    mode: str                 # "major" | "minor"
    key_corr: float           # correlation of the chroma with the winning key profile
    mode_margin: float        # best major minus best minor correlation (>0: major)

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def excerpt(samples: np.ndarray, sr: int) -> np.ndarray:
    """The analysed part: from START_FRACTION into the track, at most MAX_ANALYSIS_S long."""
    start = int(len(samples) * START_FRACTION)
    return samples[start:start + int(MAX_ANALYSIS_S * sr)]


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS (a full-scale square wave is 0 dB, a full-scale sine -3 dB)."""
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return max(SILENCE_DB, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DB


def _stft_chunks(x: np.ndarray, n_fft: int, hop: int) -> Iterator[np.ndarray]:
    """Magnitude spectra (frames x bins) of Hann-windowed frames, a chunk at a time."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    for i in range(0, len(frames), CHUNK_FRAMES):
        yield np.abs(np.fft.rfft(frames[i:i + CHUNK_FRAMES] * window, axis=1)).astype(np.float32)


def _band_matrix(sr: int, n_fft: int) -> np.ndarray:
    """0/1 matrix pooling FFT bins into ONSET_BANDS log-spaced bands (empty bands dropped)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(ONSET_FMIN, sr / 2, ONSET_BANDS + 1)
    pool = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])], axis=1)
    return pool[:, pool.any(axis=0)].astype(np.float32)


def onset_envelope(x: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Spectral flux: how much new energy each frame brings, summed over log-spaced bands.

    Band powers are compressed with log(1 + p / mean power), so quiet events (hi-hats)
    count less than loud ones (kick, snare) whatever the recording level. Returns the
    envelope and its frame rate in frames per second.
    """
    pool = _band_matrix(sr, ONSET_FFT)
    power = np.vstack([np.square(mag) @ pool for mag in _stft_chunks(x, ONSET_FFT, ONSET_HOP)])
    ref = float(power.mean())
    if ref <= 0:
        return np.zeros(max(0, len(power) - 1)), sr / ONSET_HOP
    compressed = np.log1p(power.astype(np.float64) / ref)
    return np.maximum(np.diff(compressed, axis=0), 0.0).sum(axis=1), sr / ONSET_HOP


def _autocorrelation(env: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation of the mean-removed envelope, normalised to 1 at lag 0."""
    n = len(env)
    env = env - env.mean()
    spectrum = np.fft.rfft(env, 2 * n)
    ac = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / (n - np.arange(n))
    return ac / ac[0] if n and ac[0] > 0 else np.zeros(n)


def _refine_peak(values: np.ndarray, i: int) -> float:
    """Sub-sample position of the local maximum at or next to i (hill climb, then a parabola)."""
    while 0 < i < len(values) - 1 and max(values[i - 1], values[i + 1]) > values[i]:
        i = i - 1 if values[i - 1] > values[i + 1] else i + 1
    if i <= 0 or i >= len(values) - 1:
        return float(i)
    left, mid, right = values[i - 1], values[i], values[i + 1]
    denom = left - 2 * mid + right
    return float(i) if denom >= 0 else i + float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def estimate_tempo(env: np.ndarray, frame_rate: float) -> tuple[float, float]:
    """(BPM, strength) from the onset envelope's autocorrelation, weighted by a tempo prior.

    The prior is a log-normal centred on 120 BPM, one octave wide (as in librosa), which
    settles the choice between a beat period and its multiples. NaN BPM when there are
    no onsets (a held tone) or no lag reaches MIN_TEMPO_STRENGTH (noise, free time).
    """
    if len(env) == 0 or np.percentile(env, 99) < MIN_ONSET_PEAK:
        return math.nan, 0.0
    ac = _autocorrelation(env)
    lo = max(1, int(frame_rate * 60.0 / TEMPO_MAX))
    hi = min(len(ac) - 2, int(math.ceil(frame_rate * 60.0 / TEMPO_MIN)))
    if hi <= lo:
        return math.nan, 0.0
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * frame_rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    score = np.maximum(ac[lags], 0.0) * prior
    best = int(np.argmax(score))
    strength = float(ac[lags[best]])
    if strength < MIN_TEMPO_STRENGTH:
        return math.nan, max(strength, 0.0)
    return 60.0 * frame_rate / _refine_peak(ac, int(lags[best])), strength


def spectral_centroid(x: np.ndarray, sr: int) -> float:
    """Power-weighted mean frequency over the whole excerpt, in Hz (NaN for silence)."""
    freqs = np.fft.rfftfreq(ONSET_FFT, 1.0 / sr)
    power = np.zeros(len(freqs))
    for mag in _stft_chunks(x, ONSET_FFT, ONSET_HOP):
        power += np.square(mag, dtype=np.float64).sum(axis=0)
    total = power.sum()
    return float((freqs * power).sum() / total) if total > 0 else math.nan


def _pitch_class_map(sr: int) -> tuple[np.ndarray, np.ndarray]:
    """FFT bins used for chroma, and the pitch class (0 = C) each one belongs to."""
    freqs = np.fft.rfftfreq(CHROMA_FFT, 1.0 / sr)
    bins = np.flatnonzero((freqs >= CHROMA_FMIN) & (freqs <= min(CHROMA_FMAX, sr / 2)))
    midi = 69.0 + 12.0 * np.log2(freqs[bins] / 440.0)
    return bins, np.round(midi).astype(int) % 12


def _spectral_peaks(mag: np.ndarray) -> np.ndarray:
    """Keep only local maxima along frequency above 2% of the frame's maximum; zero the rest."""
    peaks = np.zeros_like(mag)
    inner = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
    peaks[:, 1:-1] = np.where(inner, mag[:, 1:-1], 0.0)
    return np.where(peaks > PEAK_FLOOR * mag.max(axis=1, keepdims=True), peaks, 0.0)


def chroma_profile(x: np.ndarray, sr: int) -> np.ndarray:
    """Pitch-class profile: magnitudes of spectral peaks folded onto 12 semitones.

    Only peaks count, so drums and noise (flat spectra) add little; frames are summed
    without normalisation, so sustained tonal passages weigh most.
    """
    bins, classes = _pitch_class_map(sr)
    onehot = (classes[:, None] == np.arange(12)[None, :]).astype(np.float64)
    chroma = np.zeros(12)
    for mag in _stft_chunks(x, CHROMA_FFT, CHROMA_HOP):
        chroma += (_spectral_peaks(mag)[:, bins].astype(np.float64) @ onehot).sum(axis=0)
    return chroma


def estimate_key(chroma: np.ndarray) -> tuple[str, str, float, float]:
    """(key, mode, correlation, major-minus-minor margin) by Krumhansl-Schmuckler matching."""
    if not np.any(chroma > 0) or np.allclose(chroma, chroma[0]):
        return "", "", math.nan, math.nan
    major = [np.corrcoef(chroma, np.roll(MAJOR_PROFILE, k))[0, 1] for k in range(12)]
    minor = [np.corrcoef(chroma, np.roll(MINOR_PROFILE, k))[0, 1] for k in range(12)]
    best_major, best_minor = int(np.argmax(major)), int(np.argmax(minor))
    margin = float(major[best_major] - minor[best_minor])
    if margin >= 0:
        return PITCH_CLASSES[best_major], "major", float(major[best_major]), margin
    return PITCH_CLASSES[best_minor], "minor", float(minor[best_minor]), margin


def analyse(samples: np.ndarray, sr: int, excerpted: bool = False) -> AudioFeatures:
    """All features of one track's mono float samples (range -1..1); `excerpted`: the
    samples are already the analysed part (a decoder that read only that)."""
    x = np.asarray(samples, dtype=np.float32)
    x = x if excerpted else excerpt(x, sr)
    seconds = len(x) / sr
    if seconds < MIN_ANALYSIS_S:
        raise AnalysisError(f"too short to analyse ({len(samples) / sr:.1f} s of audio)")
    loudness = rms_dbfs(x)
    if loudness <= SILENCE_DB:
        return AudioFeatures(seconds, loudness, math.nan, 0.0, math.nan, "", "", math.nan, math.nan)
    x = x / np.float32(np.sqrt(np.mean(np.square(x, dtype=np.float64))))   # level-independent
    tempo, strength = estimate_tempo(*onset_envelope(x, sr))
    key, mode, corr, margin = estimate_key(chroma_profile(x, sr))
    return AudioFeatures(seconds, loudness, tempo, strength, spectral_centroid(x, sr),
                         key, mode, corr, margin)
