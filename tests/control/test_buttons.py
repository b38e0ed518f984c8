"""GPIO buttons through gpiozero's own mock pin factory, wired to the real control core."""
from __future__ import annotations

import logging
import time

import pytest

from moodbox.config import ButtonsConfig
from moodbox.control.buttons import Buttons
from test_core import rig  # noqa: F401 (the fixture: a core on a FakeAudio player)

gpiozero = pytest.importorskip("gpiozero", reason="pip install 'moodbox[buttons]'")
from gpiozero.pins.mock import MockFactory  # noqa: E402


def until(check, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return check()


def press(factory: MockFactory, pin: int) -> None:
    """A button between the pin and ground (pull-up): pressed pulls the pin low."""
    factory.pin(pin).drive_low()
    time.sleep(0.05)
    factory.pin(pin).drive_high()
    time.sleep(0.05)


def test_skip_and_pause_buttons(rig):  # noqa: F811
    core, player, fake, clock = rig
    factory = MockFactory()
    buttons = Buttons(ButtonsConfig(enabled=True, skip=17, pause="GPIO27", bounce_s=0.0), core,
                      pin_factory=factory)
    assert buttons.start()
    try:
        first = player.track
        press(factory, 17)
        assert until(lambda: player.state == "fading")
        assert player.learner.weight("happy", first) == 0.5  # a button skip is learned too
        clock.tick(1.0)
        assert player.track != first and player.state == "playing"
        press(factory, 27)
        assert until(lambda: player.owner_paused and player.state == "paused")
        press(factory, 27)
        assert until(lambda: not player.owner_paused and player.state == "playing")
    finally:
        buttons.close()
    # closed: the pin can be claimed again (a pin still in use cannot, see below)
    again = Buttons(ButtonsConfig(enabled=True, skip=17), core, pin_factory=factory)
    assert again.start()
    again.close()


def test_a_pin_in_use_is_logged_and_the_box_plays_on(rig, caplog):  # noqa: F811
    core, player, fake, clock = rig
    factory = MockFactory()
    held = gpiozero.Button(17, pin_factory=factory)
    try:
        with caplog.at_level(logging.ERROR):
            ok = Buttons(ButtonsConfig(enabled=True, skip=17), core, pin_factory=factory).start()
        assert not ok and "cannot use pin 17 for skip" in caplog.text
    finally:
        held.close()
    assert player.state == "playing"


def test_gpiozero_is_imported_only_when_buttons_are_configured(tmp_path):
    import subprocess
    import sys

    code = ("import sys, moodbox.daemon, moodbox.control.service, moodbox.control.core; "
            "print('gpiozero' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
