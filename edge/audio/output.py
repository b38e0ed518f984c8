"""Where the sound goes: the configured device, or a file (`--audio-file`, the demo's fallback)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from moodbox.audio.pygame_backend import PygameBackend, raw_to_wav
from moodbox.config import PlayerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioOutput:
    """`file`: play into this file (.wav, or raw 16-bit 44.1 kHz stereo) through SDL's disk
    driver instead of a device. `fallback_file`: where the audio goes when no device
    opens (the demo on a server). Neither: the configured device."""

    file: Path | None = None
    fallback_file: Path | None = None

    @property
    def raw_file(self) -> Path | None:
        return self.file.with_suffix(".raw") if self.file is not None else None

    def backend(self, cfg: PlayerConfig) -> PygameBackend:
        if self.file is not None:
            os.environ["SDL_AUDIODRIVER"] = "disk"
            os.environ["SDL_DISKAUDIOFILE"] = str(self.raw_file)
            return PygameBackend("disk", "")
        return PygameBackend(cfg.driver, cfg.device, fallback_file=self.fallback_file)

    def finish(self) -> None:
        """After the run: wrap what SDL's disk driver wrote into a .wav file."""
        if self.file is not None and self.file.suffix.lower() == ".wav":
            raw_to_wav(self.raw_file, self.file)
            self.raw_file.unlink(missing_ok=True)
            logger.info("audio written to %s", self.file)
        elif (self.fallback_file is not None and self.fallback_file.exists()
              and os.environ.get("SDL_DISKAUDIOFILE") == str(self.fallback_file)):
            wav = self.fallback_file.with_suffix(".wav")
            raw_to_wav(self.fallback_file, wav)
            self.fallback_file.unlink()
            logger.info("no sound device here: the demo's audio is in %s", wav)


def demo_fallback_file() -> Path:
    """Where the demo writes its audio when the machine has no sound device."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / "moodbox-demo-audio.raw"
