"""Face crops framed like FER2013's, and a check that a frame carries a picture at all."""
from __future__ import annotations

import math
import numpy as np

from moodbox.vision.detector import Box, Framing


def eye_angle(box: Box) -> float:
    """The tilt of the line between the eyes, in degrees (0 when level or no landmarks)."""
    if len(box.landmarks) < 2:
        return 0.0
    (rx, ry), (lx, ly) = box.landmarks[0], box.landmarks[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def crop_face(grey: np.ndarray, box: Box, margin: float, size: int,
              framing: Framing = Framing(), align: bool = False) -> np.ndarray:
    """Square crop framed as FER2013 frames faces (`framing` of the detector's box), grown
    by `margin` per side, padded by edge replication where it leaves the frame, resized to
    size x size (uint8). With `align` and eye landmarks, the crop is turned about the
    face centre so the eyes are level."""
    import cv2

    long_side = max(box.w, box.h)
    side = int(round(long_side * framing.scale * (1.0 + 2.0 * margin)))
    side = max(side, 1)
    cx = box.x + box.w / 2.0 + framing.dx * long_side
    cy = box.y + box.h / 2.0 + framing.dy * long_side
    angle = eye_angle(box) if align else 0.0
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    if abs(angle) >= 1.0:
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        m[0, 2] += side / 2.0 - cx
        m[1, 2] += side / 2.0 - cy
        face = cv2.warpAffine(grey, m, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(face, (size, size), interpolation=interp)
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    x1, y1 = x0 + side, y0 + side
    h, w = grey.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    face = grey[y0:y1, x0:x1]
    return cv2.resize(face, (size, size), interpolation=interp)


def frame_is_usable(grey: np.ndarray) -> bool:
    """False for frames that carry no picture: all black, saturated or flat."""
    if grey.size == 0:
        return False
    sample = grey[::4, ::4]
    mean, std = float(sample.mean()), float(sample.std())
    return 8.0 <= mean <= 247.0 and std >= 4.0
