"""The handlers behind `moodbox catalog scan|import|assign` (pandas and mutagen live here)."""
from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from moodbox.catalog.cli import SHOW_AT_MOST
from moodbox import files
from moodbox.catalog.assign import MOODS, assign_moods, check_replaceable, write_playlists
from moodbox.catalog.audio_model import AUDIO_MODEL_PATH, load_audio_model
from moodbox.catalog.decode import DecodeError, PygameDecoder
from moodbox.catalog.model import DEFAULT_MODEL_PATH, ModelFileError, load_model
from moodbox.catalog.progress import ScanProgress
from moodbox.catalog.scan import ScanResult, index_tags, scan_library
from moodbox.catalog.spotify import match_features, read_features_csv
from moodbox.catalog.table import CatalogError, check_output_file, read_catalog, write_catalog
from moodbox.vocabulary import unplayable_reason

logger = logging.getLogger(__name__)

EX_OK, EX_USAGE, EX_INTERRUPTED = 0, 2, 130


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the errors an owner can fix into one `error: ...` line and exit status 2."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CatalogError, ModelFileError, DecodeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{exc.strerror or exc}; check the path and its permissions",
                  file=sys.stderr)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EX_INTERRUPTED
        return EX_USAGE
    run.__doc__ = handler.__doc__
    return run


def _stop_on_sigterm() -> Any:
    """Make SIGTERM stop a scan like Ctrl-C (finished rows are kept); returns the old handler."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:          # not the main thread: leave signals alone
        return None


def _print_scan_summary(result: ScanResult, root: Path, seconds: float) -> None:
    print(f"{result.catalog}: {result.total} music files under {root} ({result.analysed} "
          f"analysed, {result.reused} unchanged, {len(result.errors)} with errors, "
          f"{result.removed} gone) in {seconds:.1f} s")
    if result.errors:
        print(f"skipped (listed with an error in {result.catalog.name}):")
        for path, reason in result.errors[:SHOW_AT_MOST]:
            print(f"  {path}: {reason}")
        if len(result.errors) > SHOW_AT_MOST:
            print(f"  ... and {len(result.errors) - SHOW_AT_MOST} more (see the error column)")
    _print_unplayable(result.unplayable)


def _print_unplayable(paths: list[Path], show: int = 5) -> None:
    """Music the box cannot play, and the way out: convert it, or play through MPD."""
    if not paths:
        return
    kinds = sorted({p.suffix.lower() for p in paths})
    print(f"cannot play {len(paths)} file(s) ({', '.join(kinds)}; not in the catalog): the "
          "player plays .ogg, .mp3, .wav and .flac")
    for path in paths[:show]:
        print(f"  {path}")
    if len(paths) > show:
        print(f"  ... and {len(paths) - show} more")
    first = paths[0]
    print(f"  convert them with ffmpeg (sudo apt install ffmpeg), e.g. ffmpeg -i "
          f"{shlex.quote(str(first))} -c:a libvorbis -q:a 5 "
          f"{shlex.quote(str(first.with_suffix('.ogg')))}")
    print("  or play them through MPD (player.output: mpd; README), which decodes AAC and m4a")


@_guarded
def cmd_scan(args: argparse.Namespace) -> int:
    """Index and analyse MUSIC_DIR into the catalog CSV (resumable)."""
    out, root = Path(args.out), Path(args.music_dir)
    check_output_file(out, "--out")
    progress = ScanProgress() if not args.no_progress else None
    started, old_handler = time.monotonic(), _stop_on_sigterm()
    try:
        with PygameDecoder() as decoder:
            result = scan_library(root, out, decoder, progress, retry_errors=args.retry_errors)
    finally:
        if progress:
            progress.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
    _print_scan_summary(result, root.resolve(), time.monotonic() - started)
    if result.interrupted:
        print(f"interrupted: {out} holds the files finished so far; run the same command "
              "again to continue", file=sys.stderr)
        return EX_INTERRUPTED
    return EX_OK


def _local_tracks(catalog: str | None, music: str | None) -> pd.DataFrame:
    if not catalog and not music:
        raise CatalogError("import needs local tracks: pass --catalog catalog.csv (from "
                           "`moodbox catalog scan`) and/or --music MUSIC_DIR")
    frames = [read_catalog(Path(catalog))] if catalog else []
    if music:
        tagged = index_tags(Path(music))
        known = set(frames[0]["path"]) if frames else set()
        frames.append(tagged[~tagged["path"].isin(known)])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    """Match Spotify-style features to local tracks and store them in the catalog."""
    out = Path(args.out)
    check_output_file(out, "--out")
    features = read_features_csv(Path(args.features))
    local = _local_tracks(args.catalog, args.music)
    merged, report = match_features(local, features)
    write_catalog(merged, out)
    print(f"{out}: {report.summary()}; {len(merged)} local tracks in the catalog")
    for name in report.unmatched[:SHOW_AT_MOST if args.show_unmatched else 5]:
        print(f"  no local file for: {name}")
    if report.matched_rows == 0 and len(features):
        print("warning: nothing matched; check that the titles and artists in your tags or file "
              "names (\"Artist - Title.ogg\") are those of the features file", file=sys.stderr)
    return EX_OK


@_guarded
def cmd_assign(args: argparse.Namespace) -> int:
    """Write happy/sad/energetic/calm .m3u playlists from the catalog."""
    out_dir = Path(args.out)
    if files.kind(out_dir) not in (files.FOLDER, files.MISSING):
        raise CatalogError(f"--out {out_dir} is not a folder; give a folder for the playlists")
    check_replaceable(out_dir, args.force)     # before any work: nothing of the owner's is lost
    model = load_model(Path(args.model) if args.model else DEFAULT_MODEL_PATH)
    audio = load_audio_model(Path(args.audio_model) if args.audio_model else AUDIO_MODEL_PATH)
    for name, classes in (("mood", model.classes), ("audio mood", audio.classes)):
        if not set(classes) <= set(MOODS):
            raise CatalogError(f"{name} model classes {list(classes)} are not among "
                               f"{list(MOODS)}; use a model written by workshop/fit_mood_model.py")
    assigned = assign_moods(read_catalog(Path(args.catalog)), model, audio)
    present = assigned["path"].map(lambda p: not unplayable_reason(Path(p)))
    if (~present).any():
        print(f"warning: {int((~present).sum())} catalog tracks are gone or no longer playable "
              "and were left out; re-run `moodbox catalog scan` to refresh the catalog",
              file=sys.stderr)
    counts = write_playlists(assigned[present], out_dir, force=args.force)
    methods = assigned[present]["method"].value_counts().to_dict()
    print(f"{out_dir.resolve()}: " + ", ".join(f"{m} {counts[m]}" for m in MOODS)
          + f" ({', '.join(f'{k} {v}' for k, v in methods.items()) or 'no tracks'})")
    for mood in MOODS:
        print(f"  {mood:<9} {counts[mood]:>5}  {(out_dir / f'{mood}.m3u').resolve()}")
    return EX_OK
