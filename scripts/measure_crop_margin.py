#!/usr/bin/env python3
"""Measure how FER2013 faces are cropped relative to OpenCV's Haar face box.

Runs the same Haar cascade the daemon uses on FER2013 faces (padded with their mean
grey and upscaled 4x so the detector has context) and reports the detected box size
relative to the 48x48 frame. faces.margin in config.yaml follows from it:
margin = (1 / ratio - 1) / 2 per side.

    python scripts/measure_crop_margin.py --data ../shared/data/fer2013/val.npz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/fer2013/val.npz")
    ap.add_argument("--limit", type=int, default=1500)
    args = ap.parse_args()
    import cv2

    from moodbox.converter.data import DataError, load_npz
    from moodbox.vision.haar import find_cascade

    try:
        faces = load_npz(args.data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cascade = cv2.CascadeClassifier(str(find_cascade()))
    ratios, offsets = [], []
    for img in faces.x[: args.limit]:
        pad, up = 24, 4
        big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(img.mean()))
        big = cv2.resize(big, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        found = cascade.detectMultiScale(big, 1.05, 5, minSize=(60, 60))
        if len(found) == 0:
            continue
        x, y, w, h = max(found, key=lambda b: b[2] * b[3])
        side = img.shape[0]
        ratios.append(w / up / side)
        offsets.append(((x + w / 2) / up - pad - side / 2, (y + h / 2) / up - pad - side / 2))
    r = np.array(ratios)
    o = np.array(offsets)
    print(f"faces found: {len(r)} of {min(args.limit, len(faces))}")
    print(f"Haar box / FER2013 frame: median {np.median(r):.3f} (IQR {np.percentile(r, 25):.3f}-"
          f"{np.percentile(r, 75):.3f})")
    print(f"box centre offset (px of 48): x {np.median(o[:, 0]):+.2f}, y {np.median(o[:, 1]):+.2f}")
    print(f"=> faces.margin per side: {(1 / np.median(r) - 1) / 2:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
