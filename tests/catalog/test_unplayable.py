"""`catalog scan` names the music it cannot play (m4a/AAC, ...) and the way out."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli, write_tone

pytest.importorskip("pandas", reason="pip install 'moodbox[catalog]'")


def test_scan_lists_files_it_cannot_play_with_the_way_out(tmp_path):
    music = tmp_path / "music"
    (music / "album").mkdir(parents=True)
    write_tone(music / "a.wav", 440, 1.0)
    write_tone(music / "album" / "b.wav", 550, 1.0)
    names = [f"album/{i:02d} song.m4a" for i in range(7)] + ["x.aac", "y.wma"]
    for name in names:
        (music / name).write_bytes(b"\0\0\0 ftypM4A " + b"\0" * 64)
    (music / "cover.jpg").write_bytes(b"not music")  # not music: not listed
    r = run_cli(["catalog", "scan", str(music), "--out", str(tmp_path / "c.csv"), "--no-progress"])
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "2 music files under" in out
    assert "cannot play 9 file(s) (.aac, .m4a, .wma; not in the catalog)" in out
    assert f"  {music / 'album' / '00 song.m4a'}" in out
    assert "... and 4 more" in out and "cover.jpg" not in out
    assert "ffmpeg -i" in out and "libvorbis" in out
    assert "player.output: mpd" in out


def test_scan_without_such_files_says_nothing_of_them(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    write_tone(music / "a.wav", 440, 1.0)
    r = run_cli(["catalog", "scan", str(music), "--out", str(tmp_path / "c.csv"), "--no-progress"])
    assert r.returncode == 0 and "cannot play" not in r.stdout


def test_list_music_files_splits_playable_and_other(tmp_path):
    from moodbox.catalog.scan import list_audio_files, list_music_files

    for name in ("a.mp3", "b.M4A", "._c.m4a", "d.opus", "e.txt"):
        (tmp_path / name).write_bytes(b"x")
    playable, other = list_music_files(tmp_path)
    assert [p.name for p in playable] == ["a.mp3"] == [p.name for p in list_audio_files(tmp_path)]
    assert [p.name for p in other] == ["b.M4A", "d.opus"]
    assert isinstance(other[0], Path)
