"""A folder of photos as --source holds each photo long enough for a mood to form."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from helpers import make_setup, run_cli
from moodbox.camera import ReplaySource, make_source, still_hold_s
from moodbox.config import CameraConfig, MoodConfig, load_config
from moodbox.daemon import Daemon


def photo_folder(tmp_path: Path, *photos: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, p in enumerate(photos):
        shutil.copy(p, folder / f"{i}{p.suffix}")
    return folder


def test_the_default_hold_lets_a_mood_form_and_replace_the_last_one():
    mood = MoodConfig()
    hold = still_hold_s(mood)
    assert hold >= mood.dwell_s + 4 * mood.smoothing_s  # the smoothing settles, the dwell passes
    assert hold > mood.min_switch_interval_s            # and the last photo's mood can be replaced
    assert still_hold_s(dataclasses.replace(mood, dwell_s=0.5, min_switch_interval_s=0)) == 8.0


def test_a_folder_given_as_source_is_held_and_hold_overrides(tmp_path, astronaut, grace_hopper):
    folder = photo_folder(tmp_path, astronaut, grace_hopper)
    cfg = load_config(make_setup(tmp_path, astronaut))
    d = Daemon(Path(cfg.source), source_override=str(folder))
    assert d._hold_for(cfg) == still_hold_s(cfg.mood)
    d = Daemon(Path(cfg.source), source_override=str(folder), hold_s=2.5)
    assert d._hold_for(cfg) == 2.5
    held = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, hold_s=5.0))
    assert Daemon(Path(cfg.source), source_override=str(folder))._hold_for(held) is None  # 5 s
    assert Daemon(Path(cfg.source), source_override="demo")._hold_for(cfg) is None  # demo: 8 s
    src = make_source(CameraConfig(fps=20), str(folder), hold_s=0.2)
    assert isinstance(src, ReplaySource) and "each image held 0.2 s" in src.describe()
    src.open()
    shapes = [src.read(1.0).grey.shape for _ in range(8)]
    assert len(set(shapes[:4])) == 1 and shapes[4] != shapes[0]  # 0.2 s x 20 fps, then the next
    assert len(set(shapes[4:])) == 1
    src.close()


def test_run_with_a_photo_folder_logs_the_hold(tmp_path, astronaut, grace_hopper):
    folder = photo_folder(tmp_path, astronaut, grace_hopper)
    config = make_setup(tmp_path, astronaut)
    env = {"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(tmp_path / "a.raw"),
           "STATE_DIRECTORY": str(tmp_path / "state")}
    r = run_cli(["run", "--config", str(config), "--source", str(folder), "--duration", "1"],
                env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"camera: replay {folder}, each image held 8 s" in r.stdout + r.stderr
    r = run_cli(["run", "--config", str(config), "--source", str(folder), "--hold", "3",
                 "--duration", "1"], env=env)
    assert "each image held 3 s" in r.stdout + r.stderr
    for bad in ("inf", "nan", "0", "-2", "4000", "soon"):
        r = run_cli(["run", "--config", str(config), "--hold", bad], env=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "--hold" in r.stderr.splitlines()[-1]
