"""The MPD output's pure parts (judging another client, volume ramps, paths, config)
and its logic against the FakeMpd double; these run where mpd is not installed."""
from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path

import pytest

from moodbox.audio.backend import TrackError
from moodbox.audio.mpd_backend import ENDED, Expected, MpdBackend, Ramp, judge
from moodbox.audio.player import PlaylistPlayer
from moodbox.audio.playlists import Playlist
from moodbox.config import ConfigError, MpdConfig, PlayerConfig, config_from_dict

PLAYING = {"state": "play", "songid": "7", "song": "0", "playlist": "12", "volume": "70"}


@pytest.mark.parametrize("status, verdict", [
    (PLAYING, ""),
    ({**PLAYING, "playlist": "13"}, "the queue was changed"),
    ({**PLAYING, "songid": "8"}, "another song was chosen"),
    ({**PLAYING, "state": "pause"}, "playback was paused"),
    ({"state": "stop", "songid": "7", "song": "0", "playlist": "12"}, "playback was stopped"),
    ({"state": "stop", "playlist": "12"}, ENDED),
    ({**PLAYING, "volume": "100"}, ""),  # a volume change is not choosing music
])
def test_judge_tells_moodbox_s_own_state_from_another_clients(status, verdict):
    assert judge(Expected("play", "7", "12"), status) == verdict


def test_judge_when_moodbox_paused_or_stopped():
    assert judge(Expected("pause", "7", "12"), {**PLAYING, "state": "pause"}) == ""
    assert judge(Expected("pause", "7", "12"), PLAYING) == "playback was resumed"
    assert judge(Expected("pause", "7", "12"), {"state": "stop", "playlist": "12"}) \
        == "playback was stopped"
    assert judge(Expected("stop", "", "12"), {"state": "stop", "playlist": "12"}) == ""
    assert judge(Expected("stop", "", "12"), PLAYING) == "playback was started"


def test_ramp_moves_linearly_and_ends_where_it_should():
    r = Ramp(0.0, 1.0, t0=10.0, ms=2000)
    assert r.gain(9.0) == 0.0 and r.gain(11.0) == pytest.approx(0.5) and r.gain(12.5) == 1.0
    assert not r.done(11.9) and r.done(12.0)
    assert Ramp().gain(0.0) == 1.0 and Ramp().done(0.0)


def test_paths_become_mpd_uris_or_a_clear_error(tmp_path):
    music = tmp_path / "music"
    (music / "a").mkdir(parents=True)
    (music / "a" / "x.ogg").write_bytes(b"")
    tcp = MpdBackend(MpdConfig(host="localhost", music_directory=str(music)))
    tcp.music_dir = music
    assert tcp.uri_for(music / "a" / "x.ogg") == "a/x.ogg"
    assert tcp.uri_for(Path("stored/y.ogg")) == "stored/y.ogg"  # from a stored playlist
    with pytest.raises(TrackError, match="outside MPD's music directory"):
        tcp.uri_for(tmp_path / "elsewhere.ogg")
    tcp.music_dir = None
    with pytest.raises(TrackError, match="set mpd.music_directory"):
        tcp.uri_for(music / "a" / "x.ogg")
    local = MpdBackend(MpdConfig(host="/run/mpd/socket"))
    local.music_dir = music
    assert local.uri_for(tmp_path / "elsewhere.ogg") == str(tmp_path / "elsewhere.ogg")
    link = tmp_path / "link"
    link.symlink_to(music)
    assert local.uri_for(link / "a" / "x.ogg") == "a/x.ogg"


def test_the_mpd_section_is_validated_with_key_paths(tmp_path):
    base = {"playlists": {"favourites": {"sources": ["mpd:Evening", "music"]}}}
    cfg = config_from_dict({**base, "player": {"output": "mpd"},
                            "mpd": {"host": "~/mpd.sock", "give_way_min": 0}}, tmp_path)
    assert cfg.playlists["favourites"].mpd_playlists == ("Evening",)
    assert cfg.playlists["favourites"].sources == (tmp_path / "music",)
    assert cfg.mpd.host.startswith("/") and cfg.mpd.give_way_min == 0
    with pytest.raises(ConfigError) as err:
        config_from_dict({**base, "mpd": {"hots": "x", "port": 0, "queue": "apend",
                                          "music_directory": "music", "host": "run/mpd"}},
                         tmp_path)
    text = "\n".join(err.value.errors)
    assert "mpd.hots: unknown key; did you mean 'host'?" in text
    assert "mpd.port: must be between 1 and 65535, got 0" in text
    assert "mpd.queue: must be one of replace, append, got 'apend'; did you mean 'append'?" in text
    assert "mpd.music_directory: 'music' must be an absolute path" in text
    assert "mpd.host: 'run/mpd' looks like a socket path" in text
    assert ("playlists.favourites.sources: 'mpd:Evening' is an MPD stored playlist; it plays "
            "only with player.output: mpd") in text
    with pytest.raises(ConfigError) as err:
        config_from_dict({"player": {"output": "mpd"}, "playlists": {
            "favourites": {"sources": ["mpd: "], "mpd_playlists": ["x"]}}}, tmp_path)
    text = "\n".join(err.value.errors)
    assert "playlists.favourites.sources[0]: 'mpd: ' must name an MPD stored playlist" in text
    assert "playlists.favourites.mpd_playlists: unknown key" in text


# --- the logic against the FakeMpd double, on the player's own clock -----------------
NOON = 12 * 60
MUSIC = Path("/music")
LIBRARY = {"upbeat/u1.ogg", "upbeat/u2.ogg", "calm/c1.ogg", "favourites/f1.ogg"}


@pytest.fixture()
def fake():
    pytest.importorskip("mpd", reason="python-mpd2 is not installed (pip install 'moodbox[mpd]')")
    from fake_mpd import FakeMpdClient, FakeMpdServer

    server = FakeMpdServer(library=set(LIBRARY))
    made = []

    def build(mpd_cfg: dict | None = None, **player_cfg):
        clock = [100.0]
        backend = MpdBackend(MpdConfig(host="/fake/socket", **(mpd_cfg or {})),
                             client_factory=lambda: FakeMpdClient(server),
                             clock=lambda: clock[0])
        backend.REFRESH_S = 0.0  # read the status every tick: no waiting on the idle thread
        playlists = {n: Playlist(n, [MUSIC / f for f in sorted(LIBRARY) if f.startswith(n)],
                                 shuffle=False) for n in ("upbeat", "calm", "favourites")}
        settings = {"default_playlist": "favourites", "fade_ms": 1000, "audio_retry_s": 1.0,
                    "volume": 0.8, "max_volume": 0.6, "output": "mpd", **player_cfg}
        player = PlaylistPlayer(backend, dataclasses.replace(PlayerConfig(), **settings),
                                playlists, {"happy": ("upbeat",), "sad": ("calm",)},
                                rng=random.Random(1))
        made.append(player)
        return player, clock

    yield server, build
    for p in made:
        p.shutdown(0, 0.0)


def run(player: PlaylistPlayer, server, clock: list, seconds: float, step: float = 0.1) -> None:
    end = clock[0] + seconds
    while clock[0] < end:
        clock[0] += step
        server.advance(step)
        player.tick(clock[0], NOON)


def test_fades_ramp_mpds_volume_and_never_pass_the_cap(fake):
    server, build = fake
    player, clock = build()
    player.set_mood("happy", clock[0])
    run(player, server, clock, 2.0)
    assert server.queue[-1][1] == "upbeat/u1.ogg" and server.state == "play"
    assert max(server.volumes) <= 60  # never louder than the cap, not even before playing
    fade_in = server.volumes[server.volumes.index(0):]  # the track starts silent ...
    assert fade_in[-1] == 60 and fade_in == sorted(fade_in)  # ... and rises to its level
    assert len(fade_in) > 5  # a ramp, not a jump
    server.volumes.clear()
    player.set_mood("sad", clock[0])
    run(player, server, clock, 3.0)
    assert server.queue[-1][1] == "calm/c1.ogg"
    v = server.volumes
    low = v.index(0)
    assert v[:low + 1] == sorted(v[:low + 1], reverse=True)  # faded out ...
    assert v[-1] == 60 and max(v) <= 60                        # ... and in, under the cap


def test_another_client_gives_way_for_give_way_min_on_the_players_clock(fake, caplog):
    caplog.set_level(logging.INFO)
    server, build = fake
    player, clock = build(mpd_cfg={"give_way_min": 1.0})
    player.set_mood("happy", clock[0])
    run(player, server, clock, 2.0)
    server.other_client_plays("favourites/f1.ogg")
    run(player, server, clock, 0.5)
    assert player.status(NOON, clock[0]).state == "waiting"
    assert player.status(NOON, clock[0]).now_playing["file"] == "favourites/f1.ogg"
    server.other_client_volume(100)  # above the cap even while moodbox waits
    run(player, server, clock, 0.5)
    assert server.volume == 60
    player.set_mood("sad", clock[0])
    run(player, server, clock, 55.0, step=0.5)
    assert server.queue == [(server.queue[0][0], "favourites/f1.ogg")]
    run(player, server, clock, 10.0, step=0.5)
    assert server.queue[-1][1] == "calm/c1.ogg" and server.state == "play"
    assert "its time is up (mpd.give_way_min)" in caplog.text


def test_a_lost_server_is_retried_with_back_off_and_logged_once_per_change(fake, caplog):
    server, build = fake
    player, clock = build()
    player.set_mood("happy", clock[0])
    run(player, server, clock, 1.0)
    assert server.state == "play"
    server.go_down()
    before = server.connects
    run(player, server, clock, 200.0, step=0.5)
    attempts = server.connects - before
    assert 5 <= attempts <= 12, attempts  # 2, 4, 8, ... 60 s apart, not every second
    assert player.status(NOON, clock[0]).state == "no-device"
    server.come_back()
    run(player, server, clock, 65.0, step=0.5)
    assert player.status(NOON, clock[0]).state == "playing" and server.state == "play"
    text = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([t for t in text if "connection lost" in t]) == 1, text
    assert len([t for t in text if "does not answer" in t]) == 1, text


def test_stored_playlists_and_the_library_check_through_the_double(fake, caplog):
    server, build = fake
    server.stored["Evening"] = ["calm/c1.ogg", "http://radio.example/stream"]
    player, clock = build()
    backend = player.backend
    run(player, server, clock, 0.2)
    assert backend.stored_playlist("Evening") == [Path("calm/c1.ogg")]
    assert "1 entr(ies) with a URL left out" in caplog.text
    with pytest.raises(TrackError, match="no stored playlist 'Nope'"):
        backend.stored_playlist("Nope")
    assert backend.stored_names() == {"Evening"}
    missing = backend.not_in_library([MUSIC / "upbeat" / "u1.ogg", MUSIC / "upbeat" / "new.ogg"])
    assert [(str(t), why) for t, why in missing] == [
        ("/music/upbeat/new.ogg", "upbeat/new.ogg is not in MPD's library (new? run mpc update)")]


def test_a_wrong_password_through_the_double(fake, caplog):
    server, build = fake
    server.password = "sesame"
    player, clock = build(mpd_cfg={"password": "nope"})
    run(player, server, clock, 30.0, step=0.5)
    lines = [r.getMessage() for r in caplog.records if "password" in r.getMessage()]
    assert len(lines) == 1 and "set mpd.password" in lines[0]


def test_hostile_names_and_hosts_are_one_clear_line(tmp_path, fake):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"mpd": {"host": "localhost:6600", "password": "a\nclear"}}, tmp_path)
    text = "\n".join(err.value.errors)
    assert "mpd.host: 'localhost:6600': give the port on its own, host: localhost and port: 6600" in text
    assert "mpd.password: must be one line" in text
    ok = {"mpd": {"host": "::1"}, "playlists": {"favourites": [str(tmp_path)]}}
    assert config_from_dict(ok, tmp_path).mpd.host == "::1"
    server, build = fake
    player, clock = build()
    with pytest.raises(TrackError, match="line break"):
        player.backend.uri_for(MUSIC / "upbeat" / "a\nstop.ogg")  # never reaches MPD


def test_status_and_the_cli_say_moodbox_waits(fake):
    from moodbox.control.cli import summary
    from moodbox.control.core import ControlCore, MoodHistory, VisionView

    server, build = fake
    player, clock = build()
    core = ControlCore(lambda cmd: cmd(player, clock[0]), lambda: player.playlists.keys(),
                       VisionView, MoodHistory(), 0.0, lambda: 0.6)
    player.set_mood("happy", clock[0])
    run(player, server, clock, 2.0)
    s = core.status(clock[0])
    assert s["track"]["path"] == "/music/upbeat/u1.ogg"
    assert (s["track"]["title"], s["track"]["artist"], s["track"]["album"]) == (
        "U1", "Fake Artist", "Fake Album")  # MPD's tags
    assert s["waiting"] is None and s["state"] == "playing"
    server.other_client_plays("calm/c1.ogg")
    run(player, server, clock, 0.5)
    s = core.status(clock[0])
    assert s["state"] == "waiting" and s["track"]["path"] == "calm/c1.ogg"
    assert s["waiting"]["reason"] == "the queue was changed in an MPD client"
    text = summary(s)
    assert "c1.ogg (Fake Artist - C1 - Fake Album) (chosen in an MPD client) [waiting]" in text
    assert "someone chose music in an MPD client: moodbox waits" in text
    assert not core.handle({"cmd": "skip"}, clock[0])["ok"]  # nothing of moodbox's to skip
    assert core.handle({"cmd": "release"}, clock[0])["ok"]
    run(player, server, clock, 2.0)
    assert core.status(clock[0])["waiting"] is None and server.queue[-1][1] == "upbeat/u2.ogg"


def test_check_fails_clearly_when_python_mpd2_is_missing(tmp_path, astronaut):
    import os

    import yaml

    from helpers import make_setup, run_cli

    config = make_setup(tmp_path, astronaut, player__output="mpd")
    blocker = tmp_path / "no-mpd"
    blocker.mkdir()
    (blocker / "mpd.py").write_text("raise ImportError('blocked for this test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    r = run_cli(["check", "--config", str(config)], env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("[FAIL] mpd        player.output is mpd, but python-mpd2 is not installed: pip "
            "install 'moodbox[mpd]'") in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert yaml.safe_load(config.read_text())["player"]["output"] == "mpd"
