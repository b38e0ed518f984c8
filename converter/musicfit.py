"""Fits and cross-validates the mood classifier in numpy (used by workshop/fit_mood_model.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from moodbox.catalog.model import SPOTIFY_FEATURES, MoodModel

logger = logging.getLogger(__name__)

L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
QUADRANT_THRESHOLD = 0.5    # valence and energy at or above this count as "high"

Predictor = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CVResult:
    """Accuracy per fold and overall (pooled over all held-out rows)."""

    fold_accuracy: tuple[float, ...]
    accuracy: float
    chosen_l2: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracy))


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (population); constant columns get std 1."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _objective(theta: np.ndarray, xb: np.ndarray, onehot: np.ndarray, l2: float,
               mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy + l2/2 * |W|^2 (bias not penalised), its gradient and Hessian."""
    logits = xb @ theta.T
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    n, k, d = len(xb), theta.shape[0], theta.shape[1]
    loss = -float((onehot * log_p).sum()) / n + 0.5 * l2 * float(((theta * mask) ** 2).sum())
    grad = (p - onehot).T @ xb / n + l2 * theta * mask
    curvature = np.einsum("nk,kl->nkl", p, np.eye(k)) - np.einsum("nk,nl->nkl", p, p)
    hess = np.einsum("nkl,ni,nj->kilj", curvature, xb, xb).reshape(k * d, k * d) / n
    hess += np.diag(np.tile(l2 * mask[0], k)) + 1e-10 * np.eye(k * d)
    return loss, grad, hess


def fit_softmax(z: np.ndarray, y: np.ndarray, n_classes: int, l2: float,
                max_iter: int = 100, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by damped Newton steps; returns (weights, bias).

    z: standardised features (n, d); y: class indices (n,). The optimum is unique for
    l2 > 0 up to a shift of all biases, which is removed (biases sum to zero).
    """
    if l2 <= 0:
        raise ValueError("l2 must be positive")
    xb = np.hstack([z, np.ones((len(z), 1))])
    onehot = np.eye(n_classes)[y]
    theta = np.zeros((n_classes, xb.shape[1]))
    mask = np.ones_like(theta)
    mask[:, -1] = 0.0
    for _ in range(max_iter):
        loss, grad, hess = _objective(theta, xb, onehot, l2, mask)
        if np.abs(grad).max() < tol:
            break
        step = np.linalg.solve(hess, grad.ravel()).reshape(theta.shape)
        t = 1.0
        while t > 1e-8 and _objective(theta - t * step, xb, onehot, l2, mask)[0] > \
                loss - 1e-4 * t * float((grad * step).sum()):
            t *= 0.5
        theta = theta - t * step
    bias = theta[:, -1] - theta[:, -1].mean()
    return theta[:, :-1], bias


def fit_model(x: np.ndarray, labels: Sequence[str], classes: Sequence[str], l2: float,
              info: dict | None = None,
              features: tuple[str, ...] = SPOTIFY_FEATURES) -> MoodModel:
    """Standardise, fit, and package a MoodModel over `features` (the columns of x)."""
    mean, std = standardisation(x)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    weights, bias = fit_softmax((x - mean) / std, y, len(classes), l2)
    return MoodModel(tuple(features), tuple(classes), mean, std, weights, bias, l2, info or {})


def logistic_predictor(l2: float, classes: Sequence[str]) -> Predictor:
    """A predictor for cross_validate: fit on the training rows, label the test rows."""
    def predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        model = fit_model(x_train, list(y_train), classes, l2)
        return np.array(model.predict(x_test))
    return predict


def quadrant_rule(valence: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Russell's circumplex as four quadrants of Spotify's valence and energy."""
    high_v, high_e = valence >= QUADRANT_THRESHOLD, energy >= QUADRANT_THRESHOLD
    return np.where(high_v, np.where(high_e, "happy", "calm"),
                    np.where(high_e, "energetic", "sad"))


def stratified_folds(labels: Sequence[str], k: int, seed: int) -> np.ndarray:
    """A fold number (0..k-1) per row; every class is spread evenly over the folds."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=int)
    offset = 0
    for label in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == label))
        folds[rows] = (offset + np.arange(len(rows))) % k
        offset += len(rows)
    return folds


def cross_validate(x: np.ndarray, labels: Sequence[str], folds: np.ndarray,
                   predict: Predictor) -> CVResult:
    """Held-out accuracy of `predict` over the given folds."""
    labels = np.asarray(labels)
    hits, per_fold = np.zeros(len(labels), dtype=bool), []
    for f in range(int(folds.max()) + 1):
        test = folds == f
        hits[test] = predict(x[~test], labels[~test], x[test]) == labels[test]
        per_fold.append(float(hits[test].mean()))
    return CVResult(tuple(per_fold), float(hits.mean()))


def choose_l2(x: np.ndarray, labels: Sequence[str], classes: Sequence[str], k: int, seed: int,
              grid: Sequence[float] = L2_GRID) -> tuple[float, dict[float, float]]:
    """The L2 strength with the best k-fold accuracy (ties: the stronger one)."""
    folds = stratified_folds(labels, k, seed)
    scores = {l2: cross_validate(x, labels, folds, logistic_predictor(l2, classes)).accuracy
              for l2 in grid}
    best = max(scores.values())
    return max(l2 for l2, score in scores.items() if score >= best - 1e-12), scores


def nested_cross_validate(x: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                          k: int, seed: int, grid: Sequence[float] = L2_GRID) -> CVResult:
    """Outer k-fold accuracy where L2 is chosen by an inner k-fold CV on each training part."""
    labels = np.asarray(labels)
    folds = stratified_folds(labels, k, seed)
    hits, per_fold, chosen = np.zeros(len(labels), dtype=bool), [], []
    for f in range(k):
        test = folds == f
        l2, _ = choose_l2(x[~test], labels[~test], classes, k, seed + 1 + f, grid)
        model = fit_model(x[~test], list(labels[~test]), classes, l2)
        hits[test] = np.array(model.predict(x[test])) == labels[test]
        per_fold.append(float(hits[test].mean()))
        chosen.append(l2)
    return CVResult(tuple(per_fold), float(hits.mean()), tuple(chosen))


@dataclass(frozen=True)
class TermChoice:
    """The input set and L2 with the best mean accuracy over repeated k-fold CV."""

    terms: tuple[str, ...]
    l2: float
    accuracy: float                                    # mean over the repeats
    scores: dict[tuple[tuple[str, ...], float], float]  # (terms, l2) -> mean accuracy


def choose_terms(designs: dict[tuple[str, ...], np.ndarray], labels: Sequence[str],
                 classes: Sequence[str], k: int, seeds: Sequence[int],
                 grid: Sequence[float]) -> TermChoice:
    """The (input set, L2) with the best accuracy, averaged over k-fold CVs with `seeds`.

    designs maps each candidate input set to its matrix (rows x terms). Ties go to
    fewer terms, then the stronger L2.
    """
    labels = np.asarray(labels)
    fold_sets = [stratified_folds(labels, k, s) for s in seeds]
    scores = {(terms, l2): float(np.mean([
        cross_validate(x, labels, folds, logistic_predictor(l2, classes)).accuracy
        for folds in fold_sets])) for terms, x in designs.items() for l2 in grid}
    best = max(scores.values())
    terms, l2 = min((key for key, score in scores.items() if score >= best - 1e-12),
                    key=lambda key: (len(key[0]), -key[1]))
    return TermChoice(terms, l2, best, scores)


def nested_term_cv(designs: dict[tuple[str, ...], np.ndarray], labels: Sequence[str],
                   classes: Sequence[str], k: int, seed: int, inner_seeds: int,
                   grid: Sequence[float]) -> tuple[CVResult, list[TermChoice]]:
    """Outer k-fold accuracy where the input set and L2 are chosen on each training part
    (choose_terms with `inner_seeds` repeats), so the selection is part of what is scored."""
    labels = np.asarray(labels)
    folds = stratified_folds(labels, k, seed)
    hits, per_fold, chosen = np.zeros(len(labels), dtype=bool), [], []
    for f in range(k):
        test = folds == f
        inner = {terms: x[~test] for terms, x in designs.items()}
        seeds = [seed + 1 + f * inner_seeds + r for r in range(inner_seeds)]
        choice = choose_terms(inner, labels[~test], classes, k, seeds, grid)
        x = designs[choice.terms]
        model = fit_model(x[~test], list(labels[~test]), classes, choice.l2)
        hits[test] = np.array(model.predict(x[test])) == labels[test]
        per_fold.append(float(hits[test].mean()))
        chosen.append(choice)
    return CVResult(tuple(per_fold), float(hits.mean()), tuple(c.l2 for c in chosen)), chosen
