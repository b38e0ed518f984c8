#!/usr/bin/env python3
"""The cost of the owner's controls on the real daemon: start-up and memory with no
controls, with the control socket only (the default) and with the phone page too, through moodbox.probe, on the demo
photos. Start-up = process start to READY=1 and to the first decision; RSS = peak and
after settling; "page" = process start until GET / answers.

    python workshop/measure_controls.py [--runs 3] [--seconds 8]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from moodbox import assets
from moodbox.probe import DaemonProcess

TOKEN = "measure-controls-token-0001"


MODES = {"no controls": (False, False), "socket (default)": (True, False),
         "socket + page": (True, True)}


def write_config(folder: Path, socket: bool, web: bool, port: int) -> Path:
    raw = yaml.safe_load(assets.default_config().read_text())
    raw["control"] = {"enabled": socket, "socket": str(folder / "c.sock")}
    raw["web"] = {"enabled": web, "listen": f"127.0.0.1:{port}", "token": TOKEN}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def page_up_s(daemon: DaemonProcess, port: int, timeout: float = 30.0) -> float | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and daemon.running():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                r.read()
            return time.monotonic() - daemon.started
        except OSError:
            time.sleep(0.02)
    return None


def one_run(socket: bool, web: bool, seconds: float, port: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mbx") as d:
        config = write_config(Path(d), socket, web, port)
        with DaemonProcess(["--config", str(config), "--source", "demo",
                            "--duration", str(seconds)], extra_env={"STATE_DIRECTORY": d}) as daemon:
            page = page_up_s(daemon, port) if web else None
            first = daemon.start_to_first_decision_s(timeout=30)
            ready = daemon.notify.first("READY=1")
            time.sleep(max(0.0, seconds - 2.5 - (time.monotonic() - daemon.started)))
            settled = daemon.sample().rss_mb if daemon.running() else float("nan")
            code, peak = daemon.wait(timeout=seconds + 30)
    return {"ready_s": None if ready is None else ready - daemon.started, "first_s": first,
            "page_s": page, "rss_mb": settled, "peak_rss_mb": peak, "exit": code}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--port", type=int, default=18080)
    args = ap.parse_args()
    ok = True
    for label, (socket, web) in MODES.items():
        runs = [one_run(socket, web, args.seconds, args.port) for _ in range(args.runs)]
        ok &= all(r["exit"] == 0 for r in runs)
        med = lambda k: statistics.median(r[k] for r in runs if r[k] is not None)  # noqa: E731
        page = f", page answers {med('page_s'):.2f} s" if web else ""
        print(f"{label:17s}: READY {med('ready_s'):.2f} s, first decision {med('first_s'):.2f} s{page}, "
              f"RSS {med('rss_mb'):.1f} MB (peak {med('peak_rss_mb'):.1f} MB), "
              f"median of {len(runs)} runs")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
