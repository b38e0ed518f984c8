"""The MPD output against a real Debian `mpd` (skipped where it is not installed).

Each test starts its own mpd on a Unix socket in a temp folder, with tone tracks in a
real music folder and a fifo output the test reads: the tone tells which playlist
plays, the level tells the volume, the arrival time tells when.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import time
from pathlib import Path

import pytest

from helpers import REPO, write_tone, wait_until
from moodbox.audio.mpd_backend import MpdBackend
from moodbox.audio.player import PlaylistPlayer
from moodbox.audio.playlists import Playlist, load_playlists
from moodbox.audio.thread import PlayerThread
from moodbox.config import MpdConfig, PlayerConfig, PlaylistConfig, QuietHoursConfig
from moodbox.control.core import ControlCore, MoodHistory, VisionView
from mpd_server import MpdServer, free_port, require_mpd

TONE = {"upbeat": 880.0, "upbeat2": 660.0, "calm": 440.0, "favourites": 250.0}
MOOD_MAP = {"happy": ("upbeat",), "sad": ("calm",)}


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    """MPD's music folder: one tone per playlist (upbeat has two), and a bundled demo ogg."""
    require_mpd()
    root = tmp_path / "music"
    for name, hz in TONE.items():
        folder = root / name.rstrip("2")
        folder.mkdir(parents=True, exist_ok=True)
        write_tone(folder / f"{name}.wav", hz, 30.0, rate=8000)
    (root / "demo").mkdir()
    shutil.copy(REPO / "playlists" / "discover" / "discover-1.ogg", root / "demo")
    return root


@pytest.fixture()
def server(tmp_path: Path, music: Path):
    s = MpdServer(tmp_path / "mpd", music)
    s.root.mkdir()
    s.start()
    yield s
    s.close()


def playlists_in(music: Path, **stored: tuple[str, ...]) -> dict[str, Playlist]:
    cfgs = {name: PlaylistConfig(sources=(music / name,), shuffle=False,
                                 mpd_playlists=stored.get(name, ()))
            for name in ("upbeat", "calm", "favourites")}
    return load_playlists(cfgs)


def start_player(server: MpdServer, music: Path, mpd_cfg: dict | None = None,
                 playlists: dict | None = None, **player_cfg) -> PlayerThread:
    settings = {"default_playlist": "favourites", "fade_ms": 600, "audio_retry_s": 0.3,
                "volume": 0.8, "max_volume": 0.9, "output": "mpd", **player_cfg}
    cfg = dataclasses.replace(PlayerConfig(), **settings)
    backend = MpdBackend(MpdConfig(host=server.socket, **(mpd_cfg or {})))
    player = PlaylistPlayer(backend, cfg, playlists or playlists_in(music), MOOD_MAP,
                            rng=random.Random(1))
    return PlayerThread(player).start()


@pytest.fixture()
def threads():
    started: list[PlayerThread] = []
    yield started
    for t in started:
        t.stop(fade_ms=0, timeout=3.0)


def core_for(thread: PlayerThread, names=("upbeat", "calm", "favourites")) -> ControlCore:
    return ControlCore(thread.ask, lambda: names, VisionView, MoodHistory(), time.monotonic(),
                       lambda: thread.player.cfg.max_volume)



def wait(check, timeout: float = 10.0) -> bool:
    return wait_until(check, timeout)


def hears(server: MpdServer, *hz: float, timeout: float = 10.0) -> bool:
    """The fifo carries one of `hz` (within 10 Hz) over the last half second."""
    lst = server.listener
    return lst.wait_for(lambda: any(abs(lst.tone(time.monotonic() - 0.6) - f) < 10 for f in hz),
                        timeout)


def mpd_status(server: MpdServer) -> dict:
    c = server.client()
    try:
        return {**c.status(), **{"file": c.currentsong().get("file", "")}}
    finally:
        c.disconnect()


def test_plays_the_moods_playlist_and_fades_into_the_next_mood(server, music, threads):
    t = start_player(server, music)
    threads.append(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"]), server.mpd_log()
    assert mpd_status(server)["file"] == "upbeat/upbeat.wav"
    assert wait(lambda: t.status().state == "playing")
    time.sleep(1.0)  # past the fade-in
    before = server.listener.level(time.monotonic() - 0.5)
    switched = time.monotonic()
    t.set_mood("sad")
    assert hears(server, TONE["calm"]), server.mpd_log()
    lst = server.listener
    # the old tone faded out: quieter blocks before the new tone began ...
    old = [b for b in lst.since(switched) if b.rms > 0.002 and abs(lst.tone(b.at - 0.01, b.at + 0.01) - 880) < 10]
    assert old and min(b.rms for b in old) < 0.6 * before, [round(b.rms, 3) for b in old]
    # ... and the new one faded in to the same level
    assert wait(lambda: lst.level(time.monotonic() - 0.3) > 0.8 * before, 5)
    s = mpd_status(server)
    assert s["file"] == "calm/calm.wav" and s["state"] == "play"
    assert int(s["volume"]) == 80


def test_the_cap_and_quiet_hours_hold_against_another_client(server, music, threads, caplog):
    quiet = QuietHoursConfig(enabled=True, start="00:00", end="00:00", max_volume=0.3)
    t = start_player(server, music, max_volume=0.9, quiet_hours=quiet)
    threads.append(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    assert wait(lambda: int(mpd_status(server)["volume"]) == 30)
    time.sleep(1.2)  # past the fade-in and MPD's buffer
    level = server.listener.level(time.monotonic() - 0.6)
    assert level > 0.003
    other = server.client()
    other.setvol(100)
    assert wait(lambda: int(mpd_status(server)["volume"]) <= 30, 3)
    time.sleep(1.2)
    assert server.listener.level(time.monotonic() - 0.6) < 1.1 * level
    for _ in range(5):  # a volume slider dragged up: put back each time, logged once
        other.setvol(95)
        assert wait(lambda: int(mpd_status(server)["volume"]) <= 30, 3)
    lines = [r for r in caplog.records if "above moodbox's cap of 30%" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    other.setvol(20)  # quieter than the cap: theirs to choose
    time.sleep(1.5)
    assert int(mpd_status(server)["volume"]) == 20
    other.disconnect()
    assert server.listener.level(time.monotonic() - 0.5) < level
    assert t.status().state == "playing"  # a volume change is not someone choosing music


def test_skip_pause_resume_hold_and_release_through_the_control_core(server, music, threads):
    playlists = load_playlists({
        "upbeat": PlaylistConfig(sources=(music / "upbeat",), shuffle=False),
        "calm": PlaylistConfig(sources=(music / "calm",)),
        "favourites": PlaylistConfig(sources=(music / "favourites",))})
    t = start_player(server, music, playlists=playlists)
    threads.append(t)
    core = core_for(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    first = mpd_status(server)["file"]
    assert core.handle({"cmd": "skip"}, time.monotonic())["ok"]
    assert wait(lambda: mpd_status(server)["file"] not in ("", first))
    assert hears(server, TONE["upbeat2"] if first.endswith("upbeat.wav") else TONE["upbeat"])
    assert t.player.learner.played_less()  # the skip was learned
    assert core.handle({"cmd": "pause"}, time.monotonic())["ok"]
    assert wait(lambda: mpd_status(server)["state"] == "pause")
    time.sleep(0.8)
    assert server.listener.level(time.monotonic() - 0.4) < 0.003
    assert core.handle({"cmd": "resume"}, time.monotonic())["ok"]
    assert wait(lambda: mpd_status(server)["state"] == "play")
    reply = core.handle({"cmd": "hold", "playlist": "calm"}, time.monotonic())
    assert reply["ok"] and reply["status"]["hold"]["playlist"] == "calm"
    assert hears(server, TONE["calm"])
    status = core.status(time.monotonic())
    assert status["track"]["path"].endswith("calm.wav") and status["waiting"] is None
    assert core.handle({"cmd": "release"}, time.monotonic())["ok"]
    assert wait(lambda: mpd_status(server)["file"].startswith("upbeat/"))
    assert wait(lambda: t.status().state == "playing")  # once its fade back in has ended


def test_another_client_choosing_music_is_respected_until_release(server, music, threads):
    t = start_player(server, music)
    threads.append(t)
    core = core_for(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    other = server.client()
    other.clear()
    other.add("demo/discover-1.ogg")
    other.play()
    assert wait(lambda: t.status().state == "waiting", 3)
    status = core.status(time.monotonic())
    assert status["waiting"]["text"] == "someone chose music in an MPD client: moodbox waits"
    assert status["waiting"]["remaining_s"] > 1000  # give_way_min: 30 by default
    assert status["track"]["path"] == "demo/discover-1.ogg"
    t.set_mood("sad")  # the mood moves on; moodbox keeps its hands off
    time.sleep(1.5)
    s = mpd_status(server)
    assert s["file"] == "demo/discover-1.ogg" and s["state"] == "play"
    assert core.handle({"cmd": "release"}, time.monotonic())["ok"]
    assert hears(server, TONE["calm"])
    assert core.status(time.monotonic())["waiting"] is None
    other.disconnect()


def test_a_stop_in_another_client_waits_only_the_configured_time(server, music, threads, caplog):
    caplog.set_level(logging.INFO)
    t = start_player(server, music, mpd_cfg={"give_way_min": 0.05})  # 3 s
    threads.append(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    other = server.client()
    other.stop()
    other.disconnect()
    assert wait(lambda: t.status().state == "waiting", 3)
    assert mpd_status(server)["state"] == "stop"
    assert wait(lambda: t.status().state == "playing", 8)
    assert hears(server, TONE["upbeat"], TONE["upbeat2"])
    assert "its time is up (mpd.give_way_min)" in caplog.text


def test_mpd_restarting_under_a_running_player_is_survived(server, music, threads, caplog):
    caplog.set_level(logging.INFO)
    t = start_player(server, music)
    threads.append(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    server.stop()
    assert wait(lambda: t.status().state == "no-device", 5)
    time.sleep(2.0)  # several retries while it is down: logged once
    server.start()
    assert wait(lambda: t.status().state == "playing", 15)
    assert hears(server, TONE["upbeat"], TONE["upbeat2"])
    lost = [r for r in caplog.records if "MPD connection lost" in r.getMessage()]
    refused = [r for r in caplog.records if "does not answer" in r.getMessage()]
    back = [r for r in caplog.records if r.getMessage() == "MPD is back"]
    assert len(lost) == 1 and len(refused) <= 1 and len(back) == 1, caplog.text


def test_mpd_missing_at_start_is_waited_for(tmp_path, music, threads, caplog):
    caplog.set_level(logging.INFO)
    server = MpdServer(tmp_path / "mpd", music)
    server.root.mkdir()
    t = start_player(server, music)
    threads.append(t)
    t.set_mood("happy")
    time.sleep(1.0)
    assert t.status().state == "no-device"
    try:
        server.start()
        assert hears(server, TONE["upbeat"], timeout=15)
        t.stop(fade_ms=0, timeout=3.0)  # before MPD goes
    finally:
        server.close()
    lines = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(lines) == 1 and "is it running?" in lines[0], caplog.text


def test_a_wrong_password_is_one_line_naming_the_fix(tmp_path, music, threads, caplog):
    server = MpdServer(tmp_path / "mpd", music, password="sesame", output="null")
    server.root.mkdir()
    server.start()
    try:
        t = start_player(server, music, mpd_cfg={"password": "wrong"})
        threads.append(t)
        time.sleep(2.0)
        assert t.status().state == "no-device"
        lines = [r.getMessage() for r in caplog.records if "password" in r.getMessage()]
        assert len(lines) == 1 and "set mpd.password" in lines[0], caplog.text
    finally:
        server.close()


def test_stored_playlists_play_and_a_missing_one_is_named(server, music, threads, caplog):
    c = server.client()
    c.playlistadd("Evening", "calm/calm.wav")
    c.disconnect()
    playlists = playlists_in(music)
    playlists["calm"] = dataclasses.replace(playlists["calm"], tracks=[], stored=("Evening",))
    playlists["upbeat"] = dataclasses.replace(playlists["upbeat"], stored=("NoSuchList",))
    t = start_player(server, music, playlists=playlists)
    threads.append(t)
    t.set_mood("sad")
    assert hears(server, TONE["calm"])
    assert mpd_status(server)["file"] == "calm/calm.wav"
    lines = [r.getMessage() for r in caplog.records if "NoSuchList" in r.getMessage()]
    assert len(lines) == 1 and "mpc lsplaylists" in lines[0], caplog.text


def test_over_tcp_a_file_outside_the_music_directory_is_named(tmp_path, music, threads, caplog):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_tone(outside / "far.wav", 300, 5.0, rate=8000)
    server = MpdServer(tmp_path / "mpd", music, port=free_port(), output="null")
    server.root.mkdir()
    server.start()
    try:
        playlists = playlists_in(music)
        playlists["upbeat"] = dataclasses.replace(playlists["upbeat"], tracks=[outside / "far.wav"])
        cfg = dataclasses.replace(PlayerConfig(), default_playlist="favourites", output="mpd")
        backend = MpdBackend(MpdConfig(host="127.0.0.1", port=server.port,
                                       music_directory=str(music)))
        t = PlayerThread(PlaylistPlayer(backend, cfg, playlists, MOOD_MAP)).start()
        threads.append(t)
        t.set_mood("happy")
        assert wait(lambda: mpd_status(server).get("file") == "favourites/favourites.wav")
        lines = [r.getMessage() for r in caplog.records if "far.wav" in r.getMessage()]
        assert lines and "outside MPD's music directory" in lines[0], caplog.text
    finally:
        server.close()


def test_append_keeps_the_owners_queue(server, music, threads):
    c = server.client()
    c.add("demo/discover-1.ogg")
    c.disconnect()
    t = start_player(server, music, mpd_cfg={"queue": "append"})
    threads.append(t)
    t.set_mood("happy")
    assert hears(server, TONE["upbeat"])
    c = server.client()
    files = [s["file"] for s in c.playlistinfo()]
    c.disconnect()
    assert files == ["demo/discover-1.ogg", "upbeat/upbeat.wav"]


def test_music_already_playing_at_start_is_waited_for_and_paused_by_the_owner(server, music,
                                                                             threads):
    c = server.client()
    c.add("demo/discover-1.ogg")
    c.random(1)
    c.play()
    c.disconnect()
    t = start_player(server, music)
    threads.append(t)
    core = core_for(t)
    t.set_mood("happy")
    assert wait(lambda: t.status().state == "waiting", 5)
    assert "already playing demo/discover-1.ogg" in t.status().waiting
    time.sleep(1.0)
    assert mpd_status(server)["file"] == "demo/discover-1.ogg"
    assert core.handle({"cmd": "pause"}, time.monotonic())["ok"]  # the owner's button
    assert wait(lambda: mpd_status(server)["state"] == "pause")
    assert t.status().state == "waiting"  # pausing someone's music is not taking it back
    assert core.handle({"cmd": "resume"}, time.monotonic())["ok"]
    assert wait(lambda: mpd_status(server)["state"] == "play")
    assert core.handle({"cmd": "release"}, time.monotonic())["ok"]
    assert hears(server, TONE["upbeat"])
    assert mpd_status(server)["random"] == "0"  # it would pick moodbox's next track


def test_mpd_without_a_volume_control_is_one_line_and_still_plays(tmp_path, music, threads,
                                                                  caplog):
    server = MpdServer(tmp_path / "mpd", music, mixer="none")
    server.root.mkdir()
    server.start()
    try:
        t = start_player(server, music)
        threads.append(t)
        t.set_mood("happy")
        assert hears(server, TONE["upbeat"])
        t.set_mood("sad")
        assert hears(server, TONE["calm"])
        lines = [r.getMessage() for r in caplog.records if "no volume control" in r.getMessage()]
        assert len(lines) == 1 and 'mixer_type "software"' in lines[0], caplog.text
    finally:
        server.close()


def test_over_the_socket_a_file_outside_the_library_plays_by_its_path(tmp_path, server, music,
                                                                    threads, caplog):
    outside = tmp_path / "elsewhere" / "far.wav"
    outside.parent.mkdir()
    write_tone(outside, 330.0, 10.0, rate=8000)
    late = music / "calm" / "late.wav"
    write_tone(late, 550.0, 10.0, rate=8000)  # after MPD's scan (auto_update is off)
    playlists = playlists_in(music)
    playlists["calm"] = dataclasses.replace(playlists["calm"], tracks=[late, outside],
                                            shuffle=False)
    t = start_player(server, music, playlists=playlists)
    threads.append(t)
    t.set_mood("sad")
    assert hears(server, 330.0), server.mpd_log()
    assert mpd_status(server)["file"] == str(outside)
    lines = [r.getMessage() for r in caplog.records if "late.wav" in r.getMessage()]
    assert len(lines) == 1 and "let MPD scan it (mpc update)" in lines[0], caplog.text
