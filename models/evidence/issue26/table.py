#!/usr/bin/env python3
"""Print the issue 26 arms table of the model card from the evaluation JSONs in this folder."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ARMS = ("classic-s26", "classic-s26-swa", "classic-s27", "classic-s27-swa",
        "camera-mixup-s26", "camera-mixup-s26-swa", "camera-mixup-s27", "camera-mixup-s27-swa",
        "camera-mixup-bf16-s26", "camera-mixup-bf16-s26-swa",
        "camera-ferplus-mixup-s26", "camera-ferplus-mixup-s26-swa",
        "camera-mixup-online3-s26", "camera-mixup-online3-s26-swa")


def cost(arm: str) -> str:
    if arm.endswith("-swa"):
        return "mean of epochs " + ("2-4" if "online" in arm else "4-6")
    rows = list(csv.DictReader((HERE / arm / "model.log.csv").open()))
    return f"{len(rows)} ep, {sum(float(r['seconds']) for r in rows) / 60:.0f} min"


def row(name: str, path: Path, spent: str = "") -> str:
    d = json.loads(path.read_text())
    c = d["cross_domain"]
    recall = "/".join(f"{d['per_class'][k]['recall']:.2f}" for k in CLASSES)
    return (f"| {name} | {d['accuracy'] * 100:.2f}% | {d['accuracy_flip'] * 100:.2f}% | {recall} | "
            f"{d['balanced_accuracy'] * 100:.2f}% / {d['balanced_accuracy_flip'] * 100:.2f}% | "
            f"{c['accuracy'] * 100:.2f}% / {c['accuracy_flip'] * 100:.2f}% | "
            f"{c['balanced_accuracy'] * 100:.2f}% | "
            f"{c['recall']['disgust']:.2f} / {c['recall']['fear']:.2f} | {spent} |")


def main() -> int:
    print("| model | val one view | val flip | val recall ang/dis/fea/hap/sad/sur/neu | "
          "val balanced (one / flip) | SFEW (one / flip) | SFEW balanced | "
          "SFEW disgust / fear recall | cost |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    print(row("**shipped**, int8", HERE / "shipped" / "eval_int8.json"))
    print(row("shipped, float", HERE / "shipped" / "eval_float.json"))
    for arm in ARMS:
        for kind in ("int8", "float"):
            path = HERE / arm / f"eval_{kind}.json"
            if path.is_file():
                print(row(f"{arm}, {kind}", path, cost(arm) if kind == "int8" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
