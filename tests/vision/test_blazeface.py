"""BlazeFace: anchors, box decoding and weighted NMS on known boxes, and the detector on
real photos through the real LiteRT interpreter."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from helpers import DATA
from moodbox.commands.classify import read_grey
from moodbox.config import FacesConfig
from moodbox.vision.blazeface import (LAYOUTS, BlazeFaceDetector, anchor_centres, decode,
                                      weighted_nms)
from moodbox.vision.detector import DetectorError, make_detector

CFG = dataclasses.replace(FacesConfig(), detector="blazeface", roi=False, idle_every=1,
                          detect_width=960)


def test_anchor_layouts_match_mediapipe():
    short, full = anchor_centres(LAYOUTS[128]), anchor_centres(LAYOUTS[192])
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short range: 16x16 cells of stride 8, two anchors each, in row-major order
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16]) and np.allclose(short[32], [0.5 / 16, 1.5 / 16])
    assert np.allclose(short[512], [0.5 / 8, 0.5 / 8])  # then 8x8 cells, six anchors each
    assert np.allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_decode_places_boxes_on_their_anchors_and_merges_overlaps():
    layout = LAYOUTS[128]
    centres = anchor_centres(layout)
    reg = np.zeros((len(centres), 16), np.float32)
    logits = np.full(len(centres), -10.0, np.float32)
    a, b, far = 100, 101, 700  # a and b share a cell; far is elsewhere
    reg[a, :4] = [0, 0, 32, 32]      # a 32 px box (0.25 of the input) on anchor a
    reg[b, :4] = [4, 0, 32, 32]      # the same face, 4 px to the right, lower score
    reg[far, :4] = [0, 0, 16, 16]
    logits[[a, b, far]] = [3.0, 1.0, 2.0]
    found = decode(reg, logits, centres, 128, threshold=0.5)
    assert len(found) == 2
    (box1, s1), (box2, s2) = found
    assert s1 == pytest.approx(1 / (1 + np.exp(-3.0))) and s2 == pytest.approx(1 / (1 + np.exp(-2.0)))
    wa, wb = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.0))
    shift = (4 / 128) * wb / (wa + wb)  # b pulls the merged box right by its weight
    cx, cy = centres[a]
    assert np.allclose(box1, [cx - 0.125 + shift, cy - 0.125, cx + 0.125 + shift, cy + 0.125], atol=1e-6)
    fx, fy = centres[far]
    assert np.allclose(box2, [fx - 1 / 16, fy - 1 / 16, fx + 1 / 16, fy + 1 / 16], atol=1e-6)
    assert decode(reg, logits, centres, 128, threshold=0.99) == []


def test_weighted_nms_keeps_separate_faces_apart():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    scores = np.array([0.9, 0.6, 0.8])
    merged = weighted_nms(boxes, scores)
    assert [round(s, 2) for _, s in merged] == [0.9, 0.8]
    assert merged[0][0][0] == pytest.approx((0.1 * 0.9 + 0.12 * 0.6) / 1.5)
    assert np.allclose(merged[1][0], boxes[2])


def test_blazeface_on_real_photos(astronaut, no_face_photo, shared_faces):
    detector = make_detector(CFG)
    assert isinstance(detector, BlazeFaceDetector)
    found = {}
    for photo in (astronaut, no_face_photo, *(shared_faces / n for n in
                                              ("justin.jpg", "obama.jpg", "biden.jpg", "no-faces.jpg"))):
        detector.reset()
        found[photo.name] = detector.detect(read_grey(photo))
    assert len(found["astronaut.png"]) == 1 and found["astronaut.png"][0].score >= 0.5
    for name in ("justin.jpg", "obama.jpg", "biden.jpg"):
        assert len(found[name]) == 1, name
    assert found["coffee.png"] == [] and found["no-faces.jpg"] == []
    face = found["astronaut.png"][0]
    assert 150 < face.x < 260 and 50 < face.y < 140 and 60 < face.w < 150  # Eileen Collins' face


def test_a_model_that_is_not_blazeface_is_refused():
    cfg = dataclasses.replace(CFG, blazeface_model=str(DATA / "tiny_int8.tflite"))
    with pytest.raises(DetectorError, match="not a BlazeFace model"):
        BlazeFaceDetector(cfg)
    with pytest.raises(DetectorError, match="does not exist"):
        BlazeFaceDetector(dataclasses.replace(CFG, blazeface_model="/nonexistent/bf.tflite"))
