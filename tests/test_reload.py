"""Reload means reload: a SIGHUP's change to the playing mood's playlist or volume takes
effect at once, and the log says what changed and what waits for a restart."""
from __future__ import annotations

import dataclasses
import json
import random
import signal
import subprocess
import time

import yaml

from fakes import FakeAudio
from helpers import make_setup, write_tone
from moodbox.audio.player import PlaylistPlayer
from moodbox.audio.playlists import load_playlists
from moodbox.config import PlayerConfig, PlaylistConfig, config_from_dict
from moodbox.config.changes import describe_changes
from moodbox.probe import DaemonProcess, moodbox_command


def test_describe_changes_names_the_playing_mood_and_what_needs_a_restart(tmp_path):
    base = {"playlists": {"favourites": str(tmp_path), "discover": str(tmp_path),
                          "soothing": str(tmp_path)},
            "mood": {"map": {"fear": "soothing"}}}
    old = config_from_dict(base, tmp_path)
    new = config_from_dict({**base, "mood": {"map": {"fear": "discover"}, "dwell_s": 5},
                            "player": {"volume": 0.5, "max_volume": 0.8},
                            "buttons": {"bounce_s": 0.1}, "daemon": {"watchdog": False}}, tmp_path)
    applied, restart = describe_changes(old, new, mood="fear")
    assert "mood map: fear -> discover (now playing)" in applied
    assert "mood.dwell_s: 3.0 -> 5.0" in applied
    assert "player.volume: 0.7 -> 0.5" in applied and "player.max_volume: 0.9 -> 0.8" in applied
    assert restart == ["buttons.bounce_s", "daemon.watchdog"]
    assert not any(line.startswith("mood.map") for line in applied)
    applied, _ = describe_changes(old, new, mood="happy")
    assert "mood map: fear -> discover" in applied  # not playing now: no "(now playing)"
    assert describe_changes(old, old) == ([], [])
    _, restart = describe_changes(old, dataclasses.replace(
        new, camera=dataclasses.replace(new.camera, fps=2.0)), source_override=True)
    assert "camera.fps" in restart


def test_player_fades_to_the_new_playlist_of_the_playing_mood(tmp_path):
    configs = {}
    for name in ("favourites", "soothing", "discover"):
        (tmp_path / name).mkdir()
        write_tone(tmp_path / name / f"{name}.wav", 440, 0.2)
        configs[name] = PlaylistConfig(sources=(tmp_path / name,))
    fake = FakeAudio(track_ms=60_000)
    cfg = dataclasses.replace(PlayerConfig(), default_playlist="favourites", fade_ms=1000)
    playlists = load_playlists(configs)
    player = PlaylistPlayer(fake, cfg, playlists, {"fear": ("soothing",)}, rng=random.Random(1))
    t = 10.0
    player.set_mood("fear", t)
    player.tick(t, 720)
    assert player.playlist == "soothing" and player.state == "playing"
    player.update_library(cfg, playlists, {"fear": ("discover",)}, now=t)
    assert player.state == "fading"  # at once, with a fade
    for _ in range(40):
        t += 0.1
        fake.advance(100)
        player.tick(t, 720)
    assert player.playlist == "discover" and player.state == "playing"
    # another mood's change leaves the playing one alone
    player.update_library(cfg, playlists, {"fear": ("discover",), "happy": ("soothing",)}, now=t)
    assert player.state == "playing" and player.playlist == "discover"
    # a hold wins over a reload
    player.hold_playlist("favourites", None, t)
    player.update_library(cfg, playlists, {"fear": ("soothing",)}, now=t)
    assert player._pending in (None, "favourites")


def test_sighup_switches_the_playing_playlist_and_volume_at_once(tmp_path, astronaut):
    sock = tmp_path / "c.sock"
    if len(str(sock)) > 100:
        import tempfile

        sock = __import__("pathlib").Path(tempfile.mkdtemp(prefix="mbx")) / "c.sock"
    config = make_setup(tmp_path, astronaut, control__socket=str(sock))
    for wav in (tmp_path / "happy").iterdir():  # a long track: only a reload can switch it
        write_tone(wav, 880, 60.0)
    d = DaemonProcess(["--config", str(config)], audio_file=tmp_path / "a.raw", cwd=tmp_path,
                      extra_env={"STATE_DIRECTORY": str(tmp_path / "state")})
    try:
        assert d.wait_for("playing happy.wav from happy", 60), d.log
        cfg = yaml.safe_load(config.read_text())
        cfg["mood"]["map"]["happy"] = "favourites"
        cfg["player"]["volume"] = 0.5
        cfg["buttons"] = {"bounce_s": 0.2}
        config.write_text(yaml.safe_dump(cfg))
        sent = time.monotonic()
        d.proc.send_signal(signal.SIGHUP)
        assert d.wait_for("playing favourites.wav from favourites", 15), d.log
        assert time.monotonic() - sent < 10  # not after the 60 s track ended
        assert "reload: mood map: happy -> favourites (now playing)" in d.log
        assert "reload: player.volume: 0.8 -> 0.5" in d.log
        assert "reload: buttons.bounce_s: needs a restart to take effect" in d.log
        r = subprocess.run([*moodbox_command(), "status", "--json", "--socket", str(sock)],
                           capture_output=True, text=True, timeout=30)
        status = json.loads(r.stdout)
        assert status["volume"] == 0.5 and status["playlist"] == "favourites"
    finally:
        d.close()
