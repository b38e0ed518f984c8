"""Turns a noisy stream of per-frame emotion probabilities into a calm, stable mood."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moodbox.config import MoodConfig
from moodbox.vocabulary import AWAY


@dataclass(frozen=True)
class MoodDecision:
    """The stable mood after one update, and whether it just changed."""

    stable: str                 # an emotion name or "away"
    changed: bool
    leader: str | None          # emotion leading the smoothed probabilities, if any
    leader_p: float
    smoothed: np.ndarray | None


class EmotionSmoother:
    """A pure decision class: feed it (now, probabilities) or (now, None) for no face.

    Probabilities are smoothed with an exponential moving average whose weight depends
    on the time between updates (frame-rate independent). The stable mood switches to
    a new emotion only after that emotion has led the smoothed probabilities, above
    `min_confidence`, for `dwell_s` seconds, and never sooner than
    `min_switch_interval_s` after the last switch. With no face for `away_after_s`
    the mood becomes "away". Coming back from away needs only the dwell time.
    The caller supplies every time value from a monotonic clock; nothing here reads one.
    `settings` is config.yaml's mood section (its playlist map is not used here).
    """

    def __init__(self, classes: tuple[str, ...], settings: MoodConfig, start: float):
        self.classes = tuple(classes)
        self.settings = settings
        self.stable = AWAY
        self._ema: np.ndarray | None = None
        self._last_update: float | None = None
        self._last_face: float = start
        self._last_switch: float = -math.inf
        self._leader: str | None = None
        self._leader_since: float = start

    def reconfigure(self, settings: MoodConfig) -> None:
        """New thresholds (config reload); the smoothed state is kept."""
        self.settings = settings

    def update(self, now: float, probs: np.ndarray | None) -> MoodDecision:
        if probs is None:
            return self._no_face(now)
        probs = np.asarray(probs, dtype=np.float64)
        self._smooth(now, probs)
        self._last_face = now
        top = int(np.argmax(self._ema))
        p = float(self._ema[top])
        leader = self.classes[top] if p >= self.settings.min_confidence else None
        if leader != self._leader:
            self._leader, self._leader_since = leader, now
        changed = False
        if leader is not None and leader != self.stable and self._may_switch(now):
            self._switch(leader, now)
            changed = True
        return MoodDecision(self.stable, changed, leader, p, self._ema.copy())

    def _smooth(self, now: float, probs: np.ndarray) -> None:
        tau = self.settings.smoothing_s
        if self._ema is None or self._last_update is None:
            self._ema = probs.copy()
        else:
            dt = max(0.0, now - self._last_update)
            alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
            self._ema = (1.0 - alpha) * self._ema + alpha * probs
        self._last_update = now

    def _may_switch(self, now: float) -> bool:
        s = self.settings
        if now - self._leader_since < s.dwell_s:
            return False
        if self.stable == AWAY:
            return True
        return now - self._last_switch >= s.min_switch_interval_s

    def next_switch_in(self, now: float) -> float:
        """Seconds until min_switch_interval_s allows the next change (0: allowed now)."""
        if self.stable == AWAY:
            return 0.0
        return max(0.0, self._last_switch + self.settings.min_switch_interval_s - now)

    def _switch(self, mood: str, now: float) -> None:
        self.stable = mood
        self._last_switch = now

    def _no_face(self, now: float) -> MoodDecision:
        changed = False
        if self.stable != AWAY and now - self._last_face >= self.settings.away_after_s:
            self._switch(AWAY, now)
            self._ema, self._last_update = None, None  # stale evidence; start afresh
            self._leader = None
            changed = True
        p = float(self._ema.max()) if self._ema is not None else 0.0
        return MoodDecision(self.stable, changed, self._leader, p,
                            None if self._ema is None else self._ema.copy())


class FollowedMood:
    """Another box's mood, as heard over MQTT (mqtt.follow: one camera steers two rooms).

    The MQTT front end writes what it hears; the daemon's loop asks `current()` each
    frame. The followed mood counts while this box is connected to the broker and the
    other box is online (its availability topic, with a last will) with a known mood;
    otherwise `current()` is None and the box goes by its own camera. Each write replaces
    one attribute, so the two threads need no lock."""

    def __init__(self, name: str, moods: tuple[str, ...]):
        self.name = name
        self._moods = frozenset(moods)
        self._mood: str | None = None
        self._online = False
        self._linked = False

    def heard_mood(self, mood: str) -> bool:
        """False (and nothing changes) for a mood this box does not know."""
        if mood not in self._moods:
            return False
        self._mood = mood
        return True

    def heard_availability(self, online: bool) -> None:
        self._online = online

    def linked(self, up: bool) -> None:
        """This box's own link to the broker; lost, nothing it heard before counts."""
        self._linked = up
        if not up:
            self._online, self._mood = False, None

    def current(self) -> str | None:
        return self._mood if self._linked and self._online else None
