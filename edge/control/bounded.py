"""Thread-per-connection servers with a cap: excess connections are closed at once, slow
ones are cut off, and a handler's error is one throttled log line (never a traceback)."""
from __future__ import annotations

import logging
import socket
import socketserver
import sys
import threading
import time
from typing import Any

from moodbox.logsafe import Throttle

logger = logging.getLogger(__name__)


class BoundedThreadingMixIn(socketserver.ThreadingMixIn):
    """At most `max_connections` handlers at a time, each at most `request_s` seconds (the
    server's loop shuts down older ones; None: no limit). `what` names it in the log."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # the listen backlog: bursts of clients are queued, not refused
    max_connections = 32
    request_s: float | None = None
    what = "server"

    def __init__(self, *args: Any, **kwargs: Any):
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._open: dict[socket.socket, float] = {}
        self._open_lock = threading.Lock()
        self._refused = Throttle(60.0)
        self._errors = Throttle(60.0)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refuse(request)
            self.shutdown_request(request)
            held = self._refused.ready(time.monotonic())
            if held is not None:
                logger.warning("%s: too many connections (%d open); closing new ones at once "
                               "(%d more since the last line)", self.what, self.max_connections, held)
            return
        with self._open_lock:
            self._open[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: Any) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is None:
                return
        self._slots.release()

    def refuse(self, request: Any) -> None:
        """Say "busy" to a connection over the cap, without waiting (a subclass may)."""

    def service_actions(self) -> None:
        """Called by serve_forever's loop: cut off connections older than request_s."""
        super().service_actions()
        if self.request_s is None:
            return
        limit = time.monotonic() - self.request_s
        with self._open_lock:
            old = [s for s, t in self._open.items() if t < limit]
        for s in old:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes its handler; it closes the socket
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        held = self._errors.ready(time.monotonic())
        if held is not None:
            logger.warning("%s: a connection failed (%s: %s); %d more since the last line",
                           self.what, type(exc).__name__, exc, held)
