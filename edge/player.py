"""Plays the mood's playlist through pygame.mixer: fades, volume limits, away and quiet hours."""
from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from edge.config import PlayerConfig, QuietHoursConfig
from edge.playlists import Playlist, TrackQueue

logger = logging.getLogger(__name__)

AUDIO_GROUP_HINT = "add the service user to the 'audio' group (sudo usermod -aG audio USER)"


class AudioError(Exception):
    """The sound device failed (missing, busy, unplugged); retried in the background."""


class AudioPermissionError(AudioError):
    """The sound device exists but this user may not open it."""


class TrackError(Exception):
    """One track cannot be played (missing, corrupt, unsupported)."""


class AudioBackend(ABC):
    """What the player needs from a sound system; pygame.mixer.music in production."""

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def play(self, path: Path, fade_in_ms: int) -> None: ...

    @abstractmethod
    def fadeout(self, ms: int) -> None: ...

    @abstractmethod
    def busy(self) -> bool: ...

    @abstractmethod
    def position_ms(self) -> int: ...

    @abstractmethod
    def set_volume(self, volume: float) -> None: ...

    @abstractmethod
    def pause(self) -> None: ...

    @abstractmethod
    def resume(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...


class PygameBackend(AudioBackend):
    """pygame.mixer.music, streaming one track at a time. pygame is imported on open."""

    def __init__(self, driver: str = "", device: str = "", frequency: int = 44100,
                 fallback_file: Path | None = None):
        self.driver, self.device, self.frequency = driver, device, frequency
        self.fallback_file = fallback_file  # demo: no sound device -> SDL's disk driver
        self._music = None
        self._mixer = None

    def open(self) -> None:
        try:
            self._open()
        except AudioPermissionError:
            raise
        except AudioError as exc:
            if self.fallback_file is None or os.environ.get("SDL_AUDIODRIVER") == "disk":
                raise
            logger.warning("%s; writing the audio to %s instead", exc, self.fallback_file)
            os.environ["SDL_AUDIODRIVER"] = "disk"
            os.environ["SDL_DISKAUDIOFILE"] = str(self.fallback_file)
            self.driver, self.device = "disk", ""
            self._open()

    def _open(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        if self.driver:
            os.environ["SDL_AUDIODRIVER"] = self.driver
        _check_sound_permissions()
        try:
            import pygame
        except ImportError:
            raise AudioError("pygame is not installed: pip install pygame "
                             "(or apt install python3-pygame)") from None
        if pygame.mixer.get_init():
            pygame.mixer.quit()  # the player owns the mixer: open it with our driver and device
        try:
            pygame.mixer.init(frequency=self.frequency, size=-16, channels=2, buffer=2048,
                              devicename=self.device or None)
        except pygame.error as exc:
            text = str(exc)
            if "ermission" in text:
                raise AudioPermissionError(f"no permission to open the sound device ({text}); "
                                           f"{AUDIO_GROUP_HINT}") from None
            raise AudioError(f"cannot open the sound device ({text or 'no detail'})") from None
        self._mixer, self._music = pygame.mixer, pygame.mixer.music
        self._pygame_error = pygame.error

    def close(self) -> None:
        if self._mixer is not None:
            try:
                self._music.stop()
                self._music.unload()
            except Exception:  # noqa: BLE001 (the device may already be gone)
                pass
            self._mixer.quit()
        self._mixer = self._music = None

    def _call(self, fn: Callable, *args):
        if self._music is None:
            raise AudioError("sound device is not open")
        try:
            return fn(*args)
        except self._pygame_error as exc:
            if not self._mixer.get_init():
                raise AudioError(f"sound device lost ({exc})") from None
            raise

    def play(self, path: Path, fade_in_ms: int) -> None:
        if self._music is None:
            raise AudioError("sound device is not open")
        try:
            self._music.load(str(path))
            self._music.play(loops=0, fade_ms=int(fade_in_ms))
        except self._pygame_error as exc:
            if not self._mixer.get_init():
                raise AudioError(f"sound device lost ({exc})") from None
            raise TrackError(str(exc) or "cannot be decoded") from None
        except (OSError, UnicodeError) as exc:
            raise TrackError(str(exc)) from None

    def fadeout(self, ms: int) -> None:
        self._call(self._music.fadeout, int(ms))

    def busy(self) -> bool:
        return bool(self._call(self._music.get_busy))

    def position_ms(self) -> int:
        return int(self._call(self._music.get_pos))

    def set_volume(self, volume: float) -> None:
        self._call(self._music.set_volume, float(volume))

    def pause(self) -> None:
        self._call(self._music.pause)

    def resume(self) -> None:
        self._call(self._music.unpause)

    def stop(self) -> None:
        self._call(self._music.stop)


def _check_sound_permissions() -> None:
    snd = Path("/dev/snd")
    if not snd.is_dir() or os.environ.get("SDL_AUDIODRIVER") in ("disk", "dummy"):
        return
    devices = [p for p in snd.iterdir() if p.name.startswith(("pcm", "control"))]
    if devices and not any(os.access(p, os.R_OK | os.W_OK) for p in devices):
        raise AudioPermissionError(f"no permission to open the sound devices in /dev/snd; "
                                   f"{AUDIO_GROUP_HINT}")


@dataclass(frozen=True)
class PlayerStatus:
    state: str            # no-device | idle | playing | fading | paused | stopped | quiet
    mood: str
    playlist: str
    track: str
    volume: float


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

    def __init__(self, backend: AudioBackend, cfg: PlayerConfig,
                 playlists: Mapping[str, Playlist], mood_map: Mapping[str, tuple[str, ...]],
                 rng: random.Random | None = None):
        self.backend = backend
        self._rng = rng or random.Random()
        self.cfg = cfg
        self.playlists: dict[str, Playlist] = {}
        self.mood_map: Mapping[str, tuple[str, ...]] = {}
        self._queues: dict[str, TrackQueue] = {}
        self.device_open = False
        self._next_retry = 0.0
        self._device_error_logged = ""
        self.mood = "away"
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
        self.fatal = ""
        self.update_library(cfg, playlists, mood_map)

    # --- configuration -------------------------------------------------
    def update_library(self, cfg: PlayerConfig, playlists: Mapping[str, Playlist],
                       mood_map: Mapping[str, tuple[str, ...]]) -> None:
        """New settings and playlists (startup or reload); the current track plays on."""
        self.cfg = cfg
        self.playlists = dict(playlists)
        self.mood_map = dict(mood_map)
        self._queues = {name: TrackQueue(p.tracks, p.shuffle, self._rng)
                        for name, p in self.playlists.items()}
        self._nothing_logged.clear()
        if self.state == "quiet":
            self.state = "idle"  # new playlists: try again
        for p in self.playlists.values():
            for s in p.skipped:
                logger.warning("playlist %s: skipping %s: %s", p.name, s.path, s.reason)
        if self.playlist and self.playlist not in self.playlists:
            self._pending = self._choose(self.mood)

    # --- decisions -----------------------------------------------------
    def _choose(self, mood: str) -> str:
        names = [n for n in self.mood_map.get(mood, ()) if n in self.playlists]
        if mood == "away" and not names:
            return self.playlist or self.cfg.default_playlist
        if not names:
            return self.cfg.default_playlist
        weights = [max(0.0, self.playlists[n].weight) for n in names]
        if len(names) == 1 or sum(weights) <= 0:
            return names[0]
        return self._rng.choices(names, weights=weights, k=1)[0]

    def set_mood(self, mood: str, now: float) -> None:
        """The stable mood changed: follow it as config says."""
        previous, self.mood = self.mood, mood
        if mood == "away":
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
        elif previous == "away" and self.state == "paused":
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

    def _begin_fade(self, now: float) -> None:
        self._safe(lambda: self.backend.fadeout(self.cfg.fade_ms))
        self.state = "fading"
        self._fade_deadline = now + self.cfg.fade_ms / 1000.0 + 0.5

    def target_volume(self, minute_of_day: int) -> float:
        cfg = self.cfg
        pl = self.playlists.get(self.playlist)
        v = cfg.volume * (pl.volume if pl else 1.0)
        if self.mood == "away" and cfg.away == "lower":
            v = min(v, cfg.away_volume)
        v = min(v, cfg.max_volume)
        if quiet_now(cfg.quiet_hours, minute_of_day):
            v = min(v, cfg.quiet_hours.max_volume)
        return max(0.0, v)

    # --- the clock -------------------------------------------------------
    def tick(self, now: float, minute_of_day: int) -> None:
        if not self.device_open:
            if now < self._next_retry:
                return
            if not self._open_device(now):
                return
        try:
            self._apply_volume(minute_of_day)
            self._advance(now)
        except AudioError as exc:
            self._lose_device(str(exc), now)

    def _open_device(self, now: float) -> bool:
        try:
            self.backend.open()
        except AudioPermissionError as exc:
            self.fatal = str(exc)
            self._next_retry = now + self.cfg.audio_retry_s
            return False
        except AudioError as exc:
            if str(exc) != self._device_error_logged:
                logger.warning("%s; retrying every %.0f s in the background", exc,
                               self.cfg.audio_retry_s)
                self._device_error_logged = str(exc)
            self._next_retry = now + self.cfg.audio_retry_s
            return False
        if self._device_error_logged:
            logger.info("sound device is back")
        self._device_error_logged = ""
        self.device_open = True
        self._applied_volume = -1.0
        if self.track is not None or self.state in ("playing", "fading"):
            self._pending = self._pending or self.playlist or self._choose(self.mood)
            self.state, self.track = "idle", None
        return True

    def _lose_device(self, reason: str, now: float) -> None:
        logger.warning("%s; closing it and retrying every %.0f s", reason, self.cfg.audio_retry_s)
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
        v = round(self.target_volume(minute_of_day), 3)
        if v != self._applied_volume:
            self.backend.set_volume(v)
            self._applied_volume = v

    def _advance(self, now: float) -> None:
        if self.state in ("paused", "stopped"):
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
        if self.state == "idle":
            self._start_next(now)

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
                self._started_at, self._last_pos, self._pos_since = now, -1, now
                logger.info("playing %s from %s (mood %s)", track.name, name, self.mood)
                return
        if "(nothing)" not in self._nothing_logged:
            logger.warning("nothing playable in playlist %s nor in the default playlist %s; "
                           "staying quiet until the playlists change (moodbox check lists why)",
                           target, self.cfg.default_playlist)
            self._nothing_logged.add("(nothing)")
        self.playlist, self.track, self.state = target, None, "quiet"

    def _fallback_chain(self, target: str) -> list[str]:
        chain = [target]
        if self.cfg.default_playlist != target:
            chain.append(self.cfg.default_playlist)
        return [n for n in chain if n in self._queues]

    def _play_from(self, name: str, now: float) -> Path | None:
        q = self._queues[name]
        fade_in = self.cfg.fade_ms if self.cfg.on_change == "fade" else 0
        for _ in range(len(q.tracks)):
            track = q.next()
            if track is None:
                return None
            try:
                self.backend.play(track, fade_in)
                return track
            except TrackError as exc:
                logger.warning("skipping unplayable track %s: %s", track, exc)
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

    def status(self, minute_of_day: int) -> PlayerStatus:
        state = self.state if self.device_open else "no-device"
        return PlayerStatus(state, self.mood, self.playlist,
                            self.track.name if self.track else "",
                            round(self.target_volume(minute_of_day), 2))


def raw_to_wav(raw: Path, wav: Path, rate: int = 44100, channels: int = 2) -> None:
    """Wrap the 16-bit PCM that SDL's disk driver wrote into a .wav file."""
    import wave

    data = raw.read_bytes() if raw.exists() else b""
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data[: len(data) - len(data) % (2 * channels)])


def minute_of_day(wall: float | None = None) -> int:
    t = time.localtime(wall)
    return t.tm_hour * 60 + t.tm_min


class PlayerThread:
    """Runs a PlaylistPlayer in its own thread so a slow or missing sound device never
    holds up vision. The daemon talks to it through a command queue."""

    def __init__(self, player: PlaylistPlayer, tick_s: float = 0.05):
        self.player = player
        self._tick_s = tick_s
        self._commands: queue.Queue = queue.Queue()
        self._stopped = threading.Event()
        self._status = player.status(minute_of_day())
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)

    def start(self) -> "PlayerThread":
        self._thread.start()
        return self

    def set_mood(self, mood: str) -> None:
        self._commands.put(("mood", mood))

    def update_library(self, cfg: PlayerConfig, playlists: Mapping[str, Playlist],
                       mood_map: Mapping[str, tuple[str, ...]]) -> None:
        self._commands.put(("library", (cfg, playlists, mood_map)))

    def status(self) -> PlayerStatus:
        return self._status

    @property
    def fatal(self) -> str:
        return self.player.fatal

    def stop(self, fade_ms: int, timeout: float) -> None:
        """Fade out and close the device, waiting at most `timeout` seconds."""
        self._commands.put(("stop", (fade_ms, time.monotonic() + max(0.1, timeout - 0.3))))
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("player did not stop within %.1f s", timeout)

    def _run(self) -> None:
        p = self.player
        while True:
            try:
                kind, arg = self._commands.get(timeout=self._tick_s)
            except queue.Empty:
                kind, arg = "", None
            now = time.monotonic()
            try:
                if kind == "mood":
                    p.set_mood(arg, now)
                elif kind == "library":
                    p.update_library(*arg)
                elif kind == "stop":
                    p.shutdown(*arg)
                    self._status = p.status(minute_of_day())
                    return
                p.tick(now, minute_of_day())
            except Exception:  # noqa: BLE001 (the player must outlive a bug in one tick)
                logger.exception("player error; carrying on")
                time.sleep(0.5)
            self._status = p.status(minute_of_day())
