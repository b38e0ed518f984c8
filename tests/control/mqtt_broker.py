"""A real mosquitto broker on a loopback port for the tests, a watching client, test certs."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def need_mosquitto() -> str:
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if exe is None:
        pytest.skip("Debian's mosquitto is not installed (apt install mosquitto)")
    return exe


def paho():
    return pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed "
                               "(pip install -e '.[test]')")


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1/localhost, made now with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (apt install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, key, csr = folder / "server.crt", folder / "server.key", folder / "server.csr"
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=moodbox test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return Tls(ca, cert, key)


class Broker:
    """mosquitto with its own config in `folder`, on HOST and a free port (kept across
    restarts), logging to folder/mosquitto.log."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls: Tls | None = None):
        self.exe = need_mosquitto()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_file = folder / "mosquitto.log"
        lines = [f"listener {self.port} {HOST}", "persistence false",
                 f"log_dest file {self.log_file}", "log_type all", "connection_messages true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read tmp
        if users:
            if shutil.which("mosquitto_passwd") is None:
                pytest.skip("mosquitto_passwd is not installed (apt install mosquitto)")
            passwd = folder / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password],
                               check=True, capture_output=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read()} {self.log}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class Watcher:
    """A client subscribed to everything: every message it sees, in order, thread-safe."""

    def __init__(self, broker: Broker, username: str | None = None, password: str | None = None,
                 ca: Path | None = None, topic: str = "#"):
        mqtt = paho()
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watcher-{id(self)}")
        if username:
            self.client.username_pw_set(username, password)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect(HOST, broker.port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def seen(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def last(self, topic: str) -> str | None:
        for t, payload, _ in reversed(self.seen()):
            if t == topic:
                return payload.decode()
        return None

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = 20.0,
                 after: int = 0) -> bool:
        """True once `topic` was seen (with `payload`, when given) among the messages from
        index `after` on."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, p, _ in self.seen()[after:]:
                if t == topic and (payload is None or p.decode(errors="replace") == payload):
                    return True
            time.sleep(0.05)
        return False

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
