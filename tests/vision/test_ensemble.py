"""classifier.ensemble: real models averaged on real faces, and models that cannot be."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from helpers import DATA, golden_faces
from moodbox.config import ClassifierConfig
from moodbox.converter.data import synthetic_faces
from moodbox.vision.classifier import (EmotionClassifier, EnsembleClassifier, ModelError,
                                       describe, make_classifier)
from moodbox.vision.modelinfo import FER_CLASSES

TINY = DATA / "tiny_int8.tflite"  # a second real int8 model: 7 classes, 48x48, unit scale


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """Real faces (the demo photos as the shipped detector crops them, and mirrored) and
    synthetic ones the tiny model was trained on."""
    return [face for _, face, _ in golden_faces()] + list(synthetic_faces(6, seed=4).x)


@pytest.mark.parametrize("flip", [False, True])
def test_probabilities_are_the_mean_of_the_members(shipped_model, faces, flip):
    ensemble = EnsembleClassifier([shipped_model, TINY], flip=flip)
    alone = [EmotionClassifier(shipped_model, flip=flip), EmotionClassifier(TINY, flip=flip)]
    assert [m.flip for m in ensemble.members] == [flip, flip]
    disagree = 0
    for face in faces:
        a, b = (m.probabilities(face) for m in alone)
        probs = ensemble.probabilities(face)
        assert probs.dtype == np.float32
        assert probs == pytest.approx((a + b) / 2.0, abs=1e-6)
        assert ensemble.last_ms == pytest.approx(sum(m.last_ms for m in ensemble.members))
        assert ensemble.last_ms > 0
        e = ensemble.classify(face)
        assert e.name == FER_CLASSES[int(np.argmax(e.probs))] and e.confidence == max(e.probs)
        assert e.probs == pytest.approx(probs, abs=1e-6)
        disagree += int(np.argmax(a)) != int(np.argmax(b))
    assert disagree  # the two models really are different voters on these faces


def test_the_ensemble_reads_as_one_classifier(shipped_model):
    ensemble = EnsembleClassifier([shipped_model, TINY], threads=2, flip=True)
    assert ensemble.path == shipped_model and ensemble.paths == (shipped_model, TINY)
    assert ensemble.classes == FER_CLASSES and ensemble.input_size == 48
    assert ensemble.info.scale == "unit" and ensemble.flip is True
    assert ensemble.runtime in ("ai-edge-litert", "tflite-runtime")
    assert ensemble.input_dtype == np.int8
    assert describe(ensemble) == f"ensemble of 2 models ({shipped_model}, {TINY})"
    stats = ensemble.stats()
    one, two = EmotionClassifier(shipped_model).stats(), EmotionClassifier(TINY).stats()
    assert stats.macs == one.macs + two.macs and stats.params == one.params + two.params
    assert stats.size_bytes == shipped_model.stat().st_size + TINY.stat().st_size


def test_make_classifier_builds_one_model_without_an_ensemble(shipped_model):
    cfg = dataclasses.replace(ClassifierConfig(), model=str(shipped_model), threads=1)
    one = make_classifier(cfg)
    assert type(one) is EmotionClassifier and one.path == shipped_model and one.flip is True
    assert describe(one) == str(shipped_model)
    assert make_classifier(cfg, model=TINY).path == TINY  # --model replaces classifier.model
    both = make_classifier(dataclasses.replace(cfg, ensemble=(str(TINY),), flip=False))
    assert isinstance(both, EnsembleClassifier) and both.paths == (shipped_model, TINY)
    assert both.flip is False and not any(m.flip for m in both.members)
    swapped = make_classifier(dataclasses.replace(cfg, ensemble=(str(shipped_model),)), model=TINY)
    assert swapped.paths == (TINY, shipped_model)
    with pytest.raises(ModelError, match=r"tiny_int8\.tflite is also in classifier\.ensemble"):
        make_classifier(dataclasses.replace(cfg, ensemble=(str(TINY),)), model=TINY)


def _copy_with_sidecar(tmp_path, name: str, **sidecar) -> str:
    model = tmp_path / f"{name}.tflite"
    shutil.copy(TINY, model)
    info = {**json.loads((DATA / "tiny_int8.json").read_text()), **sidecar}
    (tmp_path / f"{name}.json").write_text(json.dumps(info))
    return str(model)


def test_models_that_disagree_on_classes_are_refused(shipped_model, tmp_path):
    swapped = list(FER_CLASSES)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    other = _copy_with_sidecar(tmp_path, "swapped", classes=swapped)
    with pytest.raises(ModelError) as info:
        EnsembleClassifier([shipped_model, other])
    message = str(info.value)
    assert message == (f"models {shipped_model} and {other} cannot be averaged: they differ in "
                       f"classes ({', '.join(FER_CLASSES)} vs {', '.join(swapped)}); convert "
                       "both with moodbox-convert convert or remove swapped.tflite from "
                       "classifier.ensemble")


def test_models_that_disagree_on_input_size_or_scale_are_refused(shipped_model, tmp_path):
    small = DATA / "small_input.tflite"  # a real model on 32x32 faces
    with pytest.raises(ModelError, match=r"they differ in input size \(48x48 vs 32x32\); "
                                         r"convert both with moodbox-convert convert or remove "
                                         r"small_input\.tflite from classifier\.ensemble"):
        EnsembleClassifier([shipped_model, small])
    symmetric = _copy_with_sidecar(tmp_path, "symmetric", scale="symmetric")
    with pytest.raises(ModelError, match=r"they differ in pixel scale \(unit vs symmetric\)"):
        EnsembleClassifier([TINY, symmetric])
    # a sidecar that contradicts its own model is refused by that member first
    lying = _copy_with_sidecar(tmp_path, "lying", input_size=64)
    with pytest.raises(ModelError, match=r"lying\.tflite takes 48x48 faces but its sidecar says 64"):
        EnsembleClassifier([shipped_model, lying])


def test_a_missing_member_is_named(shipped_model, tmp_path):
    with pytest.raises(ModelError, match=r"gone\.tflite does not exist; fix its path in "
                                         r"classifier\.ensemble or remove it there"):
        EnsembleClassifier([shipped_model, tmp_path / "gone.tflite"])
    with pytest.raises(ModelError, match=r"gone\.tflite does not exist; set classifier\.model"):
        EnsembleClassifier([tmp_path / "gone.tflite", shipped_model])
