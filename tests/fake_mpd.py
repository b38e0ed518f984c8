"""FakeMpd: a python-mpd2 MPDClient double over an in-memory MPD, with fault hooks.

The real tests start Debian's mpd; this double drives MpdBackend where mpd is not
installed and where a test needs its own clock: every client sees one FakeMpdServer
(queue, state, volume, stored playlists, library) whose hooks stand for the world:
`go_down()` / `come_back()` (MPD stopped or restarted), `other_client_plays(file)`,
`other_client_volume(v)`, `finish_track()`, and `volumes` records every setvol.
"""
from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass, field

import mpd  # the real library's exception classes: the backend catches exactly these


@dataclass
class FakeMpdServer:
    library: set[str] = field(default_factory=set)
    music_directory: str = "/music"
    password: str = ""
    up: bool = True
    queue: list[tuple[str, str]] = field(default_factory=list)  # (id, file)
    current: str = ""          # the playing queue id; "" after the queue ran out
    state: str = "stop"
    elapsed: float = 0.0
    volume: int = 100
    options: dict = field(default_factory=lambda: {"random": "0", "repeat": "0",
                                                   "single": "0", "consume": "0"})
    stored: dict = field(default_factory=dict)
    version: int = 1
    next_id: int = 1
    connects: int = 0
    volumes: list[int] = field(default_factory=list)
    clients: list["FakeMpdClient"] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cond = threading.Condition()

    # --- what a client does -------------------------------------------
    def changed(self, *subsystems: str) -> None:
        with self.cond:
            for c in self.clients:
                c.events.update(subsystems)
            self.cond.notify_all()

    def status(self) -> dict:
        s = {"volume": str(self.volume if self.volume >= 0 else -1), "playlist": str(self.version),
             "playlistlength": str(len(self.queue)), "state": self.state, **self.options}
        if self.current:
            s.update(songid=self.current, elapsed=f"{self.elapsed:.3f}",
                     song=str([i for i, _ in self.queue].index(self.current)))
        return s

    # --- fault hooks (the world around moodbox) ------------------------------
    def go_down(self) -> None:
        self.up = False
        for c in list(self.clients):
            c.drop()

    def come_back(self) -> None:
        self.up = True

    def other_client_plays(self, file: str) -> None:
        self.queue = [(str(self.next_id), file)]
        self.current, self.state, self.elapsed = str(self.next_id), "play", 0.0
        self.next_id += 1
        self.version += 2
        self.changed("playlist", "player")

    def other_client_volume(self, volume: int) -> None:
        self.volume = volume
        self.changed("mixer")

    def finish_track(self) -> None:
        self.current, self.state, self.elapsed = "", "stop", 0.0
        self.changed("player")

    def advance(self, seconds: float) -> None:
        if self.state == "play":
            self.elapsed += seconds


class FakeMpdClient:
    """The subset of mpd.MPDClient that MpdBackend uses, on a FakeMpdServer."""

    mpd_version = "0.23.5"

    def __init__(self, server: FakeMpdServer):
        self.server = server
        self.timeout = None
        self.events: set[str] = set()
        self._sock: socket.socket | None = None
        self._peer: socket.socket | None = None
        self._authorized = False

    # --- the connection ---------------------------------------------------
    def connect(self, host: str, port: int | None = None) -> None:
        self.server.connects += 1
        if not self.server.up:
            raise ConnectionRefusedError(111, "Connection refused")
        self._sock, self._peer = socket.socketpair()
        self._authorized = not self.server.password
        self.server.clients.append(self)

    def drop(self) -> None:
        if self._peer is not None:
            self._peer.close()  # our end reads EOF, as from a server that went away
            self._peer = None
        with self.server.cond:
            self.server.cond.notify_all()

    def disconnect(self) -> None:
        self.drop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self in self.server.clients:
            self.server.clients.remove(self)

    def fileno(self) -> int:
        if self._sock is None:
            raise mpd.ConnectionError("Not connected")
        return self._sock.fileno()

    def _need(self) -> FakeMpdServer:
        if self._sock is None or self._peer is None or not self.server.up:
            raise mpd.ConnectionError("Connection lost while reading line")
        return self.server

    def _closed(self) -> bool:
        if self._sock is None or self._peer is None:
            return True
        ready, _, _ = select.select([self._sock], [], [], 0)
        return bool(ready) and self._sock.recv(1, socket.MSG_PEEK) == b""

    # --- commands -----------------------------------------------------------
    def password(self, text: str) -> None:
        self._need()
        if text != self.server.password:
            raise mpd.CommandError("[3@0] {password} incorrect password")
        self._authorized = True

    def commands(self) -> list[str]:
        self._need()
        allowed = ["status", "play", "playid", "addid", "clear", "stop", "pause", "setvol",
                   "config", "currentsong", "listplaylist", "listplaylists", "lsinfo", "idle"]
        return allowed if self._authorized else ["commands", "password"]

    def config(self) -> dict:
        self._need()
        return {"music_directory": self.server.music_directory}

    def status(self) -> dict:
        return self._need().status()

    def currentsong(self) -> dict:
        s = self._need()
        for songid, file in s.queue:
            if songid == s.current:
                stem = file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                return {"file": file, "id": songid, "title": stem.title(),
                        "artist": "Fake Artist", "album": ["Fake Album", "Fake Album (disc)"]}
        return {}

    def clear(self) -> None:
        s = self._need()
        s.queue, s.current, s.state = [], "", "stop"
        s.version += 1
        s.changed("playlist", "player")

    def addid(self, uri: str) -> str:
        s = self._need()
        if uri not in s.library and not uri.startswith("/"):
            raise mpd.CommandError(f"[50@0] {{addid}} No such song: {uri}")
        songid = str(s.next_id)
        s.next_id += 1
        s.queue.append((songid, uri))
        s.version += 1
        s.changed("playlist")
        return songid

    def playid(self, songid: str) -> None:
        s = self._need()
        s.current, s.state, s.elapsed = str(songid), "play", 0.0
        s.changed("player")

    def stop(self) -> None:
        s = self._need()
        s.state = "stop"
        s.changed("player")

    def pause(self, on: int) -> None:
        s = self._need()
        if s.state != "stop":
            s.state = "pause" if on else "play"
            s.changed("player")

    def setvol(self, volume: int) -> None:
        s = self._need()
        if s.volume < 0:
            raise mpd.CommandError("[52@0] {setvol} problems setting volume")
        s.volume = int(volume)
        s.volumes.append(int(volume))
        s.changed("mixer")

    def _option(self, name: str, on: int) -> None:
        s = self._need()
        s.options[name] = str(int(on))
        s.changed("options")

    def random(self, on: int) -> None:
        self._option("random", on)

    def repeat(self, on: int) -> None:
        self._option("repeat", on)

    def single(self, on: int) -> None:
        self._option("single", on)

    def consume(self, on: int) -> None:
        self._option("consume", on)

    def listplaylist(self, name: str) -> list[str]:
        s = self._need()
        if name not in s.stored:
            raise mpd.CommandError(f"[50@0] {{listplaylist}} No such playlist")
        return list(s.stored[name])

    def listplaylists(self) -> list[dict]:
        return [{"playlist": n} for n in self._need().stored]

    def lsinfo(self, folder: str = "") -> list[dict]:
        s = self._need()
        prefix = f"{folder}/" if folder else ""
        return [{"file": f} for f in sorted(s.library)
                if f.startswith(prefix) and "/" not in f[len(prefix):]]

    def idle(self, *subsystems: str) -> list[str]:
        s = self.server
        with s.cond:
            while True:
                if self._closed() or not s.up:
                    raise mpd.ConnectionError("Connection lost while reading line")
                hits = self.events & set(subsystems or self.events)
                if hits:
                    self.events -= hits
                    return sorted(hits)
                s.cond.wait(0.05)
