"""Frame sources (Pi camera, OpenCV, replay) behind one interface, and a grabber that never blocks."""
from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edge.config import CameraConfig

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
VIDEO_GROUP_HINT = "add the service user to the 'video' group (sudo usermod -aG video USER) and log in again"


class CameraError(Exception):
    """The camera failed; the grabber closes it and tries again."""


class CameraUnavailable(CameraError):
    """No camera could be opened (not connected, busy, wrong device)."""


class CameraTimeout(CameraError):
    """No frame arrived within the timeout."""


class CameraPermissionError(CameraError):
    """The camera exists but this user may not open it; retrying will not help."""


class EndOfStream(CameraError):
    """A replay source without loop reached its end."""


@dataclass(frozen=True)
class Frame:
    grey: np.ndarray          # uint8 (H, W)
    captured: float           # time.monotonic() when it was read
    seq: int                  # frame counter of the source
    source_ts: float | None   # the source's own timestamp (sensor time, file position)


class FrameSource(ABC):
    """A camera backend. `read` returns one greyscale frame or raises a CameraError
    within about `timeout` seconds; it never blocks forever."""

    name = "camera"
    timeout_is_idle = False  # True when a read timeout means "no frame due yet", not a fault

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self, timeout: float) -> Frame: ...

    @abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        return self.name


def to_grey(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (grey, BGR, BGRA) -> contiguous uint8 greyscale."""
    import cv2

    if image.ndim == 2:
        grey = image
    elif image.ndim == 3 and image.shape[2] == 1:
        grey = image[..., 0]
    elif image.ndim == 3 and image.shape[2] == 3:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        grey = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    else:
        raise CameraError(f"unsupported frame shape {image.shape}")
    if grey.dtype != np.uint8:
        grey = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return np.ascontiguousarray(grey)


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

    def describe(self) -> str:
        if isinstance(self.path, (list, tuple)):
            return f"replay of {len(self.path)} images"
        return f"replay {self.path}"

    def open(self) -> None:
        import cv2

        if isinstance(self.path, (list, tuple)):
            self._images = [Path(p) for p in self.path]
            if not self._images:
                raise CameraUnavailable("no images to replay; the demo photos come with the demo "
                                        "extra: pip install 'moodbox[demo]' (scikit-image, matplotlib)")
        else:
            p = Path(self.path)
            if p.is_dir():
                self._images = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
                if not self._images:
                    raise CameraUnavailable(f"replay folder {p} holds no images "
                                            f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
            elif p.is_file():
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
        import cv2

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
            if not path.exists():
                raise CameraError(f"replay image {path} has vanished")
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                logger.warning("replay: %s is not a readable image; skipped", path)
                continue
            self._current = self._shrink(to_grey(image))
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


def _check_device_access(device: str) -> None:
    if os.path.exists(device) and not os.access(device, os.R_OK | os.W_OK):
        raise CameraPermissionError(f"no permission to open {device}; {VIDEO_GROUP_HINT}")


class OpenCVSource(FrameSource):
    """A V4L2 webcam by index, or a video file / stream URL, through cv2.VideoCapture."""

    name = "opencv"

    def __init__(self, device: int | str, width: int, height: int, fps: float):
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self._cap = None
        self._seq = 0

    def describe(self) -> str:
        return f"opencv {self.device}"

    def open(self) -> None:
        import cv2

        if isinstance(self.device, int):
            _check_device_access(f"/dev/video{self.device}")
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise CameraUnavailable(f"cannot open camera {self.device!r} (not connected, busy, "
                                    "or not a video device)")
        if isinstance(self.device, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def read(self, timeout: float) -> Frame:
        if self._cap is None:
            raise CameraError("camera is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"camera {self.device!r} returned no frame")
        self._seq += 1
        pos = self._cap.get(0)  # CAP_PROP_POS_MSEC; 0 for live cameras
        return Frame(to_grey(image), time.monotonic(), self._seq, pos if pos > 0 else None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Source(FrameSource):
    """The Pi camera through picamera2: a YUV420 "lores" stream, greyscale from the Y plane.

    picamera2 is imported here only (`factory` lets tests hand in a double with the
    same interface as picamera2.Picamera2).
    """

    name = "picamera2"

    def __init__(self, width: int, height: int, fps: float,
                 factory: Callable[[], Any] | None = None):
        self.width, self.height, self.fps = width, height, fps
        self._factory = factory
        self._cam = None
        self._seq = 0

    def describe(self) -> str:
        return f"picamera2 lores {self.width}x{self.height}"

    def _make(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraUnavailable("picamera2 is not installed: sudo apt install python3-picamera2, "
                                    "and make the venv with --system-site-packages") from None
        return Picamera2()

    def open(self) -> None:
        try:
            cam = self._make()
        except CameraError:
            raise
        except PermissionError as exc:
            raise CameraPermissionError(f"no permission to open the Pi camera ({exc}); "
                                        f"{VIDEO_GROUP_HINT}") from None
        except Exception as exc:  # IndexError (no camera), RuntimeError (busy) ...
            text = str(exc)
            if "ermission" in text:
                raise CameraPermissionError(f"no permission to open the Pi camera ({text}); "
                                            f"{VIDEO_GROUP_HINT}") from None
            raise CameraUnavailable(f"no Pi camera found ({type(exc).__name__}: {text or 'no detail'})"
                                    "; check the ribbon cable and that the camera is enabled") from None
        try:
            w, h = self.width - self.width % 2, self.height - self.height % 2
            config = cam.create_video_configuration(
                main={"size": (max(w, 640), max(h, 480)), "format": "YUV420"},
                lores={"size": (w, h), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)}, buffer_count=4)
            cam.configure(config)
            cam.start()
        except Exception as exc:
            try:
                cam.close()
            except Exception:  # noqa: BLE001 (closing a half-opened camera)
                pass
            raise CameraUnavailable(f"Pi camera did not start ({type(exc).__name__}: {exc})") from None
        self._cam = cam

    def read(self, timeout: float) -> Frame:
        if self._cam is None:
            raise CameraError("camera is not open")
        try:
            request = self._cam.capture_request(wait=timeout)
        except TimeoutError:
            raise CameraTimeout(f"no frame from the Pi camera within {timeout:.1f} s "
                                "(frontend timeout?)") from None
        except Exception as exc:
            raise CameraError(f"Pi camera capture failed ({type(exc).__name__}: {exc})") from None
        if request is None:
            raise CameraTimeout(f"no frame from the Pi camera within {timeout:.1f} s")
        try:
            yuv = request.make_array("lores")
            meta = request.get_metadata() or {}
        finally:
            request.release()
        if yuv.ndim != 2 or yuv.shape[0] < self.height or yuv.shape[1] < self.width:
            raise CameraError(f"Pi camera gave a lores buffer of shape {yuv.shape}, expected "
                              f"at least ({self.height * 3 // 2}, {self.width})")
        grey = np.ascontiguousarray(yuv[:self.height, :self.width])  # Y plane, stride dropped
        self._seq += 1
        ts = meta.get("SensorTimestamp")
        return Frame(grey, time.monotonic(), self._seq, float(ts) if ts is not None else None)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        for step in ("stop", "close"):
            try:
                getattr(cam, step)()
            except Exception as exc:  # noqa: BLE001 (best effort on a failing camera)
                logger.debug("picamera2 %s failed: %s", step, exc)


def _replay(cfg: CameraConfig, path: str, loop: bool) -> ReplaySource:
    """A replay of `path` ("demo": the bundled photos, each held 8 s unless hold_s says)."""
    from edge import assets

    if path == "demo":
        return ReplaySource(assets.demo_photos(), fps=cfg.fps, loop=loop,
                            hold_s=cfg.hold_s or 8.0, max_width=cfg.width)
    return ReplaySource(path, fps=cfg.fps, loop=loop, hold_s=cfg.hold_s, max_width=cfg.width)


def make_source(cfg: CameraConfig, override: str | None = None) -> FrameSource:
    """The configured backend; `override` (--source) is "demo", a device number or a path."""
    if override is not None:
        if override.isdigit():
            return OpenCVSource(int(override), cfg.width, cfg.height, cfg.fps)
        if "://" in override:
            return OpenCVSource(override, cfg.width, cfg.height, cfg.fps)
        return _replay(cfg, override, loop=True if override == "demo" else cfg.loop)
    if cfg.type == "picamera2":
        return Picamera2Source(cfg.width, cfg.height, cfg.fps)
    if cfg.type == "opencv":
        device = cfg.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return OpenCVSource(device, cfg.width, cfg.height, cfg.fps)
    return _replay(cfg, cfg.path, loop=cfg.loop)


@dataclass
class GrabberStats:
    frames: int = 0
    dropped: int = 0
    bad: int = 0
    failures: int = 0
    reopens: int = 0
    state: str = "starting"   # starting | waiting | open | failed | ended
    last_error: str = ""
    history: list[str] = field(default_factory=list)


class FrameGrabber:
    """Reads a FrameSource in its own thread into a one-frame slot.

    The consumer always gets the newest frame; older unread frames are dropped and
    counted. Opening failures are retried with back-off for as long as it takes;
    capture failures (timeouts, frozen timestamps, errors) close and reopen the
    camera, and after `max_failures` in a row without a good frame the grabber
    gives up (state "failed") so the daemon can exit and systemd restart it.
    A permission error stops it at once (state "failed", `fatal_permission`).
    """

    def __init__(self, source: FrameSource, cfg: CameraConfig,
                 sleep: Callable[[float], None] | None = None):
        self.source, self.cfg = source, cfg
        self.stats = GrabberStats()
        self.fatal_permission: str = ""
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._last_ts: float | None = None
        self._same_ts = 0
        self._consumed_seq = 0

    def start(self) -> "FrameGrabber":
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("camera thread did not stop within %.1f s", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def latest(self, timeout: float) -> Frame | None:
        """The newest unread frame, waiting up to `timeout`; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or self.stats.state in ("failed", "ended"):
                    return None
                self._cond.wait(left)
            frame, self._slot = self._slot, None
            return frame

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = frame
            self.stats.frames += 1
            self._cond.notify_all()

    def _set_state(self, state: str, error: str = "") -> None:
        if state != self.stats.state:
            self.stats.history.append(state)
            del self.stats.history[:-20]
        self.stats.state = state
        if error:
            self.stats.last_error = error
        with self._cond:
            self._cond.notify_all()

    def _open_with_backoff(self) -> bool:
        delay = self.cfg.retry_min_s
        logged = False
        while not self._stop.is_set():
            try:
                self.source.open()
                if logged:
                    logger.info("camera %s is back", self.source.describe())
                self._last_ts, self._same_ts = None, 0
                return True
            except CameraPermissionError as exc:
                logger.error("%s", exc)
                self.fatal_permission = str(exc)
                self._set_state("failed", str(exc))
                return False
            except EndOfStream as exc:
                self._set_state("ended", str(exc))
                return False
            except Exception as exc:  # noqa: BLE001 (CameraError, or a backend bug: retry)
                self._set_state("waiting", str(exc))
                if not logged:
                    logger.warning("camera %s: %s; retrying every %.0f-%.0f s in the background",
                                   self.source.describe(), exc, self.cfg.retry_min_s,
                                   self.cfg.retry_max_s)
                    logged = True
                else:
                    logger.debug("camera still unavailable: %s (next try in %.0f s)", exc, delay)
            self._sleep(delay)
            delay = min(self.cfg.retry_max_s, delay * 2)
        return False

    def _check_frame(self, frame: Frame) -> str:
        g = frame.grey
        if not isinstance(g, np.ndarray) or g.ndim != 2 or g.dtype != np.uint8 or g.size == 0:
            return f"bad frame ({getattr(g, 'dtype', '?')} {getattr(g, 'shape', '?')})"
        if frame.source_ts is not None:
            if frame.source_ts == self._last_ts:
                self._same_ts += 1
                if self._same_ts >= self.cfg.freeze_frames:
                    raise CameraError(f"camera frozen: {self._same_ts} frames with the same timestamp")
                return "repeated frame"
            self._last_ts, self._same_ts = frame.source_ts, 0
        return ""

    def _run(self) -> None:
        consecutive = 0
        while not self._stop.is_set():
            if not self._open_with_backoff():
                return
            self._set_state("open")
            try:
                while not self._stop.is_set():
                    try:
                        frame = self.source.read(self.cfg.timeout_s)
                    except CameraTimeout:
                        if self.source.timeout_is_idle:
                            continue  # a slow replay: the next frame is simply not due yet
                        raise
                    problem = self._check_frame(frame)
                    if problem:
                        self.stats.bad += 1
                        continue
                    consecutive = 0
                    self._publish(frame)
            except EndOfStream as exc:
                self._set_state("ended", str(exc))
                self._close_source()
                return
            except CameraError as exc:
                consecutive = self._failure(exc, consecutive)
            except Exception as exc:  # noqa: BLE001 (a backend bug must not kill vision silently)
                logger.exception("camera thread error")
                consecutive = self._failure(exc, consecutive)
            self._close_source()
            if consecutive >= self.cfg.max_failures:
                logger.error("camera failed %d times in a row (%s); giving up so the service "
                             "restarts", consecutive, self.stats.last_error)
                self._set_state("failed")
                return
            if not self._stop.is_set():
                self.stats.reopens += 1
                self._sleep(min(self.cfg.retry_min_s, 1.0))
        self._close_source()

    def _failure(self, exc: Exception, consecutive: int) -> int:
        consecutive += 1
        self.stats.failures += 1
        self._set_state("waiting", str(exc))
        logger.warning("camera lost (%s); reopening (%d/%d)", exc, consecutive, self.cfg.max_failures)
        return consecutive

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001
            logger.debug("closing camera failed: %s", exc)
