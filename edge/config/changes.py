"""What a reload changed, in words: applied at once, or waiting for a restart."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from moodbox.config.schema import NOT_KEYS, Config
from moodbox.vocabulary import MOODS

# sections and keys a running daemon cannot take over (its front ends and the watchdog
# timer are set up once at start)
RESTART_ONLY = ("control", "web", "buttons", "mqtt", "mpd", "player.output", "daemon.watchdog")
# shown by the mood map lines below, not key by key
SUMMARISED = ("mood.map",)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A config (or one of its sections) as {"player.volume": 0.7, ...}."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.name in NOT_KEYS:
                continue
            out.update(flatten(getattr(value, f.name), f"{prefix}.{f.name}" if prefix else f.name))
        return out
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}"))
        return out or {prefix: "(none)"}
    return {prefix: value}


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, str):
        return value or '""'
    return str(value)


def _restart_only(path: str) -> bool:
    return any(path == r or path.startswith(r + ".") for r in RESTART_ONLY)


def describe_changes(old: Config, new: Config, mood: str = "",
                     source_override: bool = False) -> tuple[list[str], list[str]]:
    """(changes the reload applies now, key paths that need a restart). `mood` is the mood
    playing now: its line says "(now playing)". With --source the camera section waits."""
    applied: list[str] = []
    for m in MOODS:
        before, after = old.playlists_for(m), new.playlists_for(m)
        if before != after:
            now = " (now playing)" if m == mood else ""
            applied.append(f"mood map: {m} -> {_shown(after) if after else 'keep playing'}"
                           f"{now}")
    a, b = flatten(old), flatten(new)
    restart: list[str] = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) == b.get(path) or any(path.startswith(s + ".") for s in SUMMARISED):
            continue
        if _restart_only(path) or (source_override and path.startswith("camera.")):
            restart.append(path)
            continue
        if path not in a:
            applied.append(f"{path}: new ({_shown(b[path])})")
        elif path not in b:
            applied.append(f"{path}: removed")
        else:
            applied.append(f"{path}: {_shown(a[path])} -> {_shown(b[path])}")
    return applied, restart
