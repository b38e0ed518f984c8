#!/usr/bin/env python3
"""A rough measurement of MediaPipe BlazeFace (short and full range) against the shipped
YuNet on the same frames, to decide whether BlazeFace earns a plugin. Not shipped: the
anchors, decoding and NMS below are the minimum to count faces and time them.

Frames as scripts/measure_detectors.py makes them: the shared clips at 320 px wide, and
FER2013 val faces placed in 320x256 frames. The models come from ../shared/models
(SOURCES.md there). One thread.

    python scripts/measure_blazeface.py --val-limit 1000
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# MediaPipe's face_detection_{short,full}_range graphs: input size, anchor grid per stride,
# anchors per cell (the short range model merges its three stride-16 layers: 6 per cell)
MODELS = {
    "blazeface short range": ("blazeface_short_range.tflite", 128, ((8, 2), (16, 6))),
    "blazeface full range": ("blazeface_full_range_sparse.tflite", 192, ((4, 1),)),
}


def anchors(size: int, layout) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], MediaPipe's SSD layout with fixed-size anchors."""
    out = []
    for stride, per_cell in layout:
        n = size // stride
        for y in range(n):
            for x in range(n):
                out += [((x + 0.5) / n, (y + 0.5) / n)] * per_cell
    return np.array(out, dtype=np.float32)


def decode(raw: np.ndarray, logits: np.ndarray, centres: np.ndarray, size: int,
           threshold: float) -> list[tuple[float, float, float, float, float]]:
    """Boxes (x0, y0, x1, y1 in [0, 1], score) above `threshold`, after weighted NMS."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -80, 80)))
    keep = np.where(scores >= threshold)[0]
    if keep.size == 0:
        return []
    r = raw[keep] / size
    cx, cy = r[:, 0] + centres[keep, 0], r[:, 1] + centres[keep, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return weighted_nms(boxes, scores[keep])


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_min: float = 0.3):
    order = list(np.argsort(-scores))
    out = []
    while order:
        best = order[0]
        ious = iou(boxes[best], boxes[order])
        group = [order[i] for i in np.where(ious >= iou_min)[0]]
        weights = scores[group][:, None]
        merged = (boxes[group] * weights).sum(axis=0) / weights.sum()
        out.append((*merged.tolist(), float(scores[best])))
        order = [o for o in order if o not in group]
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


class BlazeFace:
    def __init__(self, path: Path, size: int, layout, threshold: float = 0.5):
        from moodbox.vision.classifier import load_interpreter_class

        interp_cls, _ = load_interpreter_class()
        self.interp = interp_cls(model_path=str(path), num_threads=1)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        outs = self.interp.get_output_details()
        self.reg = next(o for o in outs if o["shape"][-1] == 16)
        self.cls = next(o for o in outs if o["shape"][-1] == 1)
        self.size, self.threshold = size, threshold
        self.centres = anchors(size, layout)
        assert len(self.centres) == self.reg["shape"][1], "anchor layout does not match the model"

    def detect(self, grey: np.ndarray) -> list:
        """Faces in a greyscale frame, letterboxed to a square as MediaPipe does."""
        import cv2

        h, w = grey.shape
        side = max(h, w)
        square = cv2.copyMakeBorder(grey, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT, value=0)
        x = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        x = np.repeat((x.astype(np.float32) / 127.5 - 1.0)[None, :, :, None], 3, axis=3)
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        raw = self.interp.get_tensor(self.reg["index"])[0]
        logits = self.interp.get_tensor(self.cls["index"])[0]
        return decode(raw, logits, self.centres, self.size, self.threshold)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--faces", default="../shared/data/faces")
    ap.add_argument("--val", default="../shared/data/fer2013/val.npz")
    ap.add_argument("--val-limit", type=int, default=1000)
    args = ap.parse_args()
    import cv2

    from measure_detectors import CLIPS, camera_frames
    from moodbox.commands.bench import place_in_frame
    from moodbox.config import FacesConfig
    from moodbox.converter.data import load_npz
    from moodbox.vision.detector import make_detector

    cv2.setNumThreads(1)
    if not (Path(args.models) / MODELS["blazeface short range"][0]).is_file():
        print(f"error: no BlazeFace models in {args.models}; pass --models", file=sys.stderr)
        return 2
    val = load_npz(args.val)
    frames = {c: camera_frames(Path(args.faces) / c) for c in CLIPS}
    frames["FER2013 val in frames"] = [place_in_frame(f)[0] for f in val.x[: args.val_limit]]
    yunet = make_detector(dataclasses.replace(FacesConfig(), roi=False, idle_every=1))
    detectors = {"yunet (shipped, full search every frame)": lambda g: (yunet.reset(), yunet.detect(g))[1]}
    for name, (file, size, layout) in MODELS.items():
        detectors[name] = BlazeFace(Path(args.models) / file, size, layout).detect
    print("| detector | " + " | ".join(frames) + " | ms per 320 px frame (woman2) |")
    print("|---|" + "---:|" * (len(frames) + 1))
    for name, detect in detectors.items():
        cells, ms = [], 0.0
        for clip, grey_frames in frames.items():
            times, found = [], 0
            for g in grey_frames:
                t0 = time.perf_counter()
                found += bool(detect(g))
                times.append((time.perf_counter() - t0) * 1e3)
            if clip == "woman2.mp4":
                ms = float(np.median(times))
            cells.append(f"{found}/{len(grey_frames)} ({100 * found / len(grey_frames):.1f}%)")
        print(f"| {name} | " + " | ".join(cells) + f" | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
