"""Fit the catalog's mood classifiers on data_moods.csv, cross-validate them, write the JSON files.

Two models: the Spotify-feature model (nine features, mood_model.json) and the audio
model (loudness and tempo only, the features a scan measures; audio_mood_model.json),
plus the loudness calibration between the scan's RMS level and Spotify's loudness.
"""
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

from moodbox.catalog import audio_model, fit, loudness  # noqa: E402
from moodbox.catalog.audio_model import AUDIO_MODEL_PATH, AudioMoodModel  # noqa: E402
from moodbox.catalog.decode import DecodeError, PygameDecoder  # noqa: E402
from moodbox.catalog.model import DEFAULT_MODEL_PATH, SPOTIFY_FEATURES, MoodModel  # noqa: E402
from moodbox.catalog.table import atomic_write_text  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "spotify_moods" / "data_moods.csv"

# The audio model's candidate input sets (names from audio_model.TERMS), searched with
# this L2 grid; the best mean accuracy over SELECTION_REPEATS 5-fold CVs wins.
TEMPO_CANDIDATES = (
    ("loudness", "log2_tempo"),
    ("loudness", "loudness_sq", "log2_tempo"),
    ("loudness", "loudness_sq", "log2_folded_tempo"),
    ("loudness", "loudness_sq", "log2_tempo", "log2_tempo_sq"),
    ("loudness", "loudness_sq", "log2_tempo", "loudness_x_log2_tempo"),
)
LOUDNESS_CANDIDATES = (("loudness",), ("loudness", "loudness_sq"))
AUDIO_L2_GRID = (1e-3, 1e-2, 0.1)
SELECTION_REPEATS = 3
CALIBRATION_SECONDS, CALIBRATION_LEVEL_DBFS = 20.0, -20.0
CALIBRATION_REFERENCE = "pink noise, identical channels"   # what the shipped constant stands for
CALIBRATION_SHIFTS_DB = (-6.0, -3.0, 3.0, 6.0)


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


def _designs(candidates: tuple[tuple[str, ...], ...], loud: np.ndarray,
             tempo: np.ndarray) -> dict[tuple[str, ...], np.ndarray]:
    return {terms: audio_model.design(terms, loud, tempo) for terms in candidates}


def shifted_loudness_cv(loud: np.ndarray, tempo: np.ndarray, y: np.ndarray, folds: np.ndarray,
                        terms: tuple[str, ...], l2: float, classes: tuple[str, ...],
                        shift_db: float) -> float:
    """CV accuracy when the held-out tracks' loudness is off by shift_db (a calibration error)."""
    hits = np.zeros(len(y), dtype=bool)
    for f in range(int(folds.max()) + 1):
        test = folds == f
        model = fit.fit_model(audio_model.design(terms, loud[~test], tempo[~test]),
                              list(y[~test]), classes, l2, features=terms)
        x_test = audio_model.design(terms, loud[test] + shift_db, tempo[test])
        hits[test] = np.array(model.predict(x_test)) == y[test]
    return float(hits.mean())


def fit_audio_part(name: str, candidates: tuple[tuple[str, ...], ...], loud: np.ndarray,
                   tempo: np.ndarray, y: np.ndarray, classes: tuple[str, ...],
                   args: argparse.Namespace, folds: np.ndarray) -> tuple[fit.TermChoice, dict]:
    """Choose inputs and L2 by repeated CV, report plain and nested CV; the CV numbers."""
    designs = _designs(candidates, loud, tempo)
    seeds = [args.seed + r for r in range(SELECTION_REPEATS)]
    choice = fit.choose_terms(designs, y, classes, args.folds, seeds, AUDIO_L2_GRID)
    print(f"{name}: mean CV accuracy over {SELECTION_REPEATS} {args.folds}-fold CVs "
          f"(seeds {seeds[0]}..{seeds[-1]}), L2 {', '.join(f'{v:g}' for v in AUDIO_L2_GRID)}:")
    width = max(len(" + ".join(terms)) for terms in candidates)
    for terms in candidates:
        row = ", ".join(f"{100 * choice.scores[(terms, l2)]:.1f}" for l2 in AUDIO_L2_GRID)
        print(f"  {' + '.join(terms):<{width}}  {row}")
    plain = fit.cross_validate(designs[choice.terms], y, folds,
                               fit.logistic_predictor(choice.l2, classes))
    nested, inner = fit.nested_term_cv(designs, y, classes, args.folds, args.seed,
                                       SELECTION_REPEATS, AUDIO_L2_GRID)
    print(f"  -> {' + '.join(choice.terms)}, L2 {choice.l2:g}: {_pct(plain.fold_accuracy)} -> "
          f"{100 * plain.accuracy:.1f}% ({args.folds}-fold CV, seed {args.seed})")
    print(f"  nested (inputs and L2 chosen inside each outer fold): {_pct(nested.fold_accuracy)}"
          f" -> {100 * nested.accuracy:.1f}%; chosen: "
          + "; ".join(f"{'+'.join(c.terms)} {c.l2:g}" for c in inner))
    return choice, {"terms": list(choice.terms), "l2": choice.l2,
                    "accuracy": round(plain.accuracy, 4),
                    "per_fold": [round(v, 4) for v in plain.fold_accuracy],
                    "nested": round(nested.accuracy, 4),
                    "selection_mean": round(choice.accuracy, 4)}


def measure_calibration() -> dict:
    """The scan's loudness_db vs BS.1770 integrated loudness on reference noises."""
    signals = loudness.reference_signals(44100, CALIBRATION_SECONDS, CALIBRATION_LEVEL_DBFS, seed=0)
    try:
        with PygameDecoder() as decoder:
            found = loudness.measure_scan_gap(signals, 44100, decoder)
    except DecodeError as exc:
        print(f"loudness calibration not measured: {exc}", file=sys.stderr)
        return {}
    print(f"loudness calibration ({CALIBRATION_SECONDS:g} s stereo WAVs at 44.1 kHz, "
          f"{CALIBRATION_LEVEL_DBFS:g} dBFS RMS per channel, decoded as a scan does):")
    for m in found:
        print(f"  {m.name:<36} BS.1770 {m.lufs:7.2f} LUFS, scan {m.scan_db:7.2f} dBFS, "
              f"gap {m.gap_db:+.2f} dB")
    gaps = {m.name: round(m.gap_db, 2) for m in found}
    constant = audio_model.SCAN_TO_SPOTIFY_LOUDNESS_DB
    print(f"  shipped SCAN_TO_SPOTIFY_LOUDNESS_DB = {constant:+.1f} dB ({CALIBRATION_REFERENCE})")
    if abs(gaps[CALIBRATION_REFERENCE] - constant) > 0.3:
        print(f"warning: the {CALIBRATION_REFERENCE} gap is now {gaps[CALIBRATION_REFERENCE]:+.2f}"
              " dB; update SCAN_TO_SPOTIFY_LOUDNESS_DB in edge/catalog/audio_model.py",
              file=sys.stderr)
    return {"scan_to_spotify_loudness_db": constant, "reference": CALIBRATION_REFERENCE,
            "measured_gap_db": gaps,
            "assumption": "Spotify loudness is a BS.1770 integrated loudness (LUFS)"}


def fit_audio(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], folds: np.ndarray,
              args: argparse.Namespace, info: dict) -> AudioMoodModel:
    """Select, validate and fit the audio model (loudness + tempo, and loudness alone)."""
    col = {name: i for i, name in enumerate(SPOTIFY_FEATURES)}
    loud, tempo = x[:, col["loudness"]], x[:, col["tempo"]]
    tempo_choice, tempo_cv = fit_audio_part("audio model (Spotify loudness + tempo)",
                                            TEMPO_CANDIDATES, loud, tempo, y, classes, args, folds)
    plain_choice, plain_cv = fit_audio_part("audio model without tempo (loudness alone)",
                                            LOUDNESS_CANDIDATES, loud, tempo, y, classes, args,
                                            folds)
    terms, l2 = tempo_choice.terms, tempo_choice.l2
    predicted = pooled_predictions(audio_model.design(terms, loud, tempo), y, folds, l2, classes)
    print(confusion(y, predicted, classes))
    shifts = {f"{s:+g}": round(shifted_loudness_cv(loud, tempo, y, folds, terms, l2, classes, s), 4)
              for s in CALIBRATION_SHIFTS_DB}
    print("if the calibration is off (held-out loudness shifted by dB): "
          + ", ".join(f"{k} dB: {100 * v:.1f}%" for k, v in shifts.items()))
    info = {**info, "cv": {**info["cv"], "with_tempo": tempo_cv, "without_tempo": plain_cv,
                           "with_tempo_loudness_shifted": shifts},
            "candidates": {"with_tempo": [list(t) for t in TEMPO_CANDIDATES],
                           "without_tempo": [list(t) for t in LOUDNESS_CANDIDATES],
                           "l2_grid": list(AUDIO_L2_GRID), "selection_repeats": SELECTION_REPEATS},
            "loudness_calibration": measure_calibration()}
    with_tempo = fit.fit_model(audio_model.design(terms, loud, tempo), y, classes, l2,
                               features=terms)
    without = fit.fit_model(audio_model.design(plain_choice.terms, loud, tempo), y, classes,
                            plain_choice.l2, features=plain_choice.terms)
    return AudioMoodModel(with_tempo, without, info)

def fit_spotify(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], folds: np.ndarray,
                args: argparse.Namespace, info: dict) -> tuple[MoodModel, dict]:
    """Validate and fit the nine-feature model; also scores the quadrant rule. (model, info)"""
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
    info = {**info, "cv": {**info["cv"], "quadrant_rule": round(quad.accuracy, 4),
                           "logistic_nested": round(nested.accuracy, 4),
                           "logistic_fixed_l2": round(plain.accuracy, 4)}}
    return fit.fit_model(x, y, classes, l2, info), info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data_moods.csv")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH,
                   help="Spotify-feature model JSON to write")
    p.add_argument("--audio-out", type=Path, default=AUDIO_MODEL_PATH,
                   help="audio (loudness + tempo) model JSON to write")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=None,
                   help="fixed L2 strength of the Spotify-feature model (default: chosen by "
                        "5-fold CV on the grid); the audio model always chooses its own")
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
    info = {"trained_on": args.data.name,
            "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(), "rows": int(len(y)),
            "cv": {"folds": args.folds, "seed": args.seed}, "refit": "workshop/fit_mood_model.py"}
    model, info = fit_spotify(x, y, classes, folds, args, info)
    audio = fit_audio(x, y, classes, folds, args, info)
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    atomic_write_text(args.out, model.to_json())
    print(f"wrote {args.out} (L2 {model.l2:g}, classes {', '.join(classes)})")
    atomic_write_text(args.audio_out, audio.to_json())
    print(f"wrote {args.audio_out} ({' + '.join(audio.with_tempo.features)}, L2 "
          f"{audio.with_tempo.l2:g}; without tempo: {' + '.join(audio.without_tempo.features)}, "
          f"L2 {audio.without_tempo.l2:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
