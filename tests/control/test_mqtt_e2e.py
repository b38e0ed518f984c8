"""End to end on a real broker: Debian's mosquitto on a loopback port and the real daemon
(replay camera on a real photo, SDL's disk audio), watched by a client subscribed to '#'."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from helpers import TONES, make_setup
from moodbox.probe import DaemonProcess, moodbox_command
from moodbox.vocabulary import MOODS
from mqtt_broker import HOST, Broker, Watcher, make_certs, need_mosquitto, paho

pytestmark = pytest.mark.usefixtures("requirements")

NAME = "Living Room"   # the box's mqtt.name; its topics use "living_room"
NODE = "living_room"
BASE = f"moodbox/{NODE}"
AVAIL = f"{BASE}/availability"
EMOTION = "happy"      # what the shipped model reads on the astronaut photo

# Home Assistant's MQTT discovery: keys each component requires (the integration's
# documentation, "Configuration Variables"; a missing one and the entity is rejected),
# plus what this box promises every entity carries (one device, availability, unique id).
REQUIRED = {
    "sensor": {"state_topic"},
    "switch": {"command_topic"},
    "button": {"command_topic"},
    "number": {"command_topic"},
    "select": {"command_topic", "options"},
}
EVERY = {"name", "unique_id", "device", "availability_topic", "payload_available",
         "payload_not_available"}
ENTITIES = {("sensor", "mood"), ("sensor", "emotion"), ("sensor", "playlist"),
            ("sensor", "track"), ("sensor", "faces"), ("switch", "pause"), ("button", "skip"),
            ("number", "volume"), ("select", "hold"), ("switch", "camera")}


@pytest.fixture(scope="module")
def requirements():
    need_mosquitto()
    paho()


@pytest.fixture()
def short_dir():
    with tempfile.TemporaryDirectory(prefix="mbx") as d:
        yield Path(d)


class Setup:
    """Broker, watcher and daemons of one test; all stopped at the end."""

    def __init__(self, tmp_path: Path, photo: Path, short_dir: Path):
        self.tmp_path, self.photo, self.short_dir = tmp_path, photo, short_dir
        self.brokers: list[Broker] = []
        self.watchers: list[Watcher] = []
        self.daemons: list[DaemonProcess] = []
        self.config: Path | None = None

    def broker(self, **kwargs) -> Broker:
        b = Broker(self.tmp_path / f"broker{len(self.brokers)}", **kwargs)
        self.brokers.append(b)
        return b

    def watcher(self, broker: Broker, **kwargs) -> Watcher:
        w = Watcher(broker, **kwargs)
        self.watchers.append(w)
        return w

    def write_config(self, broker: Broker, **mqtt) -> Path:
        """This test's config, its mqtt section set to these keys."""
        mqtt = {"enabled": True, "host": HOST, "port": broker.port, "name": NAME,
                "keepalive_s": 5, **mqtt}
        if self.config is None:
            self.config = make_setup(self.tmp_path, self.photo, player__max_volume=0.9,
                                     control__socket=str(self.short_dir / "c.sock"))
        cfg = yaml.safe_load(self.config.read_text())
        cfg["mqtt"] = mqtt
        self.config.write_text(yaml.safe_dump(cfg))
        return self.config

    def daemon(self, broker: Broker, **mqtt) -> DaemonProcess:
        """A daemon on this test's config, its mqtt section set to these keys."""
        self.write_config(broker, **mqtt)
        d = DaemonProcess(["--config", str(self.config)], audio_file=self.tmp_path / "audio.raw",
                          extra_env={"STATE_DIRECTORY": str(self.tmp_path / "state")},
                          cwd=self.tmp_path)
        self.daemons.append(d)
        return d

    def close(self) -> None:
        for d in self.daemons:
            d.close()
        for w in self.watchers:
            w.close()
        for b in self.brokers:
            b.stop()


@pytest.fixture()
def setup(tmp_path, astronaut, short_dir):
    s = Setup(tmp_path, astronaut, short_dir)
    yield s
    s.close()


def configs(w: Watcher) -> dict[tuple[str, str], dict]:
    """(component, object id) -> the last discovery config seen."""
    out = {}
    for topic, payload, _ in w.seen():
        m = re.fullmatch(rf"homeassistant/(\w+)/moodbox_{NODE}/(\w+)/config", topic)
        if m:
            out[m.group(1), m.group(2)] = json.loads(payload)
    return out


def assert_only_names_and_counts(w: Watcher, playlists: set[str]) -> None:
    """Every payload the box published: a discovery config, or a state that is a name, a
    count, ON/OFF or the owner's volume; never an image, a face box or a probability."""
    for topic, payload, _ in w.seen():
        if not topic.startswith(BASE) or topic.endswith(("/set", "/command")):  # the test's
            continue
        assert len(payload) < 256 and b"\0" not in payload, (topic, payload[:80])
        text = payload.decode("utf-8")
        key = topic[len(BASE) + 1:]
        allowed = {
            "availability": lambda t: t in ("online", "offline"),
            "mood": lambda t: t in MOODS,
            "emotion": lambda t: t in MOODS or t == "none",
            "playlist": lambda t: t in playlists or t == "none",
            "hold": lambda t: t in playlists or t == "none",
            "track": lambda t: t == "none" or re.fullmatch(r"[\w .-]+\.wav", t) is not None,
            "faces": lambda t: t.isdigit(),
            "pause": lambda t: t in ("ON", "OFF"),
            "camera": lambda t: t in ("ON", "OFF"),
            "volume": lambda t: re.fullmatch(r"[01]\.\d\d", t) is not None,
        }
        assert key in allowed, f"unexpected topic {topic}"
        assert allowed[key](text), (topic, text)
    for (component, key), cfg in configs(w).items():
        flat = json.dumps(cfg)
        assert not re.search(r"\b0\.\d{3,}", flat), (key, flat)  # no probability hides here


def logged_after(d: DaemonProcess, mark: int, text: str, timeout: float = 10.0) -> bool:
    """True once a log line from index `mark` on contains `text`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(text in line for line in d.lines[mark:]):
            return True
        time.sleep(0.05)
    return False


def test_discovery_state_commands_and_clean_stop(setup):
    broker = setup.broker().start()
    w = setup.watcher(broker)
    d = setup.daemon(broker)
    assert w.wait_for(AVAIL, "online"), d.log
    assert w.wait_for(f"{BASE}/mood", EMOTION, timeout=30), d.log
    assert "mqtt: connected to 127.0.0.1" in d.log

    # discovery: one device, every entity, the keys Home Assistant requires
    found = configs(w)
    assert set(found) == ENTITIES, sorted(found)
    for (component, key), cfg in found.items():
        missing = (REQUIRED[component] | EVERY) - set(cfg)
        assert not missing, (component, key, missing)
        assert cfg["unique_id"] == f"moodbox_{NODE}_{key}"
        assert cfg["device"]["identifiers"] == [f"moodbox_{NODE}"]
        assert cfg["device"]["name"] == f"moodbox {NAME}"
        assert cfg["availability_topic"] == AVAIL
        if component != "button":
            assert cfg["state_topic"] == f"{BASE}/{key}"
        if "command_topic" in cfg:
            assert cfg["command_topic"] == f"{BASE}/{key}/set"
    assert found["number", "volume"]["min"] == 0 and found["number", "volume"]["max"] == 0.9
    assert found["select", "hold"]["options"] == ["none", *sorted(TONES)]
    # retained: Home Assistant (re)starting later gets them from the broker
    late = setup.watcher(broker)
    assert late.wait_for(AVAIL, "online", timeout=5)
    assert late.wait_for(f"{BASE}/mood", EMOTION, timeout=5)
    time.sleep(0.5)
    assert len(configs(late)) == len(ENTITIES)
    # each topic's first message is the broker's retained copy (a live update that arrives
    # later, a state change during the wait, comes without the flag, as MQTT delivers it)
    first: dict[str, bool] = {}
    for t, _, retained in late.seen():
        if t.startswith(("homeassistant/", BASE)):
            first.setdefault(t, retained)
    assert first and all(first.values()), first

    # state follows the daemon
    assert w.wait_for(f"{BASE}/playlist", EMOTION)
    assert w.wait_for(f"{BASE}/track", f"{EMOTION}.wav")
    assert w.wait_for(f"{BASE}/faces", "1")
    assert w.last(f"{BASE}/pause") == "OFF" and w.last(f"{BASE}/volume") == "0.80"
    assert w.last(f"{BASE}/camera") == "ON" and w.last(f"{BASE}/hold") == "none"

    # commands from the broker, through the control core
    n = len(w.seen())
    w.publish(f"{BASE}/pause/set", "ON")
    assert w.wait_for(f"{BASE}/pause", "ON", after=n, timeout=5), d.log
    assert d.wait_for("owner: pause", 5)
    n = len(w.seen())
    w.publish(f"{BASE}/volume/set", "0.55")
    assert w.wait_for(f"{BASE}/volume", "0.55", after=n, timeout=5), d.log
    w.publish(f"{BASE}/hold/set", "sad")
    assert w.wait_for(f"{BASE}/hold", "sad", after=n, timeout=5), d.log
    w.publish(f"{BASE}/hold/set", "none")
    assert w.wait_for(f"{BASE}/hold", "none", after=n, timeout=5), d.log
    w.publish(f"{BASE}/command", json.dumps({"cmd": "resume"}))
    assert w.wait_for(f"{BASE}/pause", "OFF", after=n, timeout=5), d.log

    # one core: a change made on the socket shows on MQTT within a second (the poll is
    # 0.5 s; 1.5 s allowed here for a loaded test machine), and the other way round
    n = len(w.seen())
    sock = str(setup.short_dir / "c.sock")
    r = subprocess.run([*moodbox_command(), "pause", "--socket", sock], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    assert w.wait_for(f"{BASE}/pause", "ON", after=n, timeout=5), d.log
    assert time.monotonic() - t0 < 1.5
    w.publish(f"{BASE}/pause/set", "OFF")
    time.sleep(0.3)
    r = subprocess.run([*moodbox_command(), "status", "--json", "--socket", sock],
                       capture_output=True, text=True, timeout=30)
    assert json.loads(r.stdout)["paused"] is False

    # bad payloads: a log line, nothing changes; a flood of them: one line
    n = len(w.seen())
    w.publish(f"{BASE}/volume/set", "loud")
    assert d.wait_for("mqtt: ignored 'loud' on moodbox/living_room/volume/set: volume must be "
                      "a number from 0 to 1", 5), d.log
    for payload in ("2", "MAYBE", "", "\xff", "{", "[1]", "nosuch"):
        topic = {"2": "volume", "MAYBE": "pause", "nosuch": "hold"}.get(payload, "pause")
        w.publish(f"{BASE}/{topic}/set", payload)
    w.publish(f"{BASE}/nosuch/set", "ON")
    time.sleep(1.5)
    assert d.log.count("mqtt: ignored") == 1, d.log
    assert "Traceback" not in d.log
    assert w.last(f"{BASE}/volume") == "0.55" and w.last(f"{BASE}/pause") == "OFF"
    assert "owner: skip" not in d.log
    assert not [t for t, _, _ in w.seen()[n:] if t in (f"{BASE}/volume", f"{BASE}/pause")]

    assert_only_names_and_counts(w, set(TONES))

    # a clean stop: "offline" (retained) and a clean DISCONNECT (no last will needed)
    code, took = d.stop()
    assert code == 0 and took < 5.0, d.log
    assert w.last(AVAIL) == "offline"
    assert "mqtt: offline, disconnected" in d.log
    assert re.search(r"Client moodbox-living_room disconnected\.", broker.log), broker.log


def test_last_will_when_killed_and_reconnect_after_broker_restart(setup):
    broker = setup.broker().start()
    w = setup.watcher(broker)
    d = setup.daemon(broker)
    assert w.wait_for(f"{BASE}/mood", EMOTION, timeout=30), d.log

    # the broker goes away and comes back on the same port: the box plays on and returns
    broker.stop()
    assert d.wait_for("mqtt: lost the broker at 127.0.0.1", 10), d.log
    time.sleep(2.5)  # several reconnect tries, one log line
    broker.start()
    w.close()
    w = setup.watcher(broker)
    assert w.wait_for(AVAIL, "online", timeout=30), d.log
    assert w.wait_for(f"{BASE}/mood", EMOTION, timeout=10), d.log  # state is sent again
    assert len(configs(w)) == len(ENTITIES)                      # and discovery
    assert d.log.count("mqtt: lost the broker") == 1 and d.log.count("cannot reach") <= 1, d.log
    assert d.log.count("mqtt: connected to") == 2, d.log
    assert d.running()

    # killed without a word: the broker's last will says offline
    n = len(w.seen())
    d.proc.send_signal(signal.SIGKILL)
    assert w.wait_for(AVAIL, "offline", after=n, timeout=20)


def test_broker_down_at_start_plays_on_then_connects(setup):
    broker = setup.broker()  # not started yet
    d = setup.daemon(broker)
    assert d.wait_for(f"playing {EMOTION}.wav", 30), d.log
    assert d.wait_for("mqtt: cannot reach the broker at 127.0.0.1", 10), d.log
    time.sleep(2.0)
    assert d.log.count("cannot reach the broker") == 1, d.log
    broker.start()
    w = setup.watcher(broker)
    assert w.wait_for(AVAIL, "online", timeout=40), d.log
    assert w.wait_for(f"{BASE}/mood", EMOTION, timeout=10), d.log


def test_password_file_and_tls(setup, tmp_path):
    tls = make_certs(tmp_path / "certs")
    broker = setup.broker(users={"box": "s3cret pass", "ha": "other"}, tls=tls).start()
    w = setup.watcher(broker, username="ha", password="other", ca=tls.ca)
    secret = tmp_path / "mqtt.pass"
    secret.write_text("s3cret pass\n")
    secret.chmod(0o640)
    d = setup.daemon(broker, username="box", password_file=str(secret),
                     tls={"enabled": True, "ca_file": str(tls.ca)})
    assert w.wait_for(AVAIL, "online", timeout=30), d.log
    assert w.wait_for(f"{BASE}/mood", EMOTION, timeout=30), d.log
    n = len(w.seen())
    w.publish(f"{BASE}/pause/set", "ON")
    assert w.wait_for(f"{BASE}/pause", "ON", after=n, timeout=5), d.log
    assert "s3cret" not in d.log
    d.close()

    # a wrong password: one line saying so, and the box plays on
    secret.write_text("wrong\n")
    d = setup.daemon(broker, username="box", password_file=str(secret),
                     tls={"enabled": True, "ca_file": str(tls.ca)})
    assert d.wait_for("mqtt: the broker at 127.0.0.1", 30), d.log
    assert "refused this box (Not authorized)" in d.log, d.log
    assert d.wait_for(f"playing {EMOTION}.wav", 30), d.log
    time.sleep(2.5)
    assert d.log.count("refused this box") == 1, d.log
    d.close()

    # a broker whose certificate this box cannot verify (the system's CAs do not know the
    # test CA): no connection, and the log says why
    secret.write_text("s3cret pass\n")
    d = setup.daemon(broker, username="box", password_file=str(secret), tls={"enabled": True})
    assert d.wait_for("mqtt: cannot reach the broker at 127.0.0.1", 30), d.log
    assert "certificate verify failed" in d.log, d.log
    assert not w.wait_for(AVAIL, "online", after=len(w.seen()), timeout=2)


def test_a_world_readable_password_file_is_refused(setup, tmp_path):
    broker = setup.broker()
    secret = tmp_path / "mqtt.pass"
    secret.write_text("pw\n")
    secret.chmod(0o644)
    d = setup.daemon(broker, username="box", password_file=str(secret))
    code = d.proc.wait(60)
    assert code == 78, d.log
    assert "mqtt.password_file:" in d.log and "can be read by every user" in d.log
    assert "Traceback" not in d.log


def test_follow_another_box_while_it_is_online(setup):
    """This box (camera: a happy face) follows 'kitchen' while kitchen is online; the
    kitchen box is played here by the test's client, on its real topics."""
    broker = setup.broker().start()
    w = setup.watcher(broker)
    w.publish("moodbox/kitchen/availability", "online", retain=True)
    w.publish("moodbox/kitchen/mood", "sad", retain=True)
    # a command someone left retained is stale by the time the box connects: not obeyed
    w.publish(f"{BASE}/pause/set", "ON", retain=True)
    d = setup.daemon(broker, follow="Kitchen")
    assert d.wait_for("mqtt: ignored 'ON' on moodbox/living_room/pause/set: a retained "
                      "command is ignored", 30), d.log
    assert d.wait_for("mood -> sad (following Kitchen)", 30), d.log
    assert d.wait_for("playing sad.wav from sad (mood sad)", 10), d.log
    assert w.wait_for(f"{BASE}/mood", "sad", timeout=10)
    assert w.wait_for(f"{BASE}/emotion", EMOTION, timeout=10)  # its own camera's, still shown
    n = len(w.seen())
    w.publish("moodbox/kitchen/mood", "neutral", retain=True)
    assert d.wait_for("mood -> neutral (following Kitchen)", 10), d.log
    assert w.wait_for(f"{BASE}/mood", "neutral", after=n, timeout=5), d.log   # state follows
    assert w.wait_for(f"{BASE}/playlist", "neutral", after=n, timeout=10), d.log
    w.publish("moodbox/kitchen/mood", "<img>", retain=True)   # not a mood: ignored
    assert d.wait_for("not a mood this box knows", 10), d.log
    # camera off here (privacy): privacy.music decides (keep), not the followed box
    w.publish(f"{BASE}/camera/set", "OFF")
    assert d.wait_for("camera off (privacy): closed", 10), d.log
    w.publish("moodbox/kitchen/mood", "surprise", retain=True)
    time.sleep(1.0)
    assert "mood -> surprise" not in d.log
    w.publish(f"{BASE}/camera/set", "ON")
    assert d.wait_for("mood -> surprise (following Kitchen)", 10), d.log
    # the kitchen box goes offline (its last will): back to this camera's mood
    mark = len(d.lines)
    w.publish("moodbox/kitchen/availability", "offline", retain=True)
    # (the camera was reopened just now, so its own mood may first be away, then happy)
    assert logged_after(d, mark, "(this camera's; Kitchen is not heard)"), d.log
    assert logged_after(d, mark, f"mood -> {EMOTION} ("), d.log
    assert w.wait_for(f"{BASE}/mood", EMOTION, after=n, timeout=5), d.log
    assert d.wait_for(f"playing {EMOTION}.wav", 10), d.log
    assert "owner: pause" not in d.log and w.last(f"{BASE}/pause") == "OFF"


def test_camera_switch_closes_and_opens_the_camera(setup):
    """The privacy switch: OFF from Home Assistant closes the camera through the control
    core (as `moodbox camera off` does); the state says so and nobody is seen."""
    broker = setup.broker().start()
    w = setup.watcher(broker)
    d = setup.daemon(broker)
    assert w.wait_for(f"{BASE}/camera", "ON", timeout=30), d.log
    assert w.wait_for(f"{BASE}/faces", "1", timeout=30), d.log
    cfg = configs(w)["switch", "camera"]
    assert cfg["command_topic"] == f"{BASE}/camera/set" and cfg["state_topic"] == f"{BASE}/camera"
    n = len(w.seen())
    w.publish(f"{BASE}/camera/set", "OFF")
    assert w.wait_for(f"{BASE}/camera", "OFF", after=n, timeout=5), d.log
    assert d.wait_for("camera off (privacy): closed", 10), d.log
    assert w.wait_for(f"{BASE}/faces", "0", after=n, timeout=10), d.log
    assert w.wait_for(f"{BASE}/emotion", "none", after=n, timeout=10), d.log
    n = len(w.seen())
    w.publish(f"{BASE}/camera/set", "ON")
    assert w.wait_for(f"{BASE}/camera", "ON", after=n, timeout=10), d.log
    assert d.wait_for("camera on:", 10), d.log
    assert w.wait_for(f"{BASE}/faces", "1", after=n, timeout=20), d.log


def test_check_says_whether_the_broker_answers(setup):
    broker = setup.broker()
    config = setup.write_config(broker)

    def check() -> str:
        r = subprocess.run([*moodbox_command(), "check", "--config", str(config)],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SDL_AUDIODRIVER="dummy"))
        return r.stdout + r.stderr

    out = check()
    assert re.search(rf"\[warn\] mqtt +broker 127.0.0.1:{broker.port} does not answer "
                     r"\(Connection refused\); Home Assistant device 'moodbox Living Room', "
                     "topics moodbox/living_room/", out), out
    broker.start()
    out = check()
    assert f"[  ok] mqtt       broker 127.0.0.1:{broker.port} answers" in out, out


def test_two_boxes_one_home_one_follows_the_other(setup, tmp_path, no_face_photo):
    """Two real daemons on one broker: 'Living Room' sees a happy face; 'Hall' sees nobody
    and follows Living Room until that box is gone (killed: its last will)."""
    broker = setup.broker().start()
    w = setup.watcher(broker)
    living = setup.daemon(broker)
    hall_dir = tmp_path / "hall"
    hall_dir.mkdir()
    config = make_setup(hall_dir, no_face_photo, control__socket=str(setup.short_dir / "h.sock"),
                        mqtt__enabled=True, mqtt__host=HOST, mqtt__port=broker.port,
                        mqtt__name="Hall", mqtt__follow=NAME, mqtt__keepalive_s=5)
    hall = DaemonProcess(["--config", str(config)], audio_file=hall_dir / "audio.raw",
                         extra_env={"STATE_DIRECTORY": str(hall_dir / "state")}, cwd=hall_dir)
    setup.daemons.append(hall)
    assert hall.wait_for(f"mood -> {EMOTION} (following {NAME})", 40), hall.log + living.log
    assert hall.wait_for(f"playing {EMOTION}.wav from {EMOTION} (mood {EMOTION})", 10), hall.log
    assert w.wait_for("moodbox/hall/mood", EMOTION, timeout=10)
    assert w.wait_for("moodbox/hall/faces", "0", timeout=10)  # its own camera sees nobody
    ids = {cfg["unique_id"] for cfg in map(json.loads, (p for t, p, _ in w.seen()
                                                        if t.endswith("/config")))}
    assert {f"moodbox_{NODE}_mood", "moodbox_hall_mood"} <= ids  # two devices
    assert len(ids) == 2 * len(ENTITIES)
    living.proc.send_signal(signal.SIGKILL)
    assert hall.wait_for(f"mood -> away (this camera's; {NAME} is not heard)", 20), hall.log
    assert w.wait_for("moodbox/hall/mood", "away", timeout=10)
