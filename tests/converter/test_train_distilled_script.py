"""workshop/train_distilled.sh end to end on tiny generated faces: every step runs, every
result is written, and a second run skips what is done (the way a later session resumes)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")

from moodbox.converter.cli import main as convert_cli  # noqa: E402
from helpers import convert_command, write_face_sets  # noqa: E402
from moodbox.converter.distill import read_soft_labels  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "workshop" / "train_distilled.sh"


def test_the_whole_sequence_runs_and_resumes(tmp_path):
    convert = convert_command()
    data = tmp_path / "fer"
    data.mkdir()
    write_face_sets(data, train=(700, 21), val=(210, 22))
    # a stand-in for the round-one model: the students start from it and it teaches too
    round1 = tmp_path / "round1.keras"
    assert convert_cli(["train", "--train", str(data / "train.npz"), "--val",
                        str(data / "val.npz"), "--out", str(round1), "--arch", "tiny",
                        "--width", "8", "--epochs", "2", "--lr", "0.1"]) == 0
    assert convert_cli(["convert", "--model", str(round1), "--calib", str(data / "train.npz"),
                        "--out", str(tmp_path / "round1_int8.tflite"), "--calib-count", "100",
                        "--min-agreement", "0", "--max-drop", "100"]) == 0
    run_dir, out_dir = tmp_path / "runs", tmp_path / "out"
    env = dict(os.environ, DATA=str(data), RUN_DIR=str(run_dir), OUT_DIR=str(out_dir),
               ROUND1=str(round1), ARCH="tiny", WIDTH="8", EPOCHS="1", STUDENT_EPOCHS="2",
               TEACHER_SEEDS="5", TEACHER_WIDTH="12", CONVERT=convert,
               CONVERT_ARGS="--min-agreement 0 --max-drop 100")

    def run(*step: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), *step], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=900)

    first = run()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    soft = read_soft_labels(run_dir / "soft-labels.npz")
    assert len(soft.provenance["teachers"]) == 2  # the round-one model and seed 5
    assert soft.provenance["teachers"][1].endswith("teacher-tiny12-s5.keras")  # a wider teacher
    assert soft.train_probs.shape == (700, 7)
    for student in ("student-control", "student-distilled"):
        state = json.loads((run_dir / f"{student}.train.json").read_text())
        assert state["epochs_done"] == 2 and state["config"]["init_from"] == str(round1)
        assert (out_dir / f"{student}_int8.tflite").stat().st_size > 0
    distilled = json.loads((run_dir / "student-distilled.train.json").read_text())["config"]
    control = json.loads((run_dir / "student-control.train.json").read_text())["config"]
    assert distilled["teacher_labels"] and distilled["distill_weight"] == 0.7
    assert not control["teacher_labels"] and control["distill_weight"] == 0.0
    for name in ("round1-int8", "round1-float", "student-control-int8",
                 "student-control-float", "student-distilled-int8", "student-distilled-float"):
        result = json.loads((run_dir / "eval" / f"{name}.json").read_text())
        assert result["n"] == 210 and 0.0 <= result["accuracy_flip"] <= 1.0
    table = first.stdout[first.stdout.index("model "):]
    assert "student-distilled-int8" in table and "round1-int8" in table

    # rerun: nothing is trained or made again
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    second = run()
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training" not in second.stdout and "soft labels: done" in second.stdout
    for p, t in mtimes.items():
        assert p.stat().st_mtime_ns == t, f"{p} was rewritten by the second run"
    assert np.isclose(read_soft_labels(run_dir / "soft-labels.npz").train_probs,
                      soft.train_probs).all()

    # another set of teachers in another folder, no control there: finish leaves it out
    other = tmp_path / "runs-other"
    other.mkdir()
    for p in run_dir.glob("student-distilled*"):
        shutil.copy(p, other / p.name)
    env.update(RUN_DIR=str(other), OUT_DIR=str(tmp_path / "out-other"))
    third = run("finish")
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "no control in" in third.stdout
    made = sorted(p.name for p in (other / "eval").glob("*.json"))
    assert made == ["round1-float.json", "round1-int8.json", "student-distilled-float.json",
                    "student-distilled-int8.json"]


def test_a_missing_converter_is_named_with_the_fix(tmp_path):
    env = dict(os.environ, CONVERT=str(tmp_path / "no-such-moodbox-convert"),
               RUN_DIR=str(tmp_path / "runs"))
    done = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "no-such-moodbox-convert" in done.stderr and "scripts/test.sh" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()
