"""The production audio backend: pygame.mixer.music (SDL), imported when the device opens."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from moodbox.audio.backend import (AUDIO_GROUP_HINT, AudioBackend, AudioError, AudioPermissionError,
                                   TrackError)
from moodbox.quiet import native_stderr_logged

logger = logging.getLogger(__name__)


class PygameBackend(AudioBackend):
    """pygame.mixer.music, streaming one track at a time. pygame is imported on open."""

    def __init__(self, driver: str = "", device: str = "", frequency: int = 44100,
                 fallback_file: Path | None = None):
        self.driver, self.device, self.frequency = driver, device, frequency
        self.fallback_file = fallback_file  # demo: no sound device -> SDL's disk driver
        self._music = None
        self._mixer = None

    def open(self) -> None:
        try:
            self._open()
        except AudioPermissionError:
            raise
        except AudioError as exc:
            if self.fallback_file is None or os.environ.get("SDL_AUDIODRIVER") == "disk":
                raise
            logger.warning("%s; writing the audio to %s instead", exc, self.fallback_file)
            os.environ["SDL_AUDIODRIVER"] = "disk"
            os.environ["SDL_DISKAUDIOFILE"] = str(self.fallback_file)
            self.driver, self.device = "disk", ""
            self._open()

    def _open(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        if self.driver:
            os.environ["SDL_AUDIODRIVER"] = self.driver
        _check_sound_permissions()
        try:
            import pygame
        except ImportError:
            raise AudioError("pygame is not installed: pip install pygame "
                             "(or apt install python3-pygame)") from None
        if pygame.mixer.get_init():
            pygame.mixer.quit()  # the player owns the mixer: open it with our driver and device
        try:
            with native_stderr_logged(logger, "SDL"):  # SDL-disk and ALSA banners
                pygame.mixer.init(frequency=self.frequency, size=-16, channels=2, buffer=2048,
                                  devicename=self.device or None)
        except pygame.error as exc:
            text = str(exc)
            if "ermission" in text:
                raise AudioPermissionError(f"no permission to open the sound device ({text}); "
                                           f"{AUDIO_GROUP_HINT}") from None
            raise AudioError(f"cannot open the sound device ({text or 'no detail'})") from None
        self._mixer, self._music = pygame.mixer, pygame.mixer.music
        self._pygame_error = pygame.error

    def close(self) -> None:
        if self._mixer is not None:
            try:
                self._music.stop()
                self._music.unload()
            except Exception:  # noqa: BLE001 (the device may already be gone)
                pass
            self._mixer.quit()
        self._mixer = self._music = None

    def _call(self, fn: Callable, *args):
        if self._music is None:
            raise AudioError("sound device is not open")
        try:
            return fn(*args)
        except self._pygame_error as exc:
            if not self._mixer.get_init():
                raise AudioError(f"sound device lost ({exc})") from None
            raise

    def play(self, path: Path, fade_in_ms: int) -> None:
        if self._music is None:
            raise AudioError("sound device is not open")
        try:
            self._music.load(str(path))
            self._music.play(loops=0, fade_ms=int(fade_in_ms))
        except self._pygame_error as exc:
            if not self._mixer.get_init():
                raise AudioError(f"sound device lost ({exc})") from None
            raise TrackError(str(exc) or "cannot be decoded") from None
        except (OSError, UnicodeError) as exc:
            raise TrackError(str(exc)) from None

    def fadeout(self, ms: int) -> None:
        self._call(self._music.fadeout, int(ms))

    def busy(self) -> bool:
        return bool(self._call(self._music.get_busy))

    def position_ms(self) -> int:
        return int(self._call(self._music.get_pos))

    def set_volume(self, volume: float) -> None:
        self._call(self._music.set_volume, float(volume))

    def pause(self) -> None:
        self._call(self._music.pause)

    def resume(self) -> None:
        self._call(self._music.unpause)

    def stop(self) -> None:
        self._call(self._music.stop)


def _check_sound_permissions() -> None:
    snd = Path("/dev/snd")
    if not snd.is_dir() or os.environ.get("SDL_AUDIODRIVER") in ("disk", "dummy"):
        return
    devices = [p for p in snd.iterdir() if p.name.startswith(("pcm", "control"))]
    if devices and not any(os.access(p, os.R_OK | os.W_OK) for p in devices):
        raise AudioPermissionError(f"no permission to open the sound devices in /dev/snd; "
                                   f"{AUDIO_GROUP_HINT}")


def raw_to_wav(raw: Path, wav: Path, rate: int = 44100, channels: int = 2) -> None:
    """Wrap the 16-bit PCM that SDL's disk driver wrote into a .wav file."""
    import wave

    data = raw.read_bytes() if raw.exists() else b""
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data[: len(data) - len(data) % (2 * channels)])


