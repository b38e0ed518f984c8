"""The face detector interface: boxes in frame pixels, largest first; one plugin per file.

`TrackingDetector` holds the tricks every plugin shares (search near the last face
first, reuse boxes on the frames in between, search an empty room only every Nth
frame); a plugin supplies only `_detect_full` and `_detect_roi`. `make_detector` picks
the plugin named by faces.detector and falls back to Haar where OpenCV lacks YuNet.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from moodbox.config import FacesConfig

logger = logging.getLogger(__name__)


class DetectorError(Exception):
    """The face detector cannot be built; the message says how to fix it."""


@dataclass(frozen=True)
class Box:
    """A face box in frame pixels; `score` is the detector's confidence (1.0 for Haar,
    which gives none); `landmarks` are (x, y) points: right eye, left eye, nose tip,
    right and left mouth corner (the subject's right and left), empty for Haar."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] = ()

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


@dataclass(frozen=True)
class Framing:
    """Where FER2013's square face frame sits relative to a detector's box, measured per
    detector (workshop/measure_crop.py): its side is `scale` x the box's longer side, its
    centre is shifted by (dx, dy) x the box's longer side from the box's centre."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0


class FaceDetector(ABC):
    """Finds faces in a greyscale frame. `detect` returns boxes in full-frame pixels,
    largest first; `reset` forgets what the previous frames showed (for stills);
    `last_mode` says how the last frame was searched (full, roi, reuse, idle)."""

    name = "detector"
    last_mode = "full"
    framing = Framing()  # how FER2013 frames a face relative to this detector's box

    @abstractmethod
    def detect(self, grey: np.ndarray) -> list[Box]: ...

    @abstractmethod
    def reset(self) -> None: ...

    def describe(self) -> str:
        """One line for the log: which detector runs, with what."""
        return self.name


class TrackingDetector(FaceDetector):
    """A detector plus the shared tricks: with `roi` on it first searches a window
    around the previous face and falls back to the whole frame when nothing is found
    there; with `detect_every` > 1 the previous boxes are reused on the frames in
    between; with nobody in view the whole frame is searched only every `idle_every`th
    frame. With faces.listeners "all" every search is a full one (the window near the
    last face would lose the others). With faces.mirror_retry a full search that finds
    nobody looks once more at the mirror image (detectors are not symmetric: it finds
    a quarter of the faces the first look missed)."""

    def __init__(self, cfg: FacesConfig):
        self.cfg = cfg
        self._last: list[Box] = []
        self._reused = 0
        self._idle = cfg.idle_every  # the first frame is searched
        self.last_mode = "full"

    def reset(self) -> None:
        self._last = []
        self._idle = self.cfg.idle_every  # the next call searches at once

    def detect(self, grey: np.ndarray) -> list[Box]:
        if self._last and self._reused < self.cfg.detect_every - 1:
            self._reused += 1
            self.last_mode = "reuse"
            return list(self._last)
        if not self._last and self._idle < self.cfg.idle_every - 1:
            self._idle += 1  # nobody was in view: skip this full-frame search
            self.last_mode = "idle"
            return []
        self._reused = self._idle = 0
        boxes: list[Box] = []
        if self.cfg.roi and self._last and self.cfg.listeners == "largest":
            boxes = self._detect_roi(grey, self._last[0])
            self.last_mode = "roi"
        if not boxes:
            boxes = self._detect_full(grey)
            self.last_mode = "full"
        if not boxes and self.cfg.mirror_retry:
            boxes = mirror_boxes(self._detect_full(grey[:, ::-1].copy()), grey.shape[1])
            self.last_mode = "mirror"
        boxes = [b for b in boxes if min(b.w, b.h) >= self.cfg.min_face_px]
        boxes.sort(key=lambda b: (-b.area, b.x, b.y))
        self._last = boxes
        return boxes

    @abstractmethod
    def _detect_full(self, grey: np.ndarray) -> list[Box]: ...

    @abstractmethod
    def _detect_roi(self, grey: np.ndarray, around: Box) -> list[Box]: ...


def mirror_boxes(boxes: list[Box], width: int) -> list[Box]:
    """Boxes found in a horizontally mirrored frame -> boxes in the frame itself (the
    landmarks mirrored too, so the subject's right eye comes first again)."""
    out = []
    for b in boxes:
        marks = tuple((width - x, y) for x, y in b.landmarks)
        if len(marks) == 5:
            marks = (marks[1], marks[0], marks[2], marks[4], marks[3])
        out.append(Box(width - b.x - b.w, b.y, b.w, b.h, b.score, marks))
    return out


def roi_window(shape: tuple[int, ...], around: Box, grow: float) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) around a face box grown by `grow` of its size per side,
    clipped to the frame."""
    h, w = shape[:2]
    x0 = max(0, int(around.x - around.w * grow))
    y0 = max(0, int(around.y - around.h * grow))
    x1 = min(w, int(around.x + around.w * (1 + grow)))
    y1 = min(h, int(around.y + around.h * (1 + grow)))
    return x0, y0, x1, y1


def make_detector(cfg: FacesConfig) -> FaceDetector:
    """The detector named by faces.detector; YuNet falls back to Haar (with one log
    line) where this OpenCV build has no FaceDetectorYN."""
    from moodbox.vision.haar import HaarDetector

    if cfg.detector == "yunet":
        from moodbox.vision.yunet import YuNetDetector, yunet_missing_reason

        missing = yunet_missing_reason()
        if missing:
            logger.warning("face detector: %s; falling back to haar (fewer faces found, "
                           "slower)", missing)
            detector: FaceDetector = HaarDetector(cfg)
        else:
            detector = YuNetDetector(cfg)
    elif cfg.detector == "blazeface":
        from moodbox.vision.blazeface import BlazeFaceDetector

        detector = BlazeFaceDetector(cfg)
    else:
        detector = HaarDetector(cfg)
    logger.info("face detector: %s", detector.describe())
    return detector
