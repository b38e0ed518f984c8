"""Decodes music files to mono float samples with pygame's mixer; no sound device needed."""
from __future__ import annotations

import io
import logging
import os
import struct
from pathlib import Path
from types import TracebackType

import numpy as np

from moodbox import files

logger = logging.getLogger(__name__)

DECODE_RATE = 22050


class DecodeError(Exception):
    """A file that cannot be decoded; the message says why in a few words."""


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Mixer samples (any of pygame's sample formats, mono or interleaved) as mono float32."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.dtype.kind == "f":
        return samples.astype(np.float32)
    if samples.dtype.kind == "u":
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        return ((samples.astype(np.float64) - half) / half).astype(np.float32)
    return (samples.astype(np.float64) / float(2 ** (8 * samples.dtype.itemsize - 1))).astype(np.float32)


def wav_layout(path: Path) -> tuple[bytes, int, int, int, int] | None:
    """(fmt chunk body, bytes per frame, rate, data offset, data bytes) of a RIFF WAV; None
    for anything else (or a WAV too odd to cut)."""
    try:
        with files.open_regular(path) as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(f.fileno()).st_size
            fmt = b""
            for _ in range(64):
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(n)
                    f.seek(n & 1, 1)
                elif cid == b"data":
                    if len(fmt) < 16:
                        return None
                    tag, channels, rate = struct.unpack("<HHI", fmt[:8])
                    block = struct.unpack("<H", fmt[12:14])[0]
                    if tag not in (1, 3, 0xFFFE) or not channels or not rate or not block:
                        return None
                    at = f.tell()
                    return fmt, block, rate, at, min(n, size - at)
                else:
                    f.seek(n + (n & 1), 1)
    except OSError:
        return None
    return None


def _wav_bytes(fmt: bytes, body: bytes) -> bytes:
    """A minimal WAV (RIFF, fmt, data) in memory around these frames."""
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + (b"\0" if len(fmt) & 1 else b"")
              + b"data" + struct.pack("<I", len(body)) + body)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


class PygameDecoder:
    """Opens pygame's mixer once and decodes files with it; no sound device is touched.

    If the mixer is already running in this process (a player), it is used as it is
    and left running. Otherwise it is opened at 22.05 kHz mono with SDL's dummy audio
    driver (decoding needs no output: a real driver could fail without a device, grab
    the one a player holds, or, for "disk", write a file) and closed again. The
    caller's SDL_AUDIODRIVER is restored right after, so later mixer users see it.
    """

    def __init__(self, frequency: int = DECODE_RATE):
        self.frequency = frequency
        self._owns_mixer = False
        self._pygame = None

    def __enter__(self) -> "PygameDecoder":
        self.open()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ImportError:
            raise DecodeError("pygame is not installed; pip install pygame") from None
        self._pygame = pygame
        if pygame.mixer.get_init():
            return
        try:
            self._init_mixer("dummy")
        except pygame.error as exc:
            raise DecodeError(f"pygame's mixer cannot start ({exc})") from None
        self._owns_mixer = True

    def _init_mixer(self, driver: str) -> None:
        """Start the mixer with this SDL audio driver; the environment is left as it was."""
        saved = os.environ.get("SDL_AUDIODRIVER")
        os.environ["SDL_AUDIODRIVER"] = driver
        try:
            self._pygame.mixer.init(frequency=self.frequency, size=-16, channels=1)
        finally:
            if saved is None:
                del os.environ["SDL_AUDIODRIVER"]
            else:
                os.environ["SDL_AUDIODRIVER"] = saved

    def close(self) -> None:
        if self._pygame is not None and self._owns_mixer:
            self._pygame.mixer.quit()
        self._owns_mixer = False

    def excerpt(self, path: Path, start_fraction: float, max_s: float
                ) -> tuple[np.ndarray, int, float]:
        """(samples, rate, whole duration in s) of only the analysed part: from
        `start_fraction` into the track, at most `max_s` long. A WAV is read from that
        point alone (a 59-minute WAV costs what 90 s cost); other formats are decoded whole
        and cut, as their decoder cannot seek."""
        layout = wav_layout(path)
        if layout is None:
            samples, rate = self(path)
            start = int(len(samples) * start_fraction)
            return samples[start:start + int(max_s * rate)], rate, len(samples) / rate
        header, block, rate, data_at, data_size = layout
        frames = data_size // block
        first = int(frames * start_fraction)
        count = min(frames - first, int(max_s * rate))
        with files.open_regular(path) as f:
            f.seek(data_at + first * block)
            body = f.read(count * block)
        wav = _wav_bytes(header, body)
        if self._pygame is None:
            self.open()
        pygame = self._pygame
        try:
            sound = pygame.mixer.Sound(file=io.BytesIO(wav))
            samples = pygame.sndarray.array(sound)
        except (pygame.error, MemoryError) as exc:
            raise DecodeError(f"cannot decode ({str(exc).strip() or type(exc).__name__})") from None
        return _to_float(samples), int(pygame.mixer.get_init()[0]), frames / rate

    def __call__(self, path: Path) -> tuple[np.ndarray, int]:
        """(mono float32 samples in -1..1, sample rate) of a whole file."""
        if self._pygame is None:
            self.open()
        pygame = self._pygame
        try:
            sound = pygame.mixer.Sound(str(path))
            samples = pygame.sndarray.array(sound)
        except (pygame.error, MemoryError) as exc:
            raise DecodeError(f"cannot decode ({str(exc).strip() or type(exc).__name__})") from None
        rate = pygame.mixer.get_init()[0]
        return _to_float(samples), int(rate)
