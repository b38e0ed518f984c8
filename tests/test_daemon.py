"""End to end: the real `moodbox run` process on real photos, with SDL's disk audio driver."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from moodbox.vision.classifier import EmotionClassifier
from moodbox.config import FacesConfig
from moodbox.commands.classify import read_grey
from moodbox.vision.pipeline import FaceEmotionPipeline
from helpers import DATA, REPO, TONES, dominant_freq, make_setup, read_capture
from moodbox.probe import DaemonProcess, moodbox_command

def expected_emotion(photo: Path) -> str:
    pipeline = FaceEmotionPipeline(FacesConfig(), EmotionClassifier(REPO / "models" / "emotion_int8.tflite"))
    results = pipeline.classify_all(read_grey(photo))
    assert results, "the test photo must show a face"
    return results[0][1].name


def Daemon(config: Path, capture: Path, extra_env: dict | None = None, args=()) -> DaemonProcess:
    """A real `moodbox run` on `config`, its audio captured by SDL's disk driver."""
    return DaemonProcess(["--config", str(config), *args], audio_file=capture,
                         extra_env=extra_env, cwd=config.parent)


@pytest.fixture()
def daemon_factory():
    started: list[Daemon] = []

    def make(*args, **kwargs) -> Daemon:
        d = Daemon(*args, **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()


def test_run_plays_the_mapped_playlist_and_stops_cleanly(tmp_path, astronaut, daemon_factory):
    emotion = expected_emotion(astronaut)
    config = make_setup(tmp_path, astronaut)
    capture = tmp_path / "audio.raw"
    d = daemon_factory(config, capture)
    assert d.wait_for(f"mood -> {emotion}", 30), d.log
    assert d.wait_for(f"playing {emotion}.wav from {emotion}", 10), d.log
    assert d.wait_for("status fps=", 10), d.log
    time.sleep(1.5)
    code, took = d.stop()
    assert code == 0, d.log
    assert took < 5.0
    assert "moodbox stopped (signal), exit 0" in d.log
    assert "Traceback" not in d.log
    status = [l for l in d.lines if "status fps=" in l][-1]
    for key in ("fps=", "detect=", "infer=", "emotion=", "mood=", "track=", "audio=playing"):
        assert key in status, status
    x = read_capture(capture)
    start = int(np.argmax(np.abs(x) > 0.02))
    assert abs(dominant_freq(x[start + 22050:start + 44100]) - TONES[emotion]) < 5


def test_no_face_goes_away_and_sigint_also_stops(tmp_path, no_face_photo, daemon_factory):
    config = make_setup(tmp_path, no_face_photo, mood__away_after_s=1.0,
                        player__away="lower")
    d = daemon_factory(config, tmp_path / "audio.raw")
    assert d.wait_for("playing favourites.wav from favourites (mood away)", 30), d.log
    assert d.wait_for("emotion=noface", 10), d.log
    code, took = d.stop(signal.SIGINT)
    assert code == 0 and took < 5.0


def test_sighup_reload_keeps_old_config_on_error_and_applies_a_valid_one(tmp_path, astronaut,
                                                                        daemon_factory):
    emotion = expected_emotion(astronaut)
    config = make_setup(tmp_path, astronaut)
    good = config.read_text()
    d = daemon_factory(config, tmp_path / "audio.raw")
    assert d.wait_for(f"playing {emotion}.wav", 30), d.log
    config.write_text(good.replace("fps: 10", "fps: fast"))
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_for("reload rejected, keeping the running config", 10), d.log
    assert "camera.fps: must be a number, got 'fast'" in d.log
    assert d.proc.poll() is None
    # now a valid change: the emotion's playlist becomes "favourites"
    cfg = yaml.safe_load(good)
    cfg["mood"]["map"][emotion] = "favourites"
    config.write_text(yaml.safe_dump(cfg))
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_for("reload done", 10), d.log
    code, _ = d.stop()
    assert code == 0


def _confidence(status: str) -> tuple[str, float]:
    """'... emotion=happy(0.47) ...' -> ("happy", 0.47)"""
    name, _, rest = status.split(" emotion=")[1].partition("(")
    return name, float(rest.partition(")")[0])


def test_an_ensemble_runs_averaged_and_a_reload_back_to_one_model(tmp_path, astronaut,
                                                                 daemon_factory):
    """The shipped model (happy, ~0.9 on the astronaut) averaged with the tiny fixture
    (sad): the daemon's emotion is the ensemble's, far less sure; a reload that empties
    classifier.ensemble goes back to the one model."""
    model, tiny = REPO / "models" / "emotion_int8.tflite", DATA / "tiny_int8.tflite"
    config = make_setup(tmp_path, astronaut, classifier__ensemble=[str(tiny)])
    d = daemon_factory(config, tmp_path / "audio.raw")
    assert d.wait_for(f"model ensemble of 2 models ({model}, {tiny}) (", 30), d.log
    assert d.wait_for(" emotion=happy(", 30), d.log
    status = [line for line in d.lines if " emotion=happy(" in line][-1]
    assert _confidence(status)[1] < 0.7, status
    cfg = yaml.safe_load(config.read_text())
    cfg["classifier"]["ensemble"] = []
    config.write_text(yaml.safe_dump(cfg))
    seen = len(d.lines)
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_for(f"reload: classifier.ensemble: {tiny} -> (none)", 10), d.log
    assert d.wait_for(f"model {model} (", 10), d.log
    assert d.wait_for("reload done", 10), d.log
    end = time.monotonic() + 10  # the second status line after it: a frame since the reload
    while time.monotonic() < end and sum("status fps=" in l for l in d.lines[seen:]) < 2:
        time.sleep(0.1)
    status = [line for line in d.lines[seen:] if "status fps=" in line][-1]
    name, confidence = _confidence(status)
    assert name == "happy" and confidence > 0.8, status
    code, _ = d.stop()
    assert code == 0 and "Traceback" not in d.log, d.log


def test_missing_model_exits_78_naming_the_file(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    text = config.read_text().replace(str(REPO / "models" / "emotion_int8.tflite"), "gone.tflite")
    config.write_text(text)
    r = subprocess.run([*moodbox_command(), "run", "--config", str(config)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
    assert r.returncode == 78
    assert "gone.tflite does not exist" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_sd_notify_ready_watchdog_and_reload(tmp_path, astronaut, daemon_factory):
    config = make_setup(tmp_path, astronaut)
    d = daemon_factory(config, tmp_path / "audio.raw", extra_env={"WATCHDOG_USEC": "1500000"})
    listener = d.notify
    assert d.wait_for("moodbox running", 30), d.log
    time.sleep(3.0)
    fields = [f for _, f in listener.messages]
    assert "READY=1" in fields
    assert fields.count("WATCHDOG=1") >= 3
    n = len(listener.messages)
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_for("reload done", 10), d.log
    time.sleep(0.5)
    after = [f for _, f in listener.messages[n:] if f in ("RELOADING=1", "READY=1")]
    assert after[:2] == ["RELOADING=1", "READY=1"]
    assert any(f.startswith("MONOTONIC_USEC=") for _, f in listener.messages[n:])
    code, _ = d.stop()
    assert code == 0
    assert "STOPPING=1" in [f for _, f in listener.messages]
    assert listener.first("STATUS=first decision") is not None
