"""GradNorm: the summed per-layer L2 norms of the loss gradient.

Formula::

    grad_norm = sum_l || dL/dW_l ||_2

``L`` is the mean softmax cross-entropy of the batch, ``W_l`` the kernel of the ``l``-th
convolution or linear layer (biases and batch-norm parameters are not counted) and ``||.||_2``
the Frobenius norm of the whole kernel. The norm is taken per layer and then summed -- not the
norm of the concatenated gradient.

Paper: Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (the baseline
``grad_norm``). Reference: ``SamsungLabs/zero-cost-nas``,
``foresight/pruners/measures/grad_norm.py`` (identical in ``automl/NASLib``): ``bn=True`` (batch
norm on, batch statistics), one backward pass of ``F.cross_entropy`` (mean reduction), per-layer
``weight.grad.norm()`` summed by ``find_measures``. Higher is better.
"""

from __future__ import annotations

import jax.numpy as jnp

from zcjax.proxies.base import register, sum_over_layers
from zcjax.proxies.context import Context


@register("grad_norm", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/grad_norm.py")
def grad_norm(ctx: Context):
    """``sum_l ||dL/dW_l||_2`` over conv / linear kernels (mean cross-entropy, BN on).

    See :mod:`zcjax.proxies.grad_norm`.
    """
    return sum_over_layers(lambda g: jnp.sqrt(jnp.sum(jnp.square(g))), ctx.param_grads)
