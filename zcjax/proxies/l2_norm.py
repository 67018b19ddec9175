"""L2 norm: the summed per-layer L2 norms of the weights at initialisation.

Formula::

    l2_norm = sum_l || W_l ||_2

over the kernels ``W_l`` of the convolution and linear layers (Frobenius norm of each whole
kernel, then summed; biases and batch-norm parameters are not counted).

Paper: used as a baseline in Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021 and in NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022). Reference:
``SamsungLabs/zero-cost-nas``, ``foresight/pruners/measures/l2_norm.py`` (identical in
``automl/NASLib``): ``layer.weight.norm()`` per layer, summed by ``find_measures``. It reads the
weights only: no data, no labels, no forward pass. Higher is better.
"""

from __future__ import annotations

import jax.numpy as jnp

from zcjax.proxies.base import register, sum_over_layers
from zcjax.proxies.context import Context


@register("l2_norm", needs_labels=False, needs_gradients=False, data_free=True,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/l2_norm.py")
def l2_norm(ctx: Context):
    """``sum_l ||W_l||_2`` over conv / linear kernels.

    See :mod:`zcjax.proxies.l2_norm`.
    """
    return sum_over_layers(lambda w: jnp.sqrt(jnp.sum(jnp.square(w))), ctx.params)
