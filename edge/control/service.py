"""Starts and stops the control front ends the config asks for: socket, page, buttons, MQTT."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from moodbox.config import Config
from moodbox.control.core import ControlCore
from moodbox.mood import FollowedMood

logger = logging.getLogger(__name__)


class FrontEnd(Protocol):
    def close(self) -> None: ...


@dataclass
class FrontEnds:
    running: list[FrontEnd] = field(default_factory=list)

    @classmethod
    def start(cls, cfg: Config, core: ControlCore,
              follow: FollowedMood | None = None) -> "FrontEnds":
        """Each front end that fails to start is logged; the music plays on without it.
        `follow` gets the mood of the box named in mqtt.follow."""
        out = cls()
        if cfg.control.enabled:
            from moodbox.control.socket import ControlSocket, server_socket_path

            sock = ControlSocket(server_socket_path(cfg.control), core)
            if sock.start():
                out.running.append(sock)
        if cfg.web.enabled:
            from moodbox.control.web import WebPage

            page = WebPage(cfg.web, core)
            if page.start():
                out.running.append(page)
        if cfg.buttons.enabled:
            from moodbox.control.buttons import Buttons

            buttons = Buttons(cfg.buttons, core)
            if buttons.start():
                out.running.append(buttons)
        if cfg.mqtt.enabled:
            from moodbox.control.mqtt import MqttFrontEnd

            mqtt = MqttFrontEnd(cfg.mqtt, core, cfg.player.volume, follow)
            if mqtt.start():
                out.running.append(mqtt)
        return out

    def close(self) -> None:
        for front_end in self.running:
            try:
                front_end.close()
            except Exception:  # noqa: BLE001 (stopping must go on)
                logger.exception("closing %s", type(front_end).__name__)
        self.running.clear()
