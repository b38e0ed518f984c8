"""Photos read safely: the header's width and height are checked before anything is decoded.

A 1.2 MB PNG can declare 20000x20000 pixels (2.4 GB once decoded, twice that at 16
bits); a Pi has 1 GB. `image_size` reads the size from the first bytes of PNG, JPEG,
GIF, BMP, WebP, TIFF and PNM files; `read_grey` refuses anything above MAX_PIXELS
before OpenCV decodes it.
"""
from __future__ import annotations

import struct
from pathlib import Path

from moodbox import files

MAX_PIXELS = 40_000_000          # a 40-megapixel photo; larger ones are refused
MAX_IMAGE_BYTES = 200 * 1024 * 1024
HEAD_BYTES = 256 * 1024          # JPEG's size marker may follow large EXIF/ICC blocks


class ImageError(ValueError):
    """A file that is not a usable image; the message says why in a few words."""


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from an image file's first bytes, or None when the format is unknown."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:2] == b"BM" and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(head)
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456":
        return _pnm(head)
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    kind = head[12:16]
    if kind == b"VP8X" and len(head) >= 30:
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if kind == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def _tiff(head: bytes) -> tuple[int, int] | None:
    end = "<" if head[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", head[4:8])
        (count,) = struct.unpack(end + "H", head[ifd:ifd + 2])
        size: dict[int, int] = {}
        for n in range(count):
            entry = head[ifd + 2 + 12 * n:ifd + 14 + 12 * n]
            tag, typ = struct.unpack(end + "HH", entry[:4])
            if tag in (256, 257):
                fmt = end + ("H" if typ == 3 else "I")
                size[tag] = struct.unpack(fmt, entry[8:8 + struct.calcsize(fmt)])[0]
        return (size[256], size[257]) if len(size) == 2 else None
    except (struct.error, KeyError):
        return None


def _pnm(head: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in head[2:].split(b"\n"):
        line = line.split(b"#")[0]
        for tok in line.split():
            if not tok.isdigit():
                return None
            tokens.append(int(tok))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None


def read_grey(path: Path, max_pixels: int = MAX_PIXELS):
    """A photo as greyscale uint8 (alpha dropped); ImageError naming the problem otherwise."""
    import cv2
    import numpy as np

    from moodbox.camera.source import to_grey

    k = files.kind(path)
    if k == files.MISSING:
        raise ImageError("no such file")
    if k == files.FOLDER:
        raise ImageError("is a folder, not an image; pass the image files (e.g. folder/*.jpg)")
    if k == files.DENIED:
        raise ImageError(files.describe_denied(path))
    try:
        with files.open_regular(path, MAX_IMAGE_BYTES) as f:
            head = f.read(HEAD_BYTES)
            size = image_size(head)
            if size is None:
                raise ImageError("not a readable image (jpg, png, bmp, webp, tiff)")
            w, h = size
            if w <= 0 or h <= 0:
                raise ImageError(f"declares an empty size ({w}x{h}); not a usable image")
            if w * h > max_pixels:
                raise ImageError(f"{w}x{h} pixels is above the {max_pixels / 1e6:.0f}-megapixel "
                                 "limit (it would need "
                                 f"{w * h * 3 / 2**30:.1f} GiB or more to decode); shrink it first")
            data = head + f.read()
    except files.UnsafeFile as exc:
        raise ImageError(exc.strerror) from None
    except OSError as exc:
        raise ImageError(f"cannot be read ({files.problem(exc)})") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise ImageError("not a readable image (jpg, png, bmp, webp, tiff)")
    return to_grey(image)
