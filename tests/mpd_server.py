"""A real Debian `mpd` for tests: temp folder, Unix socket, real music, a fifo the test hears."""
from __future__ import annotations

import array
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from helpers import wait_until

RATE = 8000  # the fifo carries 8 kHz mono 16-bit PCM: cheap, and plenty to tell tones apart


def require_mpd() -> str:
    path = shutil.which("mpd")
    if path is None:
        pytest.skip("Debian's mpd is not installed (apt install mpd); the MPD tests need it")
    pytest.importorskip("mpd", reason="python-mpd2 is not installed (pip install 'moodbox[mpd]')")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Heard:
    """One block read from MPD's fifo: when it arrived, its level and its samples."""

    at: float
    rms: float
    samples: np.ndarray


class FifoListener:
    """Reads MPD's fifo output in a thread; MPD paces it in real time (its fifo plugin
    drops what nobody reads), so the arrival time of each block says when it played."""

    def __init__(self, path: Path):
        self.path = path
        self.blocks: list[Heard] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fifo", daemon=True)
        self.lock = threading.Lock()

    def start(self) -> "FifoListener":
        self._thread.start()
        return self

    def _run(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, 65536)
                if not data:
                    time.sleep(0.02)  # no writer right now (MPD restarting)
                    continue
                pcm = array.array("h")
                pcm.frombytes(data[: len(data) // 2 * 2])
                x = np.asarray(pcm, dtype=np.float32) / 32768.0
                rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
                with self.lock:
                    self.blocks.append(Heard(time.monotonic(), rms, x))
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def since(self, t0: float, t1: float = math.inf) -> list[Heard]:
        with self.lock:
            return [b for b in self.blocks if t0 <= b.at < t1]

    def level(self, t0: float, t1: float = math.inf) -> float:
        """The loudest block's RMS in [t0, t1) (0 when nothing was heard)."""
        return max((b.rms for b in self.since(t0, t1)), default=0.0)

    def tone(self, t0: float, t1: float = math.inf) -> float:
        """The dominant frequency heard in [t0, t1) (0 when silent)."""
        blocks = [b.samples for b in self.since(t0, t1) if b.rms > 0.003]
        if not blocks:
            return 0.0
        x = np.concatenate(blocks)[-RATE:]
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        return float(np.fft.rfftfreq(len(x), 1 / RATE)[int(np.argmax(spectrum[1:])) + 1])

    def wait_for(self, check, timeout: float = 10.0, step: float = 0.1) -> bool:
        return wait_until(check, timeout, step)


@dataclass
class MpdServer:
    """`mpd --no-daemon` on a config in `root`: its socket `root/mpd.sock`, a music folder,
    a database and state file of its own, and one audio output (fifo: heard by `listener`;
    null: silent but paced)."""

    root: Path
    music: Path
    output: str = "fifo"
    port: int | None = None
    password: str = ""
    mixer: str = "software"
    proc: subprocess.Popen | None = None
    listener: FifoListener | None = None
    restarts: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def socket(self) -> str:
        return str(self.root / "mpd.sock")

    @property
    def fifo(self) -> Path:
        return self.root / "out.fifo"

    def write_config(self) -> Path:
        r = self.root
        (r / "playlists").mkdir(exist_ok=True)
        out = (f'audio_output {{\n type "fifo"\n name "test fifo"\n path "{self.fifo}"\n'
               f' format "{RATE}:16:1"\n mixer_type "{self.mixer}"\n}}\n'
               if self.output == "fifo" else
               f'audio_output {{\n type "null"\n name "silent"\n mixer_type "{self.mixer}"\n}}\n')
        lines = [f'music_directory "{self.music}"', f'db_file "{r / "db"}"',
                 f'state_file "{r / "state"}"', f'playlist_directory "{r / "playlists"}"',
                 f'log_file "{r / "mpd.log"}"', f'bind_to_address "{self.socket}"',
                 'zeroconf_enabled "no"', 'auto_update "no"', 'restore_paused "yes"']
        if self.port:
            lines += ['bind_to_address "127.0.0.1"', f'port "{self.port}"']
        if self.password:
            lines.append(f'password "{self.password}@read,add,control,admin"')
        conf = r / "mpd.conf"
        conf.write_text("\n".join(lines) + "\n" + out, encoding="utf-8")
        return conf

    def start(self, timeout: float = 20.0) -> "MpdServer":
        conf = self.write_config()
        if self.output == "fifo" and self.listener is None:
            if not self.fifo.exists():
                os.mkfifo(self.fifo)
            self.listener = FifoListener(self.fifo).start()
        Path(self.socket).unlink(missing_ok=True)
        self.proc = subprocess.Popen([require_mpd(), "--no-daemon", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mpd exited {self.proc.returncode}: {self.mpd_log()}")
            if Path(self.socket).exists():
                try:
                    c = self.client()
                    try:
                        if "updating_db" not in c.status():
                            return self
                    finally:
                        c.disconnect()
                except Exception:  # noqa: BLE001 (not up yet)
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"mpd did not start in {timeout} s: {self.mpd_log()}")

    def client(self):
        import mpd

        c = mpd.MPDClient()
        c.timeout = 5
        c.connect(self.socket)
        if self.password:
            c.password(self.password)
        return c

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.restarts += 1
        self.start()

    def close(self) -> None:
        self.stop()
        if self.listener is not None:
            self.listener.stop()

    def mpd_log(self) -> str:
        p = self.root / "mpd.log"
        return p.read_text(errors="replace")[-2000:] if p.exists() else ""
