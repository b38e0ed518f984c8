"""The mqtt section is checked like every other: key paths, did-you-mean, files, secrets."""
from __future__ import annotations

import socket

import pytest

from moodbox.config import ConfigError, config_from_dict, load_config, topic_id
from helpers import REPO

BASE = {"playlists": {"favourites": "."}}


def load(tmp_path, **mqtt):
    return config_from_dict({**BASE, "mqtt": mqtt}, tmp_path, "config.yaml")


def problems(tmp_path, **mqtt) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, **mqtt)
    return str(e.value)


def secret(tmp_path, mode: int, text: str = "pw\n"):
    path = tmp_path / "mqtt.pass"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_off_by_default_and_the_shipped_file_says_so(tmp_path):
    cfg = load(tmp_path)
    m = cfg.mqtt
    assert not m.enabled and m.host == "localhost" and m.port == 1883
    assert m.topic_prefix == "moodbox" and m.discovery_prefix == "homeassistant"
    assert m.name == socket.gethostname() and m.node_id == topic_id(socket.gethostname())
    assert not m.tls.enabled and m.follow == "" and m.username == ""
    shipped = load_config(REPO / "config.yaml").mqtt
    assert not shipped.enabled and shipped.port == 1883 and shipped.keepalive_s == 30


def test_names_become_topic_ids():
    assert topic_id("Living Room") == "living_room"
    assert topic_id("pi-kitchen.local") == "pi-kitchen_local"
    assert topic_id("a/#+b") == "a_b" and topic_id("  Küche 2 ") == "k_che_2"
    assert topic_id("///") == ""


def test_every_problem_is_named_with_its_key_path(tmp_path):
    text = problems(tmp_path, enabled=True, nmae="x", port=0, topic_prefix="a/#",
                    discovery_prefix="/ha", host="", password="x", tls={"ca_file": "ca.pem"},
                    keepalive_s="often")
    assert "mqtt.nmae: unknown key; did you mean 'name'?" in text
    assert "mqtt.port: must be between 1 and 65535, got 0" in text
    assert "mqtt.topic_prefix: must be topic levels of letters, digits, _ and - joined by /" in text
    assert "mqtt.discovery_prefix: must be topic levels" in text
    assert "mqtt.host: must be the broker's host name or address" in text
    assert "mqtt.username: a password needs the user name it belongs to" in text
    assert "mqtt.tls.ca_file: is set but mqtt.tls.enabled is false" in text
    assert "mqtt.keepalive_s: must be a whole number" in text
    assert "Traceback" not in text


def test_name_and_follow(tmp_path):
    assert "mqtt.name: must have a letter or digit in it, got '#'" in problems(tmp_path, name="#")
    assert "mqtt.name: must be 64 characters or fewer, got 65" in problems(tmp_path, name="n" * 65)
    assert "mqtt.host: must be the broker's host name or address (no mqtt://" in problems(
        tmp_path, enabled=True, host="mqtt://ha.local")
    assert "mqtt.tls: must be a mapping of keys, got 'on'" in problems(tmp_path, tls="on")
    assert "mqtt: must be a mapping of keys" in str(pytest.raises(
        ConfigError, config_from_dict, {**BASE, "mqtt": "yes"}, tmp_path).value)
    text = problems(tmp_path, name="Kitchen", follow="kitchen")
    assert "mqtt.follow: 'kitchen' is this box's own name" in text
    cfg = load(tmp_path, name="Living Room", follow="Kitchen Box")
    assert cfg.mqtt.node_id == "living_room" and cfg.mqtt.follow_id == "kitchen_box"


def test_password_file_is_refused_when_every_user_may_read_it(tmp_path):
    path = secret(tmp_path, 0o644)
    text = problems(tmp_path, enabled=True, username="box", password_file="mqtt.pass")
    assert (f"mqtt.password_file: '{path}' can be read by every user on this machine "
            "(mode 0644); refusing it: chmod o-r") in text
    path.chmod(0o640)
    cfg = load(tmp_path, enabled=True, username="box", password_file="mqtt.pass")
    assert cfg.mqtt.password_file == str(path)  # relative to the config file


def test_password_file_problems(tmp_path):
    args = dict(enabled=True, username="box")
    assert "does not exist" in problems(tmp_path, password_file="gone.pass", **args)
    assert "is a folder" in problems(tmp_path, password_file=".", **args)
    secret(tmp_path, 0o600, "")
    assert "is empty; put the password on its first line" in problems(
        tmp_path, password_file="mqtt.pass", **args)
    secret(tmp_path, 0o600)
    assert "give mqtt.password or mqtt.password_file, not both" in problems(
        tmp_path, password_file="mqtt.pass", password="x", **args)
    # a disabled section is not checked against the file system
    assert not load(tmp_path, username="box", password_file="gone.pass").mqtt.enabled


def test_password_never_shows_in_a_repr(tmp_path):
    cfg = load(tmp_path, username="box", password="hunter2-secret")
    assert cfg.mqtt.password == "hunter2-secret"
    assert "hunter2" not in repr(cfg)


def test_tls_ca_file(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    cfg = load(tmp_path, enabled=True, tls={"enabled": True, "ca_file": "ca.pem"})
    assert cfg.mqtt.tls.ca_file == str(tmp_path / "ca.pem")
    assert "mqtt.tls.ca_file: '" in problems(tmp_path, enabled=True,
                                             tls={"enabled": True, "ca_file": "no.pem"})
    assert "mqtt.tls.enabeld: unknown key; did you mean 'enabled'?" in problems(
        tmp_path, tls={"enabeld": True})


def test_a_playlist_named_none_clashes_with_the_hold_select(tmp_path):
    with pytest.raises(ConfigError, match="playlists.none: Home Assistant's hold select"):
        config_from_dict({"playlists": {"favourites": ".", "none": "."},
                          "mqtt": {"enabled": True}}, tmp_path)


def test_a_reload_names_mqtt_keys_for_a_restart_and_never_a_password(tmp_path):
    from moodbox.config.changes import describe_changes

    old = load(tmp_path, username="box", password="old-secret-1")
    new = load(tmp_path, username="box", password="new-secret-2", port=8883)
    applied, restart = describe_changes(old, new)
    assert {"mqtt.password", "mqtt.port"} <= set(restart)
    assert "secret" not in " ".join(applied + restart)
