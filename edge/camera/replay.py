"""A replay camera: images from a folder or a list, or a video file's frames, at a set rate."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from moodbox.camera.source import (CameraError, CameraTimeout, CameraUnavailable, EndOfStream, Frame,
                                   FrameSource, to_grey)
from moodbox import files
from moodbox.images import ImageError, read_grey
from moodbox.vocabulary import IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)


class ReplaySource(FrameSource):
    """Images from a folder (sorted by name) or a list, or frames of a video file, at `fps`.

    Each image is shown for `hold_s` seconds (at least one frame). With `loop` the
    sequence starts again at the end, else EndOfStream is raised.
    """

    name = "replay"
    timeout_is_idle = True

    def __init__(self, path: str | Path | Sequence[Path], fps: float = 10.0, loop: bool = True,
                 hold_s: float = 0.0, max_width: int = 0):
        self.path = path
        self.fps, self.loop, self.hold_s = fps, loop, hold_s
        self.max_width = max_width  # shrink wider frames, as the camera's lores stream would
        self._images: list[Path] = []
        self._video = None
        self._pos = 0
        self._repeat_left = 0
        self._current: np.ndarray | None = None
        self._seq = 0
        self._next_due = 0.0
        self._bad: set[Path] = set()  # unreadable images, each logged once

    def describe(self) -> str:
        held = f", each image held {self.hold_s:g} s" if self.hold_s > 0 else ""
        if isinstance(self.path, (list, tuple)):
            return f"replay of {len(self.path)} images{held}"
        return f"replay {self.path}{held}"

    def open(self) -> None:
        import cv2

        if isinstance(self.path, (list, tuple)):
            self._images = [Path(p) for p in self.path]
            if not self._images:
                raise CameraUnavailable("no images to replay; the demo photos come with the demo "
                                        "extra: pip install 'moodbox[demo]' (scikit-image, matplotlib)")
        else:
            p = Path(self.path)
            k = files.kind(p)
            if k == files.DENIED:
                raise CameraUnavailable(f"replay source {p}: {files.describe_denied(p)}")
            if k == files.FILE and p.suffix.lower() in IMAGE_EXTENSIONS:
                self._images = [p]  # a single photo: replayed as a still camera
            elif k == files.FOLDER:
                try:
                    self._images = sorted(f for f in p.iterdir()
                                          if f.suffix.lower() in IMAGE_EXTENSIONS)
                except OSError as exc:
                    raise CameraUnavailable(f"replay folder {p} cannot be listed "
                                            f"({files.problem(exc)})") from None
                if not self._images:
                    raise CameraUnavailable(f"replay folder {p} holds no images "
                                            f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
            elif k == files.FILE:
                cap = cv2.VideoCapture(str(p))
                if not cap.isOpened():
                    cap.release()
                    raise CameraUnavailable(f"replay file {p} is not a readable video")
                self._video = cap
            else:
                raise CameraUnavailable(f"replay source {p} does not exist")
        self._pos, self._repeat_left, self._current = 0, 0, None
        self._next_due = time.monotonic()

    def _frames_per_image(self) -> int:
        return max(1, int(round(self.hold_s * self.fps)))

    def _next_image(self) -> np.ndarray:
        if self._repeat_left > 0 and self._current is not None:
            self._repeat_left -= 1
            return self._current
        for _ in range(len(self._images) + 1):
            if self._pos >= len(self._images):
                if not self.loop:
                    raise EndOfStream("replay finished")
                self._pos = 0
            path = self._images[self._pos]
            self._pos += 1
            if files.kind(path) == files.MISSING:
                raise CameraError(f"replay image {path} has vanished")
            try:
                grey = read_grey(path)
            except ImageError as exc:
                if path not in self._bad:
                    logger.warning("replay: %s: %s; skipped", path, exc)
                    self._bad.add(path)
                continue
            self._current = self._shrink(grey)
            self._repeat_left = self._frames_per_image() - 1
            return self._current
        raise CameraError("no readable image left in the replay source")

    def _next_video_frame(self) -> np.ndarray:
        ok, image = self._video.read()
        if not ok:
            if not self.loop:
                raise EndOfStream("replay video finished")
            self._video.set(1, 0)  # cv2.CAP_PROP_POS_FRAMES
            ok, image = self._video.read()
            if not ok:
                raise CameraError(f"replay video {self.path} cannot be read")
        return self._shrink(to_grey(image))

    def _shrink(self, grey: np.ndarray) -> np.ndarray:
        h, w = grey.shape
        if not self.max_width or w <= self.max_width:
            return grey
        import cv2
        size = (self.max_width, max(1, int(round(h * self.max_width / w))))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    def read(self, timeout: float) -> Frame:
        if not self._images and self._video is None:
            raise CameraError("replay source is not open")
        wait = self._next_due - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            raise CameraTimeout("next replay frame not due yet")
        if wait > 0:
            time.sleep(wait)
        self._next_due = max(self._next_due + 1.0 / self.fps, time.monotonic() - 1.0)
        grey = self._next_video_frame() if self._video is not None else self._next_image()
        self._seq += 1
        return Frame(grey, time.monotonic(), self._seq, float(self._seq))

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None
        self._images = []


