"""Peak memory of `catalog scan` analysing one long WAV: the excerpt read against a whole decode.

    python workshop/measure_scan_memory.py --minutes 59            # what scan does now
    python workshop/measure_scan_memory.py --minutes 59 --whole    # decoding the whole file

Writes a silent 44.1 kHz 16-bit stereo WAV (sparse, so it costs no disk) and prints the
process's peak RSS before and after analysing it.
"""
from __future__ import annotations

import argparse
import os
import resource
import struct
import tempfile
from pathlib import Path


def silent_wav(path: Path, minutes: float, rate: int = 44100, channels: int = 2) -> Path:
    size = int(minutes * 60 * rate) * 2 * channels
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
                + fmt + b"data" + struct.pack("<I", size))
        f.truncate(44 + size)
    return path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=59.0)
    ap.add_argument("--whole", action="store_true", help="decode the whole file (the old way)")
    args = ap.parse_args()
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from moodbox.catalog.decode import PygameDecoder
    from moodbox.catalog.scan import analyse_file

    with tempfile.TemporaryDirectory() as tmp, PygameDecoder() as decoder:
        wav = silent_wav(Path(tmp) / "long.wav", args.minutes)
        before = peak_mib()
        row = analyse_file(wav, decoder if not args.whole else (lambda p: decoder(p)))
        after = peak_mib()
    print(f"{'whole decode' if args.whole else 'excerpt'}: {args.minutes:g}-minute WAV, "
          f"analysed {row['analysed_s']:.0f} s of {row['duration_s']:.0f} s; peak RSS "
          f"{before:.0f} MiB before, {after:.0f} MiB after (+{after - before:.0f} MiB)"
          + (f"; error: {row['error']}" if row["error"] else ""))


if __name__ == "__main__":
    main()
