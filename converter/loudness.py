"""ITU-R BS.1770-4 integrated loudness (LUFS), numpy only: calibrates the scan's RMS level."""
from __future__ import annotations

import logging
import math
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from moodbox.catalog.features import analyse

logger = logging.getLogger(__name__)

# The two K-weighting stages as analogue prototypes, from which the biquads for any
# sample rate follow by the bilinear transform (the constants of libebur128; at
# 48 kHz they give the coefficients tabled in BS.1770-4 to 1e-8).
SHELF_HZ, SHELF_GAIN_DB, SHELF_Q, SHELF_VB_EXPONENT = (
    1681.974450955533, 3.999843853973347, 0.7071752369554196, 0.4996667741545416)
HIGHPASS_HZ, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773
BLOCK_S, STEP_S = 0.4, 0.1          # gating blocks of 400 ms, overlapping by 75%
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
LUFS_OFFSET = -0.691                # BS.1770: makes a 1 kHz sine read like its RMS level
PAD_S = 1.0                         # zero padding for FFT filtering (the IIR has decayed by then)

Decoder = Callable[[Path], "tuple[np.ndarray, int]"]


def k_weighting(rate: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(b, a) of the high-shelf and the high-pass stage of the K-weighting filter."""
    k = math.tan(math.pi * SHELF_HZ / rate)
    vh = 10.0 ** (SHELF_GAIN_DB / 20.0)
    vb = vh ** SHELF_VB_EXPONENT
    a0 = 1.0 + k / SHELF_Q + k * k
    shelf = (np.array([vh + vb * k / SHELF_Q + k * k, 2.0 * (k * k - vh),
                       vh - vb * k / SHELF_Q + k * k]) / a0,
             np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / SHELF_Q + k * k) / a0]))
    k = math.tan(math.pi * HIGHPASS_HZ / rate)
    a0 = 1.0 + k / HIGHPASS_Q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]),
                np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / HIGHPASS_Q + k * k) / a0]))
    return [shelf, highpass]


def k_weighted(x: np.ndarray, rate: float) -> np.ndarray:
    """x (samples, or samples x channels) through the K-weighting filter.

    Filtering is done in the frequency domain with PAD_S of zero padding, which equals
    the recursive filter to float precision: its impulse response (slowest pole: the
    38 Hz high-pass) has decayed far below that within a second.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    size = 1 << int(math.ceil(math.log2(n + int(PAD_S * rate))))
    w = np.exp(-2j * np.pi * np.fft.rfftfreq(size))          # e^{-j omega}
    response = np.ones(len(w), dtype=complex)
    for b, a in k_weighting(rate):
        response *= np.polyval(b[::-1], w) / np.polyval(a[::-1], w)
    spectrum = np.fft.rfft(x, size, axis=0)
    spectrum *= response[:, None] if x.ndim == 2 else response
    return np.fft.irfft(spectrum, size, axis=0)[:n]


def integrated_loudness(x: np.ndarray, rate: float) -> float:
    """BS.1770-4 integrated loudness in LUFS of samples (mono) or samples x channels.

    Channel weights are 1 (left, right, centre); the gates are -70 LUFS absolute and
    -10 LU relative. -inf when no block passes the absolute gate (silence).
    """
    y = k_weighted(x, rate)
    y = y[:, None] if y.ndim == 1 else y
    block, step = int(round(BLOCK_S * rate)), int(round(STEP_S * rate))
    if len(y) < block:
        return -math.inf
    starts = np.arange(0, len(y) - block + 1, step)
    power = np.array([np.mean(np.square(y[s:s + block]), axis=0).sum() for s in starts])
    with np.errstate(divide="ignore"):
        blocks = LUFS_OFFSET + 10.0 * np.log10(power)
    kept = power[blocks > ABSOLUTE_GATE_LUFS]
    if len(kept) == 0:
        return -math.inf
    relative = LUFS_OFFSET + 10.0 * math.log10(kept.mean()) + RELATIVE_GATE_LU
    kept = power[(blocks > ABSOLUTE_GATE_LUFS) & (blocks > relative)]
    return LUFS_OFFSET + 10.0 * math.log10(kept.mean())


def coloured_noise(n: int, slope_db_per_octave: float, rate: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power density falls by the slope per octave from 20 Hz up.

    -3 dB/octave is pink noise, -6 brown (red) noise; unit RMS. Below 20 Hz nothing,
    so brown noise does not pile its power up at DC.
    """
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    gain = np.zeros(len(freqs))
    audible = freqs >= 20.0
    gain[audible] = (freqs[audible] / 20.0) ** (slope_db_per_octave / (20.0 * math.log10(2.0)))
    spectrum = (rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))) * gain
    x = np.fft.irfft(spectrum, n)
    return x / np.sqrt(np.mean(np.square(x)))


@dataclass(frozen=True)
class GapMeasurement:
    """One reference signal's integrated loudness and what the scan reads for it."""

    name: str
    lufs: float
    scan_db: float

    @property
    def gap_db(self) -> float:
        """What to add to the scan's loudness_db to get the integrated loudness."""
        return self.lufs - self.scan_db


def reference_signals(rate: int, seconds: float, level_dbfs: float,
                      seed: int) -> dict[str, np.ndarray]:
    """Stereo test signals (samples x 2) at an RMS level per channel: pink and brown noise,
    with the same signal in both channels (a centred mix) and with independent channels."""
    rng = np.random.default_rng(seed)
    n, scale = int(seconds * rate), 10.0 ** (level_dbfs / 20.0)
    out = {}
    for name, slope in (("pink", -3.0), ("brown", -6.0)):
        left, right = (coloured_noise(n, slope, rate, rng) for _ in range(2))
        out[f"{name} noise, identical channels"] = scale * np.column_stack([left, left])
        out[f"{name} noise, independent channels"] = scale * np.column_stack([left, right])
    return out


def write_wav16(path: Path, x: np.ndarray, rate: int) -> None:
    """samples x channels in -1..1 as 16-bit PCM WAV."""
    x = x[:, None] if x.ndim == 1 else x
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def measure_scan_gap(signals: dict[str, np.ndarray], rate: int,
                     decoder: Decoder) -> list[GapMeasurement]:
    """Integrated loudness of each signal vs the scan's loudness_db of it as a WAV file
    (decoded, mixed to mono and resampled exactly as a scan does it)."""
    found = []
    with tempfile.TemporaryDirectory(prefix="moodbox-loudness-") as folder:
        for i, (name, x) in enumerate(signals.items()):
            path = Path(folder) / f"reference-{i}.wav"
            write_wav16(path, x, rate)
            samples, decoded_rate = decoder(path)
            found.append(GapMeasurement(name, integrated_loudness(x, rate),
                                        analyse(samples, decoded_rate).loudness_db))
    return found
