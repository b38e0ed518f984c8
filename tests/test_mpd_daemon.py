"""End to end with a real Debian `mpd`: `moodbox run` plays through it, survives its
restart, and `moodbox check` reports the server and the library."""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from helpers import TONES, make_setup, run_cli, write_tone
from moodbox.probe import DaemonProcess
from mpd_server import MpdServer, require_mpd


def mpd_setup(tmp_path: Path, photo: Path, **overrides) -> tuple[Path, MpdServer]:
    """make_setup's tone playlists, in the music folder of a real mpd on a Unix socket."""
    require_mpd()
    config = make_setup(tmp_path, photo, **overrides)
    server = MpdServer(tmp_path / "mpd", tmp_path)
    server.root.mkdir()
    cfg = yaml.safe_load(config.read_text())
    cfg["player"].update({"output": "mpd", "audio_retry_s": 0.5})
    cfg["mpd"] = {"host": server.socket}
    config.write_text(yaml.safe_dump(cfg))
    return config, server


def current(server: MpdServer) -> tuple[str, str]:
    c = server.client()
    try:
        return c.status()["state"], c.currentsong().get("file", "")
    finally:
        c.disconnect()


def wait(check, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 (mpd restarting)
            pass
        time.sleep(0.1)
    return False


def test_the_daemon_plays_through_mpd_and_survives_its_restart(tmp_path, astronaut):
    config, server = mpd_setup(tmp_path, astronaut)
    server.start()
    d = DaemonProcess(["--config", str(config)], cwd=tmp_path)
    try:
        assert d.wait_for("mood -> happy", 40), d.log
        assert wait(lambda: current(server) == ("play", "happy/happy.wav"), 10), d.log
        lst = server.listener
        assert lst.wait_for(lambda: abs(lst.tone(time.monotonic() - 0.6) - TONES["happy"]) < 10)
        out = run_cli(["status", "--json", "--config", str(config)])
        status = json.loads(out.stdout)
        assert status["track"]["path"].endswith("happy.wav") and status["waiting"] is None
        server.restart(down_s=1.0)
        assert d.wait_for("MPD is back", 20), d.log
        assert wait(lambda: current(server) == ("play", "happy/happy.wav"), 10), d.log
        assert d.log.count("MPD connection lost") == 1, d.log
        other = server.client()  # someone picks music on their phone
        other.clear()
        other.add("favourites/favourites.wav")
        other.play()
        other.disconnect()
        assert wait(lambda: "moodbox waits" in run_cli(["status", "--config", str(config)]).stdout, 10)
        out = run_cli(["status", "--config", str(config)]).stdout
        assert "favourites.wav" in out and "(chosen in an MPD client) [waiting]" in out, out
        time.sleep(1.0)
        assert current(server) == ("play", "favourites/favourites.wav")
        r = run_cli(["release", "--config", str(config)])
        assert r.returncode == 0, r.stderr
        assert wait(lambda: current(server) == ("play", "happy/happy.wav"), 10), d.log
        code, took = d.stop()
        assert code == 0 and took < 5.0, d.log
        assert current(server)[0] == "stop"  # what moodbox started stops with it
        assert "Traceback" not in d.log
    finally:
        d.close()
        server.close()


def test_check_reports_the_server_its_version_and_the_library(tmp_path, astronaut):
    config, server = mpd_setup(tmp_path, astronaut)
    cfg = yaml.safe_load(config.read_text())
    cfg["playlists"]["sad"]["sources"].append("mpd:Missing")
    config.write_text(yaml.safe_dump(cfg))
    server.output = "null"
    server.start()
    try:
        write_tone(tmp_path / "happy" / "new.wav", 500, 0.5)  # after MPD's scan
        r = run_cli(["check", "--config", str(config)])
        out = r.stdout
        assert "[  ok] mpd        MPD 0.2" in out, out + r.stderr
        assert f"music directory {tmp_path}" in out
        assert "playlist favourites: all 1 file(s) in MPD's library" in out
        assert "playlist happy: 1 of 2 file(s) not in MPD's library" in out
        assert "happy/new.wav is not in MPD's library (new? run mpc update)" in out
        assert "[warn] mpd        playlist sad: no MPD playlist 'Missing' (mpc lsplaylists)" in out
        assert "Traceback" not in out + r.stderr
    finally:
        server.close()
    r = run_cli(["check", "--config", str(config)])  # MPD gone: a warning, not a crash
    assert "[warn] mpd        MPD at" in r.stdout and "is it running?" in r.stdout
