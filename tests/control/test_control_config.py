"""The control, web and buttons sections are checked like every other section."""
from __future__ import annotations

import pytest

from moodbox.config import ConfigError, config_from_dict, parse_listen

BASE = {"playlists": {"favourites": "."}}


def load(tmp_path, **sections):
    return config_from_dict({**BASE, **sections}, tmp_path, "config.yaml")


def test_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.control.enabled and cfg.control.socket == ""
    assert not cfg.web.enabled and cfg.web.listen == "0.0.0.0:8080"
    assert not cfg.buttons.enabled and cfg.player.learn_from_skips


def test_errors_name_their_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, web={"enabled": True, "listen": "8080", "tokn": "x"},
             buttons={"enabled": True}, control={"socket": "/tmp/" + "x" * 120},
             player={"learn_from_skips": "yes"})
    text = str(e.value)
    assert "web.tokn: unknown key; did you mean 'token'?" in text
    assert "web.listen: must be HOST:PORT" in text
    assert "web.token: the page needs a token of 16 characters or more" in text
    assert "buttons: buttons.enabled is true but none of" in text
    assert "control.socket: path is too long" in text
    assert "player.learn_from_skips: must be true or false" in text


def test_pins_and_listen(tmp_path):
    cfg = load(tmp_path, buttons={"enabled": True, "skip": 17, "pause": "GPIO27"},
               web={"enabled": True, "token": "0123456789abcdef", "listen": "127.0.0.1:9000"})
    assert cfg.buttons.skip == 17 and cfg.buttons.pause == "GPIO27"
    assert parse_listen(cfg.web.listen) == ("127.0.0.1", 9000)
    assert parse_listen("[::]:80") == ("::", 80)
    with pytest.raises(ConfigError, match="buttons.skip: must be a GPIO pin"):
        load(tmp_path, buttons={"skip": [1]})


def test_a_relative_socket_is_relative_to_the_config_file(tmp_path):
    cfg = load(tmp_path, control={"socket": "run/ctl.sock"})
    assert cfg.control.socket == str(tmp_path / "run" / "ctl.sock")
