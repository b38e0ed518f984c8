"""A V4L2 webcam, video file or stream URL through cv2.VideoCapture."""
from __future__ import annotations

import os
import time

from moodbox.camera.source import (VIDEO_GROUP_HINT, CameraError, CameraPermissionError,
                                   CameraUnavailable, Frame, FrameSource, to_grey)


def _check_device_access(device: str) -> None:
    if os.path.exists(device) and not os.access(device, os.R_OK | os.W_OK):
        raise CameraPermissionError(f"no permission to open {device}; {VIDEO_GROUP_HINT}")


class OpenCVSource(FrameSource):
    """A V4L2 webcam by index, or a video file / stream URL, through cv2.VideoCapture."""

    name = "opencv"

    def __init__(self, device: int | str, width: int, height: int, fps: float):
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self._cap = None
        self._seq = 0

    def describe(self) -> str:
        return f"opencv {self.device}"

    def open(self) -> None:
        import cv2

        if isinstance(self.device, int):
            _check_device_access(f"/dev/video{self.device}")
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"cannot open camera {self.device!r} (not connected, busy, "
                                    "or not a video device)")
        if isinstance(self.device, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def read(self, timeout: float) -> Frame:
        if self._cap is None:
            raise CameraError("camera is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"camera {self.device!r} returned no frame")
        self._seq += 1
        pos = self._cap.get(0)  # CAP_PROP_POS_MSEC; 0 for live cameras
        return Frame(to_grey(image), time.monotonic(), self._seq, pos if pos > 0 else None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


