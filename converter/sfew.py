"""SFEW 2.0 aligned film faces as a cross-domain FaceSet, prepared as the daemon prepares a crop."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from moodbox.converter.data import FER_CLASSES, DataError, FaceSet

logger = logging.getLogger(__name__)

SPLITS = ("all", "train", "val")


def face_to_input(image: np.ndarray, size: int = 48) -> np.ndarray:
    """A BGR(A) or grey crop as the daemon's classifier sees a face: grey by OpenCV's
    BGR-to-grey weights (as `camera/source.py` converts frames), then the whole crop
    resized to size x size, INTER_AREA when shrinking and INTER_LINEAR when growing (as
    `vision/crop.py` resizes). SFEW's crops are already aligned faces (143 x 181, brows to
    chin), so no detector runs and the crop is not squared: squaring it would cut the
    mouth or the brows."""
    import cv2

    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def load_sfew(root: Path, split: str = "all", size: int = 48) -> FaceSet:
    """The labelled SFEW faces under `root` (labels.json: "<split>/<Class>/<name>.png" ->
    FER2013 class name) as uint8 (N, size, size) in FER2013's class order."""
    if split not in SPLITS:
        raise DataError(f"SFEW split must be one of {', '.join(SPLITS)}, not {split!r}")
    labels_path = Path(root) / "labels.json"
    if not labels_path.is_file():
        raise DataError(f"{root}: no labels.json; pass the SFEW folder (labels.json, train/, val/)")
    try:
        labels = json.loads(labels_path.read_text())
    except (ValueError, OSError) as exc:
        raise DataError(f"{labels_path}: not readable JSON ({exc})") from None
    if not isinstance(labels, dict):
        raise DataError(f"{labels_path}: expected an object of image path -> class name")
    names = sorted(k for k in labels if split == "all" or k.startswith(split + "/"))
    return FaceSet(*_read_faces(Path(root), names, labels, size), FER_CLASSES, str(root))


def _read_faces(root: Path, names: list[str], labels: dict, size: int):
    import cv2

    x = np.empty((len(names), size, size), np.uint8)
    y = np.empty(len(names), np.int64)
    for i, name in enumerate(names):
        if labels[name] not in FER_CLASSES:
            raise DataError(f"{root}/labels.json: {name} has class {labels[name]!r}, not one "
                            f"of {', '.join(FER_CLASSES)}")
        image = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{root / name}: missing or not an image")
        x[i], y[i] = face_to_input(image, size), FER_CLASSES.index(labels[name])
    logger.info("read %d SFEW faces from %s", len(names), root)
    return x, y
