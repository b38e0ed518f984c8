"""`moodbox bench`: what each stage of the real pipeline costs on this machine (a Pi too).

It times FaceEmotionPipeline itself, stage by stage, on one thread, plus each face
detector (YuNet, Haar) side by side with its tuning steps, and runs the real daemon for
its peak RSS and start-up. The side-by-side with the `fer` package, accuracy and the Pi estimate are desktop work:
`moodbox-convert bench` (moodbox.converter.bench) builds on this module.
"""
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

from moodbox import jsonio

STAGES = ("decode", "grey_resize", "detect", "crop", "infer", "debounce")
# Each face detector side by side, with its tuning steps (cumulative within a detector).
_CAMERA = {"detect_width": 320, "camera_width": 320, "detect_every": 1, "flip": True}
VARIANTS = {
    "haar-full-res": {"detector": "haar", "detect_width": 4096, "camera_width": 0, "roi": False,
                      "idle_every": 1, "detect_every": 1, "flip": True},
    "haar-320": {**_CAMERA, "detector": "haar", "roi": False, "idle_every": 1},
    "haar-320+roi+idle-3": {**_CAMERA, "detector": "haar", "roi": True, "idle_every": 3},
    "yunet-320": {**_CAMERA, "detector": "yunet", "roi": False, "idle_every": 1},
    "yunet-320+roi": {**_CAMERA, "detector": "yunet", "roi": True, "idle_every": 1},
    "yunet-320+roi+idle-3": {**_CAMERA, "detector": "yunet", "roi": True, "idle_every": 3},
    "yunet-320+roi+idle-3, one view": {**_CAMERA, "detector": "yunet", "roi": True,
                                       "idle_every": 3, "flip": False},
    "yunet-320+roi+idle-3+every-2": {**_CAMERA, "detector": "yunet", "roi": True,
                                     "idle_every": 3, "detect_every": 2},
    "blazeface-320+idle-3": {**_CAMERA, "detector": "blazeface", "roi": False, "idle_every": 3},
}
DEFAULT_VARIANT = "yunet-320+roi+idle-3"  # what config.yaml ships (flip on)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None, help="folder of images or a video (default: the "
                   "demo photos shipped by scikit-image and matplotlib)")
    p.add_argument("--frames", type=int, default=0, help="frames to time (default: the whole "
                   "video, or 150 for photos)")
    p.add_argument("--model", default=None, help="int8 .tflite (default: the shipped model)")
    p.add_argument("--ensemble", nargs="+", default=[], metavar="PATH",
                   help="time an ensemble: up to 2 more models averaged with --model on every "
                   "face, as classifier.ensemble in config.yaml does")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--plot", default=None, help="write the per-stage latency distribution (PNG)")
    p.add_argument("--no-variants", action="store_true", help="skip the detector tuning runs")


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


# FER2013 val faces as camera frames: the 48x48 face scaled to 144 px in a 320x256 frame,
# the border replicated, so the whole pipeline (detector, crop, classifier) is measured
FER_FRAME = (320, 256)
FER_FACE_PX = 144


def place_in_frame(face: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A 48x48 FER2013 face -> (a 320x256 greyscale frame, (x, y, side) of the face's
    own 48x48 frame in it)."""
    import cv2

    big = cv2.resize(face, (FER_FACE_PX, FER_FACE_PX), interpolation=cv2.INTER_LINEAR)
    w, h = FER_FRAME
    left, top = (w - FER_FACE_PX) // 2, (h - FER_FACE_PX) // 2
    frame = cv2.copyMakeBorder(big, top, h - FER_FACE_PX - top, left, w - FER_FACE_PX - left,
                               cv2.BORDER_REPLICATE)
    return frame, (left, top, FER_FACE_PX)


# --- workers (each in its own process, so memory and start-up are its own) ----------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_classifier(model: str, ensemble: list[str], flip: bool = True):
    """classifier.* as the bench runs it: one thread, the shipped flip unless a variant
    turns it off, `ensemble` averaged with `model`."""
    from moodbox.config import ClassifierConfig

    shipped = ClassifierConfig()
    return dataclasses.replace(shipped, model=model, ensemble=tuple(ensemble), threads=1,
                               flip=flip and shipped.flip)


def worker_moodbox(args: argparse.Namespace) -> dict:
    """The moodbox pipeline, stage by stage, on one thread."""
    import cv2

    from moodbox.camera import to_grey
    from moodbox.vision.classifier import make_classifier
    from moodbox.config import FacesConfig, MoodConfig
    from moodbox.mood import EmotionSmoother
    from moodbox.vision.pipeline import FaceEmotionPipeline

    cv2.setNumThreads(1)
    v = VARIANTS[args.variant]
    faces_cfg = dataclasses.replace(FacesConfig(), detector=v["detector"],
                                    detect_width=v["detect_width"], roi=v["roi"],
                                    detect_every=v["detect_every"], idle_every=v["idle_every"])
    clf = make_classifier(bench_classifier(args.model, args.ensemble, flip=v["flip"]))
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
        smoother.update(time.monotonic(), result.probs)
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
    return {"pipeline": "moodbox", "variant": args.variant, "detector": pipeline.detector.describe(),
            "frames": len(totals),
            "with_face": with_face, "times": times, "totals": totals,
            "cpu_ms_per_frame": cpu * 1000.0 / max(1, len(totals)),
            "first_decision_wall": first_decision, "peak_rss_mb": _peak_rss_mb(),
            "runtime": clf.runtime, "macs": stats.macs, "params": stats.params,
            "model_bytes": stats.size_bytes}


WORKERS = {"moodbox": worker_moodbox}


def worker_main(argv: list[str], workers: dict = WORKERS, prog: str = "moodbox.commands.bench") -> int:
    """A worker process: run one `workers[kind]` and print its result as one JSON line."""
    p = argparse.ArgumentParser(prog=f"python -m {prog}")
    p.add_argument("kind", choices=sorted(workers))
    p.add_argument("--source", default=None)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--model", default=None)
    p.add_argument("--ensemble", nargs="*", default=[])
    p.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    p.add_argument("--fer-mode", default="tflite", choices=["tflite", "keras"])
    p.add_argument("--val", default=None)
    args = p.parse_args(argv)
    result = workers[args.kind](args)
    print("BENCH-RESULT " + jsonio.dumps(result), flush=True)
    return 0


# --- the parent: runs the workers, compares, prints --------------------------------------
def run_worker(kind: str, extra: list[str], timeout: float = 900,
               module: str = "moodbox.commands.bench") -> dict:
    """Run one worker in its own process (its memory and start-up are its own)."""
    cmd = [sys.executable, "-m", module, kind, *extra]
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


def _run_daemon(source: str | None, model: str, ensemble: list[str],
                seconds: float = 10.0) -> dict:
    """The real `moodbox run` (player included) on the same frames and the same classifier:
    its peak RSS and the time from process start to its first decision (moodbox.probe, as
    systemd sees it)."""
    import tempfile

    from moodbox import assets
    from moodbox.probe import DaemonProcess

    with tempfile.TemporaryDirectory(prefix="moodbox-bench-") as tmp:
        config = Path(tmp) / "config.yaml"  # the shipped config with the benched classifier
        classifier = {"model": str(Path(model).resolve()), "ensemble": ensemble}
        config.write_text(jsonio.dumps({"classifier": classifier}),  # JSON is YAML
                          encoding="utf-8")
        if source is None:
            frames = Path(tmp) / "frames"
            frames.mkdir()
            for i, p in enumerate(assets.demo_photos()):
                (frames / f"{i}{p.suffix}").symlink_to(p)
            source = str(frames)
        with DaemonProcess(["--config", str(config), "--source", source,
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


def collect(args: argparse.Namespace) -> tuple[dict, dict]:
    """Time the pipeline (and each tuning variant) and the daemon: (report, raw timings)."""
    from moodbox import assets

    from moodbox.config.schema import MAX_ENSEMBLE
    from moodbox.vision.classifier import ModelError, describe, make_classifier

    model = args.model or str(assets.default_model())
    ensemble = [str(Path(m).resolve()) for m in args.ensemble]
    if len(ensemble) > MAX_ENSEMBLE:
        raise SystemExit(f"error: --ensemble lists {len(ensemble)} models; at most "
                         f"{MAX_ENSEMBLE} are averaged with --model")
    if not Path(model).is_file():
        raise SystemExit(f"error: model {model} does not exist; pass --model")
    try:  # every model there and all of them agreeing, before any worker starts
        models = describe(make_classifier(bench_classifier(model, ensemble)))
    except ModelError as exc:
        raise SystemExit(f"error: {exc}") from None
    base = ["--model", model, "--frames", str(args.frames)] + (["--source", args.source] if args.source else [])
    base += ["--ensemble", *ensemble] if ensemble else []
    feed = FrameFeed(args.source, args.frames)  # validates the source early
    print(f"moodbox bench: {feed.description}, 1 thread, model {models}", file=sys.stderr)
    main = run_worker("moodbox", base + ["--variant", DEFAULT_VARIANT])
    if "error" in main:
        raise SystemExit(f"error: {main['error']}")
    report = _summarise(main)
    report.update(macs=main["macs"], params=main["params"], model_bytes=main["model_bytes"],
                  runtime=main["runtime"], source=feed.description, model=model,
                  ensemble=ensemble, models=models)
    report["daemon"] = _run_daemon(args.source, model, ensemble)
    if not args.no_variants:
        report["variants"] = {}
        for name in VARIANTS:
            r = main if name == DEFAULT_VARIANT else run_worker("moodbox", base + ["--variant", name])
            if "error" not in r:
                s = _summarise(r)
                report["variants"][name] = {"detector": r["detector"], "flip": VARIANTS[name]["flip"],
                                            "detect_ms": s["stages"]["detect"], "total_ms": s["total_ms"],
                                            "with_face": s["with_face"], "frames": s["frames"]}
    return report, {"moodbox": main}


def emit(report: dict, raw: dict, args: argparse.Namespace, as_markdown=None) -> int:
    """Print the report as markdown (and JSON as the last line), draw the plot."""
    print((as_markdown or markdown)(report))
    if args.plot:
        plot_stages(raw, Path(args.plot))
        print(f"\nplot: {args.plot}")
    if args.json:
        print(jsonio.dumps(report))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    report, raw = collect(args)
    return emit(report, raw, args)


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
              f"{r['model_bytes'] / 1024:.0f} KiB" + _ensemble_note(r)]
    if r.get("variants"):
        lines += ["", "### Face detectors side by side (tuning steps cumulative within a detector)",
                  "", "| variant | detect median ms | detect p90 ms | total median ms | frames with "
                  "a face |", "|---|---:|---:|---:|---:|"]
        for name, v in r["variants"].items():
            shipped = " (shipped)" if name == DEFAULT_VARIANT else ""
            lines.append(f"| {name}{shipped} | {v['detect_ms']['median']:.2f} | "
                         f"{v['detect_ms']['p90']:.2f} | {v['total_ms']['median']:.2f} | "
                         f"{v['with_face']}/{v['frames']} |")
        lines += ["", "detectors: " + "; ".join(dict.fromkeys(v["detector"] for v in r["variants"].values()))]
    return "\n".join(lines)


def _ensemble_note(r: dict) -> str:
    """' (ensemble of 2 models (a, b): all of them, every face)', or '' for one model."""
    return f" ({r['models']}: all of them, every face)" if r.get("ensemble") else ""


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
    sys.exit(worker_main(sys.argv[1:]))
