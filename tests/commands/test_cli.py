"""`moodbox classify` and `moodbox check` as users and other tools call them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from helpers import DATA, REPO, make_setup, run_cli, write_tone

MODEL = str(REPO / "models" / "emotion_int8.tflite")
EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_classify_json_one_object_per_image(astronaut, grace_hopper, no_face_photo):
    r = run_cli(["classify", "--json", str(astronaut), str(no_face_photo), str(grace_hopper)])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [rec["image"] for rec in records] == [str(astronaut), str(no_face_photo), str(grace_hopper)]
    assert records[1]["faces"] == []
    for rec in (records[0], records[2]):
        assert len(rec["faces"]) == 1
        face = rec["faces"][0]
        assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
        assert face["emotion"] in EMOTIONS
        assert set(face["probs"]) == EMOTIONS
        assert abs(sum(face["probs"].values()) - 1.0) < 0.02
        assert face["emotion"] == max(face["probs"], key=face["probs"].get)


def test_classify_faces_sorted_largest_first(shared_faces):
    r = run_cli(["classify", "--json", str(shared_faces / "two_people.jpg")])
    faces = json.loads(r.stdout)["faces"]
    assert len(faces) == 2
    areas = [f["box"][2] * f["box"][3] for f in faces]
    assert areas == sorted(areas, reverse=True)


@pytest.mark.parametrize("listeners", ["largest", "all"])
def test_classify_lists_every_face_of_a_group_whatever_drives_the_mood(listeners, tmp_path,
                                                                      shared_faces):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())  # builtin: paths stay valid
    cfg["faces"]["listeners"] = listeners
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = run_cli(["classify", "--config", str(path), "--json", str(shared_faces / "group_selfie.jpg"),
                 str(shared_faces / "two_people.jpg")])
    assert r.returncode == 0, r.stderr
    group, pair = (json.loads(line) for line in r.stdout.strip().splitlines())
    assert len(group["faces"]) == 6 and len(pair["faces"]) == 2
    for face in group["faces"] + pair["faces"]:
        assert 0.35 <= face["score"] <= 1.0
        assert face["emotion"] == max(face["probs"], key=face["probs"].get)


def test_classify_recommend_tracks_from_the_library(astronaut):
    r = run_cli(["classify", "--json", "--recommend", "2", str(astronaut)])
    assert r.returncode == 0, r.stderr
    face = json.loads(r.stdout)["faces"][0]
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    assert face["playlist"] == (cfg["mood"]["map"][face["emotion"]] or cfg["player"]["default_playlist"])
    assert len(face["tracks"]) == 2
    assert all(Path(t).is_file() and Path(t).parent.name == face["playlist"] for t in face["tracks"])


def test_classify_bad_image_is_reported_not_raised(tmp_path, astronaut):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    r = run_cli(["classify", "--json", str(bad), str(tmp_path / "missing.png"), str(astronaut)])
    assert r.returncode == 1
    recs = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert "not a readable image" in recs[0]["error"]
    assert "no such file" in recs[1]["error"]
    assert len(recs[2]["faces"]) == 1  # the good one is still classified
    assert "Traceback" not in r.stderr


def test_classify_bad_model_exits_78(tmp_path, astronaut):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"junk" * 10)
    r = run_cli(["classify", "--model", str(bad), str(astronaut)])
    assert r.returncode == 78
    assert "m.tflite is not a TFLite model" in r.stderr


def _classifier_config(tmp_path, name: str, **classifier) -> Path:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())  # builtin: paths stay valid
    cfg["classifier"].update(classifier)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_classify_with_an_ensemble_averages_its_models(tmp_path, astronaut, grace_hopper):
    tiny = str(DATA / "tiny_int8.tflite")
    runs = {}
    for name, classifier in (("ensemble", {"ensemble": [tiny]}), ("shipped", {}),
                             ("tiny", {"model": tiny})):
        config = _classifier_config(tmp_path, f"{name}.yaml", **classifier)
        r = run_cli(["classify", "--config", str(config), "--json", str(astronaut),
                     str(grace_hopper)])
        assert r.returncode == 0, r.stderr
        runs[name] = [json.loads(line)["faces"][0] for line in r.stdout.strip().splitlines()]
    for ens, one, two in zip(runs["ensemble"], runs["shipped"], runs["tiny"]):
        assert ens["box"] == one["box"] == two["box"]
        for emotion, p in ens["probs"].items():
            assert p == pytest.approx((one["probs"][emotion] + two["probs"][emotion]) / 2, abs=2e-4)
        assert ens["emotion"] == max(ens["probs"], key=ens["probs"].get)
    # --model replaces classifier.model: naming the ensemble's own model is refused
    r = run_cli(["classify", "--config", str(tmp_path / "ensemble.yaml"), "--model", tiny,
                 str(astronaut)])
    assert r.returncode == 78 and "Traceback" not in r.stderr
    assert "tiny_int8.tflite is also in classifier.ensemble" in r.stderr


def test_check_names_every_model_of_the_ensemble(tmp_path, astronaut):
    tiny = DATA / "tiny_int8.tflite"
    config = make_setup(tmp_path, astronaut, classifier__ensemble=[str(tiny)])
    r = run_cli(["check", "--config", str(config)], env={"SDL_AUDIODRIVER": "disk",
                                                         "SDL_DISKAUDIOFILE": os.devnull})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"[  ok] model      ensemble of 2 models ({MODEL}, {tiny}) (" in r.stdout
    assert "inference ran" in r.stdout
    swapped = tmp_path / "swapped.tflite"  # the same network, its classes in another order
    swapped.write_bytes(tiny.read_bytes())
    info = json.loads((DATA / "tiny_int8.json").read_text())
    info["classes"] = info["classes"][::-1]
    (tmp_path / "swapped.json").write_text(json.dumps(info))
    config.write_text(config.read_text().replace(str(tiny), str(swapped)))
    r = run_cli(["check", "--config", str(config)], env={"SDL_AUDIODRIVER": "disk",
                                                         "SDL_DISKAUDIOFILE": os.devnull})
    assert r.returncode == 1
    assert f"[FAIL] model      models {MODEL} and {swapped} cannot be averaged: they differ in " \
           "classes" in r.stdout
    assert "remove swapped.tflite from classifier.ensemble" in r.stdout


def test_check_reports_per_mood_counts_and_skipped_files(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    (tmp_path / "happy" / "broken.ogg").write_bytes(b"nope")
    (tmp_path / "happy" / "notes.m4a").write_bytes(b"....")
    write_tone(tmp_path / "happy" / "second.wav", 500, 0.3)
    for f in (tmp_path / "sad").iterdir():
        f.unlink()  # an empty playlist falls back to favourites
    r = run_cli(["check", "--config", str(config)], env={"SDL_AUDIODRIVER": "disk",
                                                         "SDL_DISKAUDIOFILE": os.devnull})
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "[  ok] config" in out and "[  ok] model" in out and "inference ran" in out
    assert "[  ok] happy      happy: 2 playable" in out
    assert "[warn] sad        sad: 0 playable; falls back to favourites" in out
    assert "broken.ogg: not a valid ogg file" in out
    assert "notes.m4a: unsupported format .m4a" in out
    assert "[  ok] camera     replay" in out
    assert "[  ok] audio" in out
    assert "ready to run" in out


def test_check_bad_config_lists_errors_and_exits_78(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("camera:\n  type: webcam\nplaylists:\n  favourites: [/nope]\n")
    r = run_cli(["check", "--config", str(p)])
    assert r.returncode == 78
    assert "camera.type: must be one of picamera2, opencv, replay, got 'webcam'" in r.stdout


def test_check_blocking_problem_exits_1(tmp_path, astronaut):
    config = make_setup(tmp_path, astronaut)
    text = config.read_text().replace(MODEL, str(tmp_path / "gone.tflite"))
    config.write_text(text)
    r = run_cli(["check", "--config", str(config)], env={"SDL_AUDIODRIVER": "disk",
                                                         "SDL_DISKAUDIOFILE": os.devnull})
    assert r.returncode == 1
    assert "[FAIL] model" in r.stdout and "gone.tflite does not exist" in r.stdout
    assert "1 problem(s) block running" in r.stdout
