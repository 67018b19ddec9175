"""The sweep engine: many architectures x seeds x proxies, resumable and shardable over hosts.

``sweep(archs, seeds, batch, config, store)`` scores every (architecture, seed) that the store
lacks, chunk by chunk (see :mod:`zcjax.sweep.runner`), so a crash or Ctrl-C loses at most the
chunk in flight and a rerun skips what is stored.

Hosts: with ``process_index`` / ``process_count`` (by default ``jax.process_index()`` and
``jax.process_count()``, i.e. JAX's multi-process runtime after ``jax.distributed.initialize``),
each process takes every ``process_count``-th architecture and writes its own store; merge them
afterwards with :meth:`ResultStore.merge_from`.

Compilation (``SweepConfig.compile``):

- ``"static"`` builds one Flax module per architecture and compiles its proxy program (one
  compilation per architecture: 4-14 s for gradient proxies at C=16 N=5, 1-5 min for grasp,
  meco and croze; about a day over NAS-Bench-201). The reference the others are tested against.
- ``"eager"`` runs the same static modules op by op, without ``jit``: JAX compiles each primitive
  once per shape, and every cell reuses those, so after the first cell nothing compiles. Measured
  on 2 CPU cores (C=16 N=5, batch 64, a loaded machine): fisher 3.5-7 s, grasp 6-12 s, meco +
  croze 24-28 s per cell, against minutes of compilation per cell for ``"static"``.
- ``"supernet"`` compiles one program for every cell (:mod:`zcjax.spaces.nb201.supernet`, the
  genotype as data) for the proxies it scores exactly
  (:data:`~zcjax.spaces.nb201.supernet.EXACT_PROXIES`); other proxies go through ``"static"``.
- ``"auto"`` (the default): the supernet for the proxies it scores exactly and fast
  (:data:`~zcjax.spaces.nb201.supernet.PREFERRED_PROXIES`: all but grasp), ``"eager"`` for the
  rest. No compilation per architecture.

Numbers behind the choice: ``experiments/benchmark.py`` and the supernet module's docstring.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zcjax import proxies as proxies_lib
from zcjax.scoring import proxy_suite, score, seed_keys
from zcjax.spaces import nb201
from zcjax.spaces.nb201 import supernet as supernet_lib
from zcjax.sweep.runner import SweepSummary, Task, make_tasks, run_resumable
from zcjax.sweep.store import Record, ResultStore, array_hash, config_hash

SPACES = ("nb201",)
COMPILE = ("auto", "static", "supernet", "eager")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What determines a score besides the architecture, the seed and the batch.

    Attributes:
      proxies: proxy names.
      space: search space (``"nb201"``).
      channels, cells_per_stage, num_classes, convention: the network (see
        :func:`zcjax.spaces.nb201.build`).
      strategy: how the seeds of one architecture run (see :func:`zcjax.score`); it does not
        change the scores, so it is not part of :meth:`hash`.
      compile: ``"static"`` (one program per architecture), ``"eager"`` (no program),
        ``"supernet"`` (one program for all, static for the rest) or ``"auto"`` (supernet where
        it is faster, eager for the rest); see the module doc. Scores agree to float rounding (tested), so it is not
        part of :meth:`hash` either.
    """

    proxies: tuple[str, ...]
    space: str = "nb201"
    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    convention: str = "zero_cost"
    strategy: str = "auto"
    compile: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "proxies", tuple(proxies_lib.get(p).name for p in self.proxies))
        if self.space not in SPACES:
            raise ValueError(f"unknown space {self.space!r}; expected one of {SPACES}")
        if self.compile not in COMPILE:
            raise ValueError(f"unknown compile {self.compile!r}; expected one of {COMPILE}")

    def hash(self) -> str:
        """Identifies the network setup in the store (proxies and strategy excluded)."""
        fields = dataclasses.asdict(self)
        fields.pop("proxies")
        fields.pop("strategy")
        fields.pop("compile")
        return config_hash(fields)

    def build(self, arch: str):
        return nb201.build(arch, channels=self.channels, cells_per_stage=self.cells_per_stage,
                           num_classes=self.num_classes, convention=self.convention)

    def split_proxies(self, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(proxies run by the supernet, proxies run by static modules) under ``compile``."""
        if self.compile in ("static", "eager"):
            return (), tuple(names)
        on_supernet = (supernet_lib.EXACT_PROXIES if self.compile == "supernet"
                       else supernet_lib.PREFERRED_PROXIES)
        fast = tuple(n for n in names if n in on_supernet)
        return fast, tuple(n for n in names if n not in fast)

    @property
    def jit_static(self) -> bool:
        """Whether the static modules' proxies are compiled (else run eagerly)."""
        return self.compile in ("static", "supernet")


class SupernetScorer:
    """Scores any NB201 cell with one compiled program per (proxy set, batch shape, backend).

    Each (architecture, seed) is one call of the compiled program (a Python loop keeps the
    network in XLA's entry computation, where XLA:CPU canonicalises convolutions; ``lax.map``
    would put it in a while body). Parameters are initialised once per seed for all cells.
    """

    def __init__(self, config: SweepConfig, proxies: Sequence[str]):
        self.config = config
        self.names = tuple(proxies)
        self.net = supernet_lib.build_supernet(
            channels=config.channels, cells_per_stage=config.cells_per_stage,
            num_classes=config.num_classes, convention=config.convention)
        suite = proxy_suite(self.names)

        def one(params, ops, batch, key):
            return suite(self.net.apply, supernet_lib.variables_for(params, ops), batch, key)

        self.one = one
        self.run = jax.jit(one)
        self._params: dict = {}

    def params(self, seed: int, image_shape) -> dict:
        key = (int(seed), tuple(image_shape))
        if key not in self._params:
            self._params[key] = supernet_lib.init_params(
                self.net, seed_keys(seed)[0], tuple(image_shape))
        return self._params[key]

    def __call__(self, arch: Any, seeds: Sequence[int], batch: Any) -> dict[str, np.ndarray]:
        """proxy -> (len(seeds),) float64 scores of one architecture."""
        ops = jnp.asarray(supernet_lib.genotype_array(arch))
        shape = batch.images.shape[1:]
        outs = [self.run(self.params(s, shape), ops, batch, seed_keys(s)[1]) for s in seeds]
        return {n: np.array([float(o[n]) for o in outs]) for n in self.names}

    def score_sharded(self, archs: Sequence[Any], seeds: Sequence[int], batch: Any,
                      mesh: jax.sharding.Mesh, axis: str = "items") -> dict[str, np.ndarray]:
        """proxy -> (len(archs), len(seeds)) with the (arch, seed) items split over ``mesh``.

        Each device runs ``lax.map`` over its share (the switch index stays unbatched, so only
        the chosen operations run). Meant for accelerators; on XLA:CPU the while body of
        ``lax.map`` misses the convolution canonicalisation of the stem and reductions.
        """
        from jax.sharding import NamedSharding, PartitionSpec as P

        if "fisher" in self.names and mesh.devices.flat[0].platform == "cpu":
            # Measured with jax 0.10.2 on 4 host devices: the program crashes XLA:CPU
            # (segmentation fault) at run time; every other supernet proxy runs and is tested.
            raise NotImplementedError(
                "fisher under score_sharded crashes XLA:CPU (segfault, jax 0.10.2); score it "
                "with the per-cell loop (SupernetScorer.__call__ / sweep) on CPU")
        shape = batch.images.shape[1:]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs),
                                         *[self.params(s, shape) for s in seeds])
        items = [(a, j) for a in range(len(archs)) for j in range(len(seeds))]
        n_dev = mesh.shape[axis]
        pad = -len(items) % n_dev
        items += [items[-1]] * pad
        ops = np.stack([supernet_lib.genotype_array(archs[a]) for a, _ in items])
        seed_idx = np.array([j for _, j in items], np.int32)
        keys = np.stack([np.asarray(jax.random.key_data(seed_keys(seeds[j])[1])) for _, j in items])

        def local(params, ops, seed_idx, keys, batch):
            # The batch is replicated (unvarying over the mesh axis). Differentiating with
            # respect to an unvarying value inside shard_map sums its cotangent over the axis,
            # so input gradients (jacob_cov, epe_nas) came out as sums over every device's
            # items: make the batch varying, i.e. each device's own copy.
            batch = jax.tree.map(lambda x: jax.lax.pcast(x, axis, to="varying"), batch)

            def body(item):
                o, j, k = item
                p = jax.tree_util.tree_map(lambda a: a[j], params)
                return self.one(p, o, batch, jax.random.wrap_key_data(k))
            return jax.lax.map(body, (ops, seed_idx, keys))

        fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axis), P(axis), P(axis), P()),
                                   out_specs=P(axis)))
        put = lambda x: jax.device_put(x, NamedSharding(mesh, P(axis)))  # noqa: E731
        out = fn(stacked, put(ops), put(seed_idx), put(keys), batch)
        n = len(items) - pad
        return {name: np.asarray(out[name])[:n].astype(np.float64).reshape(len(archs), len(seeds))
                for name in self.names}


_SCORERS: dict = {}


def supernet_scorer(config: SweepConfig, proxies: Sequence[str]) -> SupernetScorer:
    """The cached scorer of a config and proxy set (its compiled program is reused)."""
    key = (config.hash(), tuple(proxies))
    if key not in _SCORERS:
        _SCORERS[key] = SupernetScorer(config, proxies)
    return _SCORERS[key]


def batch_hash(batch: Any) -> str:
    return array_hash(np.asarray(batch.images)) + array_hash(np.asarray(batch.labels))[:8]


def canonical_arch(arch: Any) -> str:
    return nb201.as_genotype(arch).to_string()


def shard(items: Sequence, process_index: int, process_count: int) -> list:
    """The items one process scores: every ``process_count``-th, starting at its index."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in 0..{process_count - 1}")
    return list(items[process_index::process_count])


def compute_chunk(tasks: list[Task], batch: Any, config: SweepConfig) -> list[Record]:
    """Scores a chunk of tasks, grouping the seeds of each architecture into one call."""
    by_arch: dict[tuple[str, tuple[str, ...]], list[Task]] = {}
    for task in tasks:
        by_arch.setdefault((task.arch, task.proxies), []).append(task)
    records = []
    for (arch, names), group in by_arch.items():
        start = time.perf_counter()
        seeds = [t.seed for t in group]
        fast, slow = config.split_proxies(names)
        scores: dict[str, np.ndarray] = {}
        if fast:
            scores.update(supernet_scorer(config, fast)(arch, seeds, batch))
        if slow:
            scores.update(score(config.build(arch), batch, slow, seeds,
                                strategy=config.strategy, jit=config.jit_static).scores)
        seconds = (time.perf_counter() - start) / (len(group) * len(names))
        for i, task in enumerate(group):
            for name in names:
                value = float(scores[name][i])
                reason = None if not np.isnan(value) else f"{name} gave NaN (see log)"
                records.append(task.record(name, value, reason=reason, seconds=seconds))
    return records


def sweep(
    archs: Iterable[Any],
    seeds: Sequence[int],
    batch: Any,
    config: SweepConfig,
    store: ResultStore,
    *,
    chunk_size: int | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Scores ``archs x seeds`` with ``config.proxies`` into ``store``, skipping what it has.

    Args:
      archs: architectures (Genotypes, strings or indices); duplicates are scored once.
      seeds: initialisation seeds.
      batch: the data batch (``zcjax.data.Batch``); its hash is part of every key.
      config: the network and proxies.
      store: the result store (one file per process when sharding over hosts).
      chunk_size: tasks per write; defaults to the seeds of 4 architectures.
      process_index, process_count: this process's share (defaults: JAX's runtime).
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    unique = list(dict.fromkeys(canonical_arch(a) for a in archs))
    mine = shard(unique, process_index, process_count)
    tasks = make_tasks(config.space, mine, seeds, config.proxies, config.hash(),
                       batch_hash(batch))
    chunk = chunk_size or 4 * max(1, len(seeds))
    return run_resumable(tasks, lambda ts: compute_chunk(ts, batch, config), store,
                         chunk_size=chunk, progress=progress, desc=f"{config.space} sweep")
