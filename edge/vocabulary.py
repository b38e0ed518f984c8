"""The words every stage shares, defined once: emotions, moods, file kinds, what is playable."""
from __future__ import annotations

import os
from pathlib import Path

from moodbox import files

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


PROBE_BYTES = 64 * 1024  # how much of a track is looked at to decide it is playable
MP3_FRAMES = 3           # an MP3 must show this many valid frames in a row


def _id3_size(head: bytes) -> int:
    """Length of a leading ID3v2 tag (header, body, optional footer), from its syncsafe size."""
    body = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    return 10 + body + (10 if head[5] & 0x10 else 0)


_MP3_KBPS = {  # (MPEG-1?, layer) -> bitrate table, index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_length(h: bytes) -> int:
    """Bytes in the MPEG audio frame whose 4-byte header is `h`; 0 when it is not one."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return 0
    version, layer_bits = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    rate_i, kbps_i, pad = (h[2] >> 2) & 3, h[2] >> 4, (h[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or rate_i == 3 or kbps_i in (0, 15):
        return 0
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _MP3_KBPS[(mpeg1, layer)][kbps_i - 1] * 1000
    rate = _MP3_RATES[version][rate_i]
    if layer == 1:
        return (12 * bitrate // rate + pad) * 4
    return (144 if layer == 2 or mpeg1 else 72) * bitrate // rate + pad


def _mp3_frames_ok(data: bytes) -> bool:
    """MP3_FRAMES valid MPEG audio frames back to back at the start of `data`."""
    pos = 0
    for _ in range(MP3_FRAMES):
        n = mp3_frame_length(data[pos:pos + 4])
        if not n:
            return False
        pos += n
    return pos <= len(data)


def _audio_start(f) -> tuple[bytes, bytes]:
    """(first 12 bytes, PROBE_BYTES from where the audio starts, after an ID3v2 tag)."""
    head = f.read(12)
    if head[:3] == b"ID3" and len(head) >= 10:
        f.seek(_id3_size(head))
        return head, f.read(PROBE_BYTES)
    return head, head + f.read(PROBE_BYTES - len(head))


def _format_of(head: bytes, audio: bytes) -> str:
    if head[:3] == b"ID3":
        if audio[:4] == b"fLaC":
            return "flac"
        return "mp3" if len(audio) >= 2 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0 else ""
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"
    return ""


def sniff_format(path: Path) -> str:
    """ogg / flac / wav / mp3 from the file's first bytes; "" when it is none of them.
    Raises OSError when the file cannot be read (or is not a regular file)."""
    with files.open_regular(path) as f:
        head, audio = _audio_start(f)
    return _format_of(head, audio)


def _wav_problem(f) -> str:
    """'' when the RIFF chunks hold a usable fmt and a non-empty data chunk."""
    f.seek(12)
    fmt_ok = False
    for _ in range(64):
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if cid == b"fmt ":
            body = f.read(min(size, 40))
            fmt_ok = len(body) >= 16 and int.from_bytes(body[:2], "little") in (
                1, 2, 3, 6, 7, 0x11, 0xFFFE) and body[2] > 0
            f.seek(size - len(body) + (size & 1), 1)
            continue
        if cid == b"data":
            if not fmt_ok:
                return "no usable format chunk before the audio"
            return "" if f.read(4) else "no audio data (truncated)"
        f.seek(size + (size & 1), 1)
    return "no audio data (truncated or not a WAV)" if fmt_ok else "no usable format chunk"


def _content_problem(fmt: str, audio: bytes, f) -> str:
    """Why a file whose header says `fmt` still cannot be played ('' when it can)."""
    if fmt == "mp3":
        return "" if _mp3_frames_ok(audio) else "no valid MP3 audio frames (truncated or corrupt)"
    if fmt == "ogg":
        first = audio[:512]
        if b"\x01vorbis" not in first and b"OpusHead" not in first and b"\x7fFLAC" not in first:
            return "no Vorbis, Opus or FLAC stream in the Ogg file (corrupt)"
        return "" if audio.find(b"OggS", 4) > 0 else "only the Ogg header (truncated)"
    if fmt == "flac":
        start = audio.find(b"fLaC")
        block = audio[start + 4:start + 8] if start >= 0 else b""
        if len(block) < 4 or block[0] & 0x7F != 0 or int.from_bytes(block[1:], "big") != 34:
            return "no FLAC stream info (corrupt)"
        return ""
    if fmt == "wav":
        return _wav_problem(f)
    return ""


def _utf8_path(path: Path) -> bool:
    """False for a path whose bytes are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unplayable_reason(path: Path) -> str:
    """'' when `path` is a track the player can play, else why not, in a few words.

    The one definition of "playable", shared by the player, `moodbox check` and the
    catalog: a supported extension on a non-empty regular file whose content is that
    format, down to its first audio frames (so a truncated MP3, an ID3 tag followed by
    garbage or an MP3 renamed .ogg is refused everywhere, not only when it fails to play).
    """
    ext = path.suffix.lower()
    if ext not in AUDIO_EXTENSIONS:
        return f"unsupported format {ext or '(no extension)'}; use .ogg, .mp3, .wav or .flac"
    if not _utf8_path(path):
        return ("its name is not UTF-8, so the player cannot open it; rename it (e.g. "
                "convmv -f latin1 -t utf8 --notest -r FOLDER)")
    k = files.kind(path)
    if k == files.MISSING:
        return "file not found"
    if k == files.DENIED:
        return f"cannot read ({files.describe_denied(path)})"
    if k == files.FOLDER:
        return "a folder, not a track"
    try:
        with files.open_regular(path) as f:
            if os.fstat(f.fileno()).st_size == 0:
                return "empty file"
            head, audio = _audio_start(f)
            found = _format_of(head, audio)
            problem = _content_problem(found, audio, f) if found == ext[1:] else ""
    except files.UnsafeFile as exc:
        return exc.strerror
    except OSError as exc:
        return f"cannot read ({files.problem(exc)})"
    if found == ext[1:]:
        return problem
    if found:
        return f"a {found} file named {ext}; rename it to .{found}"
    return f"not a valid {ext[1:]} file (corrupt or mislabelled)"
