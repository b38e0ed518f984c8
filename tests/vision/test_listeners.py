"""Several listeners: the fusion of every face's emotion, and the pipeline on group photos."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from moodbox.commands.classify import read_grey
from moodbox.config import FacesConfig
from moodbox.vision.classifier import EmotionClassifier
from moodbox.vision.detector import Box
from moodbox.vision.listeners import fuse_listeners, listener_weight
from moodbox.vision.pipeline import FaceEmotionPipeline

HAPPY = np.array([0, 0, 0, 1, 0, 0, 0], float)
SAD = np.array([0, 0, 0, 0, 1, 0, 0], float)


def test_no_face_no_mood():
    assert fuse_listeners([]) is None


def test_one_face_is_its_own_mood():
    assert fuse_listeners([(Box(0, 0, 50, 50, 0.9), SAD)]) == pytest.approx(SAD)


def test_faces_weigh_by_size_and_score():
    big, small = Box(0, 0, 90, 90, score=0.9), Box(200, 0, 30, 30, score=0.9)
    fused = fuse_listeners([(big, HAPPY), (small, SAD)])
    assert fused[3] == pytest.approx(0.75) and fused[4] == pytest.approx(0.25)  # sides 90:30
    sure, unsure = Box(0, 0, 60, 60, score=0.9), Box(200, 0, 60, 60, score=0.3)
    fused = fuse_listeners([(sure, HAPPY), (unsure, SAD)])
    assert fused[3] == pytest.approx(0.75)
    assert listener_weight(Box(0, 0, 40, 40, 0.5)) == pytest.approx(20.0)


def test_two_equal_listeners_split_the_mood_in_any_order():
    a, b = Box(0, 0, 60, 60, 0.9), Box(100, 0, 60, 60, 0.9)
    one, two = fuse_listeners([(a, HAPPY), (b, SAD)]), fuse_listeners([(b, SAD), (a, HAPPY)])
    assert one == pytest.approx(two)
    assert one[3] == pytest.approx(0.5) and one[4] == pytest.approx(0.5)
    assert one.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("photo,faces", [("two_people.jpg", 2), ("group_selfie.jpg", 6)])
def test_everyone_in_a_group_photo_drives_the_mood(photo, faces, shared_faces, shipped_model):
    import cv2

    grey = read_grey(shared_faces / photo)
    grey = cv2.resize(grey, (640, int(round(grey.shape[0] * 640 / grey.shape[1]))),
                      interpolation=cv2.INTER_AREA)
    clf = EmotionClassifier(shipped_model, flip=True)
    everyone = FaceEmotionPipeline(dataclasses.replace(FacesConfig(), listeners="all",
                                                       detect_width=640), clf)
    largest = FaceEmotionPipeline(dataclasses.replace(FacesConfig(), detect_width=640), clf)
    result, alone = everyone.process(grey), largest.process(grey)
    assert len(result.listeners) == faces == len(result.boxes)
    assert result.chosen == alone.chosen and result.emotion.name == alone.emotion.name
    assert alone.probs == pytest.approx(alone.emotion.probs)
    want = fuse_listeners([(b, e.probs) for b, e in result.listeners])
    assert result.probs == pytest.approx(want) and result.probs.sum() == pytest.approx(1.0)
    assert not np.allclose(result.probs, alone.probs, atol=1e-3)  # the others count too
