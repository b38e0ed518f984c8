"""MediaPipe BlazeFace (short or full range) on the LiteRT interpreter, as a face detector.

The model (Apache-2.0, from the mediapipe 0.10.21 wheel, shipped in models/) outputs,
per SSD anchor, a box offset and a score logit; this module generates MediaPipe's
anchors, decodes the boxes and merges overlapping ones with weighted non-maximum
suppression, as MediaPipe's face_detection graph does. The frame is letterboxed to a
square (black padding right and bottom) and given as three equal channels in [-1, 1].
It was measured against YuNet (workshop/measure_detectors.py) and is not the default:
it misses small faces YuNet finds (models/MODEL_CARD.md).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodbox import assets, files
from moodbox.config import FacesConfig
from moodbox.vision.detector import Box, DetectorError, Framing, TrackingDetector

logger = logging.getLogger(__name__)

NMS_MIN_IOU = 0.3  # MediaPipe's min_suppression_threshold


@dataclass(frozen=True)
class AnchorLayout:
    """A BlazeFace variant: square input side and, per feature-map stride, anchors per cell
    (MediaPipe's SsdAnchorsCalculator with fixed-size anchors; the short-range model's
    three stride-16 layers merge into 6 anchors per cell)."""

    input_size: int
    strides: tuple[tuple[int, int], ...]


LAYOUTS = {128: AnchorLayout(128, ((8, 2), (16, 6))),   # short range (faces within ~2 m)
           192: AnchorLayout(192, ((4, 1),))}           # full range (up to ~5 m)


def anchor_centres(layout: AnchorLayout) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in [0, 1], in the model's output order."""
    out = []
    for stride, per_cell in layout.strides:
        n = layout.input_size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def iou_one_to_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` (x0, y0, x1, y1) with each row of `b`."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray,
                 min_iou: float = NMS_MIN_IOU) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: the best box and every box overlapping it by `min_iou`
    or more merge into their score-weighted mean, with the best score; repeat."""
    order = np.argsort(-scores)
    out = []
    while order.size:
        best = order[0]
        overlap = iou_one_to_many(boxes[best], boxes[order]) >= min_iou
        group = order[overlap]
        weights = scores[group][:, None]
        out.append(((boxes[group] * weights).sum(axis=0) / weights.sum(), float(scores[best])))
        order = order[~overlap]
    return out


def decode(regressors: np.ndarray, logits: np.ndarray, centres: np.ndarray, input_size: int,
           threshold: float) -> list[tuple[np.ndarray, float]]:
    """Raw outputs -> [(x0, y0, x1, y1 in [0, 1] of the square input, score)], merged.

    regressors: (N, 16) per anchor: centre offset x, y and width, height in input pixels,
    then six keypoints (unused here); logits: (N,) or (N, 1) score logits."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -80, 80)))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return []
    r = regressors[keep, :4].astype(np.float64) / input_size
    cx, cy = r[:, 0] + centres[keep, 0], r[:, 1] + centres[keep, 1]
    half_w, half_h = r[:, 2] / 2, r[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    return weighted_nms(boxes, scores[keep])


class BlazeFaceDetector(TrackingDetector):
    """BlazeFace through the TFLite interpreter the classifier uses (built once)."""

    name = "blazeface"
    # BlazeFace's box is about Haar's width and sits a little lower (SOURCES.md in
    # ../shared/models): workshop/measure_crop.py --detector blazeface measured this
    framing = Framing(scale=1.134, dx=0.008, dy=-0.038)

    def __init__(self, cfg: FacesConfig):
        super().__init__(cfg)
        from moodbox.vision.classifier import ModelError, load_interpreter_class

        self.model = assets.resolve_builtin(cfg.blazeface_model) or Path(cfg.blazeface_model)
        k = files.kind(self.model)
        if k != files.FILE:
            what = {files.MISSING: "does not exist", files.DENIED: "cannot be reached"}.get(
                k, "is not a file")
            raise DetectorError(f"BlazeFace model {self.model} {what}; set faces.blazeface_model "
                                "to builtin:models/blazeface_full_range_sparse.tflite")
        try:
            with files.open_regular(self.model, 16 * 1024 * 1024) as fh:
                data = fh.read(16 * 1024 * 1024 + 1)
            interp_cls, self.runtime = load_interpreter_class()
            self._interp = interp_cls(model_content=data, num_threads=1)
            self._interp.allocate_tensors()
        except (OSError, ValueError, RuntimeError, ModelError) as exc:
            raise DetectorError(f"BlazeFace model {self.model} cannot be loaded "
                                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                                "; reinstall it or set faces.detector: yunet") from None
        self._in = self._interp.get_input_details()[0]
        outs = self._interp.get_output_details()
        try:
            self._reg = next(o for o in outs if o["shape"][-1] == 16)
            self._cls = next(o for o in outs if o["shape"][-1] == 1)
        except StopIteration:
            raise DetectorError(f"{self.model} is not a BlazeFace model (no box and score "
                                "outputs); set faces.blazeface_model") from None
        size = int(self._in["shape"][1])
        if size not in LAYOUTS:
            raise DetectorError(f"{self.model} takes {size}x{size} input; BlazeFace short range "
                                "takes 128 and full range 192")
        self.layout = LAYOUTS[size]
        self.centres = anchor_centres(self.layout)
        if len(self.centres) != int(self._reg["shape"][1]):
            raise DetectorError(f"{self.model} has {self._reg['shape'][1]} anchors, not the "
                                f"{len(self.centres)} of BlazeFace at {size} px")

    def describe(self) -> str:
        return (f"blazeface ({self.model.name}, {self.layout.input_size} px, score >= "
                f"{self.cfg.score_threshold:g}, {self.runtime})")

    def _detect_full(self, grey: np.ndarray) -> list[Box]:
        import cv2

        h, w = grey.shape[:2]
        side = max(h, w)
        square = cv2.copyMakeBorder(grey, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT, value=0)
        n = self.layout.input_size
        small = cv2.resize(square, (n, n), interpolation=cv2.INTER_AREA if side > n else cv2.INTER_LINEAR)
        x = np.repeat((small.astype(np.float32) / 127.5 - 1.0)[None, :, :, None], 3, axis=3)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        found = decode(self._interp.get_tensor(self._reg["index"])[0],
                       self._interp.get_tensor(self._cls["index"])[0], self.centres, n,
                       self.cfg.score_threshold)
        boxes = []
        for (x0, y0, x1, y1), score in found:
            bx0, by0 = max(0.0, x0 * side), max(0.0, y0 * side)
            bx1, by1 = min(float(w), x1 * side), min(float(h), y1 * side)
            if bx1 - bx0 >= 2 and by1 - by0 >= 2:
                boxes.append(Box(int(round(bx0)), int(round(by0)), int(round(bx1 - bx0)),
                                 int(round(by1 - by0)), score=round(score, 4)))
        return boxes

    def _detect_roi(self, grey: np.ndarray, around: Box) -> list[Box]:
        return []  # one full search at the model's input size costs no more than a window
