"""The player's decisions: which playlist and track, fades, volume limits, away, quiet hours."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from moodbox.audio.backend import (AudioBackend, AudioError, AudioPermissionError, OthersChose,
                                   TrackError)
from moodbox.audio.playlists import Playlist, TrackQueue, skipped_summary
from moodbox.config import PlayerConfig, QuietHoursConfig, playlists_for
from moodbox.control.learning import SkipLearner
from moodbox.vocabulary import AWAY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayerStatus:
    state: str            # no-device | idle | playing | fading | paused | stopped | quiet
    mood: str
    playlist: str
    track: str
    volume: float
    track_path: str = ""
    paused: bool = False              # paused by the owner (not by away)
    hold: str = ""                    # the playlist held by the owner, whatever the mood
    hold_left_s: float | None = None  # None: held until released
    owner_volume: float | None = None
    quiet_hours: bool = False
    played_less: Mapping[str, int] = field(default_factory=dict)
    waiting: str = ""                 # why moodbox gives way (another MPD client chose music)
    wait_left_s: float | None = None  # None: until the owner releases
    now_playing: Mapping[str, str] = field(default_factory=dict)  # the output's tags


def quiet_now(q: QuietHoursConfig, minute_of_day: int) -> bool:
    if not q.enabled:
        return False
    start, end = q.minutes()
    if start == end:
        return True
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


class PlaylistPlayer:
    """The player's logic, single-threaded: call `set_mood` on a change and `tick`
    often. Times come from the caller (monotonic `now`, local `minute_of_day`)."""

    STALL_S = 4.0  # playing, yet the position has not moved for this long: device lost
    SKIP_FADE_MS = 300  # an owner's skip, hold or release fades this fast at most
    SHORT_S = 1.0  # a track that ends sooner than this after starting counts as "short"
    SHORT_RUN = 5  # this many short tracks in a row: nothing really plays, back off
    BACKOFF_S, BACKOFF_MAX_S = 5.0, 300.0
    QUIET_RETRY_S = 30.0  # nothing playable: try every track again this often (files may
    #                       open again: a flood of connections ended, a disk came back)

    def __init__(self, backend: AudioBackend, cfg: PlayerConfig,
                 playlists: Mapping[str, Playlist], mood_map: Mapping[str, tuple[str, ...]],
                 rng: random.Random | None = None, learner: SkipLearner | None = None):
        self.backend = backend
        self._rng = rng or random.Random()
        self.learner = learner or SkipLearner()
        self.owner_paused = False
        self.owner_volume: float | None = None
        self.hold = ""
        self.hold_until: float | None = None
        self._skipped = False
        self.cfg = cfg
        self.playlists: dict[str, Playlist] = {}
        self.mood_map: Mapping[str, tuple[str, ...]] = {}
        self._queues: dict[str, TrackQueue] = {}
        self.device_open = False
        self._next_retry = 0.0
        self._device_error_logged = ""
        self.mood = AWAY
        self.playlist = ""
        self.track: Path | None = None
        self.state = "idle"
        self._pending: str | None = None
        self._fade_deadline = 0.0
        self._applied_volume = -1.0
        self._nothing_logged: set[str] = set()
        self._last_pos = -1
        self._pos_since = 0.0
        self._started_at = 0.0
        self._short_run = 0
        self._hold_until = 0.0
        self._backoff_s = self.BACKOFF_S
        self._quiet_until = 0.0
        self._retrying = False
        self.fatal = ""
        self.waiting = ""                # another client chose music: moodbox does not steer
        self.wait_until: float | None = None
        self._stored_logged: set[str] = set()
        self.update_library(cfg, playlists, mood_map)

    # --- configuration -------------------------------------------------
    def update_library(self, cfg: PlayerConfig, playlists: Mapping[str, Playlist],
                       mood_map: Mapping[str, tuple[str, ...]], now: float | None = None) -> None:
        """New settings and playlists (startup or reload). The current track plays on,
        unless the current mood now maps elsewhere: then it fades to the new playlist."""
        before = playlists_for(self.mood_map, self.cfg.default_playlist, self.mood)
        self.cfg = cfg
        self.playlists = dict(playlists)
        self.mood_map = dict(mood_map)
        self._queues = self._fresh_queues()
        self._nothing_logged.clear()
        if self.state == "quiet":
            self.state = "idle"  # new playlists: try again
        self._short_run, self._hold_until, self._backoff_s = 0, 0.0, self.BACKOFF_S
        for p in self.playlists.values():
            for line in skipped_summary(p):  # one line per source, not one per file
                logger.warning("%s", line)
        if self.device_open:
            self._safe(self._load_stored)  # stored playlists' tracks first: choosing needs them
        if self.playlist and self.playlist not in self.playlists:
            self._pending = self._choose(self.mood)
        elif now is not None and playlists_for(self.mood_map, cfg.default_playlist,
                                               self.mood) != before:
            self._follow_new_map(now)

    def _follow_new_map(self, now: float) -> None:
        """A reload mapped the current mood elsewhere: fade over now (a hold still wins)."""
        target = self._choose(self.mood)
        if not self.playlist or target == self.playlist:
            return
        self._pending = target
        if self.state == "playing" and not self.owner_paused:
            self._begin_fade(now)

    def _load_stored(self) -> None:
        """Playlists that name stored playlists on the output (MPD's `mpd:NAME`): their
        tracks join the playlist's own; a missing one is one line naming the fix."""
        for name, p in self.playlists.items():
            if not p.stored:
                continue
            tracks = list(p.tracks)
            for stored in p.stored:
                try:
                    tracks += [t for t in self.backend.stored_playlist(stored) if t not in tracks]
                except TrackError as exc:
                    if f"{name}/{stored}" not in self._stored_logged:
                        logger.warning("playlist %s: %s", name, exc)
                        self._stored_logged.add(f"{name}/{stored}")
            self._queues[name] = TrackQueue(tracks, p.shuffle, self._rng)

    def _fresh_queues(self) -> dict[str, TrackQueue]:
        return {name: TrackQueue(p.tracks, p.shuffle, self._rng)
                for name, p in self.playlists.items()}

    # --- decisions -----------------------------------------------------
    def _choose(self, mood: str) -> str:
        """The playlist for `mood` (config's one answer, `playlists_for`); "away" with
        nothing mapped keeps the current playlist; a mapped name that is not loaded falls
        back to the default playlist."""
        if self.hold and self.hold in self.playlists:
            return self.hold
        names = playlists_for(self.mood_map, self.cfg.default_playlist, mood)
        if not names:
            return self.playlist or self.cfg.default_playlist
        names = [n for n in names if n in self.playlists]
        if not names:
            return self.cfg.default_playlist
        weights = [max(0.0, self.playlists[n].weight) for n in names]
        if len(names) == 1 or sum(weights) <= 0:
            return names[0]
        return self._rng.choices(names, weights=weights, k=1)[0]

    def set_mood(self, mood: str, now: float) -> None:
        """The stable mood changed: follow it as config says."""
        previous, self.mood = self.mood, mood
        if self.waiting:  # another client chose music: the mood's playlist waits
            return
        if self.owner_paused:  # the owner's pause wins; the new playlist waits for resume
            target = self._choose(mood)
            self._pending = None if target == self.playlist else target
            return
        if mood == AWAY and not self.hold:  # a held playlist plays on, away or not
            action = self.cfg.away
            if action == "pause":
                self._safe(self.backend.pause)
                self.state = "paused" if self.track else self.state
                return
            if action == "stop":
                self._pending = None
                if self.track is not None:
                    self._safe(lambda: self.backend.fadeout(self.cfg.fade_ms))
                self.state, self.track = "stopped", None
                return
        elif previous == AWAY and self.state == "paused":
            self._safe(self.backend.resume)
            self.state = "playing"
        elif self.state in ("stopped", "quiet"):
            self.state = "idle"
        target = self._choose(mood)
        if target == self.playlist and self.state in ("playing", "fading", "paused"):
            self._pending = None
            return
        self._pending = target
        if self.state == "playing" and self.cfg.on_change == "fade":
            self._begin_fade(now)

    def _begin_fade(self, now: float, fade_ms: int | None = None) -> None:
        fade_ms = self.cfg.fade_ms if fade_ms is None else fade_ms
        self._safe(lambda: self.backend.fadeout(fade_ms))
        self.state = "fading"
        self._fade_deadline = now + fade_ms / 1000.0 + 0.5

    # --- the owner's commands (control socket, page, buttons) ---------------
    def skip(self, now: float) -> bool:
        """Next track from the same playlist; the skipped one plays less in this mood.
        A skip also ends an owner's pause. False when nothing was playing."""
        if (self.track is None or self.waiting
                or self.state not in ("playing", "fading", "paused")):
            return False
        if self.cfg.learn_from_skips:
            self.learner.skipped(self.mood, self.track, now)
        self._skipped = True
        self._pending = self._pending or self.playlist
        if self.state == "paused":
            self._safe(self.backend.stop)
            self.state = "idle"
        else:
            self._begin_fade(now, min(self.cfg.fade_ms, self.SKIP_FADE_MS))
        self.owner_paused = False
        return True

    def pause(self, now: float) -> None:
        self.owner_paused = True
        if self.waiting:  # the owner's pause reaches whatever the other client plays
            self._safe(self.backend.pause)
            return
        if self.state in ("playing", "fading") and self.track is not None:
            self._safe(self.backend.pause)
        self.state = "paused"

    def resume(self, now: float) -> None:
        if not self.owner_paused and not (self.state == "paused" and self.mood == AWAY):
            return
        self.owner_paused = False
        if self.waiting:
            self._safe(self.backend.resume)
            return
        if self.track is not None and self.state == "paused":
            self._safe(self.backend.resume)
            self.state = "playing"
            if self._pending and self._pending != self.playlist:
                self._begin_fade(now)
        else:
            self.state, self.track = "idle", None

    def set_owner_volume(self, level: float | None) -> None:
        """The owner's volume (0..1, None: config's); max_volume and quiet hours still cap it."""
        self.owner_volume = None if level is None else min(1.0, max(0.0, float(level)))

    def hold_playlist(self, name: str, until: float | None, now: float) -> None:
        """Play `name` whatever the mood, until `until` (monotonic) or release."""
        if name not in self.playlists:
            raise KeyError(name)
        self.hold, self.hold_until = name, until
        self._end_wait("the owner chose a playlist")
        self._retarget(now)

    def release(self, now: float) -> None:
        if self.waiting:
            self._end_wait("the owner released it")
        if not self.hold:
            return
        self.hold, self.hold_until = "", None
        self._retarget(now)

    def _retarget(self, now: float) -> None:
        """After a hold or release: move to the playlist that now applies, quickly."""
        target = self._choose(self.mood)
        if target == self.playlist and self.track is not None:
            self._pending = None
            return
        self._pending = target
        if self.state == "playing":
            self._begin_fade(now, min(self.cfg.fade_ms, self.SKIP_FADE_MS))
        elif self.state in ("stopped", "quiet"):
            self.state = "idle"

    def volume_cap(self, minute_of_day: int) -> float:
        """The most anything may play at now: max_volume, lower in quiet hours."""
        cap = self.cfg.max_volume
        if quiet_now(self.cfg.quiet_hours, minute_of_day):
            cap = min(cap, self.cfg.quiet_hours.max_volume)
        return cap

    def target_volume(self, minute_of_day: int) -> float:
        cfg = self.cfg
        pl = self.playlists.get(self.playlist)
        base = cfg.volume if self.owner_volume is None else self.owner_volume
        v = base * (pl.volume if pl else 1.0)
        if self.mood == AWAY and cfg.away == "lower":
            v = min(v, cfg.away_volume)
        v = min(v, cfg.max_volume)
        if quiet_now(cfg.quiet_hours, minute_of_day):
            v = min(v, cfg.quiet_hours.max_volume)
        return max(0.0, v)

    # --- the clock -------------------------------------------------------
    def tick(self, now: float, minute_of_day: int) -> None:
        if self.hold_until is not None and now >= self.hold_until:
            logger.info("hold of %s ended; following the mood again", self.hold)
            self.release(now)
        if not self.device_open:
            if now < self._next_retry:
                return
            if not self._open_device(now):
                return
        try:
            self._follow_output(now)
            self._apply_volume(minute_of_day)
            if not self.waiting:
                self._advance(now)
        except AudioError as exc:
            self._lose_device(str(exc), now)

    # --- a shared output (MPD): another client chose music -------------------------
    def _follow_output(self, now: float) -> None:
        event = self.backend.poll()
        if event is not None:
            self._give_way(event, now)
        if self.waiting and self.wait_until is not None and now >= self.wait_until:
            self._end_wait("its time is up (mpd.give_way_min)")

    def _give_way(self, event: OthersChose, now: float) -> None:
        if event.at_connect and event.path is not None and self._is_ours(event.path):
            return  # moodbox's own track from before a restart: steer on
        if not self.waiting:
            logger.info("someone chose music (%s): moodbox waits %s", event.reason,
                        "until `moodbox release`" if event.wait_s is None
                        else f"{event.wait_s / 60:g} min or until `moodbox release`")
        self.waiting = event.reason
        self.wait_until = None if event.wait_s is None else now + event.wait_s
        self._pending, self.track, self.state = None, None, "idle"

    def _end_wait(self, why: str) -> None:
        if not self.waiting:
            return
        logger.info("moodbox steers the music again: %s", why)
        self.waiting, self.wait_until = "", None
        self._applied_volume = -1.0
        self._pending = self._choose(self.mood)
        self.state, self.track = ("paused" if self.owner_paused else "idle"), None

    def _is_ours(self, path: Path) -> bool:
        """A track of one of the playlists (a relative one is a name in MPD's library)."""
        tail = "/" + path.as_posix().lstrip("/")
        return any(t == path or (not t.is_absolute() and tail.endswith("/" + t.as_posix()))
                   for q in self._queues.values() for t in q.tracks)

    def _open_device(self, now: float) -> bool:
        try:
            self.backend.open()
        except AudioPermissionError as exc:
            self.fatal = str(exc)
            self._next_retry = now + self.cfg.audio_retry_s
            return False
        except AudioError as exc:
            if str(exc) != self._device_error_logged:
                logger.warning("%s; retrying %s in the background", exc,
                               self.backend.retry_text(self.cfg.audio_retry_s))
                self._device_error_logged = str(exc)
            self._next_retry = now + self.cfg.audio_retry_s
            return False
        if self._device_error_logged:
            logger.info("%s is back", self.backend.what)
        self._device_error_logged = ""
        self.device_open = True
        self._applied_volume = -1.0
        if self.track is not None or self.state in ("playing", "fading"):
            self._pending = self._pending or self.playlist or self._choose(self.mood)
            self.state, self.track = "idle", None
        if self.owner_paused:
            self.state = "paused"
        self._safe(self._load_stored)
        return self.device_open

    def _lose_device(self, reason: str, now: float) -> None:
        logger.warning("%s; closing it and retrying %s", reason,
                       self.backend.retry_text(self.cfg.audio_retry_s))
        self._device_error_logged = reason
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 (already broken)
            pass
        self.device_open = False
        self._next_retry = now + self.cfg.audio_retry_s
        if self.state in ("playing", "fading", "idle"):
            self._pending = self._pending or self.playlist or None
            self.state, self.track = "idle", None

    def _apply_volume(self, minute_of_day: int) -> None:
        self.backend.set_cap(self.volume_cap(minute_of_day))
        if self.waiting:
            return  # the other client's volume stays theirs (under the cap)
        v = round(self.target_volume(minute_of_day), 3)
        if v != self._applied_volume:
            self.backend.set_volume(v)
            self._applied_volume = v

    def _advance(self, now: float) -> None:
        if self.state in ("paused", "stopped"):
            return
        if self.state == "quiet" and now >= self._quiet_until:
            self._retry_quiet(now)
            return
        if self.state == "fading":
            if self.backend.busy() and now < self._fade_deadline:
                return
            self.state = "idle"
        if self.state == "playing":
            if self.backend.busy():
                self._check_stall(now)
                return
            self.state = "idle"  # the track ended
            if self.track is not None and not self._skipped:
                self.learner.played_through(self.mood, self.track)
            self._count_short(now)
        if self.state == "idle" and now >= self._hold_until:
            self._start_next(now)

    def _count_short(self, now: float) -> None:
        """Tracks that end at once (zero-length, a few ms) would start ~20 times a second:
        after SHORT_RUN of them in a row, wait BACKOFF_S (doubling) before the next."""
        if now - self._started_at >= self.SHORT_S:
            self._short_run, self._backoff_s = 0, self.BACKOFF_S
            return
        self._short_run += 1
        if self._short_run >= self.SHORT_RUN:
            logger.warning("playlist %s: %d tracks in a row ended within %.0f s of starting "
                           "(empty or very short files?); waiting %.0f s before the next",
                           self.playlist, self._short_run, self.SHORT_S, self._backoff_s)
            self._hold_until = now + self._backoff_s
            self._backoff_s = min(self.BACKOFF_MAX_S, self._backoff_s * 2)
            self._short_run = 0

    def _check_stall(self, now: float) -> None:
        pos = self.backend.position_ms()
        if pos != self._last_pos:
            self._last_pos, self._pos_since = pos, now
        elif now - self._pos_since > self.STALL_S and now - self._started_at > self.STALL_S:
            raise AudioError(f"sound device stalled (no progress for {self.STALL_S:.0f} s)")

    def _start_next(self, now: float) -> None:
        target = self._pending or self.playlist or self._choose(self.mood)
        self._pending = None
        for name in self._fallback_chain(target):
            track = self._play_from(name, now)
            if track is not None:
                if name != target and target not in self._nothing_logged:
                    logger.warning("playlist %s has nothing playable; playing %s instead", target, name)
                    self._nothing_logged.add(target)
                self.playlist, self.track, self.state = name, track, "playing"
                self._skipped = False
                self._started_at, self._last_pos, self._pos_since = now, -1, now
                logger.info("playing %s from %s (mood %s)", track.name, name, self.mood)
                return
        if "(nothing)" not in self._nothing_logged:
            logger.warning("nothing playable in playlist %s nor in the default playlist %s; "
                           "trying again every %.0f s (moodbox check lists why)",
                           target, self.cfg.default_playlist, self.QUIET_RETRY_S)
            self._nothing_logged.add("(nothing)")
        self.playlist, self.track, self.state = target, None, "quiet"
        self._quiet_until = now + self.QUIET_RETRY_S

    def _retry_quiet(self, now: float) -> None:
        """Nothing was playable: every track gets another chance (the tracks that failed
        were taken out of the queues; a failure may have been passing, e.g. no free file
        descriptor). Quietly: the first try logged each track's reason already."""
        self._queues = self._fresh_queues()
        self.state, self._retrying = "idle", True
        try:
            self._start_next(now)
        finally:
            self._retrying = False
        if self.state == "playing":
            logger.info("tracks play again after nothing was playable")
            self._nothing_logged.discard("(nothing)")

    def _fallback_chain(self, target: str) -> list[str]:
        chain = [target]
        if self.cfg.default_playlist != target:
            chain.append(self.cfg.default_playlist)
        return [n for n in chain if n in self._queues]

    def _play_from(self, name: str, now: float) -> Path | None:
        q = self._queues[name]
        fade_in = self.cfg.fade_ms if self.cfg.on_change == "fade" else 0
        mood = self.mood
        weight = ((lambda t: self.learner.weight(mood, t)) if self.cfg.learn_from_skips
                  else None)
        for _ in range(len(q.tracks)):
            track = q.next(weight)
            if track is None:
                return None
            try:
                self.backend.play(track, fade_in)
                return track
            except TrackError as exc:
                logger.log(logging.DEBUG if self._retrying else logging.WARNING,
                           "skipping unplayable track %s: %s", track, exc)
                for queue_ in self._queues.values():
                    queue_.remove(track)
        return None

    def _safe(self, action: Callable[[], None]) -> None:
        if not self.device_open:
            return
        try:
            action()
        except AudioError as exc:
            self._lose_device(str(exc), time.monotonic())

    def shutdown(self, fade_ms: int, deadline: float) -> None:
        """Fade out (bounded by `deadline`, monotonic) and release the device."""
        if self.device_open and self.track is not None and self.state == "playing":
            self._safe(lambda: self.backend.fadeout(fade_ms))
            while self.device_open and time.monotonic() < deadline:
                try:
                    if not self.backend.busy():
                        break
                except AudioError:
                    break
                time.sleep(0.05)
        if self.device_open:
            try:
                self.backend.close()
            except Exception:  # noqa: BLE001
                pass
        self.device_open = False
        self.state = "stopped"

    def status(self, minute_of_day: int, now: float | None = None) -> PlayerStatus:
        state = self.state if self.device_open else "no-device"
        if self.device_open and self.waiting:
            state = "waiting"
        wait_left = None
        if self.waiting and self.wait_until is not None and now is not None:
            wait_left = round(max(0.0, self.wait_until - now), 1)
        left = None
        if self.hold and self.hold_until is not None and now is not None:
            left = round(max(0.0, self.hold_until - now), 1)
        return PlayerStatus(state, self.mood, self.playlist,
                            self.track.name if self.track else "",
                            round(self.target_volume(minute_of_day), 2),
                            track_path=str(self.track) if self.track else "",
                            paused=self.owner_paused, hold=self.hold, hold_left_s=left,
                            owner_volume=self.owner_volume,
                            quiet_hours=quiet_now(self.cfg.quiet_hours, minute_of_day),
                            played_less=self.learner.played_less(),
                            waiting=self.waiting, wait_left_s=wait_left,
                            now_playing=self.backend.now_playing() if self.device_open else {})


