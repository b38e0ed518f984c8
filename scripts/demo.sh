#!/usr/bin/env bash
# Set up .venv with the demo extra and run the moodbox daemon for a minute on the
# bundled demo photos (a smiling face, an empty room, a portrait): no Pi, camera or
# speaker needed. Sound goes to the default device or, where there is none, to
# /tmp/moodbox-demo-audio.wav. Extra arguments go to `moodbox run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[demo]'
echo "moodbox is installed in .venv: 'source .venv/bin/activate' puts moodbox on PATH for the README's examples"
exec .venv/bin/moodbox run --source demo --duration 60 "$@"
