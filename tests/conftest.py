"""Shared fixtures: real photos from installed packages, test models, audio capture helpers."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO.parent / "shared" / "data"
SHIPPED_MODEL = REPO / "models" / "emotion_int8.tflite"

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def package_photo(relative: str, package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install -e '.[test]')")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def astronaut() -> Path:
    """A real smiling face (scikit-image's astronaut.png, Eileen Collins, public domain)."""
    return package_photo("data/astronaut.png", "skimage")


@pytest.fixture(scope="session")
def grace_hopper() -> Path:
    """A real portrait (matplotlib's sample_data/grace_hopper.jpg)."""
    return package_photo("mpl-data/sample_data/grace_hopper.jpg", "matplotlib")


@pytest.fixture(scope="session")
def no_face_photo() -> Path:
    """A real photo with no face in it (scikit-image's coffee.png)."""
    return package_photo("data/coffee.png", "skimage")


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    folder = SHARED / "faces"
    if not folder.is_dir():
        pytest.skip("../shared/data/faces is not present (only in the development checkout)")
    return folder


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return DATA / "tiny_int8.tflite"


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    if not SHIPPED_MODEL.is_file():
        pytest.fail(f"{SHIPPED_MODEL} is missing: the product must ship its model")
    return SHIPPED_MODEL


@pytest.fixture()
def moodbox_cmd() -> list[str]:
    """How to start the installed CLI (the console script beside this Python)."""
    from moodbox.probe import moodbox_command

    return moodbox_command()


def pytest_collection_modifyitems(config, items) -> None:
    """Mark what needs TensorFlow `converter`, so `-m "not converter"` is the device-side suite."""
    converter_dir = Path(__file__).resolve().parent / "converter"
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if converter_dir in path.parents or item.name.startswith("test_desktop_bench"):
            item.add_marker(pytest.mark.converter)
