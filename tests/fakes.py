"""Test doubles for hardware we lack here, with the real backend's interface and fault hooks.

FakePicamera2 stands in for picamera2.Picamera2 (the Pi camera); FakeAudio for the
AudioBackend (a USB DAC being pulled). Everything else in the tests is the real part.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from moodbox.audio.backend import AudioBackend, AudioError, AudioPermissionError, TrackError


class PluggableDevice:
    """Fault hooks shared by the hardware doubles: a device that can be unplugged,
    plugged back in, or made unreadable for this user."""

    present = True
    permission = True

    def unplug(self) -> None:
        self.present = False

    def plug(self) -> None:
        self.present = True

    def deny_permission(self) -> None:
        self.permission = False


class FakeRequest:
    def __init__(self, array: np.ndarray, metadata: dict):
        self._array, self._metadata = array, metadata
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        assert name == "lores"
        return self._array

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def release(self) -> None:
        self.released = True


class FakePiCameraSystem(PluggableDevice):
    """The 'hardware': decides what each new Picamera2() and each capture does.

    Fault hooks: unplug() (no camera at open), plug(), deny_permission(),
    trigger_timeouts(n), freeze(), unfreeze(), trigger_bad_stride(n), images(list).
    """

    def __init__(self, width: int = 320, height: int = 240, stride: int = 384):
        self.width, self.height, self.stride = width, height, stride
        self.present = True
        self.permission = True
        self.timeouts = 0
        self.bad_stride = 0
        self.frozen = False
        self.opened = 0
        self.closed = 0
        self.captures = 0
        self.frames: list[np.ndarray] = []
        self._ts = 1_000_000
        self.lock = threading.Lock()

    # fault hooks (unplug, plug, deny_permission: from PluggableDevice)
    def trigger_timeouts(self, n: int) -> None:
        self.timeouts = n

    def trigger_bad_stride(self, n: int) -> None:
        self.bad_stride = n

    def freeze(self) -> None:
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False

    # what picamera2 would do -----------------------------------------------
    def __call__(self) -> "FakePicamera2":
        with self.lock:
            if not self.permission:
                raise PermissionError("[Errno 13] Permission denied: '/dev/media0'")
            if not self.present:
                raise IndexError("list index out of range")  # what Picamera2() raises with no camera
            self.opened += 1
        return FakePicamera2(self)

    def next_yuv(self) -> tuple[np.ndarray, int]:
        with self.lock:
            self.captures += 1
            if not self.frozen:
                self._ts += 100_000_000
            if self.frames:
                y = self.frames[self.captures % len(self.frames)]
            else:
                y = (np.random.default_rng(self.captures).random((self.height, self.width)) * 255).astype(np.uint8)
            stride = self.stride
            if self.bad_stride > 0:
                self.bad_stride -= 1
                return np.zeros((self.height // 2, 17), np.uint8), self._ts
        yuv = np.full((self.height * 3 // 2, stride), 128, np.uint8)
        yuv[: self.height, : self.width] = y
        return yuv, self._ts


class FakePicamera2:
    """Same methods the Picamera2Source uses on picamera2.Picamera2."""

    def __init__(self, system: FakePiCameraSystem):
        self.system = system
        self.started = False
        self.config = None

    def create_video_configuration(self, main=None, lores=None, controls=None, buffer_count=None):
        return {"main": main, "lores": lores, "controls": controls, "buffer_count": buffer_count}

    def configure(self, config) -> None:
        assert config["lores"]["format"] == "YUV420"
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_request(self, wait=None, signal_function=None, flush=None):
        assert wait is not None, "a capture must never wait forever"
        if not self.started:
            raise RuntimeError("camera not started")
        if self.system.timeouts > 0:
            self.system.timeouts -= 1
            time.sleep(min(wait, 0.05))
            raise TimeoutError("Camera frontend has timed out!")
        yuv, ts = self.system.next_yuv()
        return FakeRequest(yuv, {"SensorTimestamp": ts})

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.system.closed += 1


class FakeAudio(PluggableDevice, AudioBackend):
    """An AudioBackend whose device can be missing, busy, pulled mid-play or forbidden.

    It keeps a log of what was played and at which volume, and advances the play
    position with a fake clock (`advance(ms)`), ending tracks after `track_ms`.
    """

    def __init__(self, track_ms: int = 10_000):
        self.track_ms = track_ms
        self.present = True
        self.permission = True
        self.is_open = False
        self.played: list[Path] = []
        self.volumes: list[float] = []
        self.fades: list[int] = []
        self.events: list[str] = []
        self.bad_tracks: set[str] = set()
        self._pos = 0
        self._playing = False
        self._paused = False
        self.opens = 0

    # fault hooks (unplug, plug, deny_permission: from PluggableDevice)
    def advance(self, ms: int) -> None:
        if self._playing and not self._paused and self.present:
            self._pos += ms
            if self._pos >= self.track_ms:
                self._playing = False

    def _need(self) -> None:
        if not self.is_open:
            raise AudioError("sound device is not open")
        if not self.present:
            raise AudioError("sound device lost (unplugged)")

    # AudioBackend
    def open(self) -> None:
        if not self.permission:
            raise AudioPermissionError("no permission to open the sound device; add the service "
                                       "user to the 'audio' group")
        if not self.present:
            raise AudioError("cannot open the sound device (no such device)")
        self.is_open = True
        self.opens += 1
        self.events.append("open")

    def close(self) -> None:
        self.is_open = False
        self._playing = False
        self.events.append("close")

    def play(self, path: Path, fade_in_ms: int) -> None:
        self._need()
        if path.name in self.bad_tracks or not path.exists():
            raise TrackError("cannot be decoded")
        self.played.append(path)
        self.events.append(f"play {path.name} fade={fade_in_ms}")
        self._pos, self._playing, self._paused = 0, True, False

    def fadeout(self, ms: int) -> None:
        self._need()
        self.fades.append(ms)
        self.events.append(f"fadeout {ms}")
        self._playing = False

    def busy(self) -> bool:
        self._need()
        return self._playing

    def position_ms(self) -> int:
        self._need()
        return self._pos

    def set_volume(self, volume: float) -> None:
        self._need()
        self.volumes.append(volume)

    def pause(self) -> None:
        self._need()
        self._paused = True
        self.events.append("pause")

    def resume(self) -> None:
        self._need()
        self._paused = False
        self.events.append("resume")

    def stop(self) -> None:
        self._need()
        self._playing = False
