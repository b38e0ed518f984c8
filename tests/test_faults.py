"""Faults an always-on box meets, injected through doubles or real parts; the daemon survives."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from moodbox.camera import Picamera2Source
from moodbox.config import EX_CONFIG
from moodbox.daemon import Daemon
from moodbox.audio.pygame_backend import PygameBackend
from moodbox.commands.classify import read_grey
from fakes import FakeAudio, FakePiCameraSystem
from moodbox.probe import moodbox_command
from helpers import REPO, make_setup, read_capture


def camera_frames(photo: Path) -> list[np.ndarray]:
    grey = read_grey(photo)
    return [cv2.resize(grey, (320, 240), interpolation=cv2.INTER_AREA)]


def pi_config(tmp_path: Path, photo: Path, **camera) -> Path:
    path = make_setup(tmp_path, photo)
    cfg = yaml.safe_load(path.read_text())
    cfg["camera"] = {"type": "picamera2", "fps": 20, "timeout_s": 0.3, "retry_min_s": 0.1,
                     "retry_max_s": 0.2, "max_failures": 3, **camera}
    path.write_text(yaml.safe_dump(cfg))
    return path


class InProcess:
    """The real Daemon in a thread, with the Pi camera and/or the sound device doubled."""

    def __init__(self, config: Path, system: FakePiCameraSystem | None = None,
                 audio=None, duration: float = 30.0):
        factory = None
        if system is not None:
            factory = lambda cfg, override: Picamera2Source(cfg.width, cfg.height, cfg.fps,  # noqa: E731
                                                            factory=system)
        backend = (lambda c: audio) if audio is not None else None
        self.daemon = Daemon(config, duration_s=duration, source_factory=factory,
                             backend_factory=backend, hard_exit=False)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.daemon.run()

    def wait_until(self, predicate, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if predicate():
                    return True
            except AttributeError:  # not built yet
                pass
            if self.code is not None:
                return bool(predicate())
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 8.0) -> int | None:
        self.daemon.request_stop()
        self.thread.join(timeout)
        return self.code


def test_no_camera_at_start_keeps_running_then_uses_it(tmp_path, astronaut, caplog):
    system = FakePiCameraSystem()
    system.frames = camera_frames(astronaut)
    system.unplug()
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    try:
        assert d.wait_until(lambda: d.daemon.grabber.stats.state == "waiting")
        time.sleep(1.0)
        assert d.code is None  # alive: no exit, so no systemd start-limit trap
        assert sum("retrying every" in r.message for r in caplog.records) == 1
        system.plug()
        assert d.wait_until(lambda: d.daemon.grabber.stats.frames > 5)
        assert d.wait_until(lambda: d.daemon.smoother.stable != "away")
    finally:
        assert d.stop() == 0


def test_repeated_camera_timeouts_exit_nonzero(tmp_path, astronaut):
    system = FakePiCameraSystem()
    system.frames = camera_frames(astronaut)
    system.trigger_timeouts(10_000)
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    d.thread.join(20)
    assert d.code == 1  # systemd's Restart=on-failure restarts the service
    assert "camera failed" in d.daemon.exit_reason


def test_camera_permission_exits_78(tmp_path, astronaut, caplog):
    system = FakePiCameraSystem()
    system.deny_permission()
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    d.thread.join(20)
    assert d.code == EX_CONFIG
    assert any("'video' group" in r.message for r in caplog.records)


def test_sound_permission_exits_78(tmp_path, astronaut, caplog):
    audio = FakeAudio()
    audio.deny_permission()
    system = FakePiCameraSystem()
    system.frames = camera_frames(astronaut)
    d = InProcess(pi_config(tmp_path, astronaut), system, audio)
    d.thread.join(20)
    assert d.code == EX_CONFIG
    assert any("'audio' group" in r.message for r in caplog.records)


def test_black_and_saturated_frames_make_no_decision(tmp_path, astronaut):
    system = FakePiCameraSystem()
    system.frames = [np.zeros((240, 320), np.uint8), np.full((240, 320), 255, np.uint8)]
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    try:
        assert d.wait_until(lambda: d.daemon.grabber.stats.frames > 30)
        assert d.daemon.smoother.stable == "away"
        assert d.code is None
    finally:
        assert d.stop() == 0


def test_audio_file_unwritable_at_boot_vision_keeps_running(tmp_path, astronaut, monkeypatch):
    """SDL's real disk driver, pointed at a folder that does not exist yet."""
    target = tmp_path / "later" / "audio.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(target))
    config = make_setup(tmp_path, astronaut)
    cfg = yaml.safe_load(config.read_text())
    cfg["player"]["audio_retry_s"] = 0.5
    cfg["player"]["away"] = "lower"
    config.write_text(yaml.safe_dump(cfg))
    d = InProcess(config, audio=PygameBackend(driver="disk"))
    try:
        assert d.wait_until(lambda: d.daemon.player.status().state == "no-device")
        frames_then = d.daemon.grabber.stats.frames
        assert d.wait_until(lambda: d.daemon.grabber.stats.frames > frames_then + 10)
        assert d.daemon.player.status().state == "no-device"  # vision ran on without sound
        target.parent.mkdir()
        assert d.wait_until(lambda: d.daemon.player.status().state == "playing", 10)
        time.sleep(1.0)
    finally:
        assert d.stop() == 0
    assert np.abs(read_capture(target)).max() > 0.05


def test_unplugged_sound_device_mid_play_comes_back(tmp_path, astronaut):
    audio = FakeAudio(track_ms=60_000)
    system = FakePiCameraSystem()
    system.frames = camera_frames(astronaut)
    config = pi_config(tmp_path, astronaut)
    cfg = yaml.safe_load(config.read_text())
    cfg["player"].update(audio_retry_s=0.3, away="lower")
    config.write_text(yaml.safe_dump(cfg))
    d = InProcess(config, system, audio)
    try:
        assert d.wait_until(lambda: d.daemon.player.status().state == "playing")
        audio.unplug()
        assert d.wait_until(lambda: d.daemon.player.status().state == "no-device")
        frames = d.daemon.grabber.stats.frames
        assert d.wait_until(lambda: d.daemon.grabber.stats.frames > frames + 5)
        audio.plug()
        assert d.wait_until(lambda: d.daemon.player.status().state == "playing")
        assert audio.opens >= 2
    finally:
        assert d.stop() == 0


class Listener:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.pings: list[float] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if b"WATCHDOG=1" in self.sock.recv(4096):
                    self.pings.append(time.monotonic())
            except (socket.timeout, OSError):
                continue

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_a_stalled_main_loop_stops_the_watchdog_pings(tmp_path, astronaut, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "600000")
    listener = Listener(tmp_path / "n.sock")
    system = FakePiCameraSystem()
    system.frames = camera_frames(astronaut)
    release = threading.Event()
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    try:
        assert d.wait_until(lambda: len(listener.pings) >= 3)
        original = d.daemon.vision.process

        def hang(grey):  # a wedged stage: the loop stops here
            release.wait(30)
            return original(grey)

        d.daemon.vision.process = hang
        time.sleep(0.5)
        stalled_at = time.monotonic()
        time.sleep(2.0)
        assert not [t for t in listener.pings if t > stalled_at + 0.1]  # systemd would now kill us
        release.set()
        assert d.wait_until(lambda: listener.pings and listener.pings[-1] > stalled_at + 2.0)
    finally:
        release.set()
        d.stop()
        listener.close()


def test_camera_down_and_retried_still_pings(tmp_path, astronaut, monkeypatch):
    """Known-down camera in back-off is not a stall: no kill-restart loop for a loose cable."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "600000")
    listener = Listener(tmp_path / "n.sock")
    system = FakePiCameraSystem()
    system.unplug()
    d = InProcess(pi_config(tmp_path, astronaut), system, FakeAudio())
    try:
        assert d.wait_until(lambda: d.daemon.grabber.stats.state == "waiting")
        t = time.monotonic()
        time.sleep(1.5)
        assert len([p for p in listener.pings if p > t]) >= 3
    finally:
        d.stop()
        listener.close()


def test_several_real_faces_choice_is_stable(shared_faces):
    from moodbox.config import FacesConfig
    from moodbox.vision.haar import HaarDetector as FaceDetector
    from moodbox.vision.selector import FaceSelector

    grey = read_grey(shared_faces / "two_people.jpg")
    det = FaceDetector(dataclasses.replace(FacesConfig(), detect_width=1126, roi=False))
    sel = FaceSelector()
    rng = np.random.default_rng(0)
    chosen = []
    for _ in range(15):
        noisy = np.clip(grey.astype(np.int16) + rng.integers(-6, 7, grey.shape), 0, 255).astype(np.uint8)
        box = sel.choose(det.detect(noisy))
        chosen.append(box.x // 100)
    assert len(set(chosen)) == 1


def test_decisions_never_read_the_wall_clock():
    """Clock jumps (a Pi without RTC syncing time) cannot move a timer: every timer runs
    on time.monotonic(); the wall clock is read only for quiet hours (time of day)."""
    # web.py: a page session's 30 days are calendar days that outlive a restart; a clock
    # jump can only end a session early (the page asks for the token again)
    allowed = {"bench.py", "notify.py", "web.py"}
    for path in (REPO / "edge").rglob("*.py"):
        if path.name in allowed or "catalog" in path.parts:
            continue
        text = path.read_text()
        assert not re.search(r"time\.time\(\)|datetime\.now\(", text), path
    player = (REPO / "edge" / "audio" / "thread.py").read_text()
    assert "time.localtime(" in player  # quiet hours: the one wall-clock reading


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_steady_state_writes_nothing(tmp_path, astronaut):
    """Run the real daemon under strace: after start-up it opens no file for writing
    (the SDL disk-audio capture is the stand-in sound card and is excluded)."""
    config = make_setup(tmp_path, astronaut)
    capture = tmp_path / "audio.raw"
    trace = tmp_path / "trace.txt"
    env = dict(os.environ, SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(capture),
               PYTHONDONTWRITEBYTECODE="1", HOME=str(tmp_path / "home"))
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,open,creat,rename,renameat2,unlink,unlinkat,mkdir",
                        "-o", str(trace), *moodbox_command(), "run", "--config", str(config),
                        "--duration", "12"], capture_output=True, text=True, timeout=120, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "status fps=" in r.stdout
    text = trace.read_text()
    assert "emotion_int8.tflite" in text and "O_RDONLY" in text  # the trace saw the file opens
    writes = []
    for line in text.splitlines():
        if re.search(r"(O_WRONLY|O_RDWR|O_CREAT)", line) or re.search(r"\b(creat|rename|renameat2|unlink|unlinkat|mkdir)\(", line):
            if any(ok in line for ok in ("/dev/", str(capture), "/proc/", "ENOENT")):
                continue
            writes.append(line)
    assert writes == [], "\n".join(writes[:20])
