"""Config: the shipped defaults load; every error names its key path and a fix."""
from __future__ import annotations

import dataclasses

import os
from pathlib import Path

import pytest
import yaml

from moodbox.config import EX_CONFIG, ConfigError, load_config
from helpers import REPO, run_cli


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def minimal(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "music").mkdir(exist_ok=True)
    return write(tmp_path, "playlists:\n  favourites: music\n" + extra)


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.errors


def test_shipped_config_loads_with_builtin_paths():
    cfg = load_config(REPO / "config.yaml")
    assert cfg.camera.type == "picamera2"
    assert cfg.model_path() == REPO / "models" / "emotion_int8.tflite"
    assert set(cfg.playlists) >= {"upbeat", "calm", "favourites", "energetic", "soothing", "discover"}
    assert cfg.playlists_for("happy") == ("upbeat",)
    assert cfg.playlists_for("away") == ()  # unmapped away: keep the current playlist
    assert all(src.is_dir() for p in cfg.playlists.values() for src in p.sources)


def test_config_is_frozen(tmp_path):
    cfg = load_config(minimal(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.camera.fps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.playlists["x"] = None  # type: ignore[index]


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    cfg = load_config(minimal(tmp_path, "classifier:\n  model: m/e.tflite\n"))
    assert cfg.model_path() == tmp_path / "m" / "e.tflite"
    assert cfg.playlists["favourites"].sources == (tmp_path / "music",)


def test_unknown_key_gets_did_you_mean(tmp_path):
    errs = errors_of(minimal(tmp_path, "camera:\n  widht: 320\n"))
    assert errs == ["camera.widht: unknown key; did you mean 'width'?"]


def test_unknown_section_is_rejected(tmp_path):
    errs = errors_of(minimal(tmp_path, "camra:\n  type: replay\n"))
    assert "camra: unknown key; did you mean 'camera'?" in errs


def test_wrong_types_and_ranges_name_the_key(tmp_path):
    errs = errors_of(minimal(tmp_path, "camera:\n  fps: fast\n  loop: 'yes'\n"
                                       "player:\n  volume: 1.5\n  away: snooze\n"))
    assert "camera.fps: must be a number, got 'fast' (str)" in errs
    assert "camera.loop: must be true or false, got 'yes' (str)" in errs
    assert "player.volume: must be between 0.0 and 1.0, got 1.5" in errs
    assert any(e.startswith("player.away: must be one of keep, lower, pause, stop") for e in errs)
    assert len(errs) == 4  # every problem at once, not just the first


def test_missing_playlist_folder_is_not_a_config_error(tmp_path):
    """A USB stick or NAS mounted late: the config stays valid (the daemon warns, starts
    with what is there and picks the source up when it appears)."""
    cfg = load_config(write(tmp_path, "playlists:\n  favourites:\n    sources: [nowhere]\n"))
    assert cfg.playlists["favourites"].sources == (tmp_path / "nowhere",)


def test_mood_map_must_name_playlists(tmp_path):
    errs = errors_of(minimal(tmp_path, "mood:\n  map:\n    happy: favorites\n    sadd: favourites\n"))
    assert "mood.map.happy: 'favorites' is not a playlist; did you mean 'favourites'?" in errs
    assert "mood.map.sadd: unknown mood; did you mean 'sad'?" in errs


def test_volume_above_hard_maximum_and_bad_quiet_hours(tmp_path):
    errs = errors_of(minimal(tmp_path, "player:\n  volume: 0.8\n  max_volume: 0.5\n"
                                       "  quiet_hours:\n    start: '25:00'\n"))
    assert "player.volume: 0.8 is above player.max_volume 0.5" in errs
    assert "player.quiet_hours.start: must be a time HH:MM, got '25:00'" in errs


def test_an_invalid_value_is_not_compared_again(tmp_path):
    errs = errors_of(minimal(tmp_path, "camera:\n  retry_min_s: 0.01\n  retry_max_s: 0.2\n"))
    assert errs == ["camera.retry_min_s: must be between 0.1 and 600.0, got 0.01"]


def test_invalid_yaml_reports_line(tmp_path):
    p = write(tmp_path, "camera:\n  type: replay\n   fps: 3\n")
    errs = errors_of(p)
    assert errs[0].startswith("line 3, column")
    assert "invalid YAML" in errs[0]


def test_unreadable_and_missing_file(tmp_path):
    errs = errors_of(tmp_path / "absent.yaml")
    assert "file not found" in errs[0]
    p = minimal(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        p.chmod(0)
        assert "cannot be read (permission denied)" in errors_of(p)[0]
    binary = write(tmp_path, "", "bin.yaml")
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert "is a binary file, not YAML text" in errors_of(binary)[0]
    latin1 = write(tmp_path, "", "latin1.yaml")
    latin1.write_bytes("camera:\n  path: caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text" in errors_of(latin1)[0]
    assert "is a folder, not a config file" in errors_of(tmp_path)[0]


def test_bad_config_exits_78_with_every_error_and_no_traceback(tmp_path):
    p = minimal(tmp_path, "camera:\n  widht: 1\n  fps: 0\n")
    before = p.read_text()
    result = run_cli(["run", "--config", str(p), "--duration", "1"])
    assert result.returncode == EX_CONFIG
    out = result.stdout + result.stderr
    assert "camera.widht: unknown key; did you mean 'width'?" in out
    assert "camera.fps: must be between 0.1 and 120.0, got 0.0" in out
    assert "Traceback" not in out
    assert p.read_text() == before  # the owner's file is untouched


def test_short_playlist_forms_and_weights(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    p = write(tmp_path, yaml.safe_dump({
        "playlists": {"favourites": "a", "party": {"sources": ["a", "b"], "weight": 3,
                                                   "shuffle": False, "volume": 0.5}},
        "mood": {"map": {"happy": ["favourites", "party"]}}}))
    cfg = load_config(p)
    assert cfg.playlists["party"].weight == 3.0
    assert cfg.playlists["party"].shuffle is False
    assert cfg.playlists_for("happy") == ("favourites", "party")


def test_classifier_ensemble_resolves_like_model(tmp_path):
    """Relative to the config file's folder, ~ expanded, builtin: the shipped file; the
    default is no ensemble."""
    assert load_config(minimal(tmp_path)).classifier.ensemble == ()
    cfg = load_config(minimal(tmp_path, "classifier:\n  model: m/a.tflite\n  ensemble: "
                                        "[m/b.tflite, 'builtin:models/emotion_int8.tflite']\n"))
    assert cfg.classifier.ensemble == (str(tmp_path / "m" / "b.tflite"),
                                       str(REPO / "models" / "emotion_int8.tflite"))
    assert cfg.classifier.models() == (str(tmp_path / "m" / "a.tflite"), *cfg.classifier.ensemble)
    assert load_config(minimal(tmp_path, "classifier:\n  ensemble:\n")).classifier.ensemble == ()


@pytest.mark.parametrize("value,error", [
    ("m/b.tflite", "classifier.ensemble: must be a list of model paths, got 'm/b.tflite' (str); "
                   "write it as a list: [m/b.tflite]"),
    ("{m: b}", "classifier.ensemble: must be a list of model paths, got a mapping"),
    ("[m/b.tflite, 3]", "classifier.ensemble[1]: must be the path of an int8 .tflite model, "
                        "got 3 (int)"),
    ("['']", "classifier.ensemble[0]: must be the path of an int8 .tflite model, got '' (str)"),
    ("[a.tflite, b.tflite, c.tflite]", "classifier.ensemble: lists 3 models; at most 2 more "
     "models can be averaged with classifier.model (each one adds its inference to every "
     "face): remove 1"),
    ("['builtin:models/emotion_int8.tflite']", "classifier.ensemble[0]: "
     "'builtin:models/emotion_int8.tflite' is the same model as classifier.model; averaging "
     "a model with itself changes nothing: list other models or remove it"),
    ("[b.tflite, ./b.tflite]", "classifier.ensemble[1]: './b.tflite' is the same model as "
     "classifier.ensemble[0]; averaging a model with itself changes nothing: list other "
     "models or remove it"),
])
def test_classifier_ensemble_bad_values_are_one_line_errors(tmp_path, value, error):
    assert errors_of(minimal(tmp_path, f"classifier:\n  ensemble: {value}\n")) == [error]


def test_classifier_ensemble_same_file_by_another_name_is_a_duplicate(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.tflite").write_bytes(b"")
    (tmp_path / "link.tflite").symlink_to(tmp_path / "m" / "a.tflite")
    errs = errors_of(minimal(tmp_path, "classifier:\n  model: m/a.tflite\n"
                                       "  ensemble: [link.tflite]\n"))
    assert errs == ["classifier.ensemble[0]: 'link.tflite' is the same model as classifier.model; "
                    "averaging a model with itself changes nothing: list other models or remove it"]
