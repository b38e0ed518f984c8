"""One frame in, the followed face (or every listener) and their emotion out: detector,
selector, crop, classifier, listener fusion."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from moodbox.config import FacesConfig
from moodbox.vision.classifier import Classifier, Emotion
from moodbox.vision.crop import crop_face, frame_is_usable
from moodbox.vision.detector import Box, make_detector
from moodbox.vision.listeners import fuse_listeners
from moodbox.vision.selector import FaceSelector


@dataclass
class VisionResult:
    usable: bool                      # False: black/saturated/flat frame, no decision from it
    boxes: list[Box] = field(default_factory=list)
    chosen: Box | None = None
    emotion: Emotion | None = None    # the chosen face's emotion
    listeners: list[tuple[Box, Emotion]] = field(default_factory=list)  # every face classified
    detect_ms: float = 0.0
    crop_ms: float = 0.0
    infer_ms: float = 0.0

    @property
    def probs(self) -> np.ndarray | None:
        """What drives the mood: every listener's probabilities fused by size and score
        (faces.listeners: all), else the chosen face's; None without a face."""
        if len(self.listeners) > 1:
            return fuse_listeners([(b, e.probs) for b, e in self.listeners])
        return self.emotion.probs if self.emotion is not None else None


class FaceEmotionPipeline:
    """Detects faces, follows one (largest, stable between frames) or, with
    faces.listeners "all", classifies every face; crops each as FER2013 was framed."""

    def __init__(self, faces: FacesConfig, classifier: Classifier):
        self.faces_cfg = faces
        self.detector = make_detector(faces)
        self.selector = FaceSelector()
        self.classifier = classifier

    def crop(self, grey: np.ndarray, box: Box) -> np.ndarray:
        """The classifier's input for one face: framed as FER2013 frames faces."""
        return crop_face(grey, box, self.faces_cfg.margin, self.classifier.input_size,
                         self.detector.framing)

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
        everyone = self.faces_cfg.listeners == "all"
        faces = [(b, self.crop(grey, b)) for b in (boxes if everyone else [chosen])]
        t2 = time.perf_counter()
        result.crop_ms = (t2 - t1) * 1000.0
        result.listeners = [(b, self.classifier.classify(f)) for b, f in faces]
        result.emotion = next(e for b, e in result.listeners if b is chosen)
        result.infer_ms = (time.perf_counter() - t2) * 1000.0
        return result

    def classify_all(self, grey: np.ndarray) -> list[tuple[Box, Emotion]]:
        """Every detected face with its emotion, largest first (for stills)."""
        self.detector.reset()
        return [(box, self.classifier.classify(self.crop(grey, box)))
                for box in self.detector.detect(grey)]
