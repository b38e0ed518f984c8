"""Face detection on real photos, the stable choice among faces, crops at the frame edge."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from moodbox.config import FacesConfig
from moodbox.vision.crop import crop_face, frame_is_usable
from moodbox.vision.detector import Box
from moodbox.vision.haar import HaarDetector as FaceDetector
from moodbox.vision.selector import FaceSelector
from moodbox.commands.classify import read_grey

CFG = FacesConfig()


def test_detects_the_face_in_real_photos(astronaut, grace_hopper):
    det = FaceDetector(CFG)
    for photo in (astronaut, grace_hopper):
        det.reset()
        boxes = det.detect(read_grey(photo))
        assert len(boxes) == 1, photo
        assert boxes[0].w >= 60


def test_no_face_is_a_normal_outcome(no_face_photo):
    assert FaceDetector(CFG).detect(read_grey(no_face_photo)) == []


def test_camera_sized_frame_detects_at_low_resolution(astronaut):
    grey = cv2.resize(read_grey(astronaut), (320, 320))
    boxes = FaceDetector(CFG).detect(grey)
    assert len(boxes) == 1


def test_roi_tracking_finds_the_face_again_near_the_last_box(astronaut):
    det = FaceDetector(dataclasses.replace(CFG, roi=True))
    grey = read_grey(astronaut)
    first = det.detect(grey)
    assert det.last_mode == "full"
    second = det.detect(grey)
    assert det.last_mode == "roi"
    assert second and second[0].iou(first[0]) > 0.7


def test_detect_every_n_reuses_boxes(astronaut):
    det = FaceDetector(dataclasses.replace(CFG, detect_every=3, roi=False))
    grey = read_grey(astronaut)
    modes = []
    for _ in range(6):
        det.detect(grey)
        modes.append(det.last_mode)
    assert modes.count("reuse") == 4


def test_empty_room_is_searched_only_every_nth_frame(no_face_photo, astronaut):
    det = FaceDetector(dataclasses.replace(CFG, idle_every=3))
    empty, face = read_grey(no_face_photo), read_grey(astronaut)
    modes = []
    for _ in range(6):
        assert det.detect(empty) == []
        modes.append(det.last_mode)
    # each search finds nobody, so it looks at the mirror image too (faces.mirror_retry)
    assert modes == ["mirror", "idle", "idle", "mirror", "idle", "idle"]
    assert det.detect(face) and det.last_mode == "full"  # someone came: found on the next search
    assert det.detect(face) and det.last_mode == "roi"


def test_several_faces_largest_first(shared_faces):
    boxes = FaceDetector(dataclasses.replace(CFG, detect_width=1126)).detect(
        read_grey(shared_faces / "two_people.jpg"))
    assert len(boxes) == 2
    assert boxes[0].area >= boxes[1].area


def test_selector_is_deterministic_and_does_not_flip():
    a, b = Box(100, 100, 80, 80), Box(300, 100, 78, 78)
    sel = FaceSelector()
    assert sel.choose([a, b]) == a
    # b becomes marginally larger (detector jitter): we stay with a
    for _ in range(20):
        a2, b2 = Box(102, 101, 78, 78), Box(300, 100, 81, 81)
        assert sel.choose([b2, a2]) == a2
    # a walks away (gone): b is chosen; a clearly larger newcomer takes over
    assert sel.choose([b]) == b
    big = Box(500, 50, 200, 200)
    assert sel.choose([b, big]) == big
    # the same input always gives the same answer from a fresh selector
    assert FaceSelector().choose([b, a]) == FaceSelector().choose([a, b]) == a


def test_ties_are_broken_by_position():
    a, b = Box(10, 10, 50, 50), Box(200, 10, 50, 50)
    assert FaceSelector().choose([b, a]) == a


def test_crop_pads_faces_cut_by_the_frame_edge():
    grey = np.full((240, 320), 90, np.uint8)
    grey[:, :40] = 200
    for box in (Box(-20, -30, 80, 80), Box(290, 200, 60, 60), Box(0, 0, 320, 240), Box(150, 100, 10, 10)):
        face = crop_face(grey, box, 0.1, 48)
        assert face.shape == (48, 48) and face.dtype == np.uint8


def test_crop_margin_matches_the_box():
    grey = np.zeros((200, 200), np.uint8)
    grey[50:150, 50:150] = 255
    face = crop_face(grey, Box(50, 50, 100, 100), 0.0, 48)
    assert face.min() > 200  # no margin: all face
    face = crop_face(grey, Box(50, 50, 100, 100), 0.25, 48)
    assert face[0, 0] == 0 and face[24, 24] == 255


def test_small_faces_are_ignored(astronaut):
    grey = cv2.resize(read_grey(astronaut), (128, 128))
    det = FaceDetector(dataclasses.replace(CFG, min_face_px=60, min_size=12))
    assert det.detect(grey) == []


@pytest.mark.parametrize("frame,usable", [
    (np.zeros((240, 320), np.uint8), False),
    (np.full((240, 320), 255, np.uint8), False),
    (np.full((240, 320), 128, np.uint8), False),
    (np.zeros((0, 0), np.uint8), False),
    ((np.random.default_rng(0).random((240, 320)) * 255).astype(np.uint8), True),
])
def test_black_saturated_and_flat_frames_are_unusable(frame, usable):
    assert frame_is_usable(frame) is usable


def test_framing_scales_and_shifts_the_crop():
    from moodbox.vision.detector import Framing

    grey = np.zeros((200, 200), np.uint8)
    grey[50:150, 50:150] = 255
    box = Box(60, 50, 80, 100)  # a tall box: framed around its longer side
    assert crop_face(grey, box, 0.0, 48, Framing(scale=1.0)).min() > 200
    wide = crop_face(grey, box, 0.0, 48, Framing(scale=1.5))
    assert wide[0, 0] == 0 and wide[24, 24] == 255
    shifted = crop_face(grey, box, 0.0, 48, Framing(scale=0.5, dy=0.5))  # half a box lower
    assert shifted[-1, 24] == 0 and shifted[0, 24] == 255


def test_align_levels_tilted_eyes():
    from moodbox.vision.crop import eye_angle

    grey = np.full((200, 200), 128, np.uint8)
    cv2.line(grey, (60, 80), (140, 120), 255, 5)  # a line through both "eyes", tilted 26.6°
    box = Box(50, 50, 100, 100, landmarks=((60.0, 80.0), (140.0, 120.0)))
    assert eye_angle(box) == pytest.approx(26.57, abs=0.1)
    level = crop_face(grey, box, 0.0, 48, align=True)
    rows = np.where(level[:, 8:40].max(axis=1) > 200)[0]
    assert rows.max() - rows.min() <= 4  # the line is now horizontal
    assert crop_face(grey, Box(50, 50, 100, 100), 0.0, 48, align=True).shape == (48, 48)
