"""One frame in, the followed face and its emotion out: detector, selector, crop, classifier."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from moodbox.vision.classifier import Emotion, EmotionClassifier
from moodbox.config import FacesConfig
from moodbox.vision.crop import crop_face, frame_is_usable
from moodbox.vision.detector import Box, make_detector
from moodbox.vision.selector import FaceSelector


@dataclass
class VisionResult:
    usable: bool                      # False: black/saturated/flat frame, no decision from it
    boxes: list[Box] = field(default_factory=list)
    chosen: Box | None = None
    emotion: Emotion | None = None
    detect_ms: float = 0.0
    crop_ms: float = 0.0
    infer_ms: float = 0.0


class FaceEmotionPipeline:
    """Detects faces, follows one (largest, stable between frames), classifies its crop."""

    def __init__(self, faces: FacesConfig, classifier: EmotionClassifier):
        self.faces_cfg = faces
        self.detector = make_detector(faces)
        self.selector = FaceSelector()
        self.classifier = classifier

    def process(self, grey: np.ndarray) -> VisionResult:
        if not frame_is_usable(grey):
            self.selector.choose([])
            return VisionResult(usable=False)
        t0 = time.perf_counter()
        boxes = self.detector.detect(grey)
        t1 = time.perf_counter()
        chosen = self.selector.choose(boxes)
        result = VisionResult(usable=True, boxes=boxes, chosen=chosen,
                              detect_ms=(t1 - t0) * 1000.0)
        if chosen is None:
            return result
        face = crop_face(grey, chosen, self.faces_cfg.margin, self.classifier.input_size)
        t2 = time.perf_counter()
        result.crop_ms = (t2 - t1) * 1000.0
        result.emotion = self.classifier.classify(face)
        result.infer_ms = (time.perf_counter() - t2) * 1000.0
        return result

    def classify_all(self, grey: np.ndarray) -> list[tuple[Box, Emotion]]:
        """Every detected face with its emotion, largest first (for stills)."""
        self.detector.reset()
        boxes = self.detector.detect(grey)
        out = []
        for box in boxes:
            face = crop_face(grey, box, self.faces_cfg.margin, self.classifier.input_size)
            out.append((box, self.classifier.classify(face)))
        return out
