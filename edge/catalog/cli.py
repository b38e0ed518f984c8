"""`moodbox catalog scan|import|assign`: the parser; the handlers load pandas only when run."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Callable

EX_USAGE = 2
SHOW_AT_MOST = 20
CATALOG_EXTRA_HINT = "pip install 'moodbox[catalog]' (pandas, mutagen)"


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """`moodbox.catalog.commands.<name>`, imported when the command runs, so that
    building the parser (every `moodbox` command does) never loads pandas."""
    def run(args: argparse.Namespace) -> int:
        try:
            commands = importlib.import_module("moodbox.catalog.commands")
        except ImportError as exc:
            print(f"error: moodbox catalog needs {exc.name or 'its extra'}: {CATALOG_EXTRA_HINT}",
                  file=sys.stderr)
            return EX_USAGE
        return getattr(commands, name)(args)
    return run


def _catalog_help(args: argparse.Namespace) -> int:
    args.catalog_parser.print_help(sys.stderr)
    return EX_USAGE


def add_parser(subparsers: Any) -> None:
    """Add `catalog` (with scan / import / assign) to an argparse subparsers object."""
    cat = subparsers.add_parser(
        "catalog", help="sort your music into mood playlists",
        description="Sort your music into happy/sad/energetic/calm playlists: `scan` a folder, "
                    "optionally `import` Spotify audio features, then `assign` (docs/CATALOG.md).")
    cat.set_defaults(func=_catalog_help, catalog_parser=cat)
    sub = cat.add_subparsers(dest="catalog_command", metavar="{scan,import,assign}")

    s = sub.add_parser("scan", help="index and analyse a music folder (resumable)")
    s.add_argument("music_dir", metavar="MUSIC_DIR", help="folder searched recursively for "
                   ".ogg .mp3 .wav .flac")
    s.add_argument("--out", required=True, help="catalog CSV to write or update")
    s.add_argument("--retry-errors", action="store_true",
                   help="try again files that failed in an earlier scan")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_handler("cmd_scan"))

    i = sub.add_parser("import", help="attach Spotify-style audio features to local tracks")
    i.add_argument("features", metavar="FEATURES.csv", help="CSV with name/title, artist and "
                   "danceability, energy, valence, tempo, ... (e.g. data_moods.csv)")
    i.add_argument("--catalog", help="existing catalog CSV with the local tracks")
    i.add_argument("--music", metavar="MUSIC_DIR", help="read titles/artists from this folder")
    i.add_argument("--out", required=True, help="catalog CSV to write (may be --catalog)")
    i.add_argument("--show-unmatched", action="store_true",
                   help=f"list up to {SHOW_AT_MOST} feature rows that matched nothing (default 5)")
    i.set_defaults(func=_handler("cmd_import"))

    a = sub.add_parser("assign", help="write happy/sad/energetic/calm .m3u playlists")
    a.add_argument("--catalog", required=True, help="catalog CSV")
    a.add_argument("--out", required=True, help="folder for the .m3u files")
    a.add_argument("--model", default=None,
                   help="mood model JSON for tracks with Spotify features (default: shipped)")
    a.add_argument("--audio-model", default=None,
                   help="mood model JSON for tracks with only a scan (default: shipped)")
    a.add_argument("--force", action="store_true",
                   help="replace happy.m3u ... moods.csv in --out even where an earlier assign "
                        "did not write them (a hand-made playlist would be lost)")
    a.set_defaults(func=_handler("cmd_assign"))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m moodbox.catalog.cli catalog ...`)."""
    parser = argparse.ArgumentParser(prog="moodbox")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
