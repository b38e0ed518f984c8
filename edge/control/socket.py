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

from moodbox import jsonio
from moodbox.config import ControlConfig
from moodbox.control.bounded import BoundedThreadingMixIn
from moodbox.control.core import ControlCore
from moodbox.limits import SOCKET_CONNECTIONS

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
SOCKET_MODE = 0o660  # the service user and the moodbox group
BUSY = jsonio.dumps({"ok": False, "error": "the daemon is busy (too many connections); "
                                         "try again"}).encode() + b"\n"


def private_dir() -> Path:
    """The fallback socket's folder: $TMPDIR/moodbox-UID, else /tmp/moodbox-UID; mode 0700.
    (Not tempfile.gettempdir(): that probes by writing a file, and the box writes nothing.)"""
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"moodbox-{os.getuid()}"


class UnsafeSocket(OSError):
    """A socket path another user could have put there; `strerror` says why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(errno.EPERM, reason, str(path))


def check_private_dir(folder: Path, make: bool = False) -> None:
    """UnsafeSocket unless `folder` is a real folder (not a symlink) owned by this user
    with no access for anyone else; `make` creates it (0700) first when it is missing."""
    if make:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeSocket(folder, f"{folder} is not a folder (a symlink or a file); remove it")
    if st.st_uid != os.getuid():
        raise UnsafeSocket(folder, f"{folder} belongs to uid {st.st_uid}, not to you (uid "
                                   f"{os.getuid()}); another user may be squatting it: remove it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise UnsafeSocket(folder, f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                                   "chmod 700 it or remove it")


def untrusted_reason(sock: os.stat_result, folder: os.stat_result, uid: int) -> str:
    """Why a socket may not be moodbox's ("" when it may): it must belong to this user or
    root, or sit in a folder that only its owner (or root) can write to (the service's
    /run/moodbox, owned by the moodbox user)."""
    if sock.st_uid in (uid, 0):
        return ""
    if folder.st_uid in (sock.st_uid, 0) and not stat.S_IMODE(folder.st_mode) & 0o022:
        return ""
    return (f"it belongs to uid {sock.st_uid} and sits in a folder others can write to, so "
            "another user may have put it there; not trusting it")


def default_socket_paths() -> list[Path]:
    """Where the socket is when control.socket is empty, first choice first: systemd's
    RuntimeDirectory ($RUNTIME_DIRECTORY, /run/moodbox under the service), else
    $XDG_RUNTIME_DIR/moodbox.sock, else /tmp/moodbox-UID/moodbox.sock (a private folder)."""
    paths = []
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        paths.append(Path(runtime) / "control.sock")
    paths.append(Path("/run/moodbox/control.sock"))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        paths.append(Path(xdg) / "moodbox.sock")
    paths.append(private_dir() / "moodbox.sock")
    return paths


def server_socket_path(cfg: ControlConfig) -> Path:
    """The path the daemon listens on."""
    if cfg.socket:
        return Path(cfg.socket)
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / "control.sock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "moodbox.sock" if xdg else private_dir() / "moodbox.sock"


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
                request = jsonio.loads(line)
            except ValueError as exc:
                why = "" if isinstance(exc, json.JSONDecodeError) else f" ({_first_line(exc)})"
                reply = {"ok": False, "error": f"not JSON{why}; send one JSON object per line"}
            else:
                reply = core.handle(request if isinstance(request, dict) else {}, time.monotonic())
            if not self._send(reply):
                return

    def _send(self, reply: dict) -> bool:
        try:
            self.wfile.write(jsonio.dumps(reply).encode() + b"\n")
            self.wfile.flush()
            return True
        except OSError:
            return False


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class _Server(BoundedThreadingMixIn, socketserver.UnixStreamServer):
    allow_reuse_address = False
    max_connections = SOCKET_CONNECTIONS
    what = "control socket"

    def refuse(self, request: socket.socket) -> None:
        try:
            request.send(BUSY, socket.MSG_DONTWAIT)
        except OSError:
            pass


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
            if self.path.parent == private_dir():
                check_private_dir(self.path.parent, make=True)
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

    def _check_owner(self) -> None:
        """NoDaemon when the socket (or the private fallback folder) may be someone else's."""
        try:
            if self.path.parent == private_dir():
                check_private_dir(self.path.parent)
            reason = untrusted_reason(os.stat(self.path), os.stat(self.path.parent), os.getuid())
        except FileNotFoundError:
            return  # connect() says "no daemon"
        except UnsafeSocket as exc:
            raise NoDaemon(f"not using {self.path}: {exc.strerror}") from None
        except OSError:
            return  # cannot look: connect() reports it
        if reason:
            raise NoDaemon(f"not using {self.path}: {reason}")

    def request(self, request: dict[str, Any]) -> dict:
        self._check_owner()
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
                f.write(jsonio.dumps(request).encode() + b"\n")
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
        try:
            reply = jsonio.loads(line)
        except ValueError as exc:
            reply = exc
        if not isinstance(reply, dict):
            why = _first_line(reply) if isinstance(reply, Exception) else "not a JSON object"
            raise NoDaemon(f"the answer on {self.path} is not a moodbox reply ({why}); is "
                           "something else listening there?")
        return reply
