"""Where the sound goes: the configured device, or a file (`--audio-file`, the demo's fallback).

A file output never touches what it did not create: SDL's disk driver writes into a
temporary file of ours beside the target, which is renamed over the target at the
end; a .wav we write carries a mark (a LIST/INFO "ISFT" chunk), and an existing file
without it is refused before anything starts.
"""
from __future__ import annotations

import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moodbox import files
from moodbox.audio.backend import AudioBackend
from moodbox.audio.pygame_backend import PygameBackend
from moodbox.config import MpdConfig, PlayerConfig

logger = logging.getLogger(__name__)

MARK = b"moodbox --audio-file"
RATE, CHANNELS = 44100, 2


class AudioFileError(ValueError):
    """--audio-file cannot be used as given; the message names the file and the fix."""


def written_by_us(path: Path) -> bool:
    """True for a .wav this program wrote (it carries MARK in its first bytes)."""
    try:
        return MARK in files.read_head(path, 512)
    except OSError:
        return False


def check_target(path: Path) -> None:
    """Refuse a target whose folder is missing, or an existing file we did not write."""
    parent = path.parent if str(path.parent) else Path(".")
    k = files.kind(parent)
    if k == files.MISSING:
        raise AudioFileError(f"--audio-file {path}: the folder {parent} does not exist; "
                             "create it first or choose another path")
    if k == files.DENIED:
        raise AudioFileError(f"--audio-file {path}: {files.describe_denied(path)}")
    if k != files.FOLDER:
        raise AudioFileError(f"--audio-file {path}: {parent} is not a folder")
    k = files.kind(path)
    if k == files.FOLDER:
        raise AudioFileError(f"--audio-file {path} is a folder; give a file name such as out.wav")
    if k == files.DENIED:
        raise AudioFileError(f"--audio-file {path}: {files.describe_denied(path)}")
    if k == files.OTHER or (k == files.FILE and not (path.suffix.lower() == ".wav"
                                                      and written_by_us(path))):
        raise AudioFileError(f"--audio-file {path} already exists and was not written by "
                             "moodbox; nothing was overwritten: choose a new file name or "
                             "remove it yourself")


def write_wav_beside(raw: Path, target: Path) -> Path:
    """write_wav into a new exclusive temporary file beside `target` (files.temp_beside);
    its path, for the caller to rename over `target`."""
    fd, tmp = files.temp_beside(target, ".moodbox-tmp.wav")
    os.close(fd)
    try:
        write_wav(raw, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_wav(raw: Path, wav: Path) -> None:
    """16-bit PCM from SDL's disk driver as a marked .wav, streamed (no whole read)."""
    size = raw.stat().st_size if raw.exists() else 0
    size -= size % (2 * CHANNELS)
    info = b"INFO" + b"ISFT" + struct.pack("<I", len(MARK)) + MARK + (b"\0" if len(MARK) % 2 else b"")
    fmt = struct.pack("<HHIIHH", 1, CHANNELS, RATE, RATE * 2 * CHANNELS, 2 * CHANNELS, 16)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"LIST" + struct.pack("<I", len(info)) + info + b"data" + struct.pack("<I", size))
    with open(wav, "wb") as out:
        out.write(b"RIFF" + struct.pack("<I", len(body) + size) + body)
        if size:
            with open(raw, "rb") as src:
                left = size
                while left:
                    chunk = src.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    out.write(chunk)
                    left -= len(chunk)


@dataclass
class AudioOutput:
    """`file`: play into this file (.wav, or raw 16-bit 44.1 kHz stereo) through SDL's disk
    driver instead of a device. `fallback_file`: where the audio goes when no device
    opens (the demo on a server). Neither: the configured device.

    `prepare()` checks the target and makes our temporary file (AudioFileError when the
    target is unusable); `finish()` moves it into place; `discard()` removes it."""

    file: Path | None = None
    fallback_file: Path | None = None
    _tmp: Path | None = field(default=None, init=False, repr=False)

    def prepare(self) -> None:
        if self.file is None or self._tmp is not None:
            return
        check_target(self.file)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.file.name}.", suffix=".moodbox-tmp",
                                       dir=self.file.parent if str(self.file.parent) else ".")
        except OSError as exc:
            raise AudioFileError(f"--audio-file {self.file}: cannot write in its folder "
                                 f"({files.problem(exc)})") from None
        os.close(fd)
        self._tmp = Path(tmp)

    def backend(self, cfg: PlayerConfig, mpd: MpdConfig | None = None) -> AudioBackend:
        """The configured output: pygame (a device or a file), or the MPD server."""
        if cfg.output == "mpd" and self.file is None:
            from moodbox.audio.mpd_backend import MpdBackend

            return MpdBackend(mpd or MpdConfig())
        if self.file is not None:
            self.prepare()
            os.environ["SDL_AUDIODRIVER"] = "disk"
            os.environ["SDL_DISKAUDIOFILE"] = str(self._tmp)
            return PygameBackend("disk", "")
        return PygameBackend(cfg.driver, cfg.device, fallback_file=self.fallback_file)

    def finish(self) -> None:
        """After the run: put what SDL's disk driver wrote in place (as a .wav if asked)."""
        if self.file is not None and self._tmp is not None:
            try:
                check_target(self.file)  # still ours (or absent) now that we replace it
                if self.file.suffix.lower() == ".wav":
                    wav_tmp = write_wav_beside(self._tmp, self.file)
                    try:
                        os.replace(wav_tmp, self.file)
                    finally:
                        wav_tmp.unlink(missing_ok=True)
                else:
                    os.replace(self._tmp, self.file)
                logger.info("audio written to %s", self.file)
            except (AudioFileError, OSError) as exc:
                logger.error("audio not written: %s", exc)
            finally:
                self.discard()
        elif (self.fallback_file is not None and files.is_file(self.fallback_file)
              and os.environ.get("SDL_DISKAUDIOFILE") == str(self.fallback_file)):
            wav = self.fallback_file.with_suffix(".wav")
            if files.exists(wav) and not written_by_us(wav):
                logger.warning("the demo's audio stays in %s (%s exists and is not ours)",
                               self.fallback_file, wav)
                return
            tmp = write_wav_beside(self.fallback_file, wav)
            os.replace(tmp, wav)
            self.fallback_file.unlink()
            logger.info("no sound device here: the demo's audio is in %s", wav)

    def discard(self) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def demo_fallback_file() -> Path:
    """Where the demo writes its audio when the machine has no sound device."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / "moodbox-demo-audio.raw"

