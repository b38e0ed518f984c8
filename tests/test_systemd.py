"""The systemd unit passes `systemd-analyze verify` and keeps its promises."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

UNIT = REPO / "systemd" / "moodbox.service"


def unit_options() -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            opts.setdefault(key, []).append(value)
    return opts


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_unit_verifies(tmp_path):
    exe = Path(sys.executable).parent / "moodbox"
    if not exe.exists():
        pytest.skip("moodbox console script not installed (pip install -e .)")
    unit = tmp_path / "moodbox.service"
    unit.write_text(UNIT.read_text().replace("/opt/moodbox/venv/bin/moodbox", str(exe)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if "moodbox.service" in l]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr
    # the check is real: a typo in a directive is reported
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    r = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True)
    assert "WatchdogSecs" in r.stdout + r.stderr


def test_unit_matches_the_code_it_runs():
    """The unit's promises are the program's: its exit status for "do not restart", the
    command line the CLI accepts, a watchdog the daemon's pings keep alive, a stop budget
    inside systemd's timeout, and the hardening that keeps the camera and sound usable."""
    from moodbox.commands.cli import build_parser
    from moodbox.config import EX_CONFIG
    from moodbox.daemon import SHUTDOWN

    o = unit_options()
    assert o["RestartPreventExitStatus"] == [str(EX_CONFIG)]
    assert o["Type"] == ["notify"] and o["Restart"] == ["on-failure"]
    argv = o["ExecStart"][0].split()
    assert argv[0].endswith("/bin/moodbox")
    args = build_parser().parse_args(argv[1:])  # the CLI really takes this command line
    assert args.command == "run" and args.config == "/etc/moodbox/config.yaml"
    # the daemon pings every WatchdogSec/3 (moodbox.daemon), and only while frames progress
    assert int(o["WatchdogSec"][0]) >= 10
    stop_timeout = float(o.get("TimeoutStopSec", ["90"])[0])
    assert SHUTDOWN.total_s + SHUTDOWN.failsafe_grace_s < stop_timeout
    assert {"video", "audio"} <= set(o["SupplementaryGroups"][0].split())
    assert o["PrivateDevices"] == ["no"]  # camera and sound device nodes must stay visible
    assert o["ProtectSystem"] == ["strict"]  # the steady state writes nothing anyway


def test_unit_gives_the_control_socket_and_state_their_directories():
    """The daemon's default socket is the unit's RuntimeDirectory; learned skips go to its
    StateDirectory; no network unless the web drop-in lifts it."""
    import os

    from moodbox.config import ControlConfig
    from moodbox.control.learning import state_directory
    from moodbox.control.socket import default_socket_paths, server_socket_path

    o = unit_options()
    assert o["RuntimeDirectory"] == ["moodbox"] and o["StateDirectory"] == ["moodbox"]
    assert o["Group"] == ["moodbox"]  # the socket's group: users in it may steer the box
    assert o["RuntimeDirectoryMode"] == ["0750"]
    assert o["PrivateNetwork"] == ["yes"]
    env = {"RUNTIME_DIRECTORY": "/run/moodbox", "STATE_DIRECTORY": "/var/lib/moodbox"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert str(server_socket_path(ControlConfig())) == "/run/moodbox/control.sock"
        assert str(state_directory()) == "/var/lib/moodbox"
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    # a CLI run by a user (no $RUNTIME_DIRECTORY) still looks there
    assert Path("/run/moodbox/control.sock") in default_socket_paths()
    web = (REPO / "systemd" / "moodbox-web.conf").read_text()
    assert "PrivateNetwork=no" in web and "AF_INET" in web


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_unit_with_the_web_drop_in_verifies(tmp_path):
    exe = Path(sys.executable).parent / "moodbox"
    if not exe.exists():
        pytest.skip("moodbox console script not installed (pip install -e .)")
    drop_in = (REPO / "systemd" / "moodbox-web.conf").read_text().replace("[Service]\n", "")
    unit = tmp_path / "moodbox.service"
    text = UNIT.read_text().replace("/opt/moodbox/venv/bin/moodbox", str(exe))
    unit.write_text(text.replace("[Install]", drop_in + "\n[Install]"))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if "moodbox.service" in l]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


def test_open_files_limit_matches_the_connection_caps():
    """Hostile review, finding 1: the unit's LimitNOFILE= is the one moodbox/limits.py
    budgets for, far above what the page and the socket may take together."""
    from moodbox import limits

    value = unit_options()["LimitNOFILE"]
    assert value == [str(limits.UNIT_LIMIT)]
    assert limits.UNIT_LIMIT >= 8 * limits.NEEDED_FDS
    assert limits.PAGE_CONNECTIONS + limits.SOCKET_CONNECTIONS <= limits.NEEDED_FDS / 2
