"""The moodbox daemon: wires camera, vision, mood smoothing and player; signals and status."""
from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from moodbox.camera import FrameGrabber, make_source, still_hold_s
from moodbox.vision.classifier import ModelError, describe, make_classifier
from moodbox.config import EX_CONFIG, CameraConfig, Config, ConfigError, load_config
from moodbox.config.changes import describe_changes
from moodbox.mood import EmotionSmoother, FollowedMood
from moodbox.vision.detector import DetectorError
from moodbox.limits import raise_fd_limit
from moodbox.notify import Notifier
from moodbox.audio.player import PlaylistPlayer
from moodbox.audio.output import AudioOutput
from moodbox.audio.thread import PlayerThread
from moodbox.audio.playlists import LibraryWatch, load_playlists, sources_appeared
from moodbox.signals import Requests
from moodbox.vision.pipeline import FaceEmotionPipeline
from moodbox.control.core import ControlCore, MoodHistory, MoodSwitch, VisionView
from moodbox.control.learning import SkipStore
from moodbox.control.privacy import PrivacyStore, PrivacySwitch
from moodbox.control.service import FrontEnds

logger = logging.getLogger(__name__)

EX_OK, EX_FAILURE = 0, 1


@dataclass(frozen=True)
class ShutdownBudget:
    """Every limit of a stop, in one place: systemd's TimeoutStopSec and the README's
    "exit within 5 s" are met when the parts below fit in `total_s`."""

    total_s: float = 4.0        # then a fail-safe timer exits the process regardless
    fade_ms: int = 1500         # the last track fades out at most this long
    player_s: float = 2.5       # fade plus closing the sound device
    camera_s: float = 1.2       # the grabber thread releases the camera
    failsafe_grace_s: float = 0.8


SHUTDOWN = ShutdownBudget()


@dataclass
class StatusWindow:
    """Per-stage timings collected between two status lines."""

    started: float
    frames: int = 0
    detect_ms: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)

    def line(self, now: float) -> str:
        fps = self.frames / max(1e-6, now - self.started)
        det = statistics.median(self.detect_ms) if self.detect_ms else 0.0
        inf = statistics.median(self.infer_ms) if self.infer_ms else 0.0
        return f"fps={fps:.1f} detect={det:.1f}ms infer={inf:.2f}ms"


class Daemon:
    """Owns the stages and the main loop. `run` returns the process exit status."""

    def __init__(self, config_path: Path, source_override: str | None = None,
                 duration_s: float | None = None, audio: AudioOutput | None = None,
                 backend_factory=None, source_factory=None, hard_exit: bool = True,
                 requests: Requests | None = None, hold_s: float | None = None):
        self.config_path = config_path
        self.source_override = source_override
        self.duration_s = duration_s
        self.audio = audio or AudioOutput()
        # factories: config -> backend; tests hand in doubles for hardware we lack
        self._backend_factory = backend_factory or (lambda c: self.audio.backend(c.player, c.mpd))
        self._source_factory = source_factory or self._make_source
        self.hold_s = hold_s  # --hold: how long each replayed photo is shown
        self._replay_hold: float | None = hold_s
        self._hard_exit = hard_exit
        self._requests = requests or Requests()
        self._stop = self._requests.stop
        self._reload = self._requests.reload
        self._watch = LibraryWatch()
        self._pending: list[Path] = []
        self.notifier = Notifier()
        self.cfg: Config | None = None
        self.exit_reason = ""
        self._decided = False
        self.started = time.monotonic()
        self.history = MoodHistory()
        self._view = VisionView()            # replaced whole each frame; read by the control core
        self._frame_times: deque[float] = deque(maxlen=25)
        self.front_ends: FrontEnds | None = None
        self.privacy = PrivacySwitch(False)
        self._privacy_paused = False  # privacy.music: pause paused it (camera on resumes)
        self.follow: FollowedMood | None = None  # mqtt.follow: another box's mood
        self._mood = "away"                      # what the player was last told

    # --- start-up ---------------------------------------------------------
    def _make_source(self, camera: CameraConfig, override: str | None):
        return make_source(camera, override, hold_s=self._replay_hold)

    def _hold_for(self, cfg: Config) -> float | None:
        """--hold, else for a folder of photos given as --source a hold long enough for a
        mood to form (camera.hold_s when the config sets one)."""
        if self.hold_s is not None:
            return self.hold_s
        if self.source_override and self.source_override != "demo" and not cfg.camera.hold_s:
            return still_hold_s(cfg.mood)
        return None

    def _build(self, cfg: Config) -> None:
        self._replay_hold = self._hold_for(cfg)
        self.classifier = make_classifier(cfg.classifier)
        self.vision = FaceEmotionPipeline(cfg.faces, self.classifier)
        self.smoother = EmotionSmoother(self.classifier.classes, cfg.mood,
                                        time.monotonic())
        self.grabber = FrameGrabber(self._source_factory(cfg.camera, self.source_override), cfg.camera)
        playlists = load_playlists(cfg.playlists)
        store = SkipStore()
        learner = store.load() if cfg.player.learn_from_skips else None
        player = PlaylistPlayer(self._backend_factory(cfg), cfg.player, playlists, cfg.mood.map,
                                learner=learner)
        self.player = PlayerThread(player, store=store)
        privacy = PrivacyStore()
        self.privacy = PrivacySwitch(privacy.load(), privacy)
        self.control = ControlCore(self.player.ask, lambda: self.cfg.playlists.keys(),
                                   self.vision_view, self.history, self.started,
                                   lambda: self.cfg.player.max_volume, self.player.save_learned,
                                   privacy=self.privacy)
        self._watch_library(playlists)
        self._log_model()
        logger.info("camera: %s; playlists: %s", self.grabber.source.describe(),
                    ", ".join(f"{n} ({len(p.tracks)})" for n, p in playlists.items()))

    def _log_model(self) -> None:
        """One line on the classifier: its model (or ensemble), size, input and cost."""
        stats = self.classifier.stats()
        logger.info("model %s (%s, %d classes, %dx%d input, %.1f M MACs) via %s",
                    describe(self.classifier), f"{stats.size_bytes / 1024:.0f} KiB",
                    len(self.classifier.classes), self.classifier.input_size,
                    self.classifier.input_size, stats.macs / 1e6, self.classifier.runtime)

    def _watch_library(self, playlists) -> None:
        """Remember the playlist sources that are missing (a late USB stick or NAS)."""
        self._pending = [src for p in playlists.values() for src in p.pending]
        self._watch.reset(time.monotonic(), pending=bool(self._pending))

    def _recheck_library(self, now: float) -> None:
        """A missing source appeared: load the playlists again; else look later (back-off)."""
        back = sources_appeared(self._pending)
        if not back:
            self._watch.not_yet(now)
            return
        logger.info("playlist source %s is there now; loading the playlists again",
                    ", ".join(str(s) for s in back))
        playlists = load_playlists(self.cfg.playlists)
        self.player.update_library(self.cfg.player, playlists, self.cfg.mood.map)
        self._watch_library(playlists)

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def run(self) -> int:
        if not self._requests.installed:
            self._requests.install()  # before anything slow: a signal now is honoured later
        raise_fd_limit()  # the page's and socket's caps then stay far below it
        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            logger.error("%s", exc)
            return EX_CONFIG
        _set_log_level(cfg.daemon.log_level)
        try:
            self._build(cfg)
        except (ModelError, DetectorError) as exc:
            logger.error("cannot start: %s", exc)
            return EX_CONFIG
        self.cfg = cfg
        if self._stop.is_set() or self._reload.is_set():
            logger.info("a %s was requested during start-up; doing it now",
                        "stop" if self._stop.is_set() else "reload")
        self.player.start()
        self.player.set_mood("away")
        if self.privacy.off:
            logger.info("camera off (privacy), as the owner left it (%s); `moodbox camera on` "
                        "opens it", PrivacyStore().path)
            self._privacy_music(cfg, off=True)
        else:
            self.grabber.start()
        self.privacy.attach()
        if cfg.mqtt.enabled and cfg.mqtt.follow:
            self.follow = FollowedMood(cfg.mqtt.follow, tuple(self.smoother.classes) + ("away",))
        self.front_ends = FrontEnds.start(cfg, self.control, self.follow)
        self.notifier.ready("starting")
        logger.info("moodbox running (pid %d); no frame is stored or sent anywhere", os.getpid())
        try:
            code = self._loop()
        finally:
            self._shutdown()
            self.audio.finish()
        logger.info("moodbox stopped (%s), exit %d", self.exit_reason or "signal", code)
        return code

    # --- the loop ---------------------------------------------------------
    def _loop(self) -> int:
        started = time.monotonic()
        window = StatusWindow(started)
        last_frame_at = started
        next_status = started + self.cfg.daemon.status_every_s
        wd_every = self.notifier.watchdog_s / 3.0 if self.cfg.daemon.watchdog else 0.0
        next_ping = started
        last = None
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._do_reload()
            self._apply_privacy()
            if self.privacy.off:
                frame = None
                self._stop.wait(0.25)
            else:
                frame = self.grabber.latest(timeout=0.25)
            now = time.monotonic()
            if self._watch.due(now):
                self._recheck_library(now)
            if frame is not None:
                last = self._process(frame.grey, now, window)
                last_frame_at = now
            if self.follow is not None and not self.privacy.off:
                self._steer(now, None)  # camera off (privacy): privacy.music decides
            code = self._check_health()
            if code is not None:
                return code
            if wd_every and now >= next_ping and self._healthy(now, last_frame_at):
                self.notifier.watchdog()
                next_ping = now + wd_every
            if now >= next_status:
                self._log_status(now, window, last)
                window = StatusWindow(now)
                next_status = now + self.cfg.daemon.status_every_s
            if self.duration_s is not None and now - started >= self.duration_s:
                self.exit_reason = f"ran for {self.duration_s:g} s"
                return EX_OK
        self.exit_reason = "signal"
        return EX_OK

    def _process(self, grey, now: float, window: StatusWindow):
        result = self.vision.process(grey)
        window.frames += 1
        self._frame_times.append(now)
        if not self._decided:
            self._decided = True
            self.notifier.status("first decision")  # `systemctl status` shows it; so does probe
        if not result.usable:
            self._see(0, None)
            return result
        window.detect_ms.append(result.detect_ms)
        probs = result.probs  # the followed face, or every listener fused (faces.listeners)
        if result.emotion is not None:
            window.infer_ms.append(result.infer_ms)
        decision = self.smoother.update(now, probs)
        self._see(len(result.boxes), decision)
        if decision.changed:
            self._steer(now, decision)
        return result

    def _steer(self, now: float, decision) -> None:
        """Tell the player the mood: the followed box's while it is heard (mqtt.follow),
        else this camera's smoothed one."""
        followed = self.follow.current() if self.follow is not None else None
        mood = followed or self.smoother.stable
        if mood == self._mood:
            return
        emotion, p = "", 0.0
        if followed is not None:
            logger.info("mood -> %s (following %s)", mood, self.follow.name)
        elif decision is not None and decision.changed:
            logger.info("mood -> %s (smoothed %s %.2f)", mood, decision.leader or "-",
                        decision.leader_p)
            emotion, p = decision.leader or "", decision.leader_p
        else:
            logger.info("mood -> %s (this camera's; %s is not heard)", mood, self.follow.name)
        self.history.add(MoodSwitch(now, mood, emotion, p))
        self._mood = mood
        self.player.set_mood(mood)

    def _see(self, faces: int, decision) -> None:
        """Publish what this frame showed, for `moodbox status` (one reference swap)."""
        t = self._frame_times
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        emotion, p = "", 0.0
        if decision is not None and decision.smoothed is not None:
            top = int(decision.smoothed.argmax())
            emotion, p = self.smoother.classes[top], float(decision.smoothed[top])
        m, now = self.cfg.mood, time.monotonic()
        self._view = VisionView(emotion, p, faces, fps, dwell_s=m.dwell_s,
                                min_switch_s=m.min_switch_interval_s,
                                next_switch_s=self.smoother.next_switch_in(now))

    def vision_view(self) -> VisionView:
        if self.privacy.off:
            return VisionView(camera="off")
        if self.cfg is not None and not self._view.dwell_s:  # before the first frame
            m = self.cfg.mood
            return replace(self._view, camera=self.grabber.stats.state, dwell_s=m.dwell_s,
                           min_switch_s=m.min_switch_interval_s)
        return replace(self._view, camera=self.grabber.stats.state)

    # --- the privacy switch ------------------------------------------------------
    def _apply_privacy(self) -> None:
        """The owner switched the camera (any front end): close or open it here, in the
        one thread that owns the grabber; the music follows privacy.music."""
        off = self.privacy.pending()
        if off is None:
            return
        if off:
            self.grabber.stop(timeout=min(3.0, SHUTDOWN.camera_s + self.cfg.camera.timeout_s))
            self._view = VisionView()
            logger.info("camera off (privacy): closed; music: %s", self.cfg.privacy.music)
        else:
            self.grabber = FrameGrabber(self._source_factory(self.cfg.camera, self.source_override),
                                        self.cfg.camera).start()
            self.smoother = EmotionSmoother(self.classifier.classes, self.cfg.mood, time.monotonic())
            logger.info("camera on: %s", self.grabber.source.describe())
        self._privacy_music(self.cfg, off)
        self.privacy.applied(off)

    def _privacy_music(self, cfg: Config, off: bool) -> None:
        try:
            self._follow_privacy(cfg.privacy.music, off)
        except TimeoutError:
            logger.warning("privacy.music: the player did not answer in time; the music "
                           "carries on as it was")

    def _follow_privacy(self, music: str, off: bool) -> None:
        if off and music == "neutral":
            self.history.add(MoodSwitch(time.monotonic(), "neutral", "", 0.0))
            self._mood = "neutral"
            self.player.set_mood("neutral")
        elif off and music == "pause":
            self._privacy_paused = not self.player.ask(_pause_if_playing)
        elif not off and self._privacy_paused:
            self._privacy_paused = False
            self.player.ask(lambda p, now: p.resume(now))

    def _healthy(self, now: float, last_frame_at: float) -> bool:
        """Frames progress, or the camera is known to be down and being retried (or the
        owner closed it)."""
        recent = now - last_frame_at < max(2.0, self.notifier.watchdog_s / 2.0)
        return recent or self.privacy.off or self.grabber.stats.state == "waiting"

    def _check_health(self) -> int | None:
        g = self.grabber.stats
        if g.state == "failed" and not self.privacy.off:
            if self.grabber.fatal_permission:
                self.exit_reason = "camera permission"
                return EX_CONFIG
            self.exit_reason = f"camera failed: {g.last_error}"
            return EX_FAILURE
        if g.state == "ended" and not self.privacy.off:
            self.exit_reason = "replay source ended"
            return EX_OK
        if self.player.fatal:
            logger.error("%s", self.player.fatal)
            self.exit_reason = "sound device permission"
            return EX_CONFIG
        return None

    def _log_status(self, now: float, window: StatusWindow, last) -> None:
        p = self.player.status()
        g = self.grabber.stats
        emo = "-"
        if last is not None and last.emotion is not None:
            emo = f"{last.emotion.name}({last.emotion.confidence:.2f})"
        elif last is not None:
            emo = "noface" if last.usable else "badframe"
        camera = "off(privacy)" if self.privacy.off else g.state
        line = (f"{window.line(now)} drop={g.dropped} emotion={emo} mood={self.smoother.stable} "
                f"playlist={p.playlist or '-'} track={p.track or '-'} vol={p.volume:.2f} "
                f"audio={p.state} camera={camera}")
        logger.info("status %s", line)
        self.notifier.status(line[:200])

    # --- reload / shutdown ----------------------------------------------------
    def _do_reload(self) -> None:
        self.notifier.reloading()
        logger.info("reloading %s", self.config_path)
        try:
            new = load_config(self.config_path)
            applied, restart = describe_changes(self.cfg, new, self.player.status().mood,
                                                self.source_override is not None)
            self._apply(new)
            for line in applied:
                logger.info("reload: %s", line)
            if restart:
                logger.warning("reload: %s: needs a restart to take effect (sudo systemctl "
                               "restart moodbox)", ", ".join(restart))
            logger.info("reload done%s", "" if applied or restart else ": nothing changed")
        except (ConfigError, ModelError, DetectorError, OSError) as exc:
            logger.error("reload rejected, keeping the running config: %s", exc)
        self.notifier.ready("reloaded")

    def _apply(self, new: Config) -> None:
        old = self.cfg
        classifier, vision = self.classifier, self.vision
        if new.classifier != old.classifier:
            classifier = make_classifier(new.classifier)
        if new.faces != old.faces or classifier is not self.classifier:
            vision = FaceEmotionPipeline(new.faces, classifier)
        rebuilt = classifier is not self.classifier
        self.classifier, self.vision = classifier, vision
        if rebuilt:
            self._log_model()
        if tuple(classifier.classes) != self.smoother.classes:
            self.smoother = EmotionSmoother(classifier.classes, new.mood, time.monotonic())
        else:
            self.smoother.reconfigure(new.mood)
        playlists = load_playlists(new.playlists)
        self.player.update_library(new.player, playlists, new.mood.map)
        self._watch_library(playlists)
        self._replay_hold = self._hold_for(new)
        if new.camera != old.camera and self.source_override is None:
            self.grabber.stop(timeout=2.0)
            self.grabber = FrameGrabber(self._source_factory(new.camera, None), new.camera)
            if not self.privacy.off:
                self.grabber.start()
        _set_log_level(new.daemon.log_level)
        self.cfg = new

    def _shutdown(self) -> None:
        self.notifier.stopping()
        failsafe = threading.Timer(SHUTDOWN.total_s + SHUTDOWN.failsafe_grace_s, _hard_exit)
        failsafe.daemon = True
        if self._hard_exit:
            failsafe.start()
        if self.front_ends is not None:
            self.front_ends.close()
        fade = min(self.cfg.player.fade_ms, SHUTDOWN.fade_ms) if self.cfg else 0
        self.player.stop(fade_ms=fade, timeout=SHUTDOWN.player_s)
        self.grabber.stop(timeout=SHUTDOWN.camera_s)
        self.notifier.close()
        failsafe.cancel()


def _pause_if_playing(p: PlaylistPlayer, now: float) -> bool:
    """Pause for privacy.music: pause; True when the owner had paused it already."""
    if p.owner_paused:
        return True
    p.pause(now)
    return False


def _hard_exit() -> None:
    logging.getLogger(__name__).error("shutdown took too long; exiting now")
    logging.shutdown()
    os._exit(EX_OK)


def _set_log_level(name: str) -> None:
    logging.getLogger().setLevel(getattr(logging, name.upper(), logging.INFO))
