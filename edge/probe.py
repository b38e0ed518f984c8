"""Starts the real `moodbox run` as a child process and watches it, as systemd would.

One helper for everything that measures or tests the daemon from outside: `moodbox
bench` (peak RSS, start to first decision), workshop/soak.py (RSS, fds and threads over
time) and the end-to-end tests. It plays systemd's part: a notify socket collects the
daemon's READY/WATCHDOG/STATUS messages with their arrival times, and /proc gives the
process's memory, open files and threads.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

FIRST_DECISION = "STATUS=first decision"


def moodbox_command() -> list[str]:
    """The installed `moodbox` console script beside this interpreter, else `python -m moodbox`."""
    exe = shutil.which("moodbox", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "moodbox"]


@dataclass(frozen=True)
class ProcSample:
    rss_mb: float
    peak_rss_mb: float
    fds: int
    threads: int


def sample_process(pid: int) -> ProcSample:
    """Memory (resident now and peak), open file descriptors and threads of `pid`."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    kib = lambda key: int(fields.get(key, "0 kB").split()[0])  # noqa: E731
    return ProcSample(rss_mb=kib("VmRSS") / 1024.0, peak_rss_mb=kib("VmHWM") / 1024.0,
                      fds=len(os.listdir(f"/proc/{pid}/fd")), threads=int(fields["Threads"]))


class NotifyListener:
    """Plays systemd: a datagram socket collecting sd_notify fields with arrival times."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            self.messages.extend((now, field) for field in data.split("\n"))

    def fields(self) -> list[str]:
        return [f for _, f in self.messages]

    def first(self, prefix: str) -> float | None:
        """Arrival time (monotonic) of the first field starting with `prefix`."""
        return next((t for t, f in self.messages if f.startswith(prefix)), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


class DaemonProcess:
    """A `moodbox run` child: its log collected line by line, its notify messages, /proc."""

    def __init__(self, args: list[str], audio_file: Path | str = os.devnull,
                 extra_env: dict | None = None, cwd: Path | None = None,
                 watchdog_usec: int | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="moodbox-probe-")
        self.notify = NotifyListener(Path(self._tmp.name) / "notify.sock")
        env = dict(os.environ, SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(audio_file),
                   PYTHONUNBUFFERED="1", NOTIFY_SOCKET=str(self.notify.path))
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        env.update(extra_env or {})
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*moodbox_command(), "run", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=str(cwd) if cwd else None)
        self._reader = threading.Thread(target=self._read, name="daemon-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        """True once `text` is in the log; False after `timeout` or when the process ended
        without printing it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log:
                return True
            if self.proc.poll() is not None:
                self._reader.join(2)
                return text in self.log
            time.sleep(0.05)
        return False

    def start_to_first_decision_s(self, timeout: float = 30.0) -> float | None:
        """Seconds from starting the process to its first decision (a notify STATUS)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.running():
            t = self.notify.first(FIRST_DECISION)
            if t is not None:
                return t - self.started
            time.sleep(0.02)
        t = self.notify.first(FIRST_DECISION)
        return None if t is None else t - self.started

    def sample(self) -> ProcSample:
        return sample_process(self.proc.pid)

    def wait(self, timeout: float | None = None, every_s: float = 0.1) -> tuple[int, float]:
        """Wait for the process to end by itself; (exit status, its peak RSS in MB)."""
        peak = 0.0
        end = None if timeout is None else time.monotonic() + timeout
        while self.proc.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(self.proc.args, timeout)
            try:
                peak = max(peak, self.sample().peak_rss_mb)
            except (OSError, KeyError):
                pass
            time.sleep(every_s)
        self._reader.join(2)
        return self.proc.returncode, peak

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send `sig` and wait; (exit status, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(2)
        return code, time.monotonic() - t0

    def close(self) -> None:
        """Kill what is left and remove the notify socket."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(2)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()  # the log pipe (a child still holding it keeps it open)
        self.notify.close()
        self._tmp.cleanup()

    def __enter__(self) -> "DaemonProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
