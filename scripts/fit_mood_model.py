"""Fit the catalog's mood classifier on data_moods.csv, cross-validate it, write mood_model.json."""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.catalog import fit  # noqa: E402
from edge.catalog.assign import audio_energy  # noqa: E402
from edge.catalog.model import DEFAULT_MODEL_PATH, SPOTIFY_FEATURES  # noqa: E402
from edge.catalog.table import atomic_write_text  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "spotify_moods" / "data_moods.csv"


def load_moods(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 9) in SPOTIFY_FEATURES order and lower-case mood labels."""
    df = pd.read_csv(path, encoding="utf-8")
    missing = [c for c in SPOTIFY_FEATURES + ("mood",) if c not in df.columns]
    if missing:
        raise SystemExit(f"error: {path} lacks column(s) {', '.join(missing)}; expected the "
                         "Spotify moods data set (data_moods.csv)")
    df = df.dropna(subset=list(SPOTIFY_FEATURES) + ["mood"])
    return df[list(SPOTIFY_FEATURES)].to_numpy(float), df["mood"].str.strip().str.lower().to_numpy()


def _pct(values: tuple[float, ...] | list[float]) -> str:
    return " ".join(f"{100 * v:.1f}" for v in values)


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> str:
    """A small text confusion matrix (rows: label, columns: prediction)."""
    head = "label \\ predicted " + " ".join(f"{c:>9}" for c in classes)
    rows = [f"{t:>17} " + " ".join(f"{int(np.sum((truth == t) & (predicted == p))):>9}"
                                   for p in classes) for t in classes]
    return "\n".join([head] + rows)


def pooled_predictions(x: np.ndarray, y: np.ndarray, folds: np.ndarray, l2: float,
                       classes: tuple[str, ...]) -> np.ndarray:
    predicted = np.empty(len(y), dtype=object)
    predict = fit.logistic_predictor(l2, classes)
    for f in range(int(folds.max()) + 1):
        test = folds == f
        predicted[test] = predict(x[~test], y[~test], x[test])
    return predicted


def report_energy_proxy(x: np.ndarray) -> dict[str, float]:
    """How the audio mapping's energy (loudness + tempo part) tracks Spotify's energy."""
    col = {name: i for i, name in enumerate(SPOTIFY_FEATURES)}
    proxy = np.array([audio_energy(loud, tempo, float("nan")) for loud, tempo in
                      zip(x[:, col["loudness"]], x[:, col["tempo"]])])
    energy = x[:, col["energy"]]
    r = float(np.corrcoef(proxy, energy)[0, 1])
    agree = float(np.mean((proxy >= 0.5) == (energy >= 0.5)))
    print(f"audio energy mapping (Spotify loudness + tempo, brightness neutral) vs Spotify energy: "
          f"r = {r:.3f}, high/low agreement {100 * agree:.1f}%")
    return {"energy_proxy_r": round(r, 4), "energy_proxy_agreement": round(agree, 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data_moods.csv")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="model JSON to write")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=None,
                   help="fixed L2 strength (default: chosen by 5-fold CV on the grid)")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    args = p.parse_args(argv)
    if not args.data.is_file():
        print(f"error: {args.data} not found; pass --data with the Spotify moods CSV "
              "(../shared/data/spotify_moods/data_moods.csv in the development checkout)",
              file=sys.stderr)
        return 2

    x, y = load_moods(args.data)
    classes = tuple(sorted(set(y)))
    folds = fit.stratified_folds(y, args.folds, args.seed)
    print(f"{args.data}: {len(y)} tracks, " + ", ".join(f"{c} {int(np.sum(y == c))}" for c in classes))
    print(f"{args.folds}-fold stratified CV, seed {args.seed}; accuracy per fold, then pooled")

    quad = fit.cross_validate(x, y, folds, lambda _a, _b, t: fit.quadrant_rule(t[:, 5], t[:, 2]))
    print(f"quadrant rule (valence, energy >= 0.5): {_pct(quad.fold_accuracy)} -> "
          f"{100 * quad.accuracy:.1f}%")

    nested = fit.nested_cross_validate(x, y, classes, args.folds, args.seed)
    print(f"logistic regression, L2 by inner {args.folds}-fold CV: {_pct(nested.fold_accuracy)}"
          f" -> {100 * nested.accuracy:.1f}% (L2 chosen per fold: "
          f"{', '.join(f'{v:g}' for v in nested.chosen_l2)})")

    if args.l2 is None:
        l2, scores = fit.choose_l2(x, y, classes, args.folds, args.seed)
        print("L2 grid (CV accuracy on all rows): " +
              ", ".join(f"{k:g}: {100 * v:.1f}%" for k, v in scores.items()) + f" -> {l2:g}")
    else:
        l2 = args.l2
    plain = fit.cross_validate(x, y, folds, fit.logistic_predictor(l2, classes))
    print(f"logistic regression, L2 = {l2:g}: {_pct(plain.fold_accuracy)} -> "
          f"{100 * plain.accuracy:.1f}%")
    print(confusion(y, pooled_predictions(x, y, folds, l2, classes), classes))
    proxy = report_energy_proxy(x)

    info = {"trained_on": args.data.name,
            "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(), "rows": int(len(y)),
            "cv": {"folds": args.folds, "seed": args.seed,
                   "quadrant_rule": round(quad.accuracy, 4),
                   "logistic_nested": round(nested.accuracy, 4),
                   "logistic_fixed_l2": round(plain.accuracy, 4), **proxy},
            "refit": "scripts/fit_mood_model.py"}
    model = fit.fit_model(x, y, classes, l2, info)
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    atomic_write_text(args.out, model.to_json())
    print(f"wrote {args.out} (L2 {l2:g}, classes {', '.join(classes)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
