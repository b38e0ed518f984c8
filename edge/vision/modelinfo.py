"""What a model expects: class names, input size and pixel scaling (the model sidecar)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from moodbox import jsonio
from moodbox import files

from moodbox.vocabulary import EMOTIONS as FER_CLASSES

SCALES = ("unit", "symmetric")


@dataclass(frozen=True)
class ModelInfo:
    """Preprocessing contract between the converter and the edge classifier.

    scale "unit" feeds pixels as p/255 in [0, 1]; "symmetric" as p/127.5 - 1
    in [-1, 1] (what the `fer` package's mini-Xception expects).
    """

    classes: tuple[str, ...] = FER_CLASSES
    input_size: int = 48
    scale: str = "unit"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8, got {self.input_size}")

    def to_float(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> float32 model input values."""
        p = pixels.astype(np.float32)
        return p / 255.0 if self.scale == "unit" else p / 127.5 - 1.0


def sidecar_path(model_path: str | Path) -> Path:
    """models/emotion_int8.tflite -> models/emotion_int8.json"""
    return Path(model_path).with_suffix(".json")


def write_sidecar(model_path: str | Path, info: ModelInfo) -> Path:
    path = sidecar_path(model_path)
    data = asdict(info)
    data["classes"] = list(info.classes)
    path.write_text(jsonio.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_sidecar(model_path: str | Path) -> ModelInfo | None:
    """The sidecar next to a model, or None when there is none.

    Raises ValueError with the file name when the sidecar exists but is broken.
    """
    path = sidecar_path(model_path)
    k = files.kind(path)
    if k == files.MISSING:
        return None
    try:
        data = jsonio.loads(files.read_bounded(path, 1024 * 1024).decode("utf-8"))
        return ModelInfo(classes=tuple(data["classes"]), input_size=int(data["input_size"]),
                         scale=str(data["scale"]), extra=dict(data.get("extra", {})))
    except OSError as exc:
        raise ValueError(f"{path}: model sidecar cannot be read ({files.problem(exc)}); let the "
                         "service user read it or delete it to use the defaults") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: broken model sidecar ({exc}); re-run moodbox-convert "
                         "convert or delete the file to use the defaults") from None
