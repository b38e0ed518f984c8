"""FER2013-style NPZ face sets: loading, checking and duplicate detection."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodbox.vocabulary import EMOTIONS as FER_CLASSES


class DataError(Exception):
    """An NPZ file that is missing or not in the expected format."""


@dataclass(frozen=True)
class FaceSet:
    """Greyscale faces `x` (N, H, W) uint8 with labels `y` (N,) and class names."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    path: str = ""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: np.ndarray) -> "FaceSet":
        return FaceSet(self.x[index], self.y[index], self.classes, self.path)


def load_npz(path: str | Path) -> FaceSet:
    """Load and check an NPZ with `x` uint8 (N,H,W), `y` int labels, `classes` names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass an NPZ with arrays x, y and classes")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; "
                                "expected x uint8 (N,48,48), y labels, classes names")
            x, y = data["x"], data["y"]
            classes = tuple(str(c) for c in data["classes"]) if "classes" in data.files else FER_CLASSES
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{path}: x must be uint8 (N,H,W) greyscale, got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y must be one label per face, got shape {y.shape} for {len(x)} faces")
    if len(x) and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"{path}: labels must lie in 0..{len(classes) - 1} ({len(classes)} classes)")
    return FaceSet(x, y.astype(np.int64), classes, str(path))


def image_hashes(x: np.ndarray) -> list[str]:
    """A content hash per image, to find exact duplicates across splits."""
    return [hashlib.sha1(img.tobytes()).hexdigest() for img in x]


def overlap_mask(candidates: FaceSet, reference: FaceSet) -> np.ndarray:
    """True where a candidate image is an exact pixel copy of some reference image."""
    seen = set(image_hashes(reference.x))
    return np.array([h in seen for h in image_hashes(candidates.x)], dtype=bool)


def save_npz(path: str | Path, x: np.ndarray, y: np.ndarray,
             classes: tuple[str, ...] = FER_CLASSES) -> None:
    np.savez_compressed(path, x=x.astype(np.uint8), y=np.asarray(y), classes=np.array(classes))


def synthetic_faces(n: int, size: int = 48, seed: int = 0, classes: int = 7) -> FaceSet:
    """Learnable stand-in faces for tests: class k is a grating at k * 90/(classes-1)
    degrees (0..90) with random phase, contrast and noise. A horizontal flip turns
    angle a into 180-a, which no other class uses, so the training augmentation keeps
    the classes apart. uint8, balanced."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    x = np.empty((n, size, size), dtype=np.uint8)
    for i, k in enumerate(y):
        angle = (np.pi / 2) * k / max(1, classes - 1)
        wave = np.sin(2 * np.pi * 5.0 * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        img = 128 + rng.uniform(40, 90) * wave + rng.normal(0, 10, (size, size))
        x[i] = np.clip(img, 0, 255).astype(np.uint8)
    names = FER_CLASSES[:classes] if classes <= 7 else tuple(map(str, range(classes)))
    return FaceSet(x, y.astype(np.int64), names)
