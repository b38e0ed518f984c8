#!/usr/bin/env python3
"""Measure each face detector on the same frames: the shared clips and photos, and
FER2013 val faces placed in camera-like frames (end-to-end accuracy through the whole
pipeline, a missed face counted wrong).

Clips are shrunk to the camera's 320 px and run as the daemon runs them (search near the
last face, idle every 3rd frame when nobody is in view); photos are run as stills
(`moodbox classify`'s detection width); val faces are placed as
moodbox.commands.bench.place_in_frame does (144 px in 320x256, borders replicated), each
frame a still. One thread.

    python workshop/measure_detectors.py                 # everything
    python workshop/measure_detectors.py --val-limit 500 # quicker
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIPS = ("woman2.mp4", "fer_test.mp4", "short_hamilton_clip.mp4")
PHOTOS = {"no-faces.jpg": 0, "biden.jpg": 1, "obama.jpg": 1, "justin.jpg": 1,
          "obama-720p.jpg": 1, "lin-manuel-miranda.png": 1, "two_people.jpg": 2,
          "group_selfie.jpg": 6}
# name -> (faces settings, flip): what ran before issue 9, and the choices since
SETUPS = {
    "haar (before: margin 2%, one view)": ({"detector": "haar", "mirror_retry": False}, False),
    "yunet score 0.7, one view": ({"detector": "yunet", "score_threshold": 0.7,
                                   "mirror_retry": False}, False),
    "yunet, one view": ({"detector": "yunet", "mirror_retry": False}, False),
    "yunet + flip": ({"detector": "yunet", "mirror_retry": False}, True),
    "yunet + flip + mirror retry (shipped)": ({"detector": "yunet"}, True),
    "haar + flip + mirror retry": ({"detector": "haar"}, True),
    "blazeface full range + flip + mirror retry": ({"detector": "blazeface"}, True),
    "blazeface short range + flip + mirror retry": (
        {"detector": "blazeface", "blazeface_model": "builtin:models/blazeface_short_range.tflite"}, True),
}


def camera_frames(path: Path, width: int = 320) -> list[np.ndarray]:
    import cv2

    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h = int(round(grey.shape[0] * width / grey.shape[1]))
        out.append(cv2.resize(grey, (width, h), interpolation=cv2.INTER_AREA))
    cap.release()
    return out


def run_clip(detector, frames: list[np.ndarray]) -> tuple[int, float]:
    detector.reset()
    found, times = 0, []
    for grey in frames:
        t0 = time.perf_counter()
        found += bool(detector.detect(grey))
        times.append((time.perf_counter() - t0) * 1e3)
    return found, float(np.median(times))


def run_val(pipeline, faces, labels) -> tuple[int, int, float]:
    from moodbox.commands.bench import place_in_frame

    found = right = 0
    times = []
    for face, label in zip(faces, labels):
        frame, _ = place_in_frame(face)
        pipeline.detector.reset()
        t0 = time.perf_counter()
        result = pipeline.process(frame)
        times.append((time.perf_counter() - t0) * 1e3)
        if result.emotion is not None:
            found += 1
            right += int(np.argmax(result.probs)) == int(label)
    return found, right, float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default="../shared/data/faces")
    ap.add_argument("--val", default="../shared/data/fer2013/val.npz")
    ap.add_argument("--val-limit", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--only", default="", help="run only the setups whose name contains this")
    args = ap.parse_args()
    import cv2

    from moodbox import assets
    from moodbox.commands.classify import STILL_DETECT_WIDTH, read_grey
    from moodbox.config import FacesConfig
    from moodbox.converter.data import DataError, load_npz
    from moodbox.vision.classifier import EmotionClassifier
    from moodbox.vision.detector import make_detector
    from moodbox.vision.pipeline import FaceEmotionPipeline

    cv2.setNumThreads(1)
    folder = Path(args.faces)
    if not folder.is_dir():
        print(f"error: --faces {folder} is not a folder; pass the shared faces folder",
              file=sys.stderr)
        return 2
    try:
        val = load_npz(args.val)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    xv, yv = (val.x[: args.val_limit], val.y[: args.val_limit]) if args.val_limit else (val.x, val.y)
    clips = {c: camera_frames(folder / c) for c in CLIPS}
    report = {}
    for name, (changes, flip) in SETUPS.items():
        if args.only not in name:
            continue
        cfg = dataclasses.replace(FacesConfig(), **changes)
        row = {"detector": make_detector(cfg).describe(), "flip": flip}
        for clip, frames in clips.items():
            found, ms = run_clip(make_detector(cfg), frames)
            row[clip] = {"with_face": found, "frames": len(frames), "detect_ms": round(ms, 2)}
        still = make_detector(dataclasses.replace(cfg, roi=False,
                                                  detect_width=STILL_DETECT_WIDTH[cfg.detector]))
        row["photos"] = {}
        for photo in PHOTOS:
            still.reset()
            row["photos"][photo] = len(still.detect(read_grey(folder / photo)))
        clf = EmotionClassifier(assets.default_model(), flip=flip)
        pipeline = FaceEmotionPipeline(dataclasses.replace(cfg, roi=False), clf)
        found, right, ms = run_val(pipeline, xv, yv)
        row["val"] = {"frames": len(xv), "with_face": found, "right": right,
                      "accuracy": round(right / len(xv), 4), "pipeline_ms": round(ms, 2)}
        report[name] = row
        print(f"done: {name}", file=sys.stderr)
    print(markdown(report, args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def markdown(report: dict, args) -> str:
    lines = ["| setup | " + " | ".join(f"{c} with a face | {c} detect ms" for c in CLIPS)
             + " | photos: faces found (want) | FER2013 val: with a face | end-to-end accuracy"
             " | val frame ms |",
             "|---|" + "---:|" * (2 * len(CLIPS) + 4)]
    for name, r in report.items():
        clips = " | ".join(f"{r[c]['with_face']}/{r[c]['frames']} ({100 * r[c]['with_face'] / r[c]['frames']:.1f}%)"
                           f" | {r[c]['detect_ms']:.2f}" for c in CLIPS)
        wrong = [f"{p} {n} ({PHOTOS[p]})" for p, n in r["photos"].items() if n != PHOTOS[p]]
        photos = "all as expected" if not wrong else "; ".join(wrong)
        v = r["val"]
        lines.append(f"| {name} | {clips} | {photos} | {v['with_face']}/{v['frames']} "
                     f"({100 * v['with_face'] / v['frames']:.2f}%) | {100 * v['accuracy']:.2f}% | "
                     f"{v['pipeline_ms']:.2f} |")
    lines.append("")
    lines.append(f"photos expected: " + ", ".join(f"{p} {n}" for p, n in PHOTOS.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
