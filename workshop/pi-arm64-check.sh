#!/usr/bin/env bash
# Prove that moodbox installs and runs on the Pi's own OS: a Debian arm64 root under
# qemu user emulation, through ../shared/tools/pi-arm64:
#   --suite bookworm (default): Debian 12, Raspberry Pi OS Bookworm's base (Python 3.11,
#                               apt numpy 1.24)
#   --suite trixie:             Debian 13, Raspberry Pi OS Trixie's base (Python 3.13,
#                               apt numpy 2.2, apt's python3-libcamera/-av/-opencv)
# Needs root; the first run of a suite builds its root (10-30 minutes). Timings under
# emulation mean nothing: only success counts.
#
#   sudo ./workshop/pi-arm64-check.sh [--suite bookworm|trixie] [--appliance] [--tool path/to/pi-arm64]
#   sudo ./workshop/pi-arm64-check.sh --suite trixie 2>&1 | tee docs/pi-arm64-check-trixie.log
#
# Inside, workshop/pi-inner-check.sh makes a fresh venv with `install-pi.sh --venv-only`,
# checks numpy is the one expected there, and runs the shipped model, `moodbox classify`,
# `moodbox check` and a short `moodbox run`. With --appliance, workshop/pi-appliance-check.sh
# instead runs the full install, --upgrade, --uninstall and --purge (no systemd in a chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=bookworm
TOOL=${PI_ARM64:-../shared/tools/pi-arm64}
INNER=workshop/pi-inner-check.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=${2:-}; shift 2 ;;
    --tool) TOOL=${2:-}; shift 2 ;;
    --appliance) INNER=workshop/pi-appliance-check.sh; shift ;;
    *) echo "usage: sudo $0 [--suite bookworm|trixie] [--appliance] [--tool path/to/pi-arm64]" >&2; exit 2 ;;
  esac
done
case "$SUITE" in bookworm|trixie) ;;
  *) echo "error: --suite must be bookworm or trixie, not '$SUITE'" >&2; exit 2 ;; esac
[ -x "$TOOL" ] || { echo "error: $TOOL not found; pass --tool path/to/pi-arm64" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: run as root (the arm64 root needs chroot): sudo $0" >&2; exit 2; }
echo "pi-arm64-check: $INNER, suite $SUITE, moodbox $(git rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)'), $(date -u +%Y-%m-%dT%H:%MZ)"
exec "$TOOL" --suite "$SUITE" --project "$PWD" -- "bash $INNER $SUITE"
