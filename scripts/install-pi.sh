#!/usr/bin/env bash
# Install moodbox as a systemd service on Raspberry Pi OS Bookworm (Debian 12, arm64).
# Run from a moodbox checkout:  sudo ./scripts/install-pi.sh [--no-start] [--no-apt] [--enable-web]
#
#  - apt: python3-venv and python3-picamera2 (the Pi camera library comes from apt)
#  - user "moodbox" (no login) in the video and audio groups
#  - /opt/moodbox/venv with --system-site-packages (to see apt's picamera2),
#    moodbox installed into it with numpy<2 (scripts/pi-constraints.txt)
#  - /etc/moodbox/config.yaml: copied only if absent; an existing one is kept and
#    the new defaults go to config.yaml.dist beside it
#  - /etc/systemd/system/moodbox.service, enabled and started
#  - the installing user ($SUDO_USER) joins the moodbox group: `moodbox status`, `skip`...
#    reach the daemon's control socket without sudo (after logging in again)
#  - --enable-web: the drop-in moodbox.service.d/web.conf that gives the service the
#    network for the phone page (set web.enabled and web.token in the config too)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${MOODBOX_PREFIX:-/opt/moodbox}
CONF=${MOODBOX_CONF:-/etc/moodbox}
START=1 APT=1 WEB=0
for arg in "$@"; do
  case "$arg" in
    --no-start) START=0 ;;
    --no-apt) APT=0 ;;
    --enable-web) WEB=1 ;;
    *) echo "usage: sudo $0 [--no-start] [--no-apt] [--enable-web]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "error: run as root: sudo $0" >&2; exit 1; }

if [ "$APT" = 1 ]; then
  apt-get update -q
  apt-get install -y -q python3-venv python3-pip
  apt-get install -y -q python3-picamera2 || echo "note: python3-picamera2 not available; use camera.type opencv (USB webcam)"
fi

if ! id -u moodbox >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/moodbox --no-create-home --shell /usr/sbin/nologin moodbox
fi
for group in video audio render; do
  getent group "$group" >/dev/null && usermod -aG "$group" moodbox
done

python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --disable-pip-version-check -c "$SRC/scripts/pi-constraints.txt" "$SRC"

install -d -m 755 "$CONF"
if [ -f "$CONF/config.yaml" ]; then
  install -m 644 "$SRC/config.yaml" "$CONF/config.yaml.dist"
  echo "kept your $CONF/config.yaml (new defaults in $CONF/config.yaml.dist)"
else
  install -m 644 "$SRC/config.yaml" "$CONF/config.yaml"
fi
install -m 644 "$SRC/systemd/moodbox.service" /etc/systemd/system/moodbox.service
sed -i "s#/opt/moodbox/venv#$PREFIX/venv#; s#/etc/moodbox/config.yaml#$CONF/config.yaml#" \
  /etc/systemd/system/moodbox.service

# --- the owner's controls (issue 11): socket group, optional phone page ---------
getent group moodbox >/dev/null || groupadd --system moodbox
getent group gpio >/dev/null && usermod -aG gpio moodbox   # buttons: (gpiozero), Pi OS only
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  usermod -aG moodbox "$SUDO_USER"
  echo "$SUDO_USER is in the moodbox group: log in again, then try: moodbox status"
fi
ln -sf "$PREFIX/venv/bin/moodbox" /usr/local/bin/moodbox  # `moodbox status` on the PATH
DROPIN=/etc/systemd/system/moodbox.service.d
if [ "$WEB" = 1 ]; then
  install -d -m 755 "$DROPIN"
  install -m 644 "$SRC/systemd/moodbox-web.conf" "$DROPIN/web.conf"
  echo "phone page: the service may use the network; set web.enabled: true and web.token in $CONF/config.yaml"
fi
# --- end of the owner's controls -------------------------------------------------

if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$START" = 1 ]; then
    systemctl enable --now moodbox
    echo "moodbox is running: journalctl -u moodbox -f"
  else
    systemctl enable moodbox
  fi
fi
echo "check the setup any time: sudo -u moodbox $PREFIX/venv/bin/moodbox check --config $CONF/config.yaml"
