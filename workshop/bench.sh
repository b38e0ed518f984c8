#!/usr/bin/env bash
# Set up .venv with the bench extra (TensorFlow, demo photos) and the fer package,
# then run `moodbox-convert bench` (the device bench, `moodbox bench`, side by side with
# fer, accuracy and a Pi estimate). Extra arguments go to it, e.g.
#   ./workshop/bench.sh --source ../shared/data/faces/woman2.mp4 --plot bench.png
# fer 25.10.3 is installed with --no-deps: its declared dependencies pull torch
# (facenet-pytorch, only for its optional MTCNN detector) and opencv-contrib-python,
# which would clash with opencv-python-headless. fer's Haar + TFLite/Keras paths
# need only TensorFlow, OpenCV 4, pandas, requests, Pillow and setuptools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[bench]'
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps fer==25.10.3
exec .venv/bin/moodbox-convert bench "$@"
