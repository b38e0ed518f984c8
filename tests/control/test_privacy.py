"""The privacy switch: the store, the core command, a button, and the real daemon closing
the camera (a Pi camera double, a video file held open by OpenCV) and keeping the choice."""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import cv2
import pytest
import yaml

from helpers import make_setup, wait_until
from moodbox.camera import Picamera2Source
from moodbox.commands.classify import read_grey
from moodbox.control.privacy import PrivacyStore, PrivacySwitch
from moodbox.daemon import Daemon
from moodbox.probe import DaemonProcess, moodbox_command
from fakes import FakePiCameraSystem
from test_core import rig  # noqa: F401 (the fixture: a core on a FakeAudio player)



def until(check, timeout: float = 20.0) -> bool:
    return wait_until(check, timeout)


# --- the store ---------------------------------------------------------------------
def test_store_keeps_the_choice_and_writes_only_when_switched(tmp_path):
    store = PrivacyStore(tmp_path / "state" / "privacy.json")
    assert store.load() is False  # never switched: the camera is on, no file is made
    switch = PrivacySwitch(store.load(), store)
    assert switch.set(False) is False and not store.path.exists()  # no change, no write
    assert switch.set(True) is True
    assert json.loads(store.path.read_text()) == {"version": 1, "camera": "off"}
    assert PrivacyStore(store.path).load() is True
    mtime = store.path.stat().st_mtime_ns
    switch.set(True)  # the same again: nothing written
    assert store.path.stat().st_mtime_ns == mtime
    switch.set(False)
    assert PrivacyStore(store.path).load() is False
    assert [p.name for p in store.path.parent.iterdir()] == ["privacy.json"]  # no leftovers


def test_a_garbled_store_keeps_the_camera_off(tmp_path, caplog):
    path = tmp_path / "privacy.json"
    path.write_text("[" * 5000)
    assert PrivacyStore(path).load() is True
    assert "keeping the camera off" in caplog.text
    path.write_text('{"camera": "maybe"}')
    assert PrivacyStore(path).load() is True


def test_the_store_never_writes_through_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the owner's file")
    state = tmp_path / "state"
    state.mkdir()
    store = PrivacyStore(state / "privacy.json")
    (state / f".privacy.json.{os.getpid()}.tmp").symlink_to(victim)
    assert store.save(True)
    assert victim.read_text() == "the owner's file"
    assert store.load() is True


def test_an_unwritable_state_directory_is_one_line_and_the_switch_still_works(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    switch = PrivacySwitch(False, PrivacyStore(blocker / "privacy.json"))
    assert switch.set(True) and switch.off
    assert "cannot keep the choice" in caplog.text


# --- the core -----------------------------------------------------------------------
def test_core_camera_command_shows_and_switches(rig):  # noqa: F811
    core, player, fake, clock = rig
    shown = core.handle({"cmd": "camera"}, clock.t)
    assert shown["ok"] and shown["camera"] == "on" and shown["privacy"] is False
    assert shown["status"]["privacy"] is False and shown["status"]["camera"] == "open"
    off = core.handle({"cmd": "camera", "state": "off"}, clock.t)
    assert off["camera"] == "off" and off["privacy"] is True
    assert off["status"]["camera"] == "off" and off["status"]["privacy"] is True
    assert player.state == "playing"  # the music plays on
    assert core.camera() == {"camera": "off", "privacy": True}
    for bad in ("of", 1, ["off"], {"x": 1}):
        reply = core.handle({"cmd": "camera", "state": bad}, clock.t)
        assert not reply["ok"] and "must be \"on\" or \"off\"" in reply["error"]
    assert core.handle({"cmd": "camera", "state": "on"}, clock.t)["privacy"] is False


def test_privacy_button_toggles_the_camera(rig):  # noqa: F811
    pytest.importorskip("gpiozero", reason="pip install 'moodbox[buttons]'")
    from gpiozero.pins.mock import MockFactory

    from moodbox.config import ButtonsConfig
    from moodbox.control.buttons import Buttons

    core, player, fake, clock = rig
    factory = MockFactory()
    buttons = Buttons(ButtonsConfig(enabled=True, camera=22, bounce_s=0.0), core,
                      pin_factory=factory)
    assert buttons.start()
    try:
        for expected in (True, False, True):
            factory.pin(22).drive_low()
            time.sleep(0.05)
            factory.pin(22).drive_high()
            assert until(lambda: core.camera()["privacy"] is expected, 3.0)
    finally:
        buttons.close()


def test_config_privacy_section_and_camera_pin(tmp_path):
    from moodbox.config import ConfigError, config_from_dict

    base = {"playlists": {"favourites": str(tmp_path)}}
    assert config_from_dict(base, tmp_path).privacy.music == "keep"
    cfg = config_from_dict({**base, "privacy": {"music": "pause"},
                            "buttons": {"enabled": True, "camera": 22}}, tmp_path)
    assert cfg.privacy.music == "pause" and cfg.buttons.camera == 22
    with pytest.raises(ConfigError, match=r"privacy.music: must be one of keep, neutral, pause"):
        config_from_dict({**base, "privacy": {"music": "stop"}}, tmp_path)
    with pytest.raises(ConfigError, match=r"privacy.musik: unknown key; did you mean 'music'"):
        config_from_dict({**base, "privacy": {"musik": "keep"}}, tmp_path)


# --- the real daemon, in process, on a Pi camera double ------------------------------
class InProcess:
    def __init__(self, config: Path, system: FakePiCameraSystem, duration: float = 60.0):
        factory = lambda cfg, override: Picamera2Source(cfg.width, cfg.height, cfg.fps,  # noqa: E731
                                                        factory=system)
        self.daemon = Daemon(config, duration_s=duration, source_factory=factory, hard_exit=False)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.daemon.run()

    def stop(self) -> int | None:
        self.daemon.request_stop()
        self.thread.join(10)
        return self.code


def pi_setup(tmp_path: Path, photo: Path, music: str = "keep") -> Path:
    path = make_setup(tmp_path, photo, privacy__music=music)
    cfg = yaml.safe_load(path.read_text())
    cfg["camera"] = {"type": "picamera2", "fps": 20, "timeout_s": 0.3}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture()
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(d))
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(tmp_path / "audio.raw"))
    return d


def test_camera_off_really_closes_the_pi_camera_and_on_opens_it(tmp_path, astronaut, state_dir):
    system = FakePiCameraSystem()
    system.frames = [cv2.resize(read_grey(astronaut), (320, 240))]
    run = InProcess(pi_setup(tmp_path, astronaut), system)
    try:
        assert until(lambda: hasattr(run.daemon, "control")
                     and run.daemon.control.status(time.monotonic())["state"] == "playing")
        core = run.daemon.control
        assert core.camera("off") == {"camera": "off", "privacy": True}
        # closed at once: every Picamera2 opened was closed (a Pi camera's LED goes dark)
        assert system.opened == system.closed >= 1
        captured = system.captures
        time.sleep(1.0)
        assert system.captures == captured  # nothing is read while it is off
        s = core.status(time.monotonic())
        assert s["camera"] == "off" and s["privacy"] is True and s["faces"] == 0
        assert s["state"] == "playing" and s["mood"] == "happy"  # the music plays on
        assert json.loads((state_dir / "privacy.json").read_text())["camera"] == "off"
        assert core.camera("on")["privacy"] is False
        assert until(lambda: system.captures > captured + 5)
        assert system.opened == system.closed + 1
    finally:
        assert run.stop() == 0
    assert system.opened == system.closed


def test_a_restart_keeps_the_camera_off_and_it_is_never_opened(tmp_path, astronaut, state_dir):
    state_dir.mkdir()
    (state_dir / "privacy.json").write_text('{"version": 1, "camera": "off"}')
    system = FakePiCameraSystem()
    run = InProcess(pi_setup(tmp_path, astronaut), system)
    try:
        assert until(lambda: hasattr(run.daemon, "control") and run.daemon.front_ends is not None)
        time.sleep(1.0)
        assert system.opened == 0 and system.captures == 0
        assert run.daemon.control.status(time.monotonic())["camera"] == "off"
        assert run.code is None  # not mistaken for a dead camera
    finally:
        assert run.stop() == 0


def test_privacy_music_pause_pauses_and_camera_on_resumes(tmp_path, astronaut, state_dir):
    system = FakePiCameraSystem()
    system.frames = [cv2.resize(read_grey(astronaut), (320, 240))]
    run = InProcess(pi_setup(tmp_path, astronaut, music="pause"), system)
    try:
        assert until(lambda: hasattr(run.daemon, "control")
                     and run.daemon.control.status(time.monotonic())["state"] == "playing")
        core = run.daemon.control
        core.camera("off")
        s = core.status(time.monotonic())
        assert s["paused"] and s["state"] == "paused"
        core.camera("on")
        assert until(lambda: not core.status(time.monotonic())["paused"])
    finally:
        assert run.stop() == 0


def test_privacy_music_neutral_plays_the_neutral_playlist(tmp_path, astronaut, state_dir):
    system = FakePiCameraSystem()
    system.frames = [cv2.resize(read_grey(astronaut), (320, 240))]
    run = InProcess(pi_setup(tmp_path, astronaut, music="neutral"), system)
    try:
        assert until(lambda: hasattr(run.daemon, "control")
                     and run.daemon.control.status(time.monotonic())["mood"] == "happy")
        core = run.daemon.control
        core.camera("off")
        assert until(lambda: core.status(time.monotonic())["playlist"] == "neutral")
        assert core.status(time.monotonic())["mood"] == "neutral"
    finally:
        assert run.stop() == 0


# --- the real daemon as a process, steered by the CLI --------------------------------
def video_of(photo: Path, path: Path) -> Path:
    grey = cv2.resize(read_grey(photo), (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(20):
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    found = False
    for fd in fds.iterdir():
        try:
            found = found or os.readlink(fd) == str(path)
        except OSError:
            continue
    return found


def cli(sock: Path, *args: str):
    import subprocess

    return subprocess.run([*moodbox_command(), *args, "--socket", str(sock)], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_cli_camera_off_closes_the_video_and_a_restart_keeps_it(tmp_path, astronaut):
    with tempfile.TemporaryDirectory(prefix="mbx") as short:
        sock = Path(short) / "c.sock"
        video = video_of(astronaut, tmp_path / "camera.avi")
        config = make_setup(tmp_path, astronaut, control__socket=str(sock))
        cfg = yaml.safe_load(config.read_text())
        cfg["camera"] = {"type": "replay", "path": str(video), "fps": 10, "loop": True}
        config.write_text(yaml.safe_dump(cfg))
        env = {"STATE_DIRECTORY": str(tmp_path / "state")}
        proc = DaemonProcess(["--config", str(config)], audio_file=tmp_path / "a.raw",
                             extra_env=env, cwd=tmp_path)
        try:
            assert proc.wait_for("moodbox running", 60), proc.log
            assert until(lambda: holds_open(proc.pid, video), 20), proc.log
            r = cli(sock, "camera")
            assert r.returncode == 0 and "camera on" in r.stdout, r.stderr
            r = cli(sock, "camera", "off")
            assert r.returncode == 0, r.stderr
            assert "camera off (privacy)" in r.stdout
            assert not holds_open(proc.pid, video)  # closed before the answer came
            status = json.loads(cli(sock, "status", "--json").stdout)
            assert status["camera"] == "off" and status["privacy"] is True
            assert "camera off (privacy)" in cli(sock, "status").stdout
            assert "camera off (privacy)" in cli(sock, "camera").stdout
            assert cli(sock, "camera", "maybe").returncode != 0
        finally:
            proc.close()
        proc = DaemonProcess(["--config", str(config)], audio_file=tmp_path / "b.raw",
                             extra_env=env, cwd=tmp_path)
        try:
            assert proc.wait_for("moodbox running", 60), proc.log
            assert "camera off (privacy), as the owner left it" in proc.log
            status = json.loads(cli(sock, "status", "--json").stdout)
            assert status["camera"] == "off" and status["privacy"] is True
            time.sleep(1.0)
            assert not holds_open(proc.pid, video)
            r = cli(sock, "camera", "on")
            assert r.returncode == 0 and "camera on" in r.stdout, r.stderr
            assert until(lambda: holds_open(proc.pid, video), 20), proc.log
            assert json.loads(cli(sock, "status", "--json").stdout)["privacy"] is False
        finally:
            proc.close()
        assert json.loads((tmp_path / "state" / "privacy.json").read_text())["camera"] == "on"
