"""workshop/train_travel.sh end to end on generated faces: two seeds fine-tuned with added
film faces, the weight soup, the class-rate correction, int8, evaluation on val and the SFEW
val films, paired tests; a second run redoes nothing."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
pytest.importorskip("cv2", reason="OpenCV is not installed")

from helpers import convert_command, write_face_sets, write_sfew_folder  # noqa: E402
from moodbox.converter.cli import main as convert_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "workshop" / "train_travel.sh"


def test_the_whole_sequence_runs_and_resumes(tmp_path):
    convert = convert_command()
    (tmp_path / "fer").mkdir()
    data = write_face_sets(tmp_path / "fer", train=(420, 31), val=(140, 32))
    films = write_sfew_folder(tmp_path / "sfew", {"train": 14, "val": 21}, (60, 50), seed=7)
    base = tmp_path / "base.keras"
    assert convert_cli(["train", "--train", str(data / "train.npz"), "--val",
                        str(data / "val.npz"), "--out", str(base), "--arch", "tiny",
                        "--width", "8", "--epochs", "1", "--lr", "0.1"]) == 0
    assert convert_cli(["convert", "--model", str(base), "--calib", str(data / "train.npz"),
                        "--out", str(tmp_path / "base_int8.tflite"), "--calib-count", "100",
                        "--min-agreement", "0", "--max-drop", "100"]) == 0
    run_dir = tmp_path / "runs"
    env = dict(os.environ, DATA=str(data), SFEW=str(films), BASE=str(base), RUN_DIR=str(run_dir),
               SEEDS="3 4", EPOCHS="1", ADD_REPEAT="2", ARCH="tiny", WIDTH="8",
               PRECISION="float32", CONVERT=convert,
               CONVERT_ARGS="--min-agreement 0 --max-drop 100")

    def run(*step: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), *step], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=900)

    first = run()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for seed in (3, 4):
        cfg = json.loads((run_dir / f"ft-s{seed}.train.json").read_text())["config"]
        assert cfg["init_from"] == str(base) and cfg["seed"] == seed
        assert cfg["add_faces"] == str(films) and cfg["add_split"] == "train"
        assert cfg["add_repeat"] == 2 and cfg["augment"] == "camera" and cfg["balance"] == 0.5
    assert f"soup: {base} x 2 + {run_dir}/ft-s3.keras {run_dir}/ft-s4.keras" in first.stdout
    assert (run_dir / "soup.keras").is_file()
    sidecar = json.loads((run_dir / "final.json").read_text())
    assert set(sidecar["extra"]["class_rate_shift"]) == {"fear", "disgust"}
    assert sidecar["extra"]["class_rate_target"] == "training labels"
    for name in ("final-int8", "final-float", "base-int8"):
        result = json.loads((run_dir / "eval" / f"{name}.json").read_text())
        assert result["n"] == 140 and result["cross_domain"]["n"] == 21  # val films only
    assert "(21 faces)" in (run_dir / "eval" / "compare_sfew_val.txt").read_text()
    assert "(140 faces)" in (run_dir / "eval" / "compare_val.txt").read_text()

    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    second = run()
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training" not in second.stdout and "ft-s3: done" in second.stdout
    for p, t in mtimes.items():
        assert p.stat().st_mtime_ns == t, f"{p} was rewritten by the second run"


def test_a_bad_rate_target_is_named(tmp_path):
    env = dict(os.environ, RATE_TARGET="mean", RUN_DIR=str(tmp_path / "runs"),
               CONVERT=convert_command())
    done = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "RATE_TARGET must be labels or reference" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_inputs_are_named(tmp_path):
    env = dict(os.environ, SFEW=str(tmp_path / "no-films"), RUN_DIR=str(tmp_path / "runs"),
               CONVERT=convert_command())
    done = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "no-films/labels.json not found" in done.stderr
    assert not (tmp_path / "runs").exists()
