"""Frame sources and the grabber: replay on real photos, the Pi camera through its double."""
from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import cv2
import pytest

from moodbox.camera import (CameraPermissionError, CameraUnavailable, EndOfStream, FrameGrabber,
                         OpenCVSource, Picamera2Source, ReplaySource, make_source)
from moodbox.config import CameraConfig
from fakes import FakePiCameraSystem

FAST = CameraConfig(type="replay", fps=50.0, timeout_s=0.3, retry_min_s=0.05, retry_max_s=0.2,
                    max_failures=3, freeze_frames=5)


def photos_dir(tmp_path: Path, *photos: Path) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    for i, p in enumerate(photos):
        shutil.copy(p, d / f"{i:03d}{p.suffix}")
    return d


def wait_for(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_replay_folder_in_order_and_loops(tmp_path, astronaut, grace_hopper):
    src = ReplaySource(photos_dir(tmp_path, astronaut, grace_hopper), fps=100, loop=True)
    src.open()
    shapes = [src.read(1.0).grey.shape for _ in range(4)]
    assert shapes[0] == shapes[2] == (512, 512)   # astronaut, greyscale
    assert shapes[1] == shapes[3] != shapes[0]    # grace hopper
    src.close()


def test_replay_paces_frames_at_the_configured_rate(tmp_path, astronaut):
    src = ReplaySource(photos_dir(tmp_path, astronaut), fps=20, loop=True)
    src.open()
    t0 = time.monotonic()
    for _ in range(11):
        src.read(1.0)
    assert 0.4 <= time.monotonic() - t0 <= 1.5


def test_replay_hold_and_end_of_stream(tmp_path, astronaut, grace_hopper):
    src = ReplaySource([astronaut, grace_hopper], fps=100, loop=False, hold_s=0.03)
    src.open()
    frames = [src.read(1.0) for _ in range(6)]
    assert [f.grey.shape == (512, 512) for f in frames] == [True] * 3 + [False] * 3
    assert len({f.source_ts for f in frames}) == 6  # held frames are new frames, not frozen ones
    with pytest.raises(EndOfStream):
        src.read(1.0)


def test_replay_video_file(tmp_path, astronaut):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    img = cv2.resize(cv2.imread(str(astronaut)), (256, 256))
    for _ in range(5):
        writer.write(img)
    writer.release()
    src = ReplaySource(path, fps=100, loop=True)
    src.open()
    assert [src.read(1.0).grey.shape for _ in range(7)] == [(256, 256)] * 7  # looped past the end


def test_replay_of_shared_clip(shared_faces):
    src = ReplaySource(shared_faces / "woman2.mp4", fps=200, loop=False)
    src.open()
    n = 0
    with pytest.raises(EndOfStream):
        while True:
            assert src.read(1.0).grey.shape == (336, 596)
            n += 1
    assert n == 464


def test_replay_errors(tmp_path):
    with pytest.raises(CameraUnavailable, match="does not exist"):
        ReplaySource(tmp_path / "nope").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraUnavailable, match="holds no images"):
        ReplaySource(tmp_path / "empty").open()
    with pytest.raises(CameraUnavailable, match="demo extra"):
        ReplaySource([]).open()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(CameraUnavailable, match="not a readable video"):
        ReplaySource(bad).open()


def test_make_source_override_rules(tmp_path):
    cfg = CameraConfig()
    assert isinstance(make_source(cfg, "2"), OpenCVSource)
    assert isinstance(make_source(cfg, str(tmp_path)), ReplaySource)
    assert isinstance(make_source(cfg, "demo"), ReplaySource)
    assert isinstance(make_source(cfg), Picamera2Source)  # never imported until opened


def test_grabber_keeps_only_the_newest_frame_and_counts_drops(tmp_path, astronaut):
    src = ReplaySource(photos_dir(tmp_path, astronaut), fps=200, loop=True)
    g = FrameGrabber(src, dataclasses.replace(FAST, fps=200)).start()
    try:
        assert g.latest(2.0) is not None
        time.sleep(0.3)  # the consumer is slow: frames pile up and are dropped
        frame = g.latest(1.0)
        assert frame is not None
        assert g.stats.dropped > 10
        newer = g.latest(1.0)
        assert newer is not None and newer.seq > frame.seq  # only newer frames follow
    finally:
        g.stop()


def test_grabber_latest_never_blocks_longer_than_its_timeout(tmp_path, astronaut):
    src = ReplaySource(photos_dir(tmp_path, astronaut), fps=0.2, loop=True)
    g = FrameGrabber(src, FAST).start()
    try:
        g.latest(1.0)  # the first frame is due at once
        t0 = time.monotonic()
        assert g.latest(0.2) is None
        assert time.monotonic() - t0 < 0.5
        assert g.stats.state == "open"  # a slow replay is not a camera fault
    finally:
        g.stop()
    assert not g.alive


def test_vanishing_replay_folder_is_retried_then_recovers(tmp_path, astronaut):
    d = photos_dir(tmp_path, astronaut)
    g = FrameGrabber(ReplaySource(d, fps=50), dataclasses.replace(FAST, max_failures=1000)).start()
    try:
        assert g.latest(2.0) is not None
        moved = tmp_path / "away"
        d.rename(moved)
        assert wait_for(lambda: g.stats.state == "waiting")
        assert g.alive
        moved.rename(d)
        assert wait_for(lambda: g.stats.state == "open")
        assert g.latest(2.0) is not None
    finally:
        g.stop()


# --- the Pi camera through its test double --------------------------------------------
def pi_grabber(system: FakePiCameraSystem, **cfg) -> FrameGrabber:
    src = Picamera2Source(320, 240, 30, factory=system)
    return FrameGrabber(src, dataclasses.replace(FAST, type="picamera2", **cfg))


def test_picamera2_reads_the_y_plane_and_drops_the_stride():
    system = FakePiCameraSystem(stride=384)
    src = Picamera2Source(320, 240, 30, factory=system)
    src.open()
    frame = src.read(1.0)
    assert frame.grey.shape == (240, 320) and frame.grey.flags["C_CONTIGUOUS"]
    assert frame.source_ts is not None
    src.close()
    assert system.closed == 1


def test_no_camera_at_start_retries_with_backoff_and_stays_alive(caplog):
    system = FakePiCameraSystem()
    system.unplug()
    sleeps: list[float] = []
    g = pi_grabber(system, retry_min_s=0.01, retry_max_s=0.08)
    g._sleep = lambda s: (sleeps.append(s), time.sleep(0.005))  # record the back-off
    g.start()
    try:
        assert wait_for(lambda: len(sleeps) >= 6)
        assert g.stats.state == "waiting" and g.alive
        assert sleeps[:5] == [0.01, 0.02, 0.04, 0.08, 0.08]  # doubling up to the maximum
        assert sum("retrying" in r.message for r in caplog.records) == 1  # logged once
        system.plug()
        assert g.latest(2.0) is not None
        assert g.stats.state == "open"
    finally:
        g.stop()


def test_capture_timeouts_reopen_the_camera():
    system = FakePiCameraSystem()
    g = pi_grabber(system, max_failures=3).start()
    try:
        assert g.latest(2.0) is not None
        system.trigger_timeouts(2)  # two frontend timeouts, then frames again
        assert wait_for(lambda: system.opened >= 3)
        assert g.latest(2.0) is not None
        assert g.stats.state == "open" and g.stats.failures == 2
        assert system.closed >= 2
    finally:
        g.stop()


def test_repeated_timeouts_give_up_so_systemd_restarts():
    system = FakePiCameraSystem()
    system.trigger_timeouts(10_000)
    g = pi_grabber(system, max_failures=3).start()
    assert wait_for(lambda: g.stats.state == "failed")
    assert g.stats.failures == 3 and not g.fatal_permission
    g.stop()


def test_frozen_frames_count_as_lost():
    system = FakePiCameraSystem()
    g = pi_grabber(system, freeze_frames=5, max_failures=50).start()
    try:
        assert g.latest(2.0) is not None
        system.freeze()
        assert wait_for(lambda: g.stats.failures >= 1)
        assert "frozen" in g.stats.last_error
        system.unfreeze()
        assert wait_for(lambda: g.stats.state == "open")
    finally:
        g.stop()


def test_bad_stride_frames_are_skipped_without_a_crash():
    system = FakePiCameraSystem()
    system.trigger_bad_stride(3)
    g = pi_grabber(system, max_failures=10).start()
    try:
        assert g.latest(2.0) is not None
        assert g.alive
    finally:
        g.stop()


def test_camera_permission_is_fatal_and_names_the_group():
    system = FakePiCameraSystem()
    system.deny_permission()
    g = pi_grabber(system).start()
    assert wait_for(lambda: g.stats.state == "failed")
    assert "'video' group" in g.fatal_permission
    g.stop()


def test_opencv_device_permission(tmp_path, monkeypatch):
    import moodbox.camera.opencv as cam

    dev = tmp_path / "video7"
    dev.write_bytes(b"")
    monkeypatch.setattr(cam.os, "access", lambda p, mode: False)
    with pytest.raises(CameraPermissionError, match="'video' group"):
        cam._check_device_access(str(dev))
