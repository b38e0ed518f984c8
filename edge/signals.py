"""Stop and reload requests from signals, installed before anything slow starts.

`moodbox run` installs them first thing, so a SIGHUP or SIGTERM during start-up (model,
playlists, camera) is never the default action (a silent exit, or a traceback for
SIGINT): the daemon honours it as soon as start-up ends.
"""
from __future__ import annotations

import signal
import threading


class Requests:
    """Two flags the daemon's loop polls: stop (SIGTERM, SIGINT) and reload (SIGHUP)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.installed = False

    def install(self) -> bool:
        """Route the signals here; only the main thread may (False elsewhere, e.g. tests)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reload.set())
        self.installed = True
        return True
