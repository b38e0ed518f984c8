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
from moodbox.config import CameraConfig

__all__ = ["CameraError", "CameraPermissionError", "CameraTimeout", "CameraUnavailable",
           "EndOfStream", "Frame", "FrameGrabber", "FrameSource", "GrabberStats", "OpenCVSource",
           "Picamera2Source", "ReplaySource", "make_source", "to_grey"]


def _replay(cfg: CameraConfig, path: str, loop: bool) -> ReplaySource:
    """A replay of `path` ("demo": the bundled photos, each held 8 s unless hold_s says)."""
    from moodbox import assets

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


