#!/usr/bin/env bash
# Install, upgrade or remove moodbox as a systemd service on Raspberry Pi OS
# Bookworm (Debian 12, Python 3.11, apt numpy 1.24) or Trixie (Debian 13, Python 3.13,
# apt numpy 2.2), arm64. Run from a moodbox checkout:
#
#   sudo ./scripts/install-pi.sh [--no-start] [--no-apt] [--enable-web|--enable-mqtt] [--os bookworm|trixie]
#   sudo ./scripts/install-pi.sh --upgrade [--no-start]   new code into the same venv
#   sudo ./scripts/install-pi.sh --uninstall [--purge]    remove it (--purge: config too)
#        uninstall removes only what the install record ($PREFIX/.moodbox-installed) lists,
#        and refuses (changing nothing) where there is no record
#        ./scripts/install-pi.sh --venv-only DIR          only the venv + pip step
#        ./scripts/install-pi.sh --show-plan              what the pip step would be here
#
# Install:
#  - apt: python3-venv, python3-pip, python3-numpy and python3-picamera2 (the Pi camera
#    library comes from apt, built against apt's numpy)
#  - user "moodbox" (no login) in the video, audio, render (and gpio) groups
#  - $PREFIX/venv with --system-site-packages (to see apt's picamera2), moodbox installed
#    into it with the catalog extra by the pip step below, and /usr/local/bin/moodbox
#    linked to it
#  - /etc/moodbox/config.yaml: copied only if absent; an existing one is kept and the new
#    defaults go to config.yaml.dist beside it
#  - $PREFIX/README.md (the unit's Documentation=) and /etc/systemd/system/moodbox.service,
#    enabled and started
#  - the installing user ($SUDO_USER) joins the moodbox group: `moodbox status`, `skip`...
#    reach the daemon's control socket without sudo (after logging in again)
#  - --enable-web (or --enable-mqtt, the same): the drop-in moodbox.service.d/web.conf
#    that gives the service the network for the phone page and for MQTT/Home Assistant
#    (set web.enabled and web.token, or mqtt.enabled and mqtt.host, in the config too)
#
# The pip step depends on the OS release (from /etc/os-release, or --os):
#  - bookworm: -c scripts/pi-constraints.txt (numpy<2): apt's modules are built against
#    numpy 1.24, so the venv gets numpy 1.26 and opencv-python-headless 4.11.
#  - trixie: numpy is pinned to exactly apt's version (2.2.x), which is already installed,
#    so pip adds no second numpy that would shadow the one apt's picamera2 stack is built
#    against, and picks the wheels built for numpy 2.
#  On both, the compiled dependencies must come as wheels (--only-binary): a source build
#  of numpy or OpenCV takes an hour on a Pi, so it fails fast instead.
# Any other release stops with an error; `--os bookworm|trixie` tries that path anyway.
#
# Environment: MOODBOX_PREFIX (/opt/moodbox), MOODBOX_CONF (/etc/moodbox), MOODBOX_STATE
# (/var/lib/moodbox, the unit's StateDirectory), MOODBOX_PYTHON
# (/usr/bin/python3: apt's Python, the one apt's picamera2 is built for),
# MOODBOX_OS_RELEASE (/etc/os-release; the tests point it at fake ones).
set -euo pipefail
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin  # useradd and friends, whatever root's PATH was
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${MOODBOX_PREFIX:-/opt/moodbox}
CONF=${MOODBOX_CONF:-/etc/moodbox}
PY=${MOODBOX_PYTHON:-/usr/bin/python3}
OS_RELEASE=${MOODBOX_OS_RELEASE:-/etc/os-release}
UNIT=/etc/systemd/system/moodbox.service
LINK=/usr/local/bin/moodbox
DROPIN=/etc/systemd/system/moodbox.service.d
STATE=${MOODBOX_STATE:-/var/lib/moodbox}  # the unit's StateDirectory
MANIFEST=$PREFIX/.moodbox-installed  # what this script installed: all --uninstall removes
# `moodbox catalog` works on the box too (pandas, mutagen; the daemon never loads them);
# mqtt: paho-mqtt (pure Python), imported only when mqtt.enabled is true
EXTRAS=catalog,mqtt
# compiled dependencies: wheels only, never an hour-long source build on the Pi
BINARY_ONLY=numpy,opencv-python-headless,pandas,pygame,ai-edge-litert,tflite-runtime

die() { echo "error: $*" >&2; exit "${EXIT:-1}"; }
usage() {
  cat >&2 <<EOF
usage: sudo $0 [--no-start] [--no-apt] [--enable-web|--enable-mqtt] [--os bookworm|trixie]
       sudo $0 --upgrade [--no-start] [--enable-web|--enable-mqtt] [--os bookworm|trixie]
       sudo $0 --uninstall [--purge]
            $0 --venv-only DIR [--os bookworm|trixie]
            $0 --show-plan [--os bookworm|trixie]
EOF
  exit 2
}

ARGS="$*"
MODE=install START=1 APT=1 WEB=0 PURGE=0 OS="" VENV=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) START=0 ;;
    --no-apt) APT=0 ;;
    --enable-web|--enable-mqtt) WEB=1 ;;  # one drop-in: the network, for the page and MQTT
    --purge) PURGE=1 ;;
    --upgrade) MODE=upgrade ;;
    --uninstall) MODE=uninstall ;;
    --show-plan) MODE=plan ;;
    --venv-only)
      [ $# -ge 2 ] && [ -n "$2" ] || EXIT=2 die "--venv-only needs a directory, e.g. --venv-only /tmp/moodbox-venv"
      MODE=venv-only VENV=$2; shift ;;
    --os)
      [ $# -ge 2 ] || EXIT=2 die "--os needs bookworm or trixie"
      case "$2" in bookworm|trixie) OS=$2 ;;
        *) EXIT=2 die "--os must be bookworm or trixie, not '$2'" ;; esac
      shift ;;
    -h|--help) usage ;;
    *) echo "error: unknown option '$1'" >&2; usage ;;
  esac
  shift
done
[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || EXIT=2 die "--purge goes with --uninstall"

# --- which release ----------------------------------------------------------------
os_release_value() {  # KEY -> its value in $OS_RELEASE, quotes removed
  sed -n "s/^$1=//p" "$OS_RELEASE" | head -n1 | sed "s/^[\"']//; s/[\"']\$//"
}

detect_os() {  # prints bookworm or trixie; dies with the fix for anything else
  [ -r "$OS_RELEASE" ] || EXIT=3 die "cannot read $OS_RELEASE to tell the OS release; pass --os bookworm or --os trixie"
  local id codename version pretty
  id=$(os_release_value ID) codename=$(os_release_value VERSION_CODENAME)
  version=$(os_release_value VERSION_ID) pretty=$(os_release_value PRETTY_NAME)
  case "$codename" in bookworm|trixie) echo "$codename"; return ;; esac
  if [ "$id" = debian ] || [ "$id" = raspbian ]; then
    case "$version" in 12) echo bookworm; return ;; 13) echo trixie; return ;; esac
  fi
  EXIT=3 die "unsupported OS release '${pretty:-$id $version}' ($OS_RELEASE); moodbox installs on Raspberry Pi OS Bookworm (Debian 12) or Trixie (Debian 13); to try anyway, pass --os bookworm (apt numpy 1.x) or --os trixie (apt numpy 2.x)"
}

# --- the owner's first minutes: the last lines of a fresh install --------------------
first_minutes_note() {
  echo "the bundled demo tracks play until you set your own playlists (playlists: in $CONF/config.yaml)"
  echo "that file belongs to root: edit it with sudo (sudoedit $CONF/config.yaml), then apply it with"
  echo "sudo systemctl reload moodbox; the log: journalctl -u moodbox -f (README: Where the logs are)"
}

# --- the pip step, one code path for install, upgrade and --venv-only ---------------
PIP_ARGS=() CONSTRAINTS="" WORK=""
workdir() {  # a scratch folder, removed on exit
  if [ -z "$WORK" ]; then
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
  fi
}

plan_pip() {  # fills PIP_ARGS for $OS
  PIP_ARGS=(--disable-pip-version-check --only-binary "$BINARY_ONLY")
  case "$OS" in
    bookworm)
      CONSTRAINTS=$SRC/scripts/pi-constraints.txt ;;
    trixie)
      local numpy
      numpy=$("$PY" -c 'import importlib.metadata as m; print(m.version("numpy"))' 2>/dev/null) ||
        die "apt's numpy is missing for $PY: sudo apt install python3-numpy (on Trixie the venv uses apt's numpy 2)"
      case "$numpy" in 1.*) die "$PY has numpy $numpy, Trixie's is 2.x; run with --os bookworm" ;; esac
      workdir
      CONSTRAINTS=$WORK/constraints.txt
      printf 'numpy==%s  # apt python3-numpy: no second numpy in the venv\n' "$numpy" > "$CONSTRAINTS" ;;
  esac
  PIP_ARGS+=(-c "$CONSTRAINTS")
}

clean_copy() {  # $WORK/src: $SRC without build leftovers (a stale build/ would ship
  workdir       # modules that a git pull removed); the checkout stays free of root's files
  mkdir -p "$WORK/src"
  tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=./runs --exclude=./scratch -cf - . |
    tar -C "$WORK/src" -xf -
}

make_venv() {  # DIR: a venv seeing apt's packages, with moodbox installed by the plan
  local dir=$1
  command -v "$PY" >/dev/null || die "no $PY (apt's Python): sudo apt install python3 python3-venv"
  if [ -e "$dir" ] && [ ! -f "$dir/pyvenv.cfg" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not a venv; give a new or empty folder"
  fi
  if [ -f "$dir/pyvenv.cfg" ] && [ -x "$dir/bin/python" ] && [ "$("$dir/bin/python" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != \
       "$("$PY" -c 'import sys; print(sys.version_info[:2])')" ]; then
    echo "$dir was made for another Python (OS upgraded?); making it afresh"
    rm -rf "$dir"
  fi
  "$PY" -m venv --system-site-packages "$dir" ||
    die "could not create the venv $dir: sudo apt install python3-venv"
  plan_pip
  clean_copy
  echo "pip install ${PIP_ARGS[*]} $SRC[$EXTRAS]  (into $dir, for $OS)"
  "$dir/bin/pip" install -q "${PIP_ARGS[@]}" "$WORK/src[$EXTRAS]" ||
    die "pip could not install moodbox into $dir (see above)"
  "$dir/bin/moodbox" --version || die "moodbox was installed into $dir but does not start (see above)"
}

# --- the rest of an appliance: files, user, service ----------------------------------
has_systemd() { command -v systemctl >/dev/null && [ -d /run/systemd/system ]; }

# --- the install record: one "KIND PATH" line for each thing this script made ------------
RECORD=()
record() { RECORD+=("$1 $2"); }  # KIND (file, tree, link, user, group) PATH-or-name

write_record() {  # the earlier record (an upgrade keeps it) plus this run's, sorted, unique
  {
    if [ -f "$MANIFEST" ]; then grep -v '^#' "$MANIFEST" || true; fi
    printf '%s\n' "${RECORD[@]}"
  } | sort -u > "$MANIFEST.new"
  { echo "# installed by moodbox's scripts/install-pi.sh; --uninstall removes exactly these"
    cat "$MANIFEST.new"; } > "$MANIFEST"
  rm -f "$MANIFEST.new"
  chmod 644 "$MANIFEST"
}

ours() {  # KIND PATH: is it in the record, and one of the paths this script installs?
  case "$1 $2" in
    "tree $PREFIX/venv"|"file $PREFIX/README.md"|"file $UNIT"|"file $DROPIN/web.conf"|\
    "link $LINK"|"file $CONF/config.yaml"|"file $CONF/config.yaml.dist"|"user moodbox"|\
    "group moodbox") grep -qxF "$1 $2" "$MANIFEST" ;;
    *) return 1 ;;
  esac
}

check_record() {  # dies (one line, nothing removed) without a record, or with a foreign line
  [ -f "$MANIFEST" ] && [ ! -L "$MANIFEST" ] ||
    die "no install record in $PREFIX ($MANIFEST is missing): moodbox was not installed there by this script (or by one older than the record), so nothing was removed; check MOODBOX_PREFIX, or run --upgrade first to write the record"
  local kind path
  while read -r kind path; do
    case "$kind" in ''|'#'*) continue ;; esac
    ours "$kind" "$path" ||
      die "the install record $MANIFEST lists '$kind $path', which this script never installs; nothing was removed"
  done < "$MANIFEST"
}

install_apt() {
  apt-get update -q
  apt-get install -y -q python3-venv python3-pip python3-numpy
  apt-get install -y -q python3-picamera2 || echo "note: python3-picamera2 not available; use camera.type opencv (USB webcam)"
}

add_user() {
  command -v useradd >/dev/null || die "useradd is missing: sudo apt install passwd"
  if ! id -u moodbox >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/moodbox --no-create-home --shell /usr/sbin/nologin moodbox
    record user moodbox
    if getent group moodbox >/dev/null; then record group moodbox; fi
  fi
  # gpio: the optional buttons (gpiozero), where Raspberry Pi OS has that group
  for group in video audio render gpio; do
    if getent group "$group" >/dev/null; then usermod -aG "$group" moodbox; fi
  done
  # the owner's controls (issue 11): the control socket's group
  getent group moodbox >/dev/null || { groupadd --system moodbox && record group moodbox; }
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    usermod -aG moodbox "$SUDO_USER"
    echo "$SUDO_USER is in the moodbox group: log in again, then try: moodbox status"
  fi
}

install_files() {
  install -d -m 755 "$CONF"
  if [ -f "$CONF/config.yaml" ]; then
    install -m 644 "$SRC/config.yaml" "$CONF/config.yaml.dist"
    record file "$CONF/config.yaml.dist"
    echo "kept your $CONF/config.yaml (new defaults in $CONF/config.yaml.dist)"
  else
    install -m 644 "$SRC/config.yaml" "$CONF/config.yaml"
    record file "$CONF/config.yaml"
  fi
  install -m 644 "$SRC/README.md" "$PREFIX/README.md"
  record file "$PREFIX/README.md"
  install -m 644 "$SRC/systemd/moodbox.service" "$UNIT"
  record file "$UNIT"
  sed -i "s#/opt/moodbox/#$PREFIX/#g; s#/etc/moodbox/config.yaml#$CONF/config.yaml#" "$UNIT"
  if [ -L "$LINK" ] || [ ! -e "$LINK" ]; then
    ln -sfn "$PREFIX/venv/bin/moodbox" "$LINK"
    record link "$LINK"
  else
    echo "note: $LINK exists and is not a link; left alone (moodbox is $PREFIX/venv/bin/moodbox)"
  fi
  if [ "$WEB" = 1 ]; then
    install -d -m 755 "$DROPIN"
    install -m 644 "$SRC/systemd/moodbox-web.conf" "$DROPIN/web.conf"
    record file "$DROPIN/web.conf"
    echo "network: the service may use it (phone page, MQTT); set web.enabled and web.token, or mqtt.enabled and mqtt.host, in $CONF/config.yaml"
  fi
}

remove() {  # KIND PATH: remove it if the record lists it (a path: only a file or a link)
  ours "$1" "$2" || return 0
  case "$1" in
    tree) rm -rf -- "$2" ;;
    file|link) if [ -f "$2" ] || [ -L "$2" ]; then rm -f -- "$2"; fi ;;
  esac
}

uninstall() {  # only what the install record lists; nothing at all without a record
  check_record
  if has_systemd && ours file "$UNIT"; then
    systemctl disable --now moodbox 2>/dev/null || true
  fi
  remove file "$UNIT"
  remove file "$DROPIN/web.conf"
  rmdir "$DROPIN" 2>/dev/null || true
  if has_systemd && ours file "$UNIT"; then systemctl daemon-reload; fi
  if ours link "$LINK" && [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$PREFIX/venv/bin/moodbox" ]; then
    rm -f "$LINK"
  fi
  remove tree "$PREFIX/venv"
  remove file "$PREFIX/README.md"
  if ours user moodbox && id -u moodbox >/dev/null 2>&1; then userdel moodbox; fi
  if ours group moodbox && getent group moodbox >/dev/null; then groupdel moodbox; fi
  echo "removed the moodbox service, user and $PREFIX/venv (what $MANIFEST lists); your music was not touched"
  if [ "$PURGE" = 1 ]; then
    rm -f "$STATE/learned-skips.json"
    rmdir "$STATE" 2>/dev/null || true
    remove file "$CONF/config.yaml"
    remove file "$CONF/config.yaml.dist"
    if rmdir "$CONF" 2>/dev/null || [ ! -e "$CONF" ]; then
      echo "purged $CONF"
    else
      echo "removed what moodbox installed in $CONF; kept the other files there"
    fi
  elif [ -d "$CONF" ] || [ -d "$STATE" ]; then
    echo "kept $CONF (your config) and $STATE (what it learned from skips); remove them too with --purge"
  fi
  rm -f "$MANIFEST"
  rmdir "$PREFIX" 2>/dev/null || true
}

# --- main ------------------------------------------------------------------------------
if [ "$MODE" = venv-only ]; then
  [ -n "$OS" ] || OS=$(detect_os)
  make_venv "$VENV"
  echo "moodbox installed into $VENV ($OS): $VENV/bin/moodbox"
  exit 0
fi
if [ "$MODE" = plan ]; then
  [ -n "$OS" ] || OS=$(detect_os)
  plan_pip
  echo "os: $OS"
  echo "python: $PY"
  echo "pip step: pip install ${PIP_ARGS[*]} $SRC[$EXTRAS]"
  grep -v -e '^#' -e '^$' "$CONSTRAINTS" | sed 's/^/constraint: /'
  exit 0
fi
[ "$MODE" != uninstall ] || check_record  # no record: refuse before anything else
[ "$(id -u)" = 0 ] || die "run as root: sudo $0 $ARGS"
if [ "$MODE" = uninstall ]; then
  uninstall
  exit 0
fi
[ -n "$OS" ] || OS=$(detect_os)
if [ "$MODE" = upgrade ]; then
  [ -x "$PREFIX/venv/bin/moodbox" ] || die "no moodbox in $PREFIX/venv to upgrade; install it first: sudo $0"
elif [ "$APT" = 1 ]; then
  install_apt
fi
add_user
install -d -m 755 "$PREFIX"
# the venv is ours when this script makes it, or when it already holds moodbox (an upgrade)
if [ ! -e "$PREFIX/venv" ] || [ -x "$PREFIX/venv/bin/moodbox" ]; then record tree "$PREFIX/venv"; fi
make_venv "$PREFIX/venv"
install_files
write_record
if has_systemd; then
  systemctl daemon-reload
  if [ "$MODE" = upgrade ]; then
    if [ "$START" = 1 ] && { systemctl is-enabled --quiet moodbox || systemctl is-active --quiet moodbox; }; then
      systemctl restart moodbox
      echo "moodbox upgraded and restarted: journalctl -u moodbox -f"
    else
      echo "moodbox upgraded; it runs the new code from its next start"
    fi
  elif [ "$START" = 1 ]; then
    systemctl enable --now moodbox
    echo "moodbox is running: journalctl -u moodbox -f"
  else
    systemctl enable moodbox
  fi
fi
echo "check the setup any time: moodbox check --config $CONF/config.yaml"
[ "$MODE" = upgrade ] || first_minutes_note
