"""Times the PyTorch reference (SamsungLabs/zero-cost-nas) on the cells and batch zcjax uses.

The yardstick of ``experiments/benchmark.py``: the code NAS researchers run today, on the same
machine, NB201 cells, network size and batch. It needs PyTorch and a checkout of
https://github.com/SamsungLabs/zero-cost-nas (only its ``foresight`` package is imported; no
file of it is part of zcjax):

  pip install torch numpy
  git clone https://github.com/SamsungLabs/zero-cost-nas /tmp/zero-cost-nas
  python -m experiments.benchmark_reference --zero_cost_nas=/tmp/zero-cost-nas \\
      --json_out=/tmp/reference.json

For each cell it builds the reference's NB201 network (``foresight.models.nasbench2``: N=5,
C from ``--network=channels=C``, default 16, PyTorch's default initialisation) and times
``find_measures`` -- the entry point the reference's own NB201 script calls -- on the batch
``experiments.benchmark`` times zcjax on (same data flags; default the bundled CIFAR-10 batch of
64), once for the whole measure set and (with ``--singles``) once per measure. Each measure
works on its own deep copy of the network, exactly as in the reference. Times are medians over
``--repeats`` calls after one warm-up call; the network build is not timed.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

from experiments import benchmark
from zcjax.spaces import nb201

#: The measures of ``foresight/pruners/measures`` (NAS-Bench-Suite-Zero's gradient proxies).
MEASURES = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow")

FLAGS = flags.FLAGS
# experiments.benchmark's cells, timing and output flags, and its network and batch flags
for _name in ("cells", "repeats", "singles", "json_out", *benchmark.setting.flags_read):
    flags.declare_key_flag(_name)
flags.DEFINE_string("zero_cost_nas", None, "path of a SamsungLabs/zero-cost-nas checkout")
flags.DEFINE_list("measures", list(MEASURES), "reference measure names")
flags.DEFINE_integer("threads", 0, "torch.set_num_threads (0: PyTorch's default)")


def load_reference(path: str | None):
    """Imports torch and the reference's ``foresight`` package, or says what is missing."""
    try:
        import torch
    except ImportError as e:
        raise SystemExit("benchmark_reference needs PyTorch: pip install torch") from e
    if not path or not os.path.isdir(os.path.join(path, "foresight")):
        raise SystemExit(f"--zero_cost_nas={path!r} is not a zero-cost-nas checkout (no "
                         f"'foresight' folder); clone https://github.com/SamsungLabs/zero-cost-nas")
    sys.path.insert(0, os.path.abspath(path))
    from foresight.models import nasbench2
    from foresight.pruners import predictive
    return torch, nasbench2, predictive


def torch_batch(torch, batch):
    """A zcjax batch as NCHW float32 / int64 tensors."""
    images = torch.tensor(np.asarray(batch.images).transpose(0, 3, 1, 2).copy())
    return images, torch.tensor(np.asarray(batch.labels), dtype=torch.int64)


def main(argv):
    del argv
    setting = benchmark.setting()
    if setting.space != "nb201":
        raise app.UsageError("the reference is timed on NB201 (--space=nb201)")
    config = setting.network_config()
    if (config.cells_per_stage, config.convention) != (5, "zero_cost"):
        raise app.UsageError("the reference's network has N=5 cells per stage and its own "
                             "layers (zcjax's zero_cost convention): --network may set only "
                             "channels")
    torch, nasbench2, predictive = load_reference(FLAGS.zero_cost_nas)
    channels = config.channels
    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    unknown = set(FLAGS.measures) - set(MEASURES)
    if unknown:
        raise SystemExit(f"unknown measures {sorted(unknown)}; known: {MEASURES}")
    archs = benchmark.benchmark_archs()
    images, labels = torch_batch(torch, setting.batch())
    loader = [(images, labels)]  # find_measures takes next(iter(loader))
    sets = ([(m,) for m in FLAGS.measures] if FLAGS.singles else []) + [tuple(FLAGS.measures)]
    rows = []
    for arch in archs:
        arch_str = nb201.as_genotype(arch).to_string()
        torch.manual_seed(0)
        net = nasbench2.get_model_from_arch_str(arch_str, config.num_classes,
                                                init_channels=channels)
        for names in sets:
            def call():
                start = time.perf_counter()
                predictive.find_measures(net, loader, ("random", 1, config.num_classes),
                                         torch.device("cpu"), measure_names=list(names))
                return time.perf_counter() - start
            first = call()
            runs = [call() for _ in range(FLAGS.repeats)]
            rows.append(dict(arch=arch, measures="+".join(names), first_call_s=first,
                             run_s=float(np.median(runs)), runs=runs))
            print(f"{arch:6d} {'+'.join(names):50s} {rows[-1]['run_s']:8.3f} s", flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(dict(rows=rows, batch_size=FLAGS.batch_size, archs=archs,
                           channels=channels, torch=torch.__version__,
                           threads=torch.get_num_threads(), load=os.getloadavg()), f, indent=1)


if __name__ == "__main__":
    app.run(main)
