"""`moodbox-convert bench-train`: both precision policies really run, and the policy is put back."""
from __future__ import annotations

import pytest

pytest.importorskip("tensorflow", reason="the converter extra (TensorFlow) is not installed")

from moodbox.converter.cli import main as convert_cli  # noqa: E402
from moodbox.converter.trainbench import measure  # noqa: E402


def test_bench_train_prints_both_policies_and_the_ratio(capsys):
    assert convert_cli(["bench-train", "--arch", "tiny", "--steps", "2", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "computing in float32" in out
    assert "computing in bfloat16" in out
    assert "mixed_bfloat16 / float32:" in out


def test_policy_is_restored_and_bad_values_refused(capsys):
    import keras

    cost = measure("mixed_bfloat16", "tiny", None, batch_size=4, steps=1, warmup=1)
    assert cost.compute_dtype == "bfloat16" and cost.cpu_ms > 0
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="policy"):
        measure("float16", "tiny", None, batch_size=4, steps=1)
    assert convert_cli(["bench-train", "--arch", "tiny", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_training_under_mixed_bfloat16_saves_a_float32_model(tmp_path):
    import keras

    from moodbox.converter.data import save_npz, synthetic_faces

    tr, va = synthetic_faces(64, seed=1), synthetic_faces(32, seed=2)
    save_npz(tmp_path / "tr.npz", tr.x, tr.y)
    save_npz(tmp_path / "va.npz", va.x, va.y)
    out = tmp_path / "m.keras"
    assert convert_cli(["train", "--train", str(tmp_path / "tr.npz"), "--val",
                        str(tmp_path / "va.npz"), "--out", str(out), "--arch", "tiny",
                        "--epochs", "1", "--batch-size", "16", "--augment", "camera",
                        "--precision", "mixed_bfloat16"]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.models.load_model(out, compile=False)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert model.predict(va.x[:4, ..., None] / 255.0, verbose=0).dtype == "float32"
