#!/usr/bin/env python3
"""Start the real daemon a few times on the demo photos and report its start-up and memory:
seconds from process start to the first decision, peak RSS, and whether pandas (the
catalog's, never the daemon's) got loaded.

    python workshop/measure_startup.py [--runs 3] [--seconds 6]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from moodbox.probe import DaemonProcess


def one_run(seconds: float) -> dict:
    with DaemonProcess(["--source", "demo", "--duration", str(seconds)]) as daemon:
        first = daemon.start_to_first_decision_s(timeout=30)
        time.sleep(min(2.0, seconds / 2))
        maps = Path(f"/proc/{daemon.pid}/maps").read_text() if daemon.running() else ""
        code, peak = daemon.wait(timeout=seconds + 30)
    return {"first_s": first, "peak_rss_mb": peak, "pandas": "pandas" in maps, "exit": code}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    runs = [one_run(args.seconds) for _ in range(args.runs)]
    for r in runs:
        print(f"first decision {r['first_s']:.2f} s, peak RSS {r['peak_rss_mb']:.1f} MB, "
              f"pandas loaded: {r['pandas']}, exit {r['exit']}")
    print(f"median: first decision {statistics.median(r['first_s'] for r in runs):.2f} s, "
          f"peak RSS {statistics.median(r['peak_rss_mb'] for r in runs):.1f} MB")
    return 0 if all(r["exit"] == 0 and not r["pandas"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
