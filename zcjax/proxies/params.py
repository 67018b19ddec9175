"""Params: the number of parameters of the network, in millions.

Formula::

    params = (number of scalars in variables["params"]) / 1e6

Every leaf of ``variables["params"]`` counts: kernels, biases and affine batch-norm parameters.
zcjax networks keep no running statistics (PyTorch buffers, which no reference counts either).
The count is therefore that of the layer convention the network was built with (see
:mod:`zcjax.spaces.layers`): with ``convention="official"`` and C=16, N=5 it is NAS-Bench-201's
``params`` column (in MB = millions) and :func:`zcjax.spaces.nb201.param_count`; networks built
with the default ``zero_cost`` convention have more (cell conv biases) and fewer (no affine cell
BN) parameters.

Unit: millions of parameters, as NAS-Bench-201 reports them and as NAS-Bench-Suite-Zero's
``params`` proxy (``automl/NASLib`` ``predictive.py``: ``model_stats.parameters / 1e6``).
Data-free and shape-only: values of the parameters and of the batch are not read, so the score
is a constant of the architecture. Higher is better (larger networks are more accurate in
NAS-Bench-201).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from zcjax.proxies.base import register
from zcjax.proxies.context import Context


def count(params) -> int:
    """Number of scalars in a parameter pytree (shapes only; tracers are fine)."""
    return int(sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


@register("params", needs_labels=False, needs_gradients=False, data_free=True,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Dong & Yang, NAS-Bench-201, ICLR 2020; Krishnakumar et al., "
                "NAS-Bench-Suite-Zero, NeurIPS 2022",
          reference="automl/NASLib naslib/predictors/utils/pruners/predictive.py (params / 1e6)")
def params(ctx: Context):
    """Number of parameters in ``variables["params"]``, in millions.

    See :mod:`zcjax.proxies.params`.
    """
    return jnp.asarray(count(ctx.params) / 1e6, jnp.float32)
