"""The Pi camera through picamera2 (imported only when this backend opens)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from moodbox.camera.source import (VIDEO_GROUP_HINT, CameraError, CameraPermissionError,
                                   CameraTimeout, CameraUnavailable, Frame, FrameSource)

logger = logging.getLogger(__name__)


class Picamera2Source(FrameSource):
    """The Pi camera through picamera2: a YUV420 "lores" stream, greyscale from the Y plane.

    picamera2 is imported here only (`factory` lets tests hand in a double with the
    same interface as picamera2.Picamera2).
    """

    name = "picamera2"

    def __init__(self, width: int, height: int, fps: float,
                 factory: Callable[[], Any] | None = None):
        self.width, self.height, self.fps = width, height, fps
        self._factory = factory
        self._cam = None
        self._seq = 0

    def describe(self) -> str:
        return f"picamera2 lores {self.width}x{self.height}"

    def _make(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraUnavailable("picamera2 is not installed: sudo apt install python3-picamera2, "
                                    "and make the venv with --system-site-packages") from None
        return Picamera2()

    def open(self) -> None:
        try:
            cam = self._make()
        except CameraError:
            raise
        except PermissionError as exc:
            raise CameraPermissionError(f"no permission to open the Pi camera ({exc}); "
                                        f"{VIDEO_GROUP_HINT}") from None
        except Exception as exc:  # IndexError (no camera), RuntimeError (busy) ...
            text = str(exc)
            if "ermission" in text:
                raise CameraPermissionError(f"no permission to open the Pi camera ({text}); "
                                            f"{VIDEO_GROUP_HINT}") from None
            raise CameraUnavailable(f"no Pi camera found ({type(exc).__name__}: {text or 'no detail'})"
                                    "; check the ribbon cable and that the camera is enabled") from None
        try:
            w, h = self.width - self.width % 2, self.height - self.height % 2
            config = cam.create_video_configuration(
                main={"size": (max(w, 640), max(h, 480)), "format": "YUV420"},
                lores={"size": (w, h), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)}, buffer_count=4)
            cam.configure(config)
            cam.start()
        except Exception as exc:
            try:
                cam.close()
            except Exception:  # noqa: BLE001 (closing a half-opened camera)
                pass
            raise CameraUnavailable(f"Pi camera did not start ({type(exc).__name__}: {exc})") from None
        self._cam = cam

    def read(self, timeout: float) -> Frame:
        if self._cam is None:
            raise CameraError("camera is not open")
        try:
            request = self._cam.capture_request(wait=timeout)
        except TimeoutError:
            raise CameraTimeout(f"no frame from the Pi camera within {timeout:.1f} s "
                                "(frontend timeout?)") from None
        except Exception as exc:
            raise CameraError(f"Pi camera capture failed ({type(exc).__name__}: {exc})") from None
        if request is None:
            raise CameraTimeout(f"no frame from the Pi camera within {timeout:.1f} s")
        try:
            yuv = request.make_array("lores")
            meta = request.get_metadata() or {}
        finally:
            request.release()
        if yuv.ndim != 2 or yuv.shape[0] < self.height or yuv.shape[1] < self.width:
            raise CameraError(f"Pi camera gave a lores buffer of shape {yuv.shape}, expected "
                              f"at least ({self.height * 3 // 2}, {self.width})")
        grey = np.ascontiguousarray(yuv[:self.height, :self.width])  # Y plane, stride dropped
        self._seq += 1
        ts = meta.get("SensorTimestamp")
        return Frame(grey, time.monotonic(), self._seq, float(ts) if ts is not None else None)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        for step in ("stop", "close"):
            try:
                getattr(cam, step)()
            except Exception as exc:  # noqa: BLE001 (best effort on a failing camera)
                logger.debug("picamera2 %s failed: %s", step, exc)


