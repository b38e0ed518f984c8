"""config.yaml, read once and checked into frozen typed objects; errors carry key paths."""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from edge import assets

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MOODS = EMOTIONS + ("away",)
EX_CONFIG = 78  # sysexits.h: configuration error; the unit does not restart on it


class ConfigError(Exception):
    """One or more problems in a config file, each with its key path."""

    def __init__(self, errors: list[str], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in errors))


def _opt(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field with validation metadata: min, max, choices."""
    if isinstance(default, (list, dict, types.MappingProxyType)):
        frozen = types.MappingProxyType(dict(default)) if not isinstance(default, list) else tuple(default)
        return field(default_factory=lambda: frozen, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class CameraConfig:
    type: str = _opt("picamera2", choices=("picamera2", "opencv", "replay"))
    width: int = _opt(320, min=32, max=4096)
    height: int = _opt(240, min=32, max=4096)
    fps: float = _opt(5.0, min=0.1, max=120.0)
    device: Union[int, str] = _opt(0)
    path: str = _opt("demo")
    loop: bool = _opt(True)
    hold_s: float = _opt(0.0, min=0.0, max=3600.0)
    timeout_s: float = _opt(2.0, min=0.1, max=60.0)
    freeze_frames: int = _opt(20, min=2, max=10000)
    max_failures: int = _opt(5, min=1, max=1000)
    retry_min_s: float = _opt(2.0, min=0.1, max=600.0)
    retry_max_s: float = _opt(60.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class FacesConfig:
    cascade: str = _opt("")
    detect_width: int = _opt(320, min=64, max=4096)
    scale_factor: float = _opt(1.1, min=1.01, max=2.0)
    min_neighbors: int = _opt(5, min=1, max=50)
    min_size: int = _opt(36, min=12, max=1024)
    min_face_px: int = _opt(24, min=8, max=2048)
    margin: float = _opt(0.02, min=0.0, max=1.0)
    roi: bool = _opt(True)
    detect_every: int = _opt(1, min=1, max=30)
    idle_every: int = _opt(3, min=1, max=30)


@dataclass(frozen=True)
class ClassifierConfig:
    model: str = _opt("builtin:models/emotion_int8.tflite")
    threads: int = _opt(1, min=1, max=8)


@dataclass(frozen=True)
class MoodConfig:
    smoothing_s: float = _opt(1.0, min=0.0, max=600.0)
    dwell_s: float = _opt(3.0, min=0.0, max=3600.0)
    min_confidence: float = _opt(0.4, min=0.0, max=1.0)
    min_switch_interval_s: float = _opt(20.0, min=0.0, max=86400.0)
    away_after_s: float = _opt(30.0, min=0.5, max=86400.0)
    # emotion or "away" -> playlist name(s); missing moods use player.default_playlist
    map: Mapping[str, tuple[str, ...]] = _opt({})


@dataclass(frozen=True)
class QuietHoursConfig:
    enabled: bool = _opt(False)
    start: str = _opt("22:00")
    end: str = _opt("07:00")
    max_volume: float = _opt(0.25, min=0.0, max=1.0)

    def minutes(self) -> tuple[int, int]:
        return _hhmm(self.start), _hhmm(self.end)


@dataclass(frozen=True)
class PlayerConfig:
    fade_ms: int = _opt(2000, min=0, max=60000)
    on_change: str = _opt("fade", choices=("fade", "wait_end"))
    volume: float = _opt(0.7, min=0.0, max=1.0)
    max_volume: float = _opt(0.9, min=0.0, max=1.0)
    away: str = _opt("lower", choices=("keep", "lower", "pause", "stop"))
    away_volume: float = _opt(0.3, min=0.0, max=1.0)
    default_playlist: str = _opt("favourites")
    audio_retry_s: float = _opt(5.0, min=0.1, max=3600.0)
    driver: str = _opt("")
    device: str = _opt("")
    quiet_hours: QuietHoursConfig = _opt(QuietHoursConfig())


@dataclass(frozen=True)
class PlaylistConfig:
    sources: tuple[Path, ...] = _opt(())
    shuffle: bool = _opt(True)
    volume: float = _opt(1.0, min=0.0, max=1.0)
    weight: float = _opt(1.0, min=0.0, max=1000.0)


@dataclass(frozen=True)
class DaemonConfig:
    status_every_s: float = _opt(5.0, min=0.5, max=3600.0)
    log_level: str = _opt("info", choices=("debug", "info", "warning", "error"))
    watchdog: bool = _opt(True)


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = _opt(CameraConfig())
    faces: FacesConfig = _opt(FacesConfig())
    classifier: ClassifierConfig = _opt(ClassifierConfig())
    mood: MoodConfig = _opt(MoodConfig())
    player: PlayerConfig = _opt(PlayerConfig())
    playlists: Mapping[str, PlaylistConfig] = _opt({})
    daemon: DaemonConfig = _opt(DaemonConfig())
    source: str = ""  # the file it came from (not a config key)

    def playlists_for(self, mood: str) -> tuple[str, ...]:
        return self.mood.map.get(mood) or (self.player.default_playlist,)

    def model_path(self) -> Path:
        return Path(self.classifier.model)


_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _hhmm(text: str) -> int:
    m = _TIME.match(text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * 60 + int(m.group(2))


def _hint(key: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(options))}"


class _Loader:
    """Walks the raw YAML mapping along the dataclasses, collecting every error."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.bad_paths: set[str] = set()

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")
        self.bad_paths.add(path)

    def ok(self, *paths: str) -> bool:
        """None of these keys had an error already (so comparing them makes sense)."""
        return not any(p in self.bad_paths for p in paths)

    def section(self, cls: type, raw: Any, path: str) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.err(path, f"must be a mapping of keys, got {_kind(raw)}")
            return cls()
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
        values = {}
        for key, value in raw.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in fields:
                self.err(key_path, "unknown key" + _hint(str(key), fields))
                continue
            checked = self.value(hints[key], fields[key], value, key_path)
            if checked is not _INVALID:
                values[key] = checked
        return cls(**values)

    def value(self, hint: Any, f: dataclasses.Field, value: Any, path: str) -> Any:
        meta = f.metadata
        if dataclasses.is_dataclass(hint):
            return self.section(hint, value, path)
        if hint is bool:
            if not isinstance(value, bool):
                self.err(path, f"must be true or false, got {_kind(value)}")
                return _INVALID
            return value
        if hint in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    hint is int and isinstance(value, float) and not value.is_integer()):
                self.err(path, f"must be {'a whole number' if hint is int else 'a number'}, "
                         f"got {_kind(value)}")
                return _INVALID
            value = hint(value)
            lo, hi = meta.get("min"), meta.get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                self.err(path, f"must be between {lo} and {hi}, got {value}")
                return _INVALID
            return value
        if hint is str:
            if not isinstance(value, str):
                self.err(path, f"must be text, got {_kind(value)}")
                return _INVALID
            choices = meta.get("choices")
            if choices and value not in choices:
                self.err(path, f"must be one of {', '.join(choices)}, got '{value}'"
                         + (_hint(value, choices) if _hint(value, choices).startswith("; did") else ""))
                return _INVALID
            return value
        if hint == Union[int, str]:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.err(path, f"must be a device number or a path/URL, got {_kind(value)}")
                return _INVALID
            return value
        raise TypeError(f"no validator for {hint} at {path}")  # programming error


_INVALID = object()


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{value!r} ({type(value).__name__})"


def _resolve(base_dir: Path, text: str) -> Path:
    builtin = assets.resolve_builtin(text)
    if builtin is not None:
        return builtin
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else (base_dir / p)


def _load_playlists(ld: _Loader, raw: Any) -> Mapping[str, PlaylistConfig]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        ld.err("playlists", f"must map playlist names to settings, got {_kind(raw)}")
        return types.MappingProxyType({})
    out = {}
    for name, body in raw.items():
        path = f"playlists.{name}"
        if isinstance(body, (str, list)):  # short form: a source or a list of sources
            body = {"sources": body}
        if not isinstance(body, dict):
            ld.err(path, f"must be a mapping with sources, got {_kind(body)}")
            continue
        sources = body.get("sources")
        body = {k: v for k, v in body.items() if k != "sources"}
        cfg = ld.section(PlaylistConfig, body, path)
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not sources:
            ld.err(f"{path}.sources", "must list one or more folders, .m3u/.m3u8 files or tracks")
            resolved: tuple[Path, ...] = ()
        else:
            items = []
            for i, src in enumerate(sources):
                if not isinstance(src, str) or not src.strip():
                    ld.err(f"{path}.sources[{i}]", f"must be a path, got {_kind(src)}")
                    continue
                p = _resolve(ld.base_dir, src)
                if not p.exists():
                    ld.err(f"{path}.sources[{i}]", f"'{src}' does not exist ({p}); create the "
                           "folder or fix the path")
                items.append(p)
            resolved = tuple(items)
        out[str(name)] = dataclasses.replace(cfg, sources=resolved)
    return types.MappingProxyType(out)


def _load_map(ld: _Loader, raw: Any) -> Mapping[str, tuple[str, ...]]:
    if raw is None:
        return types.MappingProxyType({})
    if not isinstance(raw, dict):
        ld.err("mood.map", f"must map moods to playlist names, got {_kind(raw)}")
        return types.MappingProxyType({})
    out = {}
    for mood, names in raw.items():
        path = f"mood.map.{mood}"
        if mood not in MOODS:
            ld.err(path, "unknown mood" + _hint(str(mood), MOODS))
            continue
        if names is None or names == "":
            continue  # uses the default playlist (for away: stays on the current one)
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            ld.err(path, f"must be a playlist name or a list of names, got {_kind(names)}")
            continue
        out[mood] = tuple(names)
    return types.MappingProxyType(out)


def config_from_dict(raw: Any, base_dir: Path, source: str = "") -> Config:
    """Validate a parsed YAML document; raises ConfigError listing every problem."""
    ld = _Loader(base_dir)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"(top level): must be a mapping of sections, got {_kind(raw)}"], source)
    raw = dict(raw)
    playlists = _load_playlists(ld, raw.pop("playlists", None))
    mood_raw = raw.get("mood")
    mood_map = None
    if isinstance(mood_raw, dict) and "map" in mood_raw:
        mood_raw = dict(mood_raw)
        mood_map = _load_map(ld, mood_raw.pop("map"))
        raw["mood"] = mood_raw
    cfg = ld.section(Config, raw, "")
    mood = dataclasses.replace(cfg.mood, map=mood_map or types.MappingProxyType({}))
    cfg = dataclasses.replace(cfg, mood=mood, playlists=playlists, source=source)
    _cross_check(ld, cfg)
    if ld.errors:
        raise ConfigError(ld.errors, source)
    classifier = dataclasses.replace(
        cfg.classifier, model=str(_resolve(base_dir, cfg.classifier.model)))
    camera = cfg.camera
    if camera.path and camera.path != "demo":
        camera = dataclasses.replace(camera, path=str(_resolve(base_dir, camera.path)))
    faces = cfg.faces
    if faces.cascade:
        faces = dataclasses.replace(faces, cascade=str(_resolve(base_dir, faces.cascade)))
    return dataclasses.replace(cfg, classifier=classifier, camera=camera, faces=faces)


def _cross_check(ld: _Loader, cfg: Config) -> None:
    names = set(cfg.playlists)
    if cfg.player.default_playlist not in names:
        ld.err("player.default_playlist", f"'{cfg.player.default_playlist}' is not a playlist"
               + _hint(cfg.player.default_playlist, names) if names else
               "no playlists are defined; add a playlists section")
    for mood, targets in cfg.mood.map.items():
        for t in targets:
            if t not in names:
                ld.err(f"mood.map.{mood}", f"'{t}' is not a playlist" + _hint(t, names))
    p = cfg.player
    if p.volume > p.max_volume and ld.ok("player.volume", "player.max_volume"):
        ld.err("player.volume", f"{p.volume} is above player.max_volume {p.max_volume}")
    for key in ("start", "end"):
        try:
            _hhmm(getattr(p.quiet_hours, key))
        except ValueError:
            ld.err(f"player.quiet_hours.{key}", "must be a time HH:MM, got "
                   f"'{getattr(p.quiet_hours, key)}'")
    c = cfg.camera
    if c.retry_min_s > c.retry_max_s and ld.ok("camera.retry_min_s", "camera.retry_max_s"):
        ld.err("camera.retry_min_s", f"{c.retry_min_s} is above camera.retry_max_s {c.retry_max_s}")
    if c.type == "replay" and not c.path:
        ld.err("camera.path", "the replay camera needs a directory of images or a video file")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; ConfigError names the file and every problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found; copy the commented default from "
                           f"{assets.default_config()} and edit it"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([f"cannot read the file ({reason}); check its permissions"],
                          str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML ({problem}); check indentation and quoting"],
                          str(path)) from None
    return config_from_dict(raw, path.resolve().parent, source=str(path))


def find_config(explicit: str | None = None) -> Path:
    """--config, else $MOODBOX_CONFIG, ~/.config/moodbox/config.yaml,
    /etc/moodbox/config.yaml, else the shipped default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("MOODBOX_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path.home() / ".config" / "moodbox" / "config.yaml",
                      Path("/etc/moodbox/config.yaml")):
        if candidate.is_file():
            return candidate
    return assets.default_config()
