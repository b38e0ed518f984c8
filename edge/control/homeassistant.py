"""Home Assistant's MQTT conventions for one box: topics, discovery configs, state and commands.

Pure functions and small classes; mqtt.py sends and receives what they make. One box is
one Home Assistant device, "moodbox NAME", with these entities (topics under
TOPIC_PREFIX/NAME/, commands on .../KEY/set):

  sensor  mood, emotion (the name only), playlist, track, faces (a count)
  switch  pause (ON/OFF), camera (ON/OFF: OFF closes the camera, the privacy switch)
  button  skip (PRESS)
  number  volume (0 to player.max_volume)
  select  hold (the playlists, and "none" to release)

Only names, counts and the owner's settings are ever published: never an image, a face
box or a probability.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from moodbox import jsonio

ONLINE, OFFLINE = "online", "offline"
NONE = "none"          # no emotion, playlist, track or hold
ON, OFF, PRESS = "ON", "OFF", "PRESS"
MAX_STATE = 255        # Home Assistant keeps at most this many characters of a state


class BadPayload(ValueError):
    """A command payload that is not one the topic takes; the text says what it takes."""


@dataclass(frozen=True)
class Entity:
    key: str             # the topic level and the unique_id's end
    component: str       # sensor | switch | button | number | select
    name: str
    icon: str
    state: bool = True   # has a state topic
    command: bool = False


ENTITIES: tuple[Entity, ...] = (
    Entity("mood", "sensor", "Mood", "mdi:emoticon-outline"),
    Entity("emotion", "sensor", "Emotion", "mdi:face-recognition"),
    Entity("playlist", "sensor", "Playlist", "mdi:playlist-music"),
    Entity("track", "sensor", "Track", "mdi:music-note"),
    Entity("faces", "sensor", "Faces in view", "mdi:account-multiple"),
    Entity("pause", "switch", "Pause", "mdi:pause", command=True),
    Entity("skip", "button", "Skip", "mdi:skip-next", state=False, command=True),
    Entity("volume", "number", "Volume", "mdi:volume-high", command=True),
    Entity("hold", "select", "Hold playlist", "mdi:playlist-check", command=True),
    Entity("camera", "switch", "Camera", "mdi:camera", command=True),
)
COMMAND_KEYS = tuple(e.key for e in ENTITIES if e.command)


@dataclass(frozen=True)
class Topics:
    """Every topic of one box. `node` is the box's name made safe (config's topic_id)."""

    prefix: str          # mqtt.topic_prefix
    discovery: str       # mqtt.discovery_prefix
    node: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.node}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def command_json(self) -> str:
        """The socket's JSON requests, e.g. {"cmd": "hold", "playlist": "calm", "minutes": 30}."""
        return f"{self.base}/command"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth and last will: "online" after it (re)starts."""
        return f"{self.discovery}/status"

    def state(self, key: str) -> str:
        return f"{self.base}/{key}"

    def command(self, key: str) -> str:
        return f"{self.base}/{key}/set"

    def config(self, entity: Entity) -> str:
        return f"{self.discovery}/{entity.component}/moodbox_{self.node}/{entity.key}/config"

    def of_box(self, node: str) -> "Topics":
        """Another box's topics under the same prefixes (mqtt.follow)."""
        return Topics(self.prefix, self.discovery, node)

    def command_key(self, topic: str) -> str | None:
        """"moodbox/NODE/pause/set" -> "pause"; None for any other topic."""
        head, tail = f"{self.base}/", "/set"
        if topic.startswith(head) and topic.endswith(tail):
            key = topic[len(head):-len(tail)]
            return key if "/" not in key else None
        return None


def discovery_configs(topics: Topics, name: str, status: Mapping[str, Any],
                      version: str) -> dict[str, str]:
    """Topic -> retained JSON config, one per entity. The number's maximum and the select's
    options come from the status snapshot, so a reload that changes them is re-announced."""
    device = {"identifiers": [f"moodbox_{topics.node}"], "name": f"moodbox {name}",
              "manufacturer": "moodbox", "model": "moodbox speaker", "sw_version": version}
    origin = {"name": "moodbox", "sw_version": version}
    out = {}
    for e in ENTITIES:
        cfg: dict[str, Any] = {
            "name": e.name, "unique_id": f"moodbox_{topics.node}_{e.key}", "icon": e.icon,
            "availability_topic": topics.availability,
            "payload_available": ONLINE, "payload_not_available": OFFLINE,
            "device": device, "origin": origin,
        }
        if e.state:
            cfg["state_topic"] = topics.state(e.key)
        if e.command:
            cfg["command_topic"] = topics.command(e.key)
        cfg.update(_component_keys(e, status))
        out[topics.config(e)] = jsonio.dumps(cfg, sort_keys=True)
    return out


def _component_keys(e: Entity, status: Mapping[str, Any]) -> dict[str, Any]:
    if e.key == "faces":
        return {"state_class": "measurement"}
    if e.component == "switch":
        return {"payload_on": ON, "payload_off": OFF, "state_on": ON, "state_off": OFF}
    if e.component == "button":
        return {"payload_press": PRESS}
    if e.component == "number":
        return {"min": 0.0, "max": float(status.get("max_volume", 1.0)), "step": 0.01,
                "mode": "slider"}
    if e.component == "select":
        return {"options": [NONE, *status.get("playlists", [])]}
    return {}


def state_payloads(topics: Topics, status: Mapping[str, Any],
                   default_volume: float) -> dict[str, str]:
    """Topic -> retained state text, from the control core's status snapshot. Names and
    counts only: the emotion's probability, the history and every path stay behind."""
    emotion = status.get("emotion") or {}
    hold = status.get("hold") or {}
    owner = status.get("owner_volume")
    volume = min(default_volume if owner is None else float(owner),
                 float(status.get("max_volume", 1.0)))
    values = {
        "mood": status.get("mood") or NONE,
        "emotion": emotion.get("name") or NONE,
        "playlist": status.get("playlist") or NONE,
        "track": _track_text(status.get("track")),
        "faces": str(int(status.get("faces") or 0)),
        "pause": ON if status.get("paused") else OFF,
        "volume": f"{max(0.0, volume):.2f}",
        "hold": hold.get("playlist") or NONE,
        "camera": OFF if status.get("privacy") else ON,
    }
    return {topics.state(k): v[:MAX_STATE] for k, v in values.items()}


def _track_text(track: Mapping[str, Any] | None) -> str:
    """"Artist - Title" from the tags where it has them, else the file's name."""
    if not track:
        return NONE
    title, artist = track.get("title"), track.get("artist")
    if title and artist:
        return f"{artist} - {title}"
    return str(title or track.get("name") or NONE)


def request_for(key: str, payload: str) -> dict[str, Any]:
    """A command topic's payload -> the control core's request (the socket's dicts).

    The core validates the arguments (volume range, playlist names) exactly as for the
    socket; here only the payload's form is checked."""
    text = payload.strip()
    word = text.upper()
    if key in ("pause", "camera"):
        if word not in (ON, OFF):
            raise BadPayload(f"{key} takes {ON} or {OFF}")
        if key == "pause":
            return {"cmd": "pause" if word == ON else "resume"}
        return {"cmd": "camera", "state": word.lower()}
    if key == "skip":
        if word != PRESS:
            raise BadPayload(f"skip takes {PRESS}")
        return {"cmd": "skip"}
    if key == "volume":
        return {"cmd": "volume", "level": _number(text)}
    if key == "hold":
        if not text:
            raise BadPayload(f"hold takes a playlist name or {NONE}")
        return {"cmd": "release"} if text.lower() == NONE else {"cmd": "hold", "playlist": text}
    raise BadPayload(f"no such command topic; commands: {', '.join(COMMAND_KEYS)}")


def _number(text: str) -> Any:
    """A number where the text is one (the core checks its range), else the text itself
    (which the core refuses with its own message)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def request_from_json(payload: str) -> dict[str, Any]:
    """The JSON command topic: one request object, as one line on the control socket."""
    try:
        request = jsonio.loads(payload)  # depth-bounded, no NaN/Infinity
    except json.JSONDecodeError:
        raise BadPayload('not JSON; send one object such as {"cmd": "skip"}') from None
    except ValueError as exc:  # nested too deeply, NaN or Infinity
        raise BadPayload(f'{exc}; send one object such as {{"cmd": "skip"}}') from None
    if not isinstance(request, dict):
        raise BadPayload('must be a JSON object such as {"cmd": "skip"}')
    return request
