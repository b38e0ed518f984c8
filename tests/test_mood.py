"""The mood smoother, driven frame by frame with explicit times."""
from __future__ import annotations

import numpy as np

from moodbox.config import MoodConfig
from moodbox.mood import AWAY, EmotionSmoother
from moodbox.vision.modelinfo import FER_CLASSES

HAPPY = np.array([0.02, 0.01, 0.02, 0.85, 0.03, 0.02, 0.05])
SAD = np.array([0.03, 0.01, 0.05, 0.02, 0.82, 0.02, 0.05])
NEUTRAL = np.array([0.05, 0.01, 0.04, 0.05, 0.1, 0.05, 0.70])
FLAT = np.full(7, 1 / 7)

S = MoodConfig(smoothing_s=1.0, dwell_s=3.0, min_confidence=0.4,
                     min_switch_interval_s=20.0, away_after_s=30.0)


def drive(sm: EmotionSmoother, start: float, seconds: float, fps: float, probs) -> list[tuple[float, str]]:
    """Feed `probs` (array, None, or callable(t)) at `fps`; return the switch events."""
    events = []
    n = int(round(seconds * fps))
    for i in range(n):
        t = start + i / fps
        p = probs(t) if callable(probs) else probs
        d = sm.update(t, p)
        if d.changed:
            events.append((round(t, 3), d.stable))
    return events


def test_starts_away_and_follows_a_steady_face_after_dwell():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    assert sm.stable == AWAY
    events = drive(sm, 0.0, 10.0, 10.0, HAPPY)
    assert len(events) == 1
    t, mood = events[0]
    assert mood == "happy"
    assert 3.0 <= t <= 3.2  # exactly the dwell after the face appeared


def test_flicker_is_suppressed():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    drive(sm, 0.0, 5.0, 10.0, HAPPY)
    assert sm.stable == "happy"
    # single-frame misclassifications every 0.5 s for 60 s: no switch at all
    flicker = lambda t: SAD if int(round(t * 10)) % 5 == 0 else HAPPY  # noqa: E731
    assert drive(sm, 5.0, 60.0, 10.0, flicker) == []
    # alternating half-second runs of two emotions never dwell long enough either
    alternating = lambda t: SAD if int(t * 2) % 2 else NEUTRAL  # noqa: E731
    assert drive(sm, 65.0, 60.0, 10.0, alternating) == []


def test_dwell_and_min_interval_hold():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    assert drive(sm, 0.0, 4.0, 10.0, HAPPY) == [(3.0, "happy")]
    # sad takes over at t=4; the dwell would allow a switch at ~7.x but the last
    # switch was at t=3.0, so the minimum interval holds it until t=23
    events = drive(sm, 4.0, 30.0, 10.0, SAD)
    assert len(events) == 1 and events[0][1] == "sad"
    assert 23.0 <= events[0][0] <= 23.2


def test_low_confidence_never_switches():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    assert drive(sm, 0.0, 30.0, 10.0, FLAT) == []
    assert sm.stable == AWAY


def test_away_after_timeout_and_back_without_interval():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    drive(sm, 0.0, 5.0, 10.0, HAPPY)
    events = drive(sm, 5.0, 40.0, 10.0, None)
    assert events == [(34.9, AWAY)] or (len(events) == 1 and events[0][1] == AWAY
                                        and 34.8 <= events[0][0] <= 35.0)
    # a face returns: only the dwell applies (min interval does not block leaving away)
    events = drive(sm, 45.0, 5.0, 10.0, NEUTRAL)
    assert len(events) == 1 and events[0][1] == "neutral"
    assert 48.0 <= events[0][0] <= 48.2


def test_short_gaps_do_not_count_as_away():
    sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
    drive(sm, 0.0, 5.0, 10.0, HAPPY)
    gappy = lambda t: None if int(t) % 3 == 0 else HAPPY  # noqa: E731
    assert drive(sm, 5.0, 120.0, 10.0, gappy) == []
    assert sm.stable == "happy"


def test_frame_rate_independent():
    """The same scene at 3, 10 and 30 frames/s switches at the same moments."""
    scene = lambda t: HAPPY if t < 30 else SAD  # noqa: E731
    results = []
    for fps in (3.0, 10.0, 30.0):
        sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
        results.append(drive(sm, 0.0, 60.0, fps, scene))
    for events in results:
        assert [m for _, m in events] == ["happy", "sad"]
    for k in range(2):
        times = [events[k][1] and events[k][0] for events in results]
        assert max(times) - min(times) <= 0.4, times


def test_smoothing_is_time_based():
    """After a step, the smoothed probability rises the same over the same time."""
    values = []
    for fps in (5.0, 50.0):
        sm = EmotionSmoother(FER_CLASSES, S, start=0.0)
        sm.update(0.0, SAD)
        d = None
        for i in range(1, int(fps) + 1):
            d = sm.update(i / fps, HAPPY)
        values.append(d.smoothed[3])
    assert abs(values[0] - values[1]) < 0.02
    assert abs(values[0] - (0.02 + (0.85 - 0.02) * (1 - np.exp(-1.0)))) < 0.02


def test_clock_jump_backwards_does_not_break_it():
    sm = EmotionSmoother(FER_CLASSES, S, start=100.0)
    drive(sm, 100.0, 5.0, 10.0, HAPPY)
    d = sm.update(50.0, SAD)  # a caller bug or a wall-clock jump: treated as dt=0
    assert d.stable == "happy" and not d.changed
