"""Face crops framed like FER2013's, and a check that a frame carries a picture at all."""
from __future__ import annotations

import numpy as np

from moodbox.vision.detector import Box


def crop_face(grey: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """Square crop around `box` grown by `margin` per side, padded by edge replication
    where it leaves the frame, resized to size x size (uint8)."""
    import cv2

    side = int(round(max(box.w, box.h) * (1.0 + 2.0 * margin)))
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    x1, y1 = x0 + side, y0 + side
    h, w = grey.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    face = grey[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interp)


def frame_is_usable(grey: np.ndarray) -> bool:
    """False for frames that carry no picture: all black, saturated or flat."""
    if grey.size == 0:
        return False
    sample = grey[::4, ::4]
    mean, std = float(sample.mean()), float(sample.std())
    return 8.0 <= mean <= 247.0 and std >= 4.0
