"""`moodbox bench` (device) and `moodbox-convert bench` (desktop) run and report what they claim."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from helpers import DATA, REPO, run_cli
from moodbox.commands.bench import DEFAULT_VARIANT, VARIANTS


@pytest.fixture()
def two_photos(tmp_path, astronaut, no_face_photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, p in enumerate((astronaut, no_face_photo)):
        shutil.copy(p, folder / f"{i}{p.suffix}")
    return folder


def test_device_bench_times_the_real_pipeline(tmp_path, two_photos):
    png = tmp_path / "stages.png"
    r = run_cli(["bench", "--source", str(two_photos), "--frames", "12", "--json", "--plot",
                 str(png)], timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    # each photo is held for 10 frames: 10 astronaut frames, then 2 of the empty table
    assert report["frames"] == 12 and report["with_face"] == 10
    for name in ("yunet-320", "haar-320"):
        assert report["variants"][name]["with_face"] == 10, name
    assert report["variants"]["yunet-320"]["detector"].startswith("yunet")
    assert report["variants"]["haar-320"]["detector"].startswith("haar")
    for stage in ("decode", "grey_resize", "detect", "crop", "infer", "debounce"):
        assert set(report["stages"][stage]) == {"median", "p90", "p99"}
    stages = report["stages"]
    assert report["total_ms"]["p99"] >= stages["detect"]["median"] + stages["infer"]["median"]
    assert report["daemon"]["exit_code"] == 0  # the real daemon ran on the same frames
    assert report["daemon"]["start_to_first_s"] is not None
    assert report["daemon"]["peak_rss_mb"] >= report["peak_rss_mb"] * 0.5
    assert set(report["variants"]) == set(VARIANTS) and DEFAULT_VARIANT.startswith("yunet")
    assert f"| {DEFAULT_VARIANT} (shipped) |" in r.stdout
    assert "| detect |" in r.stdout
    assert "with fer" not in r.stdout and "Raspberry Pi estimate" not in r.stdout  # desktop only
    assert png.stat().st_size > 5000


def test_desktop_bench_adds_the_pi_estimate_and_rejects_a_missing_val(two_photos):
    cmd = [sys.executable, "-m", "moodbox.converter.cli", "bench", "--source", str(two_photos),
           "--frames", "12", "--no-fer", "--no-calibrate", "--no-variants"]
    r = subprocess.run(cmd + ["--val", str(two_photos / "absent.npz")], capture_output=True,
                       text=True, timeout=300, cwd=REPO)
    assert r.returncode == 2  # a clear error, not a traceback
    assert "absent.npz: no such file" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    pe = report["pi_estimate"]
    assert pe["pi4_infer_ms_by_macs"] == pytest.approx(report["macs"] / 300e6 * 44.0, abs=0.01)
    assert "Raspberry Pi estimate" in r.stdout and "fer comparison skipped" not in r.stdout


def test_bench_times_an_ensemble_and_the_pi_estimate_counts_every_model(two_photos,
                                                                         shipped_model):
    from moodbox.vision.classifier import EmotionClassifier

    tiny = DATA / "tiny_int8.tflite"
    r = subprocess.run([sys.executable, "-m", "moodbox.converter.cli", "bench", "--source",
                        str(two_photos), "--frames", "6", "--no-fer", "--no-calibrate",
                        "--no-variants", "--json", "--ensemble", str(tiny)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    one, two = EmotionClassifier(shipped_model).stats(), EmotionClassifier(tiny).stats()
    assert report["ensemble"] == [str(tiny)] and report["model"] == str(shipped_model)
    assert report["macs"] == one.macs + two.macs  # every face runs both models
    assert report["model_bytes"] == one.size_bytes + two.size_bytes
    assert report["frames"] == 6 and report["stages"]["infer"]["median"] > 0
    assert report["daemon"]["exit_code"] == 0  # the daemon ran with the same ensemble
    assert report["pi_estimate"]["pi4_infer_ms_by_macs"] == pytest.approx(
        (one.macs + two.macs) / 300e6 * 44.0, abs=0.01)
    assert f"ensemble of 2 models ({shipped_model}, {tiny}): all of them, every face" in r.stdout
    assert "all 2 models of the ensemble" in r.stdout


@pytest.mark.parametrize("ensemble,error", [
    (["small_input.tflite"], "cannot be averaged: they differ in input size (48x48 vs 32x32)"),
    (["tiny_int8.tflite", "tiny_uint8.tflite", "small_input.tflite"],
     "--ensemble lists 3 models; at most 2 are averaged with --model"),
])
def test_bench_refuses_an_ensemble_it_cannot_run(ensemble, error):
    r = run_cli(["bench", "--ensemble", *(str(DATA / m) for m in ensemble)])
    assert r.returncode == 1 and error in r.stderr and "Traceback" not in r.stderr
