#!/usr/bin/env bash
# Prove that moodbox installs and runs on the Pi's own OS: a Debian 12 arm64 root
# (Raspberry Pi OS Bookworm's base: Python 3.11, apt numpy 1.24) under qemu user
# emulation, through ../shared/tools/pi-arm64. Needs root; the first run builds the
# root (several minutes). Timings under emulation mean nothing: only success counts.
#
#   sudo ./scripts/pi-arm64-check.sh [path/to/pi-arm64]
#
# Inside, scripts/pi-inner-check.sh installs moodbox exactly as README's Pi section
# says and runs the shipped model, `moodbox classify` and a short `moodbox run`.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOL=${1:-${PI_ARM64:-../shared/tools/pi-arm64}}
[ -x "$TOOL" ] || { echo "error: $TOOL not found; pass the path to pi-arm64" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: run as root (the arm64 root needs chroot)" >&2; exit 2; }
exec "$TOOL" --project "$PWD" -- 'bash scripts/pi-inner-check.sh'
