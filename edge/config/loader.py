"""Reads config.yaml once and checks all of it into the schema's frozen objects."""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import socket
import stat
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Union

from moodbox import assets, files, jsonio
from moodbox.config.defaults import merge_over_defaults, shipped_defaults
from moodbox.config.schema import (NOT_KEYS, Config, ConfigError, PlaylistConfig, hhmm,
                                   parse_listen)
from moodbox.config.schema import MqttConfig, topic_id
from moodbox.vocabulary import MOODS


MAX_UNKNOWN_SHOWN = 20  # unknown keys listed (with a hint) per section; the rest counted


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
        fields = {f.name: f for f in dataclasses.fields(cls)
                  if f.name not in NOT_KEYS and not f.metadata.get("internal")}
        values = {}
        unknown = 0
        for key, value in raw.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in fields:
                unknown += 1
                if unknown <= MAX_UNKNOWN_SHOWN:  # the hint is cheap; thousands of them are not
                    self.err(key_path, "unknown key" + _hint(str(key)[:100], fields))
                continue
            checked = self.value(hints[key], fields[key], value, key_path)
            if checked is not _INVALID:
                values[key] = checked
        if unknown > MAX_UNKNOWN_SHOWN:
            self.err(path or "(top level)", f"... and {unknown - MAX_UNKNOWN_SHOWN} more unknown "
                     f"keys (only the first {MAX_UNKNOWN_SHOWN} are listed); is this a moodbox "
                     "config?")
        return cls(**values)

    def value(self, hint: Any, f: dataclasses.Field, value: Any, path: str) -> Any:
        meta = f.metadata
        if meta.get("kind") == "mood_map":
            return _load_map(self, value, path)
        if meta.get("kind") == "model_list":
            return _load_model_list(self, value, path, meta["max"])
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
            if not math.isfinite(value):
                self.err(path, f"must be a finite number, got {value} (.nan and .inf are "
                         "not allowed)")
                return _INVALID
            value = hint(value)
            lo, hi = meta.get("min"), meta.get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                self.err(path, f"must be between {lo} and {hi}, got {value}")
                return _INVALID
            return value
        if hint is str:
            if not isinstance(value, str):
                self.err(path, f"must be text, got {_kind(value)}" + _sexagesimal_hint(f, value))
                return _INVALID
            choices = meta.get("choices")
            if choices and value not in choices:
                self.err(path, f"must be one of {', '.join(choices)}, got '{value}'"
                         + (_hint(value, choices) if _hint(value, choices).startswith("; did") else ""))
                return _INVALID
            return value
        if meta.get("kind") == "pin":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.err(path, f"must be a GPIO pin (a BCM number like 17 or a name like "
                         f"GPIO17), got {_kind(value)}")
                return _INVALID
            return value
        if hint == Union[int, str]:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.err(path, f"must be a device number or a path/URL, got {_kind(value)}")
                return _INVALID
            return value
        raise TypeError(f"no validator for {hint} at {path}")  # programming error


_INVALID = object()


def _sexagesimal_hint(f: dataclasses.Field, value: Any) -> str:
    """YAML 1.1 reads an unquoted 22:00 as the base-60 integer 1320: say so for time keys."""
    default = f.default if isinstance(f.default, str) else ""
    if (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60
            and ":" in default):
        h, m = divmod(value, 60)
        return (f"; YAML reads an unquoted {h}:{m:02d} as the number {value} (base 60): "
                f"write it in quotes, \"{h:02d}:{m:02d}\"")
    return ""


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
            ld.err(f"{path}.sources", "must list one or more folders, .m3u/.m3u8 files or tracks "
                   "(or mpd:NAME, an MPD stored playlist)")
            resolved: tuple[Path, ...] = ()
        else:
            items = []
            stored: list[str] = []
            for i, src in enumerate(sources):
                if not isinstance(src, str) or not src.strip():
                    ld.err(f"{path}.sources[{i}]", f"must be a path, got {_kind(src)}")
                    continue
                if src.startswith(MPD_PREFIX):
                    _stored_playlist(ld, src, f"{path}.sources[{i}]", stored)
                    continue
                p = _resolve(ld.base_dir, src)
                if files.kind(p) == files.DENIED:
                    ld.err(f"{path}.sources[{i}]", f"'{src}' cannot be reached: "
                           f"{files.describe_denied(p)}; let the service user in (chmod o+x "
                           "on that folder) or move the music")
                # a missing source is not an error: a late USB stick or NAS is picked up
                # when it appears (the daemon warns and rechecks; `moodbox check` lists it)
                items.append(p)
            resolved = tuple(items)
            cfg = dataclasses.replace(cfg, mpd_playlists=tuple(stored))
        out[str(name)] = dataclasses.replace(cfg, sources=resolved)
    return types.MappingProxyType(out)


MPD_PREFIX = "mpd:"


def _stored_playlist(ld: _Loader, src: str, path: str, stored: list[str]) -> None:
    """`mpd:NAME`: an MPD stored playlist (as `mpc lsplaylists` lists it)."""
    name = src[len(MPD_PREFIX):].strip()
    if not name or "\n" in name or "/" in name:
        ld.err(path, f"'{src}' must name an MPD stored playlist, like mpd:Jazz (the names "
               "`mpc lsplaylists` lists)")
        return
    stored.append(name)


def _load_map(ld: _Loader, raw: Any, where: str) -> Mapping[str, tuple[str, ...]]:
    if raw is None:
        return types.MappingProxyType({})
    if not isinstance(raw, dict):
        ld.err(where, f"must map moods to playlist names, got {_kind(raw)}")
        return types.MappingProxyType({})
    out = {}
    for mood, names in raw.items():
        path = f"{where}.{mood}"
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


def _load_model_list(ld: _Loader, raw: Any, where: str, most: int) -> tuple[str, ...]:
    """classifier.ensemble: a list of up to `most` model paths (an empty value: none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        hint = f"; write it as a list: [{raw}]" if isinstance(raw, str) else ""
        ld.err(where, f"must be a list of model paths, got {_kind(raw)}{hint}")
        return ()
    if len(raw) > most:
        ld.err(where, f"lists {len(raw)} models; at most {most} more models can be averaged "
               "with classifier.model (each one adds its inference to every face): remove "
               f"{len(raw) - most}")
        return ()
    bad = [i for i, entry in enumerate(raw) if not isinstance(entry, str) or not entry.strip()]
    for i in bad:
        ld.err(f"{where}[{i}]", f"must be the path of an int8 .tflite model, got {_kind(raw[i])}")
    if bad:
        ld.bad_paths.add(where)  # not compared with classifier.model again
        return ()
    return tuple(raw)


def _check_ensemble(ld: _Loader, cfg: Config) -> None:
    """Each ensemble model is another file than classifier.model and than each other."""
    if not ld.ok("classifier.model", "classifier.ensemble"):
        return
    seen = {_real(ld.base_dir, cfg.classifier.model): "classifier.model"}
    for i, entry in enumerate(cfg.classifier.ensemble):
        real = _real(ld.base_dir, entry)
        if real in seen:
            ld.err(f"classifier.ensemble[{i}]", f"'{entry}' is the same model as {seen[real]}; "
                   "averaging a model with itself changes nothing: list other models or "
                   "remove it")
            continue
        seen[real] = f"classifier.ensemble[{i}]"


def _real(base_dir: Path, text: str) -> str:
    """A config path as the one file it names (builtin:, ~, relative and symlinks resolved)."""
    return os.path.realpath(_resolve(base_dir, text))


def config_from_dict(raw: Any, base_dir: Path, source: str = "") -> Config:
    """Validate a parsed YAML document; raises ConfigError listing every problem."""
    ld = _Loader(base_dir)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"(top level): must be a mapping of sections, got {_kind(raw)}"], source)
    raw = dict(raw)
    playlists = _load_playlists(ld, raw.pop("playlists", None))
    cfg = ld.section(Config, raw, "")
    cfg = dataclasses.replace(cfg, playlists=playlists, source=source)
    _cross_check(ld, cfg)
    if ld.errors:
        raise ConfigError(ld.errors, source)
    classifier = dataclasses.replace(
        cfg.classifier, model=str(_resolve(base_dir, cfg.classifier.model)),
        ensemble=tuple(str(_resolve(base_dir, m)) for m in cfg.classifier.ensemble))
    camera = cfg.camera
    if camera.path and camera.path != "demo":
        camera = dataclasses.replace(camera, path=str(_resolve(base_dir, camera.path)))
    faces = cfg.faces
    if faces.cascade:
        faces = dataclasses.replace(faces, cascade=str(_resolve(base_dir, faces.cascade)))
    faces = dataclasses.replace(faces, yunet_model=str(_resolve(base_dir, faces.yunet_model)),
                                blazeface_model=str(_resolve(base_dir, faces.blazeface_model)))
    mpd = cfg.mpd
    if mpd.music_directory:
        mpd = dataclasses.replace(mpd, music_directory=os.path.expanduser(mpd.music_directory))
    if mpd.host.startswith("~"):
        mpd = dataclasses.replace(mpd, host=os.path.expanduser(mpd.host))
    control = cfg.control
    if control.socket:  # relative to the config file, like every other path
        control = dataclasses.replace(control, socket=str(_resolve(base_dir, control.socket)))
    cfg = dataclasses.replace(cfg, mqtt=_resolve_mqtt(cfg.mqtt, base_dir))
    return dataclasses.replace(cfg, classifier=classifier, camera=camera, faces=faces,
                               control=control, mpd=mpd)


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
            hhmm(getattr(p.quiet_hours, key))
        except ValueError:
            ld.err(f"player.quiet_hours.{key}", "must be a time HH:MM, got "
                   f"'{getattr(p.quiet_hours, key)}'")
    c = cfg.camera
    if c.retry_min_s > c.retry_max_s and ld.ok("camera.retry_min_s", "camera.retry_max_s"):
        ld.err("camera.retry_min_s", f"{c.retry_min_s} is above camera.retry_max_s {c.retry_max_s}")
    if c.type == "replay" and not c.path:
        ld.err("camera.path", "the replay camera needs a directory of images or a video file")
    _check_ensemble(ld, cfg)
    _check_controls(ld, cfg)
    _check_mqtt(ld, cfg)
    _check_mpd(ld, cfg)


def _check_mpd(ld: _Loader, cfg: Config) -> None:
    """The mpd section's values, and `mpd:` playlist sources only with player.output: mpd."""
    m = cfg.mpd
    if not m.host.strip():
        ld.err("mpd.host", "must be a host name, an address or the path of MPD's Unix socket "
               "(like localhost or /run/mpd/socket)")
    elif "/" in m.host and not m.host.startswith(("/", "~")):
        ld.err("mpd.host", f"'{m.host}' looks like a socket path: give it whole, from / "
               "(like /run/mpd/socket)")
    elif m.host.startswith("/") and len(os.fsencode(m.host)) > 107:
        ld.err("mpd.host", "path is too long for a Unix socket (107 bytes at most)")
    elif m.host.count(":") == 1 and m.host.rpartition(":")[2].isdigit():
        host, _, port = m.host.rpartition(":")
        ld.err("mpd.host", f"'{m.host}': give the port on its own, host: {host} and port: {port}")
    if any(c in m.password for c in "\r\n"):
        ld.err("mpd.password", "must be one line (MPD's protocol cannot carry a line break)")
    if m.music_directory and not os.path.isabs(os.path.expanduser(m.music_directory)):
        ld.err("mpd.music_directory", f"'{m.music_directory}' must be an absolute path: MPD's "
               "music_directory as this machine sees it (like /var/lib/mpd/music)")
    if cfg.player.output == "mpd":
        return
    for name, p in cfg.playlists.items():
        for stored in p.mpd_playlists:
            ld.err(f"playlists.{name}.sources", f"'mpd:{stored}' is an MPD stored playlist; "
                   "it plays only with player.output: mpd")


MIN_TOKEN_CHARS, MIN_TOKEN_DISTINCT = 16, 10


def _token_problem(token: str) -> str:
    """Why the page's token will not do ("" when it will): it must be long, varied (not
    sixteen times "a") and plain ASCII without spaces (it travels in a Bearer header)."""
    if len(token) < MIN_TOKEN_CHARS:
        return (f"the page needs a token of {MIN_TOKEN_CHARS} characters or more when "
                "web.enabled is true")
    if not all("!" <= ch <= "~" for ch in token):
        return ("the token must be plain ASCII letters, digits and punctuation, without spaces "
                "(a browser cannot send anything else in its Authorization header)")
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return (f"the token is too easy to guess ({len(set(token))} different characters; "
                f"at least {MIN_TOKEN_DISTINCT})")
    return ""


def _check_controls(ld: _Loader, cfg: Config) -> None:
    if cfg.control.socket and len(os.fsencode(str(_resolve(ld.base_dir, cfg.control.socket)))) > 107:
        ld.err("control.socket", "path is too long for a Unix socket (107 bytes at most)")
    w = cfg.web
    try:
        parse_listen(w.listen)
    except ValueError:
        ld.err("web.listen", f"must be HOST:PORT like 0.0.0.0:8080, got '{w.listen}'")
    if w.enabled:
        problem = _token_problem(w.token)
        if problem:
            ld.err("web.token", f"{problem}; make one with: "
                   "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")
    b = cfg.buttons
    if b.enabled and b.skip == "" and b.pause == "" and b.camera == "":
        ld.err("buttons", "buttons.enabled is true but none of buttons.skip, buttons.pause, "
               "buttons.camera names a GPIO pin")


_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def _resolve_mqtt(m: MqttConfig, base_dir: Path) -> MqttConfig:
    """The box's name (the host name when not given) and file paths made absolute."""
    tls = m.tls
    if tls.ca_file:
        tls = dataclasses.replace(tls, ca_file=str(_resolve(base_dir, tls.ca_file)))
    return dataclasses.replace(
        m, name=m.name.strip() or socket.gethostname(), tls=tls,
        password_file=str(_resolve(base_dir, m.password_file)) if m.password_file else "")


def _check_mqtt(ld: _Loader, cfg: Config) -> None:
    m = cfg.mqtt
    for key in ("topic_prefix", "discovery_prefix"):
        value = getattr(m, key)
        if not _TOPIC_PREFIX.match(value):
            ld.err(f"mqtt.{key}", "must be topic levels of letters, digits, _ and - joined by /, "
                   f"like 'moodbox' or 'home/moodbox'; got '{value}'")
    name = m.name.strip() or socket.gethostname()
    for key, value in (("name", m.name), ("follow", m.follow)):
        if value and not topic_id(value):
            ld.err(f"mqtt.{key}", f"must have a letter or digit in it, got '{value}'")
        elif len(topic_id(value)) > 64:
            ld.err(f"mqtt.{key}", f"must be 64 characters or fewer, got {len(value)}")
    if m.follow and topic_id(m.follow) == topic_id(name):
        ld.err("mqtt.follow", f"'{m.follow}' is this box's own name; give the mqtt.name of "
               "another box")
    if m.password and m.password_file:
        ld.err("mqtt.password_file", "give mqtt.password or mqtt.password_file, not both")
    if (m.password or m.password_file) and not m.username:
        ld.err("mqtt.username", "a password needs the user name it belongs to")
    if m.tls.ca_file and not m.tls.enabled:
        ld.err("mqtt.tls.ca_file", "is set but mqtt.tls.enabled is false; set enabled: true")
    if not m.enabled:
        return
    if not m.host.strip() or any(c.isspace() or c == "/" for c in m.host):
        ld.err("mqtt.host", f"must be the broker's host name or address (no mqtt://, no "
               f"port: that is mqtt.port), got '{m.host}'")
    if m.password_file:
        _check_file(ld, "mqtt.password_file", _resolve(ld.base_dir, m.password_file), secret=True)
    if m.tls.enabled and m.tls.ca_file:
        _check_file(ld, "mqtt.tls.ca_file", _resolve(ld.base_dir, m.tls.ca_file), secret=False)
    if "none" in cfg.playlists:
        ld.err("playlists.none", "Home Assistant's hold select uses 'none' for no hold; "
               "give this playlist another name")


def _check_file(ld: _Loader, key: str, path: Path, secret: bool) -> None:
    """A file the daemon reads at start: there, readable, and a secret not readable by all."""
    k = files.kind(path)
    if k == files.MISSING:
        ld.err(key, f"'{path}' does not exist")
    elif k == files.DENIED:
        ld.err(key, f"'{path}' cannot be read: {files.describe_denied(path)}")
    elif k != files.FILE:
        ld.err(key, f"'{path}' is {'a folder' if k == files.FOLDER else 'not a regular file'}; "
               "give the path of a file")
    elif secret:
        st = path.stat()
        if st.st_mode & stat.S_IROTH:
            ld.err(key, f"'{path}' can be read by every user on this machine (mode "
                   f"{stat.S_IMODE(st.st_mode):04o}); refusing it: chmod o-r '{path}' (e.g. "
                   "chmod 640, group moodbox)")
        elif st.st_size == 0:
            ld.err(key, f"'{path}' is empty; put the password on its first line")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; ConfigError names the file and every problem."""
    import yaml

    path = Path(path)
    text = _read_config_text(path)
    try:
        raw = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ConfigError([_TOO_DEEP], str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML ({problem}); check indentation and quoting"],
                          str(path)) from None
    if jsonio.depth(raw, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
        raise ConfigError([_TOO_DEEP], str(path))
    return _over_defaults(raw, path)


def _over_defaults(raw: Any, path: Path) -> Config:
    """Validate the owner's file merged over the shipped config.yaml (config/defaults.py)."""
    shipped, defaults = shipped_defaults()
    if path.resolve() == shipped.resolve():  # the shipped file itself: nothing is the owner's
        return config_from_dict(raw, path.resolve().parent, source=str(path))
    merged = merge_over_defaults(raw, defaults)
    cfg = config_from_dict(merged.raw, path.resolve().parent, source=str(path))
    return dataclasses.replace(cfg, owned=merged.owned, adapted=merged.notes)


MAX_CONFIG_DEPTH = 12  # sections, keys, lists of sources: a real config is 4 deep
_TOO_DEEP = (f"nested more than {MAX_CONFIG_DEPTH} levels deep (or an alias that refers to "
             "itself); a config is sections of keys: compare with the shipped config.yaml")
MAX_CONFIG_BYTES = 1024 * 1024


def _read_config_text(path: Path) -> str:
    """The config's text; ConfigError saying what the path is when it is not a YAML file."""
    k = files.kind(path)
    if k == files.MISSING:
        raise ConfigError([f"file not found; copy the commented default from "
                           f"{assets.default_config()} and edit it"], str(path))
    if k == files.DENIED:
        raise ConfigError([f"cannot be read: {files.describe_denied(path)}; let the service "
                           "user read it"], str(path))
    if k == files.FOLDER:
        raise ConfigError(["is a folder, not a config file; pass the path of config.yaml"],
                          str(path))
    try:
        data = files.read_bounded(path, MAX_CONFIG_BYTES)
    except PermissionError:
        raise ConfigError(["cannot be read (permission denied); check its permissions "
                           "(the service user must be able to read it)"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot be read: {files.problem(exc)}; pass the YAML config file"],
                          str(path)) from None
    if b"\0" in data:
        raise ConfigError(["is a binary file, not YAML text; pass the config.yaml file"],
                          str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(["is not UTF-8 text (a binary file, or saved in another encoding); "
                           "pass the config.yaml file, saved as UTF-8"], str(path)) from None


def _unique_keys_loader() -> type:
    """yaml's safe loader (libyaml's C parser where PyYAML has it) that refuses a key given
    twice in one mapping (instead of silently keeping the last value)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 4x faster

    class UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):  # type: ignore[override]
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hashable = key in seen
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if hashable:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' (first at line "
                        f"{seen[key].line + 1}); keep one of them", mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


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
        if files.kind(candidate) in (files.FILE, files.DENIED, files.FOLDER):
            return candidate  # an unreadable one is reported, not silently skipped
    return assets.default_config()
