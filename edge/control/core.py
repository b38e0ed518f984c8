"""The control core: the owner's commands and a status snapshot, through the player thread."""
from __future__ import annotations

import logging
import math
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout  # TimeoutError itself from 3.11
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, TypeVar

from moodbox.audio.player import PlayerStatus, PlaylistPlayer
from moodbox.control.learning import describe
from moodbox.control.privacy import OFF, ON, PrivacySwitch

logger = logging.getLogger(__name__)

T = TypeVar("T")
PlayerCommand = Callable[[PlaylistPlayer, float], T]

COMMANDS = ("status", "skip", "pause", "resume", "volume", "hold", "release", "camera")
CAMERA_APPLY_S = 4.0  # the main loop closes or opens the camera within this (the CLI waits 5 s)
MAX_HOLD_MINUTES = 7 * 24 * 60  # a week; for longer, hold until `moodbox release`


class ControlError(Exception):
    """A command that cannot be done (unknown playlist, volume out of range, ...)."""


def hold_minutes(minutes: Any) -> float | None:
    """The one check of a hold's length, for every front end: None (until release) or a
    finite number of minutes above 0 and at most MAX_HOLD_MINUTES; else ControlError."""
    if minutes is None:
        return None
    if (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
            or not math.isfinite(minutes) or not 0 < minutes <= MAX_HOLD_MINUTES):
        raise ControlError(f"minutes must be a number above 0 and at most {MAX_HOLD_MINUTES} "
                           f"(a week), got {minutes!r}; leave it out to hold until release")
    return float(minutes)


@dataclass(frozen=True)
class VisionView:
    """What the main loop saw last; replaced whole on each frame (no lock needed)."""

    emotion: str = ""          # the leading emotion of the smoothed probabilities
    emotion_p: float = 0.0
    faces: int = 0
    fps: float = 0.0
    camera: str = "starting"
    dwell_s: float = 0.0       # a new emotion leads this long before the music follows
    min_switch_s: float = 0.0  # at most one mood change this often
    next_switch_s: float = 0.0  # until the next change is allowed (0: now)


@dataclass(frozen=True)
class MoodSwitch:
    at: float      # monotonic
    mood: str
    emotion: str   # what caused it ("" for away)
    p: float


class MoodHistory:
    """The last mood switches (the main loop appends; readers copy)."""

    def __init__(self, size: int = 10):
        self._items: deque[MoodSwitch] = deque(maxlen=size)

    def add(self, switch: MoodSwitch) -> None:
        self._items.append(switch)

    def items(self) -> tuple[MoodSwitch, ...]:
        return tuple(self._items)


class ControlCore:
    """Every front end (socket, page, buttons) calls `handle` or the methods below.

    `run` executes a command on the player thread and returns its result (PlayerThread.ask
    in the daemon, a direct call in tests). The other sources are read-only views;
    `save_learned` persists the learned skips (after a skip, never in the steady state).
    Times come from the caller: `now` is the monotonic clock."""

    def __init__(self, run: Callable[[PlayerCommand], Any], playlists: Callable[[], Iterable[str]],
                 vision: Callable[[], VisionView], history: MoodHistory, started: float,
                 max_volume: Callable[[], float], save_learned: Callable[[], None] = lambda: None,
                 privacy: PrivacySwitch | None = None):
        self._run = run
        self._privacy = privacy or PrivacySwitch(False)
        self._save_learned = save_learned
        self._playlists = playlists
        self._vision = vision
        self._history = history
        self._started = started
        self._max_volume = max_volume

    # --- commands ------------------------------------------------------------
    def skip(self) -> dict:
        def command(p: PlaylistPlayer, now: float) -> tuple[str, bool]:
            track = p.track.name if p.track else ""
            return track, p.skip(now)

        track, done = self._run(command)
        if not done:
            raise ControlError("nothing is playing to skip")
        self._save_learned()  # an owner action: the one time learned weights are written
        logger.info("owner: skip %s", track)
        return {"skipped": track}

    def pause(self) -> dict:
        self._run(lambda p, now: p.pause(now))
        logger.info("owner: pause")
        return {}

    def resume(self) -> dict:
        self._run(lambda p, now: p.resume(now))
        logger.info("owner: resume")
        return {}

    def toggle_pause(self) -> bool:
        """Pause, or resume when paused (one button); True when it paused."""
        def command(p: PlaylistPlayer, now: float) -> bool:
            if p.owner_paused:
                p.resume(now)
                return False
            p.pause(now)
            return True

        paused = self._run(command)
        logger.info("owner: %s", "pause" if paused else "resume")
        return paused

    def volume(self, level: Any) -> dict:
        if (isinstance(level, bool) or not isinstance(level, (int, float))
                or not math.isfinite(level) or not 0.0 <= level <= 1.0):
            raise ControlError(f"volume must be a number from 0 to 1, got {level!r}")
        self._run(lambda p, now: p.set_owner_volume(float(level)))
        cap = self._max_volume()
        logger.info("owner: volume %.2f", level)
        return {"volume": float(level), "capped_at": cap if level > cap else None}

    def hold(self, playlist: Any, minutes: Any = None) -> dict:
        names = sorted(self._playlists())
        if not isinstance(playlist, str) or playlist not in names:
            raise ControlError(f"no playlist {playlist!r}; playlists: {', '.join(names)}")
        minutes = hold_minutes(minutes)
        seconds = None if minutes is None else minutes * 60.0
        self._run(lambda p, now: p.hold_playlist(playlist, None if seconds is None else now + seconds, now))
        logger.info("owner: hold %s %s", playlist,
                    "until release" if minutes is None else f"for {minutes:g} min")
        return {"hold": playlist, "minutes": minutes}

    def release(self) -> dict:
        self._run(lambda p, now: p.release(now))
        logger.info("owner: release")
        return {}

    def camera(self, state: Any = None) -> dict:
        """The privacy switch: "off" closes the camera, "on" opens it, None shows it."""
        if state is not None and state not in (ON, OFF):
            raise ControlError(f"camera state must be \"on\" or \"off\", got {state!r}")
        if state is not None:
            changed = self._privacy.set(state == OFF)
            if changed:
                logger.info("owner: camera %s%s", state, " (privacy)" if state == OFF else "")
            if not self._privacy.wait_applied(CAMERA_APPLY_S):
                logger.warning("camera %s: not done within %.0f s; it will be", state,
                               CAMERA_APPLY_S)
        off = self._privacy.off
        return {"camera": OFF if off else ON, "privacy": off}

    # --- the snapshot ---------------------------------------------------------
    def status(self, now: float) -> dict:
        """Everything `moodbox status --json` and the page show; JSON-ready."""
        p: PlayerStatus = self._run(lambda pl, t: pl.status(_minute_of_day(), t))
        v = self._vision()
        track = _track(p)
        return {
            "emotion": {"name": v.emotion, "p": round(v.emotion_p, 3)} if v.emotion else None,
            "mood": p.mood,
            "playlist": p.playlist or None,
            "track": track,
            "state": p.state,
            "volume": p.volume,
            "owner_volume": p.owner_volume,
            "max_volume": self._max_volume(),
            "paused": p.paused,
            "hold": {"playlist": p.hold, "remaining_s": p.hold_left_s} if p.hold else None,
            "waiting": ({"text": WAITING_TEXT, "reason": p.waiting, "remaining_s": p.wait_left_s}
                        if p.waiting else None),
            "camera": OFF if self._privacy.off else v.camera,
            "privacy": self._privacy.off,
            "faces": v.faces,
            "fps": round(v.fps, 1),
            "uptime_s": round(now - self._started, 1),
            "quiet_hours": p.quiet_hours,
            "history": [{"ago_s": round(now - s.at, 1), "at_s": round(s.at - self._started, 1),
                         "mood": s.mood,
                         "emotion": s.emotion or None, "p": round(s.p, 3)}
                        for s in reversed(self._history.items())],
            "follow": {"dwell_s": v.dwell_s, "min_switch_interval_s": v.min_switch_s,
                       "next_switch_in_s": round(v.next_switch_s, 1)},
            "follow_text": follow_text(v, self._privacy.off),
            "learned": dict(p.played_less),
            "learned_text": describe(p.played_less),
            "playlists": sorted(self._playlists()),
        }

    # --- the one dispatcher -------------------------------------------------------
    def handle(self, request: Mapping[str, Any], now: float) -> dict:
        """{"cmd": NAME, ...args} -> {"ok": true, ...} or {"ok": false, "error": TEXT}."""
        cmd = request.get("cmd") if isinstance(request, Mapping) else None
        try:
            if cmd == "status":
                return {"ok": True, "status": self.status(now)}
            if cmd in ("skip", "pause", "resume", "release"):
                result = getattr(self, cmd)()
            elif cmd == "volume":
                result = self.volume(request.get("level"))
            elif cmd == "hold":
                result = self.hold(request.get("playlist"), request.get("minutes"))
            elif cmd == "camera":
                result = self.camera(request.get("state"))
            else:
                raise ControlError(f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}")
            return {"ok": True, **result, "status": self.status(now)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except (TimeoutError, FutureTimeout):
            return {"ok": False, "error": "the player did not answer in time (it may be "
                    "stopping); try again"}
        except Exception as exc:  # noqa: BLE001 (a front end gets an answer, the daemon lives)
            logger.exception("control command %r failed", cmd)
            return {"ok": False, "error": f"internal error ({type(exc).__name__}); see the log"}


def _seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min"


def follow_text(v: VisionView, privacy: bool) -> str:
    """When the music will follow a new emotion, in words (the page's and CLI's why line)."""
    if privacy:
        return "the camera is off (privacy): the music follows no emotion until it is on"
    text = f"the music follows a new emotion once it has led for {_seconds(v.dwell_s)}"
    if v.min_switch_s > 0:
        text += f", at most one change every {_seconds(v.min_switch_s)}"
        if v.next_switch_s >= 0.5:
            text += f" (the next in {_seconds(v.next_switch_s)} at the earliest)"
    return text


WAITING_TEXT = "someone chose music in an MPD client: moodbox waits"


def _track(p: PlayerStatus) -> dict | None:
    """What plays: moodbox's track with its tags, or (while moodbox waits) what the shared
    output plays; the output's own tags (MPD's title, artist, album) win."""
    tags = {k: v for k, v in p.now_playing.items() if k in ("title", "artist", "album")}
    path = p.track_path or p.now_playing.get("file", "")
    if p.waiting:
        path = p.now_playing.get("file", "")
    if not path:
        return None
    name = p.track if path == p.track_path else path.rstrip("/").rsplit("/", 1)[-1]
    return {"path": path, "name": name, "title": None, "artist": None, "album": None,
            **(track_tags(path) if path.startswith("/") else {}), **tags}


def _minute_of_day() -> int:
    from moodbox.audio.thread import minute_of_day

    return minute_of_day()


@lru_cache(maxsize=64)
def track_tags(path: str) -> dict:
    """{"title": ..., "artist": ...} from the track's tags where it has them (mutagen)."""
    try:
        import mutagen
    except ImportError:
        return {}
    try:
        tags = mutagen.File(path, easy=True)
    except Exception:  # noqa: BLE001 (a track with odd tags still plays)
        return {}
    out = {}
    for key in ("title", "artist"):
        values = (tags.get(key) if tags is not None and tags.tags is not None else None) or []
        if values:
            out[key] = str(values[0])
    return out
