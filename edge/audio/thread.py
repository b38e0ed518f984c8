"""Runs the player in its own thread; the daemon's commands reach it as method calls."""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Mapping, TypeVar

from moodbox.audio.player import PlayerStatus, PlaylistPlayer
from moodbox.audio.playlists import Playlist
from moodbox.config import PlayerConfig
from moodbox.control.learning import SkipStore

T = TypeVar("T")

logger = logging.getLogger(__name__)


def minute_of_day(wall: float | None = None) -> int:
    t = time.localtime(wall)
    return t.tm_hour * 60 + t.tm_min


class PlayerThread:
    """Runs a PlaylistPlayer in its own thread so a slow or missing sound device never
    holds up vision. The daemon talks to it through a command queue."""

    def __init__(self, player: PlaylistPlayer, tick_s: float = 0.05,
                 store: SkipStore | None = None):
        self.player = player
        self._tick_s = tick_s
        self._store = store  # where learned skips are saved, after an owner's skip only
        self._commands: queue.Queue = queue.Queue()
        self._status = player.status(minute_of_day(), time.monotonic())
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)

    def start(self) -> "PlayerThread":
        self._thread.start()
        return self

    def _call(self, command: Callable[[PlaylistPlayer, float], object]) -> None:
        """Queue `command(player, now)` to run on the player thread, in order; a command
        that returns True ends the thread."""
        self._commands.put(command)

    def set_mood(self, mood: str) -> None:
        self._call(lambda p, now: p.set_mood(mood, now))

    def ask(self, command: Callable[[PlaylistPlayer, float], T], timeout: float = 2.0) -> T:
        """Run `command(player, now)` on the player thread, in order with the others, and
        return its result (or raise its exception); TimeoutError when the thread is stuck."""
        future: Future = Future()

        def run(p: PlaylistPlayer, now: float) -> None:
            try:
                future.set_result(command(p, now))
            except Exception as exc:  # noqa: BLE001 (handed back to the asking thread)
                future.set_exception(exc)

        self._call(run)
        return future.result(timeout)

    def save_learned(self) -> None:
        """Queue a save of the learned skips (after an owner's skip; atomic, only if changed)."""
        if self._store is not None:
            store = self._store
            self._call(lambda p, now: store.save(p.learner))

    def update_library(self, cfg: PlayerConfig, playlists: Mapping[str, Playlist],
                       mood_map: Mapping[str, tuple[str, ...]]) -> None:
        self._call(lambda p, now: p.update_library(cfg, playlists, mood_map, now))

    def status(self) -> PlayerStatus:
        return self._status

    @property
    def fatal(self) -> str:
        return self.player.fatal

    def stop(self, fade_ms: int, timeout: float) -> None:
        """Fade out and close the device, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + max(0.1, timeout - 0.3)

        def shutdown(p: PlaylistPlayer, now: float) -> bool:
            p.shutdown(fade_ms, deadline)
            return True  # the thread ends after this command

        self._call(shutdown)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("player did not stop within %.1f s", timeout)

    def _run(self) -> None:
        p = self.player
        while True:
            try:
                command = self._commands.get(timeout=self._tick_s)
            except queue.Empty:
                command = None
            now = time.monotonic()
            try:
                if command is not None and command(p, now):
                    self._status = p.status(minute_of_day(), now)
                    return
                p.tick(now, minute_of_day())
            except Exception:  # noqa: BLE001 (the player must outlive a bug in one tick)
                logger.exception("player error; carrying on")
                time.sleep(0.5)
            self._status = p.status(minute_of_day(), time.monotonic())
