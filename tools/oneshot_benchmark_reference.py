"""Times aw_nas's NAS-Bench-201 supernet training step (PyTorch), the yardstick of
``experiments/oneshot_benchmark.py``.

Runs with any Python that has PyTorch and NumPy, against a checkout of
https://github.com/walkerning/aw_nas (no file of it is part of zcjax, and zcjax is not
imported: this script needs no JAX)::

    pip install torch numpy scipy six pyyaml click graphviz imageio setproctitle
    git clone https://github.com/walkerning/aw_nas /tmp/aw_nas
    python tools/oneshot_benchmark_reference.py --aw_nas=/tmp/aw_nas --steps=30

It builds ``aw_nas.btcs.nasbench_201.NB201SharedNet`` as the paper's configuration does
(``examples/research/surgery/nb201/deiso_plateaulr.yaml``: C=16, 17 layers, ``max_grad_norm``
5, ``dropout_rate`` 0.1, ``candidate_member_mask``), ``torch.optim.SGD(lr=0.05, momentum=0.9,
weight_decay=5e-4)``, and times what ``MepaEvaluator.update_evaluator`` does per step with one
sampled architecture (``mepa_step_current``): sample a rollout, ``assemble_candidate``,
``zero_grad``, ``cand_net.gradient`` (forward, cross-entropy, backward) and
``step_current_gradients`` (clipping, SGD). Batches are the bundled CIFAR-10 images zcjax
ships (``zcjax/resources/cifar10_train_1000.npz``), normalised with aw_nas's constants; the
data loader's augmentation, which aw_nas runs in worker processes, is not timed.

The checkout's modules are imported without running the package's ``__init__`` (which imports
every data set, detection and hardware module of aw_nas, with their dependencies), and
``nas_201_api`` is replaced by a stub: the supernet does not use the benchmark's API.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time
import types

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = REPO / "zcjax" / "resources" / "cifar10_train_1000.npz"
MEAN = np.array([0.49139968, 0.48215827, 0.44653124], np.float32)
STD = np.array([0.24703233, 0.24348505, 0.26158768], np.float32)


def import_aw_nas(root: str):
    """``aw_nas.btcs.nasbench_201`` from a checkout, without the package ``__init__``."""
    package = pathlib.Path(root) / "aw_nas"
    if not (package / "btcs" / "nasbench_201.py").is_file():
        raise SystemExit(f"--aw_nas={root!r} is not an aw_nas checkout (no "
                         "aw_nas/btcs/nasbench_201.py)")

    def shim(name: str, path: pathlib.Path) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
        return module

    sys.path.insert(0, str(pathlib.Path(root).resolve()))
    top = shim("aw_nas", package)
    top.__version__ = (package / "VERSION").read_text().strip()
    shim("aw_nas.btcs", package / "btcs")
    stub = types.ModuleType("nas_201_api")
    stub.NASBench201API = None
    sys.modules["nas_201_api"] = stub
    from aw_nas.utils import RegistryMeta  # what the package __init__ would export
    top.RegistryMeta = RegistryMeta
    from aw_nas.base import Component
    top.Component = Component
    import aw_nas.utils
    top.utils = aw_nas.utils
    import aw_nas.common as common
    for name in ("assert_rollout_type", "SearchSpace", "BaseRollout", "Rollout",
                 "DifferentiableRollout", "CNNSearchSpace", "RNNSearchSpace",
                 "get_search_space"):
        setattr(top, name, getattr(common, name))
    import aw_nas.btcs.nasbench_201 as nb201
    return nb201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aw_nas", required=True, help="path of a walkerning/aw_nas checkout")
    parser.add_argument("--steps", type=int, default=30, help="steps timed after 3 warm-up")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    if args.threads:
        torch.set_num_threads(args.threads)
    nb201 = import_aw_nas(args.aw_nas)
    torch.manual_seed(0)
    np.random.seed(0)
    device = torch.device("cpu")
    space = nb201.NasBench201SearchSpace(num_layers=17, vertices=4, load_nasbench=False)
    net = nb201.NB201SharedNet(space, device, num_classes=10, init_channels=args.channels,
                               max_grad_norm=5.0, dropout_rate=0.1, candidate_member_mask=True,
                               candidate_cache_named_members=True)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    with np.load(BUNDLED) as z:
        images = (z["images"][:800].astype(np.float32) / 255.0 - MEAN) / STD
        labels = z["labels"][:800].astype(np.int64)
    x_all = torch.tensor(images.transpose(0, 3, 1, 2).copy())
    y_all = torch.tensor(labels)

    def criterion(inputs, outputs, targets):
        return F.cross_entropy(outputs, targets)

    def step(i: int) -> float:
        rows = torch.tensor(np.random.permutation(800)[:args.batch_size])
        start = time.perf_counter()
        rollout = space.random_sample()
        cand = net.assemble_candidate(rollout)
        net.zero_grad()
        cand.gradient((x_all[rows], y_all[rows]), criterion=criterion, mode="train",
                      return_grads=False)
        net.step_current_gradients(optimizer)
        return time.perf_counter() - start

    load_before = os.getloadavg()
    for i in range(3):
        step(i)
    times = [step(i) for i in range(args.steps)]
    median = statistics.median(times)
    print(f"aw_nas NB201SharedNet step, C={args.channels} N=5, batch {args.batch_size}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}): {median:.3f} s/step = "
          f"{1 / median:.2f} steps/s (median of {len(times)} after 3 warm-up; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after)")


if __name__ == "__main__":
    main()
