"""`moodbox-convert bench`: `moodbox bench` side by side with the `fer` package (desktop).

Runs the device bench (moodbox.commands.bench: the real pipeline stage by stage, the
tuning variants and the daemon), then the same frames through fer 25.10.3 (its TFLite
and Keras paths, each in its own process), compares both classifiers on FER2013 val,
and scales this machine's numbers to a Raspberry Pi through a MobileNetV2 timing (an
estimate). TensorFlow and fer live here, never on the Pi.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from moodbox.commands.bench import (FrameFeed, _peak_rss_mb, _summarise, collect, emit, run_worker,
                                    worker_main)
from moodbox.commands.bench import add_arguments as add_device_arguments
from moodbox.commands.bench import markdown as device_markdown

# Published reference points used to scale this machine's numbers to a Pi (an estimate).
PI_REFERENCES = {
    "mobilenet_v2_fp32_xnnpack_pi4_ms": 44.0,   # TFLite/XNNPACK benchmarks, MobileNetV2 224, Pi 4
    "mobilenet_v2_macs": 300e6,
    "yunet_320x240_pi4_ms": 21.0,               # OpenCV zoo, YuNet face detector, Pi 4
    "pi5_over_pi4": 2.5,                        # Raspberry Pi Ltd: Pi 5 is 2-3x a Pi 4 in CPU work
}
MODULE = "moodbox.converter.bench"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_device_arguments(p)
    p.add_argument("--no-fer", action="store_true", help="skip the fer comparison")
    p.add_argument("--no-calibrate", action="store_true", help="skip timing MobileNetV2 here "
                   "(the Pi estimate then rests on MACs alone)")
    p.add_argument("--val", default=None, help="FER2013-style NPZ for accuracy (default: "
                   "../shared/data/fer2013/val.npz when present)")


# --- workers (each in its own process) ----------------------------------------------------
def worker_fer(args: argparse.Namespace) -> dict:
    """The fer package (Haar at full resolution + mini-Xception) on the same frames."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import cv2
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)
    from fer.fer import FER

    detector = FER(use_tflite=args.fer_mode == "tflite")
    totals, first, with_face = [], None, 0
    cpu0 = time.process_time()
    for image, decode_ms in FrameFeed(args.source, args.frames):
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        elif image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        t0 = time.perf_counter()
        result = detector.detect_emotions(image)
        totals.append(decode_ms + (time.perf_counter() - t0) * 1e3)
        with_face += bool(result)
        if first is None:
            first = time.time()
    cpu = time.process_time() - cpu0
    return {"pipeline": f"fer-{args.fer_mode}", "frames": len(totals), "with_face": with_face,
            "totals": totals, "cpu_ms_per_frame": cpu * 1000.0 / max(1, len(totals)),
            "first_decision_wall": first, "peak_rss_mb": _peak_rss_mb()}


def _fer_preprocess(x48: np.ndarray) -> np.ndarray:
    import cv2
    x = np.stack([cv2.resize(f, (64, 64)) for f in x48]).astype(np.float32)
    return ((x / 255.0 - 0.5) * 2.0)[..., None]


def worker_fer_accuracy(args: argparse.Namespace) -> dict:
    """fer's own classifiers (Keras .hdf5 and its .tflite) on FER2013 faces."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import importlib.util

    import keras
    import tensorflow as tf

    from moodbox.converter.data import load_npz

    base = Path(list(importlib.util.find_spec("fer").submodule_search_locations)[0]) / "data"
    faces = load_npz(args.val)
    x = _fer_preprocess(faces.x)
    model = keras.models.load_model(base / "emotion_model.hdf5", compile=False)
    keras_pred = np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)
    interp = tf.lite.Interpreter(model_path=str(base / "emotion_model_quantized.tflite"), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    tfl_pred = []
    for face in x:
        interp.set_tensor(inp["index"], face[None].astype(inp["dtype"]))
        interp.invoke()
        tfl_pred.append(int(np.argmax(interp.get_tensor(out["index"]))))
    return {"n": len(faces), "fer_keras": float(np.mean(keras_pred == faces.y)),
            "fer_tflite": float(np.mean(np.array(tfl_pred) == faces.y))}


def worker_calibrate(args: argparse.Namespace) -> dict:
    """Time MobileNetV2 (fp32, 224x224, XNNPACK, 1 thread) here: the workload whose Pi 4
    time is published, so this machine's numbers can be scaled to a Pi."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "moodbox"
    path = cache / "mobilenet_v2_fp32.tflite"
    if not path.exists():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        import tensorflow as tf
        model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    from moodbox.vision.classifier import load_interpreter_class
    interp_cls, _ = load_interpreter_class()
    interp = interp_cls(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.random.default_rng(0).random(inp["shape"], dtype=np.float32)
    times = []
    for i in range(25):
        interp.set_tensor(inp["index"], x)
        t0 = time.perf_counter()
        interp.invoke()
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1e3)
    return {"mobilenet_v2_ms": float(np.median(times))}


WORKERS = {"fer": worker_fer, "fer-accuracy": worker_fer_accuracy, "calibrate": worker_calibrate}


def _fer_available() -> str:
    import importlib.util
    if importlib.util.find_spec("fer") is None:
        return "fer is not installed (workshop/bench.sh installs it: pip install --no-deps fer==25.10.3)"
    if importlib.util.find_spec("tensorflow") is None:
        return "fer needs TensorFlow (pip install -e '.[converter]')"
    return ""


def _has_tensorflow() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


def _default_val() -> Path | None:
    p = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "val.npz"
    return p if p.is_file() else None


def _moodbox_accuracy(model: str, ensemble: list[str], val: Path) -> dict:
    """One view's accuracy of the benched classifier (with --ensemble: the averaged one)."""
    from moodbox.commands.bench import bench_classifier
    from moodbox.converter.data import load_npz
    from moodbox.vision.classifier import make_classifier

    faces = load_npz(val)
    clf = make_classifier(bench_classifier(model, ensemble, flip=False))
    pred = np.array([int(np.argmax(clf.probabilities(f))) for f in faces.x])
    return {"n": len(faces), "moodbox_int8": float(np.mean(pred == faces.y))}


def _pi_estimate(result: dict, mobilenet_here_ms: float | None) -> dict:
    """Per-frame time on a Pi, scaled from published reference numbers: an estimate."""
    ref = PI_REFERENCES
    infer_by_macs = result["macs"] / ref["mobilenet_v2_macs"] * ref["mobilenet_v2_fp32_xnnpack_pi4_ms"]
    out = {"references": ref, "pi4_infer_ms_by_macs": round(infer_by_macs, 2)}
    if mobilenet_here_ms:
        k = ref["mobilenet_v2_fp32_xnnpack_pi4_ms"] / mobilenet_here_ms
        pi4 = result["total_ms"]["median"] * k
        out.update(mobilenet_v2_here_ms=round(mobilenet_here_ms, 2), pi4_over_here=round(k, 2),
                   pi4_ms=round(pi4, 1), pi5_ms=round(pi4 / ref["pi5_over_pi4"], 1),
                   pi4_detect_ms=round(result["stages"]["detect"]["median"] * k, 1),
                   note="estimate, not a measurement: this machine's per-frame median times "
                        "(Pi 4 MobileNetV2 time / MobileNetV2 time here); Pi 5 = Pi 4 / 2.5")
    else:
        out["note"] = ("estimate from MACs only (no MobileNetV2 calibration run here): "
                       "inference alone")
    return out


def run_bench(args: argparse.Namespace) -> int:
    if args.val and not Path(args.val).is_file():
        print(f"error: --val {args.val}: no such file; pass a FER2013-style NPZ (x, y, classes)",
              file=sys.stderr)
        return 2
    report, raw = collect(args)
    model = report["model"]
    cal = run_worker("calibrate", [], module=MODULE) if _has_tensorflow() and not args.no_calibrate else {}
    report["pi_estimate"] = _pi_estimate(report, cal.get("mobilenet_v2_ms"))
    fer_note = "" if args.no_fer else _fer_available()
    report["fer"] = {}
    if not args.no_fer and not fer_note:
        src = ["--frames", str(args.frames)] + (["--source", args.source] if args.source else [])
        for mode in ("tflite", "keras"):
            r = run_worker("fer", src + ["--fer-mode", mode], module=MODULE)
            if "error" in r:
                report["fer"][mode] = {"error": r["error"]}
                continue
            raw[f"fer-{mode}"] = r
            report["fer"][mode] = _summarise(r)
        ref = report["fer"].get("tflite", {})
        if "total_ms" in ref:
            report["ratio_vs_fer_tflite"] = {
                "per_frame": round(report["total_ms"]["median"] / ref["total_ms"]["median"], 3),
                "peak_rss": round(report["peak_rss_mb"] / ref["peak_rss_mb"], 3),
                "start_to_first": round(report["start_to_first_s"] / max(1e-6, ref["start_to_first_s"]), 3)}
    elif fer_note:
        report["fer"] = {"skipped": fer_note}
    val = Path(args.val) if args.val else _default_val()
    if val is not None:
        acc = _moodbox_accuracy(model, report["ensemble"], val)
        if not args.no_fer and not fer_note:
            fa = run_worker("fer-accuracy", ["--val", str(val)], module=MODULE)
            acc.update({k: v for k, v in fa.items() if k != "n"} if "error" not in fa else {"fer_error": fa["error"]})
        report["accuracy"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in acc.items()}
        report["accuracy"]["data"] = str(val)
    else:
        report["accuracy"] = {"skipped": "no FER2013 val NPZ (pass --val)"}
    report["targets"] = _targets(report)
    return emit(report, raw, args, markdown)


def _targets(report: dict) -> dict:
    daemon = report.get("daemon", {})
    first = daemon.get("start_to_first_s") or report["start_to_first_s"]
    t = {"start_to_first_under_2s": first < 2.0}
    ratio = report.get("ratio_vs_fer_tflite")
    if ratio:
        t["per_frame_at_most_fifth_of_fer"] = ratio["per_frame"] <= 0.2
        fer_rss = report["fer"]["tflite"]["peak_rss_mb"]
        daemon_rss = daemon.get("peak_rss_mb") or report["peak_rss_mb"]
        t["daemon_peak_rss_at_most_quarter_of_fer"] = daemon_rss <= 0.25 * fer_rss
    acc = report.get("accuracy", {})
    if "moodbox_int8" in acc and "fer_tflite" in acc:
        t["accuracy_at_least_fer"] = acc["moodbox_int8"] >= max(acc["fer_tflite"], acc.get("fer_keras", 0))
    return t


def markdown(r: dict) -> str:
    lines = [device_markdown(r)]
    t, d = r["total_ms"], r.get("daemon", {})
    fer = r.get("fer", {})
    if "skipped" in fer:
        lines += ["", f"fer comparison skipped: {fer['skipped']}"]
    elif fer:
        lines += ["", "### Side by side with fer 25.10.3 (same frames, separate processes, 1 thread)", "",
                  "| pipeline | per frame median ms | p90 ms | fps | peak RSS MB | start to first result s |",
                  "|---|---:|---:|---:|---:|---:|",
                  f"| moodbox pipeline | {t['median']:.2f} | {t['p90']:.2f} | {r['fps']} | "
                  f"{r['peak_rss_mb']:.0f} | {r['start_to_first_s']:.2f} |",
                  f"| moodbox daemon | | | | {d.get('peak_rss_mb', 0):.0f} | "
                  f"{(d.get('start_to_first_s') or 0):.2f} |"]
        for mode, v in fer.items():
            if "error" in v:
                lines.append(f"| fer ({mode}) | failed: {v['error']} | | | | |")
                continue
            lines.append(f"| fer ({mode}) | {v['total_ms']['median']:.2f} | {v['total_ms']['p90']:.2f} | "
                         f"{v['fps']} | {v['peak_rss_mb']:.0f} | {v['start_to_first_s']:.2f} |")
        ratio = r.get("ratio_vs_fer_tflite")
        if ratio:
            fer_rss = fer["tflite"]["peak_rss_mb"]
            fer_first = fer["tflite"]["start_to_first_s"]
            lines += ["", f"moodbox / fer (tflite): per frame {ratio['per_frame']:.3f}, peak RSS "
                      f"{ratio['peak_rss']:.3f} (daemon {d.get('peak_rss_mb', 0) / fer_rss:.3f}), "
                      f"start-up {ratio['start_to_first']:.3f} (daemon "
                      f"{(d.get('start_to_first_s') or 0) / fer_first:.3f})"]
    acc = r.get("accuracy", {})
    if "moodbox_int8" in acc:
        lines += ["", f"### Accuracy on {acc['data']} ({acc['n']} faces)", "",
                  "| classifier | accuracy |", "|---|---:|",
                  f"| moodbox int8{' (ensemble)' if r.get('ensemble') else ''} | "
                  f"{acc['moodbox_int8'] * 100:.1f}% |"]
        for k in ("fer_keras", "fer_tflite"):
            if k in acc:
                lines.append(f"| {k.replace('_', ' ')} | {acc[k] * 100:.1f}% |")
    elif "skipped" in acc:
        lines += ["", f"accuracy skipped: {acc['skipped']}"]
    pe = r["pi_estimate"]
    ref = pe["references"]
    lines += ["", "### Raspberry Pi estimate (scaled, not measured)", ""]
    if "pi4_ms" in pe:
        lines += [f"MobileNetV2 fp32 (XNNPACK, 1 thread) takes {pe['mobilenet_v2_here_ms']} ms here and "
                  f"about {ref['mobilenet_v2_fp32_xnnpack_pi4_ms']:.0f} ms on a Pi 4 (published), so a Pi 4 is "
                  f"~{pe['pi4_over_here']}x slower: about **{pe['pi4_ms']} ms per frame on a Pi 4** "
                  f"(face detection ~{pe['pi4_detect_ms']} ms of it; YuNet at 320x240 is published at "
                  f"{ref['yunet_320x240_pi4_ms']:.0f} ms there) and **{pe['pi5_ms']} ms on a Pi 5** "
                  f"(Pi 5 ~{ref['pi5_over_pi4']}x a Pi 4)."]
    members = f", all {len(r['ensemble']) + 1} models of the ensemble" if r.get("ensemble") else ""
    lines += [f"By MACs alone ({r['macs'] / 1e6:.1f} M{members} vs MobileNetV2's "
              f"{ref['mobilenet_v2_macs'] / 1e6:.0f} M), "
              f"inference would take ~{pe['pi4_infer_ms_by_macs']} ms on a Pi 4 in fp32; int8 is faster."]
    lines += ["", "targets: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in r["targets"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="moodbox-convert bench", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run_bench(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:], WORKERS, MODULE))
