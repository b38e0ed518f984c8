"""Several listeners: one mood from every face in view, each weighted by size and score."""
from __future__ import annotations

import math

import numpy as np

from moodbox.vision.detector import Box


def listener_weight(box: Box) -> float:
    """A face's say in the room's mood: its side length (a listener nearer the box, or
    filling more of the view, counts more) times the detector's confidence in it."""
    return math.sqrt(max(0, box.area)) * max(0.0, box.score)


def fuse_listeners(faces: list[tuple[Box, np.ndarray]]) -> np.ndarray | None:
    """The weighted average of every face's emotion probabilities; None without faces.
    Pure: the same faces give the same answer in any order."""
    if not faces:
        return None
    weights = np.array([listener_weight(box) for box, _ in faces], dtype=np.float64)
    probs = np.stack([np.asarray(p, dtype=np.float64) for _, p in faces])
    total = float(weights.sum())
    if total <= 0.0:
        weights, total = np.ones(len(faces)), float(len(faces))
    return (weights[:, None] * probs).sum(axis=0) / total
