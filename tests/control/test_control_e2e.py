"""End to end: the owner's commands on the real daemon (replay camera on a real photo,
SDL's disk driver capturing what the speaker would play)."""
from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import TONES, dominant_freq, make_setup, read_capture, write_tone, wait_until
from moodbox.probe import DaemonProcess, moodbox_command

RATE = 44100
OTHER_HZ = 1200  # a second track in the emotion's playlist


@pytest.fixture()
def short_dir():
    """Unix socket paths are limited to 107 bytes: keep them short."""
    with tempfile.TemporaryDirectory(prefix="mbx") as d:
        yield Path(d)


def cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([*moodbox_command(), *args], capture_output=True, text=True,
                          timeout=timeout)


class Box:
    """A running daemon, its socket and its capture."""

    def __init__(self, tmp_path: Path, photo: Path, sock: Path, extra_track: bool = False,
                 **overrides):
        self.sock = sock
        self.capture = tmp_path / "audio.raw"
        self.state = tmp_path / "state"
        overrides.setdefault("player__max_volume", 0.9)
        self.config = make_setup(tmp_path, photo, control__socket=str(sock), **overrides)
        if extra_track:
            write_tone(tmp_path / "happy" / "other.wav", OTHER_HZ, 20.0)
        self.proc = DaemonProcess(["--config", str(self.config)], audio_file=self.capture,
                                  extra_env={"STATE_DIRECTORY": str(self.state)},
                                  cwd=tmp_path)

    def cmd(self, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, "--socket", str(self.sock))

    def status(self) -> dict:
        r = self.cmd("status", "--json")
        assert r.returncode == 0, r.stderr + self.proc.log
        return json.loads(r.stdout)

    def mark(self) -> int:
        """The capture's length in samples now (SDL writes it in real time)."""
        return self.capture.stat().st_size // 4

    def audio(self, start: int, end: int | None = None) -> np.ndarray:
        return read_capture(self.capture)[start:end]

    def close(self) -> None:
        self.proc.close()


@pytest.fixture()
def box(tmp_path, astronaut, short_dir):
    made: list[Box] = []

    def make(**overrides) -> Box:
        b = Box(tmp_path, astronaut, short_dir / "c.sock", **overrides)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


def playing(b: Box, emotion: str) -> None:
    assert b.proc.wait_for(f"from {emotion} (mood {emotion})", 30), b.proc.log


def test_status_json_and_skip_changes_the_track_and_is_learned(box, tmp_path):
    b = box(extra_track=True)
    emotion = "happy"
    playing(b, emotion)
    s = b.status()
    for key in ("emotion", "mood", "playlist", "track", "volume", "paused", "hold", "camera",
                "faces", "fps", "uptime_s", "quiet_hours", "history"):
        assert key in s, key
    assert s["emotion"]["name"] == emotion and 0.4 < s["emotion"]["p"] <= 1.0
    assert s["mood"] == emotion and s["playlist"] == emotion
    first = s["track"]["path"]
    assert Path(first).parent == tmp_path / emotion
    assert s["volume"] == pytest.approx(0.8) and s["paused"] is False and s["hold"] is None
    assert s["camera"] == "open" and s["faces"] == 1 and s["fps"] > 2
    assert s["uptime_s"] > 0 and s["quiet_hours"] is False
    assert s["history"][0]["mood"] == emotion and s["history"][0]["emotion"] == emotion
    text = b.cmd("status")
    assert text.returncode == 0 and f"from {emotion}" in text.stdout and "mood happy" in text.stdout
    by_config = cli("status", "--json", "--config", str(b.config))  # control.socket from it
    assert by_config.returncode == 0 and json.loads(by_config.stdout)["mood"] == emotion

    time.sleep(1.0)
    before = b.mark()
    r = b.cmd("skip")
    assert r.returncode == 0 and Path(first).name in r.stdout, r.stderr
    after = b.mark()
    assert wait_until(lambda: (b.status()["track"] or {}).get("path") not in (None, first))
    second = b.status()["track"]["path"]
    time.sleep(1.2)
    x = b.audio(0)
    hz = {Path(first).name: TONES[emotion] if Path(first).name == f"{emotion}.wav" else OTHER_HZ,
          Path(second).name: TONES[emotion] if Path(second).name == f"{emotion}.wav" else OTHER_HZ}
    assert abs(dominant_freq(x[before - RATE // 2:before]) - hz[Path(first).name]) < 5
    assert abs(dominant_freq(x[after + RATE // 2:after + RATE]) - hz[Path(second).name]) < 5
    # learned: the skipped track plays less in this mood, written to the state directory
    assert b.status()["learned"] == {emotion: 1}
    assert "played less in happy: 1 track" in b.cmd("status").stdout
    saved = json.loads((b.state / "learned-skips.json").read_text())
    assert saved["weights"][emotion][first] == pytest.approx(0.5)
    code, _ = b.proc.stop()
    assert code == 0 and "Traceback" not in b.proc.log
    # a restart keeps what was learned
    b.proc.close()
    b.proc = DaemonProcess(["--config", str(b.config)], audio_file=b.capture,
                           extra_env={"STATE_DIRECTORY": str(b.state)}, cwd=tmp_path)
    assert b.proc.wait_for("learned skips from", 30), b.proc.log
    assert b.proc.wait_for("moodbox running", 30), b.proc.log
    assert b.status()["learned"] == {emotion: 1}


def test_pause_silences_resume_brings_it_back_and_volume_is_capped(box):
    b = box()
    playing(b, "happy")
    time.sleep(0.5)
    assert b.cmd("pause").returncode == 0
    assert b.status()["paused"] is True
    time.sleep(0.3)
    paused_at = b.mark()
    time.sleep(1.0)
    assert rms(b.audio(paused_at, b.mark())) < 0.001
    assert b.cmd("resume").returncode == 0
    resumed_at = b.mark()
    time.sleep(1.0)
    loud = b.audio(resumed_at + RATE // 4, b.mark())
    assert rms(loud) > 0.2  # a 0.5 sine at volume 0.8
    assert abs(dominant_freq(loud) - TONES["happy"]) < 5

    r = b.cmd("volume", "0.3")
    assert r.returncode == 0, r.stderr
    at = b.mark()
    time.sleep(0.8)
    quiet = b.audio(at + RATE // 4, b.mark())
    assert np.abs(quiet).max() == pytest.approx(0.5 * 0.3, abs=0.02)
    r = b.cmd("volume", "1")
    assert r.returncode == 0 and "capped at max_volume 0.90" in r.stdout
    assert b.status()["volume"] == pytest.approx(0.9)
    at = b.mark()
    time.sleep(0.8)
    capped = b.audio(at + RATE // 4, b.mark())
    assert np.abs(capped).max() == pytest.approx(0.5 * 0.9, abs=0.02)
    assert np.abs(b.audio(0)).max() <= 0.5 * 0.9 + 0.01  # never above max_volume
    assert b.cmd("volume", "1.5").returncode == 1


def test_hold_overrides_the_mood_and_release_gives_it_back(box):
    b = box()
    playing(b, "happy")
    r = b.cmd("hold", "sad", "--minutes", "5")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: b.status()["playlist"] == "sad")
    s = b.status()
    assert s["mood"] == "happy" and s["hold"]["playlist"] == "sad"
    assert 250 < s["hold"]["remaining_s"] <= 300
    time.sleep(0.6)
    at = b.mark()
    time.sleep(0.8)
    assert abs(dominant_freq(b.audio(at, b.mark())) - TONES["sad"]) < 5
    assert b.cmd("release").returncode == 0
    assert wait_until(lambda: b.status()["playlist"] == "happy")
    assert b.status()["hold"] is None
    time.sleep(0.6)
    at = b.mark()
    time.sleep(0.8)
    assert abs(dominant_freq(b.audio(at, b.mark())) - TONES["happy"]) < 5
    r = b.cmd("hold", "nope")
    assert r.returncode == 1 and "no playlist 'nope'" in r.stderr


def test_no_daemon_exits_1_with_a_clear_message(short_dir):
    r = cli("status", "--socket", str(short_dir / "none.sock"))
    assert r.returncode == 1
    assert r.stderr.startswith("error: no moodbox daemon is running") and r.stdout == ""
    stale = short_dir / "stale.sock"  # left behind by a killed daemon
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()
    for command in (["skip"], ["pause"], ["volume", "0.5"], ["hold", "calm"], ["release"]):
        r = cli(*command, "--socket", str(stale))
        assert r.returncode == 1 and "no moodbox daemon answers" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_a_stale_socket_is_replaced_at_start_and_the_page_is_off_by_default(box, short_dir):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(short_dir / "c.sock"))
    s.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    b = box(web__listen=f"127.0.0.1:{port}", web__token="t" * 20)  # web.enabled: false
    assert b.proc.wait_for("removing the stale control socket", 30), b.proc.log
    playing(b, "happy")
    assert b.status()["mood"] == "happy"
    assert (short_dir / "c.sock").stat().st_mode & 0o777 == 0o660
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the network
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert "phone page" not in b.proc.log
    check = cli("check", "--config", str(b.config), timeout=60)
    assert f"a running moodbox answers on {b.sock}" in check.stdout, check.stdout + check.stderr
    listening = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    inodes = {l.split()[9] for l in listening.splitlines()[1:] if l.split()[3] == "0A"}
    fds = Path(f"/proc/{b.proc.pid}/fd")
    own = {str(fd.readlink()) for fd in fds.iterdir()}
    assert not {f"socket:[{i}]" for i in inodes} & own  # the daemon holds no TCP listener
