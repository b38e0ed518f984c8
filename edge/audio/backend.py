"""The sound-system interface the player needs, and how sound devices and tracks fail."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

AUDIO_GROUP_HINT = "add the service user to the 'audio' group (sudo usermod -aG audio USER)"


class AudioError(Exception):
    """The sound device failed (missing, busy, unplugged); retried in the background."""


class AudioPermissionError(AudioError):
    """The sound device exists but this user may not open it."""


class TrackError(Exception):
    """One track cannot be played (missing, corrupt, unsupported)."""


@dataclass(frozen=True)
class OthersChose:
    """Someone chose music on a shared output (another MPD client): moodbox gives way."""

    reason: str                # "the queue was changed in an MPD client"
    wait_s: float | None       # how long to give way; None: until the owner releases
    path: Path | None = None   # what plays now, as moodbox would name the track
    at_connect: bool = False   # it was already playing when moodbox connected


class AudioBackend(ABC):
    """What the player needs from a sound system; pygame.mixer.music in production.

    The methods after the abstract ones have defaults for an output moodbox owns alone
    (pygame); a shared output (MPD) overrides them."""

    what = "sound device"  # how log lines name it

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def play(self, path: Path, fade_in_ms: int) -> None: ...

    @abstractmethod
    def fadeout(self, ms: int) -> None: ...

    @abstractmethod
    def busy(self) -> bool: ...

    @abstractmethod
    def position_ms(self) -> int: ...

    @abstractmethod
    def set_volume(self, volume: float) -> None: ...

    @abstractmethod
    def pause(self) -> None: ...

    @abstractmethod
    def resume(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...



    def retry_text(self, retry_s: float) -> str:
        """How log lines say when the player tries to open it again."""
        return f"every {retry_s:.0f} s"

    def set_cap(self, cap: float) -> None:
        """The highest volume anyone may set now (max_volume, quiet hours); a shared output
        puts another client's louder setting back under it."""

    def poll(self) -> OthersChose | None:
        """Called on every tick: what changed on a shared output since the last call."""
        return None

    def now_playing(self) -> Mapping[str, str]:
        """Tags of what the output plays now (title, artist, album), where it knows them."""
        return {}

    def stored_playlist(self, name: str) -> list[Path]:
        """The tracks of a playlist stored on the output (MPD's `mpd:NAME`)."""
        raise TrackError(f"this output has no stored playlists (mpd:{name} needs "
                         "player.output: mpd)")
