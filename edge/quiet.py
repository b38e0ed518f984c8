"""Keeps the banners native libraries print on fd 2 out of the journal: TFLite's "Created
TensorFlow Lite XNNPACK delegate", SDL's "You are using the SDL disk i/o audio driver!",
ALSA's "ALSA lib ..." lines. Python's sys.stderr cannot catch them (C writes to fd 2
directly), so fd 2 is pointed at a temporary file around the few noisy calls and what
was written there is logged: known banners at DEBUG, anything else at WARNING.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager
from typing import Iterator

BANNERS = re.compile(r"XNNPACK delegate|SDL disk i/o audio driver|Writing to file \[|^ALSA lib |"
                     r"^Cannot connect to server socket|^jack server")


@contextmanager
def native_stderr_logged(log: logging.Logger, what: str) -> Iterator[None]:
    """Run the block with fd 2 captured; log what native code wrote there, line by line."""
    try:
        sys.stderr.flush()
        # an anonymous in-memory file: nothing is written to disk (the root may be read-only)
        sink = os.fdopen(os.memfd_create("moodbox-stderr", os.MFD_CLOEXEC), "w+b")
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no memfd (not Linux): leave fd 2 alone
        yield
        return
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sink.seek(0)
        text = sink.read(64 * 1024).decode("utf-8", errors="replace")
        sink.close()
        for line in text.splitlines():
            line = line.strip()
            if line:
                log.log(logging.DEBUG if BANNERS.search(line) else logging.WARNING,
                        "%s: %s", what, line)
