"""Where the files shipped with moodbox live: model, demo playlists, default config, demo photos."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
# Running from a source checkout (editable install or PYTHONPATH): use its top-level
# models/, playlists/ and config.yaml; an installed package uses its bundled copies.
_CHECKOUT = (_REPO / "setup.py").is_file() and (_REPO / "edge" / "vocabulary.py").is_file()
BUILTIN_PREFIX = "builtin:"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _first_existing(*candidates: Path | None) -> Path | None:
    for c in candidates:
        if c is not None and c.exists():
            return c
    return None


def models_dir() -> Path:
    """models/ of a source checkout, else the copy installed in the moodbox package."""
    found = _first_existing(_REPO / "models" if _CHECKOUT else None,
                            _safe_package_dir("moodbox.bundled_models"))
    return found or _REPO / "models"


def playlists_dir() -> Path:
    found = _first_existing(_REPO / "playlists" if _CHECKOUT else None,
                            _safe_package_dir("moodbox.bundled_playlists"))
    return found or _REPO / "playlists"


def default_model() -> Path:
    return models_dir() / "emotion_int8.tflite"


def default_config() -> Path:
    """config.yaml of a source checkout, else the copy installed with the package."""
    found = _first_existing(_REPO / "config.yaml" if _CHECKOUT else None,
                            Path(__file__).resolve().parent / "default_config.yaml")
    return found or _REPO / "config.yaml"


def _safe_package_dir(package: str) -> Path | None:
    try:
        return _package_dir(package)
    except (ImportError, ValueError):
        return None


def resolve_builtin(value: str) -> Path | None:
    """'builtin:models/x' -> the shipped file; None when `value` has no builtin: prefix."""
    if not value.startswith(BUILTIN_PREFIX):
        return None
    rest = value[len(BUILTIN_PREFIX):].lstrip("/")
    head, _, tail = rest.partition("/")
    roots = {"models": models_dir(), "playlists": playlists_dir()}
    if head in roots:
        return roots[head] / tail if tail else roots[head]
    return _REPO / rest


def demo_photos() -> list[Path]:
    """Real face photographs shipped by the demo extra's packages (matplotlib, scikit-image),
    in demo order: a smiling face, a no-face photo, a neutral face. Missing ones are left out."""
    found = []
    mpl = _safe_package_dir("matplotlib")
    sk = _safe_package_dir("skimage")
    for base, rel in ((sk, "data/astronaut.png"), (sk, "data/coffee.png"),
                      (mpl, "mpl-data/sample_data/grace_hopper.jpg")):
        if base is not None and (base / rel).is_file():
            found.append(base / rel)
    return found
