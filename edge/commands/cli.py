"""moodbox: run the daemon, steer it (status, skip, pause, volume, hold), check a setup,
classify photos, sort music, benchmark."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

# nothing heavy at module level: main() installs the signal handlers before the rest loads
logger = logging.getLogger("moodbox")


def setup_logging(level: str = "info", stream=None) -> None:
    """Log to stdout (the daemon) or stderr (tools whose stdout is data); under journald
    (JOURNAL_STREAM set) without our own timestamps."""
    from moodbox.logsafe import EscapingFormatter

    fmt = ("%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM")
           else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(EscapingFormatter(fmt))  # a file name cannot forge a log line
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        handlers=[handler], force=True)


EX_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def cmd_run(args: argparse.Namespace) -> int:
    from moodbox.audio.output import AudioFileError, AudioOutput, demo_fallback_file
    from moodbox.config import EX_CONFIG, find_config
    from moodbox.daemon import Daemon
    from moodbox.signals import Requests

    requests = args.requests or Requests()
    requests.install()  # (main did, for `moodbox run`; this is for other callers)

    config_path = find_config(args.config)
    audio = AudioOutput(file=Path(args.audio_file) if args.audio_file else None,
                        fallback_file=demo_fallback_file() if args.source == "demo" else None)
    try:
        audio.prepare()
    except AudioFileError as exc:
        logger.error("%s", exc)
        return EX_CONFIG
    logger.info("config %s", config_path)
    try:
        return Daemon(config_path, source_override=args.source, duration_s=args.duration,
                      audio=audio, requests=requests, hold_s=args.hold).run()
    finally:
        audio.discard()


def cmd_classify(args: argparse.Namespace) -> int:
    from moodbox.commands.classify import classify_images

    return classify_images(args)


def cmd_check(args: argparse.Namespace) -> int:
    from moodbox.commands.check import run_check
    from moodbox.config import find_config

    return run_check(find_config(args.config))


def cmd_bench(args: argparse.Namespace) -> int:
    from moodbox.commands.bench import run_bench

    return run_bench(args)


CONFIG_HELP = ("config file (default: $MOODBOX_CONFIG, ~/.config/moodbox/config.yaml, "
               "/etc/moodbox/config.yaml, else the shipped default)")


def _hold_seconds(text: str) -> float:
    value = _positive_seconds(text)
    if value > 3600:
        raise argparse.ArgumentTypeError(f"must be at most 3600 seconds (an hour), got {text}")
    return value


def _positive_seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodbox", description=__doc__)
    p.add_argument("--version", action="version", version=f"moodbox {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the daemon (camera -> emotion -> music)")
    r.add_argument("--config", help=CONFIG_HELP)
    r.add_argument("--source", help="override the camera: 'demo' (bundled photos), a device "
                   "number (OpenCV), or a folder of images / video file (replay)")
    r.add_argument("--hold", type=_hold_seconds, default=None, metavar="SECONDS",
                   help="a folder of photos (--source or camera.type replay): show each photo "
                   "this long (default: long enough for its mood to form, see README)")
    r.add_argument("--duration", type=_positive_seconds, default=None,
                   help="stop after this many seconds")
    r.add_argument("--audio-file", default=None, help="play into this file (.wav or raw "
                   "16-bit 44.1 kHz stereo) instead of a sound device")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", help="validate config, model, playlists, camera and audio")
    c.add_argument("--config", help=CONFIG_HELP)
    c.set_defaults(func=cmd_check)

    k = sub.add_parser("classify", help="emotions of the faces in image files")
    k.add_argument("images", nargs="+", metavar="IMAGE")
    k.add_argument("--model", default=None, help="int8 .tflite (default: the configured model)")
    k.add_argument("--config", default=None, help=CONFIG_HELP)
    k.add_argument("--json", action="store_true", help="one JSON object per image and line")
    k.add_argument("--recommend", type=_count, default=0, metavar="N",
                   help="add the mapped playlist and N of its tracks to each face")
    k.set_defaults(func=cmd_classify)

    from moodbox.control import cli as control_cli
    control_cli.add_parsers(sub)

    from moodbox.catalog import cli as catalog_cli
    catalog_cli.add_parser(sub)

    from moodbox.commands.bench import add_arguments
    b = sub.add_parser("bench", help="what each stage of the pipeline costs on this machine")
    add_arguments(b)
    b.set_defaults(func=cmd_bench)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("moodbox")
    except PackageNotFoundError:  # a bare source tree on PYTHONPATH
        return "(not installed)"


def _early_requests(argv: list[str] | None):
    """For `moodbox run`: stop and reload requests routed to flags before anything slow
    loads (a SIGHUP in the first half second is then a reload, not a silent death)."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    if words[:1] != ["run"]:
        return None
    from moodbox.signals import Requests

    requests = Requests()
    requests.install()
    return requests


def main(argv: list[str] | None = None) -> int:
    requests = _early_requests(argv)  # first thing
    try:
        return _main(argv, requests)
    except KeyboardInterrupt:  # a Ctrl-C in any command but `run` (which stops cleanly)
        print("interrupted", file=sys.stderr)
        return EX_INTERRUPTED
    finally:
        if argv is None:  # the process's own entry point (not a caller passing argv)
            _ignore_late_signals(requests is not None)


def _ignore_late_signals(run: bool) -> None:
    """The work is done: a Ctrl-C (or, for run, a SIGHUP) while the interpreter exits would
    only replace the exit status with a death by signal, so it is ignored from here on."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if run and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _main(argv: list[str] | None, requests) -> int:
    from moodbox.config import EX_CONFIG, ConfigError
    from moodbox.logsafe import EscapingStream

    if not isinstance(sys.stdout, EscapingStream):  # tags and file names reach the terminal
        sys.stdout, sys.stderr = EscapingStream(sys.stdout), EscapingStream(sys.stderr)
    args = build_parser().parse_args(argv)
    args.requests = requests
    setup_logging(stream=sys.stdout if args.command == "run" else sys.stderr)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
