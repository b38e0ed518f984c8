"""Frame sources behind one interface, chosen by config's camera.type, and a grabber.

`source` is the interface (FrameSource, Frame, the camera errors); `picamera`,
`opencv` and `replay` are the backends, one per file, each importing its heavy library
only when it opens; `grabber` runs a source in its own thread into a one-frame slot so
the pipeline never waits on the camera.
"""
from __future__ import annotations

from moodbox.camera.grabber import FrameGrabber, GrabberStats
from moodbox.camera.opencv import OpenCVSource
from moodbox.camera.picamera import Picamera2Source
from moodbox.camera.replay import ReplaySource
from moodbox.camera.source import (CameraError, CameraPermissionError, CameraTimeout,
                                   CameraUnavailable, EndOfStream, Frame, FrameSource, to_grey)
from moodbox.config import CameraConfig, MoodConfig

__all__ = ["CameraError", "CameraPermissionError", "CameraTimeout", "CameraUnavailable",
           "EndOfStream", "Frame", "FrameGrabber", "FrameSource", "GrabberStats", "OpenCVSource",
           "Picamera2Source", "ReplaySource", "make_source", "still_hold_s", "to_grey"]


def still_hold_s(mood: MoodConfig) -> float:
    """How long a replayed photo is shown by default: long enough for its mood to form
    (the smoothing settles, the dwell passes) and to replace the last photo's mood
    (mood.min_switch_interval_s), and never under 8 s."""
    return round(max(8.0, mood.dwell_s + 4.0 * mood.smoothing_s + 1.0,
                     mood.min_switch_interval_s + 1.0), 1)


def _replay(cfg: CameraConfig, path: str, loop: bool, hold_s: float | None) -> ReplaySource:
    """A replay of `path` ("demo": the bundled photos, each held 8 s unless hold_s says)."""
    from moodbox import assets

    if path == "demo":
        hold = hold_s if hold_s is not None else (cfg.hold_s or 8.0)
        return ReplaySource(assets.demo_photos(), fps=cfg.fps, loop=loop, hold_s=hold,
                            max_width=cfg.width)
    hold = hold_s if hold_s is not None else cfg.hold_s
    return ReplaySource(path, fps=cfg.fps, loop=loop, hold_s=hold, max_width=cfg.width)


def make_source(cfg: CameraConfig, override: str | None = None,
                hold_s: float | None = None) -> FrameSource:
    """The configured backend; `override` (--source) is "demo", a device number or a path.
    `hold_s` (--hold) shows each replayed photo that long (None: camera.hold_s)."""
    if override is not None:
        if override.isdigit():
            return OpenCVSource(int(override), cfg.width, cfg.height, cfg.fps)
        if "://" in override:
            return OpenCVSource(override, cfg.width, cfg.height, cfg.fps)
        return _replay(cfg, override, True if override == "demo" else cfg.loop, hold_s)
    if cfg.type == "picamera2":
        return Picamera2Source(cfg.width, cfg.height, cfg.fps)
    if cfg.type == "opencv":
        device = cfg.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return OpenCVSource(device, cfg.width, cfg.height, cfg.fps)
    return _replay(cfg, cfg.path, cfg.loop, hold_s)
