"""The repository stays small enough for a Pi owner to clone in seconds, and the workshop stays apart."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TREE_BUDGET = 15_000_000        # bytes of tracked files (README: "Getting it onto a Pi")
FILE_BUDGET = 2_000_000         # no tracked file larger than this outside the shipped models
SHIPPED_MODEL_SUFFIXES = {".tflite", ".onnx", ".keras"}
OWNER_SCRIPTS = {"demo.sh", "test.sh", "install-pi.sh", "pi-constraints.txt"}


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an installed copy or an archive)")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                         timeout=60, check=True).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def shipped_model(path: Path) -> bool:
    """A model the product ships: directly in models/, not a run's leftover in models/training/."""
    return path.parent == REPO / "models" and path.suffix in SHIPPED_MODEL_SUFFIXES


def oversized(paths: list[Path]) -> list[str]:
    return [f"{p.relative_to(REPO)} ({p.stat().st_size / 1e6:.1f} MB)" for p in paths
            if p.is_file() and p.stat().st_size > FILE_BUDGET and not shipped_model(p)]


def test_the_tracked_tree_stays_under_its_budget():
    total = sum(p.stat().st_size for p in tracked_files() if p.is_file())
    assert total <= TREE_BUDGET, (
        f"tracked files take {total / 1e6:.1f} MB, over the {TREE_BUDGET / 1e6:.0f} MB budget: keep "
        "run leftovers in runs/ (git-ignored) and pack them with `moodbox-convert pack-run`")


def test_no_large_file_is_tracked_outside_the_shipped_models():
    big = oversized(tracked_files())
    assert not big, (f"tracked files over {FILE_BUDGET / 1e6:.0f} MB outside the shipped models: "
                     f"{', '.join(big)}; keep them out of git (runs/, moodbox-convert pack-run)")


def test_the_size_check_catches_a_large_file(tmp_path, monkeypatch):
    """The rule itself: a 2.5 MB file in models/training/ is caught, the shipped model is not."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "models" / "training").mkdir(parents=True)
    leftover = tmp_path / "models" / "training" / "teacher.keras"
    leftover.write_bytes(b"\0" * 2_500_000)
    shipped = tmp_path / "models" / "emotion.keras"
    shipped.write_bytes(b"\0" * 2_500_000)
    small = tmp_path / "models" / "training" / "log.csv"
    small.write_text("epoch,acc\n")
    assert oversized([leftover, shipped, small]) == ["models/training/teacher.keras (2.5 MB)"]


def test_run_leftovers_are_ignored_by_git(tmp_path):
    tracked_files()  # skips outside a checkout
    names = ["models/training/x/teacher.keras", "models/training/x/student.ckpt.npz",
             "models/training/x/student_int8.tflite", "runs/anything/model.keras",
             "old.run.tar.gz", ".devpack/shard-1.npz"]
    out = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", *names],
                         capture_output=True, text=True, timeout=30)
    assert sorted(out.stdout.split()) == sorted(names)
    kept = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index",
                           "models/training/x/student.log.csv", "models/training/x/eval/a.json",
                           "models/emotion_int8.tflite"], capture_output=True, text=True, timeout=30)
    assert kept.stdout.strip() == ""  # evidence and the shipped model stay trackable


def test_scripts_holds_only_what_an_owner_runs():
    found = {p.name for p in (REPO / "scripts").iterdir() if p.is_file()}
    assert found == OWNER_SCRIPTS, (
        f"scripts/ is for the owner (install, demo, test); move {sorted(found - OWNER_SCRIPTS)} to "
        "workshop/ (measuring, recording, comparing) or the converter (making a model)")


def test_every_workshop_tool_has_a_line_in_the_index():
    index = (REPO / "workshop" / "README.md").read_text()
    tools = sorted(p.name for p in (REPO / "workshop").iterdir()
                   if p.is_file() and p.name != "README.md")
    missing = [t for t in tools if f"`{t}`" not in index]
    assert tools and not missing, f"workshop/README.md does not describe {missing}"
