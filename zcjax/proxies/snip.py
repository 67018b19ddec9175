"""SNIP: connection sensitivity, summed over the network.

Formula::

    snip = sum_l sum_i | W_l,i * dL/dW_l,i |

``L`` is the mean softmax cross-entropy of the batch and ``W_l`` the kernel of each
convolution and linear layer (biases and batch-norm parameters are not counted).

Paper: Lee, Ajanthan & Torr, "SNIP: Single-shot Network Pruning based on Connection
Sensitivity", ICLR 2019; used as a zero-cost proxy by Abdelfattah et al., ICLR 2021.
Reference: ``SamsungLabs/zero-cost-nas``, ``foresight/pruners/measures/snip.py`` (identical in
``automl/NASLib``): each kernel is multiplied by a mask of ones and the score is
``|dL/dmask|``, which equals ``|W * dL/dW|``; ``bn=True`` (batch statistics); mean
cross-entropy; summed over layers by ``find_measures``. Higher is better.
"""

from __future__ import annotations

import jax.numpy as jnp

from zcjax.proxies.base import register, sum_over_layers
from zcjax.proxies.context import Context


@register("snip", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Lee et al., SNIP: Single-shot Network Pruning based on Connection "
                "Sensitivity, ICLR 2019",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/snip.py")
def snip(ctx: Context):
    """``sum |W * dL/dW|`` over conv / linear kernels (mean cross-entropy, BN on).

    See :mod:`zcjax.proxies.snip`.
    """
    return sum_over_layers(lambda w, g: jnp.abs(w * g), ctx.params, ctx.param_grads)
