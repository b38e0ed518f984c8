"""`moodbox-convert evaluate` scores one view and face + mirror averaged, for float and int8 models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")

from moodbox.converter.cli import main as convert_cli  # noqa: E402
from moodbox.converter.data import save_npz  # noqa: E402


@pytest.fixture(scope="module")
def lopsided(tmp_path_factory) -> tuple[Path, Path]:
    """A linear model that reads the bright side of the face: bright left half -> angry
    (logit 5), bright right half -> disgust (5), fear always 4.5. Faces bright on the left,
    labelled angry: one view is always right; averaged with the mirror, fear wins
    (0.38 against 0.31 + 0.31 split between angry and disgust), always wrong."""
    import keras

    d = tmp_path_factory.mktemp("flip")
    inp = keras.Input((48, 48, 1), name="face")
    dense = keras.layers.Dense(7, name="logits")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    left = np.zeros((48, 48), np.float32)
    left[:, :24] = 1.0
    kernel = np.zeros((48 * 48, 7), np.float32)
    kernel[:, 0] = left.reshape(-1) * 5.0 / left.sum()
    kernel[:, 1] = left[:, ::-1].reshape(-1) * 5.0 / left.sum()
    bias = np.full(7, -10.0, np.float32)
    bias[[0, 1]], bias[2] = 0.0, 4.5
    dense.set_weights([kernel, bias])
    model.save(d / "lopsided.keras")
    rng = np.random.default_rng(0)
    x = (left * 255 - rng.integers(0, 6, (60, 48, 48))).clip(0, 255).astype(np.uint8)
    save_npz(d / "faces.npz", x, np.zeros(60, np.int64))
    return d / "lopsided.keras", d / "faces.npz"


def _evaluate(model: Path, data: Path, capsys) -> dict:
    assert convert_cli(["evaluate", "--model", str(model), "--data", str(data), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_flip_averaging_differs_from_one_view_float_and_int8(lopsided, tmp_path, capsys):
    model, faces = lopsided
    result = _evaluate(model, faces, capsys)
    assert result["accuracy"] == 1.0 and result["accuracy_flip"] == 0.0
    assert result["per_class"]["angry"]["recall"] == 1.0
    assert result["per_class_flip"]["angry"]["recall"] == 0.0
    assert result["confusion_flip"][0][2] == 60  # every angry face taken for fear

    tflite = tmp_path / "lopsided_int8.tflite"
    assert convert_cli(["convert", "--model", str(model), "--calib", str(faces), "--check",
                        str(faces), "--out", str(tflite)]) == 0
    capsys.readouterr()
    result = _evaluate(tflite, faces, capsys)
    assert result["accuracy"] == 1.0 and result["accuracy_flip"] == 0.0


def test_model_with_other_class_count_is_refused(lopsided, tmp_path, capsys):
    model, _ = lopsided
    five = tmp_path / "five.npz"
    save_npz(five, np.zeros((4, 48, 48), np.uint8), np.arange(4), classes=("a", "b", "c", "d", "e"))
    assert convert_cli(["evaluate", "--model", str(model), "--data", str(five)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "7 outputs but" in err and "5 classes" in err
