#!/usr/bin/env bash
# Runs inside the arm64 Debian 12 root (see scripts/pi-arm64-check.sh). Makes a fresh
# venv with --system-site-packages at /opt/moodbox/venv and installs moodbox into it
# exactly as scripts/install-pi.sh and README's Pi section do.
set -euo pipefail
echo "== platform"
uname -m
/usr/bin/python3 --version
/usr/bin/python3 -c 'import numpy; print("apt numpy", numpy.__version__, numpy.__file__)'

echo "== install as README's Pi section says (numpy<2 constraint)"
rm -rf /opt/moodbox/venv
/usr/bin/python3 -m venv --system-site-packages /opt/moodbox/venv
export PATH=/opt/moodbox/venv/bin:$PATH
pip install -q -c scripts/pi-constraints.txt .
pip list 2>/dev/null | grep -iE "^(numpy|opencv|pygame|ai-edge-litert|pandas|mutagen|pyyaml|moodbox) "
PYGAME_HIDE_SUPPORT_PROMPT=1 python - <<'PY'
import cv2, numpy, pygame
from moodbox.vision.classifier import load_interpreter_class
_, runtime = load_interpreter_class()
print("numpy", numpy.__version__, "from", numpy.__file__)
print("opencv", cv2.__version__, "CascadeClassifier:", hasattr(cv2, "CascadeClassifier"))
print("pygame", pygame.version.ver, "| tflite runtime:", runtime)
assert numpy.__version__.startswith("1."), "numpy 2 shadows apt's numpy"
PY
# a real face photo to classify: matplotlib's grace_hopper.jpg, taken out of its wheel
# (not installed: moodbox itself must not need it)
pip download -q --no-deps -d /tmp/mpl matplotlib
python - <<'PY'
import glob, zipfile
whl = glob.glob("/tmp/mpl/matplotlib-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("sample_data/grace_hopper.jpg")][0]
    open("/tmp/grace_hopper.jpg", "wb").write(z.read(name))
PY

echo "== the shipped model builds and invokes"
python - <<'PY'
import numpy as np
from moodbox import assets
from moodbox.vision.classifier import EmotionClassifier
clf = EmotionClassifier(assets.default_model())
e = clf.classify(np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8))
s = clf.stats()
print(f"model {assets.default_model()} via {clf.runtime}: {s.macs/1e6:.1f} M MACs, "
      f"input {clf.input_dtype.__name__}; random face -> {e.name} {e.confidence:.2f}")
PY

PHOTO=/tmp/grace_hopper.jpg
echo "== moodbox classify --json $PHOTO"
moodbox classify --json "$PHOTO"

echo "== moodbox check (shipped config, replay camera)"
mkdir -p /tmp/frames && cp "$PHOTO" /tmp/frames/
sed 's/^  type: picamera2/  type: replay/; s#^  path: demo#  path: /tmp/frames#' "$(python -c 'from moodbox import assets; print(assets.default_config())')" > /tmp/config.yaml
SDL_AUDIODRIVER=disk SDL_DISKAUDIOFILE=/tmp/check.raw moodbox check --config /tmp/config.yaml

echo "== moodbox run on a replay source (20 s)"
SDL_AUDIODRIVER=disk SDL_DISKAUDIOFILE=/tmp/run.raw moodbox run --config /tmp/config.yaml --duration 20
python -c 'import os; n = os.path.getsize("/tmp/run.raw"); print("audio bytes played:", n); assert n > 44100 * 4'
echo "== PI-ARM64 CHECK PASSED"
