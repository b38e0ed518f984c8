"""The control socket's protocol and its care for stale or foreign sockets (a stub core)."""
from __future__ import annotations

import json
import logging
import socket
import tempfile
from pathlib import Path

import pytest

from moodbox.control.socket import MAX_LINE, ControlClient, ControlSocket, NoDaemon


class EchoCore:
    def __init__(self):
        self.requests = []

    def handle(self, request, now):
        self.requests.append(request)
        return {"ok": True, "echo": request}


@pytest.fixture()
def sock_path():
    with tempfile.TemporaryDirectory(prefix="mbx") as d:
        yield Path(d) / "c.sock"


def test_one_json_object_per_line_several_per_connection(sock_path):
    core = EchoCore()
    server = ControlSocket(sock_path, core)
    assert server.start()
    try:
        assert sock_path.stat().st_mode & 0o777 == 0o660
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
            f = s.makefile("rwb")
            f.write(b'{"cmd": "status"}\n{"cmd": "volume", "level": 0.5}\nnot json\n[1, 2]\n')
            f.flush()
            replies = [json.loads(f.readline()) for _ in range(4)]
            f.write(b"x" * (MAX_LINE + 10) + b"\n")
            f.flush()
            too_long = json.loads(f.readline())
        assert replies[0] == {"ok": True, "echo": {"cmd": "status"}}
        assert replies[1]["echo"] == {"cmd": "volume", "level": 0.5}
        assert replies[2] == {"ok": False, "error": "not JSON; send one JSON object per line"}
        assert replies[3] == {"ok": True, "echo": {}}  # not an object: the core says "unknown"
        assert too_long == {"ok": False, "error": "request too long"}
        assert ControlClient(sock_path).request({"cmd": "skip"})["echo"] == {"cmd": "skip"}
    finally:
        server.close()


def test_a_second_daemon_leaves_a_live_socket_alone(sock_path, caplog):
    first = ControlSocket(sock_path, EchoCore())
    assert first.start()
    try:
        with caplog.at_level(logging.ERROR):
            assert not ControlSocket(sock_path, EchoCore()).start()
        assert "another moodbox answers there" in caplog.text
        assert ControlClient(sock_path).request({"cmd": "status"})["ok"]  # still the first's
    finally:
        first.close()
    # the first one closed: its socket file is now stale and the next start replaces it
    with pytest.raises(NoDaemon, match="no moodbox daemon answers"):
        ControlClient(sock_path).request({"cmd": "status"})
    again = ControlSocket(sock_path, EchoCore())
    assert again.start()
    again.close()


def test_something_else_at_the_path_is_not_removed(sock_path, caplog):
    sock_path.write_text("my notes")
    with caplog.at_level(logging.ERROR):
        assert not ControlSocket(sock_path, EchoCore()).start()
    assert "not a socket" in caplog.text and sock_path.read_text() == "my notes"
    with pytest.raises(NoDaemon):
        ControlClient(sock_path).request({"cmd": "status"})
