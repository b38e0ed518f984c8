"""Which face to follow when several are in view: the largest, without flipping between two."""
from __future__ import annotations

from moodbox.vision.detector import Box


class FaceSelector:
    """Chooses the face to follow: the largest, but the same person keeps the choice
    while their box still overlaps and is not clearly smaller than the largest (so two
    similar faces do not flip frame to frame). Pure: no clock, no OpenCV."""

    def __init__(self, keep_ratio: float = 0.7, min_iou: float = 0.3):
        self.keep_ratio, self.min_iou = keep_ratio, min_iou
        self._current: Box | None = None

    def choose(self, boxes: list[Box]) -> Box | None:
        if not boxes:
            self._current = None
            return None
        largest = max(boxes, key=lambda b: (b.area, -b.x, -b.y))
        chosen = largest
        if self._current is not None:
            same = max(boxes, key=lambda b: b.iou(self._current))
            if same.iou(self._current) >= self.min_iou and same.area >= self.keep_ratio * largest.area:
                chosen = same
        self._current = chosen
        return chosen
