"""`moodbox status|skip|pause|resume|volume|hold|release|camera`: ask the running daemon."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from moodbox import files, jsonio
from moodbox.logsafe import escape
from moodbox.control.socket import ControlClient, NoDaemon, default_socket_paths

EX_OK, EX_FAILURE = 0, 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="config file whose control.socket to use")
        p.add_argument("--socket", help="the daemon's control socket (default: control.socket, "
                       "/run/moodbox/control.sock, $XDG_RUNTIME_DIR/moodbox.sock)")
        p.set_defaults(func=run_command)
        return p

    command("status", "what plays and why").add_argument(
        "--json", action="store_true", help="one JSON object")
    command("skip", "next track (the skipped one plays less in this mood)")
    command("pause", "pause the music")
    command("resume", "resume the music")
    command("volume", "set the volume (0..1, still capped by max_volume and quiet hours)"
            ).add_argument("level", type=_level, metavar="LEVEL")
    h = command("hold", "play this playlist whatever the mood")
    h.add_argument("playlist", metavar="PLAYLIST")
    h.add_argument("--minutes", type=_minutes, default=None, metavar="M",
                   help="for M minutes (default: until `moodbox release`)")
    command("release", "end a hold; follow the mood again")
    command("camera", "the privacy switch: camera off (closed) or on; no argument shows it"
            ).add_argument("state", nargs="?", choices=("on", "off"), metavar="on|off",
                           help="off: close the camera (the music plays on); on: open it")


def _minutes(text: str) -> float:
    """--minutes, checked by the core's own rule (a usage error, one line)."""
    from moodbox.control.core import ControlError, hold_minutes

    try:
        return hold_minutes(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of minutes") from None
    except ControlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _level(text: str) -> float:
    """A finite number (the daemon checks the range: its answer names max_volume)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def socket_paths(args: argparse.Namespace) -> list[Path]:
    """--socket, else the config's control.socket, else the defaults that exist (the
    first one when none does, for the error message)."""
    if args.socket:
        return [Path(args.socket)]
    configured = _configured_socket(args.config)
    if configured:
        return [configured]
    candidates = default_socket_paths()
    return [p for p in candidates if files.kind(p) != files.MISSING] or candidates[:1]


def ask(paths: list[Path], request: dict) -> dict:
    """The first daemon that answers; NoDaemon (the first path's reason) when none does."""
    first: NoDaemon | None = None
    for path in paths:
        try:
            return ControlClient(path).request(request)
        except NoDaemon as exc:
            first = first or exc
    raise first


def _configured_socket(explicit: str | None) -> Path | None:
    """control.socket from the config, read leniently: the rest of the file is the
    daemon's business (and may name folders this user cannot read)."""
    from moodbox.config import find_config

    path = find_config(explicit)
    try:
        import yaml

        raw = yaml.safe_load(files.read_bounded(path, 1024 * 1024).decode("utf-8")) or {}
        value = (raw.get("control") or {}).get("socket") or ""
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return None
    except Exception:  # noqa: BLE001 (yaml.YAMLError: the daemon reports it)
        return None
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else path.resolve().parent / p


def request_for(args: argparse.Namespace) -> dict:
    if args.command == "volume":
        return {"cmd": "volume", "level": args.level}
    if args.command == "hold":
        return {"cmd": "hold", "playlist": args.playlist, "minutes": args.minutes}
    if args.command == "camera":
        return {"cmd": "camera"} if args.state is None else {"cmd": "camera", "state": args.state}
    return {"cmd": args.command}


def run_command(args: argparse.Namespace) -> int:
    try:
        reply = ask(socket_paths(args), request_for(args))
    except NoDaemon as exc:
        print(f"error: {escape(str(exc))}", file=sys.stderr)
        return EX_FAILURE
    if not reply.get("ok"):
        print(f"error: {escape(str(reply.get('error', 'the daemon refused'))[:500])}",
              file=sys.stderr)
        return EX_FAILURE
    status = reply.get("status")
    if not isinstance(status, dict):  # every answer of the daemon's core carries its status
        print("error: the answer has no status: not a moodbox daemon's; is something else "
              "listening on the socket?", file=sys.stderr)
        return EX_FAILURE
    try:
        text = (jsonio.dumps(status, indent=1) if args.json else summary(status)
                ) if args.command == "status" else confirmation(args.command, _escaped(reply),
                                                                _escaped(status))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"error: the daemon's answer could not be read ({type(exc).__name__}: {exc}); "
              "is something else listening on the socket?", file=sys.stderr)
        return EX_FAILURE
    print(text)
    return EX_OK


def confirmation(command: str, reply: dict, status: dict) -> str:
    if command == "skip":
        return f"skipped {reply.get('skipped') or 'the track'}"
    if command == "volume":
        capped = reply.get("capped_at")
        extra = f" (capped at max_volume {capped:.2f})" if capped is not None else ""
        return f"volume {reply['volume']:.2f}{extra}; playing at {status.get('volume', 0):.2f}"
    if command == "hold":
        minutes = reply.get("minutes")
        return f"holding {reply['hold']} " + (f"for {minutes:g} min" if minutes else
                                              "until `moodbox release`")
    if command == "camera":
        if reply.get("privacy"):
            return "camera off (privacy): closed, nothing is seen; the music plays on"
        return f"camera on ({status.get('camera', 'starting')})"
    if command == "release":
        return f"released; following the mood ({status.get('mood')})"
    return {"pause": "paused", "resume": "resumed"}.get(command, "done")


def _escaped(obj: Any) -> Any:
    """Every string in a reply with its control characters written out."""
    if isinstance(obj, str):
        return escape(obj)
    if isinstance(obj, dict):
        return {k: _escaped(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_escaped(v) for v in obj]
    return obj


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def summary(s: dict) -> str:
    """A short readable summary of a status snapshot (every name and tag escaped: a
    title's escape sequence or newline never reaches the terminal raw)."""
    s = _escaped(s)
    track = s.get("track")
    if track:
        tags = " - ".join(t for t in (track.get("artist"), track.get("title"), track.get("album"))
                          if t)
        now = f"{track['name']}" + (f" ({tags})" if tags else "") + f" from {s.get('playlist')}"
    else:
        now = "nothing"
    state = "paused" if s.get("paused") else s.get("state", "")
    if s.get("waiting") and track:
        now = now.rsplit(" from ", 1)[0] + " (chosen in an MPD client)"
    lines = [f"playing  {now} [{state}]"]
    if s.get("waiting"):
        left = s["waiting"].get("remaining_s")
        lines.append(f"waits    {s['waiting']['text']} ({s['waiting'].get('reason')}); "
                     + ("until `moodbox release`" if left is None
                        else f"{left / 60:.0f} more min or until `moodbox release`"))
    emo = s.get("emotion")
    why = f"mood {s.get('mood')}"
    if s.get("hold"):
        left = s["hold"].get("remaining_s")
        why = (f"held on {s['hold']['playlist']} "
               + (f"for {left / 60:.0f} more min" if left is not None else "until release")
               + f" (mood {s.get('mood')})")
    history = s.get("history") or []
    if history and not s.get("hold"):
        h = history[0]
        why += f" since {_ago(h['ago_s'])}"
        if h.get("emotion"):
            why += f" ({h['emotion']} {h['p']:.2f})"
    lines.append(f"why      {why}")
    if s.get("follow_text"):
        lines.append(f"when     {s['follow_text']}")
    lines.append("sees     " + (f"{emo['name']} ({emo['p']:.2f})" if emo else "no emotion yet")
                 + f", {s.get('faces', 0)} face(s), camera {s.get('camera')}, {s.get('fps', 0):.1f} fps")
    if s.get("privacy"):
        lines[-1] = "sees     nothing: camera off (privacy)"
    vol = f"volume   {s.get('volume', 0):.2f} (max {s.get('max_volume', 0):.2f}"
    vol += ", quiet hours)" if s.get("quiet_hours") else ")"
    lines.append(vol)
    if s.get("learned_text"):
        lines.append(f"learned  {s['learned_text']}")
    if len(history) > 1:
        lines.append("recent   " + "; ".join(f"{h['mood']} {_ago(h['ago_s'])}" for h in history[:5]))
    lines.append(f"up       {_ago(s.get('uptime_s', 0)).replace(' ago', '')}")
    return "\n".join(lines)
