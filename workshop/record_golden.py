#!/usr/bin/env python3
"""Record what the shipped model says about fixed faces in package-shipped photos
(tests/data/golden.json), for the golden test that guards the converter -> edge handoff.
Rerun only when the shipped model is deliberately replaced.

    python workshop/record_golden.py
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the faces are chosen by the test's own helper


def main() -> int:
    from helpers import golden_faces

    from moodbox import assets
    from moodbox.vision.classifier import EmotionClassifier

    model = assets.default_model()
    clf = EmotionClassifier(model)
    out = {"model": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
           "faces": {}}
    for name, face, box in golden_faces():
        e = clf.classify(face)
        out["faces"][name] = {"box": box.as_list(), "emotion": e.name, "probs": e.as_dict()}
        print(f"{name:36s} {e.name:8s} {e.confidence:.3f}")
    path = REPO / "tests" / "data" / "golden.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
