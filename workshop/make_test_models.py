#!/usr/bin/env python3
"""Build the small TFLite fixtures in tests/data/ (needs the converter extra, TensorFlow).

A tiny CNN is trained for a few epochs on synthetic faces (converter.data.synthetic_faces:
class k = a grating at k*15 degrees), then converted with the real converter:
  tiny_int8.tflite   int8 input/output   (+ .json sidecar)
  tiny_uint8.tflite  uint8 input/output  (+ .json sidecar)
  wrong_outputs.tflite  10 outputs instead of 7
  rgb_input.tflite      a 48x48x3 input
  small_input.tflite    a 32x32x1 input, 7 outputs: a model an ensemble with 48 px ones refuses
The edge tests then exercise a real interpreter without TensorFlow installed.

    python workshop/make_test_models.py [--out tests/data]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import keras
    import numpy as np

    from moodbox.converter import models
    from moodbox.converter.convert import to_int8_tflite
    from moodbox.converter.data import synthetic_faces
    from moodbox.vision.modelinfo import ModelInfo, write_sidecar

    keras.utils.set_random_seed(7)
    train = synthetic_faces(2800, seed=1)
    x = train.x[..., None].astype("float32") / 255.0
    model = models.build("tiny", width=8)
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, train.y, epochs=15, batch_size=64, verbose=0)
    test = synthetic_faces(210, seed=2)
    acc = float(np.mean(np.argmax(model.predict(test.x[..., None] / 255.0, verbose=0), 1) == test.y))
    print(f"tiny float accuracy on synthetic faces: {acc:.3f}")
    calib = x[:300]
    info = ModelInfo(extra={"fixture": "synthetic gratings"})
    for name, io in (("tiny_int8", "int8"), ("tiny_uint8", "uint8")):
        path = out / f"{name}.tflite"
        path.write_bytes(to_int8_tflite(model, calib, io))
        write_sidecar(path, info)
        print(f"wrote {path}")

    wrong = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Conv2D(4, 3, strides=4),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    (out / "wrong_outputs.tflite").write_bytes(to_int8_tflite(wrong, calib))
    rgb = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Conv2D(4, 3, strides=4),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7)])
    (out / "rgb_input.tflite").write_bytes(to_int8_tflite(rgb, np.repeat(calib, 3, axis=-1)))
    write_small_input(out, calib)
    print("wrote wrong_outputs.tflite, rgb_input.tflite, small_input.tflite")
    return 0


def write_small_input(out: Path, calib) -> None:
    """small_input.tflite: an untrained emotion-shaped model on 32x32 faces (no sidecar)."""
    import keras
    import tensorflow as tf

    from moodbox.converter.convert import to_int8_tflite

    small = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 3, strides=4),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7)])
    (out / "small_input.tflite").write_bytes(
        to_int8_tflite(small, tf.image.resize(calib, (32, 32)).numpy()))


if __name__ == "__main__":
    raise SystemExit(main())
