"""workshop/compare_models.py: the paired test is right, and it runs on real int8 models."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from moodbox.converter.data import save_npz, synthetic_faces

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("compare_models", REPO / "workshop" / "compare_models.py")
compare_models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_models)


def test_mcnemar_exact_values():
    assert compare_models.mcnemar_p(0, 0) == 1.0
    assert compare_models.mcnemar_p(5, 5) == 1.0
    # 0 of 10 discordant faces on one side: 2 * 0.5^10
    assert compare_models.mcnemar_p(0, 10) == pytest.approx(2 / 1024)
    # symmetric, and 77 against 94 (the distilled student's one-view result) is not evidence
    assert compare_models.mcnemar_p(94, 77) == compare_models.mcnemar_p(77, 94)
    p = compare_models.mcnemar_p(77, 94)
    assert 0.2 < p < 0.25
    assert p == pytest.approx(2 * sum(math.comb(171, i) for i in range(78)) / 2 ** 171)


def test_runs_on_real_models_and_finds_no_difference_between_copies(tmp_path, capsys):
    faces = synthetic_faces(60, seed=3)
    save_npz(tmp_path / "f.npz", faces.x, faces.y)
    shipped = REPO / "models" / "emotion_int8.tflite"
    other = REPO / "tests" / "data" / "tiny_int8.tflite"  # another real int8 model, tracked
    assert compare_models.main([str(shipped), str(shipped), str(other),
                                "--data", str(tmp_path / "f.npz")]) == 0
    out = capsys.readouterr().out
    first = out.split(f"{other} against")[0]
    assert "(+0.00 points); only A right: 0, only B right: 0; McNemar p = 1.000" in first
    assert out.count("flip-averaged:") == 2 and "fear" in out


def test_a_missing_model_is_one_clear_line(tmp_path, capsys):
    faces = synthetic_faces(10, seed=3)
    save_npz(tmp_path / "f.npz", faces.x, faces.y)
    assert compare_models.main([str(REPO / "models" / "emotion_int8.tflite"),
                                str(tmp_path / "gone.tflite"), "--data",
                                str(tmp_path / "f.npz")]) == 2
    assert "gone.tflite: no such model file" in capsys.readouterr().err


def test_a_plus_names_an_averaged_ensemble(tmp_path, capsys):
    faces = synthetic_faces(40, seed=4)
    save_npz(tmp_path / "f.npz", faces.x, faces.y)
    shipped = REPO / "models" / "emotion_int8.tflite"
    other = REPO / "tests" / "data" / "tiny_int8.tflite"
    # the same model twice is that model: no face changes side
    assert compare_models.main([str(shipped), f"{shipped}+{shipped}",
                                "--data", str(tmp_path / "f.npz")]) == 0
    assert "only A right: 0, only B right: 0; McNemar p = 1.000" in capsys.readouterr().out
    from moodbox.converter.data import load_npz
    from moodbox.converter.evaluate import predict_views
    loaded = load_npz(tmp_path / "f.npz")
    a, b = predict_views(shipped, loaded), predict_views(other, loaded)
    plain, flip = compare_models.predictions(Path(f"{shipped}+{other}"), loaded)
    assert np.array_equal(plain, (a[0] + b[0]).argmax(1))
    assert np.array_equal(flip, (a[0] + a[1] + b[0] + b[1]).argmax(1))
    assert compare_models.main([str(shipped), f"{shipped}+{tmp_path / 'gone.tflite'}",
                                "--data", str(tmp_path / "f.npz")]) == 2
    assert "gone.tflite: no such model file" in capsys.readouterr().err


def test_an_sfew_split_is_compared_on_that_split_only(tmp_path, capsys):
    """--sfew-split val: a model trained on SFEW's train films is checked on its val films."""
    pytest.importorskip("cv2", reason="OpenCV is not installed")
    from helpers import write_sfew_folder

    write_sfew_folder(tmp_path, {"train": 5, "val": 9})
    shipped = REPO / "models" / "emotion_int8.tflite"
    for split, n in (("val", 9), ("all", 14)):
        assert compare_models.main([str(shipped), str(shipped), "--data", str(tmp_path),
                                    "--sfew-split", split]) == 0
        assert f"on {tmp_path} {split} ({n} faces)" in capsys.readouterr().out
