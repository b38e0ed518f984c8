"""The local control socket: a Unix stream socket speaking one JSON object per line.

Request  {"cmd": "status"} | {"cmd": "skip"} | {"cmd": "pause"} | {"cmd": "resume"}
         | {"cmd": "volume", "level": 0.5} | {"cmd": "hold", "playlist": "calm", "minutes": 30}
         | {"cmd": "release"}
Reply    {"ok": true, ..., "status": {...}} or {"ok": false, "error": "..."}
A connection may send several requests, one per line; each gets one reply line.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import socketserver
import stat
import threading
import time
from pathlib import Path
from typing import Any

from moodbox.config import ControlConfig
from moodbox.control.core import ControlCore

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
SOCKET_MODE = 0o660  # the service user and the moodbox group


def default_socket_paths() -> list[Path]:
    """Where the socket is when control.socket is empty, first choice first: systemd's
    RuntimeDirectory ($RUNTIME_DIRECTORY, /run/moodbox under the service), else
    $XDG_RUNTIME_DIR/moodbox.sock, else /tmp/moodbox-UID.sock."""
    paths = []
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        paths.append(Path(runtime) / "control.sock")
    paths.append(Path("/run/moodbox/control.sock"))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        paths.append(Path(xdg) / "moodbox.sock")
    paths.append(Path(f"/tmp/moodbox-{os.getuid()}.sock"))
    return paths


def server_socket_path(cfg: ControlConfig) -> Path:
    """The path the daemon listens on."""
    if cfg.socket:
        return Path(cfg.socket)
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / "control.sock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "moodbox.sock" if xdg else Path(f"/tmp/moodbox-{os.getuid()}.sock")


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30  # an idle client is dropped

    def handle(self) -> None:
        core: ControlCore = self.server.core  # type: ignore[attr-defined]
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except (OSError, socket.timeout):
                return
            if not line:
                return
            if len(line) > MAX_LINE:
                self._send({"ok": False, "error": "request too long"})
                return
            try:
                request = json.loads(line)
            except ValueError:
                reply = {"ok": False, "error": "not JSON; send one JSON object per line"}
            else:
                reply = core.handle(request if isinstance(request, dict) else {}, time.monotonic())
            if not self._send(reply):
                return

    def _send(self, reply: dict) -> bool:
        try:
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()
            return True
        except OSError:
            return False


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


class ControlSocket:
    """Serves the core on a Unix socket in its own thread. A stale socket left by a killed
    daemon is replaced; one that another running daemon answers on is left alone."""

    def __init__(self, path: Path, core: ControlCore):
        self.path = path
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._core = core

    def start(self) -> bool:
        """Listen; False (logged) when the socket cannot be had. The box plays on."""
        try:
            if self.path.exists() or self.path.is_symlink():
                if not self._remove_stale():
                    return False
            server = _Server(str(self.path), _Handler, bind_and_activate=False)
            server.core = self._core  # type: ignore[attr-defined]
            server.server_bind()
            os.chmod(self.path, SOCKET_MODE)
            server.server_activate()
        except OSError as exc:
            logger.error("control socket %s: %s; `moodbox status` and the other commands "
                         "will not reach this daemon", self.path, exc.strerror or exc)
            return False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="control-socket", daemon=True)
        self._thread.start()
        logger.info("control socket %s (moodbox status, skip, pause, ...)", self.path)
        return True

    def _remove_stale(self) -> bool:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return True
        if not stat.S_ISSOCK(mode):
            logger.error("control socket %s: something that is not a socket is there; "
                         "remove it or set control.socket", self.path)
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise
            logger.info("removing the stale control socket %s", self.path)
            self.path.unlink(missing_ok=True)
            return True
        finally:
            probe.close()
        logger.error("control socket %s: another moodbox answers there; this one runs without "
                     "a control socket (set control.socket to run both)", self.path)
        return False

    def close(self) -> None:
        """Stop serving. The socket file stays (the steady-state "no writes" rule covers
        the way out too); the next start replaces it and systemd removes /run/moodbox."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class NoDaemon(Exception):
    """No moodbox answers on the socket."""


class ControlClient:
    def __init__(self, path: Path, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout

    def request(self, request: dict[str, Any]) -> dict:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError:
            sock.close()
            raise NoDaemon(f"no moodbox daemon is running (no control socket at {self.path}); "
                           "start it with `sudo systemctl start moodbox` or `moodbox run`") from None
        except ConnectionRefusedError:
            sock.close()
            raise NoDaemon(f"no moodbox daemon answers on {self.path} (a stale socket; the "
                           "daemon is not running)") from None
        except PermissionError:
            sock.close()
            raise NoDaemon(f"no permission to use {self.path}; add yourself to the moodbox "
                           "group (sudo usermod -aG moodbox $USER) and log in again") from None
        except OSError as exc:
            sock.close()
            raise NoDaemon(f"cannot reach the moodbox daemon on {self.path} "
                           f"({exc.strerror or exc})") from None
        try:
            with sock, sock.makefile("rwb") as f:
                f.write(json.dumps(request).encode() + b"\n")
                f.flush()
                line = f.readline(MAX_LINE * 4)
        except socket.timeout:
            raise NoDaemon(f"the moodbox daemon on {self.path} did not answer within "
                           f"{self.timeout:g} s") from None
        except OSError as exc:
            raise NoDaemon(f"lost the connection to the moodbox daemon on {self.path} "
                           f"({exc.strerror or exc})") from None
        if not line:
            raise NoDaemon(f"the moodbox daemon on {self.path} closed the connection without "
                           "an answer")
        return json.loads(line)
