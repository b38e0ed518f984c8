"""Distillation on tiny generated faces: soft labels, the distilled loss, training and resume, bad inputs."""
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
from moodbox.converter.distill import (SoftLabels, faces_sha1, file_sha256,  # noqa: E402
                                       read_soft_labels, save_soft_labels, soften)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_face_sets(tmp_path_factory.mktemp("distill"), train=(3500, 11), val=(700, 12))


@pytest.fixture(scope="module")
def teacher(faces) -> Path:
    out = faces / "teacher.keras"
    assert convert_cli(["train", "--train", str(faces / "train.npz"), "--val",
                        str(faces / "val.npz"), "--out", str(out), "--arch", "tiny",
                        "--epochs", "3", "--lr", "0.1", "--batch-size", "32"]) == 0
    return out


@pytest.fixture(scope="module")
def soft(faces, teacher) -> Path:
    out = faces / "soft.npz"
    assert convert_cli(["soft-labels", "--teacher", str(teacher), "--data",
                        str(faces / "train.npz"), "--val", str(faces / "val.npz"),
                        "--out", str(out)]) == 0
    return out


def _train_student(faces: Path, soft: Path, out: Path, epochs: int, *extra: str) -> int:
    return convert_cli(["train", "--train", str(faces / "train.npz"), "--val",
                        str(faces / "val.npz"), "--out", str(out), "--arch", "tiny",
                        "--epochs", str(epochs), "--lr", "0.1", "--batch-size", "32",
                        "--teacher-labels", str(soft), "--distill-weight", "0.5",
                        "--temperature", "2", *extra])


def test_soft_labels_have_shape_and_provenance(faces, teacher, soft):
    labels = read_soft_labels(soft)
    train, val = load_npz(faces / "train.npz"), load_npz(faces / "val.npz")
    assert labels.train_probs.shape == (3500, 7) and labels.val_probs.shape == (700, 7)
    assert np.allclose(labels.train_probs.sum(axis=1), 1.0, atol=1e-4)
    assert labels.train_sha1 == faces_sha1(train) and labels.val_sha1 == faces_sha1(val)
    meta = labels.provenance
    assert meta["teachers"] == [str(teacher)]
    assert meta["teacher_sha256"] == [file_sha256(teacher)]
    assert meta["train_data"] == str(faces / "train.npz")
    assert 0.5 < meta["ensemble_val_accuracy_flip"] <= 1.0
    with np.load(soft) as data:
        assert bool(data["flip_averaged"]) and float(data["temperature"]) == 1.0


def test_soft_labels_are_the_same_for_a_mirrored_face(faces, teacher, soft, tmp_path):
    train = load_npz(faces / "train.npz")
    mirrored = tmp_path / "mirrored.npz"
    save_npz(mirrored, train.x[:, :, ::-1], train.y)
    out = tmp_path / "soft_mirrored.npz"
    assert convert_cli(["soft-labels", "--teacher", str(teacher), "--data", str(mirrored),
                        "--out", str(out)]) == 0
    assert np.allclose(read_soft_labels(out).train_probs, read_soft_labels(soft).train_probs,
                       atol=1e-5)


def test_teachers_are_averaged_and_an_npz_teacher_counts_as_one(faces, teacher, soft, tmp_path):
    """A teacher made elsewhere (a PyTorch one on a GPU machine, say) arrives as an NPZ."""
    train, val = load_npz(faces / "train.npz"), load_npz(faces / "val.npz")
    uniform = tmp_path / "uniform.npz"
    save_soft_labels(uniform, SoftLabels(
        train_probs=np.full((3500, 7), 1 / 7, np.float32), classes=train.classes,
        train_sha1=faces_sha1(train), val_probs=np.full((700, 7), 1 / 7, np.float32),
        val_sha1=faces_sha1(val)))
    out = tmp_path / "two.npz"
    assert convert_cli(["soft-labels", "--teacher", str(teacher), str(uniform), "--data",
                        str(faces / "train.npz"), "--val", str(faces / "val.npz"),
                        "--out", str(out)]) == 0
    expected = (read_soft_labels(soft).train_probs + 1 / 7) / 2
    assert np.allclose(read_soft_labels(out).train_probs, expected, atol=1e-5)
    assert len(read_soft_labels(out).provenance["teachers"]) == 2


def test_distillation_loss_mixes_true_labels_and_softened_teacher():
    import keras

    from moodbox.converter.train import TrainConfig, make_loss

    logits = np.array([[2.0, 0.5, -1.0, 0.0, 0.3, -0.2, 1.0]], np.float32)
    onehot = np.eye(7, dtype=np.float32)[[0]]
    t = 2.0
    student_t = keras.ops.convert_to_numpy(keras.ops.softmax(logits / t))
    target = np.concatenate([onehot, student_t], axis=1)
    pure_kd = make_loss(TrainConfig(distill_weight=1.0, temperature=t), 7)
    assert float(keras.ops.convert_to_numpy(pure_kd(target, logits))[0]) == pytest.approx(0, abs=1e-5)
    hard_only = make_loss(TrainConfig(distill_weight=1e-9, temperature=t), 7)
    smoothed = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert float(keras.ops.convert_to_numpy(hard_only(target, logits))[0]) == pytest.approx(
        float(smoothed(onehot, logits)), rel=1e-4)
    # teacher probabilities are softened as softmax(log p / T)
    p = np.array([[0.7, 0.2, 0.1]])
    assert np.allclose(soften(p, 1.0), p, atol=1e-6)
    assert np.allclose(soften(p, 1e6), 1 / 3, atol=1e-4)


def test_distilled_training_runs_and_resumes(faces, soft, tmp_path):
    out = tmp_path / "student.keras"
    assert _train_student(faces, soft, out, 1) == 0
    assert _train_student(faces, soft, out, 2, "--resume") == 0
    rows = list(csv.DictReader((tmp_path / "student.log.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # epoch 1 was not redone
    assert float(rows[-1]["val_accuracy"]) > 0.5  # chance is 0.14
    # per-class recall against the true labels (the first half of the distillation targets)
    recall = list(csv.DictReader((tmp_path / "student.recall.csv").read_text().splitlines()))
    assert [r["epoch"] for r in recall] == ["1", "2"]
    values = [float(recall[-1][c]) for c in FER_CLASSES]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert float(recall[-1]["mean"]) == pytest.approx(np.mean(values), abs=2e-4)
    state = json.loads((tmp_path / "student.train.json").read_text())
    assert state["epochs_done"] == 2
    assert state["config"]["teacher_labels"] == str(soft)
    assert state["config"]["distill_weight"] == 0.5 and state["config"]["temperature"] == 2.0


def test_resume_from_a_clone_without_the_best_model(faces, soft, tmp_path):
    """A clone has the committed resume point (ckpt.npz, state, log) but not the best model."""
    out = tmp_path / "student.keras"
    assert _train_student(faces, soft, out, 1) == 0
    out.unlink()
    assert _train_student(faces, soft, out, 2, "--resume") == 0
    assert out.is_file()
    assert json.loads((tmp_path / "student.train.json").read_text())["best_epoch"] == 2
    out.unlink()  # a finished run: the last epoch's weights stand in for the best
    assert _train_student(faces, soft, out, 2, "--resume") == 0
    assert out.is_file()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_soft_labels_for_other_faces_are_refused(faces, soft, tmp_path, capsys):
    labels = read_soft_labels(soft)
    short = tmp_path / "short.npz"
    save_soft_labels(short, SoftLabels(labels.train_probs[:-10], labels.classes, labels.train_sha1))
    assert _train_student(faces, short, tmp_path / "s.keras", 1) == 2
    assert "3490 train soft labels but" in _one_line_error(capsys)

    five = tmp_path / "five.npz"
    save_soft_labels(five, SoftLabels(labels.train_probs[:, :5], labels.classes, labels.train_sha1))
    assert _train_student(faces, five, tmp_path / "s.keras", 1) == 2
    assert "expected (3500, 7) for 7 classes" in _one_line_error(capsys)

    other = tmp_path / "other.npz"
    save_soft_labels(other, SoftLabels(labels.train_probs, labels.classes, "0" * 40))
    assert _train_student(faces, other, tmp_path / "s.keras", 1) == 2
    assert "made for other faces" in _one_line_error(capsys)

    logits = tmp_path / "logits.npz"  # e.g. a teacher's raw outputs, not softmax
    raw = np.log(np.clip(labels.train_probs, 1e-6, 1)) + 3.0
    save_soft_labels(logits, SoftLabels(np.abs(raw), labels.classes, labels.train_sha1))
    assert _train_student(faces, logits, tmp_path / "s.keras", 1) == 2
    err = _one_line_error(capsys)
    assert "not probabilities" in err and "softmax(logits)" in err

    assert _train_student(faces, tmp_path / "missing.npz", tmp_path / "s.keras", 1) == 2
    assert "no such soft-label file" in _one_line_error(capsys)


def test_mismatched_faces_and_labels_are_refused(faces, teacher, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 48, 48), np.uint8), y=np.zeros(4, np.int64))
    assert convert_cli(["soft-labels", "--teacher", str(teacher), "--data", str(bad),
                        "--out", str(tmp_path / "s.npz")]) == 2
    assert "one label per face" in _one_line_error(capsys)
    five_classes = tmp_path / "five_classes.npz"
    s = synthetic_faces(20, classes=5)
    save_npz(five_classes, s.x, s.y, classes=s.classes)
    assert convert_cli(["soft-labels", "--teacher", str(teacher), "--data", str(five_classes),
                        "--out", str(tmp_path / "s.npz")]) == 2
    assert "teacher classes" in _one_line_error(capsys)
    assert not (tmp_path / "s.npz").exists()
