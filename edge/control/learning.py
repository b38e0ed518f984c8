"""Learns from skips: a track skipped in a mood plays less often in that mood."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Mapping

from moodbox import files, jsonio

logger = logging.getLogger(__name__)

STATE_FILE = "learned-skips.json"


class SkipLearner:
    """A pure rule, times passed in. Each (mood, track) has a weight in [FLOOR, 1]: a skip
    multiplies it by DECAY, a play to the end adds RECOVER back (so it recovers slowly,
    one listened track at a time). The player accepts a track with this probability when
    its turn comes. A second skip of the same track within DOUBLE_S seconds (a bouncing
    button, a double tap) counts once."""

    DECAY = 0.5
    RECOVER = 0.1
    FLOOR = 0.05
    DOUBLE_S = 1.5

    def __init__(self, weights: Mapping[str, Mapping[str, float]] | None = None):
        self._weights: dict[str, dict[str, float]] = {
            mood: {track: min(1.0, max(self.FLOOR, float(w))) for track, w in tracks.items()}
            for mood, tracks in (weights or {}).items()}
        self._last_skip: tuple[str, str, float] | None = None
        self.dirty = False

    def weight(self, mood: str, track: str | Path) -> float:
        return self._weights.get(mood, {}).get(str(track), 1.0)

    def skipped(self, mood: str, track: str | Path, now: float) -> bool:
        """The owner skipped `track` while `mood` was on; False when it was a double skip."""
        key = (mood, str(track))
        if self._last_skip and self._last_skip[:2] == key and now - self._last_skip[2] < self.DOUBLE_S:
            return False
        self._last_skip = (*key, now)
        tracks = self._weights.setdefault(mood, {})
        tracks[key[1]] = max(self.FLOOR, tracks.get(key[1], 1.0) * self.DECAY)
        self.dirty = True
        return True

    def played_through(self, mood: str, track: str | Path) -> None:
        tracks = self._weights.get(mood)
        if not tracks or str(track) not in tracks:
            return
        w = tracks[str(track)] + self.RECOVER
        if w >= 1.0:
            del tracks[str(track)]
            if not tracks:
                del self._weights[mood]
        else:
            tracks[str(track)] = w
        self.dirty = True

    def played_less(self) -> dict[str, int]:
        """mood -> how many tracks play less often in it."""
        return {mood: len(tracks) for mood, tracks in sorted(self._weights.items()) if tracks}

    def to_dict(self) -> dict:
        return {"version": 1, "weights": {m: dict(sorted(t.items())) for m, t in self._weights.items()}}

    @classmethod
    def from_dict(cls, data: object) -> "SkipLearner":
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("weights"), dict):
            raise ValueError("not a moodbox learned-skips file (version 1)")
        weights = data["weights"]
        for mood, tracks in weights.items():
            if not isinstance(tracks, dict) or not all(isinstance(w, (int, float)) for w in tracks.values()):
                raise ValueError(f"bad entry for mood {mood!r}")
        return cls(weights)


def state_directory() -> Path:
    """systemd's StateDirectory= ($STATE_DIRECTORY), else $XDG_STATE_HOME/moodbox,
    else ~/.local/state/moodbox."""
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "moodbox"


class SkipStore:
    """Where the learned weights live. Read once at start; written atomically (temporary
    file, fsync, rename) and only after an owner action, never in the steady state."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_directory() / STATE_FILE

    def load(self) -> SkipLearner:
        try:
            learner = SkipLearner.from_dict(jsonio.loads(
                files.read_bounded(self.path, 4 * 1024 * 1024).decode("utf-8")))
        except FileNotFoundError:
            logger.info("no learned skips yet (%s)", self.path)
            return SkipLearner()
        except OSError as exc:
            logger.warning("ignoring the learned skips in %s (%s); starting afresh", self.path,
                           files.problem(exc))
            return SkipLearner()
        except ValueError as exc:  # UnicodeDecodeError too
            logger.warning("ignoring the learned skips in %s (%s); %s; starting afresh",
                           self.path, str(exc)[:200], self._set_aside())
            return SkipLearner()
        logger.info("learned skips from %s: %s", self.path, describe(learner.played_less()) or "none")
        return learner

    def _set_aside(self) -> str:
        """Rename a broken state file to NAME.bad-TIMESTAMP (never deleted: the owner may
        want it); says what happened."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.bad-{stamp}")
        n = 1
        while files.kind(aside) != files.MISSING or aside.is_symlink():  # never replace one
            aside, n = self.path.with_name(f"{self.path.name}.bad-{stamp}-{n}"), n + 1
        try:
            os.rename(self.path, aside)
        except OSError as exc:
            return f"could not set it aside ({exc.strerror or exc})"
        return f"kept as {aside.name}"

    def save(self, learner: SkipLearner) -> None:
        """Write if anything changed; an error is logged, never raised (music plays on)."""
        if not learner.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            files.atomic_write(self.path, jsonio.dumps(learner.to_dict(), indent=1).encode())
            learner.dirty = False
        except OSError as exc:
            logger.warning("cannot save the learned skips to %s (%s)", self.path, exc.strerror or exc)


def describe(played_less: Mapping[str, int]) -> str:
    """{"happy": 2} -> "played less in happy: 2 tracks"."""
    return "; ".join(f"played less in {mood}: {n} track{'s' if n != 1 else ''}"
                     for mood, n in played_less.items())
