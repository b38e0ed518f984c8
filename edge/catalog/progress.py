"""Progress display for long scans: a tqdm bar when tqdm is installed, else a stderr counter."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

logger = logging.getLogger(__name__)


class ScanProgress:
    """Callable as progress(done, total, path); close() when the scan ends."""

    def __init__(self, stream: TextIO = sys.stderr, every_s: float = 5.0):
        self.stream = stream
        self.every_s = every_s
        self._bar: Optional[Any] = None
        self._last = 0.0
        self._tqdm = _tqdm_class()

    def __call__(self, done: int, total: int, path: Path) -> None:
        if self._tqdm is not None:
            if self._bar is None:
                self._bar = self._tqdm(total=total, unit="file", file=self.stream,
                                       dynamic_ncols=True, mininterval=0.5)
            self._bar.set_postfix_str(path.name[:40], refresh=False)
            self._bar.update(done - self._bar.n)
            return
        now = time.monotonic()
        if done == total or now - self._last >= self.every_s:
            self._last = now
            print(f"scan: {done}/{total} files ({path.name})", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _tqdm_class() -> Optional[Any]:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm
