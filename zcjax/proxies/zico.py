"""ZiCo: inverse coefficient of variation of the gradients across mini-batches.

Formula (``g_s`` = gradient of the mean cross-entropy of mini-batch ``s``, ``s = 1..S``)::

    mu_l    = mean_s |g_s,l|         (per weight of layer l)
    sigma_l = std_s   g_s,l          (per weight; population std, ddof = 0)
    zico    = sum_l log( sum_{w : sigma_l,w != 0} mu_l,w / sigma_l,w )

over the kernels ``l`` of every convolution and linear layer (biases and batch-norm parameters
are not counted). A layer whose sum is 0 (every weight with zero std, or zero mean) is left out
instead of adding ``log 0``. Higher is better.

Paper: Li, Yang, Bhardwaj & Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of
Variation on Gradients", ICLR 2023.
Reference: ``SLDGroup/ZiCo``, ``ZeroShotProxy/compute_zico.py`` (``getgrad`` over
``nn.Conv2d`` / ``nn.Linear`` weights, ``caculate_zico``; ``network.train()`` so batch norm uses
each mini-batch's own statistics; ``zero_grad`` before every mini-batch; ``--maxbatch 2``
mini-batches from the train loader in ``evolution_search.py``).

Conventions and deviations:

- Language models: the parts are sets of whole sequences and each part's loss is the mean over
  its tokens (:func:`~zcjax.proxies.context.cross_entropy`); the definition needs only kernels
  and a loss, so it applies unchanged (no reference has run ZiCo on NAS-Bench-NLP).
- Mini-batches: the batch given is split into ``S = 2`` consecutive parts
  (``[s N / S, (s + 1) N / S)``, as the port in ``HamsterMimi/MeCo``,
  ``correlation/foresight/pruners/measures/zico.py``, does with ``split_data = 2``); the official
  code draws ``S`` separate loader batches instead. The parts are evaluated one after the
  other (an unrolled loop), as the reference does, not with ``vmap``: a ``vmap`` over parts
  turns each kernel gradient into a grouped convolution, which XLA:CPU runs slowly (NB201 cell
  1462 on the supernet, C=16 N=5, batch 64, 2-core CPU: 3.02 s with ``vmap``, 1.27 s looped,
  same score).
- The MeCo port calls ``zero_grad`` only once, so its second "gradient" is the sum of both; we
  follow the official code (independent gradients).
- NaN: a NaN gradient propagates to the score (as in the reference, whose ``np.nonzero`` keeps
  NaN entries); zcjax never substitutes a sentinel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.proxies.base import cross_entropy, layer_weights, register
from zcjax.proxies.context import Context

Array = jax.Array

#: Number of mini-batches the batch is split into.
SPLITS = 2


def split_gradients(ctx: Context, splits: int = SPLITS):
    """Parameter gradients of the mean cross-entropy of each part, stacked on a leading axis."""
    inputs, labels = ctx.inputs, ctx.labels
    n = inputs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"cannot split a batch of {n} into {splits} parts")

    def loss(params, x, y):
        logits = ctx.apply_fn({**ctx.variables, "params": params}, x)
        return cross_entropy(logits, y)

    grad = jax.grad(loss)
    parts = [grad(ctx.params, inputs[s * n // splits:(s + 1) * n // splits],
                  labels[s * n // splits:(s + 1) * n // splits]) for s in range(splits)]
    return jax.tree_util.tree_map(lambda *g: jnp.stack(g), *parts)


@jax.jit  # run eagerly, one compilation per kernel shape instead of one per primitive
def _layer_term(g: Array) -> Array:
    """``log sum_w mean_s|g| / std_s g`` of one layer's stacked gradients (0 for a zero sum)."""
    g = g.reshape(g.shape[0], -1)
    std = jnp.std(g, axis=0)
    mean_abs = jnp.mean(jnp.abs(g), axis=0)
    nonzero = std != 0          # NaN != 0 is True: NaN stays in, as with np.nonzero
    ratio = jnp.where(nonzero, mean_abs / jnp.where(nonzero, std, 1.0), 0.0)
    total = jnp.sum(ratio)
    return jnp.where(total == 0, 0.0, jnp.log(jnp.where(total == 0, 1.0, total)))


def zico_from_gradients(stacked_grads) -> Array:
    """ZiCo from gradients with a leading mini-batch axis (a params-shaped tree)."""
    terms = [_layer_term(g) for g in layer_weights(stacked_grads)]
    if not terms:
        raise ValueError("the network has no convolution or linear kernels to score")
    return jnp.sum(jnp.stack(terms))


@register("zico", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64, min_batch=2,
          paper="Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on "
                "Gradients, ICLR 2023",
          reference="SLDGroup/ZiCo ZeroShotProxy/compute_zico.py")
def zico(ctx: Context) -> Array:
    """``sum_l log sum_w mean_s|g| / std_s g`` over conv / linear kernels, gradients of the two
    halves of the batch (BN on, per half).

    See :mod:`zcjax.proxies.zico`.
    """
    return zico_from_gradients(split_gradients(ctx, SPLITS))
