#!/usr/bin/env bash
# Runs inside an arm64 Debian root (see workshop/pi-arm64-check.sh):
#   bash workshop/pi-inner-check.sh bookworm|trixie
# Makes a fresh venv at /opt/moodbox/venv through `install-pi.sh --venv-only` (the same
# pip step as a real install), checks that the numpy it sees is the one expected on that
# release, then runs the shipped model through `moodbox classify --json` on a real photo,
# `moodbox check` and a 20 s `moodbox run` on a replay source with SDL's disk driver.
# Uses only the moodbox command, never the package's internals.
set -euo pipefail
SUITE=${1:?usage: pi-inner-check.sh bookworm|trixie}
VENV=/opt/moodbox/venv
APT_SITE=/usr/lib/python3/dist-packages

echo "== platform"
uname -m
sed -n 's/^PRETTY_NAME=//p' /etc/os-release
/usr/bin/python3 --version
/usr/bin/python3 -c 'import numpy; print("apt numpy", numpy.__version__, numpy.__file__)'
APT_NUMPY=$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')

echo "== install: scripts/install-pi.sh --venv-only $VENV"
rm -rf "$VENV"
bash scripts/install-pi.sh --venv-only "$VENV" | tee /tmp/install.out
grep -q "installed into $VENV ($SUITE)" /tmp/install.out || { echo "FAIL: install-pi.sh did not take the $SUITE path"; exit 1; }
export PATH=$VENV/bin:$PATH
pip list 2>/dev/null | grep -iE "^(numpy|opencv|pygame|ai-edge-litert|tflite-runtime|pandas|mutagen|pyyaml|moodbox) "

echo "== numpy and the compiled modules beside it"
APT_NUMPY=$APT_NUMPY APT_SITE=$APT_SITE SUITE=$SUITE PYGAME_HIDE_SUPPORT_PROMPT=1 python - <<'PY'
import glob, os, sys
import importlib.metadata as md
import cv2, numpy, pygame
suite, apt_numpy, apt_site = os.environ["SUITE"], os.environ["APT_NUMPY"], os.environ["APT_SITE"]
def version(dist: str) -> "str | None":
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
runtime = next(d for d in ("ai-edge-litert", "tflite-runtime") if version(d))
print(f"numpy {numpy.__version__} from {numpy.__file__}")
print(f"opencv {cv2.__version__} (opencv-python-headless {version('opencv-python-headless')}, {cv2.__file__}), CascadeClassifier: {hasattr(cv2, 'CascadeClassifier')}")
print(f"pygame {pygame.version.ver} | tflite runtime: {runtime} {version(runtime)} | pandas {version('pandas')}")
venv_numpy = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "numpy*"))
if suite == "bookworm":
    assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: numpy 2 would shadow apt's 1.24"
else:
    assert numpy.__version__.startswith("2."), f"numpy {numpy.__version__}: Trixie's apt numpy is 2.x"
    assert numpy.__version__ == apt_numpy and numpy.__file__.startswith(apt_site), \
        f"numpy {numpy.__version__} from {numpy.__file__}, not apt's {apt_numpy}"
    assert not venv_numpy, f"a second numpy in the venv: {venv_numpy}"
assert hasattr(cv2, "CascadeClassifier")
PY
if [ "$SUITE" = trixie ]; then
  # apt's own compiled modules, built against apt's numpy 2, still load in the venv
  # (pip's opencv-python-headless is the venv's cv2, so apt's is loaded by its path)
  APT_SITE=$APT_SITE python - <<'PY'
import glob, importlib.util, os, sys
import numpy
site = os.environ["APT_SITE"]
path = (glob.glob(f"{site}/cv2*.so") + glob.glob(f"{site}/cv2/__init__.py"))[0]
spec = importlib.util.spec_from_file_location("cv2", path)
cv2 = importlib.util.module_from_spec(spec)
sys.modules["cv2"] = cv2
spec.loader.exec_module(cv2)
grey = cv2.cvtColor(numpy.zeros((8, 8, 3), numpy.uint8), cv2.COLOR_BGR2GRAY)
import av, libcamera
frame = av.VideoFrame.from_ndarray(numpy.zeros((16, 16, 3), numpy.uint8), format="rgb24")
assert frame.to_ndarray().shape == (16, 16, 3)
print(f"apt cv2 {cv2.__version__} ({cv2.__file__}) cvtColor -> {grey.shape}; "
      f"apt av {av.__version__} ({av.__file__}) ndarray round trip; apt libcamera ({libcamera.__file__})")
PY
fi
echo "venv size: $(du -sh "$VENV" | cut -f1)"

# a real face photo to classify: matplotlib's grace_hopper.jpg, taken out of its wheel
# (not installed: moodbox itself must not need it)
pip download -q --no-deps --only-binary :all: -d /tmp/mpl matplotlib
python - <<'PY'
import glob, zipfile
whl = glob.glob("/tmp/mpl/matplotlib-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("sample_data/grace_hopper.jpg")][0]
    open("/tmp/grace_hopper.jpg", "wb").write(z.read(name))
PY

PHOTO=/tmp/grace_hopper.jpg
echo "== the shipped model builds and invokes: moodbox classify --json $PHOTO"
moodbox classify --json "$PHOTO" | tee /tmp/classify.json
python -c '
import json
r = json.loads(open("/tmp/classify.json").readline())
assert r["faces"] and r["faces"][0]["emotion"], r
assert abs(sum(r["faces"][0]["probs"].values()) - 1) < 0.05, r'

echo "== moodbox check (shipped config, replay camera)"
mkdir -p /tmp/frames && cp "$PHOTO" /tmp/frames/
sed 's/^  type: picamera2/  type: replay/; s#^  path: demo#  path: /tmp/frames#' config.yaml > /tmp/config.yaml
SDL_AUDIODRIVER=disk SDL_DISKAUDIOFILE=/tmp/check.raw moodbox check --config /tmp/config.yaml

echo "== moodbox run on a replay source (20 s)"
SDL_AUDIODRIVER=disk SDL_DISKAUDIOFILE=/tmp/run.raw moodbox run --config /tmp/config.yaml --duration 20
python -c 'import os; n = os.path.getsize("/tmp/run.raw"); print("audio bytes played:", n); assert n > 44100 * 4'
echo "== PI-ARM64 CHECK PASSED ($SUITE)"
