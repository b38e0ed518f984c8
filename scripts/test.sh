#!/usr/bin/env bash
# Set up .venv with the test and converter extras (TensorFlow for the converter tests),
# then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,test]'
exec .venv/bin/python -m pytest -q "$@"
