"""What the box prints and logs about outsiders: control characters escaped, and at most
one line per interval for repeated events."""
from __future__ import annotations

import logging
import re
import threading
from typing import Any, TextIO


class Throttle:
    """A repeated event (a refused connection, a bad request) is logged at most once per
    `every_s` seconds; the events in between are counted and reported with the next line.
    Pure apart from its lock: the caller passes the monotonic time."""

    def __init__(self, every_s: float = 60.0):
        self.every_s = every_s
        self._next = float("-inf")
        self._held = 0
        self._lock = threading.Lock()

    def ready(self, now: float) -> int | None:
        """How many events were held back since the last line when a line may be logged now
        (0 for the first), else None (this event is counted and held back)."""
        with self._lock:
            if now < self._next:
                self._held += 1
                return None
            held, self._held = self._held, 0
            self._next = now + self.every_s
            return held


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on many terminals), the Unicode line
# and paragraph separators, and lone surrogates (the bytes of a file name that is not UTF-8)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escaped(match: re.Match) -> str:
    ch = match.group()
    return _NAMED.get(ch) or f"\\u{ord(ch):04x}"


def escape(text: str, keep_lines: bool = False) -> str:
    """`text` with every control character written out (\\n, \\u001b, ...), so that what
    came from outside (a tag, a file name, a request) cannot move the cursor, recolour the
    terminal or start a forged log line. `keep_lines` keeps newlines and tabs (our own
    multi-line output) and escapes the rest. The escapes are valid inside JSON strings."""
    pattern = _CONTROL_BUT_LINES if keep_lines else _CONTROL
    return pattern.sub(_escaped, text) if pattern.search(text) else text


class EscapingFormatter(logging.Formatter):
    """One log record, one line: control characters in the message (and so in its
    arguments: file names, tags, requests) are escaped; a traceback stays as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


class EscapingStream:
    """A text stream (stdout, stderr) that escapes control characters other than newlines
    and tabs before they reach the terminal; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape(text, keep_lines=True))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
