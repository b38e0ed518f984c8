"""OpenCV's Haar frontal-face cascade as a face detector (the fallback to YuNet)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from moodbox import files
from moodbox.config import FacesConfig
from moodbox.vision.detector import Box, DetectorError, Framing, TrackingDetector, roi_window

logger = logging.getLogger(__name__)

CASCADE_NAME = "haarcascade_frontalface_default.xml"
_SYSTEM_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                        "/usr/local/share/opencv4/haarcascades")


def find_cascade(explicit: str = "") -> Path:
    """The frontal-face cascade: the configured file, OpenCV's own copy, or the system's."""
    if explicit:
        p = Path(explicit)
        k = files.kind(p)
        if k == files.DENIED:
            raise DetectorError(f"face cascade {p} cannot be reached: {files.describe_denied(p)}")
        if k != files.FILE:
            raise DetectorError(f"face cascade {p} does not exist or is not a file; fix "
                                "faces.cascade in config.yaml or leave it empty for OpenCV's own")
        return p
    candidates = []
    try:
        import cv2
        data = getattr(cv2, "data", None)
        if data is not None:
            candidates.append(Path(data.haarcascades) / CASCADE_NAME)
    except ImportError:
        pass
    candidates += [Path(d) / CASCADE_NAME for d in _SYSTEM_CASCADE_DIRS]
    for c in candidates:
        if files.is_file(c):
            return c
    raise DetectorError(f"{CASCADE_NAME} not found (looked in {', '.join(str(c.parent) for c in candidates)}); "
                        "install opencv-python-headless<5 (or apt install opencv-data) or set faces.cascade")


MAX_CASCADE_BYTES = 16 * 1024 * 1024  # OpenCV's frontal-face cascade is 0.9 MiB


def _load_cascade(cv2, path: Path):
    """A CascadeClassifier from a regular file of sane size; DetectorError for anything that is
    not a Haar cascade (OpenCV raises cv2.error, or SystemError for other XML)."""
    try:
        files.open_regular(path, MAX_CASCADE_BYTES).close()
    except OSError as exc:
        raise DetectorError(f"face cascade {path} cannot be used: {files.problem(exc)}") from None
    hint = ("; set faces.cascade to OpenCV's haarcascade_frontalface_default.xml or leave it "
            "empty")
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError) as exc:
        detail = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else "unreadable"
        raise DetectorError(f"face cascade {path} could not be loaded ({detail}){hint}") from None
    if cascade.empty():
        raise DetectorError(f"face cascade {path} could not be loaded (corrupt XML?){hint}")
    return cascade


class HaarDetector(TrackingDetector):
    """Haar frontal-face detector on a downscaled greyscale frame (the fallback where
    OpenCV has no FaceDetectorYN). `detect` returns boxes in full-frame pixels, largest
    first, with the shared tracking tricks of TrackingDetector."""

    name = "haar"
    framing = Framing(scale=1.04)  # workshop/measure_crop.py --detector haar

    def __init__(self, cfg: FacesConfig):
        import cv2
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 "
                                "dropped it); pip install 'opencv-python-headless<5'")
        super().__init__(cfg)
        path = find_cascade(cfg.cascade)
        self._cascade = _load_cascade(cv2, path)
        self._path = path
        self._cv2 = cv2

    def describe(self) -> str:
        return f"haar ({self._path.name}, OpenCV {self._cv2.__version__})"

    ROI_FACE_PX = 56  # in the ROI, shrink so the last face is about this big

    def _detect_roi(self, grey: np.ndarray, around: Box) -> list[Box]:
        """Search a window 2.2x the last face, shrunk so that face is ~56 px, for faces
        between 0.7x and 1.5x its size: far fewer cascade windows than a full search."""
        x0, y0, x1, y1 = roi_window(grey.shape, around, grow=0.6)
        if x1 - x0 < 24 or y1 - y0 < 24:
            return []
        scale = min(1.0, self.ROI_FACE_PX / float(max(1, around.w)),
                    self.cfg.detect_width / float(grey.shape[1]))
        face_px = around.w * scale
        return self._detect_scaled(grey[y0:y1, x0:x1], x0, y0, scale,
                                   min_size=max(20, int(face_px * 0.7)),
                                   max_size=int(face_px * 1.5) + 1)

    def _detect_full(self, grey: np.ndarray) -> list[Box]:
        scale = min(1.0, self.cfg.detect_width / float(grey.shape[1]))
        return self._detect_scaled(grey, 0, 0, scale, min_size=self.cfg.min_size)

    def _detect_scaled(self, grey: np.ndarray, ox: int, oy: int, scale: float,
                       min_size: int, max_size: int = 0) -> list[Box]:
        cv2, cfg = self._cv2, self.cfg
        small = grey if scale >= 1.0 else cv2.resize(
            grey, (max(1, int(grey.shape[1] * scale)), max(1, int(grey.shape[0] * scale))),
            interpolation=cv2.INTER_AREA)
        min_size = min(min_size, small.shape[0], small.shape[1])
        if min_size < 12:
            return []
        kwargs = {"maxSize": (max_size, max_size)} if max_size > min_size else {}
        found = self._cascade.detectMultiScale(small, scaleFactor=cfg.scale_factor,
                                               minNeighbors=cfg.min_neighbors,
                                               minSize=(min_size, min_size), **kwargs)
        return [Box(int(round(x / scale)) + ox, int(round(y / scale)) + oy,
                    int(round(bw / scale)), int(round(bh / scale)))
                for (x, y, bw, bh) in (found if len(found) else [])]
