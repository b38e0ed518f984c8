"""Camera-like augmentation, mixup/cutmix, FER+ targets and the resumable data order."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2", reason="OpenCV is not installed")

from moodbox.converter import augment as aug  # noqa: E402
from moodbox.converter.data import DataError, FaceSet, save_npz, synthetic_faces  # noqa: E402
from moodbox.converter.ferplus import blend_targets, load_votes, vote_distribution  # noqa: E402

ALWAYS = aug.CameraAugment(flip=1.0, p_light=1.0, p_blur=1.0, p_noise=1.0, p_jpeg=1.0,
                           p_occlude=1.0)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return synthetic_faces(32, seed=5).x


def test_augment_keeps_shape_dtype_and_range(faces):
    rng = np.random.default_rng(0)
    out = aug.augment_faces(faces, rng, ALWAYS)
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert not np.array_equal(out, faces)
    for step in (aug.warp_geometry, aug.light_and_gamma, aug.blur, aug.sensor_noise, aug.jpeg,
                 aug.occlude):
        one = step(faces[0], np.random.default_rng(1), ALWAYS)
        assert one.shape == faces[0].shape and one.dtype == np.uint8, step.__name__


def test_same_seed_same_views_other_seed_other_views(faces):
    a = aug.augment_faces(faces, np.random.default_rng(7), ALWAYS)
    b = aug.augment_faces(faces, np.random.default_rng(7), ALWAYS)
    c = aug.augment_faces(faces, np.random.default_rng(8), ALWAYS)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_low_light_darkens_and_geometry_identity_is_identity(faces):
    dark = aug.CameraAugment(light=(0.4, 0.4), gamma=(1.0, 1.0), contrast=(1.0, 1.0))
    out = aug.light_and_gamma(faces[0], np.random.default_rng(0), dark)
    assert out.mean() == pytest.approx(faces[0].mean() * 0.4, abs=1.0)
    still = aug.CameraAugment(scale=(1.0, 1.0), shift=0.0, aspect=(1.0, 1.0), rotate_deg=0.0,
                              flip=0.0)
    assert np.array_equal(aug.warp_geometry(faces[0], np.random.default_rng(0), still), faces[0])
    mirror = aug.CameraAugment(scale=(1.0, 1.0), shift=0.0, aspect=(1.0, 1.0), rotate_deg=0.0,
                               flip=1.0)
    assert np.array_equal(aug.warp_geometry(faces[0], np.random.default_rng(0), mirror),
                          faces[0][:, ::-1])


def test_occlusion_covers_a_bounded_box(faces):
    cfg = aug.CameraAugment(occlude_side=(0.25, 0.25))
    out = aug.occlude(faces[0], np.random.default_rng(3), cfg)
    changed = np.argwhere(out != faces[0])
    assert len(changed)
    h, w = np.ptp(changed, axis=0) + 1
    assert h <= 12 and w <= 12  # 25% of 48


def test_bad_face_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        aug.augment_face(np.zeros((48, 48), np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="probability"):
        aug.CameraAugment(p_blur=1.5)
    with pytest.raises(ValueError, match="range"):
        aug.CameraAugment(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="mix"):
        aug.BatchRecipe(mix="fancy")


@pytest.mark.parametrize("mixer", [aug.mixup, aug.cutmix])
def test_mixing_keeps_targets_distributions_and_pixels_in_range(faces, mixer):
    x = faces[:16].astype(np.float32)[..., None] / 255.0
    y = np.eye(7, dtype=np.float32)[np.arange(16) % 7]
    xm, ym = mixer(x, y, np.random.default_rng(0))
    assert xm.shape == x.shape and xm.dtype == np.float32 and ym.shape == y.shape
    assert xm.min() >= 0.0 and xm.max() <= 1.0
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-6)
    assert (ym.max(axis=1) >= 0.5 - 1e-6).all() or mixer is aug.cutmix
    xm2, ym2 = mixer(x, y, np.random.default_rng(0))
    assert np.array_equal(xm, xm2) and np.array_equal(ym, ym2)


def test_epoch_order_and_batches_depend_only_on_seed_epoch_and_batch(faces):
    targets = np.eye(7, dtype=np.float32)[np.arange(len(faces)) % 7]
    recipe = aug.BatchRecipe(batch_size=8, mix="mixup", mix_prob=1.0)
    first = list(aug.epoch_batches(faces, targets, seed=3, epoch=2, recipe=recipe))
    again = list(aug.epoch_batches(faces, targets, seed=3, epoch=2, recipe=recipe))
    other = list(aug.epoch_batches(faces, targets, seed=3, epoch=3, recipe=recipe))
    assert len(first) == 4 and first[0][0].shape == (8, 48, 48, 1)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(first, again))
    assert not np.array_equal(first[0][0], other[0][0])
    assert sorted(aug.epoch_order(3, 2, 100)) == list(range(100))
    assert not np.array_equal(aug.epoch_order(3, 2, 100), aug.epoch_order(3, 3, 100))


def test_ferplus_votes_map_to_the_seven_classes():
    votes = np.array([[4, 0, 0, 0, 1, 0, 0, 4, 1, 0],   # neutral 4, anger 1, contempt, unknown
                      [0, 0, 0, 0, 0, 0, 0, 2, 3, 5],   # no vote on a shared class
                      [-1] * 10], dtype=np.int16)       # no votes known
    to_class = np.array([6, 3, 5, 4, 0, 1, 2, -1, -1, -1])
    dist = vote_distribution(votes, to_class, 7)
    np.testing.assert_allclose(dist[0], [0.2, 0, 0, 0, 0, 0, 0.8])
    assert not dist[1].any() and not dist[2].any()
    blended = blend_targets(np.array([0, 3, 5]), dist, 7, 0.5)
    np.testing.assert_allclose(blended[0], [0.6, 0, 0, 0, 0, 0, 0.4])
    np.testing.assert_allclose(blended[1], np.eye(7)[3])  # falls back to the label
    np.testing.assert_allclose(blended.sum(axis=1), 1.0)


def _votes_npz(path: Path, n: int, rows: np.ndarray) -> Path:
    np.savez(path, votes=np.tile(np.array([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], np.int16), (n, 1)),
             vote_classes=np.array(["neutral", "happiness", "surprise", "sadness", "anger",
                                    "disgust", "fear", "contempt", "unknown", "NF"]),
             source_row=rows.astype(np.int32),
             ferplus_to_fer2013=np.array([6, 3, 5, 4, 0, 1, 2, -1, -1, -1], np.int8),
             fer2013_classes=np.array(["angry", "disgust", "fear", "happy", "sad", "surprise",
                                       "neutral"]))
    return path


def test_load_votes_checks_alignment(tmp_path):
    faces = synthetic_faces(10, seed=1)
    np.savez(tmp_path / "faces.npz", x=faces.x, y=faces.y, classes=np.array(faces.classes),
             source_row=np.arange(10, dtype=np.int32))
    on_disk = FaceSet(faces.x, faces.y, faces.classes, str(tmp_path / "faces.npz"))
    dist = load_votes(_votes_npz(tmp_path / "ok.npz", 10, np.arange(10)), on_disk)
    np.testing.assert_allclose(dist[0], [0, 0, 0, 0.5, 0, 0, 0.5])
    with pytest.raises(DataError, match="not aligned"):
        load_votes(_votes_npz(tmp_path / "shifted.npz", 10, np.arange(1, 11)), on_disk)
    with pytest.raises(DataError, match="do not fit 10 faces"):
        load_votes(_votes_npz(tmp_path / "short.npz", 9, np.arange(9)), on_disk)
    with pytest.raises(DataError, match="no such file"):
        load_votes(tmp_path / "absent.npz", on_disk)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable NPZ"):
        load_votes(tmp_path / "junk.npz", on_disk)


def test_resumed_camera_run_sees_the_batches_of_an_uninterrupted_run(tmp_path, monkeypatch):
    """Two epochs in one go and one epoch + --resume feed identical second-epoch batches."""
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter.cli import main as convert_cli

    seen: dict[str, list[tuple[int, str]]] = {}
    real = aug.epoch_batches

    def recording(x, targets, seed, epoch, recipe, labels=None):
        assert recipe.balance == 0.5 and labels is not None
        for xb, yb in real(x, targets, seed, epoch, recipe, labels):
            seen[run].append((epoch, hashlib.sha1(xb.tobytes() + yb.tobytes()).hexdigest()))
            yield xb, yb

    monkeypatch.setattr(aug, "epoch_batches", recording)
    tr, va = synthetic_faces(96, seed=1), synthetic_faces(32, seed=2)
    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    save_npz(tmp_path / "va.npz", va.x, va.y)

    def train(out: str, epochs: int, *extra: str) -> None:
        assert convert_cli(["train", "--train", str(tmp_path / "tr.npz"), "--val",
                            str(tmp_path / "va.npz"), "--out", str(tmp_path / out / "m.keras"),
                            "--arch", "tiny", "--epochs", str(epochs), "--batch-size", "16",
                            "--augment", "camera", "--mix", "cutmix", "--seed", "9",
                            "--balance", "0.5", *extra]) == 0

    run = "whole"
    seen[run] = []
    train("whole", 2)
    run = "split"
    seen[run] = []
    train("split", 1)
    train("split", 2, "--resume")
    assert [e for e, _ in seen["whole"]] == [0] * 6 + [1] * 6
    assert seen["split"] == seen["whole"]
    assert seen["whole"][:6] != seen["whole"][6:]


def test_online_teachers_score_the_very_view_the_student_sees(tmp_path, capsys):
    """Consistent distillation: the teacher half of every target is the teachers' softened
    probability on that batch's augmented, mixed faces; a 1-epoch run trains with it."""
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    import keras

    from moodbox.converter import models
    from moodbox.converter.cli import main as convert_cli
    from moodbox.converter.train import TrainConfig, camera_dataset, load_online_teachers

    keras.utils.set_random_seed(0)
    teacher_path = tmp_path / "teacher.keras"
    models.build("tiny", input_size=48).save(teacher_path)
    tr, va = synthetic_faces(64, seed=1), synthetic_faces(32, seed=2)
    cfg = TrainConfig(arch="tiny", batch_size=16, augment="camera", mix="mixup", mix_prob=1.0,
                      online_teachers=(str(teacher_path),), distill_weight=0.5, temperature=2.0)
    teachers = load_online_teachers(cfg)
    onehot = np.eye(7, dtype=np.float32)[tr.y]
    x, y = next(iter(camera_dataset(tr, onehot, cfg, epoch=0, teachers=teachers)))
    plain_x, plain_y = next(aug.epoch_batches(tr.x, onehot, cfg.seed, 0, aug.BatchRecipe(
        batch_size=16, mix="mixup", mix_prob=1.0)))
    np.testing.assert_allclose(x.numpy(), plain_x, atol=1e-6)
    assert y.shape == (16, 14)
    np.testing.assert_allclose(y.numpy()[:, :7], plain_y, atol=1e-6)
    p = keras.ops.convert_to_numpy(keras.ops.softmax(teachers[0](plain_x, training=False)))
    q = np.exp(np.log(np.clip(p, 1e-12, 1)) / 2.0)
    np.testing.assert_allclose(y.numpy()[:, 7:], q / q.sum(1, keepdims=True), atol=1e-5)

    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    save_npz(tmp_path / "va.npz", va.x, va.y)
    base = ["train", "--train", str(tmp_path / "tr.npz"), "--val", str(tmp_path / "va.npz"),
            "--out", str(tmp_path / "s" / "m.keras"), "--arch", "tiny", "--epochs", "1",
            "--batch-size", "16"]
    assert convert_cli(base + ["--augment", "camera", "--online-teachers",
                               str(teacher_path)]) == 0
    assert (tmp_path / "s" / "m.keras").is_file()
    assert convert_cli(base + ["--online-teachers", str(teacher_path)]) == 2
    assert "--online-teachers needs --augment camera" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--mix", "mixup"], "need --augment camera"),
    (["--balance", "0.5"], "need --augment camera"),
    (["--augment", "camera", "--balance", "2"], "--balance must lie in [0, 1]"),
    (["--augment", "camera", "--mix-prob", "1.5"], "--mix-prob"),
    (["--augment", "camera", "--ferplus", "absent.npz"], "absent.npz: no such file"),
    (["--augment", "camera", "--teacher-labels", "x.npz"], "--online-teachers"),
])
def test_bad_recipes_are_refused_in_one_line(tmp_path, capsys, extra, message):
    pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")
    from moodbox.converter.cli import main as convert_cli

    tr = synthetic_faces(32, seed=1)
    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    code = convert_cli(["train", "--train", str(tmp_path / "tr.npz"), "--val",
                        str(tmp_path / "tr.npz"), "--out", str(tmp_path / "m.keras"),
                        "--arch", "tiny", "--epochs", "1", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_class_balanced_order_gives_rare_classes_their_share_and_repeats(faces):
    labels = np.array([0] * 900 + [1] * 100)             # a rare class, 10% of the faces
    plain = aug.epoch_order(5, 0, 1000, labels, 0.0)
    assert sorted(plain) == list(range(1000))
    full = aug.epoch_order(5, 0, 1000, labels, 1.0)
    again = aug.epoch_order(5, 0, 1000, labels, 1.0)
    assert np.array_equal(full, again) and len(full) == 1000
    assert 0.45 < np.mean(labels[full] == 1) < 0.55      # equal shares
    root = aug.epoch_order(5, 0, 1000, labels, 0.5)
    assert 0.20 < np.mean(labels[root] == 1) < 0.30      # sqrt: 10/(30+10) = 25%
    np.testing.assert_allclose(aug.class_shares(labels, 0.5), [0.75, 0.25])
    assert not np.array_equal(full, aug.epoch_order(5, 1, 1000, labels, 1.0))
    with pytest.raises(ValueError, match="label"):
        aug.epoch_order(5, 0, 1000, None, 0.5)
    with pytest.raises(ValueError, match="balance"):
        aug.BatchRecipe(balance=1.5)
    targets = np.eye(7, dtype=np.float32)[np.arange(len(faces)) % 7]
    recipe = aug.BatchRecipe(batch_size=8, balance=1.0)
    batch = next(aug.epoch_batches(faces, targets, 3, 0, recipe, labels=np.arange(len(faces)) % 7))
    assert batch[0].shape == (8, 48, 48, 1)
