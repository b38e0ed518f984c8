"""The camera interface: what a frame is, what a source does, and how cameras fail."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

VIDEO_GROUP_HINT = "add the service user to the 'video' group (sudo usermod -aG video USER) and log in again"


class CameraError(Exception):
    """The camera failed; the grabber closes it and tries again."""


class CameraUnavailable(CameraError):
    """No camera could be opened (not connected, busy, wrong device)."""


class CameraTimeout(CameraError):
    """No frame arrived within the timeout."""


class CameraPermissionError(CameraError):
    """The camera exists but this user may not open it; retrying will not help."""


class EndOfStream(CameraError):
    """A replay source without loop reached its end."""


@dataclass(frozen=True)
class Frame:
    grey: np.ndarray          # uint8 (H, W)
    captured: float           # time.monotonic() when it was read
    seq: int                  # frame counter of the source
    source_ts: float | None   # the source's own timestamp (sensor time, file position)


class FrameSource(ABC):
    """A camera backend. `read` returns one greyscale frame or raises a CameraError
    within about `timeout` seconds; it never blocks forever."""

    name = "camera"
    timeout_is_idle = False  # True when a read timeout means "no frame due yet", not a fault

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self, timeout: float) -> Frame: ...

    @abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        return self.name


def to_grey(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (grey, BGR, BGRA) -> contiguous uint8 greyscale."""
    import cv2

    if image.ndim == 2:
        grey = image
    elif image.ndim == 3 and image.shape[2] == 1:
        grey = image[..., 0]
    elif image.ndim == 3 and image.shape[2] == 3:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        grey = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    else:
        raise CameraError(f"unsupported frame shape {image.shape}")
    if grey.dtype != np.uint8:
        grey = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return np.ascontiguousarray(grey)


