#!/usr/bin/env bash
# Runs inside an arm64 Debian root (sudo ./workshop/pi-arm64-check.sh --appliance): the
# whole install-pi.sh life cycle as an owner meets it, except systemd, which does not run
# in a chroot: install, a config edit, --upgrade (edit kept, config.yaml.dist refreshed),
# --uninstall (config and music kept), --uninstall --purge (music still kept).
set -euo pipefail
SUITE=${1:?usage: pi-appliance-check.sh bookworm|trixie}
fail() { echo "FAIL: $*"; exit 1; }
MUSIC=/srv/music/calm
# a minimal root lacks what every Raspberry Pi OS has: useradd (passwd)
PATH=$PATH:/usr/sbin:/sbin
command -v useradd >/dev/null || { apt-get install -y -q passwd >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q passwd >/dev/null; }; }
mkdir -p "$MUSIC" && cp playlists/calm/*.ogg "$MUSIC/"

echo "== install"
bash scripts/install-pi.sh --no-start | tail -n 4
[ "$(readlink /usr/local/bin/moodbox)" = /opt/moodbox/venv/bin/moodbox ] || fail "no moodbox link on PATH"
PATH=/usr/local/bin:/usr/bin:/bin moodbox --version
id moodbox
grep -q "^Documentation=file:///opt/moodbox/README.md" /etc/systemd/system/moodbox.service || fail "Documentation="
[ -s /opt/moodbox/README.md ] || fail "README not installed"
[ ! -e build ] || fail "the checkout got a build/ folder"

echo "== the owner edits the config, then --upgrade"
echo "# the owner's edit" >> /etc/moodbox/config.yaml
echo "stale" > /etc/moodbox/config.yaml.dist
bash scripts/install-pi.sh --upgrade | tail -n 3
grep -q "the owner's edit" /etc/moodbox/config.yaml || fail "--upgrade lost the owner's config"
cmp -s config.yaml /etc/moodbox/config.yaml.dist || fail "--upgrade did not refresh config.yaml.dist"
/opt/moodbox/venv/bin/moodbox --version

echo "== --uninstall"
bash scripts/install-pi.sh --uninstall
! id moodbox 2>/dev/null || fail "user moodbox still there"
[ ! -e /opt/moodbox ] && [ ! -e /usr/local/bin/moodbox ] && [ ! -e /etc/systemd/system/moodbox.service ] ||
  fail "venv, link or unit left behind"
grep -q "the owner's edit" /etc/moodbox/config.yaml || fail "--uninstall lost the config"

echo "== install again (the kept config is used), then --uninstall --purge"
bash scripts/install-pi.sh --no-start --no-apt | grep "kept your"
bash scripts/install-pi.sh --uninstall --purge
[ ! -e /etc/moodbox ] || fail "--purge left /etc/moodbox"
[ "$(ls "$MUSIC" | wc -l)" -gt 0 ] || fail "the music was touched"
echo "music kept: $(ls "$MUSIC" | wc -l) files in $MUSIC"
rm -rf /srv/music
echo "== PI-ARM64 APPLIANCE CHECK PASSED ($SUITE)"
