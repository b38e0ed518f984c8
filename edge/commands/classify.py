"""`moodbox classify`: emotions of every face in photos, with optional track recommendations."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import sys
from pathlib import Path

from moodbox import jsonio
from moodbox.vision.classifier import ModelError, make_classifier
from moodbox.config import EX_CONFIG, Config, ConfigError, find_config, load_config
from moodbox.vocabulary import EMOTIONS
from moodbox.vision.detector import DetectorError
from moodbox.vision.pipeline import FaceEmotionPipeline

logger = logging.getLogger(__name__)

# photos are larger than camera frames: detect at a finer scale (Haar needs 960 px for
# small faces; YuNet finds them at 640 and puts false faces on suits and mugs above that)
STILL_DETECT_WIDTH = {"haar": 960, "yunet": 640, "blazeface": 640}  # blazeface: unused (letterboxed)


def read_grey(path: Path):
    """A photo as greyscale uint8 (alpha dropped), or raises ValueError naming the problem;
    its header's size is checked before it is decoded (moodbox.images)."""
    from moodbox.images import read_grey as read_checked

    return read_checked(path)


def _shown(name: str) -> str:
    """A file name as printable text (a name that is not valid UTF-8 gets U+FFFD)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _recommendations(cfg: Config, n: int, rng: random.Random) -> dict[str, tuple[str, list[str]]]:
    from moodbox.audio.playlists import load_playlists

    playlists = load_playlists(cfg.playlists)
    out = {}
    for mood in dict.fromkeys([*cfg.mood.map, *EMOTIONS]):  # mapped moods first, then the rest
        names = cfg.playlists_for(mood)
        if not names:
            continue  # "away" kept unmapped: nothing to recommend
        name = names[0]
        tracks = list(playlists[name].tracks) if name in playlists else []
        if not tracks and cfg.player.default_playlist in playlists:
            name = cfg.player.default_playlist
            tracks = list(playlists[name].tracks)
        out[mood] = (name, [str(t) for t in rng.sample(tracks, min(n, len(tracks)))])
    return out


def classify_images(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(find_config(args.config))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_CONFIG
    still_width = STILL_DETECT_WIDTH.get(cfg.faces.detector, 960)
    faces_cfg = dataclasses.replace(cfg.faces, roi=False, detect_every=1,
                                    detect_width=max(cfg.faces.detect_width, still_width))
    try:
        pipeline = FaceEmotionPipeline(faces_cfg, make_classifier(cfg.classifier, args.model or None))
    except (ModelError, DetectorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_CONFIG
    recs = _recommendations(cfg, args.recommend, random.Random(0)) if args.recommend > 0 else {}
    failed = 0
    for name in args.images:
        path, shown = Path(name), _shown(name)
        try:
            grey = read_grey(path)
        except (ValueError, OSError) as exc:  # this file only: the batch goes on
            failed += 1
            _emit(args.json, {"image": shown, "faces": [], "error": f"{shown}: {exc}"})
            continue
        faces = []
        for box, emotion in pipeline.classify_all(grey):
            entry = {"box": box.as_list(), "score": round(box.score, 3), "emotion": emotion.name,
                     "probs": emotion.as_dict()}
            if recs:
                playlist, tracks = recs.get(emotion.name, ("", []))
                entry.update(playlist=playlist, tracks=tracks)
            faces.append(entry)
        _emit(args.json, {"image": shown, "faces": faces})
    return 1 if failed else 0


def _emit(as_json: bool, record: dict) -> None:
    if as_json:
        print(jsonio.dumps(record, ensure_ascii=False), flush=True)
        return
    if "error" in record:
        print(f"{record['image']}: error: {record['error']}")
        return
    faces = record["faces"]
    print(f"{record['image']}: {len(faces)} face(s)")
    for f in faces:
        top = sorted(f["probs"].items(), key=lambda kv: -kv[1])[:3]
        line = f"  {f['emotion']:<8} box={f['box']}  " + "  ".join(f"{k} {v:.2f}" for k, v in top)
        if "playlist" in f:
            line += f"  -> {f['playlist']}: " + ", ".join(Path(t).name for t in f["tracks"])
        print(line)
