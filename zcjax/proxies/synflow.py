"""SynFlow: synaptic flow of the network with absolute weights, without data.

Formula (the reference's score ``S``; the registered proxy returns ``ln S``, see below)::

    R       = sum( f(1; |theta|) )            (all-ones input of shape (1, H, W, C), no BN)
    S       = sum_l sum_i | W_l,i * dR/dW_l,i |
    synflow = ln S

Every parameter ``theta`` (kernels, biases, and batch-norm parameters if any) is replaced by its
absolute value, batch norm is removed (``apply(..., use_bn=False)``: the reference's
``get_prunable_copy(bn=False)``, which keeps only the two reduction blocks' BN), and the network is
run on a single all-ones image with the batch's image shape; ``R`` is the sum of the outputs.
``S`` sums ``|W * dR/dW|`` over the convolution and linear kernels ``W_l`` (biases and
batch-norm parameters are not counted). With non-negative weights and input every activation
and every ``dR/dW`` is non-negative, so the ``abs`` only guards rounding.

Paper: Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by
iteratively conserving synaptic flow", NeurIPS 2020. Reference: ``SamsungLabs/zero-cost-nas``,
``foresight/pruners/measures/synflow.py`` (same in ``automl/NASLib``): registered with
``bn=False`` (batch norms replaced by the identity), ``linearize`` takes the absolute value of
every entry of the ``state_dict``, the network is converted to double precision and fed
``torch.ones([1] + input_dim)``; ``torch.sum(output).backward()``; per-layer
``abs(weight * weight.grad)``, summed by ``find_measures`` into a Python (double) float.

Deviation: natural logarithm
----------------------------
``S`` grows geometrically with depth and width: on NAS-Bench-201 (C=16, N=5, CIFAR-10 shapes)
it spans roughly 1e6 to 1e50 and above, and for the largest cells (all ``nor_conv_3x3``) it
exceeds float32's maximum (3.4e38). The proxy contract returns float32, so the raw score would
be ``inf`` for exactly the architectures a search cares most about. The registered ``synflow``
is therefore ``ln S``: rank-identical to the reference (Spearman / Kendall correlations, top-K
and tree regressors are unchanged), ``exp(synflow)`` is the reference value. ``S = 0`` (no path
from input to output, e.g. an all-``none`` cell) gives ``-inf``, the lowest rank, where the
reference gives 0.

Precision: like the reference, the pass runs in float64 (inside :func:`jax.enable_x64`, which
works under ``jax.jit``, ``vmap`` and ``lax.map``); the logarithm is taken in float64 and only
the result is cast to float32. Computing in float32 instead changes ``S`` by ~1e-7 relative on
networks where it fits, but overflows (``inf``/NaN) on the large NAS-Bench-201 cells, so
float64 is required. :func:`synflow_score` gives the other variants (float32, or ``S`` itself).

Labels and image values are not used (data-free); only the image shape is. Higher is better.

Language models (token inputs): "an all-ones input" is taken in the space the network computes
with, the embedded sequence: ones of shape ``(1, T, E)`` fed in place of the embedding lookup
(:mod:`zcjax.contract`, "Token inputs"), every parameter ``|theta|`` as above (the tied decoder
reads ``|embedding|``). No reference has published SynFlow on a language model with this
definition (Serianni & Kalita's "synaptic saliency" on NAS-Bench-NLP backpropagates
``y.backward(y)`` on real text with signed weights); this is zcjax's reading of the paper's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.proxies.base import register, sum_over_layers
from zcjax.proxies.context import Context


def synflow_score(ctx: Context, dtype=jnp.float64, log: bool = True):
    """SynFlow computed in ``dtype``; ``ln S`` if ``log`` else ``S``; returned as float32.

    ``dtype=jnp.float64, log=True`` is the registered proxy. ``log=False`` returns the
    reference's value, which is ``inf`` in float32 when it exceeds ~3.4e38.
    """
    with jax.enable_x64(dtype == jnp.float64):
        params = jax.tree.map(lambda p: jnp.abs(p).astype(dtype), ctx.params)
        shape = ctx.embedded_shape() if ctx.kind == "tokens" else ctx.images.shape
        ones = jnp.ones((1, *shape[1:]), dtype)
        others = {k: v for k, v in ctx.variables.items() if k != "params"}

        def total(p):
            return jnp.sum(ctx.apply({**others, "params": p}, ones, use_bn=False))

        grads = jax.grad(total)(params)
        score = sum_over_layers(lambda w, g: jnp.abs(w * g), params, grads)
        if log:
            score = jnp.log(score)
        return score.astype(jnp.float32)


@register("synflow", needs_labels=False, needs_gradients=True, data_free=True,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Tanaka et al., Pruning neural networks without any data by iteratively "
                "conserving synaptic flow, NeurIPS 2020",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/synflow.py (bn=False, "
                    "float64); returned as ln of the reference value")
def synflow(ctx: Context):
    """``ln sum |W * dR/dW|``, ``R = sum f(ones; |theta|)`` without BN, in float64.

    The natural log of the reference's value (which overflows float32 on large NAS-Bench-201
    cells). See :mod:`zcjax.proxies.synflow`.
    """
    return synflow_score(ctx, jnp.float64, log=True)
