"""GPIO push buttons for skip, pause/resume and the camera (privacy), through gpiozero (imported only when configured)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from moodbox.config import ButtonsConfig
from moodbox.control.core import ControlCore

logger = logging.getLogger(__name__)


class Buttons:
    """gpiozero Buttons wired to the control core. `pin_factory`: gpiozero's choice by
    default (lgpio on a Pi 5, RPi.GPIO/lgpio on a Pi 4); tests pass its MockFactory."""

    def __init__(self, cfg: ButtonsConfig, core: ControlCore, pin_factory: Any = None):
        self.cfg = cfg
        self.core = core
        self._pin_factory = pin_factory
        self._buttons: list[Any] = []

    def start(self) -> bool:
        """Claim the pins; False (logged) when gpiozero or a pin is unavailable."""
        try:
            from gpiozero import Button
        except ImportError:
            logger.error("buttons: gpiozero is not installed: pip install 'moodbox[buttons]' "
                         "(or sudo apt install python3-gpiozero); running without buttons")
            return False
        actions: dict[str, Callable[[], None]] = {"skip": self.skip, "pause": self.toggle_pause,
                                                  "camera": self.toggle_camera}
        for name, pin in (("skip", self.cfg.skip), ("pause", self.cfg.pause),
                          ("camera", self.cfg.camera)):
            if pin == "":
                continue
            try:
                button = Button(pin, pull_up=self.cfg.pull_up, bounce_time=self.cfg.bounce_s or None,
                                pin_factory=self._pin_factory)
            except Exception as exc:  # noqa: BLE001 (gpiozero raises many kinds; all mean "no pin")
                logger.error("buttons: cannot use pin %s for %s (%s); the service user needs "
                             "the gpio group", pin, name, exc)
                self.close()
                return False
            button.when_pressed = actions[name]
            self._buttons.append(button)
            logger.info("button on pin %s: %s", pin, {"pause": "pause/resume",
                                                      "camera": "camera off/on (privacy)"}.get(name, name))
        return True

    def skip(self) -> None:
        self._do({"cmd": "skip"})

    def toggle_pause(self) -> None:
        try:
            paused = self.core.toggle_pause()
        except Exception:  # noqa: BLE001 (a button press never takes the daemon down)
            logger.exception("button: pause/resume failed")
            return
        logger.info("button: %s", "pause" if paused else "resume")

    def toggle_camera(self) -> None:
        """The privacy button: camera off, and on again at the next press."""
        shown = self.core.handle({"cmd": "camera"}, time.monotonic())
        state = "on" if shown.get("camera") == "off" else "off"
        self._do({"cmd": "camera", "state": state})
        logger.info("button: camera %s", state)

    def _do(self, request: dict) -> None:
        reply = self.core.handle(request, time.monotonic())
        if not reply.get("ok"):
            logger.info("button %s: %s", request["cmd"], reply.get("error"))

    def close(self) -> None:
        for button in self._buttons:
            try:
                button.close()
            except Exception:  # noqa: BLE001
                pass
        self._buttons.clear()
