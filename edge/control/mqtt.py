"""The MQTT front end: Home Assistant discovery, state and commands through the control core.

paho-mqtt (pip install 'moodbox[mqtt]') is imported here only, when mqtt.enabled is true.
One thread owns the client: it connects (with back-off while the broker is away), runs
paho's network loop, hands command payloads to the control core as the socket's request
dicts, compares the core's status snapshot with what the broker holds every POLL_S and
publishes only what changed (retained), and follows another box's mood (mqtt.follow).
The music never waits for the broker: every failure here is a log line and a retry.
"""
from __future__ import annotations

import logging
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from moodbox.config import MqttConfig
from moodbox.control.core import ControlCore
from moodbox.control.homeassistant import (OFFLINE, ONLINE, BadPayload, Topics,
                                           discovery_configs, request_for, request_from_json,
                                           state_payloads)
from moodbox.logsafe import Throttle
from moodbox.mood import FollowedMood

logger = logging.getLogger(__name__)

POLL_S = 0.5             # the status snapshot is compared with the broker's this often
LOOP_S = 0.25            # paho's network loop waits this long for traffic
CONNECT_TIMEOUT_S = 3.0  # a broker that does not answer the TCP/TLS handshake in time
CONNACK_TIMEOUT_S = 10.0
CLOSE_S = 1.0            # at most this of the daemon's stop budget
MAX_PAYLOAD = 1024       # command payloads longer than this are ignored
MAX_INBOX = 64           # messages kept between two turns; a flood beyond it is dropped
QOS = 1


class Backoff:
    """When to try the broker again: after `first_s`, doubling to `max_s`; pure."""

    def __init__(self, first_s: float = 1.0, max_s: float = 30.0):
        self.first_s, self.max_s = first_s, max_s
        self._delay = 0.0

    def failed(self, now: float) -> float:
        """The time of the next try after a failure now."""
        self._delay = self.first_s if self._delay == 0.0 else min(self.max_s, self._delay * 2)
        return now + self._delay

    def reset(self) -> None:
        self._delay = 0.0


class LinkLog:
    """One log line per change of the link's state (connected, down, refused), not per try."""

    def __init__(self) -> None:
        self.state = ""

    def change(self, state: str, level: int, msg: str, *args: Any) -> None:
        if state != self.state:
            self.state = state
            logger.log(level, msg, *args)


class SetupError(Exception):
    """The client cannot be made (password file, CA file); the text says what to fix."""


class MqttFrontEnd:
    """Start with `start()`, stop with `close()`; fails soft: the music plays on."""

    def __init__(self, cfg: MqttConfig, core: ControlCore, default_volume: float,
                 follow: FollowedMood | None = None):
        self.cfg = cfg
        self.core = core
        self.default_volume = default_volume
        self.follow = follow
        self.topics = Topics(cfg.topic_prefix, cfg.discovery_prefix, cfg.node_id)
        self._followed = self.topics.of_box(cfg.follow_id) if cfg.follow else None
        self._version = _version()
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket = False       # TCP (and TLS) up, CONNECT sent
        self._connected = False    # the broker accepted us (CONNACK)
        self._socket_at = 0.0
        self._refused = ""
        self._next_try = 0.0
        self._next_poll = 0.0
        self._backoff = Backoff()
        self._link = LinkLog()
        self._sent: dict[str, str] = {}   # what the broker holds from us on this connection
        self._inbox: list[tuple[str, bytes, bool]] = []
        self._dropped = 0
        self._status: dict | None = None  # a fresh snapshot from a command's reply
        self._bad = Throttle(10.0)        # bad commands: one line per 10 s at most
        self._bad_followed = Throttle(10.0)
        self._failed = Throttle(60.0)

    # --- life cycle --------------------------------------------------------------
    def start(self) -> bool:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            logger.error("mqtt: paho-mqtt is not installed: pip install 'moodbox[mqtt]' (the "
                         "music plays on without Home Assistant)")
            return False
        try:
            self._client = self._make_client(mqtt)
        except SetupError as exc:
            logger.error("mqtt: %s; the music plays on without Home Assistant", exc)
            return False
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()
        logger.info("mqtt: box '%s' on %s:%d (topics %s/, discovery %s/)%s", self.cfg.name,
                    self.cfg.host, self.cfg.port, self.topics.base, self.cfg.discovery_prefix,
                    f"; following '{self.cfg.follow}'" if self.cfg.follow else "")
        return True

    def close(self) -> None:
        """Say "offline" (retained) and disconnect cleanly, within CLOSE_S."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CLOSE_S)
            if self._thread.is_alive():
                logger.warning("mqtt: did not close in %.1f s; the broker's last will says "
                               "offline", CLOSE_S)
            self._thread = None

    def _make_client(self, mqtt: Any) -> Any:
        cfg = self.cfg
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"moodbox-{cfg.node_id}",
                             protocol=mqtt.MQTTv311)
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.will_set(self.topics.availability, OFFLINE, qos=QOS, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password() or None)
        if cfg.tls.enabled:
            try:
                client.tls_set(ca_certs=cfg.tls.ca_file or None)
            except (OSError, ValueError) as exc:
                raise SetupError(f"mqtt.tls.ca_file '{cfg.tls.ca_file}' is not a CA "
                                 f"certificate file ({exc}); give a PEM file") from None
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    def _password(self) -> str:
        if not self.cfg.password_file:
            return self.cfg.password
        path = Path(self.cfg.password_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SetupError(f"cannot read mqtt.password_file '{path}' ({exc.strerror or exc}); "
                             "the service user must be able to read it (chgrp moodbox, "
                             "chmod 640)") from None
        except UnicodeDecodeError:
            raise SetupError(f"mqtt.password_file '{path}' is not UTF-8 text") from None
        if not lines or not lines[0]:
            raise SetupError(f"mqtt.password_file '{path}' has no password on its first line")
        return lines[0]

    # --- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self._turn(now)
            except Exception:  # noqa: BLE001 (a bug here must not end MQTT for good)
                if self._failed.ready(now) is not None:
                    logger.exception("mqtt: unexpected error; reconnecting with back-off")
                self._drop(now)
        self._goodbye()

    def _turn(self, now: float) -> None:
        if not self._socket:
            if now < self._next_try:
                self._stop.wait(min(POLL_S, self._next_try - now))
            else:
                self._connect(now)
            return
        rc = self._client.loop(timeout=LOOP_S)
        now = time.monotonic()
        if rc != 0:
            self._lost(now, rc)
            return
        if not self._connected:
            if now - self._socket_at > CONNACK_TIMEOUT_S:
                self._lost(now, None)
            return
        self._handle_inbox(now)
        if self._status is not None or now >= self._next_poll:
            self._sync(now)

    def _connect(self, now: float) -> None:
        self._refused = ""
        try:
            self._client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except Exception as exc:  # noqa: BLE001 (OSError, ssl errors, a bad host name)
            self._socket, self._next_try = False, self._backoff.failed(now)
            self._link.change("down", logging.WARNING,
                              "mqtt: cannot reach the broker at %s:%d (%s); the music plays "
                              "on, retrying with back-off%s", self.cfg.host, self.cfg.port,
                              _reason(exc), _hint(exc, self.cfg.tls.enabled))
            return
        self._socket, self._socket_at = True, now

    def _lost(self, now: float, rc: Any) -> None:
        accepted = self._connected
        self._drop(now)
        if self._refused:
            self._link.change("refused", logging.ERROR,
                              "mqtt: the broker at %s:%d refused this box (%s); check "
                              "mqtt.username and its password; retrying with back-off",
                              self.cfg.host, self.cfg.port, self._refused)
        elif not accepted:
            self._link.change("down", logging.WARNING,
                              "mqtt: the broker at %s:%d did not accept the connection (%s); "
                              "check mqtt.port and mqtt.tls; retrying with back-off",
                              self.cfg.host, self.cfg.port, _rc_text(rc))
        else:
            self._link.change("down", logging.WARNING,
                              "mqtt: lost the broker at %s:%d (%s); the music plays on, "
                              "reconnecting with back-off", self.cfg.host, self.cfg.port,
                              _rc_text(rc))

    def _drop(self, now: float) -> None:
        """Close the socket; try again after the back-off."""
        if self._socket and self._client is not None:
            try:
                self._client.disconnect()
            except Exception:  # noqa: BLE001 (already gone)
                pass
        self._socket = self._connected = False
        self._next_try = self._backoff.failed(now)
        if self.follow is not None:
            self.follow.linked(False)

    def _goodbye(self) -> None:
        """A clean stop: "offline" (retained), then DISCONNECT (so no last will is sent)."""
        if not self._connected:
            return
        try:
            info = self._client.publish(self.topics.availability, OFFLINE, qos=QOS, retain=True)
            end = time.monotonic() + CLOSE_S / 2
            while not info.is_published() and time.monotonic() < end:
                if self._client.loop(timeout=0.05) != 0:
                    break
            self._client.disconnect()
            self._client.loop(timeout=0.05)
        except Exception:  # noqa: BLE001 (stopping goes on; the last will says offline)
            logger.debug("mqtt: goodbye failed", exc_info=True)
        self._connected = self._socket = False
        logger.info("mqtt: offline, disconnected from %s:%d", self.cfg.host, self.cfg.port)

    # --- paho's callbacks (run inside loop(), on this front end's thread) -------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        self._connected, self._refused = True, ""
        self._backoff.reset()
        self._sent.clear()  # a new session: publish everything again
        self._next_poll = 0.0
        client.subscribe([(t, QOS) for t in self._subscriptions()])
        if self.follow is not None:
            self.follow.linked(True)
        self._link.change("connected", logging.INFO, "mqtt: connected to %s:%d as %s",
                          self.cfg.host, self.cfg.port, self.topics.base)

    def _subscriptions(self) -> list[str]:
        topics = [self.topics.command("+"), self.topics.command_json, self.topics.ha_status]
        if self._followed is not None:
            topics += [self._followed.state("mood"), self._followed.availability]
        return topics

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if len(self._inbox) >= MAX_INBOX:
            self._dropped += 1
            return
        self._inbox.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    # --- commands -----------------------------------------------------------------
    def _handle_inbox(self, now: float) -> None:
        items, self._inbox = self._inbox, []
        if self._dropped:
            self._ignored(now, "(many)", b"", f"{self._dropped} messages dropped: more than "
                          f"{MAX_INBOX} arrived at once")
            self._dropped = 0
        for topic, payload, retained in items:
            self._message(now, topic, payload, retained)

    def _message(self, now: float, topic: str, payload: bytes, retained: bool) -> None:
        if self._followed is not None and self._hear_followed(now, topic, payload):
            return
        if topic == self.topics.ha_status:
            if payload.strip() == ONLINE.encode():
                self._sent.clear()  # Home Assistant restarted: announce everything again
            return
        if retained:
            self._ignored(now, topic, payload, "a retained command is ignored (publish "
                          "commands without the retain flag)")
            return
        if len(payload) > MAX_PAYLOAD:
            self._ignored(now, topic, b"", f"longer than {MAX_PAYLOAD} bytes")
            return
        try:
            text = payload.decode("utf-8")
            key = self.topics.command_key(topic)
            request = request_from_json(text) if key is None else request_for(key, text)
        except UnicodeDecodeError:
            self._ignored(now, topic, payload, "not UTF-8 text")
            return
        except BadPayload as exc:
            self._ignored(now, topic, payload, str(exc))
            return
        reply = self.core.handle(request, now)
        if not reply.get("ok"):
            self._ignored(now, topic, payload, str(reply.get("error")))
            return
        self._status = reply.get("status")  # shown at once, not at the next poll

    def _hear_followed(self, now: float, topic: str, payload: bytes) -> bool:
        assert self._followed is not None and self.follow is not None
        text = payload.decode("utf-8", "replace").strip()
        if topic == self._followed.availability:
            self.follow.heard_availability(text == ONLINE)
            return True
        if topic == self._followed.state("mood"):
            if not self.follow.heard_mood(text):
                self._ignored(now, topic, payload, "not a mood this box knows",
                              self._bad_followed)
            return True
        return False

    def _ignored(self, now: float, topic: str, payload: bytes, why: str,
                 limit: Throttle | None = None) -> None:
        held = (limit or self._bad).ready(now)
        if held is None:
            return
        shown = payload[:40].decode("utf-8", "replace")
        logger.warning("mqtt: ignored %r on %s: %s; nothing changed%s", shown, topic, why,
                       f" ({held} more ignored before this one)" if held else "")

    # --- state ---------------------------------------------------------------------
    def _sync(self, now: float) -> None:
        """Publish (retained) every discovery config and state that differs from what the
        broker holds from us; on a new connection that is all of them."""
        status, self._status = self._status, None
        self._next_poll = now + POLL_S
        if status is None:
            reply = self.core.handle({"cmd": "status"}, now)
            status = reply.get("status") if reply.get("ok") else None
        if status is None:
            return  # the player did not answer in time; the next poll tries again
        wanted = discovery_configs(self.topics, self.cfg.name, status, self._version)
        wanted[self.topics.availability] = ONLINE
        wanted.update(state_payloads(self.topics, status, self.default_volume))
        for topic, text in wanted.items():
            if self._sent.get(topic) != text:
                info = self._client.publish(topic, text, qos=QOS, retain=True)
                if info.rc != 0:
                    return  # the link is going; everything is sent again on reconnect
                self._sent[topic] = text


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.rstrip(".")


def _hint(exc: BaseException, tls: bool) -> str:
    """What to look at for a failed connect."""
    import errno
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return ("; check mqtt.tls.ca_file (the CA that signed the broker's certificate) and "
                "that mqtt.host is a name in that certificate")
    if isinstance(exc, ssl.SSLError) or (tls and isinstance(exc, ConnectionResetError)):
        return "; check mqtt.tls and mqtt.port (does the broker speak TLS on that port?)"
    # under systemd without the drop-in: no route, no IPv4/IPv6 sockets, no DNS
    if (getattr(exc, "errno", None) in (errno.ENETUNREACH, errno.EAFNOSUPPORT)
            or (isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN)):
        return ("; under systemd the unit needs the network drop-in: sudo "
                "./scripts/install-pi.sh --upgrade --enable-mqtt")
    return ""


def _rc_text(rc: Any) -> str:
    if rc is None:
        return "no answer to the connect request"
    try:
        import paho.mqtt.client as mqtt

        return mqtt.error_string(rc).rstrip(".")
    except Exception:  # noqa: BLE001
        return f"error {rc}"


def _version() -> str:
    try:
        return version("moodbox")
    except PackageNotFoundError:
        return "unknown"
