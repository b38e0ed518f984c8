#!/usr/bin/env python3
"""Soak the real daemon: replay at a high frame rate with moods (and playlists) switching,
sampling the process's RSS, open file descriptors and threads over time.

    python workshop/soak.py --minutes 30 [--fps 30] [--every 10] [--json out.json] [--plot out.png]

The daemon runs as `moodbox run` on the demo photos (a smiling face, an empty table, a
portrait) shown a few seconds each, so the mood goes happy -> away -> ... and the player
fades between the bundled demo playlists. Audio goes to SDL's disk driver (into
/dev/null). At the end it prints the samples and a verdict: after a warm-up, nothing may
keep growing (RSS within 10% / 8 MB, file descriptors and threads flat).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from moodbox.probe import DaemonProcess

REPO = Path(__file__).resolve().parents[1]


def write_config(folder: Path, fps: float) -> Path:
    import yaml

    from moodbox import assets

    photos = assets.demo_photos()
    if len(photos) < 3:
        raise SystemExit("error: the demo photos are missing: pip install -e '.[demo]'")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["camera"] = {"type": "replay", "path": str(folder / "frames"), "fps": fps, "hold_s": 4.0,
                     "loop": True}
    cfg["mood"].update(smoothing_s=0.3, dwell_s=1.0, min_switch_interval_s=2.0, away_after_s=2.0)
    cfg["player"].update(fade_ms=500, away="keep")
    cfg["mood"]["map"]["away"] = "calm"
    cfg["daemon"]["status_every_s"] = 30
    frames = folder / "frames"
    frames.mkdir()
    for i, p in enumerate(photos):
        (frames / f"{i}{p.suffix}").symlink_to(p)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def verdict(samples: list[dict], warmup_s: float) -> dict:
    steady = [s for s in samples if s["t"] >= warmup_s] or samples
    q = max(1, len(steady) // 4)
    first, last = steady[:q], steady[-q:]
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    rss0, rss1 = med([s["rss_mb"] for s in first]), med([s["rss_mb"] for s in last])
    out = {"rss_first_quarter_mb": round(rss0, 1), "rss_last_quarter_mb": round(rss1, 1),
           "rss_growth_mb": round(rss1 - rss0, 1),
           "fds_min_max": [min(s["fds"] for s in steady), max(s["fds"] for s in steady)],
           "threads_min_max": [min(s["threads"] for s in steady), max(s["threads"] for s in steady)]}
    out["rss_ok"] = rss1 - rss0 <= max(8.0, 0.10 * rss0)
    out["fds_ok"] = max(s["fds"] for s in last) <= max(s["fds"] for s in first) + 1
    out["threads_ok"] = max(s["threads"] for s in last) <= max(s["threads"] for s in first)
    out["ok"] = out["rss_ok"] and out["fds_ok"] and out["threads_ok"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds ignored for the verdict")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="moodbox-soak-") as tmp:
        config = write_config(Path(tmp), args.fps)
        daemon = DaemonProcess(["--config", str(config)], cwd=Path(tmp))
        t0 = time.monotonic()
        samples = []
        try:
            while time.monotonic() - t0 < args.minutes * 60:
                time.sleep(args.every)
                if not daemon.running():
                    raise SystemExit(f"error: the daemon exited with {daemon.proc.returncode}:\n"
                                     + daemon.log[-3000:])
                s = dataclasses.asdict(daemon.sample())
                s["t"] = round(time.monotonic() - t0, 1)
                samples.append(s)
                print(f"t={s['t']:7.1f}s rss={s['rss_mb']:6.1f} MB fds={s['fds']:3d} "
                      f"threads={s['threads']:3d}", flush=True)
        finally:
            code, _ = daemon.stop(timeout=15)
            text = daemon.log
            daemon.close()
    switches = text.count("mood -> ")
    tracks = text.count("playing ")
    result = {"minutes": args.minutes, "fps": args.fps, "samples": samples, "exit_code": code,
              "mood_switches": switches, "tracks_started": tracks,
              "tracebacks": text.count("Traceback"), **verdict(samples, args.warmup)}
    statuses = [l for l in text.splitlines() if "status fps=" in l]
    result["last_status"] = statuses[-1].split("status ", 1)[1] if statuses else ""
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True, dpi=100)
        for ax, key, label in zip(axes, ("rss_mb", "fds", "threads"), ("RSS MB", "open fds", "threads")):
            ax.plot([s["t"] / 60 for s in samples], [s[key] for s in samples])
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("minutes")
        fig.suptitle(f"moodbox soak: {args.fps:g} fps replay, {switches} mood switches")
        fig.tight_layout()
        fig.savefig(args.plot)
    ok = result["ok"] and code == 0 and result["tracebacks"] == 0
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
