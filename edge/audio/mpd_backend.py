"""The MPD output: plays through a music server that speaks MPD's protocol (python-mpd2).

MPD, Mopidy-MPD, Volumio and moOde all qualify. moodbox steers MPD's queue one track
at a time (the player still picks each track), fades by ramping MPD's volume, keeps the
volume under the cap, and gives way when another MPD client chooses music. A second
connection waits in MPD's `idle` and only raises a flag; everything is judged on the
player's thread, so moodbox's own commands and its expectations never race.
"""
from __future__ import annotations

import logging
import os
import posixpath
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from moodbox.audio.backend import AudioBackend, AudioError, OthersChose, TrackError
from moodbox.config import MpdConfig

logger = logging.getLogger(__name__)

ENDED = "ended"        # judge(): moodbox's track finished on its own
PLAYBACK_MODES = ("random", "repeat", "single", "consume")  # would fight moodbox's choice
INSTALL_HINT = "python-mpd2 is not installed: pip install 'moodbox[mpd]' (or apt install python3-mpd)"


@dataclass(frozen=True)
class Expected:
    """How MPD looks if nobody but moodbox touched it since moodbox's last command."""

    state: str            # play | pause | stop
    songid: str = ""      # the queue entry moodbox started
    playlist: str = ""    # the queue's version after moodbox's last change


def judge(expected: Expected, status: Mapping[str, str]) -> str:
    """"" (as moodbox left it), ENDED (its track finished), or what another client did."""
    if status.get("playlist", "") != expected.playlist:
        return "the queue was changed"
    state, songid = status.get("state", "stop"), status.get("songid", "")
    if expected.state == "stop":
        return "" if state == "stop" else "playback was started"
    if state == "stop":
        if expected.state == "play" and "songid" not in status:
            return ENDED  # MPD forgets the current song when the queue runs out
        return "playback was stopped"
    if songid != expected.songid:
        return "another song was chosen"
    if state != expected.state:
        return "playback was paused" if state == "pause" else "playback was resumed"
    return ""


@dataclass(frozen=True)
class Ramp:
    """A volume envelope: gain from `start` to `end` over `ms` from `t0` (monotonic s)."""

    start: float = 1.0
    end: float = 1.0
    t0: float = 0.0
    ms: int = 0

    def gain(self, now: float) -> float:
        if self.ms <= 0 or now >= self.t0 + self.ms / 1000.0:
            return self.end
        frac = max(0.0, (now - self.t0) / (self.ms / 1000.0))
        return self.start + (self.end - self.start) * frac

    def done(self, now: float) -> bool:
        return self.ms <= 0 or now >= self.t0 + self.ms / 1000.0


class IdleWatcher:
    """A second connection parked in MPD's `idle`: each change it reports sets `changed`;
    a lost connection sets `lost`. It never sends anything else."""

    SUBSYSTEMS = ("player", "playlist", "mixer", "options", "stored_playlist")

    def __init__(self, client: Any):
        self.client = client
        self.changed = threading.Event()
        self.lost = ""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mpd-idle", daemon=True)

    def start(self) -> "IdleWatcher":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stopping:
                self.client.idle(*self.SUBSYSTEMS)
                self.changed.set()
        except Exception as exc:  # noqa: BLE001 (mpd.ConnectionError, OSError: MPD went away)
            if not self._stopping:
                self.lost = f"MPD connection lost ({exc or type(exc).__name__})"
                self.changed.set()

    def stop(self) -> None:
        """Wake the blocked `idle` by shutting its socket down, then disconnect."""
        self._stopping = True
        try:
            with socket.socket(fileno=os.dup(self.client.fileno())) as dup:
                dup.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 (already closed)
            pass
        self._thread.join(1.0)
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001
            pass


class MpdBackend(AudioBackend):
    """An AudioBackend on an MPD server. python-mpd2 is imported when it connects.

    `client_factory` makes an MPDClient-like object (tests hand in a double); `clock`
    is the monotonic clock that drives volume ramps."""

    what = "MPD"
    REFRESH_S = 1.0   # read MPD's status at least this often (also keeps the connection open)
    RETRY_FIRST_S = 2.0
    CAP_LOG_EVERY_S = 600.0  # "put the volume back under the cap": at most one line this often

    def __init__(self, cfg: MpdConfig, client_factory: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self._factory = client_factory
        self._clock = clock
        self._errors: tuple[type, ...] = (OSError,)
        self._command_error: type = Exception
        self._client: Any = None
        self._watcher: IdleWatcher | None = None
        self.version = ""
        self.music_dir: Path | None = None
        self._status: dict[str, str] = {}
        self._status_at = float("-inf")
        self._expect: Expected | None = None   # None: moodbox does not steer MPD now
        self._uri = ""                         # what moodbox last started
        self._tags: dict[str, str] = {}
        self._tags_for: str | None = None
        self._level: float | None = None  # the player's volume; None: not told yet
        self._cap = 1.0
        self._ramp = Ramp()
        self._stop_after_ramp = False
        self._sent_volume: int | None = None
        self._mixer = True
        self._event: OthersChose | None = None
        self._cap_logged_at = float("-inf")
        self._modes_logged = False
        self._retry_at = float("-inf")
        self._retry_s = self.RETRY_FIRST_S
        self._last_error = ""
        self._announced = False
        self._broken = False     # the connection failed: close() sends nothing more  # the first connection is logged; a reconnection is "MPD is back"

    # --- connecting ------------------------------------------------------
    @property
    def where(self) -> str:
        h = self.cfg.host
        if h.startswith(("/", "@")):
            return h
        return f"[{h}]:{self.cfg.port}" if ":" in h else f"{h}:{self.cfg.port}"

    @property
    def local(self) -> bool:
        """Over MPD's Unix socket: MPD tells its music directory and plays any local file."""
        return self.cfg.host.startswith(("/", "@"))

    def open(self) -> None:
        now = self._clock()
        if now < self._retry_at:
            raise AudioError(self._last_error)  # backing off: the same line, not logged again
        try:
            self._connect()
        except AudioError as exc:
            self.close()
            self._last_error = str(exc)
            self._retry_at = now + self._retry_s
            self._retry_s = min(self.cfg.retry_max_s, self._retry_s * 2)
            raise
        self._retry_s, self._retry_at = self.RETRY_FIRST_S, float("-inf")

    def _new_client(self) -> Any:
        try:
            import mpd
        except ImportError:
            raise AudioError(INSTALL_HINT) from None
        logging.getLogger("mpd").setLevel(logging.WARNING)  # it logs every connect at INFO
        self._errors = (OSError, mpd.ConnectionError, mpd.ProtocolError)
        self._command_error = mpd.CommandError
        client = self._factory() if self._factory is not None else mpd.MPDClient()
        client.timeout = self.cfg.timeout_s
        host = self.cfg.host
        try:
            if self._factory is None and host.startswith("/"):
                _knock(host, self.cfg.timeout_s)
            client.connect(host, None if self.local else self.cfg.port)
        except self._errors as exc:
            raise AudioError(f"MPD at {self.where} does not answer ({_reason(exc)}); is it "
                             "running? (systemctl status mpd; mpd.host and mpd.port in the "
                             "config)") from None
        if self.cfg.password:
            try:
                client.password(self.cfg.password)
            except self._command_error:
                _quietly(client.disconnect)
                raise AudioError(f"MPD at {self.where} refused the password: set mpd.password "
                                 "to the password in mpd.conf") from None
        return client

    def _connect(self) -> None:
        client = self._new_client()
        self._client = client
        try:
            allowed = set(self._call(client.commands))
            if "play" not in allowed or "status" not in allowed:
                raise AudioError(f"MPD at {self.where} lets this client do too little (no "
                                 "play): " + ("set mpd.password to MPD's password" if not
                                              self.cfg.password else "give mpd.password the "
                                              "player and control permissions in mpd.conf"))
            self.version = str(getattr(client, "mpd_version", "") or "")
            self.music_dir = self._find_music_dir(allowed)
            self._watcher = IdleWatcher(self._new_client()).start()
            self._refresh(self._clock())
        except self._command_error as exc:
            raise AudioError(f"MPD at {self.where} refused a command ({exc})") from None
        self._expect, self._sent_volume, self._mixer = None, None, True
        logger.log(logging.DEBUG if self._announced else logging.INFO,
                   "connected to MPD %s at %s (music directory %s)", self.version or "?",
                   self.where, self.music_dir or "unknown")
        self._announced = True
        s = self._status
        if s.get("state") == "play" and self._tags.get("file") != self._uri:
            playing = self._tags.get("file", "")
            self._event = OthersChose(f"MPD was already playing {playing or 'something'}",
                                      self._wait_s(), self._path_of(playing), at_connect=True)

    def _find_music_dir(self, allowed: set[str]) -> Path | None:
        if self.cfg.music_directory:
            return Path(self.cfg.music_directory)
        if not self.local or "config" not in allowed:
            return None
        try:
            answer = self._call(self._client.config)
        except self._command_error:
            return None
        text = answer.get("music_directory") if isinstance(answer, dict) else answer
        return Path(text) if text else None

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._client is not None:
            if not self._broken and self._expect is not None and self._expect.state != "stop":
                _quietly(self._client.stop)  # what moodbox started stops with moodbox
                if self._level is not None:
                    _quietly(lambda: self._client.setvol(self._volume_for(1.0)))
            _quietly(self._client.disconnect)
            self._client = None
        self._expect, self._broken = None, False
        self._status, self._status_at = {}, float("-inf")
        self._tags, self._tags_for = {}, None  # song ids start again when MPD restarts

    # --- the player's commands -------------------------------------------
    def play(self, path: Path, fade_in_ms: int) -> None:
        uri = self.uri_for(path)
        now = self._clock()
        self._switch_modes_off()
        self._ramp = Ramp(0.0, 1.0, now, fade_in_ms) if fade_in_ms > 0 else Ramp()
        self._stop_after_ramp = False
        self._send_volume(now)
        try:
            songid = self._add(uri)
            self._call(self._client.playid, songid)
        except TrackError:
            self._refresh(now)  # the queue may be cleared: that was moodbox, not another client
            self._expect = Expected("stop", "", self._status.get("playlist", ""))
            raise
        self._uri = uri
        self._refresh(now)
        self._expect = Expected("play", str(songid), self._status.get("playlist", ""))

    def _add(self, uri: str) -> str:
        """Queue `uri` (after clearing the queue in replace mode); its queue id."""
        if self.cfg.queue == "replace":
            self._call(self._client.clear)
        try:
            return str(self._call(self._client.addid, uri))
        except self._command_error as exc:
            raise TrackError(f"MPD cannot play {uri} ({_reason(exc)}); if it is new, let MPD "
                             "scan it (mpc update)") from None

    def _switch_modes_off(self) -> None:
        on = [m for m in PLAYBACK_MODES if self._status.get(m, "0") not in ("0", "")]
        for mode in on:
            self._call(getattr(self._client, mode), 0)
        if on and not self._modes_logged:
            logger.info("turned MPD's %s off: moodbox picks each next track itself",
                        ", ".join(on))
            self._modes_logged = True

    def fadeout(self, ms: int) -> None:
        if self._expect is None or self._expect.state == "stop":
            return
        now = self._clock()
        if ms <= 0 or self._expect.state == "pause":
            self._stop_now(now)
            return
        self._ramp = Ramp(self._ramp.gain(now), 0.0, now, ms)
        self._stop_after_ramp = True

    def busy(self) -> bool:
        self._tick()
        return self._expect is not None and self._expect.state == "play"

    def position_ms(self) -> int:
        self._tick()
        try:
            return int(float(self._status.get("elapsed", "0")) * 1000)
        except ValueError:
            return 0

    def set_volume(self, volume: float) -> None:
        self._level = max(0.0, min(1.0, float(volume)))
        self._send_volume(self._clock())

    def set_cap(self, cap: float) -> None:
        self._cap = max(0.0, min(1.0, float(cap)))

    def pause(self) -> None:
        self._call(self._client.pause, 1)
        self._after_own("pause", only_from="play")

    def resume(self) -> None:
        self._call(self._client.pause, 0)
        self._after_own("play", only_from="pause")

    def stop(self) -> None:
        self._stop_now(self._clock())

    def poll(self) -> OthersChose | None:
        self._tick()
        event, self._event = self._event, None
        return event

    def now_playing(self) -> Mapping[str, str]:
        return dict(self._tags)

    def stored_playlist(self, name: str) -> list[Path]:
        try:
            uris = self._call(self._client.listplaylist, name)
        except self._command_error:
            raise TrackError(f"MPD has no stored playlist '{name}' (`mpc lsplaylists` lists "
                             "them): save it in your MPD client or fix its mpd: source") from None
        tracks = [Path(u) for u in uris if "://" not in u]
        if len(tracks) < len(uris):
            logger.warning("MPD playlist %s: %d entr(ies) with a URL left out (streams, "
                           "file://; moodbox plays what is in MPD's library)",
                           name, len(uris) - len(tracks))
        return tracks

    # --- for `moodbox check` -----------------------------------------------------
    def not_in_library(self, tracks: list[Path]) -> list[tuple[Path, str]]:
        """The tracks MPD cannot play from its library, each with the reason (one
        `lsinfo` per folder, not one per file)."""
        missing: list[tuple[Path, str]] = []
        by_folder: dict[str, list[tuple[Path, str]]] = {}
        for track in tracks:
            try:
                uri = self.uri_for(track)
            except TrackError as exc:
                missing.append((track, str(exc)))
                continue
            if not uri.startswith("/"):  # an absolute path: played by path over the socket
                by_folder.setdefault(posixpath.dirname(uri), []).append((track, uri))
        for folder, items in by_folder.items():
            try:
                listing = self._call(self._client.lsinfo, folder) if folder else \
                    self._call(self._client.lsinfo)
            except self._command_error:
                listing = []
            known = {e["file"] for e in listing if isinstance(e, dict) and "file" in e}
            missing += [(t, f"{uri} is not in MPD's library (new? run mpc update)")
                        for t, uri in items if uri not in known]
        return missing

    def stored_names(self) -> set[str]:
        return {p["playlist"] for p in self._call(self._client.listplaylists) if "playlist" in p}

    # --- MPD library paths -----------------------------------------------------
    def uri_for(self, path: Path) -> str:
        """The MPD URI of a track: relative paths already are; a local file is made
        relative to MPD's music directory (or given whole over the Unix socket)."""
        if "\n" in str(path) or "\r" in str(path):
            raise TrackError(f"{str(path)!r}: its name holds a line break, which MPD's protocol "
                             "cannot carry; rename the file")
        if not path.is_absolute():
            return path.as_posix()
        if self.music_dir is not None:
            for candidate in (path, Path(os.path.realpath(path))):
                for root in (self.music_dir, Path(os.path.realpath(self.music_dir))):
                    try:
                        return candidate.relative_to(root).as_posix()
                    except ValueError:
                        continue
        if self.local:
            return str(path)  # MPD plays any file it can read for a client on its socket
        if self.music_dir is None:
            raise TrackError(f"{path}: moodbox does not know MPD's music directory; set "
                             "mpd.music_directory (over TCP MPD does not tell it)")
        raise TrackError(f"{path} is outside MPD's music directory {self.music_dir}: move it "
                         "there (or connect over MPD's Unix socket: mpd.host: /run/mpd/socket)")

    def _path_of(self, uri: str) -> Path | None:
        if not uri or "://" in uri:
            return None
        if uri.startswith("/"):
            return Path(uri)
        return self.music_dir / uri if self.music_dir is not None else Path(uri)

    # --- the clock: ramps, status, judging ---------------------------------------
    def _tick(self) -> None:
        now = self._clock()
        if self._client is None:
            raise AudioError("MPD is not connected")
        if self._watcher is not None and self._watcher.lost:
            self._broken = True  # nothing more is written to a dead connection
            raise AudioError(self._watcher.lost)
        self._send_volume(now)
        if self._stop_after_ramp and self._ramp.done(now):
            self._stop_now(now)
        flagged = self._watcher is not None and self._watcher.changed.is_set()
        if flagged or now - self._status_at >= self.REFRESH_S:
            if self._watcher is not None:
                self._watcher.changed.clear()
            self._refresh(now)
            self._judge()
            self._keep_under_cap()

    def _refresh(self, now: float) -> None:
        self._status = dict(self._call(self._client.status))
        self._status_at = now
        songid = self._status.get("songid", "")
        if songid != self._tags_for:
            self._tags_for = songid
            song = self._call(self._client.currentsong) if songid else {}
            self._tags = {k: _first(song[k]) for k in ("file", "title", "artist", "album")
                          if song.get(k)}

    def _judge(self) -> None:
        if self._expect is None:
            return
        verdict = judge(self._expect, self._status)
        if verdict == ENDED:
            self._expect = Expected("stop", "", self._status.get("playlist", ""))
        elif verdict:
            self._give_way(verdict)

    def _give_way(self, reason: str) -> None:
        logger.debug("MPD: %s by another client", reason)
        self._expect = None
        if self._ramp.end != 1.0 or self._ramp.gain(self._clock()) != 1.0:
            self._ramp, self._stop_after_ramp = Ramp(), False  # no fade left half-way
            self._send_volume(self._clock())
        self._event = OthersChose(f"{reason} in an MPD client", self._wait_s(),
                                  self._path_of(self._tags.get("file", "")))

    def _wait_s(self) -> float | None:
        return self.cfg.give_way_min * 60.0 if self.cfg.give_way_min > 0 else None

    def _keep_under_cap(self) -> None:
        try:
            volume = int(self._status.get("volume", "-1"))
        except ValueError:
            return
        cap = int(round(100 * self._cap))
        if volume <= cap:
            return
        now = self._clock()
        back = self._volume_for(self._ramp.gain(now)) if self._expect else cap
        quiet = now - self._cap_logged_at < self.CAP_LOG_EVERY_S  # a slider drag: one line
        logger.log(logging.DEBUG if quiet else logging.WARNING,
                   "an MPD client set the volume to %d%%, above moodbox's cap of %d%% "
                   "(player.max_volume, quiet hours); put it back to %d%%", volume, cap, back)
        if not quiet:
            self._cap_logged_at = now
        self._setvol(back)
        self._status["volume"] = str(back)

    def _stop_now(self, now: float) -> None:
        self._call(self._client.stop)
        self._ramp, self._stop_after_ramp = Ramp(), False
        self._send_volume(now)  # stopped: back to the level for whoever plays next
        self._after_own("stop")

    def _after_own(self, state: str, only_from: str = "") -> None:
        """moodbox changed MPD itself: read back what MPD looks like now. A pause or
        resume changes what moodbox expects only from the state it acts on."""
        self._refresh(self._clock())
        e = self._expect
        if e is not None:
            if only_from and e.state != only_from:
                state = e.state
            self._expect = Expected(state, e.songid, self._status.get("playlist", ""))

    # --- volume ---------------------------------------------------------------------
    def _volume_for(self, gain: float) -> int:
        level = self._cap if self._level is None else self._level
        return max(0, min(100, int(round(100 * min(level * gain, self._cap)))))

    def _send_volume(self, now: float) -> None:
        if self._level is None:
            return  # MPD's volume stays as it is until the player says what it wants
        volume = self._volume_for(self._ramp.gain(now))
        if volume != self._sent_volume and self._mixer:
            self._setvol(volume)

    def _setvol(self, volume: int) -> None:
        try:
            self._call(self._client.setvol, volume)
            self._sent_volume = volume
        except self._command_error as exc:
            self._mixer = False
            logger.warning("MPD has no volume control here (%s): moodbox cannot fade nor keep "
                           "the volume under player.max_volume; set mixer_type \"software\" "
                           "(or hardware) in mpd.conf's audio_output", _reason(exc))

    # --- errors ---------------------------------------------------------------------
    def _call(self, fn: Callable, *args: Any) -> Any:
        if self._client is None:
            raise AudioError("MPD is not connected")
        try:
            return fn(*args)
        except self._command_error:
            raise
        except self._errors as exc:
            self._broken = True
            raise AudioError(f"MPD connection lost ({_reason(exc)})") from None

    def retry_text(self, retry_s: float) -> str:
        return (f"every {retry_s:.0f} s, backing off to every "
                f"{max(retry_s, self.cfg.retry_max_s):.0f} s")

    def describe(self) -> str:
        return f"MPD {self.version or '?'} at {self.where}"


def _knock(path: str, timeout_s: float) -> None:
    """Is anyone listening on this Unix socket? (OSError if not.) python-mpd2 leaves its
    socket object open when a Unix connect is refused; this one is always closed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout_s)
        probe.connect(path)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _first(value: Any) -> str:
    return str(value[0] if isinstance(value, list) and value else value)


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 (closing a connection that may be gone)
        pass
