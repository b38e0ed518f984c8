"""Class-rate correction of a trained model: a per-class shift of the output logits,
fitted on the training faces and folded into the model's last Dense layer.

Label smoothing, mixup and fine-tuning on faces from elsewhere teach a model to name the
rare, easily confused classes (fear, disgust) less often than the training labels do; on
faces from elsewhere those are the classes it misses. `fit_class_rates` finds, for the
named classes only, the smallest logit raise b_c >= 0 at which the model, reading each
training face as the daemon reads it (face and mirror averaged), names class c at least
as often as the training labels do (or as the model it replaces does). Only training faces are used, never the faces a model is checked on.
Adding b to the logits multiplies each class probability by exp(b_c) before the
softmax normalizes, so the shift lives in the model file (no daemon setting) and the
int8 conversion sees it like any other bias.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodbox.converter.data import DataError, FaceSet

logger = logging.getLogger(__name__)

MAX_SHIFT = 3.0  # |b_c| bound: beyond it the class is not a rate problem


@dataclass
class RateFit:
    classes: tuple[str, ...]
    fitted: tuple[str, ...]
    shift: np.ndarray  # (n_classes,) logit shift, 0 for classes not fitted
    labels: np.ndarray  # label count per class on the fitting faces
    before: np.ndarray  # predicted count per class before the shift
    after: np.ndarray  # and after
    accuracy_before: float = 0.0
    accuracy_after: float = 0.0
    notes: list[str] = field(default_factory=list)
    target_name: str = "labels"  # what `labels` counts: the labels or a reference model's reading

    def summary(self) -> str:
        lines = [f"class-rate correction fitted on {int(self.labels.sum())} training faces "
                 f"(face and mirror averaged), for {', '.join(self.fitted)}:"]
        for i, c in enumerate(self.classes):
            mark = f"shift {self.shift[i]:+.3f}" if c in self.fitted else "unchanged"
            lines.append(f"  {c:9s} {self.target_name} {int(self.labels[i]):6d}  named "
                         f"{int(self.before[i]):6d}"
                         f" -> {int(self.after[i]):6d}  ({mark})")
        lines.append(f"training accuracy {self.accuracy_before * 100:.2f}% -> "
                     f"{self.accuracy_after * 100:.2f}%")
        return "\n".join(lines + self.notes)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_shifted(views: list[np.ndarray], shift: np.ndarray) -> np.ndarray:
    """Classes named after the shift, the views' probabilities averaged (the daemon's flip)."""
    return np.mean([_softmax(v + shift) for v in views], axis=0).argmax(axis=1)


def fit_class_rates(views: list[np.ndarray], y: np.ndarray, classes: tuple[str, ...],
                    fit: tuple[str, ...], passes: int = 8, steps: int = 30,
                    target: np.ndarray | None = None) -> RateFit:
    """Raise the logits of the classes in `fit` that are named less often than labelled
    (or than `target` says: e.g. the counts a reference model names) until they are named
    that often; a class named often enough already keeps a zero shift.

    `views`: logits (N, C) of the same faces seen differently (face, mirror). Coordinate
    bisection: for one class the count it is named grows with its own shift, so each pass
    solves each class given the others, and a few passes settle the joint shift."""
    unknown = [c for c in fit if c not in classes]
    if unknown or not fit:
        raise DataError(f"--classes: {', '.join(unknown) or 'none given'} not among the model's "
                        f"classes ({', '.join(classes)}); name one or more, e.g. fear,disgust")
    n = len(classes)
    labels = np.bincount(y, minlength=n) if target is None else np.asarray(target)
    shift = np.zeros(n)
    pred_before = predict_shifted(views, shift)
    idx = [classes.index(c) for c in fit]
    notes = []
    for _ in range(passes):
        for c in idx:
            named = int(np.sum(predict_shifted(views, shift) == c))
            if named >= labels[c] - max(1, int(0.002 * labels[c])) and shift[c] == 0:
                continue  # named often enough already: only too-rare classes are raised
            lo, hi = 0.0, MAX_SHIFT
            for _ in range(steps):
                shift[c] = (lo + hi) / 2
                named = int(np.sum(predict_shifted(views, shift) == c))
                if named < labels[c]:
                    lo = shift[c]
                else:
                    hi = shift[c]
            shift[c] = (lo + hi) / 2
    for c in idx:
        if abs(shift[c]) >= MAX_SHIFT - 1e-3:
            notes.append(f"note: {classes[c]} needs a shift beyond {MAX_SHIFT}; stopped there "
                         "(the model barely tells this class apart)")
    pred_after = predict_shifted(views, shift)
    return RateFit(classes, tuple(fit), shift, labels, np.bincount(pred_before, minlength=n),
                   np.bincount(pred_after, minlength=n),
                   float(np.mean(pred_before == y)), float(np.mean(pred_after == y)), notes,
                   "labels" if target is None else "reference")


def _logits_layer(model, path: Path):
    """The last Dense layer (linear), when nothing but a softmax follows it."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    last = layers[-1]
    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation)
            and getattr(last.activation, "__name__", "") == "softmax"):
        last = layers[-2]
    if (not isinstance(last, keras.layers.Dense) or not last.use_bias
            or getattr(last.activation, "__name__", "") != "linear"):
        raise DataError(f"{path}: the model does not end in a linear Dense layer with a bias "
                        "(optionally followed by a softmax); the correction shifts that bias")
    return last


def _views(model, dense, x: np.ndarray) -> list[np.ndarray]:
    import keras

    logits = keras.Model(model.inputs, dense.output)
    return [logits.predict(x, batch_size=256, verbose=0).astype(np.float64),
            logits.predict(x[:, :, ::-1], batch_size=256, verbose=0).astype(np.float64)]


def correct_class_rates(model_path: Path, faces: FaceSet, out: Path,
                        fit: tuple[str, ...], reference: Path | None = None) -> RateFit:
    """Fit the shift on `faces` (the training set) and write the shifted model to `out`.
    With `reference` (the model being replaced), the target of each class is how often
    the reference names it on those faces, not how often it is labelled: the new model
    then names fear and disgust no less often than the one it replaces."""
    from moodbox.converter.convert import faces_to_input, load_keras_model
    from moodbox.converter.train import _save_inference_model
    from moodbox.vision.modelinfo import ModelInfo, read_sidecar

    model = load_keras_model(model_path)
    info = read_sidecar(model_path) or ModelInfo(input_size=int(model.inputs[0].shape[1]))
    if tuple(info.classes) != tuple(faces.classes):
        raise DataError(f"{model_path}: classes {', '.join(info.classes)} differ from "
                        f"{faces.path}'s {', '.join(faces.classes)}")
    dense = _logits_layer(model, model_path)
    x = faces_to_input(faces.x, info)
    target = None
    if reference is not None:
        ref = load_keras_model(reference)
        ref_info = read_sidecar(reference) or info
        if tuple(ref_info.classes) != tuple(info.classes) or ref_info.scale != info.scale:
            raise DataError(f"--reference {reference}: reads faces differently from {model_path} "
                            "(classes or pixel scale); give the model this one replaces")
        n = len(info.classes)
        target = np.bincount(predict_shifted(_views(ref, _logits_layer(ref, reference), x),
                                             np.zeros(n)), minlength=n)
    result = fit_class_rates(_views(model, dense, x), faces.y, tuple(info.classes), fit,
                             target=target)
    w, b = dense.get_weights()
    dense.set_weights([w, (b + result.shift).astype(b.dtype)])
    extra = dict(info.extra)
    extra["class_rate_shift"] = {c: round(float(result.shift[info.classes.index(c)]), 4)
                                 for c in result.fitted}
    extra["class_rate_source"] = Path(model_path).name
    extra["class_rate_target"] = Path(reference).name if reference else "training labels"
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_inference_model(model, out, ModelInfo(info.classes, info.input_size, info.scale, extra))
    return result
