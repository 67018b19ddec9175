"""Shared passes for fused proxy evaluation.

A :class:`Context` holds one (network, initialisation, batch, key) and computes each pass the
proxies need at most once, on first use:

- :attr:`Context.forward`: one forward pass, linearised (``jax.vjp``) with respect to both the
  parameters and the input, returning the logits and everything the layers sowed;
- :attr:`Context.param_grads`: gradient of the mean cross-entropy with respect to the
  parameters, pulled back through that linearisation (grad_norm, snip, plain, grasp, ...);
- :attr:`Context.input_grads`: gradient of the sum of the logits with respect to the input,
  pulled back through the same linearisation (jacob_cov, epe_nas); for token inputs, with
  respect to the embedded sequence (:data:`zcjax.contract.EMBEDDED`);
- :meth:`Context.intermediates`: the sown activations (nwot's ReLU codes, feature maps).

The context is a plain Python object used while tracing: under ``jax.jit`` the cache lives only
during tracing, so the compiled program contains each pass once, whatever set of proxies is
asked for.
Each pass is traced under the named scope ``pass.<name>`` (``forward``, ``param_grads``,
``input_grads``), so :mod:`zcjax.profiling` can charge its time to the pass.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.profiling import pass_scope

Array = jax.Array
Variables = Mapping[str, Any]
ApplyFn = Callable[..., Any]


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy over every prediction, as ``torch.nn.functional.cross_entropy``.

    ``logits`` ``(N, K)`` with ``labels`` ``(N,)`` (images: one class per example), or
    ``(N, T, V)`` with ``(N, T)`` (a language model: one next token per position); the mean
    is over all ``N`` (or ``N * T``) predictions, as the language-model references' criterion
    averages over tokens.
    """
    logp = jax.nn.log_softmax(logits)
    picked = jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)
    return -jnp.mean(picked)


class Context:
    """One network, one initialisation, one batch: the shared passes, computed lazily.

    The batch has ``inputs`` (images ``(N, H, W, C)`` or token ids ``(N, T)``, see
    :func:`zcjax.contract.input_kind`, stored as :attr:`kind`) and ``labels`` (``(N,)`` classes
    for images; ``(N, T)`` next tokens for tokens).
    """

    def __init__(self, apply_fn: ApplyFn, variables: Variables, batch: Any, key: Array | None):
        inputs, labels = batch.inputs, batch.labels
        self.kind = contract.input_kind(inputs)
        label_rank = 1 if self.kind == "images" else 2
        if labels.ndim != label_rank:
            raise ValueError(f"labels of a batch of {self.kind} must have rank {label_rank}, "
                             f"got shape {tuple(labels.shape)}")
        if labels.shape != inputs.shape[:label_rank]:
            raise ValueError(f"batch of {self.kind} {tuple(inputs.shape)} needs labels of shape "
                             f"{tuple(inputs.shape[:label_rank])}, got {tuple(labels.shape)}")
        if contract.PARAMS not in variables:
            raise ValueError(f"variables must hold '{contract.PARAMS}'; got {sorted(variables)}")
        self.apply_fn = apply_fn
        self.variables = variables
        self.params = variables[contract.PARAMS]
        self.batch = batch
        self.inputs = inputs
        self.labels = labels
        self.key = key if key is not None else jax.random.key(0)

    @property
    def images(self) -> Array:
        """The batch's images; a clear error for a batch of another kind (the proxies that
        read images do not apply to it)."""
        if self.kind != "images":
            raise ValueError(f"this proxy reads images, but the batch holds {self.kind} "
                             f"{tuple(self.inputs.shape)}")
        return self.inputs

    # -- forward and its linearisation ---------------------------------------------------

    def _forward_fn(self, params, images):
        logits, state = self.apply_fn({**self.variables, "params": params}, images,
                                      mutable=[contract.INTERMEDIATES])
        return logits, state.get(contract.INTERMEDIATES, {})

    def _token_forward_fn(self, params, perturbations):
        variables = {**self.variables, "params": params, contract.PERTURBATIONS: perturbations}
        logits, state = self.apply_fn(variables, self.inputs, mutable=[contract.INTERMEDIATES])
        return logits, state.get(contract.INTERMEDIATES, {})

    def embedded_shape(self) -> tuple[int, ...]:
        """``(N, T, E)``: the shape of a token network's embedded input (see the contract)."""
        return tuple(contract.embedded_perturbation(self._zero_perturbations()).shape)

    def _zero_perturbations(self):
        """Zeros shaped like the perturbations the network adds (its embedded input)."""
        def perturbations(variables):
            return self.apply_fn(variables, self.inputs,
                                 mutable=[contract.PERTURBATIONS])[1][contract.PERTURBATIONS]
        shapes = jax.eval_shape(perturbations, self.variables)
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    @functools.cached_property
    def _linearised(self):
        with jax.named_scope(pass_scope("forward")):
            if self.kind == "images":
                logits, pullback, sown = jax.vjp(self._forward_fn, self.params, self.images,
                                                 has_aux=True)
            else:  # differentiable with respect to the embedded sequence, not the ids
                logits, pullback, sown = jax.vjp(self._token_forward_fn, self.params,
                                                 self._zero_perturbations(), has_aux=True)
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
        logits = self.logits
        with jax.named_scope(pass_scope("param_grads")):
            dlogits = jax.grad(cross_entropy)(logits, self.labels)
            return self._linearised[1](dlogits)[0]

    @functools.cached_property
    def input_grads(self) -> Array:
        """d sum(logits) / d input: ``(N, H, W, C)`` for images; for tokens, with respect to the
        embedded sequence, ``(N, T, E)`` (the per-sample Jacobian row sums)."""
        logits = self.logits
        with jax.named_scope(pass_scope("input_grads")):
            grads = self._linearised[1](jnp.ones_like(logits))[1]
        return grads if self.kind == "images" else contract.embedded_perturbation(grads)

    # -- other passes ----------------------------------------------------------------------

    def apply(self, variables=None, inputs=None, **kwargs):
        """Runs the network on other variables or inputs (e.g. SynFlow's |theta|, ones input)."""
        variables = self.variables if variables is None else variables
        inputs = self.inputs if inputs is None else inputs
        return self.apply_fn(variables, inputs, **kwargs)

    def loss_fn(self, params, inputs=None, labels=None, **kwargs) -> Array:
        """Mean cross-entropy as a function of the parameters (for second-order proxies)."""
        inputs = self.inputs if inputs is None else inputs
        labels = self.labels if labels is None else labels
        logits = self.apply_fn({**self.variables, "params": params}, inputs, **kwargs)
        return cross_entropy(logits, labels)
