"""The shipped mood classifier: softmax regression on Spotify audio features, numpy inference."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from moodbox import jsonio

logger = logging.getLogger(__name__)

SPOTIFY_FEATURES = ("danceability", "acousticness", "energy", "instrumentalness", "liveness",
                    "valence", "loudness", "speechiness", "tempo")
DEFAULT_MODEL_PATH = Path(__file__).with_name("mood_model.json")
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A mood model file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class MoodModel:
    """Standardise the features, then softmax(z @ weights.T + bias) over the classes."""

    features: tuple[str, ...]
    classes: tuple[str, ...]
    mean: np.ndarray          # (n_features,)
    std: np.ndarray           # (n_features,)
    weights: np.ndarray       # (n_classes, n_features)
    bias: np.ndarray          # (n_classes,)
    l2: float
    info: dict[str, Any] = field(default_factory=dict)   # provenance and validation numbers

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for rows of raw feature values in `features` order."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return softmax(z @ self.weights.T + self.bias)

    def predict(self, x: np.ndarray) -> list[str]:
        """The most probable class name for each row."""
        return [self.classes[i] for i in np.argmax(self.predict_proba(x), axis=1)]

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict (what model_from_dict reads back)."""
        return {"format": FORMAT_VERSION, "features": list(self.features),
                "classes": list(self.classes), "mean": _rounded(self.mean),
                "std": _rounded(self.std), "weights": [_rounded(w) for w in self.weights],
                "bias": _rounded(self.bias), "l2": self.l2, "info": self.info}

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict(), indent=1) + "\n"


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{v:.8g}") for v in np.asarray(values, dtype=np.float64)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _array(doc: dict[str, Any], key: str, shape: tuple[int, ...], source: Path) -> np.ndarray:
    try:
        value = np.asarray(doc[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{source}: '{key}' is missing or not numeric; regenerate it with "
                             "workshop/fit_mood_model.py") from None
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ModelFileError(f"{source}: '{key}' should be {shape} finite numbers, got "
                             f"{value.shape}; regenerate it with workshop/fit_mood_model.py")
    return value


def _is_spotify(features: tuple[str, ...]) -> bool:
    return features == SPOTIFY_FEATURES


def model_from_dict(doc: Any, source: Path,
                    features_ok: Callable[[tuple[str, ...]], bool] = _is_spotify,
                    expected: str = f"features {list(SPOTIFY_FEATURES)}") -> MoodModel:
    """Check a parsed model and build it; every problem names the key.

    By default the features must be the nine Spotify ones; the audio model passes its
    own check (`features_ok`) and a description of what it wants (`expected`).
    """
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise ModelFileError(f"{source}: not a moodbox mood model (format {FORMAT_VERSION}); "
                             "regenerate it with workshop/fit_mood_model.py")
    features, classes = tuple(doc.get("features", ())), tuple(doc.get("classes", ()))
    if not features_ok(features) or len(classes) < 2:
        raise ModelFileError(f"{source}: expected {expected} and two or more classes, got "
                             f"{list(features)}; regenerate it with workshop/fit_mood_model.py")
    n_f, n_c = len(features), len(classes)
    std = _array(doc, "std", (n_f,), source)
    if np.any(std <= 0):
        raise ModelFileError(f"{source}: 'std' must be positive")
    return MoodModel(features, classes, _array(doc, "mean", (n_f,), source), std,
                     _array(doc, "weights", (n_c, n_f), source), _array(doc, "bias", (n_c,), source),
                     float(math.nan if doc.get("l2") is None else doc["l2"]),
                     dict(doc.get("info", {})))


def read_model_json(path: Path, option: str = "--model") -> Any:
    """The parsed JSON of a model file; a missing or unreadable file is a ModelFileError."""
    try:
        return jsonio.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"mood model {path} does not exist; pass {option} with a file "
                             "written by workshop/fit_mood_model.py") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"mood model {path} cannot be read ({exc}); regenerate it with "
                             "workshop/fit_mood_model.py") from None


def load_model(path: Path = DEFAULT_MODEL_PATH) -> MoodModel:
    """Read a mood model JSON file (default: the one shipped beside this module)."""
    return model_from_dict(read_model_json(path), Path(path))
