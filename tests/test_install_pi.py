"""scripts/install-pi.sh picks the right pip step per OS release and fails with one clear line."""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import REPO

SCRIPT = REPO / "scripts" / "install-pi.sh"
UNIT = REPO / "systemd" / "moodbox.service"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")

RELEASES = {
    "pios-bookworm-arm64": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                            'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'),
    "pios-bookworm-armhf": ('PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nNAME="Raspbian GNU/Linux"\n'
                            'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=raspbian\nID_LIKE=debian\n'),
    "pios-trixie-arm64": ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\n'
                          'VERSION_ID="13"\nVERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nID=debian\n'),
    "debian-13-no-codename": 'PRETTY_NAME="Debian GNU/Linux 13"\nVERSION_ID="13"\nID=debian\n',
    "trixie-testing": 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\nVERSION_CODENAME=trixie\nID=debian\n',
    "ubuntu-noble": ('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
                     'VERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n'),
    "debian-bullseye": ('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_ID="11"\n'
                        'VERSION_CODENAME=bullseye\nID=debian\n'),
    "other-12": 'PRETTY_NAME="Some OS 12"\nVERSION_ID="12"\nID=someos\n',
}


def numpy_version(python: str = sys.executable) -> str | None:
    r = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('numpy'))"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def run_script(tmp_path: Path, *args: str, release: str | None = None,
               python: str = sys.executable, timeout: float = 60) -> subprocess.CompletedProcess:
    os_release = tmp_path / "os-release"
    if release is not None:
        os_release.write_text(RELEASES[release])
    env = dict(os.environ, MOODBOX_OS_RELEASE=str(os_release), MOODBOX_PYTHON=python,
               MOODBOX_PREFIX=str(tmp_path / "opt"), MOODBOX_CONF=str(tmp_path / "etc"))
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def plan(r: subprocess.CompletedProcess) -> dict[str, str]:
    assert r.returncode == 0, r.stderr
    return {k: v.strip() for k, v in (line.split(":", 1) for line in r.stdout.splitlines())}


def assert_one_line_error(r: subprocess.CompletedProcess, status: int, *words: str) -> None:
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("release", ["pios-bookworm-arm64", "pios-bookworm-armhf"])
def test_bookworm_keeps_numpy_below_2(tmp_path, release):
    p = plan(run_script(tmp_path, "--show-plan", release=release))
    assert p["os"] == "bookworm"
    assert p["constraint"] == "numpy<2"
    assert "scripts/pi-constraints.txt" in p["pip step"]


@pytest.mark.parametrize("release", ["pios-trixie-arm64", "debian-13-no-codename", "trixie-testing"])
def test_trixie_pins_numpy_to_the_installed_one(tmp_path, release):
    have = numpy_version()
    if have is None or have.startswith("1."):
        pytest.skip("the test Python needs numpy 2 to stand in for Trixie's apt numpy")
    p = plan(run_script(tmp_path, "--show-plan", release=release))
    assert p["os"] == "trixie"
    # exactly the numpy already there: pip adds no second numpy and builds nothing
    assert p["constraint"].split()[0] == f"numpy=={have}"
    assert "pi-constraints.txt" not in p["pip step"]


def test_compiled_dependencies_come_as_wheels_only(tmp_path):
    p = plan(run_script(tmp_path, "--show-plan", release="pios-bookworm-arm64"))
    only_binary = p["pip step"].split("--only-binary ")[1].split()[0].split(",")
    assert {"numpy", "opencv-python-headless", "pandas", "pygame", "ai-edge-litert"} <= set(only_binary)


@pytest.mark.parametrize("release", ["ubuntu-noble", "debian-bullseye", "other-12"])
def test_unknown_release_is_one_clear_error(tmp_path, release):
    r = run_script(tmp_path, "--show-plan", release=release)
    pretty = RELEASES[release].split('"')[1]
    assert_one_line_error(r, 3, f"unsupported OS release '{pretty}'", "--os bookworm", "--os trixie")


def test_os_option_overrides_detection(tmp_path):
    p = plan(run_script(tmp_path, "--show-plan", "--os", "bookworm", release="ubuntu-noble"))
    assert p["os"] == "bookworm"


def test_missing_os_release_names_the_way_out(tmp_path):
    r = run_script(tmp_path, "--show-plan", release=None)
    assert_one_line_error(r, 3, "os-release", "--os")


def test_trixie_without_apt_numpy_says_what_to_install(tmp_path):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)  # a Python that sees no numpy
    python = str(bare / "bin" / "python")
    if numpy_version(python) is not None:
        pytest.skip("numpy is visible even in a bare venv here")
    r = run_script(tmp_path, "--show-plan", release="pios-trixie-arm64", python=python)
    assert_one_line_error(r, 1, "sudo apt install python3-numpy")


@pytest.mark.parametrize("args, words", [
    (["--os", "fedora"], ["--os must be bookworm or trixie"]),
    (["--venv-only"], ["--venv-only needs a directory"]),
    (["--purge"], ["--purge goes with --uninstall"]),
])
def test_bad_options_exit_2(tmp_path, args, words):
    assert_one_line_error(run_script(tmp_path, *args, release="pios-bookworm-arm64"), 2, *words)


def test_venv_only_refuses_a_folder_that_is_not_a_venv(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "song.ogg").write_bytes(b"OggS")
    r = run_script(tmp_path, "--venv-only", str(folder), release="pios-bookworm-arm64")
    assert_one_line_error(r, 1, "is not a venv")
    assert (folder / "song.ogg").read_bytes() == b"OggS" and len(list(folder.iterdir())) == 1


def test_unknown_option_prints_usage(tmp_path):
    r = run_script(tmp_path, "--frobnicate")
    assert r.returncode == 2 and "unknown option '--frobnicate'" in r.stderr and "--venv-only DIR" in r.stderr


def test_unit_documentation_points_at_the_installed_readme():
    docs = [l.split("=", 1)[1] for l in UNIT.read_text().splitlines() if l.startswith("Documentation=")]
    assert docs == ["file:///opt/moodbox/README.md"]
    script = SCRIPT.read_text()
    # the installer puts README.md there and rewrites /opt/moodbox/ for another prefix
    assert 'install -m 644 "$SRC/README.md" "$PREFIX/README.md"' in script
    assert 's#/opt/moodbox/#$PREFIX/#g' in script


@pytest.mark.parametrize("option", ["--enable-web", "--enable-mqtt"])
def test_the_network_option_serves_page_and_mqtt_and_the_venv_gets_paho(tmp_path, option):
    p = plan(run_script(tmp_path, "--show-plan", option, release="pios-trixie-arm64"))
    assert p["pip step"].endswith("[catalog,mqtt]")
    script = SCRIPT.read_text()
    assert "--enable-web|--enable-mqtt) WEB=1" in script
    assert "MQTT" in (REPO / "systemd" / "moodbox-web.conf").read_text()


def test_venv_only_installs_a_working_moodbox_without_a_second_numpy(tmp_path):
    """The real pip step (Trixie's: numpy pinned to the one the base Python has)."""
    have = numpy_version()
    if have is None or have.startswith("1."):
        pytest.skip("the test Python needs numpy 2 to stand in for Trixie's apt numpy")
    needed = ["opencv-python-headless", "pygame", "pandas", "pyyaml", "mutagen", "paho-mqtt"]
    needed += ["ai-edge-litert"] if sys.version_info >= (3, 10) else ["tflite-runtime"]
    missing = [d for d in needed if not _installed(d)]
    if missing:
        pytest.skip(f"not installed here, pip would download them: {missing}")
    target = tmp_path / "venv"
    had_build = (REPO / "build").exists()
    r = run_script(tmp_path, "--venv-only", str(target), release="pios-trixie-arm64", timeout=300)
    if r.returncode != 0 and any(s in r.stdout + r.stderr for s in
                                 ("NewConnectionError", "Could not fetch", "No matching distribution")):
        pytest.skip("pip needs the network to build the package here")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"moodbox installed into {target} (trixie)" in r.stdout
    site = next((target / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("numpy*")), "a second numpy in the venv"
    h = subprocess.run([str(target / "bin" / "moodbox"), "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "classify" in h.stdout
    # built from a clean copy: no build/ left in the checkout (a stale one ships old modules)
    assert had_build or not (REPO / "build").exists()


def _installed(dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def test_a_fresh_install_ends_with_the_demo_tracks_and_sudo_note(tmp_path):
    """The last lines of a fresh install (the function the script ends with, run by bash)."""
    script = SCRIPT.read_text()
    assert script.rstrip().endswith('[ "$MODE" = upgrade ] || first_minutes_note')
    body = script[script.index("first_minutes_note() {"):]
    body = body[:body.index("\n}\n") + 3]
    r = subprocess.run(["bash", "-c", body + "CONF=/etc/moodbox; first_minutes_note"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "the bundled demo tracks play until you set your own playlists" in r.stdout
    assert "edit it with sudo (sudoedit /etc/moodbox/config.yaml)" in r.stdout
    assert "sudo systemctl reload moodbox" in r.stdout


# ------------------------------------------------------------------ hostile review, finding 8

def owner_files(tmp_path: Path) -> dict[Path, str]:
    """What an owner keeps where moodbox may or may not have been installed."""
    made = {tmp_path / "opt" / "README.md": "the owner's readme",
            tmp_path / "opt" / "venv" / "mine.txt": "the owner's notes",
            tmp_path / "opt" / "venv" / "pyvenv.cfg": "home = /usr/bin",
            tmp_path / "etc" / "config.yaml": "camera: {}",
            tmp_path / "state" / "learned-skips.json": "{}"}
    for path, text in made.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return made


def uninstall(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MOODBOX_PREFIX=str(tmp_path / "opt"), MOODBOX_CONF=str(tmp_path / "etc"),
               MOODBOX_STATE=str(tmp_path / "state"), MOODBOX_OS_RELEASE=str(tmp_path / "none"))
    return subprocess.run(["bash", str(SCRIPT), "--uninstall", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_uninstall_purge_refuses_where_moodbox_was_never_installed(tmp_path):
    """The reviewer's case: a prefix with a README.md, a venv/ holding their file and a
    config.yaml, but no install record: one line, exit 1, every file still there."""
    made = owner_files(tmp_path)
    r = uninstall(tmp_path, "--purge")
    assert_one_line_error(r, 1, "no install record", "nothing was removed")
    assert all(p.read_text() == text for p, text in made.items())


def test_uninstall_refuses_a_record_that_lists_what_moodbox_never_installs(tmp_path):
    made = owner_files(tmp_path)
    (tmp_path / "opt" / ".moodbox-installed").write_text(
        f"tree {tmp_path / 'opt' / 'venv'}\ntree {tmp_path}\n")
    r = uninstall(tmp_path, "--purge")
    assert_one_line_error(r, 1, "never installs", "nothing was removed")
    assert all(p.read_text() == text for p, text in made.items())


@pytest.mark.skipif(os.geteuid() != 0, reason="--uninstall runs as root")
def test_uninstall_removes_exactly_what_the_record_lists(tmp_path):
    made = owner_files(tmp_path)
    (tmp_path / "opt" / "notes.txt").write_text("also the owner's")
    (tmp_path / "etc" / "mine.yaml").write_text("kept")
    (tmp_path / "opt" / ".moodbox-installed").write_text(
        "# installed by moodbox's scripts/install-pi.sh\n"
        f"tree {tmp_path / 'opt' / 'venv'}\nfile {tmp_path / 'etc' / 'config.yaml'}\n")
    r = uninstall(tmp_path, "--purge")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "opt" / "venv").exists() and not (tmp_path / "etc" / "config.yaml").exists()
    # not in the record: the README (the owner's, not ours), the owner's other files
    assert (tmp_path / "opt" / "README.md").read_text() == made[tmp_path / "opt" / "README.md"]
    assert (tmp_path / "opt" / "notes.txt").exists() and (tmp_path / "etc" / "mine.yaml").exists()
    assert not (tmp_path / "opt" / ".moodbox-installed").exists()
    assert "kept the other files" in r.stdout
