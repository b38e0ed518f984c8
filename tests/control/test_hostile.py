"""The hostile review's findings (issue 30, round three), each injected against the real parts:
the daemon's page and socket under a connection flood, garbage requests, absurd numbers,
deep nesting, a squatted socket, control characters, planted symlinks."""
from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import moodbox.probe as probe
from browser import free_port
from helpers import make_setup, wait_until
from moodbox.probe import DaemonProcess, moodbox_command
from test_core import rig  # noqa: F401 (the fixture: a core on a FakeAudio player)

TOKEN = "Zq3-hostile-review-token-x81"
FD_LIMIT = 128  # the daemon's own limit in the flood test (soft and hard)


def cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([*moodbox_command(), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture()
def short_dir():
    with tempfile.TemporaryDirectory(prefix="mbx") as d:
        yield Path(d)


class WebBox:
    """A real daemon with its page on a loopback port and its socket in a short folder."""

    def __init__(self, tmp_path: Path, photo: Path, sock: Path, fd_limit: int | None = None,
                 monkeypatch=None, prepare=None):
        self.sock, self.port = sock, free_port()
        self.config = make_setup(tmp_path, photo, control__socket=str(sock),
                                 web__enabled=True, web__listen=f"127.0.0.1:{self.port}",
                                 web__token=TOKEN)
        if prepare is not None:  # change the setup before the daemon reads it
            prepare(tmp_path)
        if fd_limit is not None:  # the daemon's whole budget, hard limit included
            base = moodbox_command()
            monkeypatch.setattr(probe, "moodbox_command", lambda: [
                "sh", "-c", f'ulimit -n {fd_limit} && exec "$0" "$@"', *base])
        self.proc = DaemonProcess(["--config", str(self.config)], audio_file=tmp_path / "a.raw",
                                  extra_env={"STATE_DIRECTORY": str(tmp_path / "state")},
                                  cwd=tmp_path)

    def cmd(self, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, "--socket", str(self.sock))

    def status(self) -> dict:
        r = self.cmd("status", "--json")
        assert r.returncode == 0, r.stderr + self.proc.log[-3000:]
        return json.loads(r.stdout)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def raw(self, data: bytes, timeout: float = 10.0) -> bytes:
        """Send raw bytes to the page; everything it answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out


@pytest.fixture()
def web_box(tmp_path, astronaut, short_dir, monkeypatch):
    made: list[WebBox] = []

    def make(playing: str = "from happy (mood happy)", **kw) -> WebBox:
        b = WebBox(tmp_path, astronaut, short_dir / "c.sock", monkeypatch=monkeypatch, **kw)
        made.append(b)
        assert b.proc.wait_for(playing, 60), b.proc.log
        return b

    yield make
    for b in made:
        b.proc.close()


# ------------------------------------------------------------------ 1: connection flood

class Flood:
    """n half-open connections opened at once (non-blocking connects), each sending one
    more header byte every few seconds so that no idle timeout frees it (a slowloris)."""

    def __init__(self, port: int, n: int, batch: int = 8):
        self.socks: list[socket.socket] = []
        for i in range(0, n, batch):  # a few at a time: the listen queue is short
            part = []
            for _ in range(min(batch, n - i)):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                part.append(s)
            select.select([], part, [], 3.0)
            self.socks += part
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        started: set[socket.socket] = set()
        while not self._stop.is_set():
            for s in self.socks:
                try:
                    s.send(b"X-A: b" if s in started else b"GET /api/status HTTP/1.1\r\n")
                    started.add(s)
                except OSError:  # not connected yet, or closed by a full page
                    pass
            self._stop.wait(1.0 if len(started) < len(self.socks) else 3.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()


def test_a_half_open_flood_leaves_the_socket_camera_and_music_working(web_box):
    """Finding 1: more half-open connections than the daemon has file descriptors. The page
    refuses what is over its cap at once, so the socket answers, a new track opens (a hold
    to another playlist), the camera keeps delivering frames; after the flood the page
    answers again."""
    b = web_box(fd_limit=FD_LIMIT)
    flood = Flood(b.port, FD_LIMIT + 50)
    try:
        time.sleep(6.0)  # every connection is in (or was refused), none has timed out
        assert b.fds() < FD_LIMIT * 0.6, b.fds()        # far below the limit under the flood
        s = b.status()                                    # the socket answers
        assert s["camera"] == "open" and s["state"] == "playing"
        frames = s["fps"]
        r = b.cmd("hold", "sad")                          # a track still opens
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: (b.status()["track"] or {}).get("name") == "sad.wav"), b.proc.log[-3000:]
        assert b.status()["fps"] > 0 and frames > 0
    finally:
        flood.close()
    # once the flood ends the page answers again: at once where the server has seen the
    # closes, at the latest when the request time limit (10 s) has freed every slot
    status_request = (b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + TOKEN.encode() + b"\r\n\r\n")
    replies: list[bytes] = []
    assert wait_until(lambda: replies.append(b.raw(status_request))
                      or replies[-1].startswith(b"HTTP/1.1 200"), 15), replies[-1][:80]
    assert "Too many open files" not in b.proc.log and "Traceback" not in b.proc.log
    assert "phone page: too many connections" in b.proc.log  # said, rate-limited
    assert b.proc.log.count("phone page: too many connections") < 5


def test_the_daemon_raises_its_open_files_limit_to_the_hard_one():
    """The soft limit (1,024 by default) is raised to the hard one at start."""
    code = ("import resource; from moodbox.limits import raise_fd_limit; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 1000)); "
            "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["1000", "(1000,", "1000)"], r.stderr


# ------------------------------------------------------------------ 2: garbage requests

@pytest.fixture()
def page(rig):  # noqa: F811
    from moodbox.config import WebConfig
    from moodbox.control.web import WebPage

    core, player, fake, clock = rig
    web = WebPage(WebConfig(enabled=True, listen="127.0.0.1:0", token=TOKEN), core)
    assert web.start()
    yield web, player
    web.close()


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


GARBAGE = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",      # TLS on the HTTP port
           b"GARBAGE\r\n\r\n",
           b"GET\r\n\r\n",
           b"GET / HTTP/9.9\r\n\r\n",
           b"POST /api/skip HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
           b"POST /api/skip HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
           b"POST /login HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
           b"GET http://[x/ HTTP/1.1\r\n\r\n"]


@pytest.mark.parametrize("request_bytes", GARBAGE, ids=range(len(GARBAGE)))
def test_a_garbage_request_is_a_400_with_one_line(page, request_bytes, caplog, capfd):
    web, player = page
    before = (player.track, player.state)
    reply = raw(web.port, request_bytes)
    head, _, body = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    assert status.startswith(b"HTTP/1.") and status.split()[1] in (b"400", b"505"), reply
    assert body.strip() and len(body.strip().splitlines()) == 1, body
    assert (player.track, player.state) == before
    assert "Traceback" not in capfd.readouterr().err + caplog.text


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "slowloris"])
def test_a_slow_request_is_cut_off_at_the_time_limit(rig, monkeypatch, trickle):  # noqa: F811
    """Half a request and then silence, or one more header byte every 0.2 s (which no
    per-read timeout ever stops): the page closes it after its request time (1 s here)."""
    from moodbox.config import WebConfig
    from moodbox.control import web

    monkeypatch.setattr(web, "REQUEST_S", 1.0)
    monkeypatch.setattr(web._Server, "request_s", 1.0)
    monkeypatch.setattr(web._Handler, "timeout", 1.0)
    page = web.WebPage(WebConfig(enabled=True, listen="127.0.0.1:0", token=TOKEN), rig[0])
    assert page.start()
    try:
        with socket.create_connection(("127.0.0.1", page.port), timeout=10) as s:
            s.sendall(b"GET /api/status HTTP/1.1\r\n")
            t0 = time.monotonic()
            s.settimeout(0.2)
            closed = False
            while not closed and time.monotonic() - t0 < 8:
                try:
                    closed = s.recv(100) == b""
                except TimeoutError:
                    if trickle:
                        s.sendall(b"X")
                except OSError:
                    closed = True
            took = time.monotonic() - t0
    finally:
        page.close()
    assert closed and 0.8 < took < 3.0, took


def test_bad_requests_are_logged_at_most_once_a_minute(page, caplog, capfd):
    import logging

    caplog.set_level(logging.DEBUG)
    web, _ = page
    for i in range(40):
        raw(web.port, GARBAGE[i % len(GARBAGE)])
    assert raw(web.port, b"GET /api/status HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
               + b"\r\n\r\n").startswith(b"HTTP/1.1 200")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    assert "bad request" in warnings[0].getMessage()
    assert "Traceback" not in capfd.readouterr().err + caplog.text


# ------------------------------------------------------------------ 3: absurd durations

def strict_json(text: str | bytes):
    def refuse(name):
        raise AssertionError(f"{name} in the box's JSON")
    return json.loads(text, parse_constant=refuse)


ABSURD = [float("inf"), float("-inf"), float("nan"), 1e308, 10081, 0, -5, True, "30"]


@pytest.mark.parametrize("minutes", ABSURD, ids=[repr(m) for m in ABSURD])
def test_the_core_refuses_a_hold_that_is_not_a_sane_duration(rig, minutes):  # noqa: F811
    core, player, fake, clock = rig
    reply = core.handle({"cmd": "hold", "playlist": "calm", "minutes": minutes}, clock.t)
    assert reply["ok"] is False and "minutes must be a number above 0" in reply["error"]
    assert "\n" not in reply["error"] and player.hold == ""
    ok = core.handle({"cmd": "hold", "playlist": "calm", "minutes": 7 * 24 * 60}, clock.t)
    assert ok["ok"] and ok["status"]["hold"]["remaining_s"] == 7 * 24 * 3600
    strict_json(json.dumps(ok))


@pytest.mark.parametrize("text", ["inf", "1e308", "nan", "-1", "0", "20000", "abc"])
def test_the_cli_refuses_an_absurd_hold_in_one_line(text, tmp_path):
    r = cli("hold", "calm", "--minutes", text, "--socket", str(tmp_path / "none.sock"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("moodbox hold: error: argument --minutes")


def test_the_page_and_the_socket_refuse_it_and_all_their_json_is_strict(page, tmp_path):
    from moodbox.control.socket import ControlSocket

    web, player = page
    core = web.app.core
    for body in (b'{"playlist": "calm", "minutes": 1e308}', b'{"playlist": "calm", "minutes": Infinity}',
                 b'{"playlist": "calm", "minutes": NaN}'):
        reply = raw(web.port, b"POST /api/hold HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                    + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        head, _, text = reply.partition(b"\r\n\r\n")
        assert b" 400 " in head.split(b"\r\n")[0] and strict_json(text)["ok"] is False, reply
    path = Path(tempfile.mkdtemp(prefix="mbx")) / "c.sock"
    sock = ControlSocket(path, core)
    assert sock.start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(path))
            f = s.makefile("rwb")
            for line in (b'{"cmd": "hold", "playlist": "calm", "minutes": 1e400}\n',
                         b'{"cmd": "volume", "level": NaN}\n', b'{"cmd": "status"}\n'):
                f.write(line)
                f.flush()
                answer = strict_json(f.readline())
            assert answer["ok"] and answer["status"]["hold"] is None and player.hold == ""
    finally:
        sock.close()


def test_everything_the_box_writes_as_json_is_strict():
    from moodbox import jsonio

    text = jsonio.dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": (float("-inf"),)})
    assert strict_json(text) == {"a": None, "b": [None, 1.5], "c": [None]}
    edge = Path(__file__).resolve().parents[2] / "edge"
    for py in edge.rglob("*.py"):
        if py.name == "jsonio.py":
            continue
        source = py.read_text(encoding="utf-8")
        assert "json.dump(" not in source and "json.dumps(" not in source, py


# ------------------------------------------------------------------ 4: deep nesting

DEEP = "[" * 1000


def test_deep_nesting_everywhere_is_one_line_and_the_daemon_plays_on(web_box, tmp_path):
    """1,000 nested brackets in the learned-skips file at start (set aside, never deleted),
    in a socket request and a page request (one-line errors), and in the config on SIGHUP
    (the reload is refused, the running config kept): the daemon plays throughout."""
    import signal

    state = tmp_path / "state"
    state.mkdir()
    (state / "learned-skips.json").write_text(DEEP)
    b = web_box()
    aside = list(state.glob("learned-skips.json.bad-*"))
    assert len(aside) == 1 and aside[0].read_text() == DEEP
    assert "learned skips in" in b.proc.log and "kept as learned-skips.json.bad-" in b.proc.log
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(b.sock))
        f = s.makefile("rwb")
        f.write(DEEP.encode() + b"\n" + b'{"cmd": "hold", "playlist": ' + DEEP.encode() + b"\n")
        f.flush()
        for _ in range(2):
            answer = json.loads(f.readline())
            assert answer["ok"] is False and "nested too deeply" in answer["error"], answer
    body = b'{"playlist": ' + DEEP.encode() + b"}"
    reply = b.raw(b"POST /api/hold HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                  + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert reply.split(b"\r\n")[0].endswith(b"400 Bad Request") and b"nested too deeply" in reply
    good = b.config.read_text()
    b.config.write_text(DEEP)
    os.kill(b.proc.pid, signal.SIGHUP)
    assert b.proc.wait_for("reload rejected, keeping the running config", 30), b.proc.log[-2000:]
    b.config.write_text(good)
    assert b.proc.running() and b.status()["state"] == "playing"
    assert "Traceback" not in b.proc.log and "RecursionError" not in b.proc.log


def test_a_deep_config_at_start_is_one_line_and_exit_78(tmp_path):
    (tmp_path / "config.yaml").write_text("camera: " + DEEP + "\n")
    r = cli("check", "--config", str(tmp_path / "config.yaml"), timeout=60)
    out = r.stderr + r.stdout  # libyaml's parser stops at its own depth limit, else ours
    assert r.returncode == 78 and ("nested more than" in out or "maximum nesting depth" in out)
    assert "Traceback" not in out
    (tmp_path / "self.yaml").write_text("camera: &a [*a]\n")  # an alias that holds itself
    r = cli("check", "--config", str(tmp_path / "self.yaml"), timeout=60)
    assert r.returncode == 78 and "Traceback" not in r.stderr + r.stdout


def test_a_bad_file_url_in_a_playlist_is_skipped_with_a_reason(tmp_path):
    from moodbox.audio.playlists import parse_m3u

    m3u = tmp_path / "p.m3u"
    m3u.write_text("file://[x/a.ogg\nfile:///music/b.ogg\n")
    tracks, skipped = parse_m3u(m3u)
    assert tracks == [Path("/music/b.ogg")]
    assert [s.reason for s in skipped] == ["not a valid file:// address"]


# ------------------------------------------------------------------ 5: socket squatting

class FakeDaemon:
    """Something else on a socket path: answers every request line with `answer`."""

    def __init__(self, path: Path, answer: bytes):
        self.path, self.answer, self.requests = path, answer, []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, conn.makefile("rwb") as f:
                self.requests.append(f.readline())
                f.write(self.answer)
                f.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture()
def private_tmp(short_dir, monkeypatch):
    """TMPDIR (the fallback socket's parent) in a short folder; no runtime directories."""
    monkeypatch.setenv("TMPDIR", str(short_dir))
    for name in ("XDG_RUNTIME_DIR", "RUNTIME_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    return short_dir


def test_the_fallback_socket_is_in_a_private_folder_that_is_checked(private_tmp, rig, caplog):  # noqa: F811
    from moodbox.config import ControlConfig
    from moodbox.control.socket import ControlClient, ControlSocket, server_socket_path

    core = rig[0]
    path = server_socket_path(ControlConfig())
    assert path == private_tmp / f"moodbox-{os.getuid()}" / "moodbox.sock"
    server = ControlSocket(path, core)
    assert server.start()
    try:
        st = os.lstat(path.parent)
        assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700
        assert ControlClient(path).request({"cmd": "status"})["ok"]
    finally:
        server.close()
    # a folder others can write to, or a symlink in its place: not used, one line each
    os.chmod(path.parent, 0o777)
    assert not ControlSocket(path, core).start()
    os.rename(path.parent, private_tmp / "elsewhere")
    os.symlink(private_tmp / "elsewhere", path.parent)
    assert not ControlSocket(path, core).start()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "open to other users (mode 0777)" in errors[0]
    assert "not a folder (a symlink" in errors[1]
    r = cli("status")  # the client too refuses the symlinked folder, in one line
    assert r.returncode == 1 and "not a folder (a symlink" in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_socket_someone_else_may_have_put_there_is_not_trusted():
    from moodbox.control.socket import untrusted_reason

    def st(uid: int, mode: int) -> os.stat_result:
        return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))

    me, other, service = 1000, 1001, 999
    assert untrusted_reason(st(me, 0o140600), st(0, 0o41777), me) == ""          # mine, in /tmp
    assert untrusted_reason(st(0, 0o140660), st(0, 0o40755), me) == ""           # root's
    assert untrusted_reason(st(service, 0o140660), st(service, 0o40750), me) == ""  # /run/moodbox
    assert "another user" in untrusted_reason(st(other, 0o140777), st(0, 0o41777), me)  # squatted /tmp
    assert "another user" in untrusted_reason(st(other, 0o140777), st(service, 0o40775), me)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a socket of another user needs root")
def test_the_cli_does_not_talk_to_a_squatted_socket(short_dir):
    folder = short_dir / "shared"
    folder.mkdir(mode=0o1777)
    os.chmod(folder, 0o1777)
    fake = FakeDaemon(folder / "moodbox.sock", b'{"ok": true, "skipped": "PWNED.ogg"}\n')
    os.chown(fake.path, 65534, 65534)
    try:
        r = cli("skip", "--socket", str(fake.path))
    finally:
        fake.close()
    assert r.returncode == 1 and "PWNED" not in r.stdout + r.stderr
    assert "not trusting it" in r.stderr and len(r.stderr.splitlines()) == 1
    assert fake.requests == []


@pytest.mark.parametrize("answer", [b"PWNED\n", b"[1, 2]\n", b'{"ok": true, "volume": "loud"}\n',
                                    b'{"ok": true, "status": [1]}\n', DEEP.encode() + b"\n",
                                    b"\xff\xfe\n"])
def test_an_answer_the_cli_cannot_read_is_one_line(short_dir, answer):
    fake = FakeDaemon(short_dir / "c.sock", answer)
    try:
        r = [cli(cmd, *args, "--socket", str(fake.path)) for cmd, *args in
             (("status",), ("volume", "0.5"), ("status", "--json"))]
    finally:
        fake.close()
    for one in r:
        assert one.returncode == 1 and "Traceback" not in one.stderr, one.stderr
        assert len(one.stderr.strip().splitlines()) == 1 and one.stderr.startswith("error: ")


# ------------------------------------------------------------------ 6: control characters

EVIL_NAME = "evil\nERROR moodbox.daemon: forged \x1b[2J\x9b31m.mp3"
EVIL_TITLE = "Title \x1b]0;owned\x07\x1b[31m red\r\nERROR fake"


def test_tags_and_file_names_never_reach_the_terminal_or_the_log_raw(web_box, tmp_path, astronaut):
    """A file name with a newline and escape sequences and a title tag with a terminal
    title sequence: the log keeps one line per record, `moodbox status` prints them
    escaped; the JSON says them exactly (JSON escapes them itself)."""
    mutagen = pytest.importorskip("mutagen")
    from test_robustness import write_mp3

    def evil_track(root: Path) -> None:
        (root / "happy" / "happy.wav").unlink()
        track = write_mp3(root / "happy" / EVIL_NAME, frames=400)  # 10 s
        tags = mutagen.File(str(track), easy=True)
        tags["title"] = EVIL_TITLE
        tags.save()

    b = web_box(prepare=evil_track, playing="from happy (mood happy)")
    s = b.status()
    assert s["track"]["name"] == EVIL_NAME and s["track"]["title"] == EVIL_TITLE
    r = b.cmd("status")
    assert r.returncode == 0
    for bad in ("\x1b", "\x9b", "\x07", "\r"):
        assert bad not in r.stdout + r.stderr
    assert "\\u001b]0;owned\\u0007" in r.stdout and "evil\\nERROR" in r.stdout
    assert len(r.stdout.splitlines()) == len(b.cmd("status").stdout.splitlines()) <= 8
    b.proc.stop()
    for line in b.proc.lines:
        assert "\x1b" not in line and "\x9b" not in line
        assert not line.startswith("ERROR moodbox.daemon: forged"), line
    assert "evil\\nERROR moodbox.daemon: forged \\u001b[2J\\u009b31m.mp3" in b.proc.log


def test_the_log_formatter_and_the_output_streams_escape(capsys):
    import io
    import logging

    from moodbox.logsafe import EscapingFormatter, EscapingStream

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test_hostile.escape")
    log.propagate = False  # only this handler: pytest's own capture need not carry a lone surrogate
    log.addHandler(handler)
    try:
        log.warning("skipping %s: %s", Path("a\nERROR b\udcff.ogg"), ValueError("x\x1by"))
    finally:
        log.removeHandler(handler)
    assert out.getvalue() == "WARNING skipping a\\nERROR b\\udcff.ogg: x\\u001by\n"
    stream = io.StringIO()
    EscapingStream(stream).write("line one\n\ttab \x1b[31m\x9b \udcfe\n")
    assert stream.getvalue() == "line one\n\ttab \\u001b[31m\\u009b \\udcfe\n"


# ------------------------------------------------------------------ 7: planted symlinks

def test_no_atomic_write_follows_a_symlink_planted_at_a_temporary_name(tmp_path, monkeypatch):
    """The skip store, the catalog's files and the audio file: a symlink at every name the
    old code used for its temporary file (and a few more pids) is left alone, its target
    untouched; the write still lands."""
    from moodbox.audio.output import AudioOutput
    from moodbox.catalog.table import atomic_write_text
    from moodbox.control.learning import SkipLearner, SkipStore

    victim = tmp_path / "victim.txt"
    victim.write_text("the owner's")
    state = tmp_path / "state"
    state.mkdir()
    store = SkipStore(state / "learned-skips.json")
    for pid in {os.getpid(), *range(os.getpid() - 3, os.getpid() + 4)}:
        os.symlink(victim, state / f".learned-skips.json.{pid}.tmp")
    learner = SkipLearner()
    learner.skipped("happy", "/m/a.ogg", 0.0)
    store.save(learner)
    assert victim.read_text() == "the owner's" and not learner.dirty
    assert store.load().weight("happy", "/m/a.ogg") == 0.5
    assert all(p.is_symlink() for p in state.glob("*.tmp"))  # the planted links, untouched

    out = tmp_path / "moods"
    out.mkdir()
    os.symlink(victim, out / ".calm.m3u.tmp")
    atomic_write_text(out / "calm.m3u", "#EXTM3U\n")
    assert victim.read_text() == "the owner's" and (out / "calm.m3u").read_text() == "#EXTM3U\n"

    audio = AudioOutput(file=tmp_path / "a.wav")
    audio.prepare()
    audio._tmp.write_bytes(bytes(400))
    os.symlink(victim, audio._tmp.with_name(audio._tmp.name + ".wav"))  # the old name
    audio.finish()
    assert victim.read_text() == "the owner's" and (tmp_path / "a.wav").read_bytes()[:4] == b"RIFF"


def test_every_temporary_file_of_the_box_is_made_exclusively():
    """No predictable temporary name is opened for writing anywhere in edge/ or converter/."""
    import re

    root = Path(__file__).resolve().parents[2]
    for py in [*(root / "edge").rglob("*.py"), *(root / "converter").rglob("*.py")]:
        source = py.read_text(encoding="utf-8")
        assert not re.search(r"with_name\([^)]*\.tmp", source), py
        assert not re.search(r"with_suffix\([^)]*\.tmp", source), py


# ------------------------------------------------------------------ 9: the smaller ones

def _spawn_and_signal(args: list[str], sig: int, delay: float) -> subprocess.CompletedProcess:
    p = subprocess.Popen([*moodbox_command(), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.5])
def test_an_early_sighup_is_a_reload_not_a_silent_death(tmp_path, astronaut, delay):
    """A SIGHUP while the interpreter is still loading (before the old handlers were
    installed) is a reload done after start-up, not a silent death (status -1)."""
    import signal

    config = make_setup(tmp_path, astronaut)
    r = _spawn_and_signal(["run", "--config", str(config), "--duration", "2"], signal.SIGHUP, delay)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "reload done" in r.stdout  # during start-up ("requested during start-up") or after
    # and after a failed start too: the exit status (78) is not lost to a late SIGHUP
    r = _spawn_and_signal(["run", "--config", str(tmp_path / "missing.yaml")], signal.SIGHUP, delay)
    assert r.returncode == 78 and "file not found" in r.stdout, (r.returncode, r.stdout)


@pytest.mark.parametrize("delay", [0.1, 0.2])
def test_an_early_ctrl_c_is_one_line_and_exit_130(tmp_path, delay):
    import signal

    r = _spawn_and_signal(["status", "--socket", str(tmp_path / "none.sock")], signal.SIGINT, delay)
    if r.returncode == 1:  # it had already finished (a fast machine): nothing to interrupt
        pytest.skip("the command ended before the signal")
    assert "Traceback" not in r.stderr, r.stderr
    if r.returncode == -signal.SIGINT and not r.stderr.strip():
        # a loaded machine: the signal came while the interpreter itself was still starting,
        # before moodbox's code ran; Python's own default then ends it quietly, as it should
        return
    assert r.returncode == 130 and r.stderr.strip() == "interrupted", (r.returncode, r.stderr)


def test_twenty_concurrent_clients_all_get_an_answer(rig, short_dir):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    from moodbox.control.socket import ControlClient, ControlSocket

    server = ControlSocket(short_dir / "c.sock", rig[0])
    assert server.start()
    try:
        barrier = threading.Barrier(20)

        def one(_: int) -> bool:
            s = socket.socket(socket.AF_UNIX)
            barrier.wait(10)
            s.settimeout(10)
            s.connect(str(short_dir / "c.sock"))  # all connect at once; none is answered yet
            with s, s.makefile("rwb") as f:
                time.sleep(0.3)
                f.write(b'{"cmd": "status"}\n')
                f.flush()
                return json.loads(f.readline())["ok"]

        with ThreadPoolExecutor(20) as pool:
            assert all(pool.map(one, range(20)))
        assert ControlClient(short_dir / "c.sock").request({"cmd": "status"})["ok"]
    finally:
        server.close()


@pytest.mark.parametrize("token,words", [
    ("a" * 16, "too easy to guess"), ("abababababababab1", "too easy to guess"),
    ("pässwörd-0123456789", "plain ASCII"), ("has spaces 0123456789", "plain ASCII"),
    ("short-1234", "16 characters or more")])
def test_weak_or_unsendable_tokens_are_refused_with_the_way_out(tmp_path, token, words):
    import yaml

    from moodbox.config import ConfigError, load_config

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"playlists": {"favourites": "music"},
                                   "web": {"enabled": True, "token": token}}), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert words in str(e.value) and "secrets.token_urlsafe(24)" in str(e.value)
    cfg.write_text(yaml.safe_dump({"playlists": {"favourites": "music"},
                                   "web": {"enabled": True, "token": TOKEN}}))
    assert load_config(cfg).web.token == TOKEN


def test_a_track_whose_name_is_not_utf8_is_unplayable_with_a_reason(tmp_path):
    from helpers import write_tone
    from moodbox.audio.playlists import collect

    folder = tmp_path / "music"
    folder.mkdir()
    write_tone(folder / "fine.wav", 440, 0.2)
    bad = os.fsencode(folder) + b"/caf\xe9.wav"
    with open(bad, "wb") as f:
        f.write((folder / "fine.wav").read_bytes())
    found, skipped = collect((folder,))
    assert [p.name for p in found] == ["fine.wav"]
    assert len(skipped) == 1 and "name is not UTF-8" in skipped[0].reason


def test_a_megabyte_of_unknown_keys_is_refused_quickly_in_a_few_lines(tmp_path):
    from moodbox.config import ConfigError, load_config

    cfg = tmp_path / "config.yaml"
    lines, size, i = [], 0, 0
    while size < 1_000_000 - 40:
        lines.append(f"unknown_key_{i}: {i}\n")
        size += len(lines[-1])
        i += 1
    cfg.write_text("".join(lines))
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    took = time.monotonic() - t0
    assert took < 3.0, took  # 3.3 s before, 0.6 s after (this machine, under load)
    text = str(e.value)
    assert len(text.splitlines()) < 30 and f"and {i - 20} more unknown keys" in text
    cfg.write_text("x" * (1024 * 1024 + 1))
    with pytest.raises(ConfigError, match="too large"):
        load_config(cfg)


def test_the_cli_refuses_a_volume_that_is_not_a_number(tmp_path):
    for text in ("nan", "inf", "loud"):
        r = cli("volume", text, "--socket", str(tmp_path / "none.sock"))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("moodbox volume: error: argument LEVEL")


def test_the_throttle_says_once_a_minute_how_many_it_held_back():
    from moodbox.logsafe import Throttle

    t = Throttle(60.0)
    assert t.ready(100.0) == 0
    assert [t.ready(100.0 + i) for i in range(1, 6)] == [None] * 5
    assert t.ready(160.0) == 5 and t.ready(161.0) is None and t.ready(220.5) == 1
