"""The emotion classifier: one int8 TFLite interpreter, built once, fed greyscale faces."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from moodbox import files
from moodbox.config.schema import ClassifierConfig
from moodbox.quiet import native_stderr_logged
from moodbox.vision.modelinfo import ModelInfo, read_sidecar

logger = logging.getLogger(__name__)

TFLITE_MAGIC = b"TFL3"


class ModelError(Exception):
    """A model file that cannot be used; the message names the file and the fix."""


class RuntimeMissing(ModelError):
    """Neither ai-edge-litert nor tflite-runtime is installed."""


def load_interpreter_class() -> tuple[type, str]:
    """The TFLite Interpreter class: ai_edge_litert (LiteRT) first, tflite_runtime second."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    raise RuntimeMissing("no TFLite runtime found: pip install ai-edge-litert "
                         "(or tflite-runtime==2.14.0 with numpy<2 on Python <= 3.11)")


@dataclass(frozen=True)
class Emotion:
    """A classifier result: the top emotion, its probability, and all probabilities."""

    name: str
    confidence: float
    probs: np.ndarray  # float32, len(classes), sums to 1
    classes: tuple[str, ...]

    def as_dict(self) -> dict[str, float]:
        return {c: round(float(p), 4) for c, p in zip(self.classes, self.probs)}


@dataclass(frozen=True)
class ModelStats:
    macs: int
    params: int
    size_bytes: int


MAX_MODEL_BYTES = 64 * 1024 * 1024  # the shipped model is 0.7 MiB; a Pi has 1 GiB


def _check_file(path: Path) -> bytes:
    """The model's bytes, read only after its kind, size and TFLite header are checked."""
    k = files.kind(path)
    if k == files.MISSING:
        raise ModelError(f"model file {path} does not exist; set classifier.model in "
                         "config.yaml to the shipped models/emotion_int8.tflite or pass --model")
    if k == files.DENIED:
        raise ModelError(f"model file {path} cannot be reached: {files.describe_denied(path)}; "
                         "let the service user read it")
    if k != files.FILE:
        raise ModelError(f"model path {path} is not a file")
    try:
        with files.open_regular(path) as f:
            head = f.read(8)
            if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
                raise ModelError(f"model file {path} is not a TFLite model (empty, truncated or "
                                 "another format); reinstall it or re-run moodbox-convert convert")
            size = os.fstat(f.fileno()).st_size
            if size > MAX_MODEL_BYTES:
                raise ModelError(f"model file {path} is too large ({size / 2**20:.0f} MiB; the "
                                 f"limit is {MAX_MODEL_BYTES / 2**20:.0f} MiB): not a model for "
                                 "this box; pass the .tflite model")
            data = head + f.read(MAX_MODEL_BYTES)
    except files.UnsafeFile as exc:
        raise ModelError(f"model file {path} is {exc.strerror}; pass the .tflite model") from None
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read ({files.problem(exc)}); check its "
                         "permissions") from None
    if len(data) < 16:
        raise ModelError(f"model file {path} is not a TFLite model (empty, truncated or "
                         "another format); reinstall it or re-run moodbox-convert convert")
    return data


def _quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return values.astype(np.float32)
    scale, zero = detail["quantization"]
    if not scale:
        raise ModelError("model input is integer but carries no quantization parameters")
    info = np.iinfo(dtype)
    q = np.round(values / scale + zero)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values.astype(np.float32)
    scale, zero = detail["quantization"]
    return (values.astype(np.float32) - zero) * scale


def _softmax_if_needed(v: np.ndarray) -> np.ndarray:
    """Models end in softmax; tolerate ones that output logits."""
    if v.min() >= -1e-3 and abs(float(v.sum()) - 1.0) < 0.05:
        p = np.clip(v, 0.0, None)
    else:
        e = np.exp(v - v.max())
        p = e
    total = float(p.sum())
    return (p / total if total > 0 else np.full_like(p, 1.0 / len(p))).astype(np.float32)


def top_emotion(probs: np.ndarray, classes: tuple[str, ...]) -> Emotion:
    """The most probable class of `probs`, with all the probabilities."""
    top = int(np.argmax(probs))
    return Emotion(classes[top], float(probs[top]), probs, classes)


class EmotionClassifier:
    """Wraps one TFLite interpreter; reads shapes, dtypes and quantization from the model.

    `info` (classes, input size, pixel scaling) comes from the model's .json sidecar
    when present, else FER2013 classes, the model's own input size and unit scaling.
    With `flip` the probabilities are the average over the face and its mirror image
    (classifier.flip in config.yaml; more accurate for a second inference).
    """

    def __init__(self, model_path: str | Path, threads: int = 1, info: ModelInfo | None = None,
                 flip: bool = False):
        self.path = Path(model_path)
        self.flip = flip
        data = _check_file(self.path)
        interpreter_cls, self.runtime = load_interpreter_class()
        try:
            with native_stderr_logged(logger, "tflite"):  # the XNNPACK banner
                self._interp = interpreter_cls(model_content=data, num_threads=max(1, threads))
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {self.path} is corrupt or uses unsupported ops "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                             "re-run moodbox-convert convert") from None
        self._size_bytes = len(data)
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model {self.path} has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; an emotion model needs exactly one of each")
        self._in, self._out = inputs[0], outputs[0]
        shape = tuple(int(s) for s in self._in["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 1 or shape[1] != shape[2]:
            raise ModelError(f"model {self.path} takes input {list(shape)}; expected one "
                             "square greyscale face [1, S, S, 1]")
        try:
            sidecar = read_sidecar(self.path)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        self.info = info or sidecar or ModelInfo(input_size=shape[1])
        if self.info.input_size != shape[1]:
            raise ModelError(f"model {self.path} takes {shape[1]}x{shape[1]} faces but its "
                             f"sidecar says {self.info.input_size}; re-run moodbox-convert convert")
        n_out = int(np.prod(self._out["shape"]))
        if n_out != len(self.info.classes):
            raise ModelError(f"model {self.path} outputs {n_out} values but "
                             f"{len(self.info.classes)} classes are expected "
                             f"({', '.join(self.info.classes)}); is it an emotion model?")
        self.classes: tuple[str, ...] = tuple(self.info.classes)
        self.input_size: int = shape[1]
        self.last_ms: float = 0.0
        logger.debug("loaded %s with %s: input %s %s q=%s, output %s q=%s", self.path,
                     self.runtime, shape, self._in["dtype"].__name__, self._in["quantization"],
                     self._out["dtype"].__name__, self._out["quantization"])

    @property
    def input_dtype(self) -> type:
        return self._in["dtype"]

    def prepare(self, face: np.ndarray) -> np.ndarray:
        """A greyscale uint8 face of any size -> the model's input tensor."""
        if face.ndim == 3:
            face = face[..., 0]
        if face.shape != (self.input_size, self.input_size):
            import cv2
            face = cv2.resize(face, (self.input_size, self.input_size),
                              interpolation=cv2.INTER_AREA if face.shape[0] > self.input_size
                              else cv2.INTER_LINEAR)
        values = self.info.to_float(face)[None, :, :, None]
        return _quantize(values, self._in)

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """Probabilities over `classes` for one greyscale face (averaged with its mirror
        image when `flip` is on)."""
        tensor = self.prepare(face)
        t0 = time.perf_counter()
        probs = self._invoke(tensor)
        if self.flip:
            probs = (probs + self._invoke(tensor[:, :, ::-1, :].copy())) / 2.0
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        return probs.astype(np.float32)

    def _invoke(self, tensor: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], tensor)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out["index"]).reshape(-1)
        return _softmax_if_needed(_dequantize(raw, self._out))

    def classify(self, face: np.ndarray) -> Emotion:
        return top_emotion(self.probabilities(face), self.classes)

    def stats(self) -> ModelStats:
        """MACs and parameters of conv, depthwise and dense layers, and file size."""
        return ModelStats(*_count_macs_params(self._interp), size_bytes=self._size_bytes)


class EnsembleClassifier:
    """Several EmotionClassifiers on the same face, their probabilities averaged.

    Each member runs with the same threads and flip (so each already averages the face
    and its mirror image when flip is on). They must agree on classes (names and order),
    input size and pixel scale, so one crop feeds them all; `path` is the first model.
    """

    def __init__(self, model_paths: Sequence[str | Path], threads: int = 1, flip: bool = False):
        if not model_paths:
            raise ValueError("an ensemble needs at least one model")
        for extra in model_paths[1:]:
            if files.kind(Path(extra)) == files.MISSING:
                raise ModelError(f"model file {extra} does not exist; fix its path in "
                                 "classifier.ensemble or remove it there")
        self.members = tuple(EmotionClassifier(p, threads=threads, flip=flip) for p in model_paths)
        first = self.members[0]
        for other in self.members[1:]:
            _check_same_contract(first, other)
        self.paths: tuple[Path, ...] = tuple(m.path for m in self.members)
        self.path = first.path
        self.flip = flip
        self.info = first.info
        self.runtime = first.runtime
        self.classes: tuple[str, ...] = first.classes
        self.input_size: int = first.input_size
        self.last_ms: float = 0.0

    @property
    def input_dtype(self) -> type:
        return self.members[0].input_dtype

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """The mean of the members' probabilities for one greyscale face."""
        probs = np.mean([m.probabilities(face) for m in self.members], axis=0)
        self.last_ms = sum(m.last_ms for m in self.members)
        return probs.astype(np.float32)

    def classify(self, face: np.ndarray) -> Emotion:
        return top_emotion(self.probabilities(face), self.classes)

    def stats(self) -> ModelStats:
        """MACs, parameters and file sizes of all members together (the cost per face)."""
        each = [m.stats() for m in self.members]
        return ModelStats(sum(s.macs for s in each), sum(s.params for s in each),
                          sum(s.size_bytes for s in each))

    def describe(self) -> str:
        """'ensemble of 2 models (/path/a.tflite, /path/b.tflite)'"""
        return f"ensemble of {len(self.paths)} models ({', '.join(str(p) for p in self.paths)})"


def _check_same_contract(a: EmotionClassifier, b: EmotionClassifier) -> None:
    """Ensemble members read the same crop and vote over the same classes, or ModelError."""
    differs = []
    if a.classes != b.classes:
        differs.append(f"classes ({', '.join(a.classes)} vs {', '.join(b.classes)})")
    if a.input_size != b.input_size:
        differs.append(f"input size ({a.input_size}x{a.input_size} vs "
                       f"{b.input_size}x{b.input_size})")
    if a.info.scale != b.info.scale:
        differs.append(f"pixel scale ({a.info.scale} vs {b.info.scale})")
    if differs:
        raise ModelError(f"models {a.path} and {b.path} cannot be averaged: they differ in "
                         f"{' and '.join(differs)}; convert both with moodbox-convert convert "
                         f"or remove {b.path.name} from classifier.ensemble")


Classifier = Union[EmotionClassifier, EnsembleClassifier]


def make_classifier(cfg: ClassifierConfig, model: str | Path | None = None) -> Classifier:
    """The classifier classifier.* asks for: one model, or an ensemble when
    classifier.ensemble lists more. `model` replaces classifier.model (--model)."""
    primary = Path(model) if model is not None else Path(cfg.model)
    if not cfg.ensemble:
        return EmotionClassifier(primary, threads=cfg.threads, flip=cfg.flip)
    if any(os.path.realpath(primary) == os.path.realpath(m) for m in cfg.ensemble):
        raise ModelError(f"model {primary} is also in classifier.ensemble; averaging a model "
                         "with itself changes nothing: pass another model or remove it there")
    return EnsembleClassifier([primary, *cfg.ensemble], threads=cfg.threads, flip=cfg.flip)


def describe(clf: Classifier) -> str:
    """The model file, or 'ensemble of N models (a, b)': for log lines and reports."""
    return clf.describe() if isinstance(clf, EnsembleClassifier) else str(clf.path)


def _count_macs_params(interp) -> tuple[int, int]:
    try:
        ops = interp._get_ops_details()  # noqa: SLF001 (no public API for this)
    except AttributeError:
        return 0, 0
    shapes = {t["index"]: tuple(int(s) for s in t["shape"]) for t in interp.get_tensor_details()}
    macs = params = 0
    for op in ops:
        name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(ins) < 2:
            continue
        w = shapes.get(ins[1], ())
        out = shapes.get(outs[0], ())
        if not w or not out:
            continue
        params += int(np.prod(w)) + (int(np.prod(shapes.get(ins[2], (0,)))) if len(ins) > 2 and ins[2] >= 0 else 0)
        if name == "CONV_2D":
            macs += int(np.prod(out)) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":
            macs += int(np.prod(out)) * w[1] * w[2]
        else:
            macs += w[0] * w[1]
    return macs, params
