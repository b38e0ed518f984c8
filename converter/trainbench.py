"""CPU cost of one training step under Keras precision policies (float32 against mixed_bfloat16)."""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

POLICIES = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class StepCost:
    policy: str
    steps: int
    wall_ms: float  # median wall-clock ms per step
    cpu_ms: float  # process CPU ms per step (all threads), the fair number on a shared machine
    loss_first: float
    loss_last: float
    compute_dtype: str = ""

    def line(self) -> str:
        return (f"{self.policy:<15} {self.cpu_ms:9.1f} CPU-ms/step  {self.wall_ms:9.1f} wall-ms/step "
                f"(median)  {self.steps} steps  computing in {self.compute_dtype}  loss {self.loss_first:.3f} -> {self.loss_last:.3f}")


def measure(policy: str, arch: str, width: int | None, batch_size: int, steps: int,
            warmup: int = 3, seed: int = 0) -> StepCost:
    """Build the training model of `moodbox-convert train` under `policy` and time `steps`
    optimizer steps on one fixed random batch (after `warmup` untimed ones)."""
    import keras

    from moodbox.converter.train import TrainConfig, _compiled_model
    from moodbox.vision.modelinfo import ModelInfo

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        cfg = TrainConfig(arch=arch, width=width, epochs=1, batch_size=batch_size, warmup_epochs=0)
        model = _compiled_model(cfg, ModelInfo(), steps=warmup + steps)
        rng = np.random.default_rng(seed)
        x = rng.random((batch_size, 48, 48, 1), dtype=np.float32)
        y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, batch_size)]
        for _ in range(warmup):
            model.train_on_batch(x, y)
        walls, losses = [], []
        cpu0 = time.process_time()
        for _ in range(steps):
            t0 = time.perf_counter()
            out = model.train_on_batch(x, y)
            walls.append(time.perf_counter() - t0)
            losses.append(float(out[0] if isinstance(out, (list, tuple)) else out))
        cpu = (time.process_time() - cpu0) / steps
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return StepCost(policy, steps, float(np.median(walls)) * 1000.0, cpu * 1000.0,
                    losses[0], losses[-1], str(model.layers[-1].compute_dtype))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="resnet", choices=["resnet", "vgg", "tiny"])
    p.add_argument("--width", type=int, default=None, help="base channel width")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30, help="timed steps per policy")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    p.add_argument("--threads", type=int, default=1, help="TensorFlow CPU threads")


def run_bench_train(args: argparse.Namespace) -> int:
    import tensorflow as tf

    if args.steps < 1 or args.batch_size < 1:
        raise ValueError("--steps and --batch-size must be positive")
    if args.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        except RuntimeError:  # TensorFlow already started in this process (tests)
            logger.warning("TensorFlow already running: --threads %d not applied", args.threads)
    results = [measure(p, args.arch, args.width, args.batch_size, args.steps)
               for p in args.policies]
    print(f"{args.arch} width {args.width or 'default'}, batch {args.batch_size}, "
          f"{args.threads or 'all'} thread(s):")
    for r in results:
        print(r.line())
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            print(f"{r.policy} / {base.policy}: {r.cpu_ms / base.cpu_ms:.2f}x CPU time, "
                  f"{r.wall_ms / base.wall_ms:.2f}x wall time per step")
    return 0
