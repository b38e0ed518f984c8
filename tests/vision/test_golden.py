"""Golden test: the shipped int8 model says what was recorded about fixed real faces.

Guards the converter -> edge handoff (preprocessing, crop, quantization, class order).
Recorded by workshop/record_golden.py; rerun it only when the model is replaced on purpose.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from helpers import DATA, golden_faces
from moodbox.vision.classifier import EmotionClassifier

TOLERANCE = 0.05  # per-class probability


def test_shipped_model_matches_the_recording(shipped_model, astronaut, grace_hopper):
    golden = json.loads((DATA / "golden.json").read_text())
    digest = hashlib.sha256(shipped_model.read_bytes()).hexdigest()
    assert digest == golden["model_sha256"], "models/emotion_int8.tflite changed: rerun workshop/record_golden.py"
    clf = EmotionClassifier(shipped_model)
    seen = 0
    for name, face, box in golden_faces():
        want = golden["faces"][name]
        assert box.as_list() == pytest.approx(want["box"], abs=3), name  # the same face was found
        e = clf.classify(face)
        assert e.name == want["emotion"], name
        for cls, p in e.as_dict().items():
            assert abs(p - want["probs"][cls]) <= TOLERANCE, (name, cls)
        seen += 1
    assert seen == len(golden["faces"]) == 4
