"""Helpers for tests: tone tracks, reading SDL disk-audio captures, running the CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from moodbox.probe import moodbox_command

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO.parent / "shared" / "data"


def write_tone(path: Path, freq: float, seconds: float, rate: int = 44100, amp: float = 0.5) -> Path:
    """A sine tone as 16-bit mono WAV (or OGG if the suffix says so and soundfile exists)."""
    t = np.arange(int(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    if path.suffix == ".ogg":
        sf = pytest.importorskip("soundfile")
        sf.write(str(path), x.astype(np.float32), rate, format="OGG", subtype="VORBIS")
        return path
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


def read_capture(path: Path, rate: int = 44100) -> np.ndarray:
    """What SDL's disk driver wrote: 16-bit stereo -> float mono in [-1, 1]."""
    raw = np.frombuffer(path.read_bytes(), dtype="<i2") if path.exists() else np.zeros(0, "<i2")
    raw = raw[: len(raw) - len(raw) % 2].reshape(-1, 2).astype(np.float32) / 32768.0
    return raw.mean(axis=1)


def dominant_freq(x: np.ndarray, rate: int = 44100) -> float:
    if len(x) < 256:
        return 0.0
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / rate)[int(np.argmax(spec))])


def rms_windows(x: np.ndarray, window: int = 2205) -> np.ndarray:
    n = len(x) // window
    return np.sqrt((x[: n * window].reshape(n, window) ** 2).mean(axis=1)) if n else np.zeros(0)


def run_cli(args: list[str], timeout: float = 120, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([*moodbox_command(), *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or REPO)


TONES = {"angry": 300, "disgust": 350, "fear": 400, "happy": 880, "sad": 440, "surprise": 600,
         "neutral": 500, "favourites": 250}


def control_socket_path(tmp_path: Path) -> str:
    """tmp_path/ctl.sock, or a short /tmp path when that is too long for a Unix socket."""
    path = str(tmp_path / "ctl.sock")
    if len(path) > 100:
        import tempfile

        path = str(Path(tempfile.mkdtemp(prefix="mbx")) / "ctl.sock")
    return path


def make_setup(tmp_path: Path, photo: Path, **overrides) -> Path:
    """A config with one tone playlist per emotion and a replay folder of `photo`."""
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(photo, frames / f"face{photo.suffix}")
    playlists = {}
    for name, hz in TONES.items():
        (tmp_path / name).mkdir()
        write_tone(tmp_path / name / f"{name}.wav", hz, 8.0)
        playlists[name] = {"sources": [name]}
    cfg = {
        "camera": {"type": "replay", "path": "frames", "fps": 10},
        "classifier": {"model": str(REPO / "models" / "emotion_int8.tflite")},
        "mood": {"smoothing_s": 0.3, "dwell_s": 0.6, "min_confidence": 0.0,
                 "min_switch_interval_s": 0.0, "away_after_s": 5.0,
                 "map": {e: e for e in TONES if e != "favourites"}},
        "player": {"fade_ms": 200, "away": "stop", "volume": 0.8},
        "playlists": playlists,
        "daemon": {"status_every_s": 1.0},
        # its own control socket: never a shared default path between test runs
        "control": {"socket": control_socket_path(tmp_path)},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        cfg.setdefault(section, {})[field] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def golden_faces():
    """(name, 48x48 face) pairs: each photo's face as the shipped pipeline finds and crops
    it for stills (the default detector, its framing), and its mirror image."""
    import dataclasses

    from moodbox import assets
    from moodbox.config import FacesConfig
    from moodbox.vision.crop import crop_face
    from moodbox.vision.detector import make_detector
    from moodbox.commands.classify import STILL_DETECT_WIDTH, read_grey

    cfg = FacesConfig()
    cfg = dataclasses.replace(cfg, detect_width=STILL_DETECT_WIDTH[cfg.detector], roi=False)
    photos = [p for p in assets.demo_photos() if p.name != "coffee.png"]
    det = make_detector(cfg)
    for photo in photos:
        det.reset()
        grey = read_grey(photo)
        box = det.detect(grey)[0]
        face = crop_face(grey, box, cfg.margin, 48, det.framing)
        yield f"{photo.name}", face, box
        yield f"{photo.name} (mirrored)", face[:, ::-1].copy(), box


def write_face_sets(folder: Path, **splits: tuple[int, int]) -> Path:
    """Generated FER-style NPZs in folder, one per split: name=(faces, seed), e.g.
    write_face_sets(d, train=(3500, 11), val=(700, 12)) writes train.npz and val.npz."""
    from moodbox.converter.data import save_npz, synthetic_faces

    for name, (n, seed) in splits.items():
        faces = synthetic_faces(n, seed=seed)
        save_npz(folder / f"{name}.npz", faces.x, faces.y)
    return folder


def write_sfew_folder(root: Path, per_split: dict[str, int], shape: tuple[int, int] = (181, 143),
                      seed: int = 0) -> Path:
    """An SFEW-style folder of random colour crops: labels.json mapping
    "<split>/<Class>/clip_NNN.png" to its class, face i of a split in class i % 7."""
    import json

    import cv2

    from moodbox.converter.data import FER_CLASSES

    rng = np.random.default_rng(seed)
    labels = {}
    for split, n in per_split.items():
        for i in range(n):
            cls = FER_CLASSES[i % 7]
            rel = f"{split}/{cls.title()}/clip_{i:03d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / rel), rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
            labels[rel] = cls
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def convert_command() -> str:
    """The moodbox-convert console script beside this python, else the test is skipped."""
    import sys

    exe = shutil.which("moodbox-convert", path=str(Path(sys.executable).parent))
    if not exe:
        pytest.skip("the moodbox-convert console script is not installed beside this python")
    return exe


def wait_until(check, timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; a last look at the end."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    return bool(check())
