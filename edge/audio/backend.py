"""The sound-system interface the player needs, and how sound devices and tracks fail."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

AUDIO_GROUP_HINT = "add the service user to the 'audio' group (sudo usermod -aG audio USER)"


class AudioError(Exception):
    """The sound device failed (missing, busy, unplugged); retried in the background."""


class AudioPermissionError(AudioError):
    """The sound device exists but this user may not open it."""


class TrackError(Exception):
    """One track cannot be played (missing, corrupt, unsupported)."""


class AudioBackend(ABC):
    """What the player needs from a sound system; pygame.mixer.music in production."""

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


