"""Balanced accuracy, per-class recall and the SFEW cross-domain check of `moodbox-convert evaluate`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed")

from helpers import SHARED, write_sfew_folder  # noqa: E402
from moodbox.converter.data import FER_CLASSES, DataError, save_npz, synthetic_faces  # noqa: E402
from moodbox.converter.evaluate import compute_metrics  # noqa: E402
from moodbox.converter.sfew import face_to_input, load_sfew  # noqa: E402

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_int8.tflite"


def test_balanced_accuracy_is_the_mean_recall_of_present_classes():
    y = np.array([3] * 90 + [1] * 10)
    always_happy = compute_metrics(y, np.full(100, 3), FER_CLASSES)
    assert always_happy.accuracy == pytest.approx(0.9)
    assert always_happy.balanced_accuracy == pytest.approx(0.5)  # happy 1.0, disgust 0.0
    half = compute_metrics(y, np.array([3] * 45 + [0] * 45 + [1] * 10), FER_CLASSES)
    assert half.balanced_accuracy == pytest.approx((0.5 + 1.0) / 2)
    assert half.per_class["disgust"]["recall"] == 1.0


def test_face_to_input_greys_and_resizes_the_whole_crop():
    crop = np.zeros((181, 143, 3), np.uint8)
    crop[:] = (10, 200, 50)  # B, G, R
    face = face_to_input(crop)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    assert int(face[0, 0]) == round(0.114 * 10 + 0.587 * 200 + 0.299 * 50)
    crop[:90] = 0  # the top half dark: the whole crop is kept, not a centred square
    face = face_to_input(crop)
    assert face[:20].max() == 0 and face[30:].min() > 0


def _sfew_folder(root: Path, n_per_split: int = 7) -> Path:
    return write_sfew_folder(root, {"train": n_per_split, "val": n_per_split})


def test_load_sfew_reads_splits_in_fer_class_order(tmp_path):
    root = _sfew_folder(tmp_path / "sfew")
    everything = load_sfew(root)
    assert everything.x.shape == (14, 48, 48) and everything.x.dtype == np.uint8
    assert everything.classes == FER_CLASSES
    val = load_sfew(root, "val")
    assert len(val) == 7 and sorted(val.y.tolist()) == list(range(7))


def test_load_sfew_refuses_bad_folders_in_one_line(tmp_path):
    with pytest.raises(DataError, match="no labels.json"):
        load_sfew(tmp_path)
    root = _sfew_folder(tmp_path / "sfew")
    with pytest.raises(DataError, match="split"):
        load_sfew(root, "test")
    labels = json.loads((root / "labels.json").read_text())
    labels["val/Angry/gone.png"] = "angry"
    (root / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(DataError, match="gone.png: missing or not an image"):
        load_sfew(root)
    labels.pop("val/Angry/gone.png")
    labels["val/Angry/clip_000.png"] = "contempt"
    (root / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(DataError, match="contempt"):
        load_sfew(root)
    (root / "labels.json").write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        load_sfew(root)


def test_evaluate_reports_balanced_and_cross_domain_for_an_int8_model(tmp_path, capsys):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter.cli import main as convert_cli

    faces = synthetic_faces(70, seed=3)
    save_npz(tmp_path / "val.npz", faces.x, faces.y)
    root = _sfew_folder(tmp_path / "sfew")
    assert convert_cli(["evaluate", "--model", str(TINY), "--data", str(tmp_path / "val.npz"),
                        "--sfew", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= out["balanced_accuracy"] <= 1.0 and "balanced_accuracy_flip" in out
    cross = out["cross_domain"]
    assert cross["n"] == 14 and set(cross["recall"]) == set(FER_CLASSES)
    assert cross["balanced_accuracy"] == pytest.approx(np.mean(list(cross["recall"].values())),
                                                       abs=1e-3)
    assert convert_cli(["evaluate", "--model", str(TINY), "--data", str(tmp_path / "val.npz"),
                        "--sfew", str(tmp_path / "nowhere")]) == 2
    assert "no labels.json" in capsys.readouterr().err


def test_the_shared_sfew_set_loads_with_its_documented_counts():
    root = SHARED / "sfew"
    if not (root / "labels.json").is_file():
        pytest.skip(f"{root} is absent (the shared data folder is not mounted)")
    faces = load_sfew(root)
    counts = np.bincount(faces.y, minlength=7).tolist()
    # SOURCES.md: angry 247, disgust 73, fear 120, happy 245, sad 223, surprise 146, neutral 223
    assert counts == [247, 73, 120, 245, 223, 146, 223]


def test_evaluate_scores_an_averaged_ensemble_named_a_plus_b(tmp_path, capsys):
    from moodbox.converter.evaluate import ensemble_members, predict_views

    shipped = TINY.parents[2] / "models" / "emotion_int8.tflite"
    faces = synthetic_faces(30, seed=5)
    a, b = predict_views(shipped, faces), predict_views(TINY, faces)
    both = predict_views(Path(f"{shipped}+{TINY}"), faces)
    np.testing.assert_allclose(both[0], (a[0] + b[0]) / 2, atol=1e-6)
    np.testing.assert_allclose(both[1], (a[1] + b[1]) / 2, atol=1e-6)
    assert both[5]["macs"] == a[5]["macs"] + b[5]["macs"]
    assert both[5]["size_bytes"] == a[5]["size_bytes"] + b[5]["size_bytes"]
    odd = tmp_path / "a+b.tflite"                       # a real file with a '+' in its name
    odd.write_bytes(TINY.read_bytes())
    assert ensemble_members(odd) == [odd]
    with pytest.raises(DataError, match="gone.tflite: no such model file"):
        predict_views(Path(f"{shipped}+{tmp_path / 'gone.tflite'}"), faces)
    save_npz(tmp_path / "val.npz", faces.x, faces.y)
    from moodbox.converter.cli import main as convert_cli
    assert convert_cli(["evaluate", "--model", f"{shipped}+{TINY}", "--data",
                        str(tmp_path / "val.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expect = np.mean((a[0] + b[0]).argmax(1) == faces.y)
    assert out["accuracy"] == pytest.approx(expect, abs=1e-4)


def test_added_faces_join_the_training_set_repeated_in_a_fixed_order(tmp_path):
    """`train --add-faces DIR --add-split S --add-repeat K`: the split's faces, prepared as
    `load_sfew` prepares them, come after the --train rows K times over; other splits stay out."""
    from moodbox.converter.train import TrainConfig, with_added_faces

    root = _sfew_folder(tmp_path / "sfew")
    base = synthetic_faces(20, seed=3)
    assert with_added_faces(base, TrainConfig()) is base
    both = with_added_faces(base, TrainConfig(add_faces=str(root), add_split="train",
                                              add_repeat=3))
    extra = load_sfew(root, "train")
    assert len(both) == 20 + 3 * 7 and both.classes == base.classes
    np.testing.assert_array_equal(both.x[:20], base.x)
    for k in range(3):
        np.testing.assert_array_equal(both.x[20 + 7 * k:27 + 7 * k], extra.x)
        np.testing.assert_array_equal(both.y[20 + 7 * k:27 + 7 * k], extra.y)
    val_faces = {f.tobytes() for f in load_sfew(root, "val").x}
    assert not any(f.tobytes() in val_faces for f in both.x[20:])


def test_added_faces_with_other_classes_or_no_faces_are_refused(tmp_path):
    from moodbox.converter.train import TrainConfig, with_added_faces

    root = _sfew_folder(tmp_path / "sfew")
    four = synthetic_faces(8, seed=1, classes=4)
    with pytest.raises(DataError, match="classes"):
        with_added_faces(four, TrainConfig(add_faces=str(root)))
    labels = json.loads((root / "labels.json").read_text())
    (root / "labels.json").write_text(json.dumps({k: v for k, v in labels.items()
                                                  if k.startswith("val/")}))
    with pytest.raises(DataError, match="no labelled faces in split 'train'"):
        with_added_faces(synthetic_faces(8, seed=1), TrainConfig(add_faces=str(root)))


@pytest.mark.parametrize("extra, message", [
    (["--add-faces", "{root}", "--add-repeat", "0"], "--add-repeat must be a whole number"),
    (["--add-faces", "{root}", "--augment", "camera", "--ferplus", "v.npz"],
     "--add-faces cannot go with --ferplus"),
    (["--add-faces", "{absent}"], "no labels.json"),
])
def test_bad_added_faces_are_refused_in_one_line(tmp_path, capsys, extra, message):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter.cli import main as convert_cli

    root = _sfew_folder(tmp_path / "sfew")
    tr = synthetic_faces(32, seed=1)
    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    extra = [e.format(root=root, absent=tmp_path / "absent") for e in extra]
    code = convert_cli(["train", "--train", str(tmp_path / "tr.npz"), "--val",
                        str(tmp_path / "tr.npz"), "--out", str(tmp_path / "m.keras"),
                        "--arch", "tiny", "--epochs", "1", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m.keras").exists()


def test_a_camera_run_trains_on_the_added_faces(tmp_path, monkeypatch):
    """One epoch of `train --augment camera --add-faces`: the batches are drawn from the
    --train faces plus twice the added split, the run records the folder and writes a model."""
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter import augment as aug
    from moodbox.converter.cli import main as convert_cli

    drawn_from: list[int] = []
    real = aug.epoch_batches

    def recording(x, targets, seed, epoch, recipe, labels=None):
        drawn_from.append(len(x))
        yield from real(x, targets, seed, epoch, recipe, labels)

    monkeypatch.setattr(aug, "epoch_batches", recording)

    root = _sfew_folder(tmp_path / "sfew")
    tr, va = synthetic_faces(20, seed=1), synthetic_faces(14, seed=2)
    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    save_npz(tmp_path / "va.npz", va.x, va.y)
    out = tmp_path / "run" / "m.keras"
    assert convert_cli(["train", "--train", str(tmp_path / "tr.npz"), "--val",
                        str(tmp_path / "va.npz"), "--out", str(out), "--arch", "tiny",
                        "--epochs", "1", "--batch-size", "8", "--augment", "camera",
                        "--add-faces", str(root), "--add-repeat", "2"]) == 0
    assert drawn_from == [20 + 2 * 7]
    state = json.loads(out.with_suffix(".train.json").read_text())
    assert state["config"]["add_faces"] == str(root) and state["config"]["add_repeat"] == 2
    assert out.is_file()
