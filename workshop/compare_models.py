#!/usr/bin/env python3
"""Is model B really better than model A on the same faces? A paired comparison.

    python workshop/compare_models.py A.tflite B.tflite [C ...] [--data ../shared/data/fer2013/val.npz]
    python workshop/compare_models.py A.tflite A.tflite+B.tflite      # an averaged ensemble

For each model after the first, against the first: the accuracy difference one view and
flip-averaged, the faces only one of the two gets right, the exact McNemar test on them
(two-sided p), and each class's recall change with the faces behind it. Two models
scored on one val set are strongly correlated, so this is the test that fits; a
difference of a few tenths of a point on 3,589 faces is usually not evidence.
Models: int8 `.tflite` or float `.keras`, scored by `moodbox-convert evaluate`'s own code;
`A+B[+C]` is the ensemble that averages those models' probabilities (per view).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of the discordant faces at 1/2."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def predictions(model: Path, faces) -> tuple[np.ndarray, np.ndarray]:
    """One view's and the flip-averaged predictions; `A+B` is averaged by predict_views."""
    from moodbox.converter.evaluate import predict_views

    plain, mirror, *_ = predict_views(model, faces)
    return plain.argmax(1), (plain + mirror).argmax(1)


def compare(name_a: str, pred_a: np.ndarray, name_b: str, pred_b: np.ndarray, y: np.ndarray,
            classes) -> list[str]:
    right_a, right_b = pred_a == y, pred_b == y
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    diff = (right_b.mean() - right_a.mean()) * 100
    lines = [f"  accuracy {right_a.mean() * 100:.2f}% -> {right_b.mean() * 100:.2f}% "
             f"({diff:+.2f} points); only {name_a} right: {only_a}, only {name_b} right: "
             f"{only_b}; McNemar p = {mcnemar_p(only_a, only_b):.3f}"]
    for c, cls in enumerate(classes):
        m = y == c
        ra, rb = int(np.sum(right_a & m)), int(np.sum(right_b & m))
        lines.append(f"    {cls:<9} recall {ra / m.sum():.3f} -> {rb / m.sum():.3f} "
                     f"({rb - ra:+d} of {int(m.sum())} faces; McNemar p = "
                     f"{mcnemar_p(int(np.sum(right_a & ~right_b & m)), int(np.sum(right_b & ~right_a & m))):.3f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="the first is the reference")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/fer2013/val.npz",
                    help="NPZ of labelled faces, or an SFEW folder (labels.json, train/, val/)")
    ap.add_argument("--sfew-split", choices=["all", "train", "val"], default="all",
                    help="with an SFEW folder: which split (val when a model trained on train)")
    args = ap.parse_args(argv)
    if len(args.models) < 2:
        ap.error("give at least two models")
    from moodbox.converter.data import DataError, load_npz

    try:
        if args.data.is_dir():
            from moodbox.converter.sfew import load_sfew
            faces = load_sfew(args.data, args.sfew_split)
        else:
            faces = load_npz(args.data)
        from moodbox.converter.evaluate import ensemble_members

        for m in (part for model in args.models for part in ensemble_members(model)):
            if not m.is_file():
                raise DataError(f"{m}: no such model file")
        preds = [predictions(m, faces) for m in args.models]
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ref = args.models[0]
    for model, (plain, flip) in zip(args.models[1:], preds[1:]):
        where = f"{args.data} {args.sfew_split}" if args.data.is_dir() else str(args.data)
        print(f"{model} against {ref} on {where} ({len(faces)} faces)")
        for view, a, b in (("one view", preds[0][0], plain), ("flip-averaged", preds[0][1], flip)):
            print(f" {view}:")
            print("\n".join(compare("A", a, "B", b, faces.y, faces.classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
