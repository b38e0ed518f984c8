"""`moodbox bench` runs and reports what the issue asks for (numbers are not asserted)."""
from __future__ import annotations

import json
import shutil

from helpers import run_cli


def test_bench_json_report(tmp_path, astronaut, no_face_photo):
    for i, p in enumerate((astronaut, no_face_photo)):
        shutil.copy(p, tmp_path / f"{i}{p.suffix}")
    png = tmp_path / "stages.png"
    r = run_cli(["bench", "--source", str(tmp_path), "--frames", "12", "--no-fer", "--no-calibrate",
                 "--val", str(tmp_path / "absent.npz")], timeout=300)
    assert r.returncode == 2  # a clear error, not a traceback
    assert "absent.npz: no such file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["bench", "--source", str(tmp_path), "--frames", "12", "--no-fer",
                 "--no-calibrate", "--json", "--plot", str(png)], timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    # each photo is held for 10 frames: 10 astronaut frames, then 2 of the empty table
    assert report["frames"] == 12 and report["with_face"] == 10
    assert report["variants"]["camera-320"]["with_face"] == 10
    for stage in ("decode", "grey_resize", "detect", "crop", "infer", "debounce"):
        assert set(report["stages"][stage]) == {"median", "p90", "p99"}
    assert report["total_ms"]["median"] > 0 and report["fps"] > 0
    assert report["peak_rss_mb"] > 10 and 0 < report["start_to_first_s"] < 60
    assert report["macs"] > 1e6 and report["params"] > 1e4
    assert report["daemon"]["exit_code"] == 0  # the real daemon ran on the same frames
    assert report["daemon"]["peak_rss_mb"] > 10 and 0 < report["daemon"]["start_to_first_s"] < 60
    assert set(report["variants"]) == {"haar-full-res", "camera-320", "+roi", "+idle-3", "+every-2"}
    assert "| detect |" in r.stdout and "Raspberry Pi estimate" in r.stdout
    assert png.stat().st_size > 5000
