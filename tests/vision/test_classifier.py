"""The edge classifier on real TFLite models: a real interpreter is built and invoked."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from moodbox.converter.data import synthetic_faces
from moodbox.vision.classifier import EmotionClassifier, ModelError, load_interpreter_class
from moodbox.vision.modelinfo import FER_CLASSES
from helpers import DATA


def test_runtime_prefers_litert():
    _, name = load_interpreter_class()
    assert name in ("ai-edge-litert", "tflite-runtime")


@pytest.mark.parametrize("name,dtype", [("tiny_int8.tflite", np.int8), ("tiny_uint8.tflite", np.uint8)])
def test_int8_and_uint8_io_classify_synthetic_faces(name, dtype):
    clf = EmotionClassifier(DATA / name)
    assert clf.input_dtype == dtype
    assert clf.classes == FER_CLASSES
    assert clf.input_size == 48
    faces = synthetic_faces(70, seed=5)
    preds = []
    for face, label in zip(faces.x, faces.y):
        e = clf.classify(face)
        assert abs(float(e.probs.sum()) - 1.0) < 1e-5
        assert (e.probs >= 0).all()
        assert e.name == FER_CLASSES[int(np.argmax(e.probs))]
        preds.append(int(np.argmax(e.probs)))
    accuracy = float(np.mean(np.array(preds) == faces.y))
    assert accuracy > 0.85, accuracy  # it really computes: chance is 0.14


def test_int8_and_uint8_models_agree():
    a, b = EmotionClassifier(DATA / "tiny_int8.tflite"), EmotionClassifier(DATA / "tiny_uint8.tflite")
    faces = synthetic_faces(35, seed=9)
    agree = np.mean([a.classify(f).name == b.classify(f).name for f in faces.x])
    assert agree >= 0.9


def test_any_face_size_is_resized():
    clf = EmotionClassifier(DATA / "tiny_int8.tflite")
    face = synthetic_faces(1, size=120, seed=3).x[0]
    assert clf.classify(face).probs.shape == (7,)
    assert clf.classify(np.dstack([face] * 3)).probs.shape == (7,)


def test_stats_count_macs_and_params():
    s = EmotionClassifier(DATA / "tiny_int8.tflite").stats()
    # tiny(width 8): conv 1->8 (48x48), conv 8->16 s2 (24x24), conv 16->16 s2 (12x12), dense 16->7
    assert s.macs == 48 * 48 * 8 * 9 + 24 * 24 * 16 * 9 * 8 + 12 * 12 * 16 * 9 * 16 + 16 * 7
    assert s.params == (8 * 9 + 8) + (16 * 9 * 8 + 16) + (16 * 9 * 16 + 16) + (16 * 7 + 7)
    assert s.size_bytes == (DATA / "tiny_int8.tflite").stat().st_size


def test_shipped_model_loads_and_meets_the_size_budget(shipped_model):
    clf = EmotionClassifier(shipped_model)
    s = clf.stats()
    assert clf.classes == FER_CLASSES
    assert s.size_bytes <= 2 * 1024 * 1024
    assert s.macs <= 60_000_000
    assert clf.input_dtype == np.int8


# --- refused at start-up with a message naming the file and the problem -------------
def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match=r"absent\.tflite does not exist; set classifier\.model"):
        EmotionClassifier(tmp_path / "absent.tflite")


def test_empty_and_truncated_and_corrupt_models(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty.tflite is not a TFLite model"):
        EmotionClassifier(empty)
    data = (DATA / "tiny_int8.tflite").read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated.tflite"):
        EmotionClassifier(truncated)
    corrupt = tmp_path / "corrupt.tflite"
    rng = np.random.default_rng(0)
    corrupt.write_bytes(data[:8] + rng.integers(0, 256, len(data) - 8, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="corrupt.tflite"):
        EmotionClassifier(corrupt)
    jpeg = tmp_path / "photo.tflite"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    with pytest.raises(ModelError, match="not a TFLite model"):
        EmotionClassifier(jpeg)


def test_wrong_output_size_and_wrong_input_shape():
    with pytest.raises(ModelError, match=r"outputs 10 values but 7 classes are expected"):
        EmotionClassifier(DATA / "wrong_outputs.tflite")
    with pytest.raises(ModelError, match=r"takes input \[1, 48, 48, 3\]"):
        EmotionClassifier(DATA / "rgb_input.tflite")


def test_broken_sidecar_is_named(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(DATA / "tiny_int8.tflite", model)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"m\.json: broken model sidecar"):
        EmotionClassifier(model)


def test_model_without_sidecar_uses_defaults(tmp_path):
    model = tmp_path / "bare.tflite"
    shutil.copy(DATA / "tiny_int8.tflite", model)
    clf = EmotionClassifier(model)
    assert clf.info.scale == "unit" and clf.classes == FER_CLASSES


def test_flip_averages_the_face_and_its_mirror(shipped_model, astronaut):
    import cv2

    from moodbox.commands.classify import read_grey

    grey = read_grey(astronaut)
    face = cv2.resize(grey[60:170, 170:280], (48, 48), interpolation=cv2.INTER_AREA)
    one = EmotionClassifier(shipped_model)
    both = EmotionClassifier(shipped_model, flip=True)
    a, b = one.probabilities(face), one.probabilities(face[:, ::-1].copy())
    assert not np.allclose(a, b, atol=1e-3)  # the mirror really is another view
    assert both.probabilities(face) == pytest.approx((a + b) / 2.0, abs=1e-6)
    assert both.probabilities(face[:, ::-1].copy()) == pytest.approx(both.probabilities(face), abs=1e-6)
