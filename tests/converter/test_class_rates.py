"""`moodbox-convert class-rates`: a per-class logit shift fitted on the training faces and
folded into the model's last Dense layer."""
from __future__ import annotations

import numpy as np
import pytest

from moodbox.converter.data import DataError, save_npz, synthetic_faces
from moodbox.converter.prior import fit_class_rates, predict_shifted

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _views(n: int = 4000, seed: int = 0):
    """Logits of a model that names class 2 too rarely: its true faces often score class 4
    higher; two noisy views of each face."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    base = rng.normal(0, 1, (n, 7))
    base[np.arange(n), y] += 2.5
    base[y == 2, 4] += 2.0  # fear faces read as sad
    return [base + rng.normal(0, 0.3, base.shape) for _ in range(2)], y


def test_the_shift_makes_the_named_classes_as_frequent_as_their_labels():
    views, y = _views()
    labels = np.bincount(y, minlength=7)
    fit = fit_class_rates(views, y, CLASSES, ("fear",))
    before = np.bincount(predict_shifted(views, np.zeros(7)), minlength=7)
    assert before[2] < 0.8 * labels[2]  # the problem is there
    assert abs(int(fit.after[2]) - int(labels[2])) <= 2
    assert fit.shift[2] > 0 and np.count_nonzero(fit.shift) == 1
    np.testing.assert_array_equal(fit.before, before)
    fear_before = np.mean(predict_shifted(views, np.zeros(7))[y == 2] == 2)
    assert np.mean(predict_shifted(views, fit.shift)[y == 2] == 2) > fear_before + 0.05
    assert "fear" in fit.summary() and "shift +" in fit.summary()


def test_two_classes_settle_jointly_and_a_target_replaces_the_labels():
    views, y = _views(seed=1)
    fit = fit_class_rates(views, y, CLASSES, ("fear", "disgust"))
    labels = np.bincount(y, minlength=7)
    assert all(abs(int(fit.after[c]) - int(labels[c])) <= 3 for c in (1, 2))
    named = np.bincount(predict_shifted(views, np.zeros(7)), minlength=7)
    same = fit_class_rates(views, y, CLASSES, ("fear",), target=named)
    assert same.shift[2] == 0  # already named as often as the target says


def test_only_classes_named_too_rarely_are_raised():
    """sad is named more often than labelled (it takes the fear faces): it is not lowered."""
    views, y = _views(seed=2)
    labels = np.bincount(y, minlength=7)
    fit = fit_class_rates(views, y, CLASSES, ("sad", "fear"))
    assert fit.before[4] > labels[4] and fit.shift[4] == 0
    assert fit.shift[2] > 0


def test_unknown_or_no_classes_are_refused():
    views, y = _views(200)
    with pytest.raises(DataError, match="fright not among the model's classes"):
        fit_class_rates(views, y, CLASSES, ("fright",))
    with pytest.raises(DataError, match="none given"):
        fit_class_rates(views, y, CLASSES, ())


def test_the_corrected_model_carries_the_shift_in_its_last_layer(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    import keras

    from moodbox.converter import models
    from moodbox.converter.cli import main as convert_cli
    from moodbox.converter.convert import faces_to_input
    from moodbox.vision.modelinfo import ModelInfo, read_sidecar, write_sidecar

    keras.utils.set_random_seed(3)
    model = models.build("tiny", input_size=48)
    model.save(tmp_path / "m.keras")
    write_sidecar(tmp_path / "m.keras", ModelInfo(extra={"arch": "tiny"}))
    faces = synthetic_faces(300, seed=4)
    save_npz(tmp_path / "tr.npz", faces.x, faces.y)
    out = tmp_path / "fixed" / "m.keras"
    assert convert_cli(["class-rates", "--model", str(tmp_path / "m.keras"), "--train",
                        str(tmp_path / "tr.npz"), "--classes", "fear,disgust",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fear" in printed and f"wrote {out}" in printed
    info = read_sidecar(out)
    shift = info.extra["class_rate_shift"]
    assert set(shift) == {"fear", "disgust"} and info.extra["arch"] == "tiny"
    assert info.extra["class_rate_target"] == "training labels"
    x = faces_to_input(faces.x[:16], info)
    before = keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0)
    after = keras.models.load_model(out).predict(x, verbose=0)
    want = before.copy()
    want[:, 1] += shift["disgust"]
    want[:, 2] += shift["fear"]
    np.testing.assert_allclose(after, want, atol=2e-3)

    again = tmp_path / "again" / "m.keras"  # against itself as the reference: no shift
    assert convert_cli(["class-rates", "--model", str(tmp_path / "m.keras"), "--train",
                        str(tmp_path / "tr.npz"), "--classes", "fear", "--reference",
                        str(tmp_path / "m.keras"), "--out", str(again)]) == 0
    assert abs(read_sidecar(again).extra["class_rate_shift"]["fear"]) < 0.01
    assert "reference" in capsys.readouterr().out


def test_a_model_without_a_linear_last_layer_or_a_bad_class_is_one_line(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    import keras

    from moodbox.converter.cli import main as convert_cli

    inp = keras.Input((48, 48, 1))
    out = keras.layers.Dense(7, activation="relu")(keras.layers.GlobalAveragePooling2D()(inp))
    keras.Model(inp, out).save(tmp_path / "relu.keras")
    faces = synthetic_faces(20, seed=1)
    save_npz(tmp_path / "tr.npz", faces.x, faces.y)
    base = ["class-rates", "--train", str(tmp_path / "tr.npz"), "--out", str(tmp_path / "o.keras")]
    assert convert_cli(base + ["--model", str(tmp_path / "relu.keras"), "--classes", "fear"]) == 2
    err = capsys.readouterr().err
    assert "does not end in a linear Dense layer" in err and "Traceback" not in err
    from moodbox.converter import models
    models.build("tiny", input_size=48).save(tmp_path / "tiny.keras")
    assert convert_cli(base + ["--model", str(tmp_path / "tiny.keras"), "--classes", "fright"]) == 2
    err = capsys.readouterr().err
    assert "fright not among the model's classes" in err and "Traceback" not in err
    assert convert_cli(base + ["--model", str(tmp_path / "absent.keras"), "--classes", "fear"]) == 2
    assert "absent.keras: no such model file" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()
