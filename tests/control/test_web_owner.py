"""The phone page when things go wrong: a wrong token shows the form again with the error,
a session outlives a daemon restart, the page says when the box is unreachable and
recovers by itself (a real chromium where installed), and it says when music follows."""
from __future__ import annotations

import shutil
import signal
import tempfile
import time

import pytest

from browser import CHROMEDRIVER, CHROMIUM, Browser, free_port
from helpers import make_setup, write_tone
from moodbox.config import WebConfig
from moodbox.control.core import VisionView, follow_text
from moodbox.control.web import SESSION_S, WRONG_TOKEN, Sessions, WebPage
from moodbox.probe import DaemonProcess
from test_core import rig  # noqa: F401 (the fixture: a core on a FakeAudio player)
from test_web import BEARER, TOKEN, fetch

LOGIN_SHOWN = '<section id="login">'


@pytest.fixture()
def page(rig):  # noqa: F811
    core, player, fake, clock = rig
    web = WebPage(WebConfig(enabled=True, listen="127.0.0.1:0", token=TOKEN), core)
    assert web.start()
    yield f"http://127.0.0.1:{web.port}", core
    web.close()


def test_a_wrong_token_shows_the_form_again_with_the_error(page):
    base, _ = page
    for method, url, body in (("GET", f"{base}/?token=wrong", None),
                              ("POST", f"{base}/login", None)):
        if method == "POST":
            import urllib.request

            req = urllib.request.Request(url, data=b"token=wrong", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                urllib.request.urlopen(req, timeout=10)
                raise AssertionError("a wrong token was accepted")
            except urllib.error.HTTPError as e:
                status, html, headers = e.code, e.read().decode(), dict(e.headers)
        else:
            status, html, headers = fetch(url)
        assert status == 401 and "Set-Cookie" not in headers
        assert headers["Content-Type"].startswith("text/html")
        assert LOGIN_SHOWN in html and WRONG_TOKEN in html  # the form, and why, with no script
        assert '<form method="post" action="/login">' in html
    status, html, _ = fetch(f"{base}/")
    assert status == 200 and LOGIN_SHOWN not in html and WRONG_TOKEN not in html


def test_a_page_session_outlives_a_restart_and_ends_with_a_new_token():
    now = time.time()
    sid = Sessions(TOKEN.encode()).new(now)
    assert Sessions(TOKEN.encode()).valid(sid, now + 60)      # a new daemon, the same token
    assert not Sessions(b"another-token-entirely").valid(sid, now)
    assert not Sessions(TOKEN.encode()).valid(sid, now + SESSION_S + 1)
    issued, nonce, sig = sid.split(".")
    other_last = "1" if sig.endswith("0") else "0"    # a signature one character off, never the same
    for forged in (f"{int(now) + 10**6}.{nonce}.{sig}", f"{issued}.x{nonce}.{sig}",
                   f"{issued}.{nonce}.{sig[:-1]}{other_last}", "", "a.b.c", "1.2", "." * 3,
                   "9" * 40 + ".a.b"):
        assert not Sessions(TOKEN.encode()).valid(forged, now), forged


def test_status_says_when_the_music_follows_a_new_emotion(page):
    base, core = page
    view = VisionView("happy", 0.8, 1, 5.0, "open", dwell_s=3.0, min_switch_s=20.0,
                      next_switch_s=12.2)
    text = follow_text(view, privacy=False)
    assert text == ("the music follows a new emotion once it has led for 3 s, at most one "
                    "change every 20 s (the next in 12 s at the earliest)")
    assert "led for 2 min" in follow_text(VisionView(dwell_s=120.0), False)
    assert "camera is off" in follow_text(view, privacy=True)
    status, reply, _ = fetch(f"{base}/api/status", headers=BEARER)
    assert status == 200 and "follow_text" in reply["status"]
    assert set(reply["status"]["follow"]) == {"dwell_s", "min_switch_interval_s",
                                              "next_switch_in_s"}


def test_cli_status_has_the_follow_line():
    from moodbox.control.cli import summary

    s = {"mood": "happy", "state": "playing", "volume": 0.5, "max_volume": 0.9,
         "follow_text": follow_text(VisionView(dwell_s=3.0, min_switch_s=20.0), False)}
    assert ("when     the music follows a new emotion once it has led for 3 s, at most one "
            "change every 20 s") in summary(s)


# --- a real browser on the real daemon ---------------------------------------------------
@pytest.fixture()
def web_box(tmp_path, astronaut):
    port = free_port()
    sock_dir = tempfile.mkdtemp(prefix="mbx")
    config = make_setup(tmp_path, astronaut, control__socket=f"{sock_dir}/c.sock",
                        web__enabled=True, web__listen=f"127.0.0.1:{port}", web__token=TOKEN)
    write_tone(tmp_path / "happy" / "happy.wav", 880, 40.0)
    started: list[DaemonProcess] = []

    def start() -> DaemonProcess:
        d = DaemonProcess(["--config", str(config)], audio_file=tmp_path / "audio.raw",
                          extra_env={"STATE_DIRECTORY": str(tmp_path / "state")}, cwd=tmp_path)
        started.append(d)
        return d

    yield start, f"http://127.0.0.1:{port}"
    for d in started:
        d.close()
    shutil.rmtree(sock_dir, ignore_errors=True)


def disabled(browser: Browser, css: str) -> bool:
    return bool(browser.script(f"return document.querySelector('{css}').disabled"))


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="chromium and chromium-driver are not installed (apt install chromium chromium-driver)")
def test_page_says_the_box_is_gone_greys_out_and_comes_back_by_itself(tmp_path, request):
    browser = Browser(tmp_path / "profile")
    start, base = request.getfixturevalue("web_box")
    d = start()
    try:
        assert d.wait_for("from happy (mood happy)", 40), d.log
        browser.get(f"{base}/?token=wrong")  # the form again, with the error
        assert WRONG_TOKEN in browser.wait_text("#login-error", lambda t: WRONG_TOKEN in t)
        browser.get(f"{base}/?token={TOKEN}")
        assert browser.wait_text("#track", lambda t: t == "happy.wav", 20) == "happy.wav"
        assert "once it has led for" in browser.text("#follow")
        assert not disabled(browser, "#skip")
        # the daemon stops: the page says so plainly and greys its buttons
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(15)
        shown = browser.wait_text("#offline", lambda t: "not answering" in t, 20)
        assert "The box is not answering" in shown and "Trying again" in shown
        assert disabled(browser, "#skip") and disabled(browser, "#camera-switch")
        assert browser.script("return document.getElementById('panel').hidden") is False
        # it is back: the page recovers by itself, no new token needed
        d2 = start()
        assert d2.wait_for("moodbox running", 40), d2.log
        assert browser.wait_text("#offline", lambda t: t == "", 30) == ""
        assert not disabled(browser, "#skip")
        assert browser.script("return document.getElementById('login').hidden") is True
        # the privacy button
        browser.click("#camera-switch")
        assert "camera off (privacy)" in browser.wait_text(
            "#camera", lambda t: "privacy" in t, 15)
        assert "owner: camera off" in d2.log
    finally:
        browser.close()
