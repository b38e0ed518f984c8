"""moodbox-convert teacher-torch (converter/teacher_torch.py) (a PyTorch teacher for a GPU machine) on tiny generated faces:
its NPZ is accepted by the converter's soft-label checks, it resumes, it refuses bad input.
Skips where PyTorch is not installed (it is not part of the product's dependencies)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (only the GPU teacher needs it)")

from moodbox.converter.data import load_npz, synthetic_faces  # noqa: E402
from helpers import write_face_sets  # noqa: E402
from moodbox.converter.distill import load_soft_labels  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "converter" / "teacher_torch.py"


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_face_sets(tmp_path_factory.mktemp("torch-teacher"), train=(600, 31),
                           val=(210, 32))


def teacher(faces: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--train", str(faces / "train.npz"),
                           "--val", str(faces / "val.npz"), "--out", str(out), "--width", "8",
                           "--batch-size", "32", "--threads", "1", "--device", "cpu", *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("t") / "new-folder" / "teacher.npz"  # made on the way
    first = teacher(faces, out, "--epochs", "4", "--stop-after", "2")
    assert first.returncode == 0, first.stderr
    assert "stopped after epoch 2 of 4" in first.stdout and not out.exists()
    second = teacher(faces, out, "--epochs", "4", "--resume")
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout and "epoch 3/4" in second.stdout
    assert "epoch 1/4" not in second.stdout
    return out


def test_soft_labels_belong_to_the_faces_and_learned_something(faces, trained):
    train, val = load_npz(faces / "train.npz"), load_npz(faces / "val.npz")
    labels = load_soft_labels(trained, train, val)  # the converter's own checks
    assert labels.train_probs.shape == (600, 7) and labels.val_probs.shape == (210, 7)
    assert np.allclose(labels.train_probs.sum(1), 1.0, atol=1e-4)
    acc = float(np.mean(labels.val_probs.argmax(1) == val.y))
    assert acc == pytest.approx(labels.provenance["teacher_val_accuracy_flip"][0])
    assert acc > 0.5  # chance is 1/7: four epochs learn the gratings
    assert labels.provenance["teachers"] == ["torch:resnet18w8-s1"]


def test_the_log_has_every_epoch_once_across_the_interruption(trained):
    rows = list(csv.DictReader(trained.with_suffix(".log.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_the_converter_combines_it_with_a_keras_teacher(faces, trained, tmp_path):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter.cli import main as convert_cli
    from moodbox.converter.distill import read_soft_labels

    keras_teacher = tmp_path / "k.keras"
    assert convert_cli(["train", "--train", str(faces / "train.npz"), "--val",
                        str(faces / "val.npz"), "--out", str(keras_teacher), "--arch", "tiny",
                        "--epochs", "1"]) == 0
    out = tmp_path / "both.npz"
    assert convert_cli(["soft-labels", "--teacher", str(keras_teacher), str(trained),
                        "--data", str(faces / "train.npz"), "--val", str(faces / "val.npz"),
                        "--out", str(out)]) == 0
    both, alone = read_soft_labels(out), read_soft_labels(trained)
    assert len(both.provenance["teachers"]) == 2
    assert not np.allclose(both.train_probs, alone.train_probs)


def test_other_faces_are_refused_by_the_converter(faces, trained, tmp_path):
    from moodbox.converter.data import DataError

    other = synthetic_faces(600, seed=99)
    with pytest.raises(DataError, match="other faces"):
        load_soft_labels(trained, other)


def test_bad_input_is_one_clear_line(faces, tmp_path):
    missing = teacher(faces, tmp_path / "x.npz", "--epochs", "1", "--train",
                      str(tmp_path / "nope.npz"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_out = teacher(faces, tmp_path / "x.pt", "--epochs", "1")
    assert bad_out.returncode == 2 and "--out must end in .npz" in bad_out.stderr
    (tmp_path / "a-file").write_text("not a folder")
    under_a_file = teacher(faces, tmp_path / "a-file" / "x.npz", "--epochs", "1")
    assert under_a_file.returncode == 2 and "cannot make the folder" in under_a_file.stderr
    assert "Traceback" not in under_a_file.stderr


def test_a_resume_point_with_other_settings_is_refused(faces, trained, tmp_path):
    out = tmp_path / "t.npz"
    assert teacher(faces, out, "--epochs", "2", "--stop-after", "1").returncode == 0
    clash = teacher(faces, out, "--epochs", "2", "--resume", "--width", "16")
    assert clash.returncode == 2 and "other settings" in clash.stderr
    again = teacher(faces, out, "--epochs", "2")
    assert again.returncode == 2 and "pass --resume" in again.stderr
