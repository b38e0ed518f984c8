"""Teacher soft labels for distillation: flip- and ensemble-averaged probabilities, with provenance."""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodbox.converter.data import DataError, FaceSet

logger = logging.getLogger(__name__)

FORMAT = "moodbox-soft-labels/1"


def faces_sha1(faces: FaceSet) -> str:
    """One hash of all pixels in order: soft labels belong to exactly this face array."""
    return hashlib.sha1(np.ascontiguousarray(faces.x).tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SoftLabels:
    """Teacher probabilities (temperature 1) for every train face, and for val faces if given.

    Each row is the mean, over the teachers and over the face and its mirror image, of
    the teachers' softmax outputs. A student softens them at temperature T itself
    (`soften`), so one file serves every T.
    """

    train_probs: np.ndarray  # float32 (N_train, classes)
    classes: tuple[str, ...]
    train_sha1: str
    val_probs: np.ndarray | None = None
    val_sha1: str = ""
    provenance: dict = field(default_factory=dict)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): the distribution a teacher with logits log(p) gives at T."""
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    q = np.exp(logp)
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def save_soft_labels(path: Path, labels: SoftLabels) -> None:
    arrays = {"format": np.array(FORMAT), "train_probs": labels.train_probs.astype(np.float32),
              "classes": np.array(labels.classes), "train_sha1": np.array(labels.train_sha1),
              "temperature": np.array(1.0), "flip_averaged": np.array(True)}
    if labels.val_probs is not None:
        arrays["val_probs"] = labels.val_probs.astype(np.float32)
        arrays["val_sha1"] = np.array(labels.val_sha1)
    for key, value in labels.provenance.items():
        arrays[f"meta_{key}"] = np.asarray(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    from moodbox import files

    fd, tmp = files.temp_beside(path)  # exclusive: never through a planted symlink
    with os.fdopen(fd, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.chmod(tmp, 0o644)
    tmp.replace(path)


def read_soft_labels(path: Path) -> SoftLabels:
    """Read a soft-label NPZ without checking it against any face set."""
    if not path.is_file():
        raise DataError(f"{path}: no such soft-label file; make one with "
                        "moodbox-convert soft-labels")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "train_probs" not in data.files or "train_sha1" not in data.files:
                raise DataError(f"{path}: not a soft-label NPZ (no train_probs/train_sha1); "
                                "make one with moodbox-convert soft-labels")
            meta = {k[5:]: data[k].tolist() for k in data.files if k.startswith("meta_")}
            return SoftLabels(
                train_probs=data["train_probs"], classes=tuple(str(c) for c in data["classes"]),
                train_sha1=str(data["train_sha1"]),
                val_probs=data["val_probs"] if "val_probs" in data.files else None,
                val_sha1=str(data["val_sha1"]) if "val_sha1" in data.files else "",
                provenance=meta)
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, KeyError ...
        raise DataError(f"{path}: not a readable soft-label NPZ ({exc})") from None


def _check_probs(path: Path, probs: np.ndarray, faces: FaceSet, sha1: str, split: str) -> None:
    k = len(faces.classes)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise DataError(f"{path}: {split} soft labels have shape {probs.shape}, expected "
                        f"({len(faces)}, {k}) for {k} classes")
    if len(probs) != len(faces):
        raise DataError(f"{path}: {len(probs)} {split} soft labels but {faces.path or split} has "
                        f"{len(faces)} faces; remake them with moodbox-convert soft-labels")
    if sha1 and sha1 != faces_sha1(faces):
        raise DataError(f"{path}: {split} soft labels were made for other faces than "
                        f"{faces.path or split} (pixel hash differs); remake them")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise DataError(f"{path}: {split} soft labels contain negative or non-finite values")
    sums = probs.sum(axis=1, dtype=np.float64)
    if len(sums) and np.abs(sums - 1.0).max() > 1e-3:
        raise DataError(f"{path}: {split} soft labels are not probabilities (row sums "
                        f"{sums.min():.3g} to {sums.max():.3g}, expected 1); if these are "
                        "logits, store softmax(logits) instead")


def load_soft_labels(path: Path, train: FaceSet, val: FaceSet | None = None) -> SoftLabels:
    """Read soft labels and check they belong to these faces (count, classes, pixel hash)."""
    labels = read_soft_labels(path)
    if labels.classes != tuple(train.classes):
        raise DataError(f"{path}: soft labels are for {len(labels.classes)} classes "
                        f"({', '.join(labels.classes)}) but the faces have {len(train.classes)}")
    _check_probs(path, labels.train_probs, train, labels.train_sha1, "train")
    if val is not None and labels.val_probs is not None:
        _check_probs(path, labels.val_probs, val, labels.val_sha1, "val")
    return labels


def _keras_probabilities(model_path: Path, faces: FaceSet, batch_size: int = 256
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(one view, mirror view) softmax probabilities of a float Keras teacher."""
    from moodbox.converter.convert import (ConvertSettings, _with_softmax, faces_to_input,
                                           load_keras_model, model_info_for)

    model = load_keras_model(model_path)
    info = model_info_for(model, model_path, ConvertSettings())
    if tuple(info.classes) != tuple(faces.classes):
        raise DataError(f"{model_path}: teacher classes {info.classes} differ from the "
                        f"faces' {faces.classes}")
    probs_model = _with_softmax(model)
    x = faces_to_input(faces.x, info)
    plain = probs_model.predict(x, batch_size=batch_size, verbose=0)
    mirror = probs_model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)
    return plain.astype(np.float32), mirror.astype(np.float32)


@dataclass
class TeacherReport:
    """What one teacher (or the ensemble) scores on val: one view and flip-averaged."""

    name: str
    accuracy: float
    accuracy_flip: float


def _teacher_views(path: Path, train: FaceSet, val: FaceSet | None):
    """One teacher's flip-averaged train probabilities, and its val probabilities one
    view and flip-averaged (None without val). An NPZ teacher has flip-averaged ones only."""
    if path.suffix == ".npz":
        given = load_soft_labels(path, train, val)
        if val is not None and given.val_probs is None:
            raise DataError(f"{path}: has no val soft labels, but --val was given")
        return given.train_probs, given.val_probs, given.val_probs
    plain, mirror = _keras_probabilities(path, train)
    if val is None:
        return (plain + mirror) / 2, None, None
    val_plain, val_mirror = _keras_probabilities(path, val)
    return (plain + mirror) / 2, val_plain, (val_plain + val_mirror) / 2


def make_soft_labels(teachers: list[Path], train: FaceSet, val: FaceSet | None = None,
                     ) -> tuple[SoftLabels, list[TeacherReport]]:
    """Average the teachers' probabilities over face + mirror and over teachers.

    A teacher is a float Keras model (.keras/.h5), or a soft-label NPZ made elsewhere
    (e.g. by a PyTorch teacher on a GPU machine) for exactly these faces. With val, the
    reports give each teacher's and the ensemble's val accuracy (the last report).
    """
    if not teachers:
        raise ValueError("give at least one --teacher")
    train_probs, val_plain, val_flip, reports = [], [], [], []
    for path in teachers:
        t0 = time.time()
        train_avg, plain, flip = _teacher_views(path, train, val)
        train_probs.append(train_avg)
        if val is not None:
            val_plain.append(plain)
            val_flip.append(flip)
            reports.append(TeacherReport(str(path), float(np.mean(plain.argmax(1) == val.y)),
                                         float(np.mean(flip.argmax(1) == val.y))))
            logger.info("teacher %s: val %.4f one view, %.4f flip-averaged (%.0f s)", path,
                        reports[-1].accuracy, reports[-1].accuracy_flip, time.time() - t0)
    labels = SoftLabels(train_probs=np.mean(train_probs, axis=0).astype(np.float32),
                        classes=tuple(train.classes), train_sha1=faces_sha1(train))
    labels.provenance = {
        "teachers": [str(p) for p in teachers],
        "teacher_sha256": [file_sha256(p) for p in teachers],
        "train_data": train.path, "val_data": val.path if val is not None else "",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "mean over teachers of the mean over face and horizontal mirror of each "
                "teacher's softmax (temperature 1); the student softens them as "
                "softmax(log(p) / T)",
    }
    if val is not None:
        labels.val_probs = np.mean(val_flip, axis=0).astype(np.float32)
        labels.val_sha1 = faces_sha1(val)
        reports.append(TeacherReport(
            "ensemble", float(np.mean(np.mean(val_plain, axis=0).argmax(1) == val.y)),
            float(np.mean(labels.val_probs.argmax(1) == val.y))))
        labels.provenance.update(
            teacher_val_accuracy=[r.accuracy for r in reports[:-1]],
            teacher_val_accuracy_flip=[r.accuracy_flip for r in reports[:-1]],
            ensemble_val_accuracy=reports[-1].accuracy,
            ensemble_val_accuracy_flip=reports[-1].accuracy_flip)
    return labels, reports
