"""The face detector interface: boxes in frame pixels, largest first; one plugin per file."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from moodbox.config import FacesConfig


class DetectorError(Exception):
    """The face detector cannot be built; the message says how to fix it."""


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def iou(self, other: "Box") -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]



class FaceDetector(ABC):
    """Finds faces in a greyscale frame. `detect` returns boxes in full-frame pixels,
    largest first; `reset` forgets what the previous frames showed (for stills);
    `last_mode` says how the last frame was searched (full, roi, reuse, idle)."""

    name = "detector"
    last_mode = "full"

    @abstractmethod
    def detect(self, grey: np.ndarray) -> list[Box]: ...

    @abstractmethod
    def reset(self) -> None: ...


def make_detector(cfg: FacesConfig) -> FaceDetector:
    """The configured face detector."""
    from moodbox.vision.haar import HaarDetector

    return HaarDetector(cfg)
