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
    full = dict(os.environ, SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1", **env)
    full.pop("SDL_DISKAUDIOFILE", None)
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
