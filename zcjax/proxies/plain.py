"""Plain: the first-order Taylor term of the loss, summed with its sign.

Formula::

    plain = sum_l sum_i W_l,i * dL/dW_l,i

``L`` is the mean softmax cross-entropy and ``W_l`` the kernel of each convolution and linear
layer (biases and batch-norm parameters are not counted). Unlike SNIP no absolute value is
taken, so terms cancel: the score is the directional derivative of the loss along a uniform
rescaling of every kernel, ``d/de L((1 + e) W)`` at ``e = 0``.

Paper: Mozer & Smolensky, "Skeletonization", NeurIPS 1989 (the saliency ``W * dL/dW``); the
``plain`` baseline of Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.
Reference: ``SamsungLabs/zero-cost-nas``, ``foresight/pruners/measures/plain.py`` (identical in
``automl/NASLib``): ``layer.weight.grad * layer.weight``, ``bn=True`` (batch statistics), mean
cross-entropy, summed over layers. Higher is better (as registered by the references; the
correlation of this score with accuracy is weak and can be negative).
"""

from __future__ import annotations

from zcjax.proxies.base import register, sum_over_layers
from zcjax.proxies.context import Context


@register("plain", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Mozer & Smolensky, Skeletonization, NeurIPS 1989; Abdelfattah et al., "
                "ICLR 2021",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/plain.py")
def plain(ctx: Context):
    """``sum W * dL/dW`` over conv / linear kernels, signed (mean cross-entropy, BN on).

    See :mod:`zcjax.proxies.plain`.
    """
    return sum_over_layers(lambda w, g: w * g, ctx.params, ctx.param_grads)
