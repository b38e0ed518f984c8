"""`moodbox check`: a readable report on config, model, playlists, camera and audio."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from moodbox.config import EX_CONFIG, Config, ConfigError, load_config
from moodbox.vocabulary import MOODS

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    blocking: int = 0
    warnings: int = 0

    def add(self, level: str, topic: str, text: str) -> None:
        if level == FAIL:
            self.blocking += 1
        elif level == WARN:
            self.warnings += 1
        self.lines.append(f"[{level:>4}] {topic:<10} {text}")

    def detail(self, text: str) -> None:
        self.lines.append(f"{'':18}{text}")


def _check_model(cfg: Config, rep: Report) -> None:
    from moodbox.vision.classifier import ModelError, describe, make_classifier

    try:
        clf = make_classifier(cfg.classifier)
        import numpy as np
        clf.probabilities(np.full((clf.input_size, clf.input_size), 128, np.uint8))
        s = clf.stats()
        rep.add(OK, "model", f"{describe(clf)} ({s.size_bytes / 1024:.0f} KiB, "
                f"{s.macs / 1e6:.1f} M MACs, {clf.input_size}x{clf.input_size} "
                f"{clf.info.scale}, {clf.runtime}); inference ran")
    except ModelError as exc:
        rep.add(FAIL, "model", str(exc))


def _check_faces(cfg: Config, rep: Report) -> None:
    from moodbox.vision.detector import DetectorError, make_detector

    try:
        detector = make_detector(cfg.faces)
        note = "" if detector.name == cfg.faces.detector else (
            f" (the fallback: this OpenCV cannot run {cfg.faces.detector})")
        rep.add(OK, "faces", f"face detector loaded: {detector.describe()}{note}")
    except (DetectorError, ImportError) as exc:
        rep.add(FAIL, "faces", str(exc))


def mood_origin(cfg: Config, mood: str) -> str:
    """Where a mood's playlist choice comes from: the owner's file or the shipped defaults."""
    if cfg.mood.map.get(mood):
        return "your file" if f"mood.map.{mood}" in cfg.owned else "the defaults"
    if "player.default_playlist" in cfg.owned:
        return "player.default_playlist, your file"
    adapted = any(n.startswith("player.default_playlist") for n in cfg.adapted)
    return ("player.default_playlist: your first playlist" if adapted
            else "player.default_playlist, the defaults")


def _check_playlists(cfg: Config, rep: Report) -> None:
    from moodbox.audio.playlists import load_playlists

    playlists = load_playlists(cfg.playlists)
    default = playlists.get(cfg.player.default_playlist)
    ends: dict[str, str] = {}  # emotion -> the playlist(s) it really plays
    for mood in MOODS:
        names = cfg.playlists_for(mood)
        if not names:
            rep.add(OK, f"{mood}", f"keeps the current playlist (player.away: {cfg.player.away})")
            continue
        origin = mood_origin(cfg, mood)
        counts = ", ".join(f"{n}: {len(playlists[n].tracks)} playable"
                           + "".join(f" + MPD playlist {s}" for s in playlists[n].stored)
                           for n in names)
        playable = [n for n in names if playlists[n].tracks or playlists[n].stored]
        if playable:
            rep.add(OK, mood, f"{counts} ({origin})")
            ends[mood] = ", ".join(playable)
        elif default and default.tracks:
            rep.add(WARN, mood, f"{counts}; falls back to {default.name} ({origin})")
            ends[mood] = default.name
        else:
            rep.add(WARN, mood, f"{counts}; nothing to fall back to, stays quiet ({origin})")
    for note in cfg.adapted:
        rep.add(OK, "defaults", note)
    if len(ends) > 1 and len(set(ends.values())) == 1:
        rep.add(WARN, "moods", f"every mood plays {next(iter(ends.values()))}: the music will "
                "not follow the mood; give mood.map playlists of your own (README: A short "
                "config)")
    _check_demo_tracks(cfg, rep)
    for p in playlists.values():
        for src in p.pending:
            rep.add(WARN, "source", f"playlist {p.name}: {src} is missing or empty (a USB stick "
                    "or network share not mounted yet?); the daemon starts without it and "
                    "picks it up when it appears")
        if p.skipped:
            # the full list lives here; the daemon's log shows a count and the first few
            rep.add(WARN, "skipped", f"playlist {p.name}: {len(p.skipped)} file(s) skipped")
            for s in p.skipped:
                rep.detail(f"{s.path}: {s.reason}")
    if not any(p.tracks or p.stored for p in playlists.values()):
        rep.add(FAIL, "playlists", "no playable track in any playlist; point playlists at your music")


def _check_demo_tracks(cfg: Config, rep: Report) -> None:
    """The first minutes of a fresh box: the bundled demo tracks play until the owner's
    playlists are set (and the system-wide file needs sudo to edit)."""
    from moodbox import assets

    demo = assets.playlists_dir().resolve()
    bundled = [name for name, p in cfg.playlists.items()
               if any(src.resolve() == demo or demo in src.resolve().parents for src in p.sources)]
    if not bundled:
        return
    where = cfg.source or "the config"
    rep.add(WARN, "playlists", f"the bundled demo tracks play ({', '.join(bundled)}) until you "
            f"set your own playlists in {where}")
    if str(where).startswith("/etc/"):
        rep.detail(f"editing {where} needs sudo: sudoedit {where}, then sudo systemctl "
                   "reload moodbox")


def _check_camera(cfg: Config, rep: Report) -> None:
    from moodbox.camera import CameraError, CameraPermissionError, make_source

    source = make_source(cfg.camera)
    try:
        source.open()
        frame = source.read(cfg.camera.timeout_s)
        h, w = frame.grey.shape
        rep.add(OK, "camera", f"{source.describe()}: got a {w}x{h} frame")
    except CameraPermissionError as exc:
        rep.add(FAIL, "camera", str(exc))
    except CameraError as exc:
        rep.add(WARN, "camera", f"{source.describe()}: {exc} (the daemon keeps retrying)")
    finally:
        try:
            source.close()
        except Exception:  # noqa: BLE001
            pass


def _check_mpd(cfg: Config, rep: Report) -> None:
    """player.output: mpd: the server, its version, and whether it can play every track."""
    from moodbox.audio.backend import AudioError
    from moodbox.audio.mpd_backend import INSTALL_HINT, MpdBackend
    from moodbox.audio.playlists import load_playlists

    backend = MpdBackend(cfg.mpd)
    try:
        backend.open()
    except AudioError as exc:
        if str(exc) == INSTALL_HINT:
            rep.add(FAIL, "mpd", f"player.output is mpd, but {exc}")
        else:
            rep.add(WARN, "mpd", f"{exc} (the daemon keeps retrying)")
        return
    try:
        where = backend.music_dir or "unknown: set mpd.music_directory for folder playlists"
        rep.add(OK, "mpd", f"{backend.describe()}; music directory {where}")
        stored = backend.stored_names()
        for p in load_playlists(cfg.playlists).values():
            missing = backend.not_in_library(p.tracks)
            absent = [name for name in p.stored if name not in stored]
            if not missing and not absent:
                rep.add(OK, "mpd", f"playlist {p.name}: all {len(p.tracks)} file(s) in MPD's "
                        "library" + "".join(f", MPD playlist {n}" for n in p.stored))
                continue
            problems = ([f"{len(missing)} of {len(p.tracks)} file(s) not in MPD's library"]
                        if missing else [])
            problems += [f"no MPD playlist '{n}' (mpc lsplaylists)" for n in absent]
            rep.add(WARN, "mpd", f"playlist {p.name}: " + "; ".join(problems))
            for track, reason in missing:
                rep.detail(f"{track}: {reason}")
    except AudioError as exc:
        rep.add(WARN, "mpd", str(exc))
    finally:
        backend.close()


def _check_audio(cfg: Config, rep: Report) -> None:
    from moodbox.audio.backend import AudioError, AudioPermissionError
    from moodbox.audio.output import AudioOutput

    if cfg.player.output == "mpd":
        _check_mpd(cfg, rep)
        return

    backend = AudioOutput().backend(cfg.player)
    try:
        backend.open()
        rep.add(OK, "audio", f"sound device opened (driver {cfg.player.driver or 'default'})")
        names = _output_devices()
        if names:
            rep.detail("output devices (for player.device): " + "; ".join(names))
    except AudioPermissionError as exc:
        rep.add(FAIL, "audio", str(exc))
    except AudioError as exc:
        rep.add(WARN, "audio", f"{exc} (the daemon keeps retrying)")
    finally:
        backend.close()


def _output_devices() -> list[str]:
    """Names SDL knows for output devices (pygame 2's SDL2 audio module), if any."""
    try:
        from pygame._sdl2 import audio as sdl_audio
        return [str(n) for n in sdl_audio.get_audio_device_names(False)]
    except Exception:  # noqa: BLE001 (an optional nicety: older pygame, no device list)
        return []


def _check_controls(cfg: Config, rep: Report) -> None:
    """Where the control socket is and whether a daemon answers; the page; the buttons."""
    from moodbox.control.socket import ControlClient, NoDaemon, server_socket_path

    if cfg.control.enabled:
        path = server_socket_path(cfg.control)
        try:
            ControlClient(path, timeout=2.0).request({"cmd": "status"})
            rep.add(OK, "control", f"a running moodbox answers on {path}")
        except NoDaemon:
            rep.add(OK, "control", f"the daemon will listen on {path} (moodbox status, skip, ...)")
    else:
        rep.add(OK, "control", "control socket off (control.enabled: false)")
    if cfg.web.enabled:
        rep.add(OK, "web", f"phone page on http://{cfg.web.listen}/, token set; it is reachable "
                "from the network (README: what turning it on exposes)")
    if cfg.buttons.enabled:
        try:
            import gpiozero  # noqa: F401
            rep.add(OK, "buttons", f"skip pin {cfg.buttons.skip or '-'}, pause pin "
                    f"{cfg.buttons.pause or '-'}, camera (privacy) pin "
                    f"{cfg.buttons.camera or '-'} (gpiozero)")
        except ImportError:
            rep.add(WARN, "buttons", "gpiozero is not installed: pip install 'moodbox[buttons]' "
                    "(the box plays on without buttons)")
    if cfg.mqtt.enabled:
        _check_mqtt(cfg, rep)


def _check_mqtt(cfg: Config, rep: Report) -> None:
    """paho-mqtt there, and the broker's port answering (a TCP connect, 2 s at most)."""
    import socket

    m = cfg.mqtt
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        rep.add(WARN, "mqtt", "paho-mqtt is not installed: pip install 'moodbox[mqtt]' (the "
                "box plays on without Home Assistant)")
        return
    where = (f"Home Assistant device 'moodbox {m.name}', topics {m.topic_prefix}/{m.node_id}/"
             + (f", following '{m.follow}'" if m.follow else ""))
    try:
        socket.create_connection((m.host, m.port), timeout=2.0).close()
        rep.add(OK, "mqtt", f"broker {m.host}:{m.port} answers; {where}")
    except OSError as exc:
        rep.add(WARN, "mqtt", f"broker {m.host}:{m.port} does not answer "
                f"({exc.strerror or exc}); {where}; the box will keep trying (under systemd "
                "it needs install-pi.sh --enable-mqtt)")


def run_check(config_path: Path) -> int:
    rep = Report()
    t0 = time.monotonic()
    print(f"moodbox check: {config_path}")
    try:
        cfg = load_config(config_path)
        rep.add(OK, "config", "valid")
    except ConfigError as exc:
        rep.add(FAIL, "config", f"{len(exc.errors)} problem(s)")
        for e in exc.errors:
            rep.detail(e)
        print("\n".join(rep.lines))
        return EX_CONFIG
    for step in (_check_model, _check_faces, _check_playlists, _check_camera, _check_audio,
                 _check_controls):
        step(cfg, rep)
    print("\n".join(rep.lines))
    verdict = ("ready to run" if not rep.blocking else f"{rep.blocking} problem(s) block running")
    print(f"{verdict}; {rep.warnings} warning(s) ({time.monotonic() - t0:.1f} s)")
    return 1 if rep.blocking else 0
