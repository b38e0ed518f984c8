"""Issue 12's fault classes, each injected with real parts: files of the owner's that must
survive, unreadable folders, FIFOs, /dev/zero, NaN, huge images, early signals."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, make_setup, write_tone

CLI = [sys.executable, "-m", "moodbox.commands.cli"]


def run_cli(args: list[str], cwd: Path, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1")
    full.pop("SDL_DISKAUDIOFILE", None)
    full.update(env)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=full)


def no_traceback(r: subprocess.CompletedProcess) -> bool:
    return "Traceback" not in r.stdout + r.stderr


# ------------------------------------------------------------------ 1-2: data loss

def _one_track_catalog(tmp_path: Path) -> Path:
    pd = pytest.importorskip("pandas")
    from moodbox.catalog.table import write_catalog

    track = write_tone(tmp_path / "song.wav", 440, 1.0)
    row = {"path": str(track), "size": track.stat().st_size, "mtime_ns": track.stat().st_mtime_ns,
           "format": "wav", "duration_s": 1.0, "title": "Song", "artist": "Band",
           "analysed_s": 1.0, "loudness_db": -20.0, "tempo_bpm": 90.0, "error": ""}
    catalog = tmp_path / "catalog.csv"
    write_catalog(pd.DataFrame([row]), catalog)
    return catalog


def test_catalog_assign_never_replaces_a_hand_made_playlist(tmp_path):
    from moodbox.catalog import cli

    catalog = _one_track_catalog(tmp_path)
    out = tmp_path / "playlists"
    out.mkdir()
    mine = "#EXTM3U\n/music/my favourite.ogg\n"
    (out / "happy.m3u").write_text(mine)
    (out / "moods.csv").write_text("my,own,table\n")
    args = ["catalog", "assign", "--catalog", str(catalog), "--out", str(out)]
    r = run_cli(args, tmp_path)
    assert r.returncode == 2 and no_traceback(r)
    assert "happy.m3u" in r.stderr and "--force" in r.stderr
    assert (out / "happy.m3u").read_text() == mine            # nothing written at all
    assert (out / "moods.csv").read_text() == "my,own,table\n"
    assert not (out / "sad.m3u").exists()
    # a fresh folder: written, marked; a second assign may replace its own files
    fresh = tmp_path / "fresh"
    assert cli.main(["catalog", "assign", "--catalog", str(catalog), "--out", str(fresh)]) == 0
    lines = (fresh / "calm.m3u").read_text().splitlines()
    assert lines[0] == "#EXTM3U" and "written by moodbox catalog assign" in lines[1]
    assert cli.main(["catalog", "assign", "--catalog", str(catalog), "--out", str(fresh)]) == 0
    # --force replaces the owner's files, as asked
    assert cli.main([*args, "--force"]) == 0
    assert "written by moodbox catalog assign" in (out / "happy.m3u").read_text()


def test_audio_file_refuses_a_file_it_did_not_write_and_a_missing_folder(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    precious = tmp_path / "take.wav"
    precious.write_bytes(b"RIFF precious recording")
    beside = tmp_path / "take.raw"
    beside.write_bytes(b"unrelated raw data")
    r = run_cli(["run", "--config", str(config), "--audio-file", str(precious), "--duration", "1"],
                tmp_path)
    assert r.returncode == 78 and no_traceback(r)
    assert "take.wav already exists and was not written by moodbox" in r.stdout + r.stderr
    assert precious.read_bytes() == b"RIFF precious recording"
    assert beside.read_bytes() == b"unrelated raw data"

    r = run_cli(["run", "--config", str(config), "--audio-file", str(tmp_path / "no" / "a.wav"),
                 "--duration", "1"], tmp_path)
    assert r.returncode == 78 and no_traceback(r)
    assert f"the folder {tmp_path / 'no'} does not exist" in r.stdout + r.stderr


def test_audio_file_writes_through_its_own_temp_file(tmp_path, astronaut):
    import wave

    config = make_setup(tmp_path, astronaut)
    beside = tmp_path / "out.raw"
    beside.write_bytes(b"unrelated raw data")
    target = tmp_path / "out.wav"
    for _ in range(2):           # the second run replaces the file the first one wrote
        r = run_cli(["run", "--config", str(config), "--audio-file", str(target),
                     "--duration", "3"], tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        with wave.open(str(target)) as w:
            assert w.getnchannels() == 2 and w.getnframes() > 0
    assert beside.read_bytes() == b"unrelated raw data"
    assert not [p for p in tmp_path.iterdir() if "moodbox-tmp" in p.name]


# ------------------------------------------------------------------ 3: PermissionError

def as_nobody(func, *args):
    """func(*args) in a forked child running as nobody (root's override dropped); its
    return value (picklable) or its exception text comes back. Skips where impossible."""
    import pickle
    import traceback

    if os.geteuid() != 0:
        return func(*args)     # already unprivileged: permissions apply as they are
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.close(read_fd)
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            out = ("ok", func(*args))
        except BaseException:  # noqa: BLE001
            out = ("error", traceback.format_exc())
        with os.fdopen(write_fd, "wb") as f:
            f.write(pickle.dumps(out))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "error":
        if "setres" in value and "PermissionError" in value:
            pytest.skip("cannot drop privileges here")
        raise AssertionError(value)
    return value


@pytest.fixture()
def open_dir():
    """A folder everyone may enter (pytest's tmp_path is root-only), removed afterwards."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="moodbox-perm-"))
    d.chmod(0o755)
    yield d
    for p in d.rglob("*"):
        try:
            p.chmod(0o755)
        except OSError:
            pass
    shutil.rmtree(d, ignore_errors=True)


def _private_home_setup(root: Path) -> tuple[Path, Path]:
    """A config whose playlist lives under a mode-0700 'home' (the README's Bookworm case),
    beside a music folder with one unreadable subfolder."""
    music = root / "music"
    (music / "open").mkdir(parents=True)
    (music / "locked").mkdir()
    write_tone(music / "open" / "a.wav", 440, 0.5)
    write_tone(music / "locked" / "b.wav", 550, 0.5)
    home = root / "home" / "pi"
    (home / "Music").mkdir(parents=True)
    write_tone(home / "Music" / "c.wav", 660, 0.5)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (music / "locked").chmod(0o700)
    home.chmod(0o700)
    good = root / "good.yaml"
    good.write_text(f"playlists:\n  favourites: [{music}]\n")
    bad = root / "bad.yaml"
    bad.write_text(f"playlists:\n  favourites: [{music}]\n  mine: [{home / 'Music'}]\n")
    for p in (good, bad):
        p.chmod(0o644)
    return good, bad


def _load_as_user(good: Path, bad: Path):
    from moodbox.audio.playlists import load_playlists
    from moodbox.config import ConfigError, load_config

    lists = load_playlists(load_config(good).playlists)["favourites"]
    try:
        load_config(bad)
        error = ""
    except ConfigError as exc:
        error = str(exc)
    return [t.name for t in lists.tracks], [(str(s.path), s.reason) for s in lists.skipped], error


def test_unreadable_folders_are_named_and_never_raise(open_dir):
    good, bad = _private_home_setup(open_dir)
    tracks, skipped, error = as_nobody(_load_as_user, good, bad)
    assert tracks == ["a.wav"]                   # the readable part of the folder stays
    assert skipped == [(str(open_dir / "music" / "locked"), skipped[0][1])]
    assert "cannot list folder" in skipped[0][1]
    assert f"permission denied on {open_dir / 'home' / 'pi'} (mode 0700" in error
    assert "playlists.mine.sources[0]" in error


def _check_as_user(config: Path) -> tuple[int, str]:
    import contextlib
    import io

    from moodbox.commands.check import run_check

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_check(config)
    return code, out.getvalue()


def test_check_reports_an_unreachable_playlist_without_a_traceback(open_dir):
    _, bad = _private_home_setup(open_dir)
    code, text = as_nobody(_check_as_user, bad)
    assert code == 78 and "permission denied on" in text and "[FAIL] config" in text


def _daemon_reload_as_user(root: Path, config: Path, bad: Path) -> tuple[int | None, bool, str]:
    import logging
    import time as t

    from fakes import FakeAudio
    from moodbox.daemon import Daemon
    import threading

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logging.getLogger("moodbox").addHandler(Keep())
    d = Daemon(config, duration_s=30, backend_factory=lambda c: FakeAudio(), hard_exit=False)
    result: dict = {}
    th = threading.Thread(target=lambda: result.setdefault("code", d.run()), daemon=True)
    th.start()
    end = t.monotonic() + 20
    while t.monotonic() < end and not any("moodbox running" in r for r in records):
        t.sleep(0.05)
    config.write_bytes(bad.read_bytes())  # the owner edits the config to point under a private home...
    d.request_reload()    # ...and runs `systemctl reload moodbox`
    while t.monotonic() < end and not any("reload rejected" in r for r in records):
        t.sleep(0.05)
    t.sleep(0.5)
    alive = th.is_alive()
    d.request_stop()
    th.join(10)
    return result.get("code"), alive, "\n".join(records)


def test_sighup_reload_to_an_unreachable_playlist_is_rejected(open_dir, astronaut):
    import shutil as sh

    import cv2
    import yaml

    good, bad = _private_home_setup(open_dir)
    frames = open_dir / "frames"
    frames.mkdir()
    sh.copy(astronaut, frames / "face.png")
    cascade = open_dir / "faces.xml"
    sh.copy(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml", cascade)
    base = {"camera": {"type": "replay", "path": str(frames), "fps": 10},
            "faces": {"cascade": str(cascade)},
            "classifier": {"model": str(REPO / "models" / "emotion_int8.tflite")}}
    for path in (good, bad):
        path.write_text(yaml.safe_dump({**base, **yaml.safe_load(path.read_text())}))
    config = open_dir / "config.yaml"
    sh.copy(good, config)
    for p in open_dir.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    config.chmod(0o666)
    frames.chmod(0o755)
    import moodbox.daemon  # noqa: F401 (imports done here: the child cannot read root's site-packages)
    import moodbox.vision.haar  # noqa: F401
    import moodbox.control.socket  # noqa: F401,F811
    from moodbox.vision.classifier import load_interpreter_class
    load_interpreter_class()
    code, alive, log = as_nobody(_daemon_reload_as_user, open_dir, config, bad)
    assert alive, log
    assert "reload rejected, keeping the running config" in log and "permission denied on" in log
    assert code == 0 and "Traceback" not in log


# ------------------------------------------------------------------ 4: NaN, inf, 22:00

def _float_keys() -> list[tuple[str, ...]]:
    import dataclasses
    import typing

    from moodbox.config import schema

    keys = []

    def walk(cls: type, prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("source", "playlists"):
                continue
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], prefix + (f.name,))
            elif hints[f.name] is float:
                keys.append(prefix + (f.name,))

    walk(schema.Config, ())
    keys.append(("playlists", "favourites", "volume"))
    keys.append(("playlists", "favourites", "weight"))
    return keys


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_every_float_key_rejects_non_finite_numbers(tmp_path, value):
    from moodbox.config import ConfigError, load_config

    keys = _float_keys()
    assert len(keys) >= 20 and ("player", "max_volume") in keys and ("mood", "dwell_s") in keys
    for key in keys:
        doc: dict = {"playlists": {"favourites": {"sources": [str(tmp_path)]}}}
        node = doc
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = "@@"
        import yaml
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc).replace("'@@'", value))
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "c.yaml")
        assert any(e.startswith(".".join(key) + ": must be a finite number") for e in info.value.errors), \
            (key, info.value.errors)


def test_unquoted_time_is_explained(tmp_path):
    from moodbox.config import ConfigError, load_config

    (tmp_path / "c.yaml").write_text(f"player:\n  quiet_hours:\n    start: 22:00\n"
                                     f"playlists:\n  favourites: [{tmp_path}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml")
    (err,) = info.value.errors
    assert "YAML reads an unquoted 22:00 as the number 1320" in err and '"22:00"' in err


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    from moodbox.config import ConfigError, load_config

    (tmp_path / "c.yaml").write_text(f"player:\n  volume: 0.2\n  volume: 0.9\n"
                                     f"playlists:\n  favourites: [{tmp_path}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml")
    assert "duplicate key 'volume' (first at line 2)" in info.value.errors[0]
    assert info.value.errors[0].startswith("line 3")


# ------------------------------------------------------------------ 5: bounded reads

def test_fifo_and_dev_zero_playlists_are_refused_at_once(tmp_path):
    import time

    from moodbox.audio.playlists import collect

    fifo = tmp_path / "pipe.m3u"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.m3u"
    zero.symlink_to("/dev/zero")
    track_fifo = tmp_path / "track.ogg"
    os.mkfifo(track_fifo)
    t0 = time.monotonic()
    tracks, skipped = collect((fifo, zero, track_fifo))
    assert time.monotonic() - t0 < 2.0 and tracks == []
    reasons = {s.path.name: s.reason for s in skipped}
    assert "FIFO" in reasons["pipe.m3u"] and "device" in reasons["zero.m3u"]
    assert "FIFO" in reasons["track.ogg"] or "not a regular file" in reasons["track.ogg"]


def test_daemon_with_a_fifo_playlist_starts_and_stops(tmp_path, astronaut):
    import yaml

    config = make_setup(tmp_path, astronaut)
    os.mkfifo(tmp_path / "pipe.m3u")
    cfg = yaml.safe_load(config.read_text())
    cfg["playlists"]["favourites"]["sources"].append("pipe.m3u")
    config.write_text(yaml.safe_dump(cfg))
    r = run_cli(["run", "--config", str(config), "--duration", "2"], tmp_path, timeout=60)
    assert r.returncode == 0 and no_traceback(r), r.stdout + r.stderr
    assert "a FIFO (named pipe), not a regular file" in r.stdout


def test_huge_or_headerless_model_is_refused_before_it_is_read(tmp_path):
    import time

    from moodbox.vision.classifier import EmotionClassifier, ModelError

    big = tmp_path / "big.tflite"
    with open(big, "wb") as f:           # sparse: 3 GB on paper, nothing on disk
        f.write(b"\0\0\0\0TFL3")
        f.truncate(3 * 1024 ** 3)
    noheader = tmp_path / "noheader.tflite"
    with open(noheader, "wb") as f:
        f.truncate(3 * 1024 ** 3)
    for path, words in ((big, "is too large (3072 MiB"), (noheader, "is not a TFLite model")):
        t0 = time.monotonic()
        with pytest.raises(ModelError) as info:
            EmotionClassifier(path)
        assert words in str(info.value) and time.monotonic() - t0 < 1.0
    with pytest.raises(ModelError, match="not a file"):
        EmotionClassifier(tmp_path)


def test_an_xml_that_is_not_a_cascade_is_a_detector_error(tmp_path):
    from moodbox.config import FacesConfig
    from moodbox.vision.detector import DetectorError
    from moodbox.vision.haar import HaarDetector

    xml = tmp_path / "faces.xml"
    xml.write_text('<?xml version="1.0"?>\n<root><a>1</a></root>\n')
    with pytest.raises(DetectorError, match="could not be loaded"):
        HaarDetector(FacesConfig(cascade=str(xml)))
    os.mkfifo(tmp_path / "pipe.xml")
    with pytest.raises(DetectorError, match="is not a file"):
        HaarDetector(FacesConfig(cascade=str(tmp_path / "pipe.xml")))


# ------------------------------------------------------------------ 6: images in classify

def _png_header(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A real PNG signature and IHDR chunk (with its CRC) declaring this size."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_image_size_is_checked_before_decoding(tmp_path):
    import resource

    import cv2
    import numpy as np

    from moodbox.images import ImageError, image_size, read_grey

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((30, 40), np.uint8))
    cv2.imwrite(str(tmp_path / "small.jpg"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "small.bmp"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "small.tif"), np.zeros((30, 40), np.uint8))
    cv2.imwrite(str(tmp_path / "small.webp"), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "small.pgm"), np.zeros((30, 40), np.uint8))
    for ext in ("png", "jpg", "bmp", "tif", "webp", "pgm"):
        assert image_size((tmp_path / f"small.{ext}").read_bytes()) == (40, 30), ext
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header(20000, 20000, 16) + small.read_bytes()[33:])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match="20000x20000 pixels is above the 40-megapixel limit"):
        read_grey(huge)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert read_grey(small).shape == (30, 40)


def test_classify_reports_each_bad_file_and_goes_on(tmp_path, astronaut):
    import json
    import shutil

    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header(20000, 20000) + b"\0" * 1000)
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "folder.png").mkdir()
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")   # not valid UTF-8
    shutil.copy(astronaut, odd)
    args = [os.fsencode(a) for a in (*CLI, "classify", "--json", str(huge), str(tmp_path / "pipe.png"),
                                     str(tmp_path / "folder.png"))] + [odd, os.fsencode(astronaut)]
    r = subprocess.run(args, capture_output=True, timeout=120, cwd=tmp_path,
                       env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 5
    assert "20000x20000 pixels" in records[0]["error"]
    assert "FIFO" in records[1]["error"]
    assert "is a folder, not an image" in records[2]["error"]
    assert records[3]["image"].endswith("caf\ufffd.png") and records[3]["faces"]
    assert records[4]["faces"] and "error" not in records[4]


def test_a_single_image_as_source_is_replayed(tmp_path, astronaut):
    from moodbox.camera import make_source
    from moodbox.config import CameraConfig

    source = make_source(CameraConfig(fps=50), str(astronaut))
    source.open()
    try:
        frames = [source.read(1.0).grey for _ in range(3)]
    finally:
        source.close()
    assert all(f.shape == frames[0].shape and f.shape[1] <= 320 for f in frames)


# ------------------------------------------------------------------ 7: early signals

def _start(config: Path, tmp_path: Path) -> tuple[subprocess.Popen, list[str]]:
    import threading

    env = dict(os.environ, SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*CLI, "run", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                     daemon=True).start()
    return proc, lines


def _wait_for(lines: list[str], text: str, timeout: float = 30.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(text in line for line in lines):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGINT"])
def test_a_signal_during_start_up_is_honoured_after_it(tmp_path, astronaut, sig):
    import signal

    config = make_setup(tmp_path, astronaut)
    proc, lines = _start(config, tmp_path)
    try:
        assert _wait_for(lines, "config ")          # start-up has begun: model not loaded yet
        proc.send_signal(getattr(signal, sig))
        if sig == "SIGHUP":
            assert _wait_for(lines, "reload done"), "\n".join(lines)
            assert proc.poll() is None                # still running
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(lines)
    assert "Traceback" not in log and "requested during start-up" in log
    assert log.index("moodbox running") < log.index("moodbox stopped")


# ------------------------------------------------------------------ 8: a late music library

def test_library_watch_backs_off():
    from moodbox.audio.playlists import LibraryWatch

    w = LibraryWatch(first_s=5, max_s=40)
    w.reset(100.0, pending=True)
    assert not w.due(104.9) and w.due(105.0)
    times = []
    now = 105.0
    for _ in range(6):
        w.not_yet(now)
        times.append(w.next_at - now)
        now = w.next_at
    assert times == [10, 20, 40, 40, 40, 40]
    w.reset(now, pending=False)
    assert not w.due(now + 1e6)


def test_a_missing_source_is_a_warning_and_is_picked_up_when_it_appears(tmp_path, astronaut):
    import time

    import yaml

    from fakes import FakeAudio
    from test_faults import InProcess

    config = make_setup(tmp_path, astronaut)
    cfg = yaml.safe_load(config.read_text())
    late = tmp_path / "usb" / "music"
    cfg["playlists"]["happy"] = {"sources": [str(late)]}   # the stick is not in yet
    cfg["mood"]["map"] = {m: "happy" for m in cfg["mood"]["map"]}
    cfg["mood"]["map"]["away"] = "happy"
    config.write_text(yaml.safe_dump(cfg))
    code, text = _check_as_user(config)
    assert code == 0 and "[warn] source" in text and str(late) in text
    audio = FakeAudio(track_ms=60_000)
    d = InProcess(config, audio=audio, duration=60)
    try:
        assert d.wait_until(lambda: audio.played, 20)
        assert d.code is None and audio.played[-1].parent.name == "favourites"   # the fallback
        late.mkdir(parents=True)
        write_tone(late / "late.wav", 700, 1.0)
        t0 = time.monotonic()
        assert d.wait_until(lambda: d.daemon.player.player.playlists["happy"].tracks, 15)
        assert time.monotonic() - t0 < 12
        assert late / "late.wav" in d.daemon.player.player.playlists["happy"].tracks
    finally:
        assert d.stop() == 0


# ------------------------------------------------------------------ 9: log floods

def test_skipped_files_are_summarised_per_source(tmp_path, caplog):
    from moodbox.audio.player import PlaylistPlayer
    from moodbox.audio.playlists import load_playlists
    from moodbox.config import PlayerConfig, PlaylistConfig
    from fakes import FakeAudio

    m3u = tmp_path / "big.m3u"
    m3u.write_text("".join(f"missing-{i}.ogg\n" for i in range(100_000)))
    music = tmp_path / "music"
    music.mkdir()
    for i in range(50):
        (music / f"song{i}.m4a").write_bytes(b"....ftypM4A")
    write_tone(music / "ok.wav", 440, 0.5)
    playlists = load_playlists({"favourites": PlaylistConfig(sources=(m3u, music))})
    assert len(playlists["favourites"].skipped) == 100_050
    caplog.set_level("WARNING")
    PlaylistPlayer(FakeAudio(), PlayerConfig(default_playlist="favourites"), playlists, {})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "100000 file(s) skipped in" in lines[0] and "and 99997 more" in lines[0]
    assert "50 file(s) skipped in" in lines[1] and "moodbox check" in lines[1]


def test_tracks_that_end_at_once_back_off(tmp_path, caplog):
    from moodbox.audio.player import PlaylistPlayer
    from moodbox.audio.playlists import load_playlists
    from moodbox.config import PlayerConfig, PlaylistConfig
    from fakes import FakeAudio

    (tmp_path / "short").mkdir()
    for i in range(3):
        write_tone(tmp_path / "short" / f"s{i}.wav", 440, 0.05)
    playlists = load_playlists({"favourites": PlaylistConfig(sources=(tmp_path / "short",))})
    fake = FakeAudio(track_ms=20)
    player = PlaylistPlayer(fake, PlayerConfig(default_playlist="favourites"), playlists, {})
    caplog.set_level("INFO")
    player.set_mood("happy", 0.0)
    t = 0.0
    while t < 60.0:                     # a minute of 50 ms ticks
        fake.advance(50)
        player.tick(t, 12 * 60)
        t += 0.05
    started = sum("playing" in r.getMessage() for r in caplog.records)
    assert 5 <= started <= 25, started                        # not ~1200
    assert any("ended within 1 s of starting" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ 10: one definition of playable

def write_mp3(path: Path, frames: int = 40, id3: bool = True) -> Path:
    """MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz; silent), after an ID3v2 tag."""
    frame = b"\xff\xfb\x90\x64" + bytes(413)             # 417 bytes a frame
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) if id3 else b""
    path.write_bytes(tag + frame * frames)
    return path


def test_playable_means_the_same_to_check_catalog_and_player(tmp_path):
    from moodbox.audio.playlists import collect
    from moodbox.catalog.scan import analyse_file
    from moodbox.vocabulary import unplayable_reason

    music = tmp_path / "music"
    music.mkdir()
    good = write_mp3(music / "good.mp3")
    (music / "truncated.mp3").write_bytes(good.read_bytes()[:600])
    (music / "garbage.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20)
    (music / "renamed.ogg").write_bytes(good.read_bytes())
    write_tone(music / "ok.wav", 440, 0.5)
    (music / "header-only.wav").write_bytes((music / "ok.wav").read_bytes()[:44])
    expected = {"truncated.mp3": "no valid MP3 audio frames",
                "garbage.mp3": "not a valid mp3 file",
                "renamed.ogg": "a mp3 file named .ogg",
                "header-only.wav": "no audio data"}
    assert unplayable_reason(good) == "" and unplayable_reason(music / "ok.wav") == ""
    for name, words in expected.items():
        assert words in unplayable_reason(music / name), name
    # the player's and check's playlists ...
    tracks, skipped = collect((music,))
    assert sorted(t.name for t in tracks) == ["good.mp3", "ok.wav"]
    assert {s.path.name for s in skipped} == set(expected)
    # ... and the catalog: the same files carry an error, so assign leaves them out
    for name in expected:
        row = analyse_file(music / name, decoder=lambda p: pytest.fail(f"decoded {p}"))
        assert row["error"] == unplayable_reason(music / name)


# ------------------------------------------------------------------ 11: memory on a 1 GB Pi

def test_scan_decodes_only_the_excerpt_of_a_long_wav(tmp_path):
    script = REPO / "workshop" / "measure_scan_memory.py"
    r = subprocess.run([sys.executable, str(script), "--minutes", "20"], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
    assert r.returncode == 0, r.stderr
    import re

    m = re.search(r"analysed (\d+) s of (\d+) s; .*\(\+(\d+) MiB\)", r.stdout)
    assert m, r.stdout
    analysed, total, grew = map(int, m.groups())
    assert analysed == 90 and total == 1200
    assert grew < 200, r.stdout          # a whole decode of the same file: +760 MiB


def test_run_and_check_never_import_pandas(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    code = ("import sys; from moodbox.commands import cli; "
            "rc = cli.main(sys.argv[1:]); "
            "print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS', rc)")
    for args in (["check", "--config", str(config)],
                 ["run", "--config", str(config), "--duration", "1"]):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           timeout=90, cwd=tmp_path, env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
        assert "NO-PANDAS 0" in r.stdout, (args, r.stdout[-2000:], r.stderr[-2000:])


# ------------------------------------------------------------------ 12: integer columns

def test_a_broken_symlink_keeps_integer_columns_and_nothing_is_rescanned(tmp_path):
    pytest.importorskip("pandas")
    from moodbox.catalog.decode import PygameDecoder
    from moodbox.catalog.scan import scan_library
    from moodbox.catalog.table import read_catalog

    music = tmp_path / "music"
    music.mkdir()
    write_tone(music / "a.wav", 440, 3.0)
    write_tone(music / "b.wav", 660, 3.0)
    (music / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    out = tmp_path / "catalog.csv"
    with PygameDecoder() as decoder:
        first = scan_library(music, out, decoder)
        text = out.read_text()
        again = scan_library(music, out, decoder)
    assert first.analysed == 2 and again.analysed == 0 and again.reused == 2
    catalog = read_catalog(out)
    assert str(catalog["mtime_ns"].dtype) == "int64" and str(catalog["size"].dtype) == "int64"
    header, *rows = text.splitlines()
    col = header.split(",").index("mtime_ns")
    assert all("." not in row.split(",")[col] and "e" not in row.split(",")[col] for row in rows)
    assert "gone.wav" in text


# ------------------------------------------------------------------ smaller items

def test_native_banners_stay_out_of_the_log(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    r = run_cli(["run", "--config", str(config), "--duration", "2"], tmp_path,
                SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(tmp_path / "out.raw"))
    assert r.returncode == 0, r.stdout + r.stderr
    both = r.stdout + r.stderr
    assert "playing" in both and (tmp_path / "out.raw").stat().st_size > 0   # sound was made
    for banner in ("XNNPACK", "SDL disk i/o audio driver", "ALSA lib"):
        assert banner not in both, banner


def test_bad_numbers_on_the_command_line_are_usage_errors(tmp_path):
    from moodbox.commands import cli

    for argv in (["run", "--duration", "-5"], ["run", "--duration", "nan"],
                 ["classify", "x.png", "--recommend", "-1"]):
        with pytest.raises(SystemExit) as info:
            cli.build_parser().parse_args(argv)
        assert info.value.code == 2, argv
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["check"].format_help()
    assert "--config CONFIG  config file (default: $MOODBOX_CONFIG" in " ".join(help_text.split()) \
        or "config file (default: $MOODBOX_CONFIG" in help_text


def test_scan_never_appends_to_a_file_it_did_not_write(tmp_path):
    from moodbox.catalog import cli

    music = tmp_path / "music"
    music.mkdir()
    write_tone(music / "a.wav", 440, 3.0)
    notes = tmp_path / "catalog.csv.partial"
    notes.write_text("my notes\n")
    argv = ["catalog", "scan", str(music), "--out", str(tmp_path / "catalog.csv"), "--no-progress"]
    assert cli.main(argv) == 2
    assert notes.read_text() == "my notes\n" and not (tmp_path / "catalog.csv").exists()
    notes.unlink()
    assert cli.main(argv) == 0 and not notes.exists()


def test_a_config_that_is_a_fifo_or_dev_zero_says_what_it_is(tmp_path):
    from moodbox.config import ConfigError, load_config

    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    for name, words in (("fifo.yaml", "a FIFO (named pipe)"), ("zero.yaml", "a device"),
                        ("big.yaml", "too large")):
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name)
        assert words in info.value.errors[0], (name, info.value.errors)
