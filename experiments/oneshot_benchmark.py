r"""Times one supernet training step: zcjax's compiled step against aw_nas's PyTorch step.

zcjax::

    python -m experiments.oneshot_benchmark --bench_steps=30          # C=16, N=5, batch 64

runs :func:`zcjax.oneshot.train` on the bundled CIFAR-10 images (uniform single-path sampling,
the paper's optimiser, augmentation and dropout, ``naslib`` layers = aw_nas's supernet) for
``--bench_steps`` steps and reports the compile time and the median wall time of a compiled
step (host sampling, transfer, augmentation, forward, backward and update), with the load
average of the machine before and after.

The reference (PyTorch, a checkout of ``walkerning/aw_nas``; neither is a dependency of
zcjax) runs in an environment that has PyTorch; it needs no JAX::

    python tools/oneshot_benchmark_reference.py --aw_nas=/path/to/aw_nas --steps=30

and times the step aw_nas's ``MepaEvaluator`` takes with one sampled architecture
(``mepa_step_current``): ``assemble_candidate``, ``zero_grad``, forward and backward of the
candidate network, ``step_current_gradients`` (clipping, SGD).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from typing import Sequence

from absl import app, flags

from experiments import common

for _name in common.define("supernet"):
    flags.declare_key_flag(_name)
flags.DEFINE_integer("bench_batch_size", 64, "Training batch size of the timed steps.")
flags.DEFINE_integer("bench_steps", 30, "Training steps to time (after compilation).")
flags.DEFINE_string("bench_json", None, "Write the timings as JSON here.")

FLAGS = flags.FLAGS


def run(channels: int = 16, cells_per_stage: int = 5, batch_size: int = 64, steps: int = 30,
        convention: str = "naslib", progress: bool = False) -> dict:
    """Trains ``steps`` steps from scratch in a temporary folder; returns the timings."""
    import jax

    from zcjax import oneshot, spaces

    space = spaces.get("nb201")
    config = oneshot.TrainConfig(
        network=space.config(channels=channels, cells_per_stage=cells_per_stage,
                             convention=convention),
        batch_size=batch_size, epochs=1 + steps * batch_size // 800)
    images = oneshot.load_data("cifar10")[0]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = oneshot.train(config, images, tmp, max_steps=steps,
                               checkpoint_every=10 ** 9, progress=progress)
    return {"channels": channels, "cells_per_stage": cells_per_stage, "batch_size": batch_size,
            "steps": result.steps_run, "compile_s": result.compile_seconds,
            "seconds_per_step": result.seconds_per_step,
            "steps_per_second": 1.0 / result.seconds_per_step,
            "backend": jax.default_backend(), "devices": str(jax.devices()),
            "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "load_before": load_before, "load_after": os.getloadavg()}


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    out = run(FLAGS.channels or 16, FLAGS.cells_per_stage or 5, FLAGS.bench_batch_size,
              FLAGS.bench_steps, FLAGS.convention or "naslib", progress=True)
    print(f"zcjax supernet step, NB201 C={out['channels']} N={out['cells_per_stage']}, batch "
          f"{out['batch_size']}, {out['backend']} ({out['cpus']} CPUs): "
          f"{out['seconds_per_step']:.3f} s/step = {out['steps_per_second']:.2f} steps/s "
          f"(median of {out['steps']}; compile {out['compile_s']:.1f} s; load average "
          f"{out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after)")
    if FLAGS.bench_json:
        with open(FLAGS.bench_json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    app.run(main)
