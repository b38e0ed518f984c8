"""The phone page and its JSON API, on the standard library's http.server (off by default).

GET  /                 the page (static; it fetches everything below)
GET  /app.js, /app.css its script and style
POST /login            form field `token`: starts a page session (a cookie), then back to /
GET  /?token=TOKEN     the same from a link or QR code
GET  /api/status       the status snapshot
POST /api/skip | pause | resume | release
POST /api/volume       {"level": 0.5}
POST /api/hold         {"playlist": "calm", "minutes": 30}   (minutes null: until release)
POST /api/camera       {"state": "off"} or {"state": "on"}: the privacy switch

Every /api request needs `Authorization: Bearer TOKEN`, or the page's session cookie plus
the header `X-Moodbox-Page: 1` (a cross-site form cannot send it). Anything else gets 401
and changes nothing. No image of any kind, and no camera frame, is ever served.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import socket
import threading
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moodbox import jsonio
from moodbox.config import WebConfig, parse_listen
from moodbox.control.bounded import BoundedThreadingMixIn
from moodbox.control.core import ControlCore
from moodbox.limits import PAGE_CONNECTIONS
from moodbox.logsafe import Throttle

logger = logging.getLogger(__name__)

COOKIE = "moodbox_session"
PAGE_HEADER = "X-Moodbox-Page"
MAX_BODY = 4096
REQUEST_S = 10.0  # one connection, one request: all of it within this time, else cut off
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Connection: close\r\nRetry-After: 5\r\n\r\nbusy\n")
MAX_SESSIONS = 32
SESSION_S = 30 * 24 * 3600.0
COMMANDS = ("skip", "pause", "resume", "release", "volume", "hold", "camera")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
}


class Sessions:
    """Page sessions started with the token: a cookie signed with a key derived from the
    token ("ISSUED.NONCE.SIGNATURE"), so the page carries on by itself after the daemon
    restarts, and a new token ends every session. Times are wall-clock seconds."""

    def __init__(self, token: bytes = b"") -> None:
        self._key = hashlib.sha256(b"moodbox page session\0" + token).digest()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:43]

    def new(self, now: float) -> str:
        body = f"{int(now)}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, sid: str, now: float) -> bool:
        issued, _, rest = sid.partition(".")
        nonce, _, signature = rest.partition(".")
        if not (issued.isdigit() and len(issued) < 16 and nonce and signature):
            return False
        if not hmac.compare_digest(signature.encode(), self._sign(f"{issued}.{nonce}").encode()):
            return False
        return -300 <= now - int(issued) < SESSION_S  # 5 min of clock skew forgiven


class WebApp:
    """The page's decisions, apart from the socket server: who may do what."""

    def __init__(self, token: str, core: ControlCore):
        self._token = token.encode()
        self.core = core
        self.sessions = Sessions(self._token)
        self.assets = {path: (resources.files("moodbox.control").joinpath("static", name)
                              .read_bytes(), ctype) for path, (name, ctype) in STATIC.items()}
        self.login_again = login_again(self.assets["/"][0])

    def token_ok(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self._token)

    def authorized(self, headers: Any, now: float, changes: bool) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.token_ok(auth[7:].strip())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie", ""))
        except Exception:  # noqa: BLE001 (a malformed cookie is no session)
            return False
        sid = cookie[COOKIE].value if COOKIE in cookie else ""
        if not sid or not self.sessions.valid(sid, time.time()):
            return False
        return not changes or headers.get(PAGE_HEADER) == "1"


WRONG_TOKEN = "That token is not this box's; check web.token in its config and try again."


def login_again(page: bytes) -> bytes:
    """The page with its token form shown and the error in it (works without script)."""
    return (page.replace(b'<section id="login" hidden>', b'<section id="login">')
            .replace(b'<p id="login-error" class="error" role="alert"></p>',
                     b'<p id="login-error" class="error" role="alert">'
                     + WRONG_TOKEN.encode() + b"</p>"))


class _Handler(BaseHTTPRequestHandler):
    server_version = "moodbox"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # a garbage request line still gets a status line
    timeout = REQUEST_S  # each read of the request; the server cuts the whole at REQUEST_S

    @property
    def app(self) -> WebApp:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, fmt: str, *args: Any) -> None:  # never log query strings (tokens)
        path = (getattr(self, "path", "") or "").split("?", 1)[0][:200]
        logger.debug("web %s %s", getattr(self, "command", None) or "-", path)

    def log_error(self, fmt: str, *args: Any) -> None:
        """Timeouts and the like: debug only (bad requests are noted by send_error)."""
        logger.debug("web: " + fmt, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A malformed request: one line of JSON (the standard library's is an HTML page),
        and at most one log line a minute for all of them."""
        text = message or HTTPStatus(code).phrase
        held = self.server.bad_requests.ready(time.monotonic())  # type: ignore[attr-defined]
        if held is not None:
            logger.warning("phone page: bad request from %s (%d %r); %d more since the last "
                           "line", self.client_address[0], code, text[:100], held)
        self.close_connection = True
        try:
            self._json(code, {"ok": False, "error": text})
        except OSError:
            pass

    # --- responses --------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # one request per connection: bounded time
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, jsonio.dumps(obj).encode(), "application/json")

    def _unauthorized(self) -> None:
        self._json(HTTPStatus.UNAUTHORIZED, {"ok": False, "error": "token required"})

    def _wrong_token(self) -> None:
        """The page again, its form shown with the error (401): never a dead end."""
        self._send(HTTPStatus.UNAUTHORIZED, self.app.login_again, "text/html; charset=utf-8")

    def _start_session(self) -> None:
        sid = self.app.sessions.new(time.time())
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {
            "Location": "/",
            "Set-Cookie": f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age={int(SESSION_S)}"})

    # --- routes -------------------------------------------------------------------
    def _target(self) -> Any:
        """The request's URL split, or None after a 400 (urlsplit refuses e.g. "//[x")."""
        try:
            return urlsplit(self.path)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "not a valid request target")
            return None

    def do_GET(self) -> None:
        url = self._target()
        if url is None:
            return
        if url.path == "/" and url.query:
            token = parse_qs(url.query).get("token", [""])[0]
            if self.app.token_ok(token):
                return self._start_session()
            return self._wrong_token()
        if url.path in self.app.assets:
            body, ctype = self.app.assets[url.path]
            return self._send(HTTPStatus.OK, body, ctype)
        if url.path == "/api/status":
            if not self.app.authorized(self.headers, time.monotonic(), changes=False):
                return self._unauthorized()
            return self._json(HTTPStatus.OK, self.app.core.handle({"cmd": "status"}, time.monotonic()))
        self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        url = self._target()
        if url is None:
            return
        given = (self.headers.get("Content-Length") or "0").strip()
        if not (given.isascii() and given.isdigit()):
            return self.send_error(HTTPStatus.BAD_REQUEST, "Content-Length must be a whole "
                                   "number of bytes")
        length = int(given)
        if length > MAX_BODY:
            self.close_connection = True
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"ok": False, "error": "too large"})
        body = self.rfile.read(length) if length > 0 else b""
        if url.path == "/login":
            token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
            if self.app.token_ok(token):
                return self._start_session()
            return self._wrong_token()
        name = url.path[len("/api/"):] if url.path.startswith("/api/") else ""
        if name not in COMMANDS:
            return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})
        if not self.app.authorized(self.headers, time.monotonic(), changes=True):
            return self._unauthorized()
        try:
            args = jsonio.loads(body) if body.strip() else {}
        except ValueError as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {
                "ok": False, "error": f"body must be a JSON object ({str(exc)[:200]})"})
        if not isinstance(args, dict):
            return self._json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "body must be a JSON object"})
        reply = self.app.core.handle({**args, "cmd": name}, time.monotonic())
        self._json(HTTPStatus.OK if reply.get("ok") else HTTPStatus.BAD_REQUEST, reply)


class _Server(BoundedThreadingMixIn, HTTPServer):
    max_connections = PAGE_CONNECTIONS
    request_s = REQUEST_S
    what = "phone page"
    bad_requests = Throttle(60.0)  # replaced per server in WebPage.start

    def refuse(self, request: socket.socket) -> None:
        try:
            request.send(BUSY, socket.MSG_DONTWAIT)
        except OSError:
            pass


class _Server6(_Server):
    address_family = socket.AF_INET6


class WebPage:
    """Serves the page in its own thread; fails soft (logged) so the music plays on."""

    def __init__(self, cfg: WebConfig, core: ControlCore):
        self.cfg = cfg
        self.app = WebApp(cfg.token, core)
        self._server: _Server | None = None

    def start(self) -> bool:
        host, port = parse_listen(self.cfg.listen)
        try:
            server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        except OSError as exc:
            logger.error("phone page: cannot listen on %s (%s); under systemd the unit needs "
                         "the web drop-in (install-pi.sh --enable-web)", self.cfg.listen,
                         exc.strerror or exc)
            return False
        server.app = self.app  # type: ignore[attr-defined]
        server.bad_requests = Throttle(60.0)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         name="web", daemon=True).start()
        logger.info("phone page on http://%s:%d/ (token required; see README)", host, server.server_port)
        return True

    @property
    def port(self) -> int:
        return self._server.server_port if self._server else 0

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
