"""A short config is merged over the shipped defaults; `moodbox check` says where each
mood's playlist comes from and warns when the music cannot follow the mood."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from helpers import REPO, run_cli, write_tone
from moodbox.config import ConfigError, load_config
from moodbox.config.defaults import deep_merge, merge_over_defaults
from moodbox.config.schema import PlayerConfig
from moodbox.vocabulary import MOODS

CHECK_ENV = {"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": os.devnull}


def short_config(tmp_path: Path, extra: dict | None = None, names=("upbeat", "calm")) -> Path:
    """The owner's short file: a camera and two playlists of their own, nothing else."""
    playlists = {}
    for i, name in enumerate(names):
        (tmp_path / name).mkdir(exist_ok=True)
        write_tone(tmp_path / name / f"{name}.wav", 300 + 100 * i, 0.3)
        playlists[name] = str(tmp_path / name)
    raw = {"camera": {"type": "opencv", "device": 1}, "playlists": playlists, **(extra or {})}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_short_config_gets_the_default_mood_map_volumes_and_timings(tmp_path):
    cfg = load_config(short_config(tmp_path))
    shipped = load_config(REPO / "config.yaml")
    assert cfg.camera.type == "opencv" and cfg.camera.device == 1
    assert cfg.camera.width == shipped.camera.width and cfg.camera.fps == shipped.camera.fps
    assert cfg.mood.dwell_s == shipped.mood.dwell_s and cfg.player.volume == shipped.player.volume
    assert cfg.player.quiet_hours == shipped.player.quiet_hours
    # the owner's playlists replace the bundled set whole
    assert set(cfg.playlists) == {"upbeat", "calm"}
    # the default mood map, key by key, where its playlists exist
    assert cfg.playlists_for("happy") == ("upbeat",) and cfg.playlists_for("sad") == ("calm",)
    # the default's "favourites" is not the owner's: the owner's first playlist plays
    assert cfg.player.default_playlist == "upbeat"
    assert cfg.playlists_for("neutral") == ("upbeat",)
    assert cfg.playlists_for("away") == ()
    assert any("favourites" in n for n in cfg.adapted)
    assert "camera.type" in cfg.owned and "mood.map.happy" not in cfg.owned


def test_owner_keys_win_one_by_one_and_nested_sections_merge(tmp_path):
    cfg = load_config(short_config(tmp_path, {
        "mood": {"dwell_s": 9, "map": {"happy": "calm"}},
        "player": {"quiet_hours": {"enabled": True}, "default_playlist": "calm"}}))
    assert cfg.mood.dwell_s == 9.0 and cfg.mood.min_confidence == 0.4  # the rest: defaults
    assert cfg.playlists_for("happy") == ("calm",) and cfg.playlists_for("sad") == ("calm",)
    assert cfg.player.quiet_hours.enabled and cfg.player.quiet_hours.start == "22:00"
    assert cfg.player.default_playlist == "calm" and not cfg.adapted[0].startswith("player")
    assert "mood.map.happy" in cfg.owned and "mood.map.sad" not in cfg.owned


def test_an_owner_mapping_to_a_missing_playlist_is_still_an_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(short_config(tmp_path, {"mood": {"map": {"fear": "discover"}},
                                            "player": {"default_playlist": "favourites"}}))
    assert "mood.map.fear: 'discover' is not a playlist" in str(e.value)
    assert "player.default_playlist: 'favourites' is not a playlist" in str(e.value)


def test_no_playlists_section_keeps_the_bundled_ones_and_unknown_keys_still_fail(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("player:\n  volume: 0.5\n")
    cfg = load_config(path)
    assert cfg.player.volume == 0.5 and "favourites" in cfg.playlists
    assert cfg.playlists_for("surprise") == ("discover",)
    path.write_text("player:\n  volum: 0.5\ncamera: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "player.volum: unknown key; did you mean 'volume'?" in str(e.value)
    assert "camera: must be a mapping of keys" in str(e.value)


def test_an_empty_file_and_empty_sections_are_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing yet\nmood:\nplayer:\n")
    cfg = load_config(path)
    shipped = load_config(REPO / "config.yaml")
    assert dataclasses.replace(cfg, source="", owned=frozenset()) == \
        dataclasses.replace(shipped, source="")


def test_merge_rule_units():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": {"b": 1}}
    assert deep_merge({"a": {"b": 1}}, {"a": [1]}) == {"a": [1]}  # wrong shape: validated later
    merged = merge_over_defaults({"playlists": {"x": "d"}},
                                 {"playlists": {"y": "e"}, "mood": {"map": {"happy": "y"}},
                                  "player": {"default_playlist": "y"}})
    assert merged.raw["playlists"] == {"x": "d"} and merged.raw["mood"]["map"] == {}
    assert merged.raw["player"]["default_playlist"] == "x"
    assert merge_over_defaults([1, 2], {"a": 1}).raw == [1, 2]
    deep: dict = {}
    node = deep
    for _ in range(5000):  # nesting far past the schema costs nothing (no recursion error)
        node["x"] = {}
        node = node["x"]
    merged = merge_over_defaults({"camera": deep}, {"camera": {"fps": 5}})
    assert "camera.x.x" in merged.owned and merged.raw["camera"]["fps"] == 5


def test_check_says_where_each_mood_comes_from(tmp_path):
    config = short_config(tmp_path, {"mood": {"map": {"happy": "calm"}}})
    r = run_cli(["check", "--config", str(config)], env=CHECK_ENV)
    out = r.stdout
    assert "[  ok] happy      calm: 1 playable (your file)" in out, out
    assert "[  ok] sad        calm: 1 playable (the defaults)" in out
    assert "[  ok] neutral    upbeat: 1 playable (player.default_playlist: your first playlist)" in out
    assert "[  ok] defaults   player.default_playlist: the default 'favourites'" in out
    assert "every mood plays" not in out
    assert "bundled demo tracks" not in out


def test_check_warns_when_every_mood_ends_on_one_playlist(tmp_path):
    config = short_config(tmp_path, names=("mine",))
    r = run_cli(["check", "--config", str(config)], env=CHECK_ENV)
    assert "[warn] moods      every mood plays mine: the music will not follow the mood" in r.stdout
    for mood in MOODS:
        if mood != "away":
            assert f"] {mood:<10} mine: 1 playable" in r.stdout


def test_check_says_the_demo_tracks_play_until_the_owner_sets_playlists(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("camera:\n  type: replay\n")
    r = run_cli(["check", "--config", str(path)], env=CHECK_ENV)
    assert "[warn] playlists  the bundled demo tracks play (" in r.stdout
    assert f"until you set your own playlists in {path}" in r.stdout


def test_check_names_sudo_for_the_system_config(tmp_path):
    from moodbox.commands.check import Report, _check_demo_tracks

    cfg = dataclasses.replace(load_config(REPO / "config.yaml"), source="/etc/moodbox/config.yaml")
    rep = Report()
    _check_demo_tracks(cfg, rep)
    text = "\n".join(rep.lines)
    assert "bundled demo tracks play" in text
    assert "editing /etc/moodbox/config.yaml needs sudo: sudoedit /etc/moodbox/config.yaml" in text
    assert PlayerConfig().default_playlist == "favourites"
