"""Home Assistant's side as pure units: discovery configs, state payloads from a real core
snapshot, command payloads, and the small decision classes of the MQTT front end."""
from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from moodbox.config import config_from_dict
from moodbox.control.homeassistant import (ENTITIES, BadPayload, Topics,
                                           discovery_configs, request_for, request_from_json,
                                           state_payloads)
from moodbox.control.mqtt import Backoff, LinkLog, MqttFrontEnd
from moodbox.mood import FollowedMood
from moodbox.vocabulary import MOODS
from test_core import NOON, SPEC, rig  # noqa: F401 (the core on a fake audio device)

T = Topics("moodbox", "homeassistant", "kitchen")
SNAPSHOT = {"mood": "happy", "emotion": {"name": "happy", "p": 0.873}, "playlist": "upbeat",
            "track": {"path": "/music/up/u1.wav", "name": "u1.wav", "title": None,
                      "artist": None},
            "faces": 2, "paused": False, "owner_volume": None, "max_volume": 0.8,
            "hold": None, "camera": "open", "playlists": ["calm", "favourites", "upbeat"],
            "history": [{"mood": "happy", "emotion": "happy", "p": 0.873}]}


def test_topics():
    assert T.availability == "moodbox/kitchen/availability"
    assert T.state("mood") == "moodbox/kitchen/mood"
    assert T.command("pause") == "moodbox/kitchen/pause/set"
    assert T.command_key("moodbox/kitchen/pause/set") == "pause"
    assert T.command_key("moodbox/kitchen/a/b/set") is None
    assert T.command_key("moodbox/other/pause/set") is None
    assert T.of_box("hall").availability == "moodbox/hall/availability"
    hold = next(e for e in ENTITIES if e.key == "hold")
    assert T.config(hold) == "homeassistant/select/moodbox_kitchen/hold/config"


def test_discovery_configs_carry_what_home_assistant_requires():
    configs = {t: json.loads(v) for t, v in discovery_configs(T, "Kitchen", SNAPSHOT, "1.0").items()}
    assert len(configs) == len(ENTITIES) == 10
    ids = {c["unique_id"] for c in configs.values()}
    assert len(ids) == 10 and all(i.startswith("moodbox_kitchen_") for i in ids)
    for topic, c in configs.items():
        component = topic.split("/")[1]
        assert c["device"] == {"identifiers": ["moodbox_kitchen"], "name": "moodbox Kitchen",
                               "manufacturer": "moodbox", "model": "moodbox speaker",
                               "sw_version": "1.0"}
        assert c["availability_topic"] == T.availability
        if component in ("switch", "button", "number", "select"):
            assert c["command_topic"].endswith("/set")
        if component != "button":
            assert c["state_topic"].startswith("moodbox/kitchen/")
    by_key = {t.split("/")[3]: c for t, c in configs.items()}
    assert by_key["hold"]["options"] == ["none", "calm", "favourites", "upbeat"]
    assert by_key["volume"]["max"] == 0.8 and by_key["volume"]["min"] == 0.0
    assert by_key["skip"]["payload_press"] == "PRESS"
    assert by_key["pause"]["payload_on"] == "ON" and by_key["camera"]["payload_off"] == "OFF"


def test_state_payloads_are_names_and_counts_only():
    values = {t.rsplit("/", 1)[1]: v for t, v in state_payloads(T, SNAPSHOT, 0.7).items()}
    assert values == {"mood": "happy", "emotion": "happy", "playlist": "upbeat",
                      "track": "u1.wav", "faces": "2", "pause": "OFF", "volume": "0.70",
                      "hold": "none", "camera": "ON"}
    assert not any("0.87" in v or "/music" in v for v in values.values())
    held = {**SNAPSHOT, "hold": {"playlist": "calm", "remaining_s": 60}, "owner_volume": 1.0,
            "paused": True, "privacy": True, "emotion": None, "track": None,
            "playlist": None}
    values = {t.rsplit("/", 1)[1]: v for t, v in state_payloads(T, held, 0.7).items()}
    assert values["hold"] == "calm" and values["volume"] == "0.80"  # never above the cap
    assert values["pause"] == "ON" and values["camera"] == "OFF"
    assert values["emotion"] == values["track"] == values["playlist"] == "none"
    tagged = {**SNAPSHOT, "track": {"name": "x.ogg", "title": "T" * 300, "artist": "A"}}
    assert len(state_payloads(T, tagged, 0.7)[T.state("track")]) == 255


def test_state_from_the_real_core_snapshot(rig):  # noqa: F811
    core, player, fake, clock = rig
    status = core.status(clock.t)
    values = {t.rsplit("/", 1)[1]: v for t, v in state_payloads(T, status, 0.7).items()}
    assert values["mood"] == "happy" and values["playlist"] == "upbeat"
    assert values["track"].startswith("u") and values["faces"] == "1"
    assert values["emotion"] == "happy" and values["volume"] == "0.70"
    configs = discovery_configs(T, "Kitchen", status, "1.0")
    hold = json.loads(configs["homeassistant/select/moodbox_kitchen/hold/config"])
    assert hold["options"] == ["none", *sorted(SPEC)]
    # the commands Home Assistant sends, through the core as the socket's requests
    assert core.handle(request_for("volume", "0.5"), clock.t)["ok"]
    assert core.handle(request_for("pause", "ON"), clock.t)["status"]["paused"] is True
    assert core.handle(request_for("hold", "calm"), clock.t)["status"]["hold"]["playlist"] == "calm"
    assert core.handle(request_for("hold", "none"), clock.t)["status"]["hold"] is None
    bad = core.handle(request_for("hold", "jazz"), clock.t)
    assert not bad["ok"] and "no playlist 'jazz'" in bad["error"]
    bad = core.handle(request_for("volume", "loud"), clock.t)
    assert not bad["ok"] and "volume must be a number from 0 to 1, got 'loud'" in bad["error"]
    assert not core.handle(request_for("volume", "nan"), clock.t)["ok"]


@pytest.mark.parametrize("key,payload,wanted", [
    ("pause", "ON", {"cmd": "pause"}), ("pause", "off", {"cmd": "resume"}),
    ("skip", "PRESS", {"cmd": "skip"}), ("volume", " 0.25 ", {"cmd": "volume", "level": 0.25}),
    ("volume", "inf", {"cmd": "volume", "level": "inf"}),
    ("hold", "calm", {"cmd": "hold", "playlist": "calm"}), ("hold", "None", {"cmd": "release"}),
    ("camera", "OFF", {"cmd": "camera", "state": "off"}),
    ("camera", "ON", {"cmd": "camera", "state": "on"}),
])
def test_command_payloads_become_the_sockets_requests(key, payload, wanted):
    assert request_for(key, payload) == wanted


@pytest.mark.parametrize("key,payload,words", [
    ("pause", "MAYBE", "pause takes ON or OFF"), ("skip", "now", "skip takes PRESS"),
    ("hold", " ", "hold takes a playlist name or none"),
    ("camera", "", "camera takes ON or OFF"), ("lights", "ON", "no such command topic"),
])
def test_bad_command_payloads(key, payload, words):
    with pytest.raises(BadPayload, match=words):
        request_for(key, payload)


def test_json_command_topic():
    assert request_from_json('{"cmd": "hold", "playlist": "calm", "minutes": 30}') == \
        {"cmd": "hold", "playlist": "calm", "minutes": 30}
    for bad in ("{", "[1]", '"skip"', ""):
        with pytest.raises(BadPayload):
            request_from_json(bad)


def test_rate_limit_holds_lines_back_and_counts_them():
    from moodbox.logsafe import Throttle

    r = Throttle(10.0)
    assert r.ready(0.0) == 0
    assert r.ready(1.0) is None and r.ready(9.9) is None
    assert r.ready(10.0) == 2
    assert r.ready(15.0) is None and r.ready(25.0) == 1


def test_backoff_doubles_to_its_limit_and_resets():
    b = Backoff(1.0, 30.0)
    assert [b.failed(100.0) - 100.0 for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.failed(0.0) == 1.0


def test_link_log_says_each_change_once(caplog):
    link = LinkLog()
    with caplog.at_level(logging.INFO, logger="moodbox.control.mqtt"):
        for state in ("down", "down", "down", "connected", "down", "refused", "refused"):
            link.change(state, logging.INFO, "state %s", state)
    assert [r.getMessage() for r in caplog.records] == [
        "state down", "state connected", "state down", "state refused"]


def test_followed_mood_counts_only_while_both_boxes_are_on_the_broker():
    f = FollowedMood("kitchen", MOODS)
    assert f.current() is None
    assert f.heard_mood("sad") and f.current() is None          # not linked, not online
    f.linked(True)
    assert f.current() is None                                   # the other box not online
    f.heard_availability(True)
    assert f.current() == "sad"
    assert not f.heard_mood("<img src=x>") and f.current() == "sad"
    f.heard_availability(False)
    assert f.current() is None
    f.heard_availability(True)
    f.linked(False)                                              # our own link went
    assert f.current() is None
    f.linked(True)
    assert f.current() is None  # until the broker repeats what it holds (retained)


def test_without_paho_the_box_plays_on(tmp_path, rig, monkeypatch, caplog):  # noqa: F811
    core = rig[0]
    cfg = config_from_dict({"playlists": {"favourites": "."}, "mqtt": {"enabled": True}},
                           tmp_path).mqtt
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)  # import fails
    with caplog.at_level(logging.ERROR):
        assert MqttFrontEnd(cfg, core, 0.7).start() is False
    assert "paho-mqtt is not installed: pip install 'moodbox[mqtt]'" in caplog.text


def test_an_unreadable_password_file_at_start_is_one_line(tmp_path, rig, caplog):  # noqa: F811
    pytest.importorskip("paho.mqtt.client")
    secret = tmp_path / "pass"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    cfg = config_from_dict({"playlists": {"favourites": "."},
                            "mqtt": {"enabled": True, "username": "u", "password_file": "pass"}},
                           tmp_path).mqtt
    secret.unlink()  # gone between the config check and the start
    with caplog.at_level(logging.ERROR):
        assert MqttFrontEnd(cfg, rig[0], 0.7).start() is False
    assert re.search(r"mqtt: cannot read mqtt.password_file '.*pass' \(No such file", caplog.text)


def test_connect_failures_name_what_to_look_at():
    import errno
    import socket
    import ssl

    from moodbox.control.mqtt import _hint

    assert "mqtt.tls.ca_file" in _hint(ssl.SSLCertVerificationError(1, "verify failed"), True)
    assert "does the broker speak TLS" in _hint(ssl.SSLError(1, "WRONG_VERSION_NUMBER"), True)
    assert "does the broker speak TLS" in _hint(ConnectionResetError(104, "reset"), True)
    assert _hint(ConnectionResetError(104, "reset"), False) == ""
    for exc in (OSError(errno.ENETUNREACH, "Network is unreachable"),
                OSError(errno.EAFNOSUPPORT, "Address family not supported"),
                socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")):
        assert "install-pi.sh --upgrade --enable-mqtt" in _hint(exc, False)
    assert _hint(ConnectionRefusedError(111, "Connection refused"), False) == ""


def test_a_ca_file_that_is_no_certificate_is_one_line_at_start(tmp_path, rig, caplog):  # noqa: F811
    pytest.importorskip("paho.mqtt.client")
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    cfg = config_from_dict({"playlists": {"favourites": "."},
                            "mqtt": {"enabled": True, "tls": {"enabled": True,
                                                              "ca_file": "ca.pem"}}},
                           tmp_path).mqtt
    with caplog.at_level(logging.ERROR):
        assert MqttFrontEnd(cfg, rig[0], 0.7).start() is False
    assert "is not a CA certificate file" in caplog.text and "give a PEM file" in caplog.text
    assert len(caplog.records) == 1


def test_a_deep_or_non_finite_json_command_is_a_bad_payload_not_a_crash():
    """The JSON command topic is outside input: bounded like the socket's (hostile review 4)."""
    from moodbox.control.homeassistant import BadPayload, request_from_json

    for payload, words in (("[" * 5000, "nested too deeply"), ('{"cmd": "volume", "level": NaN}', "NaN"),
                           ("skip", "not JSON")):
        with pytest.raises(BadPayload) as info:
            request_from_json(payload)
        assert words in str(info.value) and "\n" not in str(info.value)
