"""Compile and run times of the sweep's compilation strategies on a few NB201 cells.

Strategies:
  static        one Flax module per cell, one compiled program per (cell, proxy set);
  supernet      the genotype as data (zcjax.spaces.nb201.supernet), one program for all cells
                (only for proxies in ``supernet.EXACT_PROXIES``);
  switch_plain  the same supernet with plain ``lax.switch`` AD (the slow baseline);
  engine        what a sweep runs per cell (``SweepConfig(compile="auto")``): the supernet
                for the proxies it scores exactly and fast (``supernet.PREFERRED_PROXIES``),
                the static module run eagerly for the rest, parameter initialisation
                included.

For each strategy and proxy set (each proxy alone, then the whole suite, fused) the script
records the compile time (first call minus a steady call; for ``engine`` that includes the one
run the engine makes right after compiling) and the median steady time per cell.
``--profile`` then shows where the engine's time goes on each cell, for the whole proxy set:
per shared pass and per proxy inside the compiled program (from JAX's profiler, see
:mod:`zcjax.profiling`), and per proxy run eagerly or counted. For a profile alone:

  python -m experiments.benchmark --strategies=engine --nosingles --repeats=1 --profile \\
      --proxies=suite_zero --cells=1462,9930
Calls of different strategies are interleaved within each repeat, so machine load hits them
alike; ratios against ``static`` are the numbers to trust on a shared machine.

  python -m experiments.benchmark --cells=<largest>,<small> --batch_size=64 \\
      --proxies=grad_norm,snip,synflow --repeats=3 --json_out=/tmp/bench.json

Network and batch: the space, network and data flags, as ``experiments.score`` reads them
(default: the benchmark's network, C=16 N=5, on the bundled CIFAR-10 batch of 64).

The PyTorch yardstick on the same cells and batch: ``experiments/benchmark_reference.py``.
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from absl import app, flags

from experiments import common
from zcjax import profiling
from zcjax.scoring import proxy_suite, seed_keys
from zcjax.spaces import nb201
from zcjax.spaces.nb201 import NB201Config
from zcjax.spaces.nb201 import supernet as sn
from zcjax.sweep.engine import SweepConfig, batch_hash, compute_chunk, profile_architecture
from zcjax.sweep.runner import make_tasks

for _name in common.define("proxies", "space", "dataset", "batch", "json_out"):
    flags.declare_key_flag(_name)

LARGEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SMALL = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"

FLAGS = flags.FLAGS
#: Proxies timed when --proxies (experiments.common's flag) is not given.
DEFAULT_PROXIES = ("grad_norm", "snip", "synflow")
flags.DEFINE_list("strategies", ["static", "supernet"],
                  "static, supernet, switch_plain, engine")
flags.DEFINE_list("cells", [], "NB201 indices to time (default: the all-3x3 cell and a small cell)")
flags.DEFINE_integer("repeats", 3, "timed calls per (strategy, arch, proxy set)")
flags.DEFINE_integer("seed", 0, "initialisation seed")
flags.DEFINE_bool("singles", True, "also time each proxy alone (one more compile each)")
flags.DEFINE_bool("profile", False,
                  "then profile the engine on each cell with the whole proxy set: seconds per "
                  "shared pass and per proxy inside its compiled program, and per proxy run "
                  "eagerly or counted (zcjax.sweep.engine.profile_architecture)")


def _timed(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


class Runner:
    """One (strategy, proxy set): ``call(arch)`` runs the compiled program on one cell."""

    def __init__(self, strategy: str, names: tuple, batch, net_kwargs: dict, seed: int):
        self.strategy, self.batch, self.seed = strategy, batch, seed
        self.suite = proxy_suite(names)
        self.key = seed_keys(seed)[1]
        if strategy == "static":
            self.net_kwargs, self.programs = net_kwargs, {}
        elif strategy == "engine":
            self.config = SweepConfig(proxies=names, network=NB201Config(**net_kwargs))
        else:
            net = sn.build_supernet(**net_kwargs, custom_backward=strategy == "supernet")
            self.params = sn.init_params(net, seed_keys(seed)[0], batch.images.shape[1:])
            suite = self.suite
            self.program = jax.jit(
                lambda p, ops, b, k: suite(net.apply, sn.variables_for(p, ops), b, k))

    def call(self, arch):
        if self.strategy == "static":
            if arch not in self.programs:
                model = nb201.build(arch, **self.net_kwargs)
                variables = nb201.init(model, seed_keys(self.seed)[0],
                                       self.batch.images.shape[1:])
                suite = self.suite
                fn = jax.jit(lambda v, b, k: suite(model.apply, v, b, k))
                self.programs[arch] = (fn, variables)
            fn, variables = self.programs[arch]
            return _timed(fn, variables, self.batch, self.key)
        if self.strategy == "engine":  # what a sweep runs for one (cell, seed)
            tasks = make_tasks(self.config.space, [self.config.search_space.key(arch)],
                               [self.seed], self.config.proxies, self.config.hash(),
                               batch_hash(self.batch))
            start = time.perf_counter()
            compute_chunk(tasks, self.batch, self.config)
            return time.perf_counter() - start
        ops = jax.numpy.asarray(sn.genotype_array(arch))
        return _timed(self.program, self.params, ops, self.batch, self.key)


@common.reads_flags("space", "network", "dataset", "data_dir", "split", "batch_size",
                    "batch_seed")
def setting() -> common.Setting:
    """The network and batch the flags name (a data set other than the bundled CIFAR-10
    sample is read from --data_dir, else from the default workspace's data/)."""
    return common.Setting(space=FLAGS.space, network=tuple(FLAGS.network), dataset=FLAGS.dataset,
                          data_dir=FLAGS.data_dir, split=FLAGS.split,
                          batch_size=FLAGS.batch_size, batch_seed=FLAGS.batch_seed)


@common.reads_flags("cells")
def benchmark_archs() -> list[int]:
    """The --cells, or the all-3x3 cell and a small cell."""
    return [int(a) for a in FLAGS.cells] or [nb201.index_of(LARGEST), nb201.index_of(SMALL)]


def main(argv):
    del argv
    common.guarded(_main)


def _main():
    timed = setting()
    if timed.space != "nb201":
        raise app.UsageError("experiments.benchmark times the NB201 strategies (--space=nb201)")
    names_ = (common.resolve_proxies(FLAGS.proxies) if common.flag_given("proxies")
              else list(DEFAULT_PROXIES))
    archs = benchmark_archs()
    batch = timed.batch()
    net_kwargs = timed.network_config().fields()
    sets = ([(p,) for p in names_] if FLAGS.singles else []) + [tuple(names_)]
    rows = []
    for names in sets:
        runners = {s: Runner(s, names, batch, net_kwargs, FLAGS.seed) for s in FLAGS.strategies}
        first = {(s, a): runners[s].call(a) for a in archs for s in FLAGS.strategies}
        times = {k: [] for k in first}
        for _ in range(FLAGS.repeats):
            for a in archs:
                for s in FLAGS.strategies:
                    times[(s, a)].append(runners[s].call(a))
        for (s, a), ts in times.items():
            run = float(np.median(ts))
            rows.append(dict(strategy=s, arch=a, proxies="+".join(names), first_call_s=first[(s, a)],
                             compile_s=max(0.0, first[(s, a)] - run), run_s=run, runs=ts))
    _print(rows)
    profiles = {}
    if FLAGS.profile:
        config = SweepConfig(proxies=tuple(names_), network=NB201Config(**net_kwargs))
        profiles = {f"cell {a}": profile_architecture(a, FLAGS.seed, batch, config, FLAGS.repeats)
                    for a in archs}
        common.print_block(profiling.table(profiles, "engine: s per call (share)"))
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(dict(rows=rows, batch_size=FLAGS.batch_size, archs=archs,
                           profiles={k: dict(wall_s=p.wall_s, by_scope=dict(p.by_scope))
                                     for k, p in profiles.items()},
                           load=os.getloadavg(), backend=jax.default_backend(),
                           **net_kwargs), f, indent=1)


def _print(rows):
    static = {(r["arch"], r["proxies"]): r["run_s"] for r in rows if r["strategy"] == "static"}
    print(f"{'strategy':13s} {'arch':>6s} {'proxies':28s} {'compile s':>9s} {'run s':>8s} "
          f"{'vs static':>9s}")
    for r in rows:
        ref = static.get((r["arch"], r["proxies"]))
        ratio = f"{r['run_s'] / ref:8.2f}x" if ref else ""
        print(f"{r['strategy']:13s} {r['arch']:6d} {r['proxies']:28s} {r['compile_s']:9.2f} "
              f"{r['run_s']:8.3f} {ratio:>9s}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    app.run(main)
