#!/usr/bin/env python3
"""Measure how FER2013 frames faces relative to a detector's box, and what each crop
step does to end-to-end accuracy through the real detector.

FER2013 faces are placed in camera-like frames (moodbox.commands.bench.place_in_frame:
the 48x48 face at 144 px in a 320x256 frame, borders replicated), so the face's own
frame is known exactly. The framing (FER frame side and centre relative to the box) is
measured on TRAIN faces; the accuracy of each step is reported on VAL faces (a missed
face counts as wrong):

  box          the detector's box as it is (square around its longer side)
  in use       the detector's `framing` in moodbox (Haar's: the 2% margin per side it
               shipped with before YuNet, measured by the old measure_crop_margin.py)
  framing      the framing measured here
  + align      turned so the eyes are level (landmarks; YuNet only)
  + flip       probabilities averaged over the crop and its mirror image

    python workshop/measure_crop.py --detector yunet
    python workshop/measure_crop.py --detector haar
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def detect_all(detector, faces: np.ndarray) -> list:
    """The largest box found in each placed face's frame, or None."""
    from moodbox.commands.bench import place_in_frame

    out = []
    for face in faces:
        frame, _ = place_in_frame(face)
        detector.reset()
        boxes = detector.detect(frame)
        out.append(boxes[0] if boxes else None)
    return out


def measure_framing(boxes: list, faces: np.ndarray):
    from moodbox.commands.bench import place_in_frame
    from moodbox.vision.crop import Framing

    scale, dx, dy = [], [], []
    for box, face in zip(boxes, faces):
        if box is None:
            continue
        _, (x, y, side) = place_in_frame(face)
        long_side = max(box.w, box.h)
        scale.append(side / long_side)
        dx.append((x + side / 2 - (box.x + box.w / 2)) / long_side)
        dy.append((y + side / 2 - (box.y + box.h / 2)) / long_side)
    return Framing(round(float(np.median(scale)), 3), round(float(np.median(dx)), 3),
                   round(float(np.median(dy)), 3)), len(scale)


def accuracy(clf, boxes: list, faces: np.ndarray, labels: np.ndarray, framing, align: bool,
             flip: bool) -> float:
    from moodbox.commands.bench import place_in_frame
    from moodbox.vision.crop import crop_face

    right = 0
    for box, face, label in zip(boxes, faces, labels):
        if box is None:
            continue
        frame, _ = place_in_frame(face)
        crop = crop_face(frame, box, 0.0, clf.input_size, framing, align=align)
        probs = clf.probabilities(crop)
        if flip:
            probs = (probs + clf.probabilities(crop[:, ::-1].copy())) / 2.0
        right += int(np.argmax(probs)) == int(label)
    return right / len(labels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="yunet", choices=["yunet", "blazeface", "haar"])
    ap.add_argument("--train", default="../shared/data/fer2013/train.npz")
    ap.add_argument("--val", default="../shared/data/fer2013/val.npz")
    ap.add_argument("--train-limit", type=int, default=3000)
    ap.add_argument("--limit", type=int, default=0, help="val faces (default: all)")
    args = ap.parse_args()
    import cv2

    from moodbox import assets
    from moodbox.config import FacesConfig
    from moodbox.converter.data import DataError, load_npz
    from moodbox.vision.classifier import EmotionClassifier
    from moodbox.vision.crop import Framing
    from moodbox.vision.detector import make_detector

    cv2.setNumThreads(1)
    try:
        train, val = load_npz(args.train), load_npz(args.val)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    detector = make_detector(dataclasses.replace(FacesConfig(), detector=args.detector, roi=False,
                                                 idle_every=1))
    clf = EmotionClassifier(assets.default_model())
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train.x), min(args.train_limit, len(train.x)), replace=False)
    framing, n = measure_framing(detect_all(detector, train.x[pick]), train.x[pick])
    print(f"{detector.describe()}: framing from {n} of {len(pick)} train faces found: "
          f"FER frame side = {framing.scale:.3f} x the box's longer side, centre shift "
          f"dx {framing.dx:+.3f}, dy {framing.dy:+.3f} (x the longer side)")
    print(f"   in use: {detector.framing}")
    xv, yv = (val.x[: args.limit], val.y[: args.limit]) if args.limit else (val.x, val.y)
    boxes = detect_all(detector, xv)
    found = sum(b is not None for b in boxes)
    print(f"val: a face found in {found} of {len(xv)} frames ({100 * found / len(xv):.2f}%)")
    steps = [("box as it is", Framing(), False, False),
             (f"framing in use {detector.framing}", detector.framing, False, False),
             ("measured framing", framing, False, False)]
    if args.detector == "yunet":
        steps.append(("measured framing + align eyes", framing, True, False))
    steps += [("measured framing + flip", framing, False, True)]
    if args.detector == "yunet":
        steps.append(("measured framing + align eyes + flip", framing, True, True))
    print("| crop | end-to-end val accuracy (missed face = wrong) |\n|---|---:|")
    for name, fr, align, flip in steps:
        print(f"| {name} | {100 * accuracy(clf, boxes, xv, yv, fr, align, flip):.2f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
