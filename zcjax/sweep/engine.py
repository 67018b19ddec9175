"""The sweep engine: many architectures x seeds x proxies on any search space, resumable and
shardable over hosts.

``sweep(archs, seeds, batch, config, store)`` scores every (architecture, seed) that the store
lacks, chunk by chunk (see :mod:`zcjax.sweep.runner`), so a crash or Ctrl-C loses at most the
chunk in flight and a rerun skips what is stored. The space (``SweepConfig.space``) is looked up
in the registry (:mod:`zcjax.spaces`); the engine knows spaces only through the
:class:`~zcjax.spaces.base.SearchSpace` protocol.

Hosts: with ``process_index`` / ``process_count`` (by default ``jax.process_index()`` and
``jax.process_count()``, i.e. JAX's multi-process runtime after ``jax.distributed.initialize``),
each process takes every ``process_count``-th architecture and writes its own store; merge them
afterwards with :meth:`ResultStore.merge_from`.

Routes (``SweepConfig.compile``):

- ``"static"`` builds one Flax module per architecture and compiles its proxy program (one
  compilation per architecture: 4-14 s for gradient proxies on NB201 at C=16 N=5, 1-5 min for
  grasp, meco and croze; about a day over NAS-Bench-201). The reference the others are tested
  against.
- ``"eager"`` runs the same static modules op by op, without ``jit``: JAX compiles each primitive
  once per shape, and every architecture reuses those, so after the first one nothing
  compiles. Measured on 2 CPU cores (NB201, C=16 N=5, batch 64, a loaded machine): fisher
  3.5-7 s, grasp 6-12 s, meco + croze 24-28 s per cell, against minutes of compilation per cell
  for ``"static"``.
- ``"blocks"``: ``"eager"`` with the networks' marked blocks (ReLU-Conv-BN, a DARTS
  separable convolution, a residual block: :mod:`zcjax.spaces.blocks`) compiled once each and
  reused by every architecture: no compilation per architecture either, and about half the
  time of ``"eager"`` (grasp on NB201 cell 1462: 8 s against 15-17 s, same machine). Scores
  agree with ``"eager"`` to float32 rounding (XLA fuses inside a block).
- ``"supernet"``: the space's compile-once network (:meth:`SearchSpace.scorer`, e.g. NB201's
  supernet with the genotype as data), one compiled program for every architecture, for the
  proxies it scores exactly (:attr:`CompileOnceNetwork.exact_proxies`); the others go through
  ``"static"``.
- ``"auto"`` (the default): the compile-once network for the proxies it scores exactly and fast
  (:attr:`CompileOnceNetwork.preferred_proxies`), ``"blocks"`` for the rest; spaces without a
  compile-once network run everything on ``"blocks"``. No compilation per architecture.

``params`` and ``flops`` are functions of the architecture and the network configuration: under
``"auto"`` and ``"supernet"`` they come from the space's counts (:meth:`SearchSpace.param_count`,
:meth:`SearchSpace.flops`; tested equal to the proxies on the network) without building,
initialising or tracing any network.

Numbers behind the choice: ``experiments/benchmark.py`` and the NB201 supernet's docstring.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from zcjax import profiling, spaces
from zcjax import proxies as proxies_lib
from zcjax.scoring import proxy_suite, resolve_strategy, score, seed_keys
from zcjax.spaces.base import CompileOnceNetwork, NetworkConfig, SearchSpace
from zcjax.sweep.progress import Progress
from zcjax.sweep.runner import SweepSummary, Task, make_tasks, run_resumable
from zcjax.sweep.store import Record, ResultStore, array_hash, config_hash

COMPILE = ("auto", "static", "supernet", "eager", "blocks")
#: Proxies that are a count the space can make without a network (see the module doc).
COUNTED = ("params", "flops")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What determines a score besides the architecture, the seed and the batch.

    Attributes:
      proxies: proxy names (aliases are resolved).
      space: the search space's registry name (:func:`zcjax.spaces.names`).
      network: the space's network configuration (``None``: the benchmark's network,
        ``space.config()``).
      strategy: how the seeds of one architecture run (see :func:`zcjax.score`); it does not
        change the scores, so it is not part of :meth:`hash`.
      compile: the route (module doc): scores agree to float rounding between routes (tested),
        so it is not part of :meth:`hash` either.
      proxy_options: per proxy, options that override the space's reference constants
        (``space.proxy_options``); part of :meth:`hash` when given.
    """

    proxies: tuple[str, ...]
    space: str = "nb201"
    network: NetworkConfig | None = None
    strategy: str = "auto"
    compile: str = "auto"
    proxy_options: Mapping[str, Mapping[str, Any]] | None = None

    def __post_init__(self):
        space = spaces.get(self.space)
        object.__setattr__(self, "proxies", tuple(proxies_lib.get(p).name for p in self.proxies))
        network = space.config() if self.network is None else space.check_config(self.network)
        object.__setattr__(self, "network", network)
        if self.compile not in COMPILE:
            raise ValueError(f"unknown compile {self.compile!r}; expected one of {COMPILE}")
        kind = space.input_spec(network).kind
        for name in self.proxies:
            if name in space.unsupported_proxies:
                raise ValueError(f"proxy {name!r} does not apply to {space.name}: "
                                 f"{space.unsupported_proxies[name]}")
            proxies_lib.get(name).check_input(kind)
        for name, options in (self.proxy_options or {}).items():
            unknown = sorted(set(options) - set(proxies_lib.get(name).options))
            if unknown:
                raise ValueError(f"proxy {name!r} takes no option(s) {unknown}")

    @property
    def search_space(self) -> SearchSpace:
        return spaces.get(self.space)

    def options(self) -> dict[str, dict[str, Any]]:
        """Per-proxy options: the space's reference constants, overridden by ``proxy_options``."""
        merged = {k: dict(v) for k, v in self.search_space.proxy_options.items()}
        for name, options in (self.proxy_options or {}).items():
            merged.setdefault(proxies_lib.get(name).name, {}).update(options)
        return merged

    def hash(self) -> str:
        """Identifies the network setup in the store (space, network, option overrides)."""
        fields = {"space": self.space, **self.network.fields()}
        if self.proxy_options:
            fields["proxy_options"] = {proxies_lib.get(k).name: dict(v)
                                       for k, v in sorted(self.proxy_options.items())}
        return config_hash(fields)

    def build(self, arch: Any):
        return self.search_space.build(arch, self.network)

    def counted_scores(self, arch: Any, names: Sequence[str]) -> dict[str, float]:
        """The scores of ``names`` that the space counts without a network (module doc):
        ``params`` / ``flops`` under ``"auto"`` and ``"supernet"`` where the space counts them."""
        if self.compile in ("static", "eager", "blocks"):
            return {}
        out = {n: counted(self.search_space, arch, self.network, n)
               for n in names if n in COUNTED}
        return {n: v for n, v in out.items() if v is not None}

    def split_proxies(self, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(proxies run by the compile-once network, proxies run by static modules)."""
        if self.compile in ("static", "eager", "blocks"):
            return (), tuple(names)
        scorer = compile_once(self)
        if scorer is None:
            return (), tuple(names)
        on_it = scorer.exact_proxies if self.compile == "supernet" else scorer.preferred_proxies
        fast = tuple(n for n in names if n in on_it)
        return fast, tuple(n for n in names if n not in fast)

    @property
    def static_route(self) -> str:
        """How the static modules run: compiled per architecture (``"static"``, under
        ``"static"`` and ``"supernet"``), op by op (``"eager"``), or eagerly with compiled
        blocks (``"blocks"``, under ``"blocks"`` and ``"auto"``)."""
        return {"supernet": "static", "auto": "blocks"}.get(self.compile, self.compile)

    @property
    def jit_static(self) -> bool:
        """Whether the static modules' proxies are compiled (else run eagerly)."""
        return self.static_route == "static"

    @property
    def compiled_blocks(self) -> bool:
        """Whether the static modules run eagerly with their blocks compiled."""
        return self.static_route == "blocks"


def counted(space: SearchSpace, arch: Any, network: NetworkConfig, name: str) -> float | None:
    """``params`` or ``flops`` of ``arch`` from the space's counts, as the proxy returns it
    (millions, rounded to float32), or ``None`` where the space does not count it."""
    count = space.param_count(arch, network) if name == "params" else space.flops(arch, network)
    return None if count is None else float(np.float32(count / 1e6))


_COMPILE_ONCE: dict = {}


def compile_once(config: SweepConfig) -> CompileOnceNetwork | None:
    """The space's compile-once network for the config's network (cached), or ``None``."""
    key = (config.space, config.network)
    if key not in _COMPILE_ONCE:
        _COMPILE_ONCE[key] = config.search_space.scorer(config.network)
    return _COMPILE_ONCE[key]


class CompileOnceScorer:
    """Scores any architecture of a space with one compiled program per (proxy set, batch
    shape, backend), on the space's :class:`~zcjax.spaces.base.CompileOnceNetwork`.

    On CPU each (architecture, seed) is one call of the compiled program (a Python loop keeps
    the network in XLA's entry computation, where XLA:CPU canonicalises convolutions;
    ``lax.map`` would put it in a while body). Where :func:`zcjax.scoring.resolve_strategy`
    picks ``"vmap"`` (accelerators, or ``strategy="vmap"``), the seeds of an architecture run
    as one ``vmap``-ped call. Parameters are initialised once per seed for all architectures.

    The per-seed program is compiled ahead of time, once per batch shape, by :meth:`compile`
    (the sweep calls it before it times any task, see :func:`sweep`), or else by the first
    call; every call then runs that executable. The ``vmap``-ped program compiles on its first
    call.
    """

    def __init__(self, config: SweepConfig, proxies: Sequence[str]):
        self.config = config
        self.names = tuple(proxies)
        self.network = compile_once(config)
        if self.network is None:
            raise ValueError(f"search space {config.space!r} has no compile-once network")
        module = self.network.module()
        suite = proxy_suite(self.names, config.options())

        def one(params, arch_data, batch, key):
            with jax.named_scope(profiling.pass_scope("architecture_variables")):
                variables = self.network.variables_for(params, arch_data)
            return suite(module.apply, variables, batch, key)

        self.one = one
        self.run = jax.jit(one)
        self.run_seeds = jax.jit(jax.vmap(one, in_axes=(0, None, None, 0)))
        self.vmap_seeds = resolve_strategy(config.strategy) == "vmap"
        self._params: dict = {}
        self._programs: dict = {}  # batch shapes and dtypes -> compiled executable

    def params(self, seed: int, input_shape) -> Any:
        key = (int(seed), tuple(input_shape))
        if key not in self._params:
            self._params[key] = self.network.init_params(seed_keys(seed)[0], tuple(input_shape))
        return self._params[key]

    @staticmethod
    def _signature(batch: Any) -> tuple:
        return tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(batch))

    def is_compiled(self, batch: Any) -> bool:
        """Whether the program for this batch's shapes is compiled already."""
        return self._signature(batch) in self._programs

    def compile(self, arch: Any, seed: int, batch: Any):
        """The compiled program for the batch's shapes, compiled now if it is not yet.

        ``arch`` and ``seed`` provide example arguments (every architecture has the same
        argument shapes). The other one-time costs come with it: the seed's parameters are
        initialised (which compiles the eager initialisation's primitives), and the program
        runs once, because an executable's first run also sets up (measured at C=4 N=1,
        batch 64: 0.54 s against 0.05-0.34 s for the next five calls), so that the first
        task costs what every other task does.
        """
        signature = self._signature(batch)
        if signature not in self._programs:
            args = self._args(arch, seed, batch)
            program = self.run.lower(*args).compile()
            jax.block_until_ready(program(*args))
            self._programs[signature] = program
        return self._programs[signature]

    def profile(self, arch: Any, seed: int, batch: Any, repeats: int = 3) -> profiling.Profile:
        """Where the per-seed program spends its time on ``arch``: seconds per call by shared
        pass and by proxy (:func:`zcjax.profiling.profile_compiled`)."""
        return profiling.profile_compiled(self.compile(arch, seed, batch),
                                          self._args(arch, seed, batch), repeats)

    def _args(self, arch: Any, seed: int, batch: Any) -> tuple:
        """The per-seed program's arguments for one (architecture, seed)."""
        return (self.params(seed, batch.inputs.shape[1:]),
                jnp.asarray(self.network.arch_data(arch)), batch, seed_keys(seed)[1])

    def __call__(self, arch: Any, seeds: Sequence[int], batch: Any) -> dict[str, np.ndarray]:
        """proxy -> (len(seeds),) float64 scores of one architecture."""
        if not seeds:
            return {n: np.zeros(0) for n in self.names}
        program = self.compile(arch, seeds[0], batch)
        data = jnp.asarray(self.network.arch_data(arch))
        shape = batch.inputs.shape[1:]
        if self.vmap_seeds and len(seeds) > 1:
            params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs),
                                            *[self.params(s, shape) for s in seeds])
            keys = jnp.stack([seed_keys(s)[1] for s in seeds])
            out = self.run_seeds(params, data, batch, keys)
            return {n: np.asarray(out[n], np.float64) for n in self.names}
        outs = [program(self.params(s, shape), data, batch, seed_keys(s)[1]) for s in seeds]
        return {n: np.array([float(o[n]) for o in outs]) for n in self.names}

    def score_sharded(self, archs: Sequence[Any], seeds: Sequence[int], batch: Any,
                      mesh: jax.sharding.Mesh, axis: str = "items") -> dict[str, np.ndarray]:
        """proxy -> (len(archs), len(seeds)) with the (arch, seed) items split over ``mesh``.

        Each device runs ``lax.map`` over its share (the architecture stays unbatched, so a
        switch runs only the chosen operations). Meant for accelerators; on XLA:CPU the while
        body of ``lax.map`` misses the convolution canonicalisation of the stem and reductions.
        """
        from jax.sharding import NamedSharding, PartitionSpec as P

        if "fisher" in self.names and mesh.devices.flat[0].platform == "cpu":
            # Measured with jax 0.10.2 on 4 host devices: the program crashes XLA:CPU
            # (segmentation fault) at run time; every other supernet proxy runs and is tested.
            raise NotImplementedError(
                "fisher under score_sharded crashes XLA:CPU (segfault, jax 0.10.2); score it "
                "with the per-architecture loop (CompileOnceScorer.__call__ / sweep) on CPU")
        shape = batch.inputs.shape[1:]
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs),
                                         *[self.params(s, shape) for s in seeds])
        items = [(a, j) for a in range(len(archs)) for j in range(len(seeds))]
        n_dev = mesh.shape[axis]
        pad = -len(items) % n_dev
        items += [items[-1]] * pad
        data = np.stack([self.network.arch_data(archs[a]) for a, _ in items])
        seed_idx = np.array([j for _, j in items], np.int32)
        keys = np.stack([np.asarray(jax.random.key_data(seed_keys(seeds[j])[1]))
                         for _, j in items])

        def local(params, data, seed_idx, keys, batch):
            # The batch is replicated (unvarying over the mesh axis). Differentiating with
            # respect to an unvarying value inside shard_map sums its cotangent over the axis,
            # so input gradients (jacob_cov, epe_nas) came out as sums over every device's
            # items: make the batch varying, i.e. each device's own copy.
            batch = jax.tree.map(lambda x: jax.lax.pcast(x, axis, to="varying"), batch)

            def body(item):
                d, j, k = item
                p = jax.tree_util.tree_map(lambda a: a[j], params)
                return self.one(p, d, batch, jax.random.wrap_key_data(k))
            return jax.lax.map(body, (data, seed_idx, keys))

        fn = jax.jit(jax.shard_map(local, mesh=mesh,
                                   in_specs=(P(), P(axis), P(axis), P(axis), P()),
                                   out_specs=P(axis)))
        put = lambda x: jax.device_put(x, NamedSharding(mesh, P(axis)))  # noqa: E731
        out = fn(stacked, put(data), put(seed_idx), put(keys), batch)
        n = len(items) - pad
        return {name: np.asarray(out[name])[:n].astype(np.float64).reshape(len(archs), len(seeds))
                for name in self.names}


_SCORERS: dict = {}


def compile_once_scorer(config: SweepConfig, proxies: Sequence[str]) -> CompileOnceScorer:
    """The cached scorer of a config and proxy set (its compiled program is reused)."""
    key = (config.space, config.network, config.hash(), tuple(proxies))
    if key not in _SCORERS:
        _SCORERS[key] = CompileOnceScorer(config, proxies)
    return _SCORERS[key]


def batch_hash(batch: Any) -> str:
    return array_hash(np.asarray(batch.inputs)) + array_hash(np.asarray(batch.labels))[:8]


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
    spec = config.search_space.input_spec(config.network)
    records = []
    for (arch, names), group in by_arch.items():
        start = time.perf_counter()
        seeds = [t.seed for t in group]
        scores: dict[str, np.ndarray] = {
            n: np.full(len(seeds), v) for n, v in config.counted_scores(arch, names).items()}
        fast, slow = config.split_proxies([n for n in names if n not in scores])
        if fast:
            scores.update(compile_once_scorer(config, fast)(arch, seeds, batch))
        if slow:
            scores.update(score(config.build(arch), batch, slow, seeds, strategy=config.strategy,
                                jit=config.jit_static, blocks=config.compiled_blocks,
                                options=config.options(), input_spec=spec).scores)
        seconds = (time.perf_counter() - start) / (len(group) * len(names))
        for i, task in enumerate(group):
            for name in names:
                value = float(scores[name][i])
                reason = None if not np.isnan(value) else f"{name} gave NaN (see log)"
                records.append(task.record(name, value, reason=reason, seconds=seconds))
    return records


def profile_architecture(arch: Any, seed: int, batch: Any, config: SweepConfig,
                         repeats: int = 3) -> profiling.Profile:
    """Where :func:`compute_chunk` spends its time on one (architecture, seed): seconds per
    call by shared pass and proxy inside the compile-once program
    (:meth:`CompileOnceScorer.profile`), plus ``<route>.<proxy>`` for each proxy on the static
    modules (the route is :attr:`SweepConfig.static_route`: ``blocks``, ``eager`` or
    ``static``) and ``counted.<proxy>`` for the counted ones (each timed alone, median of
    ``repeats`` after a first, warming call; a proxy run alone pays for any pass it would share
    with another proxy on the static modules). Compiles what is not compiled yet; compilation
    is not counted.
    """
    names = config.proxies
    total = profiling.Profile(0.0, {})
    timed: dict[str, Any] = {
        f"counted.{n}": (lambda n=n: config.counted_scores(arch, [n]))
        for n in config.counted_scores(arch, names)}
    fast, slow = config.split_proxies([n for n in names if f"counted.{n}" not in timed])
    if fast:
        total = total.plus(compile_once_scorer(config, fast).profile(arch, seed, batch, repeats))
    spec = config.search_space.input_spec(config.network)
    for n in slow:
        timed[f"{config.static_route}.{n}"] = (
            lambda n=n: score(config.build(arch), batch, [n], [seed], strategy=config.strategy,
                              jit=config.jit_static, blocks=config.compiled_blocks,
                              options=config.options(), input_spec=spec))
    for label, call in timed.items():
        call()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        median = float(np.median(seconds))
        total = total.plus(profiling.Profile(median, {label: median}))
    return total


def compile_programs(tasks: Sequence[Task], batch: Any, config: SweepConfig,
                     progress: Progress) -> None:
    """Compiles the compile-once programs ``tasks`` need that this process has not compiled,
    each as a phase of ``progress`` (announced, timed, left out of the ETA).

    Usually one program; more when some tasks lack only some proxies (each proxy set is its
    own program).
    """
    cache = jax.config.jax_compilation_cache_dir
    where = (f"cached in {cache}: later runs skip most of it" if cache else
             "no persistent compilation cache, so every run compiles it; "
             "zcjax.workspace.enable_compilation_cache turns one on")
    first: dict[tuple[str, ...], Task] = {}
    for task in tasks:
        first.setdefault(config.split_proxies(task.proxies)[0], task)
    for fast, task in first.items():
        if not fast:
            continue
        scorer = compile_once_scorer(config, fast)
        if scorer.is_compiled(batch):
            continue
        with progress.phase(f"compiling the {config.space} program for {', '.join(fast)} "
                            f"({where})", label="compiling"):
            scorer.compile(task.arch, task.seed, batch)


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
    progress: bool | Progress = True,
) -> SweepSummary:
    """Scores ``archs x seeds`` with ``config.proxies`` into ``store``, skipping what it has.

    Args:
      archs: architectures of ``config.space`` (genotypes or strings; NB201 also takes
        indices); duplicates are scored once.
      seeds: initialisation seeds.
      batch: the data batch (``zcjax.data.Batch``); its hash is part of every key; it is
        checked against the network once, before anything runs.
      config: the space, network and proxies.
      store: the result store (one file per process when sharding over hosts).
      chunk_size: tasks per write; defaults to the seeds of 4 architectures.
      process_index, process_count: this process's share (defaults: JAX's runtime).
      progress: print progress lines to stderr (or pass a
        :class:`~zcjax.sweep.progress.Progress`). When anything is left to compute, the
        compile-once program is compiled first, as a phase of the display
        (:func:`compile_programs`): announced, timed and left out of the per-task rate, so
        the ETA after the first chunk reflects running, not compiling. Proxies run eagerly
        (on NB201: grasp, meco, croze, params, flops) still compile each primitive the first
        time an architecture uses it, so with them the first chunks are slower than the
        rest and the ETA settles after a few chunks (measured at C=4 N=1 with meco, params
        and flops: 5x the real remaining time after the first chunk, 1.8x after the second).
    """
    from zcjax import data

    space = config.search_space
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    data.check_batch(batch, input_spec=space.input_spec(config.network),
                     num_classes=config.network.num_classes,
                     min_size=max(proxies_lib.get(p).min_batch for p in config.proxies))
    for name, reason in space.uninformative_proxies(config.network).items():
        if name in config.proxies:
            logging.warning("%s on %s carries no information about the architecture: %s",
                            name, space.name, reason)
    unique = list(dict.fromkeys(space.key(a) for a in archs))
    mine = shard(unique, process_index, process_count)
    tasks = make_tasks(config.space, mine, seeds, config.proxies, config.hash(),
                       batch_hash(batch))
    chunk = chunk_size or 4 * max(1, len(seeds))
    return run_resumable(tasks, lambda ts: compute_chunk(ts, batch, config), store,
                         chunk_size=chunk, progress=progress, desc=f"{config.space} sweep",
                         prepare=lambda ts, bar: compile_programs(ts, batch, config, bar))
