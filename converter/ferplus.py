"""FER+ crowd votes (10 taggers per FER2013 face) as soft training targets over the 7 classes."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from moodbox.converter.data import DataError, FaceSet

logger = logging.getLogger(__name__)


def vote_distribution(votes: np.ndarray, to_class: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, n_classes) share of each face's votes per class, counting only the columns
    that map to a class (contempt, unknown and not-a-face map to -1 and are dropped);
    all zeros where no vote lands on a class (or no votes are known, -1 rows)."""
    counts = np.zeros((len(votes), n_classes), np.float32)
    known = np.clip(votes, 0, None).astype(np.float32)
    for col, cls in enumerate(to_class):
        if 0 <= cls < n_classes:
            counts[:, cls] += known[:, col]
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def load_votes(path: Path, faces: FaceSet) -> np.ndarray:
    """The FER+ vote distribution per face of `faces` (row for row), checked: same row
    count, the same class names, and the same `source_row` where the faces NPZ has one."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a FER+ votes NPZ (ferplus_train.npz)")
    try:
        with np.load(path, allow_pickle=False) as data:
            votes, to_class = data["votes"], data["ferplus_to_fer2013"].astype(int)
            classes = tuple(str(c) for c in data["fer2013_classes"])
            rows = data["source_row"] if "source_row" in data.files else None
    except KeyError as exc:
        raise DataError(f"{path}: not a FER+ votes NPZ (missing {exc}); expected votes, "
                        "ferplus_to_fer2013, fer2013_classes") from None
    except Exception as exc:  # BadZipFile, ValueError, OSError
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    if votes.ndim != 2 or len(votes) != len(faces) or votes.shape[1] != len(to_class):
        raise DataError(f"{path}: {votes.shape} votes do not fit {len(faces)} faces of "
                        f"{faces.path or 'the training set'}; use the FER+ file of the same split")
    if classes != tuple(faces.classes):
        raise DataError(f"{path}: votes map to classes {classes}, the faces have {faces.classes}")
    _check_rows(path, rows, faces)
    return vote_distribution(votes, to_class, len(classes))


def _check_rows(path: Path, rows: np.ndarray | None, faces: FaceSet) -> None:
    if rows is None or not faces.path or not Path(faces.path).is_file():
        return
    with np.load(faces.path, allow_pickle=False) as data:
        face_rows = data["source_row"] if "source_row" in data.files else None
    if face_rows is not None and not np.array_equal(face_rows, rows):
        raise DataError(f"{path}: source_row differs from {faces.path}: the votes are not "
                        "aligned with these faces")


def blend_targets(labels: np.ndarray, votes: np.ndarray | None, n_classes: int,
                  weight: float) -> np.ndarray:
    """(1 - weight) * one-hot label + weight * vote distribution; the one-hot label alone
    where a face has no vote on any of the classes."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError("the FER+ weight must lie in [0, 1]")
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    if votes is None or weight == 0.0:
        return onehot
    has = votes.sum(axis=1, keepdims=True) > 0
    blended = (1.0 - weight) * onehot + weight * votes
    return np.where(has, blended, onehot).astype(np.float32)
