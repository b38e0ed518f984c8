"""The config schema: one frozen dataclass per section, defaults and limits in one place."""
from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from moodbox.vocabulary import AWAY

NOT_KEYS = ("source", "owned", "adapted")  # Config fields no config file may set
EX_CONFIG = 78  # sysexits.h: configuration error; the unit does not restart on it


class ConfigError(Exception):
    """One or more problems in a config file, each with its key path."""

    def __init__(self, errors: list[str], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in errors))


def _opt(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field with validation metadata: min, max, choices."""
    if isinstance(default, (list, dict, types.MappingProxyType)):
        frozen = types.MappingProxyType(dict(default)) if not isinstance(default, list) else tuple(default)
        return field(default_factory=lambda: frozen, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class CameraConfig:
    type: str = _opt("picamera2", choices=("picamera2", "opencv", "replay"))
    width: int = _opt(320, min=32, max=4096)
    height: int = _opt(240, min=32, max=4096)
    fps: float = _opt(5.0, min=0.1, max=120.0)
    device: Union[int, str] = _opt(0)
    path: str = _opt("demo")
    loop: bool = _opt(True)
    hold_s: float = _opt(0.0, min=0.0, max=3600.0)
    timeout_s: float = _opt(2.0, min=0.1, max=60.0)
    freeze_frames: int = _opt(20, min=2, max=10000)
    max_failures: int = _opt(5, min=1, max=1000)
    retry_min_s: float = _opt(2.0, min=0.1, max=600.0)
    retry_max_s: float = _opt(60.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class FacesConfig:
    detector: str = _opt("yunet", choices=("yunet", "blazeface", "haar"))
    listeners: str = _opt("largest", choices=("largest", "all"))
    yunet_model: str = _opt("builtin:models/face_detection_yunet_2023mar.onnx")
    blazeface_model: str = _opt("builtin:models/blazeface_full_range_sparse.tflite")
    score_threshold: float = _opt(0.35, min=0.05, max=1.0)
    cascade: str = _opt("")
    detect_width: int = _opt(320, min=64, max=4096)
    scale_factor: float = _opt(1.1, min=1.01, max=2.0)
    min_neighbors: int = _opt(5, min=1, max=50)
    min_size: int = _opt(36, min=12, max=1024)
    min_face_px: int = _opt(16, min=8, max=2048)
    margin: float = _opt(0.0, min=-0.2, max=1.0)
    roi: bool = _opt(True)
    detect_every: int = _opt(1, min=1, max=30)
    idle_every: int = _opt(3, min=1, max=30)
    mirror_retry: bool = _opt(True)


MAX_ENSEMBLE = 2  # classifier.ensemble: models averaged with classifier.model, at most


@dataclass(frozen=True)
class ClassifierConfig:
    model: str = _opt("builtin:models/emotion_int8.tflite")
    # more models whose probabilities are averaged with model's (same classes, input size)
    ensemble: tuple[str, ...] = _opt([], kind="model_list", max=MAX_ENSEMBLE)
    threads: int = _opt(1, min=1, max=8)
    flip: bool = _opt(True)

    def models(self) -> tuple[str, ...]:
        """Every model the classifier runs: model first, then the ensemble's."""
        return (self.model, *self.ensemble)


@dataclass(frozen=True)
class MoodConfig:
    smoothing_s: float = _opt(1.0, min=0.0, max=600.0)
    dwell_s: float = _opt(3.0, min=0.0, max=3600.0)
    min_confidence: float = _opt(0.4, min=0.0, max=1.0)
    min_switch_interval_s: float = _opt(20.0, min=0.0, max=86400.0)
    away_after_s: float = _opt(30.0, min=0.5, max=86400.0)
    # emotion or "away" -> playlist name(s); missing moods use player.default_playlist
    map: Mapping[str, tuple[str, ...]] = _opt({}, kind="mood_map")


@dataclass(frozen=True)
class QuietHoursConfig:
    enabled: bool = _opt(False)
    start: str = _opt("22:00")
    end: str = _opt("07:00")
    max_volume: float = _opt(0.25, min=0.0, max=1.0)

    def minutes(self) -> tuple[int, int]:
        return hhmm(self.start), hhmm(self.end)


@dataclass(frozen=True)
class PlayerConfig:
    fade_ms: int = _opt(2000, min=0, max=60000)
    on_change: str = _opt("fade", choices=("fade", "wait_end"))
    volume: float = _opt(0.7, min=0.0, max=1.0)
    max_volume: float = _opt(0.9, min=0.0, max=1.0)
    away: str = _opt("lower", choices=("keep", "lower", "pause", "stop"))
    away_volume: float = _opt(0.3, min=0.0, max=1.0)
    default_playlist: str = _opt("favourites")
    audio_retry_s: float = _opt(5.0, min=0.1, max=3600.0)
    driver: str = _opt("")
    device: str = _opt("")
    quiet_hours: QuietHoursConfig = _opt(QuietHoursConfig())
    # a skipped track plays less often in that mood; kept in the state directory
    learn_from_skips: bool = _opt(True)
    # where the music plays: pygame (this process, the default) or mpd (the `mpd:` section)
    output: str = _opt("pygame", choices=("pygame", "mpd"))


@dataclass(frozen=True)
class PlaylistConfig:
    sources: tuple[Path, ...] = _opt(())
    shuffle: bool = _opt(True)
    volume: float = _opt(1.0, min=0.0, max=1.0)
    weight: float = _opt(1.0, min=0.0, max=1000.0)
    # MPD stored playlists named by `mpd:NAME` sources (player.output: mpd only)
    mpd_playlists: tuple[str, ...] = _opt((), internal=True)


@dataclass(frozen=True)
class MpdConfig:
    """The music server moodbox plays through with player.output: mpd (MPD, Mopidy-MPD,
    Volumio, moOde)."""

    # the path of MPD's Unix socket (Debian's, which the hardened unit can reach), or a
    # name or address (TCP, with port)
    host: str = _opt("/run/mpd/socket")
    port: int = _opt(6600, min=1, max=65535)
    password: str = _opt("")
    timeout_s: float = _opt(5.0, min=0.5, max=120.0)
    # MPD's music_directory as this machine sees it; "" = ask MPD (over its Unix socket)
    music_directory: str = _opt("")
    queue: str = _opt("replace", choices=("replace", "append"))
    # someone chose music in another MPD client: moodbox waits this long (0 = until release)
    give_way_min: float = _opt(30.0, min=0.0, max=10080.0)
    retry_max_s: float = _opt(60.0, min=1.0, max=3600.0)


@dataclass(frozen=True)
class DaemonConfig:
    status_every_s: float = _opt(5.0, min=0.5, max=3600.0)
    log_level: str = _opt("info", choices=("debug", "info", "warning", "error"))
    watchdog: bool = _opt(True)


@dataclass(frozen=True)
class ControlConfig:
    """The local control socket (`moodbox status/skip/...`)."""

    enabled: bool = _opt(True)
    # "" = $RUNTIME_DIRECTORY/control.sock (systemd), else $XDG_RUNTIME_DIR/moodbox.sock,
    # else /tmp/moodbox-UID/moodbox.sock (a private folder, mode 0700)
    socket: str = _opt("")


@dataclass(frozen=True)
class WebConfig:
    """The phone page and its JSON API (off by default; listens on the network)."""

    enabled: bool = _opt(False)
    listen: str = _opt("0.0.0.0:8080")
    token: str = _opt("")


@dataclass(frozen=True)
class ButtonsConfig:
    """GPIO push buttons (gpiozero); a pin is a BCM number or a name like "GPIO17"."""

    enabled: bool = _opt(False)
    skip: Union[int, str] = _opt("", kind="pin")
    pause: Union[int, str] = _opt("", kind="pin")
    camera: Union[int, str] = _opt("", kind="pin")  # the privacy switch: camera off / on
    pull_up: bool = _opt(True)
    bounce_s: float = _opt(0.05, min=0.0, max=2.0)


@dataclass(frozen=True)
class PrivacyConfig:
    """What the music does while the owner has the camera off (`moodbox camera off`)."""

    music: str = _opt("keep", choices=("keep", "neutral", "pause"))


@dataclass(frozen=True)
class MqttTlsConfig:
    enabled: bool = _opt(False)
    ca_file: str = _opt("")  # "" = the system's certificate authorities


@dataclass(frozen=True)
class MqttConfig:
    """Home Assistant over MQTT (off by default; under systemd it needs the network drop-in)."""

    enabled: bool = _opt(False)
    host: str = _opt("localhost")
    port: int = _opt(1883, min=1, max=65535)
    username: str = _opt("")
    password: str = field(default="", repr=False)  # never in a log line or traceback
    password_file: str = _opt("")  # one line; not readable by every user (chmod 640)
    tls: MqttTlsConfig = _opt(MqttTlsConfig())
    name: str = _opt("")  # this box's name; "" = the host name
    topic_prefix: str = _opt("moodbox")
    discovery_prefix: str = _opt("homeassistant")
    follow: str = _opt("")  # another box's name: play by its mood while it is online
    keepalive_s: int = _opt(30, min=5, max=3600)

    @property
    def node_id(self) -> str:
        """The name as it appears in topics and ids ("Living Room" -> "living_room")."""
        return topic_id(self.name)

    @property
    def follow_id(self) -> str:
        return topic_id(self.follow)


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = _opt(CameraConfig())
    faces: FacesConfig = _opt(FacesConfig())
    classifier: ClassifierConfig = _opt(ClassifierConfig())
    mood: MoodConfig = _opt(MoodConfig())
    player: PlayerConfig = _opt(PlayerConfig())
    playlists: Mapping[str, PlaylistConfig] = _opt({})
    daemon: DaemonConfig = _opt(DaemonConfig())
    control: ControlConfig = _opt(ControlConfig())
    web: WebConfig = _opt(WebConfig())
    buttons: ButtonsConfig = _opt(ButtonsConfig())
    privacy: PrivacyConfig = _opt(PrivacyConfig())
    mqtt: MqttConfig = _opt(MqttConfig())
    mpd: MpdConfig = _opt(MpdConfig())
    source: str = ""  # the file it came from (not a config key)
    owned: frozenset = frozenset()  # key paths the owner's file set; the rest are defaults
    adapted: tuple = ()  # defaults pointed at the owner's playlists, in words (defaults.py)

    def playlists_for(self, mood: str) -> tuple[str, ...]:
        """The playlists a mood maps to; empty for an unmapped "away" (keep playing)."""
        return playlists_for(self.mood.map, self.player.default_playlist, mood)

    def model_path(self) -> Path:
        return Path(self.classifier.model)




def playlists_for(mood_map: Mapping[str, tuple[str, ...]], default_playlist: str,
                  mood: str) -> tuple[str, ...]:
    """The one answer to "which playlists does this mood play?": the mapped ones, else the
    default playlist; an unmapped "away" maps to nothing, which means "keep the current
    playlist" (at player.away's volume or pause)."""
    mapped = mood_map.get(mood)
    if mapped:
        return mapped
    return () if mood == AWAY else (default_playlist,)


def topic_id(name: str) -> str:
    """A name made safe for MQTT topics and Home Assistant ids: lower case letters, digits,
    _ and -; every other run of characters becomes one _ ("" when nothing is left)."""
    return re.sub(r"[^a-z0-9_-]+", "_", name.strip().lower()).strip("_-")


_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def hhmm(text: str) -> int:
    """'22:00' -> minutes after midnight; ValueError for anything else."""
    m = _TIME.match(text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_listen(text: str) -> tuple[str, int]:
    """'0.0.0.0:8080' or '[::]:8080' -> (host, port) (port 0: any free port); ValueError else."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(text)
    return host.strip("[]") or "0.0.0.0", int(port)
