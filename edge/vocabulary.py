"""The words every stage shares, defined once: emotions, moods, file kinds, what is playable."""
from __future__ import annotations

from pathlib import Path

# The seven FER2013 emotions, in the order the models output them.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The mood when nobody has been in view for a while.
AWAY = "away"
# Everything a mood can be: what config's mood.map is keyed by.
MOODS: tuple[str, ...] = EMOTIONS + (AWAY,)

AUDIO_EXTENSIONS: tuple[str, ...] = (".ogg", ".mp3", ".wav", ".flac")
PLAYLIST_EXTENSIONS: tuple[str, ...] = (".m3u", ".m3u8")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff",
                              ".webp"})


def _id3_size(head: bytes) -> int:
    """Length of a leading ID3v2 tag (header, body, optional footer), from its syncsafe size."""
    body = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    return 10 + body + (10 if head[5] & 0x10 else 0)


def sniff_format(path: Path) -> str:
    """ogg / flac / wav / mp3 from the file's first bytes; "" when it is none of them.
    Raises OSError when the file cannot be read."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:3] == b"ID3" and len(head) >= 10:
            f.seek(_id3_size(head))
            after = f.read(4)
            if after == b"fLaC":
                return "flac"
            return "mp3" if len(after) >= 2 and after[0] == 0xFF and after[1] & 0xE0 == 0xE0 else ""
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"
    return ""


def unplayable_reason(path: Path) -> str:
    """'' when `path` is a track the player can play, else why not, in a few words.

    The one definition of "playable", shared by the player, `moodbox check` and the
    catalog: a supported extension on a non-empty file whose content is that format.
    """
    ext = path.suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        return f"unsupported format {ext or '(no extension)'}; use .ogg, .mp3, .wav or .flac"
    try:
        if path.stat().st_size == 0:
            return "empty file"
        found = sniff_format(path)
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    if found == ext[1:]:
        return ""
    if found:
        return f"a {found} file named {ext}; rename it to .{found}"
    return f"not a valid {ext[1:]} file (corrupt or mislabelled)"
