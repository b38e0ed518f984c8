"""The phone page: its API's token rule against the control core (fast, no browser), then
the real daemon's page in a real headless chromium (skipped where chromium is absent)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from moodbox.config import WebConfig
from moodbox.control.web import WebPage
from browser import CHROMEDRIVER, CHROMIUM, Browser, free_port
from helpers import REPO, make_setup, write_tone
from moodbox.probe import DaemonProcess
from test_core import rig  # noqa: F401 (the fixture: a core on a FakeAudio player)

TOKEN = "correct-horse-battery-staple"


def fetch(url: str, method: str = "GET", body: dict | None = None,
            headers: dict | None = None) -> tuple[int, dict | str, dict]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            status, raw, hdrs = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(), hdrs


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture()
def page(rig):  # noqa: F811
    core, player, fake, clock = rig
    web = WebPage(WebConfig(enabled=True, listen="127.0.0.1:0", token=TOKEN), core)
    assert web.start()
    yield f"http://127.0.0.1:{web.port}", player
    web.close()


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_every_change_needs_the_token_and_a_wrong_one_changes_nothing(page):
    base, player = page
    before = (player.track, player.state, player.owner_volume, player.hold, player.owner_paused)
    for path, body in (("skip", {}), ("pause", {}), ("volume", {"level": 0.1}),
                       ("hold", {"playlist": "calm"}), ("release", {}), ("resume", {})):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": TOKEN}, {"Cookie": "moodbox_session=made-up",
                                                   "X-Moodbox-Page": "1"}):
            status, reply, _ = fetch(f"{base}/api/{path}", "POST", body, headers)
            assert status == 401 and reply == {"ok": False, "error": "token required"}, (path, headers)
    assert (player.track, player.state, player.owner_volume, player.hold, player.owner_paused) == before
    assert fetch(f"{base}/api/status")[0] == 401
    # the right token works
    status, reply, _ = fetch(f"{base}/api/volume", "POST", {"level": 0.3}, BEARER)
    assert status == 200 and reply["ok"] and player.owner_volume == 0.3
    status, reply, _ = fetch(f"{base}/api/status", headers=BEARER)
    assert status == 200 and reply["status"]["owner_volume"] == 0.3
    status, reply, _ = fetch(f"{base}/api/hold", "POST", {"playlist": "nope"}, BEARER)
    assert status == 400 and "no playlist" in reply["error"]


def test_the_page_session_needs_its_header_and_no_image_is_served(page):
    base, player = page
    status, _, headers = fetch(f"{base}/?token=wrong")
    assert status == 401 and "Set-Cookie" not in headers
    status, _, headers = fetch(f"{base}/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert fetch(f"{base}/api/status", headers={"Cookie": cookie})[0] == 200
    # a cross-site form could send the cookie but not the header: refused
    assert fetch(f"{base}/api/pause", "POST", {}, {"Cookie": cookie})[0] == 401
    assert not player.owner_paused
    assert fetch(f"{base}/api/pause", "POST", {}, {"Cookie": cookie, "X-Moodbox-Page": "1"})[0] == 200
    assert player.owner_paused
    status, html, headers = fetch(f"{base}/")
    assert status == 200 and "<title>moodbox</title>" in html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for path in ("/frame.jpg", "/snapshot", "/camera", "/api/frame", "/static/../web.py"):
        assert fetch(f"{base}{path}", headers=BEARER)[0] == 404
    assert "<img" not in html and "image/" not in (REPO / "edge" / "control" / "web.py").read_text()


@pytest.fixture()
def web_daemon(tmp_path, astronaut):
    port = free_port()
    sock_dir = tempfile.mkdtemp(prefix="mbx")
    config = make_setup(tmp_path, astronaut, control__socket=f"{sock_dir}/c.sock",
                        web__enabled=True, web__listen=f"127.0.0.1:{port}", web__token=TOKEN)
    for name, hz in (("happy.wav", 880), ("other.wav", 1200)):  # long: only a skip moves on
        write_tone(tmp_path / "happy" / name, hz, 40.0)
    d = DaemonProcess(["--config", str(config)], audio_file=tmp_path / "audio.raw",
                      extra_env={"STATE_DIRECTORY": str(tmp_path / "state")}, cwd=tmp_path)
    yield d, f"http://127.0.0.1:{port}"
    d.close()
    shutil.rmtree(sock_dir, ignore_errors=True)


def status(base: str) -> dict:
    code, reply, _ = fetch(f"{base}/api/status", headers=BEARER)
    assert code == 200, reply
    return reply["status"]


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="chromium and chromium-driver are not installed (apt install chromium chromium-driver)")
def test_page_in_a_real_browser_shows_the_track_and_skips(tmp_path, request):
    browser = Browser(tmp_path / "profile")  # first: chromium starts slowly on a busy machine
    d, base = request.getfixturevalue("web_daemon")
    assert d.wait_for("from happy (mood happy)", 30), d.log
    first = status(base)["track"]["name"]
    # the real daemon's API: no token or a wrong one -> 401 and nothing changes
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert fetch(f"{base}/api/skip", "POST", {}, headers)[0] == 401
        assert fetch(f"{base}/api/volume", "POST", {"level": 0.1}, headers)[0] == 401
    time.sleep(0.5)
    s = status(base)
    assert s["track"]["name"] == first and s["owner_volume"] is None and "owner:" not in d.log
    try:
        browser.get(f"{base}/?token={TOKEN}")  # the link sets the page's session cookie
        shown = browser.wait_text("#track", lambda t: t == first, timeout=20)
        assert shown == first, browser.script("return [location.href, document.body.innerText]")
        assert browser.text("#playlist") == "from happy"
        assert "mood happy" in browser.text("#why")
        browser.click("#skip")
        end = time.monotonic() + 10
        while status(base)["track"]["name"] == first and time.monotonic() < end:
            time.sleep(0.2)
        second = status(base)["track"]["name"]
        assert second != first
        assert browser.wait_text("#track", lambda t: t == second) == second
        assert "skip" in d.log and f"owner: skip {first}" in d.log
        # the screenshot shown in README (phone-sized viewport)
        time.sleep(2.2)  # one more poll: the live dot is green, the learned line is there
        png = browser.screenshot()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / "phone-page.png").write_bytes(png)
        if os.environ.get("MOODBOX_UPDATE_SCREENSHOT"):
            (REPO / "docs" / "phone-page.png").write_bytes(png)
    finally:
        browser.close()
    code, _ = d.stop()
    assert code == 0 and "Traceback" not in d.log
