"""moodbox: a Raspberry Pi speaker box that plays music to match the listener's mood."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithDefaultConfig(build_py):
    """Install the top-level config.yaml as edge/default_config.yaml."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "edge" / "default_config.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile("config.yaml", target)


PI_SIDE = [
    "numpy>=1.23",
    # 4.x: OpenCV 5 has no CascadeClassifier and ships no Haar cascades
    "opencv-python-headless>=4.5,<5",
    "pygame>=2.1",
    "pyyaml>=5.4",
    "pandas>=1.5",
    "mutagen>=1.45",  # catalog: title/artist/duration from tags (pure Python)
    # LiteRT where a wheel exists (Linux x86_64/aarch64, macOS arm64, Python 3.10+)
    "ai-edge-litert>=1.2; python_version>='3.10'",
    "tflite-runtime==2.14.0; python_version<'3.10'",
    "numpy<2; python_version<'3.10'",  # tflite-runtime 2.14 breaks under numpy 2
]

DEMO = [
    "matplotlib>=3.5",    # ships sample_data/grace_hopper.jpg, and draws plots
    "scikit-image>=0.19",  # ships data/astronaut.png and no-face photos
]

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
    packages=["edge", "edge.catalog", "converter", "edge.bundled_models",
              "edge.bundled_playlists"],
    # models/ and playlists/ live at the top of the repository; they are installed
    # inside the edge package so that a non-editable install finds them.
    package_dir={"edge.bundled_models": "models", "edge.bundled_playlists": "playlists"},
    package_data={"edge.catalog": ["*.json"],
                  "edge.bundled_models": ["*.tflite", "*.json", "*.md", "*.png"],
                  "edge.bundled_playlists": ["*/*.ogg", "*/*.m3u", "*.md"]},
    cmdclass={"build_py": BuildWithDefaultConfig},
    install_requires=PI_SIDE,
    extras_require={
        "demo": DEMO,
        "test": ["pytest>=7"] + DEMO,
        # fer==25.10.3 itself is installed with --no-deps by scripts/bench.sh: its
        # declared dependencies (facenet-pytorch, opencv-contrib-python) would pull
        # torch and a second, conflicting cv2; it runs on TensorFlow and OpenCV 4.
        "bench": CONVERTER + ["pillow", "requests", "setuptools"],
        "converter": CONVERTER,
        "dev": ["pytest>=7"] + CONVERTER,
    },
    entry_points={"console_scripts": [
        "moodbox=edge.cli:main",
        "moodbox-convert=converter.cli:main",
    ]},
)
