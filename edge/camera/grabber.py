"""Reads a frame source in its own thread into a one-frame slot: the camera never blocks."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from moodbox.camera.source import (CameraError, CameraPermissionError, CameraTimeout, EndOfStream,
                                   Frame, FrameSource)
from moodbox.config import CameraConfig

logger = logging.getLogger(__name__)


@dataclass
class GrabberStats:
    frames: int = 0
    dropped: int = 0
    bad: int = 0
    failures: int = 0
    reopens: int = 0
    state: str = "starting"   # starting | waiting | open | failed | ended
    last_error: str = ""
    history: list[str] = field(default_factory=list)


class FrameGrabber:
    """Reads a FrameSource in its own thread into a one-frame slot.

    The consumer always gets the newest frame; older unread frames are dropped and
    counted. Opening failures are retried with back-off for as long as it takes;
    capture failures (timeouts, frozen timestamps, errors) close and reopen the
    camera, and after `max_failures` in a row without a good frame the grabber
    gives up (state "failed") so the daemon can exit and systemd restart it.
    A permission error stops it at once (state "failed", `fatal_permission`).
    """

    def __init__(self, source: FrameSource, cfg: CameraConfig,
                 sleep: Callable[[float], None] | None = None):
        self.source, self.cfg = source, cfg
        self.stats = GrabberStats()
        self.fatal_permission: str = ""
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._last_ts: float | None = None
        self._same_ts = 0
        self._consumed_seq = 0

    def start(self) -> "FrameGrabber":
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.ident is None:
            return  # never started (the camera was off): nothing is open
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("camera thread did not stop within %.1f s", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def latest(self, timeout: float) -> Frame | None:
        """The newest unread frame, waiting up to `timeout`; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or self.stats.state in ("failed", "ended"):
                    return None
                self._cond.wait(left)
            frame, self._slot = self._slot, None
            return frame

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = frame
            self.stats.frames += 1
            self._cond.notify_all()

    def _set_state(self, state: str, error: str = "") -> None:
        if state != self.stats.state:
            self.stats.history.append(state)
            del self.stats.history[:-20]
        self.stats.state = state
        if error:
            self.stats.last_error = error
        with self._cond:
            self._cond.notify_all()

    def _open_with_backoff(self) -> bool:
        delay = self.cfg.retry_min_s
        logged = False
        while not self._stop.is_set():
            try:
                self.source.open()
                if logged:
                    logger.info("camera %s is back", self.source.describe())
                self._last_ts, self._same_ts = None, 0
                return True
            except CameraPermissionError as exc:
                logger.error("%s", exc)
                self.fatal_permission = str(exc)
                self._set_state("failed", str(exc))
                return False
            except EndOfStream as exc:
                self._set_state("ended", str(exc))
                return False
            except Exception as exc:  # noqa: BLE001 (CameraError, or a backend bug: retry)
                self._set_state("waiting", str(exc))
                if not logged:
                    logger.warning("camera %s: %s; retrying every %.0f-%.0f s in the background",
                                   self.source.describe(), exc, self.cfg.retry_min_s,
                                   self.cfg.retry_max_s)
                    logged = True
                else:
                    logger.debug("camera still unavailable: %s (next try in %.0f s)", exc, delay)
            self._sleep(delay)
            delay = min(self.cfg.retry_max_s, delay * 2)
        return False

    def _check_frame(self, frame: Frame) -> str:
        g = frame.grey
        if not isinstance(g, np.ndarray) or g.ndim != 2 or g.dtype != np.uint8 or g.size == 0:
            return f"bad frame ({getattr(g, 'dtype', '?')} {getattr(g, 'shape', '?')})"
        if frame.source_ts is not None:
            if frame.source_ts == self._last_ts:
                self._same_ts += 1
                if self._same_ts >= self.cfg.freeze_frames:
                    raise CameraError(f"camera frozen: {self._same_ts} frames with the same timestamp")
                return "repeated frame"
            self._last_ts, self._same_ts = frame.source_ts, 0
        return ""

    def _run(self) -> None:
        consecutive = 0
        while not self._stop.is_set():
            if not self._open_with_backoff():
                return
            self._set_state("open")
            try:
                while not self._stop.is_set():
                    try:
                        frame = self.source.read(self.cfg.timeout_s)
                    except CameraTimeout:
                        if self.source.timeout_is_idle:
                            continue  # a slow replay: the next frame is simply not due yet
                        raise
                    problem = self._check_frame(frame)
                    if problem:
                        self.stats.bad += 1
                        continue
                    consecutive = 0
                    self._publish(frame)
            except EndOfStream as exc:
                self._set_state("ended", str(exc))
                self._close_source()
                return
            except CameraError as exc:
                consecutive = self._failure(exc, consecutive)
            except Exception as exc:  # noqa: BLE001 (a backend bug must not kill vision silently)
                logger.exception("camera thread error")
                consecutive = self._failure(exc, consecutive)
            self._close_source()
            if consecutive >= self.cfg.max_failures:
                logger.error("camera failed %d times in a row (%s); giving up so the service "
                             "restarts", consecutive, self.stats.last_error)
                self._set_state("failed")
                return
            if not self._stop.is_set():
                self.stats.reopens += 1
                self._sleep(min(self.cfg.retry_min_s, 1.0))
        self._close_source()

    def _failure(self, exc: Exception, consecutive: int) -> int:
        consecutive += 1
        self.stats.failures += 1
        self._set_state("waiting", str(exc))
        logger.warning("camera lost (%s); reopening (%d/%d)", exc, consecutive, self.cfg.max_failures)
        return consecutive

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001
            logger.debug("closing camera failed: %s", exc)
