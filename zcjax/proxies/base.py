"""The proxy contract, the registry, and the helpers every proxy shares.

Contract
--------
Every proxy is a pure, jit-able function::

    score = proxy(apply_fn, variables, batch, key)   # -> float32 scalar

- ``apply_fn(variables, inputs, *, use_bn=True, mutable=False)`` is a Flax ``Module.apply``
  that honours the network-proxy contract (:mod:`zcjax.contract`): ``use_bn=False`` and the
  sown intermediates are what proxies read. A proxy never imports a search space.
- ``variables`` is ``{"params": ...}``: networks keep no running statistics.
- ``batch`` has ``inputs`` and integer ``labels``: images ``(N, H, W, C)`` with ``(N,)`` classes
  (``zcjax.data.Batch``), or token ids ``(N, T)`` with their next tokens ``(N, T)``
  (``zcjax.data.TokenBatch``). ``ProxyInfo.inputs`` says which kinds a proxy applies to.
- ``key`` is a PRNG key for proxies that draw random numbers (Zen-NAS, CRoZe); others ignore it.

Internally a proxy is written against a :class:`~zcjax.proxies.context.Context`, which computes
each shared pass (forward, parameter gradients, input gradients, intermediates) once; the public
function builds a fresh context. :func:`zcjax.score` builds one context for many proxies, which is
how fused evaluation shares passes.

"Which layers count": like the references (``get_layer_metric_array`` in zero-cost-nas and
NASLib), per-weight proxies sum over the kernels of convolutions and linear layers only; biases
and batch-norm parameters are left out. :func:`zcjax.contract.is_layer_weight` is that rule.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from zcjax.contract import is_layer_weight, path_names
from zcjax.proxies.context import ApplyFn, Context, Variables, cross_entropy

Array = jax.Array

__all__ = ["ApplyFn", "Context", "ContextFn", "ProxyInfo", "REGISTRY", "Variables", "get",
           "names", "register", "cross_entropy", "is_layer_weight", "path_names",
           "layer_weights", "sum_over_layers"]

#: (context) -> scalar; the form in which proxies are registered.
ContextFn = Callable[[Context], Array]


@dataclasses.dataclass(frozen=True)
class ProxyInfo:
    """A registered proxy and what it needs.

    Attributes:
      name: the conventional name (as in NAS-Bench-Suite-Zero where it exists).
      fn: the pure public function ``(apply_fn, variables, batch, key) -> scalar``.
      from_context: the same computation written against a shared :class:`Context`.
      needs_labels: reads ``batch.labels``.
      needs_gradients: needs a backward pass.
      data_free: ignores the values of the batch's inputs (and labels).
      higher_is_better: sign convention of the published score (True for all but a few).
      batch_size: the batch size of the reference experiments.
      paper: citation of the paper that introduced it.
      reference: the implementation whose conventions are reproduced.
      version: bump when a proxy's definition changes (a fix that changes its scores): the
        result store keys every score by it, so stored scores of an older version are never
        reused for the new one.
      options: keyword options ``from_context`` accepts besides the context: the constants a
        search space sets for its reference (``SearchSpace.proxy_options``, e.g. epsilon's
        ``weights``). Their defaults are the NAS-Bench-201 reference's.
      inputs: the input kinds (``zcjax.spaces.base.InputSpec.kind``) the proxy applies to;
        scoring a network of another kind is refused with an error naming the proxy.
      min_batch: the smallest batch the proxy is defined on (2 for those that correlate or
        split the samples of a batch).
      draws_in_sown_order: its random draws are dealt to the network's sown sites in the order
        the network sows them. A network run with compiled blocks (:mod:`zcjax.spaces.blocks`)
        returns each block's sown values in key order instead, so :func:`zcjax.score` runs such
        a proxy op by op there, and its scores stay those of every other route.
    """

    name: str
    fn: Callable[..., Array]
    from_context: ContextFn
    needs_labels: bool
    needs_gradients: bool
    data_free: bool
    higher_is_better: bool = True
    batch_size: int = 64
    paper: str = ""
    reference: str = ""
    version: int = 1
    options: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ("images",)
    min_batch: int = 1
    draws_in_sown_order: bool = False

    def evaluate(self, ctx: Context, options: Mapping[str, Any] | None = None) -> Array:
        """The proxy on a shared context, with keyword ``options`` (checked by name)."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"proxy {self.name!r} takes no option(s) {unknown}; it takes "
                             f"{list(self.options) or 'none'}")
        return self.from_context(ctx, **options)

    def check_input(self, kind: str) -> None:
        """A clear error if the proxy does not apply to inputs of ``kind``."""
        if kind not in self.inputs:
            raise ValueError(f"proxy {self.name!r} does not apply to {kind} inputs (it reads "
                             f"{' or '.join(self.inputs)})")


REGISTRY: dict[str, ProxyInfo] = {}
ALIASES: dict[str, str] = {}


def register(name: str, *, aliases: tuple[str, ...] = (), **meta) -> Callable[[ContextFn], Callable]:
    """Registers a proxy written against a Context; returns its public pure function.

    Usage::

        @register("grad_norm", needs_labels=True, needs_gradients=True, data_free=False)
        def grad_norm(ctx: Context) -> Array: ...

    The decorated name becomes ``grad_norm(apply_fn, variables, batch, key, **options)``.
    """

    def wrap(from_context: ContextFn) -> Callable[..., Array]:
        def proxy(apply_fn: ApplyFn, variables: Variables, batch, key: Array | None = None,
                  **options: Any) -> Array:
            return REGISTRY[name].evaluate(Context(apply_fn, variables, batch, key), options)

        proxy.__name__ = name
        proxy.__qualname__ = name
        proxy.__doc__ = from_context.__doc__
        proxy.__module__ = from_context.__module__
        proxy.from_context = from_context  # type: ignore[attr-defined]
        if name in REGISTRY:
            raise ValueError(f"proxy {name!r} registered twice")
        REGISTRY[name] = ProxyInfo(name=name, fn=proxy, from_context=from_context, **meta)
        for alias in aliases:
            ALIASES[alias] = name
        return proxy

    return wrap


def get(name: str) -> ProxyInfo:
    """The registered proxy called ``name`` (or one of its aliases)."""
    name = ALIASES.get(name, name)
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown proxy {name!r}; known: {sorted(REGISTRY)}") from None


def names() -> list[str]:
    return sorted(REGISTRY)


# -- shared helpers ----------------------------------------------------------------------

def layer_weights(tree) -> list[Array]:
    """The leaves of a params-shaped tree that sit at conv / dense kernels, in tree order."""
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
            if is_layer_weight(path)]


def sum_over_layers(per_weight: Callable[..., Array], *trees) -> Array:
    """``sum_l sum(per_weight(t1_l, t2_l, ...))`` over conv / dense kernels ``l``."""
    columns = [layer_weights(t) for t in trees]
    terms = [jnp.sum(per_weight(*leaves)) for leaves in zip(*columns)]
    if not terms:
        raise ValueError("the network has no convolution or linear kernels to score")
    return jnp.sum(jnp.stack(terms))
