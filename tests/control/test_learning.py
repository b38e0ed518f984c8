"""The skip-learning rule (pure, times passed in) and its atomic state file."""
from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import pytest

from moodbox.audio.playlists import TrackQueue
from moodbox.control.learning import SkipLearner, SkipStore, describe

A, B = "/music/a.ogg", "/music/b.ogg"


def test_skips_decay_per_mood_and_play_through_recovers_slowly():
    ln = SkipLearner()
    assert ln.weight("happy", A) == 1.0
    assert ln.skipped("happy", A, now=10.0)
    assert ln.skipped("happy", A, now=20.0)
    assert ln.weight("happy", A) == pytest.approx(0.25)
    assert ln.weight("sad", A) == 1.0  # only in the mood it was skipped in
    for _ in range(3):
        ln.played_through("happy", A)
    assert ln.weight("happy", A) == pytest.approx(0.55)
    for _ in range(5):
        ln.played_through("happy", A)
    assert ln.weight("happy", A) == 1.0 and ln.played_less() == {}


def test_floor_and_double_skip():
    ln = SkipLearner()
    for i in range(20):
        ln.skipped("happy", A, now=10.0 * i)
    assert ln.weight("happy", A) == SkipLearner.FLOOR  # never zero: it can come back
    ln2 = SkipLearner()
    assert ln2.skipped("calm", B, now=5.0)
    assert not ln2.skipped("calm", B, now=5.8)  # a bouncing button counts once
    assert ln2.weight("calm", B) == 0.5
    assert ln2.skipped("calm", B, now=7.0)
    assert describe(ln2.played_less()) == "played less in calm: 1 track"


def test_a_skipped_track_plays_less_often_in_the_queue():
    tracks = [Path(f"/m/{i}.ogg") for i in range(4)]
    ln = SkipLearner()
    for i in range(3):
        ln.skipped("happy", tracks[0], now=10.0 * i)  # weight 0.125
    q = TrackQueue(tracks, shuffle=True, rng=random.Random(7))
    counts = Counter(q.next(lambda t: ln.weight("happy", t)) for _ in range(400))
    others = [counts[t] for t in tracks[1:]]
    assert counts[tracks[0]] < 0.3 * min(others)
    assert counts[tracks[0]] > 0  # played less, not never
    q2 = TrackQueue(tracks, True, random.Random(7))
    plain = Counter(q2.next() for _ in range(400))
    assert set(plain.values()) == {100}


def test_all_passed_over_still_plays_the_best():
    tracks = [Path("/m/x.ogg"), Path("/m/y.ogg")]
    weights = {tracks[0]: 0.05, tracks[1]: 0.1}
    q = TrackQueue(tracks, shuffle=False, rng=random.Random(0))
    assert all(q.next(weights.get) is not None for _ in range(50))


def test_store_round_trip_is_atomic(tmp_path):
    store = SkipStore(tmp_path / "state" / "learned-skips.json")
    ln = SkipLearner()
    ln.skipped("happy", A, now=1.0)
    store.save(ln)
    assert not ln.dirty
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["learned-skips.json"]  # no temp left
    again = store.load()
    assert again.weight("happy", A) == 0.5 and not again.dirty
    mtime = store.path.stat().st_mtime_ns
    store.save(again)  # nothing changed: nothing written
    assert store.path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("content", ["{not json", '{"version": 2, "weights": {}}',
                                     '{"version": 1, "weights": {"happy": {"a": "x"}}}', "\xff"])
def test_corrupt_or_missing_state_is_ignored_with_one_line(tmp_path, caplog, content):
    path = tmp_path / "learned-skips.json"
    path.write_text(content, encoding="latin-1")
    with caplog.at_level(logging.INFO, logger="moodbox.control.learning"):
        ln = SkipStore(path).load()
    assert ln.played_less() == {}
    assert len(caplog.records) == 1 and "ignoring the learned skips" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="moodbox.control.learning"):
        SkipStore(tmp_path / "missing.json").load()
    assert len(caplog.records) == 1 and "no learned skips yet" in caplog.text


def test_unwritable_state_directory_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ln = SkipLearner()
    ln.skipped("happy", A, now=1.0)
    SkipStore(blocker / "sub" / "learned-skips.json").save(ln)
    assert "cannot save the learned skips" in caplog.text and ln.dirty
