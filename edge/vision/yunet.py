"""YuNet (libfacedetection, via OpenCV's FaceDetectorYN) as a face detector: the default.

A small learned detector (~53 k weights, ONNX, shipped in models/) that finds turned,
tilted and looking-down faces Haar misses, gives a score and five landmarks per face,
and costs a fraction of a Haar search. It runs on the greyscale frame (as three equal
channels), shrunk to faces.detect_width; near the last face it searches a small fixed
window first (TrackingDetector).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from moodbox import assets, files
from moodbox.config import FacesConfig
from moodbox.vision.detector import Box, DetectorError, Framing, TrackingDetector

logger = logging.getLogger(__name__)

NMS_THRESHOLD = 0.3
TOP_K = 50


def yunet_missing_reason() -> str:
    """Why YuNet cannot run with this OpenCV ("" when it can)."""
    try:
        import cv2
    except ImportError:
        return "OpenCV is not installed"
    if not hasattr(cv2, "FaceDetectorYN"):
        return f"OpenCV {cv2.__version__} has no FaceDetectorYN (YuNet needs OpenCV >= 4.8)"
    if _version(cv2.__version__) < (4, 8):
        return (f"OpenCV {cv2.__version__}'s FaceDetectorYN cannot run the 2023mar YuNet "
                "model (it needs OpenCV >= 4.8)")
    return ""


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _boxes(found: np.ndarray | None, scale: float, ox: float, oy: float) -> list[Box]:
    """FaceDetectorYN rows (x, y, w, h, 5 landmark x/y pairs, score) -> frame Boxes."""
    if found is None:
        return []
    out = []
    for row in found:
        x, y, w, h = (float(v) / scale for v in row[:4])
        marks = tuple((float(row[4 + 2 * i]) / scale + ox, float(row[5 + 2 * i]) / scale + oy)
                      for i in range(5))
        out.append(Box(int(round(x + ox)), int(round(y + oy)), int(round(w)), int(round(h)),
                       score=round(float(row[14]), 4), landmarks=marks))
    return out


class YuNetDetector(TrackingDetector):
    """cv2.FaceDetectorYN with the shipped YuNet model; boxes carry score and landmarks."""

    name = "yunet"
    framing = Framing(scale=0.973)  # workshop/measure_crop.py --detector yunet
    ROI_SIDE = 96        # the window near the last face is searched at this size ...
    ROI_GROW = 0.6       # ... and spans the last face grown by this much per side

    def __init__(self, cfg: FacesConfig):
        missing = yunet_missing_reason()
        if missing:
            raise DetectorError(f"{missing}; pip install 'opencv-python-headless>=4.8,<5' "
                                "or set faces.detector: haar")
        import cv2

        super().__init__(cfg)
        self._cv2 = cv2
        self.model = assets.resolve_builtin(cfg.yunet_model) or Path(cfg.yunet_model)
        k = files.kind(self.model)
        if k == files.DENIED:
            raise DetectorError(f"YuNet model {self.model} cannot be reached: "
                                f"{files.describe_denied(self.model)}")
        if k != files.FILE:
            what = "does not exist" if k == files.MISSING else "is not a file"
            raise DetectorError(f"YuNet model {self.model} {what}; set faces.yunet_model "
                                "to the shipped builtin:models/face_detection_yunet_2023mar.onnx")
        try:
            files.open_regular(self.model, 64 * 1024 * 1024).close()
        except OSError as exc:
            raise DetectorError(f"YuNet model {self.model} cannot be used: "
                                f"{files.problem(exc)}") from None
        self._full = self._create((320, 240))
        self._full_size = (320, 240)
        self._roi = self._create((self.ROI_SIDE, self.ROI_SIDE))

    def _create(self, size: tuple[int, int]):
        try:
            return self._cv2.FaceDetectorYN.create(str(self.model), "", size,
                                                   self.cfg.score_threshold, NMS_THRESHOLD, TOP_K)
        except (self._cv2.error, SystemError) as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
            raise DetectorError(f"YuNet model {self.model} cannot be loaded ({first}); reinstall "
                                "it or set faces.detector: haar") from None

    def describe(self) -> str:
        return (f"yunet ({self.model.name}, score >= {self.cfg.score_threshold:g}, OpenCV "
                f"{self._cv2.__version__})")

    def _run(self, net, bgr: np.ndarray) -> np.ndarray | None:
        _, found = net.detect(bgr)
        return found

    def _detect_full(self, grey: np.ndarray) -> list[Box]:
        cv2 = self._cv2
        scale = min(1.0, self.cfg.detect_width / float(grey.shape[1]))
        small = grey if scale >= 1.0 else cv2.resize(
            grey, (max(1, int(round(grey.shape[1] * scale))), max(1, int(round(grey.shape[0] * scale)))),
            interpolation=cv2.INTER_AREA)
        size = (small.shape[1], small.shape[0])
        if size != self._full_size:
            self._full.setInputSize(size)
            self._full_size = size
        return _boxes(self._run(self._full, cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)), scale, 0, 0)

    def _detect_roi(self, grey: np.ndarray, around: Box) -> list[Box]:
        """Search a square window around the last face, at ROI_SIDE pixels: the face
        then spans ~ROI_SIDE / 2.2 px, plenty for YuNet and a fraction of a full search."""
        cv2 = self._cv2
        side = int(round(max(around.w, around.h) * (1 + 2 * self.ROI_GROW)))
        if side < 16:
            return []
        cx, cy = around.x + around.w / 2.0, around.y + around.h / 2.0
        x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
        h, w = grey.shape[:2]
        pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
        src = grey
        if pad:
            src = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        window = src[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
        scale = self.ROI_SIDE / float(side)
        small = cv2.resize(window, (self.ROI_SIDE, self.ROI_SIDE),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        boxes = _boxes(self._run(self._roi, cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)), scale, x0, y0)
        # a face cut by the window edge is found again by the full search instead
        return [b for b in boxes if b.w >= 0.5 * around.w]
