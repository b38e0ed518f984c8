"""The shipped config.yaml under an owner's file: merged section by section, key by key.

The rule (README, "A short config"): every section and key the owner's file leaves out
comes from the shipped defaults; nested sections (player.quiet_hours) merge key by key,
and so does mood.map, one mood at a time. The one exception is `playlists`: an owner
who lists playlists gets exactly those (the bundled demo playlists are dropped whole).
A default mood mapped to a demo playlist the owner no longer has then plays
player.default_playlist, and a default player.default_playlist the owner does not have
becomes the owner's first playlist; each such fallback is noted for `moodbox check`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

REPLACED_WHOLE = ("playlists",)


@dataclass(frozen=True)
class Merged:
    raw: dict                       # the owner's file over the defaults, ready to validate
    owned: frozenset[str]           # key paths the owner's file set ("mood.map.happy", ...)
    notes: tuple[str, ...]          # defaults adapted to the owner's playlists, in words


MAX_DEPTH = 4  # the schema's deepest key is player.quiet_hours.start (3 levels)


def key_paths(raw: Any, prefix: str = "", depth: int = 0) -> set[str]:
    """Every key path in a nested mapping, sections and leaves: {"mood", "mood.map", ...}
    (no deeper than any schema key, so a hostile nesting costs nothing)."""
    out: set[str] = set()
    if isinstance(raw, dict) and depth < MAX_DEPTH:
        for key, value in raw.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            if path not in REPLACED_WHOLE:
                out |= key_paths(value, path, depth + 1)
    return out


def deep_merge(defaults: Any, owner: Any, path: str = "") -> Any:
    """`owner` over `defaults`: mappings merge key by key (an empty section, None, counts
    as an empty mapping), anything else the owner gives wins."""
    if not isinstance(defaults, dict):
        return owner
    if owner is None:
        owner = {}
    if not isinstance(owner, dict):
        return owner  # a wrong shape: validation names it
    out = dict(defaults)
    for key, value in owner.items():
        sub = f"{path}.{key}" if path else str(key)
        if key in out and sub not in REPLACED_WHOLE:
            out[key] = deep_merge(out[key], value, sub)
        else:
            out[key] = value
    return out


def merge_over_defaults(owner: Any, defaults: dict) -> Merged:
    """The owner's parsed file over the parsed shipped defaults (see the module's rule)."""
    if not isinstance(owner, dict):
        return Merged(owner, frozenset(), ())  # not a mapping: validation says so
    raw = deep_merge(defaults, owner)
    owned = frozenset(key_paths(owner))
    notes: list[str] = []
    names = owner.get("playlists")
    if "playlists" in owner and isinstance(names, dict) and names:
        _fit_defaults_to(raw, owned, [str(n) for n in names], notes)
    return Merged(raw, owned, tuple(notes))


def _fit_defaults_to(raw: dict, owned: frozenset[str], names: list[str], notes: list[str]) -> None:
    """Point what came from the defaults at playlists the owner has."""
    player = raw.get("player")
    if isinstance(player, dict) and "player.default_playlist" not in owned:
        default = player.get("default_playlist")
        if default not in names:
            player["default_playlist"] = names[0]
            notes.append(f"player.default_playlist: the default '{default}' is not one of your "
                         f"playlists; using your first playlist, '{names[0]}'")
    mood = raw.get("mood")
    mood_map = mood.get("map") if isinstance(mood, dict) else None
    if not isinstance(mood_map, dict):
        return
    for emotion, target in list(mood_map.items()):
        if f"mood.map.{emotion}" in owned or target in (None, ""):
            continue
        wanted = [target] if isinstance(target, str) else target
        if isinstance(wanted, list) and all(isinstance(t, str) for t in wanted):
            if not any(t in names for t in wanted):
                del mood_map[emotion]
                notes.append(f"mood.map.{emotion}: the default '{', '.join(wanted)}' is not one "
                             "of your playlists; plays player.default_playlist")


@lru_cache(maxsize=4)
def _parse_defaults(path: str, mtime_ns: int) -> dict:
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def shipped_defaults() -> tuple[Path, dict]:
    """The shipped config.yaml (its path, and a fresh copy of its parsed content)."""
    import copy

    from moodbox import assets

    path = assets.default_config()
    return path, copy.deepcopy(_parse_defaults(str(path), path.stat().st_mtime_ns))
