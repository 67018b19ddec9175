"""Score one architecture: several proxies x several initialisations, in one compiled program.

``score(model, batch, proxies, seeds)`` is the public entry for one network:

1. each seed gives two keys, one to initialise the network, one for proxies that draw random
   numbers (``jax.random.fold_in(jax.random.key(seed), 0 / 1)``), so a score is reproducible
   from its seed alone;
2. the variables of all seeds are initialised (outside the proxy program: initialising inside
   it tripled compile times in our measurements);
3. one function evaluates every requested proxy on one shared
   :class:`~zcjax.proxies.context.Context`, so proxies that need the same pass share it;
4. that function runs over the seeds with vmap semantics. How it executes is a per-backend
   choice (``strategy``), because a JAX transform is not fast everywhere. On CPU, ``vmap`` over
   initialisations turns convolutions with batched weights into grouped convolutions (53 s
   against 8.3 s for a loop, 8 seeds of the largest NB201 cell), and ``lax.map`` puts the
   network inside a while loop, where XLA:CPU's ``ConvCanonicalization`` pass (it only visits the
   entry computation) leaves the gradient convolutions in a slow generic form (27.1 s against
   0.78 s for 2 seeds of grad_norm). ``"auto"`` therefore picks ``"loop"`` (one compiled
   function called per seed) on CPU and ``"vmap"`` on accelerators.

NaN scores stay NaN: each one is logged with the proxy, the seed and a reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from zcjax import contract, data, profiling, validation
from zcjax import proxies as proxies_lib
from zcjax.proxies.context import Context
from zcjax.spaces.blocks import compiled_blocks

Array = jax.Array
STRATEGIES = ("auto", "vmap", "map", "loop")


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Per-seed scores of one architecture.

    Attributes:
      scores: proxy name -> array (n_seeds,) of float64 (NaN where the proxy failed).
      seeds: the seeds, in the order of the arrays.
    """

    scores: Mapping[str, np.ndarray]
    seeds: tuple[int, ...]

    def mean(self, name: str) -> float:
        return float(np.nanmean(self.scores[name])) if np.isfinite(
            self.scores[name]).any() else float("nan")

    def std(self, name: str) -> float:
        return float(np.nanstd(self.scores[name])) if np.isfinite(
            self.scores[name]).any() else float("nan")

    def summary(self) -> dict[str, tuple[float, float]]:
        """proxy -> (mean, std) over seeds, NaN seeds left out."""
        return {name: (self.mean(name), self.std(name)) for name in self.scores}


def seed_keys(seed: int) -> tuple[Array, Array]:
    """(init key, proxy key) of a seed (an integer in ``0..2**31-1``, see
    :func:`zcjax.validation.check_seed`)."""
    base = jax.random.key(validation.check_seed(seed))
    return jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)


def resolve_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy != "auto":
        return strategy
    return "loop" if jax.default_backend() == "cpu" else "vmap"


def proxy_suite(names: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None
                ) -> Callable[[Callable, Any, Any, Array], dict[str, Array]]:
    """One function evaluating the named proxies on a shared Context (fused evaluation).

    Each proxy is traced under the named scope ``proxy.<name>`` and each shared pass under
    ``pass.<what>``: metadata that :mod:`zcjax.profiling` reads to say which costs what.

    ``options``: per proxy name, keyword options (a search space's reference constants, see
    :attr:`zcjax.spaces.base.SearchSpace.proxy_options`); names of other proxies are ignored.
    """
    infos = [proxies_lib.get(n) for n in names]
    options = options or {}

    def evaluate(apply_fn, variables, batch, key) -> dict[str, Array]:
        ctx = Context(apply_fn, variables, batch, key)
        out = {}
        for info in infos:  # each under its own scope: see zcjax.profiling
            with jax.named_scope(profiling.proxy_scope(info.name)):
                out[info.name] = jnp.asarray(info.evaluate(ctx, options.get(info.name)),
                                             jnp.float32)
        return out

    return evaluate


def init_variables(model: nn.Module, seeds: Sequence[int], input_shape,
                   dtype=jnp.float32) -> list:
    """Variables for each seed (``{"params": ...}``), initialised with the seed's init key.

    ``input_shape`` is one example's shape (``(H, W, C)`` images, ``(T,)`` tokens) and ``dtype``
    its dtype (float32 images, int32 token ids).

    Eager, not jitted: a jitted init is one more compilation per architecture (~10 s of CPU
    at C=4, N=1), while eager initialisation compiles each parameter shape's random draw once
    per process and then takes ~0.1 s for any further cell.
    """
    dummy = jnp.zeros((1, *input_shape), dtype)
    return [{"params": model.init(seed_keys(s)[0], dummy)["params"]} for s in seeds]


def check_inputs(batch: Any, proxies: Sequence[str], input_spec: Any = None) -> str:
    """The kind of the batch's inputs (``"images"`` or ``"tokens"``), after checking them.

    Checks that the labels fit the inputs, that every proxy applies to that kind
    (:meth:`~zcjax.proxies.base.ProxyInfo.check_input`, a clear error naming the proxy
    otherwise) and, given the space's ``input_spec`` (:class:`zcjax.spaces.base.InputSpec`),
    that the batch is what the space's networks take (kind, example shape, dtype).
    """
    inputs, labels = batch.inputs, batch.labels
    kind = contract.input_kind(inputs)
    label_shape = tuple(inputs.shape[:1 if kind == "images" else 2])
    if tuple(labels.shape) != label_shape:
        raise ValueError(f"batch has {kind} of shape {tuple(inputs.shape)} but labels of shape "
                         f"{tuple(labels.shape)} (expected {label_shape})")
    if input_spec is not None:
        expected = (input_spec.kind, tuple(input_spec.shape), str(input_spec.dtype))
        found = (kind, tuple(inputs.shape[1:]), str(inputs.dtype))
        if expected != found:
            raise ValueError(f"the network takes {expected[0]} of shape {expected[1]} and dtype "
                             f"{expected[2]} per example; the batch holds {found[0]} of shape "
                             f"{found[1]} and dtype {found[2]}")
    for name in proxies:
        proxies_lib.get(name).check_input(kind)
    return kind


def score(
    model: nn.Module,
    batch: Any,
    proxies: Sequence[str],
    seeds: Sequence[int] = (0,),
    *,
    strategy: str = "auto",
    jit: bool = True,
    blocks: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    input_spec: Any = None,
) -> ScoreResult:
    """Scores one network with several proxies over several initialisations.

    Args:
      model: a Flax module following the proxy contract (e.g. ``zcjax.spaces.nb201.build``).
      batch: ``zcjax.data.Batch`` (images NHWC, labels ``(N,)``) or ``zcjax.data.TokenBatch``
        (token ids ``(N, T)``, next tokens ``(N, T)``). A proxy that does not apply to the
        batch's kind of input is refused with an error naming it (see :func:`check_inputs`).
      proxies: registered proxy names (see ``zcjax.proxies.names()``).
      seeds: one initialisation per seed.
      strategy: how to run over seeds: ``"vmap"``, ``"map"`` (``lax.map``), ``"loop"`` (a
        Python loop over one compiled function), or ``"auto"`` (per backend, see module doc).
      jit: compile (the default) or run eagerly: op by op (e.g. to debug), or, with
        ``blocks``, with the network's marked blocks compiled once each.
      blocks: with ``jit=False``, run the blocks the network marks with
        :func:`zcjax.spaces.blocks.compiled_block` compiled, once per block and input shape
        for every architecture (:mod:`zcjax.spaces.blocks`): no compilation per architecture,
        and much less dispatch than op by op (grasp on NB201's largest cell: about 2x faster).
      options: per proxy, keyword options (a search space's reference constants:
        ``zcjax.spaces.get(name).proxy_options``; defaults are NAS-Bench-201's).
      input_spec: what the network takes (``space.input_spec(config)``): the batch must match
        its kind, shape and dtype, and the proxies must apply to its kind. Without it the batch
        is checked for structure, values and (where the model has ``num_classes``) label range.

    Raises:
      ValueError: an unknown or repeated proxy, no seeds, a seed outside ``0..2**31-1``, a
        proxy that does not apply to the network's inputs, a batch that does not fit the
        network (:func:`zcjax.data.check_batch`), or ``blocks`` with ``jit``.

    Returns:
      a :class:`ScoreResult` with one score per proxy and seed.
    """
    if blocks and jit:
        raise ValueError("blocks=True compiles a network's blocks for eager execution; it "
                         "needs jit=False (under jit the whole program is compiled already)")
    names = [proxies_lib.get(n).name for n in proxies]
    if not names:
        raise ValueError("no proxies asked for")
    if len(set(names)) != len(names):
        raise ValueError(f"proxies listed twice: {list(proxies)}")
    seeds = tuple(validation.check_seed(s) for s in seeds)
    if not seeds:
        raise ValueError("no seeds given")
    infos = [proxies_lib.get(n) for n in names]
    data.check_batch(batch, input_spec=input_spec, num_classes=getattr(model, "num_classes", None),
                     min_size=max(info.min_batch for info in infos))
    check_inputs(batch, names, input_spec)
    inputs = batch.inputs

    # Under blocks, proxies whose draws follow the sown order run op by op (ProxyInfo).
    in_order = [n for n in names if blocks and proxies_lib.get(n).draws_in_sown_order]
    suite = proxy_suite([n for n in names if n not in in_order], options)
    op_by_op = proxy_suite(in_order, options) if in_order else None
    variables = init_variables(model, seeds, inputs.shape[1:], inputs.dtype)
    proxy_keys = [seed_keys(s)[1] for s in seeds]

    def one(variables_, key):
        with compiled_blocks() if blocks else contextlib.nullcontext():
            out = suite(model.apply, variables_, batch, key)
        if op_by_op:
            out.update(op_by_op(model.apply, variables_, batch, key))
        return out

    strategy = resolve_strategy(strategy)
    if strategy == "loop" or not jit:
        fn = jax.jit(one) if jit else one
        rows = [fn(v, k) for v, k in zip(variables, proxy_keys)]
        stacked = {n: np.array([np.asarray(r[n]) for r in rows]) for n in names}
    else:
        stacked_vars = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *variables)
        keys = jnp.stack(proxy_keys)
        if strategy == "vmap":
            run = jax.jit(jax.vmap(one))
            out = run(stacked_vars, keys)
        else:
            run = jax.jit(lambda vs, ks: jax.lax.map(lambda a: one(*a), (vs, ks)))
            out = run(stacked_vars, keys)
        stacked = {n: np.asarray(out[n]) for n in names}

    scores = {n: stacked[n].astype(np.float64) for n in names}
    _log_non_finite(model, scores, seeds)
    return ScoreResult(scores=scores, seeds=seeds)


def _log_non_finite(model, scores, seeds) -> None:
    arch = getattr(model, "genotype", None) or getattr(model, "recipe", None)
    label = validation.cap(getattr(arch, "to_string", lambda: type(model).__name__)())
    for name, values in scores.items():
        for seed, value in zip(seeds, values):
            if not np.isfinite(value):
                logging.warning(
                    "proxy %s gave %s for %s, seed %d: a non-finite intermediate (overflow, a "
                    "constant output, or a singular matrix); kept as NaN, not replaced",
                    name, value, label, seed)
