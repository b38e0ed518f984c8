"""The control core and the player's owner commands as pure units: FakeAudio, times passed in."""
from __future__ import annotations

import dataclasses
import random

import pytest

from moodbox.audio.player import PlaylistPlayer
from moodbox.config import PlayerConfig, PlaylistConfig
from moodbox.audio.playlists import load_playlists
from moodbox.control.core import ControlCore, MoodHistory, MoodSwitch, VisionView
from fakes import FakeAudio
from helpers import write_tone

NOON = 12 * 60
SPEC = {"favourites": ["f1.wav"], "upbeat": ["u1.wav", "u2.wav", "u3.wav"], "calm": ["c1.wav"]}


class Clock:
    """The player thread's part: runs commands at a time the test sets."""

    def __init__(self, player: PlaylistPlayer, fake: FakeAudio):
        self.player, self.fake, self.t = player, fake, 100.0

    def run(self, command):
        return command(self.player, self.t)

    def tick(self, seconds: float, step: float = 0.1) -> None:
        end = self.t + seconds
        while self.t < end:
            self.fake.advance(int(step * 1000))
            self.player.tick(self.t, NOON)
            self.t += step


@pytest.fixture()
def rig(tmp_path):
    configs = {}
    for name, files in SPEC.items():
        (tmp_path / name).mkdir()
        for f in files:
            write_tone(tmp_path / name / f, 440, 0.2)
        configs[name] = PlaylistConfig(sources=(tmp_path / name,))
    fake = FakeAudio(track_ms=5000)
    cfg = dataclasses.replace(PlayerConfig(), default_playlist="favourites", fade_ms=1000,
                              volume=0.7, max_volume=0.8)
    player = PlaylistPlayer(fake, cfg, load_playlists(configs),
                            {"happy": ("upbeat",), "sad": ("calm",)}, rng=random.Random(3))
    clock = Clock(player, fake)
    history = MoodHistory()
    view = VisionView("happy", 0.8, 1, 5.0, "open")
    core = ControlCore(clock.run, lambda: SPEC.keys(), lambda: view, history, started=50.0,
                       max_volume=lambda: cfg.max_volume)
    player.set_mood("happy", clock.t)
    history.add(MoodSwitch(clock.t, "happy", "happy", 0.8))
    clock.tick(0.5)
    return core, player, fake, clock


def test_status_snapshot(rig):
    core, player, fake, clock = rig
    s = core.status(clock.t)
    assert s["mood"] == "happy" and s["playlist"] == "upbeat" and s["state"] == "playing"
    assert s["track"]["name"] in SPEC["upbeat"] and s["volume"] == 0.7
    assert s["emotion"] == {"name": "happy", "p": 0.8} and s["faces"] == 1
    assert s["hold"] is None and s["paused"] is False and s["quiet_hours"] is False
    assert s["uptime_s"] == pytest.approx(clock.t - 50.0, abs=0.1)
    assert s["history"] == [{"ago_s": pytest.approx(0.5, abs=0.15), "at_s": 50.0, "mood": "happy",
                             "emotion": "happy", "p": 0.8}]
    assert s["track"]["title"] is None and s["track"]["artist"] is None  # tone files: no tags


def test_skip_fades_fast_to_another_track_of_the_same_playlist(rig):
    core, player, fake, clock = rig
    first = player.track
    reply = core.handle({"cmd": "skip"}, clock.t)
    assert reply["ok"] and reply["skipped"] == first.name
    assert fake.fades[-1] == PlaylistPlayer.SKIP_FADE_MS
    clock.tick(1.0)
    assert player.track != first and player.playlist == "upbeat" and player.state == "playing"
    assert player.learner.weight("happy", first) == pytest.approx(0.5)


def test_pause_holds_through_a_mood_change_and_resume_follows_it(rig):
    core, player, fake, clock = rig
    core.pause()
    assert player.state == "paused" and fake.events[-1] == "pause"
    player.set_mood("sad", clock.t)
    clock.tick(2.0)
    assert player.state == "paused" and player.playlist == "upbeat"  # the owner's pause wins
    core.resume()
    assert fake.events[-2:] == ["resume", "fadeout 1000"]  # and then follows the new mood
    clock.tick(2.0)
    assert player.playlist == "calm" and player.state == "playing"
    assert core.status(clock.t)["paused"] is False


def test_volume_is_capped_by_max_volume_and_checked(rig):
    core, player, fake, clock = rig
    assert core.volume(0.5) == {"volume": 0.5, "capped_at": None}
    clock.tick(0.2)
    assert fake.volumes[-1] == 0.5
    assert core.volume(1.0)["capped_at"] == 0.8
    clock.tick(0.2)
    assert fake.volumes[-1] == 0.8 and max(fake.volumes) <= 0.8
    for bad in (1.5, -0.1, "loud", True, None):
        reply = core.handle({"cmd": "volume", "level": bad}, clock.t)
        assert not reply["ok"] and "from 0 to 1" in reply["error"]
    assert fake.volumes[-1] == 0.8


def test_hold_for_minutes_then_it_ends_by_itself(rig):
    core, player, fake, clock = rig
    core.hold("calm", minutes=1)
    clock.tick(1.0)
    assert player.playlist == "calm"
    player.set_mood("sad", clock.t)
    player.set_mood("happy", clock.t)
    clock.tick(1.0)
    assert player.playlist == "calm"  # the mood does not move a hold
    assert core.status(clock.t)["hold"]["remaining_s"] == pytest.approx(58.0, abs=0.5)
    clock.tick(58.5)
    assert player.hold == "" and player.playlist == "upbeat"


def test_hold_until_release_and_errors(rig):
    core, player, fake, clock = rig
    core.hold("favourites")
    clock.tick(1.0)
    assert player.playlist == "favourites" and core.status(clock.t)["hold"] == {
        "playlist": "favourites", "remaining_s": None}
    core.release()
    clock.tick(1.0)
    assert player.playlist == "upbeat"
    assert not core.handle({"cmd": "hold", "playlist": "nope"}, clock.t)["ok"]
    assert not core.handle({"cmd": "hold", "playlist": "calm", "minutes": 0}, clock.t)["ok"]
    assert not core.handle({"cmd": "format-disk"}, clock.t)["ok"]
    assert player.playlist == "upbeat" and player.hold == ""


def test_skip_with_nothing_playing_is_an_error(rig):
    core, player, fake, clock = rig
    player.set_owner_volume(None)
    player.track, player.state = None, "stopped"
    reply = core.handle({"cmd": "skip"}, clock.t)
    assert reply == {"ok": False, "error": "nothing is playing to skip"}


def test_skip_saves_the_learned_weights_only_when_asked(rig):
    core, player, fake, clock = rig
    saves = []
    core._save_learned = lambda: saves.append(player.learner.to_dict())
    clock.tick(30.0)  # tracks play through: nothing is saved in the steady state
    assert saves == []
    core.skip()
    assert len(saves) == 1 and saves[0]["weights"]["happy"]


def test_a_failing_or_stuck_player_still_gets_an_answer(rig):
    core, player, fake, clock = rig

    def broken(command):
        raise RuntimeError("bug")

    def stuck(command):
        raise TimeoutError

    core._run = broken
    reply = core.handle({"cmd": "pause"}, clock.t)
    assert reply == {"ok": False, "error": "internal error (RuntimeError); see the log"}
    core._run = stuck
    assert "did not answer in time" in core.handle({"cmd": "status"}, clock.t)["error"]


def test_track_tags_come_from_the_file(tmp_path):
    mutagen = pytest.importorskip("mutagen.oggvorbis")
    import shutil

    from helpers import REPO
    from moodbox.control.core import track_tags

    path = tmp_path / "song.ogg"
    shutil.copy(sorted((REPO / "playlists").glob("*/*.ogg"))[0], path)  # a shipped demo track
    tagged = mutagen.OggVorbis(str(path))
    tagged["title"], tagged["artist"] = "Here Comes the Sun", "The Beatles"
    tagged.save()
    assert track_tags(str(path)) == {"title": "Here Comes the Sun", "artist": "The Beatles"}
    untagged = tmp_path / "tone.wav"
    write_tone(untagged, 440, 0.1)
    assert track_tags(str(untagged)) == {}


def test_a_config_reload_keeps_the_owners_choices(rig):
    core, player, fake, clock = rig
    core.hold("calm")
    core.volume(0.4)
    core.pause()
    player.update_library(player.cfg, player.playlists, player.mood_map)
    clock.tick(1.0)
    assert player.hold == "calm" and player.owner_volume == 0.4 and player.state == "paused"
    core.resume()
    clock.tick(1.0)
    assert player.playlist == "calm" and player.state == "playing"
