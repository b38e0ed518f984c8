"""Evaluate a .tflite or Keras emotion model on labelled NPZ faces."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodbox.converter.data import DataError, FaceSet, load_npz, overlap_mask
from moodbox.vision.modelinfo import ModelInfo


@dataclass
class Metrics:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    n: int
    balanced_accuracy: float = 0.0  # mean recall over the classes present (macro recall)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> Metrics:
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class, f1s = {}, []
    for i, name in enumerate(classes):
        tp = cm[i, i]
        precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        recall = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(cm[i, :].sum())}
    n = int(len(y_true))
    present = cm.sum(axis=1) > 0
    balanced = float(np.mean(np.diag(cm)[present] / cm.sum(axis=1)[present])) if n else 0.0
    return Metrics(accuracy=float(np.trace(cm) / n) if n else 0.0, macro_f1=float(np.mean(f1s)),
                   per_class=per_class, confusion=cm.tolist(), n=n, balanced_accuracy=balanced)


def recall_by_class(m: Metrics) -> dict[str, float]:
    return {name: row["recall"] for name, row in m.per_class.items()}


@dataclass
class CrossDomain:
    """The same model on faces from elsewhere (SFEW film crops), one view and flip-averaged."""

    data: str
    metrics: Metrics
    flip: Metrics

    def to_dict(self) -> dict:
        return {"data": self.data, "n": self.metrics.n,
                "accuracy": round(self.metrics.accuracy, 4),
                "accuracy_flip": round(self.flip.accuracy, 4),
                "balanced_accuracy": round(self.metrics.balanced_accuracy, 4),
                "balanced_accuracy_flip": round(self.flip.balanced_accuracy, 4),
                "macro_f1": round(self.metrics.macro_f1, 4),
                "recall": recall_by_class(self.metrics), "recall_flip": recall_by_class(self.flip),
                "confusion": self.metrics.confusion}

    def report(self) -> list[str]:
        m, f = self.metrics, self.flip
        return [f"cross-domain {self.data} ({m.n} faces): accuracy {m.accuracy * 100:.2f}% "
                f"(flip {f.accuracy * 100:.2f}%), balanced {m.balanced_accuracy * 100:.2f}% "
                f"(flip {f.balanced_accuracy * 100:.2f}%)",
                "  recall " + "  ".join(f"{c} {r:.3f}" for c, r in recall_by_class(m).items())]


@dataclass
class Evaluation:
    model: str
    data: str
    classes: tuple[str, ...]
    metrics: Metrics
    latency_ms: float
    threads: int
    runtime: str
    info: ModelInfo
    flip: Metrics | None = None  # face and its mirror image, probabilities averaged
    dedup: Metrics | None = None
    dedup_flip: Metrics | None = None
    dedup_against: str = ""
    stats: dict = field(default_factory=dict)
    cross: CrossDomain | None = None

    def to_dict(self) -> dict:
        m = self.metrics
        out = {"model": self.model, "data": self.data, "n": m.n,
               "accuracy": round(m.accuracy, 4), "macro_f1": round(m.macro_f1, 4),
               "balanced_accuracy": round(m.balanced_accuracy, 4),
               "per_class": m.per_class, "confusion": m.confusion,
               "classes": list(self.classes), "latency_ms": round(self.latency_ms, 3),
               "threads": self.threads, "runtime": self.runtime,
               "input_size": self.info.input_size, "scale": self.info.scale, **self.stats}
        if self.flip is not None:
            out.update(accuracy_flip=round(self.flip.accuracy, 4),
                       macro_f1_flip=round(self.flip.macro_f1, 4),
                       balanced_accuracy_flip=round(self.flip.balanced_accuracy, 4),
                       per_class_flip=self.flip.per_class, confusion_flip=self.flip.confusion)
        if self.dedup is not None:
            out["without_duplicates"] = {"against": self.dedup_against, "n": self.dedup.n,
                                         "accuracy": round(self.dedup.accuracy, 4),
                                         "macro_f1": round(self.dedup.macro_f1, 4)}
            if self.dedup_flip is not None:
                out["without_duplicates"]["accuracy_flip"] = round(self.dedup_flip.accuracy, 4)
        if self.cross is not None:
            out["cross_domain"] = self.cross.to_dict()
        return out

    def report(self) -> str:
        m = self.metrics
        lines = [f"model {self.model} on {self.data} ({m.n} faces, {self.runtime})",
                 f"accuracy {m.accuracy * 100:.2f}%   macro-F1 {m.macro_f1 * 100:.2f}%   "
                 f"latency {self.latency_ms:.3f} ms/face ({self.threads} thread)",
                 f"balanced accuracy (mean recall) {m.balanced_accuracy * 100:.2f}%"]
        if self.flip is not None:
            lines.append(f"flip-averaged (face + mirror): accuracy {self.flip.accuracy * 100:.2f}%"
                         f"   macro-F1 {self.flip.macro_f1 * 100:.2f}%   balanced "
                         f"{self.flip.balanced_accuracy * 100:.2f}%")
        if self.cross is not None:
            lines.extend(self.cross.report())
        if self.dedup is not None:
            lines.append(f"without the {m.n - self.dedup.n} exact copies of {self.dedup_against} "
                         f"images: accuracy {self.dedup.accuracy * 100:.2f}% on {self.dedup.n}")
        for key in ("macs", "params", "size_bytes"):
            if key in self.stats:
                lines.append(f"{key}: {self.stats[key]:,}")
        lines.append("")
        flip = self.flip.per_class if self.flip is not None else {}
        lines.append(f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"
                     + (f"{'recall flip':>13}" if flip else ""))
        for name, row in m.per_class.items():
            lines.append(f"{name:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}"
                         f"{row['f1']:>10.3f}{row['support']:>9d}"
                         + (f"{flip[name]['recall']:>13.3f}" if flip else ""))
        lines.append("")
        lines.append("confusion (rows true, columns predicted): " + " ".join(c[:3] for c in self.classes))
        for name, row in zip(self.classes, m.confusion):
            lines.append(f"{name:<10}" + "".join(f"{v:>6d}" for v in row))
        return "\n".join(lines)


def _predict_tflite(path: Path, faces: FaceSet, threads: int, info: ModelInfo | None):
    from moodbox.vision.classifier import EmotionClassifier

    clf = EmotionClassifier(path, threads=threads, info=info)
    k = len(clf.classes)
    plain, mirror = np.empty((len(faces), k), np.float32), np.empty((len(faces), k), np.float32)
    times = []
    for i, face in enumerate(faces.x):
        plain[i] = clf.probabilities(face)
        times.append(clf.last_ms)
        mirror[i] = clf.probabilities(face[:, ::-1])
    stats = clf.stats()
    return (plain, mirror, float(np.mean(times)) if times else 0.0, clf.runtime, clf.info,
            {"macs": stats.macs, "params": stats.params, "size_bytes": stats.size_bytes})


def _predict_keras(path: Path, faces: FaceSet, threads: int, info: ModelInfo | None):
    import tensorflow as tf

    from moodbox.converter.convert import (ConvertSettings, _with_softmax, faces_to_input,
                                           load_keras_model, model_info_for)
    from moodbox.converter.models import count_macs

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # already initialised in this process
    model = load_keras_model(path)
    info = info or model_info_for(model, path, ConvertSettings())
    x = faces_to_input(faces.x, info)
    probs_model = _with_softmax(model)
    plain = probs_model.predict(x, batch_size=256, verbose=0)
    mirror = probs_model.predict(x[:, :, ::-1], batch_size=256, verbose=0)
    single = tf.function(lambda t: model(t, training=False))
    single(x[:1])
    reps = min(200, len(x))
    t0 = time.perf_counter()
    for i in range(reps):
        single(x[i:i + 1]).numpy()
    latency = (time.perf_counter() - t0) * 1000.0 / max(1, reps)
    return (plain, mirror, latency, "keras/tensorflow", info,
            {"macs": count_macs(model), "params": int(model.count_params()),
             "size_bytes": path.stat().st_size})


def ensemble_members(model: Path) -> list[Path]:
    """`a.tflite+b.tflite` names the ensemble that averages those models (a file whose
    own name holds a '+' is still that one file)."""
    if model.exists() or "+" not in str(model):
        return [model]
    return [Path(part) for part in str(model).split("+")]


def predict_views(model: Path, faces: FaceSet, threads: int = 1, info: ModelInfo | None = None):
    """(one view, mirror view, latency ms, runtime, info, stats) of an int8 `.tflite` or a
    float Keras model on these faces: the probabilities evaluate and compare_models score.
    For an ensemble (`a+b`) each view is the mean of the members' probabilities, latency,
    MACs, parameters and bytes the members' sum."""
    members = ensemble_members(model)
    for path in members:
        if not path.is_file():
            raise DataError(f"{path}: no such model file")
    runs = [(_predict_tflite if m.suffix == ".tflite" else _predict_keras)(m, faces, threads, info)
            for m in members]
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    for m, run in zip(members[1:], runs[1:]):
        if run[0].shape != first[0].shape or tuple(run[4].classes) != tuple(first[4].classes):
            raise DataError(f"{m}: its classes differ from {members[0]}'s; an ensemble "
                            "averages models of the same classes")
    stats = {k: sum(r[5][k] for r in runs) for k in first[5]}
    return (sum(r[0] for r in runs) / len(runs), sum(r[1] for r in runs) / len(runs),
            sum(r[2] for r in runs), " + ".join(dict.fromkeys(r[3] for r in runs)), first[4],
            stats)


def evaluate_cross_domain(model: Path, faces: FaceSet, threads: int = 1,
                          info: ModelInfo | None = None) -> CrossDomain:
    """One view and flip-averaged metrics of `model` on faces from another domain."""
    plain, mirror, *_ = predict_views(model, faces, threads, info)
    return CrossDomain(data=faces.path,
                       metrics=compute_metrics(faces.y, plain.argmax(1), faces.classes),
                       flip=compute_metrics(faces.y, (plain + mirror).argmax(1), faces.classes))


def evaluate_path(model: Path, data: Path, threads: int = 1,
                  exclude_duplicates_of: Path | None = None,
                  input_size: int | None = None, scale: str | None = None,
                  sfew: Path | None = None, sfew_split: str = "all") -> Evaluation:
    faces = load_npz(data)
    info = None
    if input_size or scale:
        from moodbox.vision.modelinfo import read_sidecar
        base = read_sidecar(model) or ModelInfo(input_size=input_size or 48)
        info = ModelInfo(classes=base.classes, input_size=input_size or base.input_size,
                         scale=scale or base.scale)
    plain, mirror, latency, runtime, info, stats = predict_views(model, faces, threads, info)
    if plain.shape[1] != len(faces.classes):
        raise DataError(f"{model}: model has {plain.shape[1]} outputs but {data} has "
                        f"{len(faces.classes)} classes")
    preds = np.argmax(plain, axis=1)
    preds_flip = np.argmax(plain + mirror, axis=1)  # the mean of the two views
    result = Evaluation(model=str(model), data=str(data), classes=faces.classes,
                        metrics=compute_metrics(faces.y, preds, faces.classes),
                        flip=compute_metrics(faces.y, preds_flip, faces.classes),
                        latency_ms=latency, threads=threads, runtime=runtime, info=info,
                        stats=stats)
    if exclude_duplicates_of is not None:
        keep = ~overlap_mask(faces, load_npz(exclude_duplicates_of))
        result.dedup = compute_metrics(faces.y[keep], preds[keep], faces.classes)
        result.dedup_flip = compute_metrics(faces.y[keep], preds_flip[keep], faces.classes)
        result.dedup_against = str(exclude_duplicates_of)
    if sfew is not None:
        from moodbox.converter.sfew import load_sfew
        cross = load_sfew(sfew, sfew_split, size=info.input_size)
        if cross.classes != faces.classes:
            raise DataError(f"{sfew}: classes {cross.classes} differ from {data}'s {faces.classes}")
        result.cross = evaluate_cross_domain(model, cross, threads, info)
    return result


def plot_confusion(result: Evaluation, out: Path) -> None:
    """Draw the row-normalised confusion matrix with counts as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(result.metrics.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    k = len(result.classes)
    ax.set_xticks(range(k), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(k), result.classes)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{Path(result.model).name}: accuracy {result.metrics.accuracy * 100:.1f}% "
                 f"(n={result.metrics.n})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
