"""Title, artist and album of a music file: its tags (mutagen) or else its file name."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# "01 - ", "3. ", "07 " (a leading zero), but not the "10 " of "10 Years - Wasteland"
TRACK_NUMBER = re.compile(r"^\s*(?:\d{1,3}\s*[-._)]\s*|0\d{1,2}\s+)(?=\S)")
# Plain tag keys (Vorbis comments, EasyID3, EasyMP4) first, then raw ID3 frames (e.g. in WAV).
TAG_KEYS = {"title": ("title", "TIT2"), "artist": ("artist", "TPE1", "albumartist", "TPE2"),
            "album": ("album", "TALB")}


@dataclass(frozen=True)
class TrackInfo:
    """What a file says about itself; source is "tags", "filename" or "stem"."""

    title: str
    artist: str
    album: str
    source: str
    duration_s: float = math.nan


def parse_filename(stem: str) -> tuple[str, str]:
    """(artist, title) from "Artist - Title"; else ("", stem). A leading track number
    ("01 - ", "3. ", "07 ") is dropped first."""
    rest = TRACK_NUMBER.sub("", stem, count=1).strip() or stem.strip()
    if " - " in rest:
        artist, title = (part.strip() for part in rest.split(" - ", 1))
        if artist and title:
            return artist, title
    return "", rest


def _first(tags: Any, keys: tuple[str, ...]) -> str:
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            value = None
        if value is None:
            continue
        text = getattr(value, "text", value)     # raw ID3 frames keep their values in .text
        if isinstance(text, (list, tuple)):
            text = text[0] if text else ""
        if str(text).strip():
            return " ".join(str(text).split())
    return ""


def _mutagen_file(path: Path) -> Any:
    """mutagen's view of the file, or None (mutagen missing, unknown or unreadable file)."""
    try:
        import mutagen
    except ImportError:
        return None
    try:
        return mutagen.File(str(path), easy=True)
    except Exception as exc:   # mutagen raises many types for damaged files; tags are optional
        logger.debug("no tags from %s: %s", path, exc)
        return None


def read_track_info(path: Path) -> TrackInfo:
    """Tags where readable, else "Artist - Title" from the file name, else the stem as title."""
    audio = _mutagen_file(path)
    length = getattr(getattr(audio, "info", None), "length", None)
    duration = float(length) if isinstance(length, (int, float)) and length > 0 else math.nan
    tags = getattr(audio, "tags", None)
    if tags is not None:
        title, artist = _first(tags, TAG_KEYS["title"]), _first(tags, TAG_KEYS["artist"])
        if title:
            return TrackInfo(title, artist, _first(tags, TAG_KEYS["album"]), "tags", duration)
    artist, title = parse_filename(path.stem)
    return TrackInfo(title, artist, "", "filename" if artist else "stem", duration)
