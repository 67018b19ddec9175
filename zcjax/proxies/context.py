"""Shared passes for fused proxy evaluation.

A :class:`Context` holds one (network, initialisation, batch, key) and computes each pass the
proxies need at most once, on first use:

- :attr:`Context.forward`: one forward pass, linearised (``jax.vjp``) with respect to both the
  parameters and the input, returning the logits and everything the layers sowed;
- :attr:`Context.param_grads`: gradient of the mean cross-entropy with respect to the
  parameters, pulled back through that linearisation (grad_norm, snip, plain, grasp, ...);
- :attr:`Context.input_grads`: gradient of the sum of the logits with respect to the input,
  pulled back through the same linearisation (jacob_cov, epe_nas);
- :meth:`Context.intermediates`: the sown activations (nwot's ReLU codes, feature maps).

The context is a plain Python object used while tracing: under ``jax.jit`` the cache lives only
during tracing, so the compiled program contains each pass once, whatever set of proxies is
asked for.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from zcjax import contract

Array = jax.Array
Variables = Mapping[str, Any]
ApplyFn = Callable[..., Any]


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy, as ``torch.nn.functional.cross_entropy``."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))


class Context:
    """One network, one initialisation, one batch: the shared passes, computed lazily."""

    def __init__(self, apply_fn: ApplyFn, variables: Variables, batch: Any, key: Array | None):
        images, labels = batch.images, batch.labels
        if images.ndim != 4 or labels.ndim != 1:
            raise ValueError(f"batch images must be NHWC (rank 4) and labels rank 1, got "
                             f"shapes {images.shape} and {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"batch has {images.shape[0]} images but {labels.shape[0]} labels")
        if contract.PARAMS not in variables:
            raise ValueError(f"variables must hold '{contract.PARAMS}'; got {sorted(variables)}")
        self.apply_fn = apply_fn
        self.variables = variables
        self.params = variables[contract.PARAMS]
        self.batch = batch
        self.images = images
        self.labels = labels
        self.key = key if key is not None else jax.random.key(0)

    # -- forward and its linearisation ---------------------------------------------------

    def _forward_fn(self, params, images):
        logits, state = self.apply_fn({**self.variables, "params": params}, images,
                                      mutable=[contract.INTERMEDIATES])
        return logits, state.get(contract.INTERMEDIATES, {})

    @functools.cached_property
    def _linearised(self):
        logits, pullback, sown = jax.vjp(self._forward_fn, self.params, self.images,
                                         has_aux=True)
        return logits, pullback, sown

    @property
    def logits(self) -> Array:
        return self._linearised[0]

    @property
    def sown(self) -> dict:
        return self._linearised[2]

    def intermediates(self, tag: str) -> list[Array]:
        """Every activation sown under ``tag`` during the shared forward pass."""
        return contract.values(self.sown, tag)

    def weighted_intermediates(self, tag: str) -> list[tuple[Array, Array]]:
        """``(value, weight)`` for every site sown under ``tag`` (see
        :func:`zcjax.contract.weighted_sites`)."""
        return contract.weighted_sites(self.sown, tag)

    @functools.cached_property
    def loss(self) -> Array:
        return cross_entropy(self.logits, self.labels)

    @functools.cached_property
    def param_grads(self):
        """d mean-cross-entropy / d params, a tree shaped like the params."""
        dlogits = jax.grad(cross_entropy)(self.logits, self.labels)
        return self._linearised[1](dlogits)[0]

    @functools.cached_property
    def input_grads(self) -> Array:
        """d sum(logits) / d images, shape (N, H, W, C) (the per-sample Jacobian row sums)."""
        return self._linearised[1](jnp.ones_like(self.logits))[1]

    # -- other passes ----------------------------------------------------------------------

    def apply(self, variables=None, images=None, **kwargs):
        """Runs the network on other variables or images (e.g. SynFlow's |theta|, ones input)."""
        variables = self.variables if variables is None else variables
        images = self.images if images is None else images
        return self.apply_fn(variables, images, **kwargs)

    def loss_fn(self, params, images=None, labels=None, **kwargs) -> Array:
        """Mean cross-entropy as a function of the parameters (for second-order proxies)."""
        images = self.images if images is None else images
        labels = self.labels if labels is None else labels
        logits = self.apply_fn({**self.variables, "params": params}, images, **kwargs)
        return cross_entropy(logits, labels)
