#!/usr/bin/env python3
"""Synthesize the demo tracks shipped in playlists/: we make them, so we may ship them.

Each playlist gets its own tempo, mode and timbre (upbeat: fast major plucks with drums;
calm: slow major pads; energetic: fast minor saw bass; ...). Deterministic (fixed seeds),
so rerunning gives the same music. Needs numpy and soundfile (libsndfile with Vorbis):

    python workshop/make_demo_tracks.py [--out playlists] [--seconds 24]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 22050
A4 = 440.0
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)


@dataclass(frozen=True)
class Style:
    bpm: float
    root: int            # MIDI note of the key's root
    scale: tuple[int, ...]
    progression: tuple[int, ...]  # scale degrees of the chord roots, one per bar
    lead: str            # pluck | pad | fm | saw | bell
    drums: bool
    density: float       # melody notes per beat


STYLES = {
    "upbeat": Style(128, 60, MAJOR, (0, 4, 5, 3), "pluck", True, 2.0),
    "calm": Style(70, 55, MAJOR, (0, 3, 4, 0), "pad", False, 0.5),
    "favourites": Style(100, 62, MAJOR, (0, 5, 3, 4), "fm", True, 1.0),
    "energetic": Style(150, 57, MINOR, (0, 5, 6, 4), "saw", True, 2.0),
    "soothing": Style(60, 53, MAJOR, (0, 3, 0, 4), "bell", False, 0.5),
    "discover": Style(110, 50, DORIAN, (0, 3, 0, 6), "fm", True, 1.5),
}


def midi_hz(note: float) -> float:
    return A4 * 2.0 ** ((note - 69) / 12.0)


def envelope(n: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / RATE
    env = np.minimum(1.0, t / max(attack, 1e-4))
    tail = np.clip((n / RATE - t) / max(release, 1e-4), 0.0, 1.0)
    return env * tail


def voice(kind: str, freq: float, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    if kind == "pluck":
        x = np.sign(np.sin(2 * np.pi * freq * t)) * 0.3 + np.sin(2 * np.pi * freq * t)
        return x * np.exp(-t * 6.0) * envelope(n, 0.005, 0.05)
    if kind == "pad":
        x = sum(np.sin(2 * np.pi * freq * d * t) for d in (1.0, 1.003, 0.997)) / 3
        return x * envelope(n, seconds * 0.4, seconds * 0.4)
    if kind == "fm":
        x = np.sin(2 * np.pi * freq * t + 1.5 * np.exp(-t * 3) * np.sin(2 * np.pi * freq * 2 * t))
        return x * np.exp(-t * 2.5) * envelope(n, 0.01, 0.08)
    if kind == "saw":
        x = 2.0 * ((freq * t) % 1.0) - 1.0
        return 0.6 * x * envelope(n, 0.005, 0.05)
    if kind == "bell":
        x = np.sin(2 * np.pi * freq * t) + 0.4 * np.sin(2 * np.pi * freq * 2.76 * t)
        return x * np.exp(-t * 1.5) * envelope(n, 0.02, 0.2)
    raise ValueError(kind)


def render(style: Style, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beat = 60.0 / style.bpm
    total = int(seconds * RATE)
    out = np.zeros(total + RATE * 2)

    def add(start_s: float, sig: np.ndarray, gain: float) -> None:
        i = int(start_s * RATE)
        out[i:i + len(sig)] += gain * sig[: max(0, len(out) - i)]

    bar = 4 * beat
    bars = int(seconds / bar) + 1
    for b in range(bars):
        degree = style.progression[b % len(style.progression)]
        chord = [style.scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for note in chord:  # sustained chord
            add(b * bar, voice("pad", midi_hz(style.root - 12 + note), bar), 0.12)
        add(b * bar, voice("pad" if style.lead in ("pad", "bell") else "saw",
                           midi_hz(style.root - 24 + chord[0]), bar * 0.9), 0.15)
        steps = int(4 * style.density)
        for s in range(steps):
            if rng.random() < 0.2:
                continue
            octave = 12 * int(rng.integers(0, 2))
            note = style.root + style.scale[int(rng.integers(0, 7))] + octave
            dur = bar / steps * (1.5 if style.lead in ("pad", "bell") else 0.9)
            add(b * bar + s * bar / steps, voice(style.lead, midi_hz(note), dur), 0.22)
        if style.drums:
            for k in range(4):
                t0 = b * bar + k * beat
                n = int(0.25 * RATE)
                tt = np.arange(n) / RATE
                kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 12)
                add(t0, kick, 0.5)
                hat = rng.standard_normal(int(0.04 * RATE)) * np.exp(-np.arange(int(0.04 * RATE)) / RATE * 80)
                add(t0 + beat / 2, hat, 0.08)
    x = out[:total]
    fade = int(1.5 * RATE)
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return (0.85 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "playlists"))
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--tracks", type=int, default=2, help="tracks per playlist")
    args = ap.parse_args()
    import soundfile as sf

    total = 0
    for p_index, (name, style) in enumerate(STYLES.items()):
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(args.tracks):
            path = folder / f"{name}-{k + 1}.ogg"
            audio = render(style, args.seconds, seed=1000 * p_index + k)
            sf.write(str(path), audio, RATE, format="OGG", subtype="VORBIS",
                     compression_level=0.9)
            total += path.stat().st_size
            print(f"{path}  {style.bpm:.0f} BPM  {path.stat().st_size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
