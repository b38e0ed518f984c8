"""The privacy switch: the owner turns the camera off (closed) or on; kept across restarts."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from moodbox import files, jsonio
from moodbox.control.learning import state_directory

logger = logging.getLogger(__name__)

STATE_FILE = "privacy.json"
ON, OFF = "on", "off"


class PrivacyStore:
    """The owner's choice in the state directory (beside the learned skips): read once at
    start, written atomically (an exclusive temporary file, fsync, rename) and only when
    the owner switches. A file that cannot be read keeps the camera off: when in doubt,
    the owner's privacy wins (`moodbox camera on` writes a good one)."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_directory() / STATE_FILE

    def load(self) -> bool:
        """True when the camera is to stay off."""
        try:
            data = jsonio.loads(files.read_bounded(self.path, 4096).decode("utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            logger.warning("privacy: cannot read %s (%s); keeping the camera off until "
                           "`moodbox camera on`", self.path, getattr(exc, "strerror", None) or exc)
            return True
        if not isinstance(data, dict) or data.get("camera") not in (ON, OFF):
            logger.warning("privacy: %s is not a moodbox privacy file; keeping the camera off "
                           "until `moodbox camera on`", self.path)
            return True
        return data["camera"] == OFF

    def save(self, off: bool) -> bool:
        """Write the choice; False (logged) when the state directory cannot be written."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        body = jsonio.dumps({"version": 1, "camera": OFF if off else ON}).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.unlink()  # a leftover of ours (or a planted link: never followed)
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                         0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return True
        except OSError as exc:
            logger.warning("privacy: cannot keep the choice in %s (%s); it holds until the "
                           "next restart", self.path, exc.strerror or exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return False


class PrivacySwitch:
    """The wanted camera state, shared by the front ends (their threads) and the daemon's
    main loop, which alone opens and closes the camera. `set` records and keeps the
    owner's choice; `wait_applied` waits until the main loop has done it."""

    def __init__(self, off: bool, store: PrivacyStore | None = None):
        self._wanted = off
        self._applied = off
        self._store = store
        self._attached = False
        self._cond = threading.Condition()

    @property
    def off(self) -> bool:
        return self._wanted

    def attach(self) -> None:
        """A main loop applies the switch from now on (without one, `set` is immediate)."""
        self._attached = True

    def set(self, off: bool) -> bool:
        """The owner's choice; True when it changed (and was written down)."""
        with self._cond:
            if off == self._wanted:
                return False
            self._wanted = off
            if not self._attached:
                self._applied = off
        if self._store is not None:
            self._store.save(off)
        return True

    def pending(self) -> bool | None:
        """For the main loop: the state to apply now, or None when nothing is to do."""
        with self._cond:
            return self._wanted if self._wanted != self._applied else None

    def applied(self, off: bool) -> None:
        with self._cond:
            self._applied = off
            self._cond.notify_all()

    def wait_applied(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._applied == self._wanted, timeout)
