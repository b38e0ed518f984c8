"""A tiny W3C WebDriver client (urllib only) for Debian's chromium + chromium-driver."""
from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Headless chromium on a phone-sized viewport (390x844 CSS px, 2x)."""

    def __init__(self, profile: Path, width: int = 390, height: int = 844):
        port = free_port()
        self._driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 20
        while True:
            try:
                self._http("GET", "/status")
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": FLAGS + [f"--user-data-dir={profile}"],
            "mobileEmulation": {"deviceMetrics": {"width": width, "height": height,
                                                  "pixelRatio": 2.0}}}}}}
        self._session = self._http("POST", "/session", caps)["sessionId"]

    def _http(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"] if method != "GET" or path != "/status" else {}

    def _cmd(self, method: str, path: str, body: dict | None = None):
        return self._http(method, f"/session/{self._session}{path}", body)

    def get(self, url: str) -> None:
        self._cmd("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        found = self._cmd("POST", "/element", {"using": "css selector", "value": css})
        return found[ELEMENT]

    def click(self, css: str) -> None:
        self._cmd("POST", f"/element/{self.find(css)}/click", {})

    def text(self, css: str) -> str:
        return self._cmd("GET", f"/element/{self.find(css)}/text")

    def script(self, js: str):
        return self._cmd("POST", "/execute/sync", {"script": js, "args": []})

    def screenshot(self) -> bytes:
        return base64.b64decode(self._cmd("GET", "/screenshot"))

    def wait_text(self, css: str, check, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while True:
            try:
                text = self.text(css)
            except Exception:  # noqa: BLE001 (not there yet)
                text = ""
            if check(text) or time.monotonic() > end:
                return text
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self._cmd("DELETE", "")
        except Exception:  # noqa: BLE001
            pass
        self._driver.terminate()
        try:
            self._driver.wait(5)
        except subprocess.TimeoutExpired:
            self._driver.kill()
