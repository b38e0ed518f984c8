"""Files the box reads: questions that never raise, and reads that never block or run away.

Python 3.11's `Path.exists()` / `is_file()` raise PermissionError under a folder the
service user cannot enter; a FIFO blocks an `open()`; `/dev/zero` never ends. Every
path the box is given (config, playlists, tracks, model, cascade, images) goes
through here, so each of those is answered once, in one way.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

MiB = 1024 * 1024

FILE, FOLDER, MISSING, DENIED, OTHER = "file", "folder", "missing", "denied", "other"


class UnsafeFile(OSError):
    """A path that is not a regular file, or one too large to read; `strerror` says which."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(errno.EINVAL, reason, str(path))


def kind(path: str | Path) -> str:
    """file | folder | missing | denied (a folder on the way cannot be entered) | other
    (FIFO, device, socket). Follows symlinks; never raises."""
    try:
        mode = os.stat(path).st_mode
    except PermissionError:
        return DENIED
    except (OSError, ValueError):  # ValueError: an embedded NUL byte
        return MISSING
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return FOLDER
    return OTHER


def exists(path: str | Path) -> bool:
    return kind(path) in (FILE, FOLDER, OTHER)


def is_file(path: str | Path) -> bool:
    return kind(path) == FILE


def is_dir(path: str | Path) -> bool:
    return kind(path) == FOLDER


def blocked_at(path: str | Path) -> Path:
    """The first folder on the way to `path` that this user cannot enter (else `path`)."""
    p = Path(os.path.abspath(path))
    for parent in reversed(p.parents):
        if parent == Path(parent.anchor):
            continue
        if kind(parent) == FOLDER and not os.access(parent, os.X_OK):
            return parent
    return p


def describe_denied(path: str | Path) -> str:
    """'permission denied on /home/pi (mode 0700, owner 1000)': names the culprit folder."""
    culprit = blocked_at(path)
    try:
        st = os.stat(culprit)
        detail = f" (mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid})"
    except OSError:
        detail = ""
    return f"permission denied on {culprit}{detail}"


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | Path, limit: int | None = None):
    """A binary file object for a regular file, opened without blocking (a FIFO returns at
    once and is refused); UnsafeFile when it is anything else or larger than `limit`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(path, f"{_what(st.st_mode)}, not a regular file")
        if limit is not None and st.st_size > limit:
            raise UnsafeFile(path, f"too large ({st.st_size / MiB:.1f} MiB; the limit is "
                                   f"{limit / MiB:.0f} MiB)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The whole of a regular file of at most `limit` bytes (checked before and while reading)."""
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while we read it
        raise UnsafeFile(path, f"too large (over the {limit / MiB:.0f} MiB limit)")
    return data


def read_head(path: str | Path, n: int) -> bytes:
    """The first `n` bytes of a regular file."""
    with open_regular(path) as f:
        return f.read(n)


def problem(exc: OSError) -> str:
    """A few words for an OSError from the helpers above (or any other)."""
    if isinstance(exc, PermissionError) and exc.filename:
        return describe_denied(exc.filename)
    return exc.strerror or str(exc)


def temp_beside(path: str | Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """(fd, path) of a new, empty file beside `path`, created exclusively (O_CREAT|O_EXCL:
    never an existing file, and never through a symlink planted at a guessed name), mode
    0600; the caller writes it and renames it over `path`, or removes it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    return fd, Path(tmp)


def atomic_write(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` all or nothing: an exclusive temporary file beside it
    (temp_beside), fsync, chmod, rename over it. OSError as it comes; nothing is left."""
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
