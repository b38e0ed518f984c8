"""Train an emotion CNN on FER2013-style NPZ faces, resumable from per-epoch checkpoints."""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from moodbox.converter import models
from moodbox.converter.data import DataError, FaceSet
from moodbox.vision.modelinfo import ModelInfo

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "resnet"
    width: int | None = None
    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 2
    patience: int = 15
    seed: int = 1234
    scale: str = "unit"
    threads: int = 0  # 0: let TensorFlow decide
    init_from: str = ""  # start from this model's weights (a fine-tuning cycle)
    teacher_labels: str = ""  # soft-label NPZ (moodbox-convert soft-labels): distillation
    distill_weight: float = 0.0  # share of the loss from the teachers (0: none)
    temperature: float = 1.0  # softening of teacher and student for the distillation term
    augment: str = "classic"  # classic: TF warp + erase; camera: converter/augment.py, resumable order
    mix: str = "none"  # with augment=camera: none, mixup or cutmix
    mix_prob: float = 0.5  # share of batches mixed
    mix_alpha: float = 0.2
    ferplus: str = ""  # FER+ votes NPZ of the training faces: blended into the targets
    ferplus_weight: float = 0.5  # target = (1 - w) * one-hot + w * FER+ vote distribution
    online_teachers: tuple[str, ...] = ()  # with augment=camera: teachers scored on each view
    precision: str = "float32"  # or mixed_bfloat16 (Keras policy); saved models are float32
    balance: float = 0.0  # with augment=camera: class-balanced sampling exponent (0 off, 1 equal)
    add_faces: str = ""  # an SFEW-style folder (labels.json) whose faces join the training set
    add_split: str = "train"  # which of its splits (train, val, all)
    add_repeat: int = 1  # each added face appears this many times per epoch


def paths_for(out: Path) -> dict[str, Path]:
    """Files that go with a trained model: resume checkpoint, last epoch's weights, state
    and per-epoch log. The checkpoint is compact (weights float32, SGD momentum float16:
    4.2 MB for resnet32) so that a run's resume point can be committed."""
    stem = out.with_suffix("")
    return {
        "checkpoint": Path(f"{stem}.ckpt.npz"),
        "last": Path(f"{stem}.last.keras"),
        "state": Path(f"{stem}.train.json"),
        "log": Path(f"{stem}.log.csv"),
        "recall": Path(f"{stem}.recall.csv"),
    }


def save_checkpoint(model, path: Path) -> None:
    """Weights (exact) and optimizer state (iterations exact, momentum as float16), atomically."""
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    for i, var in enumerate(model.optimizer.variables):
        value = np.asarray(var.numpy())
        if value.ndim and value.dtype == np.float32:
            value = value.astype(np.float16)
        arrays[f"o{i}"] = value
    from moodbox import files

    fd, tmp = files.temp_beside(path)  # exclusive: never through a planted symlink
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def load_checkpoint(model, path: Path) -> None:
    """Restore what save_checkpoint wrote into a built and compiled model."""
    with np.load(path, allow_pickle=False) as data:
        weights = [data[f"w{i}"] for i in range(sum(k.startswith("w") for k in data.files))]
        opt_values = [data[f"o{i}"] for i in range(sum(k.startswith("o") for k in data.files))]
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise ValueError(f"{path}: checkpoint does not fit this architecture ({exc})") from None
    model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    if len(variables) != len(opt_values):
        raise ValueError(f"{path}: checkpoint has {len(opt_values)} optimizer variables, "
                         f"the optimizer {len(variables)}")
    for var, value in zip(variables, opt_values):
        var.assign(value.astype(var.dtype))


def _keras():
    import keras  # noqa: WPS433 (TensorFlow stays out of the edge side)
    return keras


def make_schedule(cfg: TrainConfig, steps_per_epoch: int):
    keras = _keras()

    @keras.saving.register_keras_serializable(package="moodbox")
    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up, then cosine decay to zero at the last step."""

        def __init__(self, peak: float, warmup_steps: int, total_steps: int):
            self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

        def __call__(self, step):
            ops = keras.ops
            step = ops.cast(step, "float32")
            warm = self.peak * (step + 1.0) / max(1, self.warmup_steps)
            progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            cosine = 0.5 * self.peak * (1.0 + ops.cos(math.pi * ops.clip(progress, 0.0, 1.0)))
            return ops.where(step < self.warmup_steps, warm, cosine)

        def get_config(self):
            return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                    "total_steps": self.total_steps}

    warmup = min(cfg.warmup_epochs, cfg.epochs // 10)  # short runs need no warm-up
    return WarmupCosine(cfg.lr, warmup * steps_per_epoch, cfg.epochs * steps_per_epoch)


def augment_batch(images, seed_gen):
    """Random flip, rotation (+-10 deg), zoom (0.9-1.1), shift (+-10%), brightness,
    contrast and a small random erase, in one projective warp per image.

    images: float32 (B, H, W, 1) in [0, 1].
    """
    import tensorflow as tf

    b = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    angle = seed_gen.uniform([b], -10.0, 10.0) * math.pi / 180.0
    zoom = seed_gen.uniform([b], 0.9, 1.1)
    tx = seed_gen.uniform([b], -0.1, 0.1) * size
    ty = seed_gen.uniform([b], -0.1, 0.1) * size
    flip = tf.where(seed_gen.uniform([b]) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    c = (size - 1.0) / 2.0
    # output pixel (x, y) samples input at A @ (x - c, y - c) + c + t
    a0, a1 = cos * flip, -sin
    b0, b1 = sin * flip, cos
    a2 = c - a0 * c - a1 * c + tx
    b2 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros_like(a0)
    transform = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transform, output_shape=tf.shape(images)[1:3],
        interpolation="BILINEAR", fill_mode="REFLECT", fill_value=0.0)
    brightness = seed_gen.uniform([b, 1, 1, 1], -0.1, 0.1)
    contrast = seed_gen.uniform([b, 1, 1, 1], 0.8, 1.2)
    mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
    out = (out - mean) * contrast + mean + brightness
    # random erase: a square of 8-16 px, on half the images
    hw = tf.shape(images)[1]
    side = seed_gen.uniform([b], 8, 17, dtype=tf.int32)
    cy = seed_gen.uniform([b], 0, hw, dtype=tf.int32)
    cx = seed_gen.uniform([b], 0, hw, dtype=tf.int32)
    use = seed_gen.uniform([b]) < 0.5
    grid = tf.range(hw)
    in_y = tf.abs(grid[None, :] - cy[:, None]) * 2 < side[:, None]
    in_x = tf.abs(grid[None, :] - cx[:, None]) * 2 < side[:, None]
    box = tf.logical_and(in_y[:, :, None], in_x[:, None, :])
    box = tf.logical_and(box, use[:, None, None])[..., None]
    out = tf.where(box, mean, out)
    return tf.clip_by_value(out, 0.0, 1.0)


def _to_model_range(unit_images, scale: str):
    return unit_images if scale == "unit" else unit_images * 2.0 - 1.0


def distill_targets(faces: FaceSet, teacher_probs: np.ndarray | None,
                    temperature: float) -> np.ndarray:
    """Training targets for distillation: [one-hot true label | teacher probabilities
    softened at T] per face; without teacher labels (val, say) both halves are one-hot."""
    from moodbox.converter.distill import soften

    onehot = np.eye(len(faces.classes), dtype=np.float32)[faces.y]
    soft = onehot if teacher_probs is None else soften(teacher_probs, temperature)
    return np.concatenate([onehot, soft], axis=1)


def make_loss(cfg: TrainConfig, n_cls: int):
    """Label-smoothed cross-entropy on the true labels; with distillation, mixed with
    KL(teacher_T || student_T) * T^2 (Hinton et al. 2015), weights (1 - A) and A."""
    keras = _keras()
    if not cfg.distill_weight:
        return keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=cfg.label_smoothing)
    ops = keras.ops
    a, t, s = cfg.distill_weight, cfg.temperature, cfg.label_smoothing

    def distillation_loss(target, logits):
        logits = ops.cast(logits, "float32")  # bfloat16 under the mixed policy
        onehot, teacher = target[:, :n_cls], target[:, n_cls:]
        smooth = onehot * (1.0 - s) + s / n_cls
        hard = -ops.sum(smooth * ops.log_softmax(logits, axis=-1), axis=-1)
        teacher_log = ops.log(ops.clip(teacher, 1e-8, 1.0))
        kl = ops.sum(teacher * (teacher_log - ops.log_softmax(logits / t, axis=-1)), axis=-1)
        return (1.0 - a) * hard + a * t * t * kl

    return distillation_loss


def make_accuracy(cfg: TrainConfig, n_cls: int):
    """Accuracy against the true label (the first n_cls target columns when distilling)."""
    keras = _keras()
    if not cfg.distill_weight:
        return "accuracy"
    ops = keras.ops

    def true_label_accuracy(target, logits):
        return ops.cast(ops.argmax(target[:, :n_cls], axis=-1) == ops.argmax(logits, axis=-1),
                        "float32")

    return keras.metrics.MeanMetricWrapper(true_label_accuracy, name="accuracy")


def metric_name(index: int, cls: str) -> str:
    """The Keras metric name of one class's recall: recall_<index>_<class>, the class name
    reduced to letters, digits and underscores (the index keeps two names that reduce to
    the same one apart)."""
    return f"recall_{index}_" + "".join(c if c.isalnum() else "_" for c in cls)


def make_class_recalls(classes: tuple[str, ...] | list[str]):
    """One metric per class: the share of that class's faces whose arg-max prediction is
    the class (recall, as `moodbox-convert evaluate` reports it), against the true label
    (the first len(classes) target columns, so it works with distillation targets too).
    Keras reports them for val as val_recall_<index>_<class> after every epoch."""
    keras = _keras()
    ops = keras.ops
    n_cls = len(classes)

    class ClassRecall(keras.metrics.Metric):
        def __init__(self, class_id: int, name: str):
            super().__init__(name=name)
            self.class_id = class_id
            self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")

        def update_state(self, y_true, y_pred, sample_weight=None):
            true = ops.argmax(y_true[:, :n_cls], axis=-1)
            pred = ops.argmax(y_pred, axis=-1)
            is_class = ops.cast(true == self.class_id, "float32")
            self.hits.assign_add(ops.sum(is_class * ops.cast(pred == self.class_id, "float32")))
            self.total.assign_add(ops.sum(is_class))

        def result(self):
            return self.hits / ops.maximum(self.total, 1.0)  # 0 while the class is absent

        def reset_state(self):
            self.hits.assign(0.0)
            self.total.assign(0.0)

    return [ClassRecall(i, metric_name(i, c)) for i, c in enumerate(classes)]


def make_datasets(train: FaceSet, val: FaceSet, cfg: TrainConfig, epoch_seed: int,
                  teacher=None):
    """Augmented training batches and plain val batches. With `teacher` (SoftLabels),
    targets carry the teacher's softened probabilities beside the one-hot labels; they
    are flip-averaged, so they stay valid for a mirrored training face."""
    import tensorflow as tf

    n_cls = len(train.classes)
    gen = tf.random.Generator.from_seed(epoch_seed)

    def prep(x, y):
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        return x, (y if teacher is not None else tf.one_hot(y, n_cls))

    def aug(x, y):
        return _to_model_range(augment_batch(x, gen), cfg.scale), y

    train_y, val_y = train.y, val.y
    if teacher is not None:
        train_y = distill_targets(train, teacher.train_probs, cfg.temperature)
        val_y = distill_targets(val, teacher.val_probs, cfg.temperature)
    train_ds = (tf.data.Dataset.from_tensor_slices((train.x, train_y))
                .shuffle(len(train), seed=epoch_seed, reshuffle_each_iteration=True)
                .batch(cfg.batch_size, drop_remainder=True)
                .map(prep).map(aug)
                .prefetch(2))
    val_ds = (tf.data.Dataset.from_tensor_slices((val.x, val_y)).batch(256).map(prep)
              .map(lambda x, y: (_to_model_range(x, cfg.scale), y)).prefetch(2))
    return train_ds, val_ds


class EpochKeeper:
    """Keras callback: per-epoch checkpoint, best-model export, CSV log and early stopping.

    All its state lives in a JSON file next to the model, so a killed run resumes
    with the same best score and patience counter.
    """

    def __init__(self, out: Path, cfg: TrainConfig, info: ModelInfo, state: dict):
        keras = _keras()
        outer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                outer.epoch_end(self.model, epoch, logs or {})

        self.callback = _Callback()
        self.out, self.cfg, self.info, self.state = out, cfg, info, state
        self.paths = paths_for(out)
        self.t0 = time.time()

    def epoch_end(self, model, epoch: int, logs: dict) -> None:
        seconds = time.time() - self.t0
        lr = float(model.optimizer.learning_rate.numpy()) if hasattr(
            model.optimizer.learning_rate, "numpy") else float("nan")
        row = {"epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
               "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"),
               "lr": lr, "seconds": round(seconds, 1)}
        _append_csv(self.paths["log"], row)
        recalls = [logs.get("val_" + metric_name(i, c)) for i, c in enumerate(self.info.classes)]
        if all(v is not None for v in recalls):
            values = [float(v) for v in recalls]
            _append_csv(self.paths["recall"], {
                "epoch": epoch + 1, **{c: round(v, 4) for c, v in zip(self.info.classes, values)},
                "mean": round(float(np.mean(values)), 4)})
        val_acc = float(logs.get("val_accuracy", 0.0))
        if val_acc > self.state["best_val_accuracy"]:
            self.state.update(best_val_accuracy=val_acc, best_epoch=epoch + 1, epochs_since_best=0)
            _save_inference_model(model, self.out, self.info)
        else:
            self.state["epochs_since_best"] += 1
        self.state["epochs_done"] = epoch + 1
        save_checkpoint(model, self.paths["checkpoint"])  # with optimizer state, for --resume
        _save_inference_model(model, self.paths["last"], self.info)  # for weight averaging
        _atomic_json(self.paths["state"], self.state)
        logger.info("epoch %d/%d  loss %.4f  acc %.4f  val_acc %.4f  (best %.4f @ %d)  %.0fs",
                    epoch + 1, self.cfg.epochs, row["loss"] or 0, row["accuracy"] or 0, val_acc,
                    self.state["best_val_accuracy"], self.state["best_epoch"], seconds)
        if self.state["epochs_since_best"] >= self.cfg.patience:
            logger.info("early stop: no val improvement for %d epochs", self.cfg.patience)
            model.stop_training = True
            self.state["stopped_early"] = True
            _atomic_json(self.paths["state"], self.state)


def _append_csv(path: Path, row: dict) -> None:
    """One row onto a per-epoch CSV, with the header when the file is new."""
    new_file = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new_file:
            writer.writeheader()
        writer.writerow(row)


def _atomic_json(path: Path, data: dict) -> None:
    from moodbox import files, jsonio

    files.atomic_write(path, (jsonio.dumps(data, indent=2) + "\n").encode(), mode=0o644)


def float32_config(config):
    """A model config with every mixed precision policy replaced by float32, so that a
    model trained under mixed_bfloat16 is saved, converted and served as float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config.get("config", {}), "name": "float32"}}
        return {k: float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [float32_config(v) for v in config]
    return config


def _save_inference_model(model, out: Path, info: ModelInfo) -> None:
    """Save weights-only copy (no optimizer) to `out`, atomically, plus its sidecar."""
    # without the compile settings, and float32 whatever policy it trained under
    clone = type(model).from_config(float32_config(model.get_config()))
    clone.set_weights(model.get_weights())
    from moodbox import files

    fd, tmp = files.temp_beside(out, ".tmp" + out.suffix)  # made exclusively; Keras writes it
    os.close(fd)
    try:
        clone.save(tmp, include_optimizer=False) if out.suffix == ".h5" else clone.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    from moodbox.vision.modelinfo import write_sidecar
    write_sidecar(out, info)


def _compiled_model(cfg: TrainConfig, info: ModelInfo, steps: int):
    """The architecture with SGD (warm-up + cosine) and the loss of `cfg`, untrained."""
    keras = _keras()
    model = models.build(cfg.arch, input_size=info.input_size, width=cfg.width)
    opt = keras.optimizers.SGD(learning_rate=make_schedule(cfg, steps), momentum=0.9,
                               nesterov=True, weight_decay=cfg.weight_decay)
    n_cls = len(info.classes)
    model.compile(optimizer=opt, loss=make_loss(cfg, n_cls),
                  metrics=[make_accuracy(cfg, n_cls), *make_class_recalls(info.classes)])
    return model


def _resume(out: Path, cfg: TrainConfig, info: ModelInfo, steps: int):
    """(model, state) from the compact checkpoint."""
    paths = paths_for(out)
    state = json.loads(paths["state"].read_text())
    saved_cfg = state.get("config", {})
    now = json.loads(json.dumps(asdict(cfg)))  # tuples as the state file holds them
    changed = {k: (saved_cfg.get(k), v) for k, v in now.items()
               if k in saved_cfg and saved_cfg[k] != v}
    if changed:
        logger.warning("resuming with changed settings (was, now): %s", changed)
    model = _compiled_model(cfg, info, steps)
    load_checkpoint(model, paths["checkpoint"])
    if not out.exists() and state.get("best_epoch"):
        # e.g. a fresh clone: the resume point was committed, the best model was not
        logger.warning("best model %s (epoch %d) is missing; the best is chosen again from "
                       "the epochs after %d", out, state["best_epoch"], state["epochs_done"])
        state.update(best_val_accuracy=-1.0, best_epoch=0, epochs_since_best=0)
    logger.info("resuming %s after epoch %d (best val %.4f at epoch %d)", out,
                state["epochs_done"], state["best_val_accuracy"], state["best_epoch"])
    return model, state


def _fresh(out: Path, cfg: TrainConfig, info: ModelInfo, steps: int):
    keras = _keras()
    for p in paths_for(out).values():
        p.unlink(missing_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    model = _compiled_model(cfg, info, steps)
    if cfg.init_from:
        source = keras.models.load_model(cfg.init_from, compile=False)
        try:
            model.set_weights(source.get_weights())
        except ValueError as exc:
            raise ValueError(f"--init-from {cfg.init_from}: not a {cfg.arch} model of "
                             f"width {cfg.width} ({exc})") from None
        logger.info("starting from the weights of %s", cfg.init_from)
    state = {"epochs_done": 0, "best_val_accuracy": -1.0, "best_epoch": 0,
             "epochs_since_best": 0, "config": asdict(cfg),
             "params": int(model.count_params()), "macs": models.count_macs(model)}
    logger.info("%s: %s parameters, %.1f M MACs per face", model.name,
                f"{state['params']:,}", state["macs"] / 1e6)
    return model, state


def _teacher_labels(cfg: TrainConfig, train_set: FaceSet, val_set: FaceSet):
    if not cfg.distill_weight or cfg.online_teachers:
        return None
    from moodbox.converter.distill import load_soft_labels

    if not cfg.teacher_labels:
        raise ValueError("--distill-weight needs --teacher-labels (a soft-label NPZ)")
    if not 0.0 < cfg.distill_weight <= 1.0 or cfg.temperature <= 0:
        raise ValueError("--distill-weight must lie in (0, 1] and --temperature be positive")
    labels = load_soft_labels(Path(cfg.teacher_labels), train_set, val_set)
    logger.info("distilling from %s: weight %.2f, temperature %.1f (teachers: %s)",
                cfg.teacher_labels, cfg.distill_weight, cfg.temperature,
                ", ".join(map(str, labels.provenance.get("teachers", ["?"]))))
    return labels


def camera_targets(cfg: TrainConfig, train_set: FaceSet) -> np.ndarray:
    """Soft training targets for augment=camera: one-hot labels, blended with the FER+
    crowd votes when cfg.ferplus names them."""
    from moodbox.converter.ferplus import blend_targets, load_votes

    votes = load_votes(Path(cfg.ferplus), train_set) if cfg.ferplus else None
    if votes is not None:
        logger.info("FER+ votes from %s blended into the targets at weight %.2f (%d faces "
                    "without a vote on the %d classes keep their one-hot label)", cfg.ferplus,
                    cfg.ferplus_weight, int(np.sum(votes.sum(1) == 0)), len(train_set.classes))
    return blend_targets(train_set.y, votes, len(train_set.classes), cfg.ferplus_weight)


def load_online_teachers(cfg: TrainConfig) -> list:
    """The --online-teachers models, checked to read faces as the student does."""
    from moodbox.converter.convert import load_keras_model
    from moodbox.vision.modelinfo import read_sidecar

    teachers = []
    for path in map(Path, cfg.online_teachers):
        info = read_sidecar(path)
        if info is not None and info.scale != cfg.scale:
            raise ValueError(f"--online-teachers {path}: reads {info.scale} pixels, the student "
                             f"{cfg.scale}")
        teachers.append(load_keras_model(path))
    logger.info("online distillation: %d teacher(s) scored on every augmented batch, weight "
                "%.2f, temperature %.1f", len(teachers), cfg.distill_weight, cfg.temperature)
    return teachers


def teacher_targets(teachers: list, x, temperature: float):
    """The teachers' mean probability on exactly these (augmented, mixed) faces, softened
    at T as `moodbox-convert soft-labels` softens: softmax(log(mean p) / T)."""
    import tensorflow as tf

    probs = tf.add_n([tf.nn.softmax(t(x, training=False), axis=-1) for t in teachers])
    logp = tf.math.log(tf.clip_by_value(probs / len(teachers), 1e-12, 1.0)) / temperature
    return tf.nn.softmax(logp, axis=-1)


def camera_dataset(train_set: FaceSet, targets: np.ndarray, cfg: TrainConfig, epoch: int,
                   teachers: list | None = None):
    """One epoch of augment=camera batches as a tf.data pipeline (prefetched): the order
    and every random draw come from (seed, epoch, batch index), so a resumed run sees the
    batches an uninterrupted run would. With `teachers`, each target row is [soft label |
    teachers' softened probabilities on the same augmented view the student sees]."""
    import tensorflow as tf

    from moodbox.converter.augment import BatchRecipe, epoch_batches

    recipe = BatchRecipe(batch_size=cfg.batch_size, mix=cfg.mix, mix_prob=cfg.mix_prob,
                         mix_alpha=cfg.mix_alpha, balance=cfg.balance)
    h, w = train_set.x.shape[1:]

    def batches():
        for x, y in epoch_batches(train_set.x, targets, cfg.seed, epoch, recipe,
                                  labels=train_set.y):
            yield _to_model_range(x, cfg.scale), y

    spec = (tf.TensorSpec((None, h, w, 1), tf.float32),
            tf.TensorSpec((None, targets.shape[1]), tf.float32))
    steps = len(train_set) // cfg.batch_size
    ds = (tf.data.Dataset.from_generator(batches, output_signature=spec)
          .apply(tf.data.experimental.assert_cardinality(steps)))
    if teachers:
        ds = ds.map(lambda x, y: (x, tf.concat([y, teacher_targets(teachers, x, cfg.temperature)],
                                               axis=1)))
    return ds.prefetch(4)


def _fit_camera(model, train_set: FaceSet, val_set: FaceSet, cfg: TrainConfig,
                keeper: "EpochKeeper", start: int, camera: tuple) -> None:
    """Fit one epoch at a time, each on the dataset that its own number fixes."""
    import tensorflow as tf

    targets, teachers = camera
    _, val_ds = make_datasets(val_set, val_set, cfg, cfg.seed)
    if teachers:  # val targets [one-hot | one-hot], the layout the distillation loss reads
        val_ds = val_ds.map(lambda x, y: (x, tf.concat([y, y], axis=1)))
    for epoch in range(start, cfg.epochs):
        model.fit(camera_dataset(train_set, targets, cfg, epoch, teachers), validation_data=val_ds,
                  epochs=epoch + 1, initial_epoch=epoch, callbacks=[keeper.callback],
                  shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
        if keeper.state.get("stopped_early"):
            break


def with_added_faces(train_set: FaceSet, cfg: TrainConfig) -> FaceSet:
    """The training faces plus cfg.add_faces (an SFEW-style folder: labels.json naming
    "<split>/<Class>/<file>" -> class, each face prepared as the daemon prepares a crop),
    repeated cfg.add_repeat times. The added faces come after the FER2013 rows in a fixed
    order, so the seeded data order (and a resumed run) stays a function of (seed, epoch)."""
    if not cfg.add_faces:
        return train_set
    from moodbox.converter.sfew import load_sfew

    extra = load_sfew(Path(cfg.add_faces), cfg.add_split, size=int(train_set.x.shape[1]))
    if tuple(extra.classes) != tuple(train_set.classes):
        raise DataError(f"--add-faces {cfg.add_faces}: classes {', '.join(extra.classes)} differ "
                        f"from the training set's {', '.join(train_set.classes)}")
    if not len(extra):
        raise DataError(f"--add-faces {cfg.add_faces}: no labelled faces in split "
                        f"{cfg.add_split!r}; pick --add-split train, val or all")
    counts = np.bincount(extra.y, minlength=len(extra.classes))
    logger.info("added %d faces from %s (split %s) x %d per epoch: %s", len(extra), cfg.add_faces,
                cfg.add_split, cfg.add_repeat,
                ", ".join(f"{c} {n}" for c, n in zip(extra.classes, counts)))
    x = np.concatenate([train_set.x] + [extra.x] * cfg.add_repeat)
    y = np.concatenate([train_set.y] + [extra.y] * cfg.add_repeat)
    return FaceSet(x, y, train_set.classes, train_set.path)


def _check_recipe(cfg: TrainConfig) -> None:
    if cfg.precision not in ("float32", "mixed_bfloat16"):
        raise ValueError(f"--precision must be float32 or mixed_bfloat16, not {cfg.precision!r}")
    if cfg.augment not in ("classic", "camera"):
        raise ValueError(f"--augment must be classic or camera, not {cfg.augment!r}")
    if not (0.0 <= cfg.mix_prob <= 1.0 and cfg.mix_alpha > 0 and 0.0 <= cfg.ferplus_weight <= 1.0):
        raise ValueError("--mix-prob and --ferplus-weight must lie in [0, 1], --mix-alpha be positive")
    if cfg.augment == "classic" and (cfg.mix != "none" or cfg.ferplus or cfg.balance):
        raise ValueError("--mix, --ferplus and --balance need --augment camera")
    if not 0.0 <= cfg.balance <= 1.0:
        raise ValueError(f"--balance must lie in [0, 1] (0: off, 0.5: square-root sampling, "
                         f"1: every class an equal share), not {cfg.balance}")
    if cfg.augment == "camera" and cfg.teacher_labels:
        raise ValueError("--teacher-labels (fixed soft labels of the clean face) go with "
                         "--augment classic; with --augment camera use --online-teachers")
    if cfg.online_teachers and cfg.augment != "camera":
        raise ValueError("--online-teachers needs --augment camera")
    if cfg.add_faces and (cfg.ferplus or cfg.teacher_labels):
        raise ValueError("--add-faces cannot go with --ferplus or --teacher-labels: those are "
                         "aligned row for row with the --train faces; use --online-teachers")
    if cfg.add_faces and not 1 <= cfg.add_repeat <= 100:
        raise ValueError(f"--add-repeat must be a whole number from 1 to 100, not {cfg.add_repeat}")
    if cfg.online_teachers and not (0.0 < cfg.distill_weight <= 1.0 and cfg.temperature > 0):
        raise ValueError("--distill-weight must lie in (0, 1] and --temperature be positive")


def train(train_set: FaceSet, val_set: FaceSet, out: Path, cfg: TrainConfig,
          resume: bool = False) -> dict:
    """Train (or resume) and return the final state dict."""
    import tensorflow as tf
    keras = _keras()

    if cfg.threads:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, cfg.threads))
    _check_recipe(cfg)
    train_set = with_added_faces(train_set, cfg)
    teacher = _teacher_labels(cfg, train_set, val_set)
    camera = None
    if cfg.augment == "camera":  # read before any run file is touched
        if cfg.balance:
            from moodbox.converter.augment import class_shares
            logger.info("class-balanced sampling (balance %.2f): expected shares of an epoch %s",
                        cfg.balance, ", ".join(f"{c} {s * 100:.1f}%" for c, s in zip(
                            train_set.classes, class_shares(train_set.y, cfg.balance))))
        camera = (camera_targets(cfg, train_set),
                  load_online_teachers(cfg) if cfg.online_teachers else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = len(train_set) // cfg.batch_size
    info = ModelInfo(classes=train_set.classes, input_size=int(train_set.x.shape[1]),
                     scale=cfg.scale, extra={"arch": cfg.arch})
    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        return _train(train_set, val_set, out, cfg, resume, teacher, info, steps, camera)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _train(train_set: FaceSet, val_set: FaceSet, out: Path, cfg: TrainConfig, resume: bool,
           teacher, info: ModelInfo, steps: int, camera: tuple | None) -> dict:
    keras = _keras()
    paths = paths_for(out)
    if resume and paths["checkpoint"].exists() and paths["state"].exists():
        model, state = _resume(out, cfg, info, steps)
        if state.get("stopped_early") or state["epochs_done"] >= cfg.epochs:
            if not out.exists():
                logger.warning("run finished but %s is missing: writing the last epoch's "
                               "weights there", out)
                _save_inference_model(model, out, info)
            logger.info("nothing to do: run already finished")
            return state
    else:
        if resume:
            logger.info("no checkpoint at %s; starting fresh", paths["checkpoint"])
        model, state = _fresh(out, cfg, info, steps)
    start = state["epochs_done"]
    keras.utils.set_random_seed(cfg.seed + start)
    keeper = EpochKeeper(out, cfg, info, state)
    if cfg.augment == "camera":
        _fit_camera(model, train_set, val_set, cfg, keeper, start, camera)
    else:
        train_ds, val_ds = make_datasets(train_set, val_set, cfg, cfg.seed + start, teacher)
        model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, initial_epoch=start,
                  callbacks=[keeper.callback], shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2)
    state["finished"] = True
    _atomic_json(paths["state"], state)
    return state


def average_models(paths: list[Path], train_set: FaceSet, out: Path, seed: int = 0,
                   batch_size: int = 64) -> dict:
    """Stochastic weight averaging: the mean of several checkpoints' weights (same
    architecture, same training run or a fine-tuning cycle of it), then the batch-norm
    statistics recomputed with one pass over the (unaugmented) training faces."""
    from moodbox.vision.modelinfo import read_sidecar

    keras = _keras()
    if len(paths) < 2:
        raise ValueError("give at least two models to average")
    models_ = [keras.models.load_model(p, compile=False) for p in paths]
    weights = [m.get_weights() for m in models_]
    shapes = [w.shape for w in weights[0]]
    for p, w in zip(paths[1:], weights[1:]):
        if [x.shape for x in w] != shapes:
            raise ValueError(f"{p} does not have the architecture of {paths[0]}")
    avg = keras.models.clone_model(models_[0])
    avg.set_weights([np.mean([w[i] for w in weights], axis=0) for i in range(len(shapes))])
    info = read_sidecar(paths[0]) or ModelInfo(input_size=int(train_set.x.shape[1]))
    x = _to_model_range(train_set.x[..., None].astype(np.float32) / 255.0, info.scale)
    order = np.random.default_rng(seed).permutation(len(x))
    for i in range(0, len(order) - batch_size + 1, batch_size):
        avg(x[order[i:i + batch_size]], training=True)  # updates only BN moving statistics
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_inference_model(avg, out, info)
    return {"models": [str(p) for p in paths], "batches": len(order) // batch_size}
