#!/usr/bin/env bash
# Run the test suite in a venv of its own, set up on first use.
#   ./scripts/test.sh            everything: .venv with the test and converter extras (TensorFlow)
#   ./scripts/test.sh --device   the device-side suite, what a Pi contributor needs: .venv-device
#                                with the test extra only (no TensorFlow), pytest -m "not converter"
# Other arguments go to pytest (-k, -x, tests/...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv EXTRAS='.[dev,test]' MARK=()
if [ "${1:-}" = "--device" ]; then
  shift
  VENV=.venv-device EXTRAS='.[test]' MARK=(-m "not converter")
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$EXTRAS"
echo "moodbox is installed in $VENV: 'source $VENV/bin/activate' puts moodbox and moodbox-convert on PATH"
exec "$VENV/bin/python" -m pytest -q "${MARK[@]}" "$@"
