"""Full-integer int8 TFLite conversion, calibrated on real faces, that checks itself."""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodbox.converter.data import DataError, FaceSet, load_npz
from moodbox.vision.modelinfo import FER_CLASSES, ModelInfo, read_sidecar, write_sidecar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertSettings:
    input_size: int | None = None   # None: read from the model
    scale: str | None = None        # None: the model's sidecar, else "unit"
    calib_count: int = 500
    check_count: int = 0            # 0: every held-out face
    min_agreement: float = 0.97
    max_drop: float = 1.5           # accuracy points
    seed: int = 0
    io_type: str = "int8"           # input/output tensor type: int8 or uint8


@dataclass
class ConvertReport:
    out: Path
    info: ModelInfo
    calib_n: int
    check_n: int
    agreement: float
    float_accuracy: float | None
    int8_accuracy: float | None
    size_bytes: int
    passed: bool = True
    failure: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def drop_points(self) -> float | None:
        if self.float_accuracy is None or self.int8_accuracy is None:
            return None
        return (self.float_accuracy - self.int8_accuracy) * 100.0

    def summary(self) -> str:
        lines = [f"int8 model: {self.out} ({self.size_bytes / 1024:.0f} KiB), input "
                 f"{self.info.input_size}x{self.info.input_size}, scale {self.info.scale}",
                 f"calibrated on {self.calib_n} faces; checked on {self.check_n} held-out faces",
                 f"float/int8 argmax agreement: {self.agreement * 100:.2f}%"]
        if self.drop_points is not None:
            lines.append(f"accuracy float {self.float_accuracy * 100:.2f}% -> int8 "
                         f"{self.int8_accuracy * 100:.2f}% (drop {self.drop_points:.2f} points)")
        lines += self.notes
        lines.append("check: PASSED" if self.passed else f"check: FAILED ({self.failure})")
        return "\n".join(lines)


class ConvertError(Exception):
    """The model cannot be converted; the message says why."""


def load_keras_model(path: Path):
    """Load a .keras or legacy .h5 model (Keras 3 reads both) for inference only."""
    import keras

    if not path.is_file():
        raise ConvertError(f"{path}: no such model file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise ConvertError(f"{path}: cannot load as a Keras model ({exc})") from None


def model_info_for(model, path: Path, settings: ConvertSettings) -> ModelInfo:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 1 or shape[1] != shape[2] or shape[1] is None:
        raise ConvertError(f"{path}: input shape {shape} is not a square greyscale face "
                           "(None, S, S, 1)")
    size = int(shape[1])
    if settings.input_size and settings.input_size != size:
        raise ConvertError(f"{path}: model input is {size}x{size} but --input-size "
                           f"{settings.input_size} was given")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(FER_CLASSES):
        raise ConvertError(f"{path}: model has {n_out} outputs; expected {len(FER_CLASSES)} "
                           f"({', '.join(FER_CLASSES)})")
    sidecar = read_sidecar(path)
    scale = settings.scale or (sidecar.scale if sidecar else "unit")
    classes = sidecar.classes if sidecar else FER_CLASSES
    return ModelInfo(classes=classes, input_size=size, scale=scale,
                     extra={"source": path.name})


def faces_to_input(x: np.ndarray, info: ModelInfo) -> np.ndarray:
    """uint8 (N,H,W) faces -> float32 (N,S,S,1) in the model's pixel scaling."""
    if x.shape[1] != info.input_size:
        import cv2
        x = np.stack([cv2.resize(f, (info.input_size, info.input_size),
                                 interpolation=cv2.INTER_LINEAR) for f in x])
    return info.to_float(x)[..., None]


def _with_softmax(model):
    """The model with a softmax on its output, unless it already ends in one."""
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax) or getattr(activation, "__name__", "") == "softmax":
        return model
    out = keras.layers.Softmax(name="probabilities")(model.outputs[0])
    return keras.Model(model.inputs, out, name=f"{model.name}_softmax")


def to_int8_tflite(model, calib: np.ndarray, io_type: str = "int8") -> bytes:
    """Full-integer post-training quantization: int8 weights and activations; input and
    output tensors int8 (default) or uint8."""
    import tensorflow as tf

    in_shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    model = _with_softmax(model)

    def representative():
        for i in range(len(calib)):
            yield [calib[i:i + 1].astype(np.float32)]

    with tempfile.TemporaryDirectory(prefix="moodbox-export-") as saved:
        import keras
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda face: model(face, training=False),
                             input_signature=[tf.TensorSpec(in_shape, tf.float32, name="face")])
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serve"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.uint8 if io_type == "uint8" else tf.int8
        converter.inference_input_type = io
        converter.inference_output_type = io
        return converter.convert()


def _split_calibration(calib: FaceSet, check: FaceSet | None, settings: ConvertSettings):
    if len(calib) == 0:
        raise DataError(f"{calib.path}: no faces to calibrate on")
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(calib))
    n_cal = min(settings.calib_count, len(calib) if check is not None else len(calib) // 2)
    if n_cal < 1:
        raise DataError(f"{calib.path}: too few faces ({len(calib)}) to calibrate and check; "
                        "give at least 2, or a separate --check NPZ")
    cal = calib.subset(np.sort(order[:n_cal]))
    held = check if check is not None else calib.subset(np.sort(order[n_cal:]))
    if settings.check_count and len(held) > settings.check_count:
        held = held.subset(np.sort(rng.permutation(len(held))[:settings.check_count]))
    if len(held) == 0:
        raise DataError("no held-out faces left for the float/int8 check; pass --check NPZ")
    return cal, held


def int8_predictions(tflite_path: Path, faces: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Class predictions of the int8 model through the edge classifier (LiteRT)."""
    from moodbox.vision.classifier import EmotionClassifier

    clf = EmotionClassifier(tflite_path, threads=1, info=info)
    return np.array([int(np.argmax(clf.probabilities(f))) for f in faces])


def convert(model_path: Path, calib_path: Path, out: Path, settings: ConvertSettings,
            check_data: Path | None = None) -> ConvertReport:
    """Convert, then check float vs int8 on held-out faces; the model lands at `out`
    only when the check passes (else beside it as *.rejected.tflite)."""
    model = load_keras_model(model_path)
    info = model_info_for(model, model_path, settings)
    calib = load_npz(calib_path)
    check = load_npz(check_data) if check_data else None
    cal, held = _split_calibration(calib, check, settings)
    logger.info("converting %s (input %d, scale %s) with %d calibration faces", model_path,
                info.input_size, info.scale, len(cal))
    tflite = to_int8_tflite(model, faces_to_input(cal.x, info), settings.io_type)

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".tflite", dir=out.parent)
    tmp = Path(tmp_name)
    with os.fdopen(fd, "wb") as fh:
        fh.write(tflite)
    float_pred = np.argmax(_with_softmax(model).predict(faces_to_input(held.x, info),
                                                        batch_size=256, verbose=0), axis=1)
    int8_pred = int8_predictions(tmp, held.x, info)
    agreement = float(np.mean(float_pred == int8_pred))
    labelled = held.classes == info.classes or len(held.classes) == len(info.classes)
    report = ConvertReport(out=out, info=info, calib_n=len(cal), check_n=len(held),
                           agreement=agreement,
                           float_accuracy=float(np.mean(float_pred == held.y)) if labelled else None,
                           int8_accuracy=float(np.mean(int8_pred == held.y)) if labelled else None,
                           size_bytes=len(tflite))
    counts = np.bincount(int8_pred, minlength=len(info.classes))
    if counts.max() > 0.9 * len(int8_pred) and len(int8_pred) >= 20:
        report.notes.append(f"warning: int8 model predicts {info.classes[int(counts.argmax())]} "
                            f"for {counts.max() / len(int8_pred):.0%} of faces (collapsed?)")
    if agreement < settings.min_agreement:
        report.passed = False
        report.failure = (f"float/int8 agreement {agreement * 100:.2f}% is below "
                          f"{settings.min_agreement * 100:.0f}%: the int8 model disagrees with "
                          "its float source too often (wrong --scale or --input-size, blank or "
                          "unrepresentative calibration faces, or a model that quantizes "
                          "poorly); fix the settings, or accept it knowingly with --min-agreement")
    elif report.drop_points is not None and report.drop_points > settings.max_drop:
        report.passed = False
        report.failure = (f"int8 accuracy drops {report.drop_points:.2f} points (more than "
                          f"{settings.max_drop}); calibrate on more, representative faces")
    os.chmod(tmp, 0o644)
    if report.passed:
        os.replace(tmp, out)
        write_sidecar(out, info)
    else:
        rejected = out.with_name(out.stem + ".rejected.tflite")
        os.replace(tmp, rejected)
        report.failure += f"; the rejected model was kept as {rejected} and {out} was not written"
    return report
