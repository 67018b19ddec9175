"""GraSP: gradient signal preservation, summed over the network.

Formula (reference convention, which is the paper's score)::

    Hg    = H_WW g_W                       (Hessian-gradient product, kernels only)
    grasp = - sum_l sum_i W_l,i * (Hg)_l,i

``L`` is the mean softmax cross-entropy of the batch on the logits divided by a temperature
``T = 1`` (so, plainly, the logits), ``W`` the set of convolution and linear kernels, ``g_W =
dL/dW`` and ``H_WW = d^2 L / dW dW`` the Hessian block of those kernels. Biases and batch-norm
parameters are held fixed: they are neither in the vector ``g_W`` nor in the score (they still
take part in the forward pass).

Paper: Wang, Zhang & Grosse, "Picking Winning Tickets Before Training by Preserving Gradient
Flow", ICLR 2020, whose score is ``S(-W) = -W * Hg``. Reference: ``SamsungLabs/zero-cost-nas``,
``foresight/pruners/measures/grasp.py`` (identical in ``automl/NASLib``), with ``T = 1``,
``num_iters = 1``, ``bn=True`` (batch statistics). It runs two passes:

1. ``g_W = autograd.grad(L, kernels)``, detached (``.data``);
2. ``grad_f = autograd.grad(L, kernels, create_graph=True)``, then
   ``z = sum_l sum(g_W,l * grad_f,l)`` and ``z.backward()``: the kernels' ``.grad`` is
   ``dz/dW = H_WW g_W`` (``g_W`` is a constant there);

and returns ``-W * W.grad`` per kernel, summed by ``find_measures``.

Sign: the reference returns ``-W * Hg``, the paper's formula; its comments say the minus sign
was (re-)added because accuracy correlated negatively without it. This module reproduces that
sign, so ``grasp`` here is both the reference's value and the paper's ``S(-W)``; there is no
separate paper variant. Higher is better, as in the references' correlation tables. (The
original GraSP code prunes the weights with the *largest* ``S(-W)``; the zero-cost references
simply sum the scores.)

Implementation: ``g`` comes from the shared gradient pass (the reference's pass 1); ``H g`` is a
forward-over-reverse Hessian-vector product, ``jax.jvp(jax.grad(L), (params,), (v,))`` with
``v = stop_gradient(g)`` on the kernels and zero on every other parameter
(:func:`hessian_gradient_product` also offers the reverse-over-reverse ``d/dp (v . grad L)``,
which works through a ``jax.custom_vjp`` and is what the NB201 supernet uses, see
:func:`hvp_mode`). This equals the
reference's reverse-over-reverse ``d/dW (g . grad L)`` exactly (the tests check both and an
explicit Hessian). The original GraSP code's ``T = 200`` and per-class data are not used by the
zero-cost references, nor here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.contract import has_architecture_data
from zcjax.proxies.base import is_layer_weight, register, sum_over_layers
from zcjax.proxies.context import Context

#: Softmax temperature of the reference (``T=1``: logits used as they are).
TEMPERATURE = 1.0


def kernels_only(tree):
    """``tree`` with every leaf that is not a conv / linear kernel replaced by zeros."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: x if is_layer_weight(path) else jnp.zeros_like(x), tree)


def hessian_gradient_product(ctx: Context, mode: str = "forward"):
    """``H (g on kernels, 0 elsewhere)`` for every parameter, a params-shaped tree.

    ``mode``: ``"forward"`` (forward-over-reverse, ``jax.jvp`` of ``jax.grad``; what the proxy
    uses) or ``"reverse"`` (reverse-over-reverse, ``d/dp (v . grad L(p))``, the reference's
    route). ``"reverse"`` also works through a ``jax.custom_vjp`` (the NB201 supernet's edges),
    which has no forward mode; the failure of ``"forward"`` there only surfaces when the
    enclosing program is lowered, so it cannot be caught and replaced at trace time.
    """
    v = jax.lax.stop_gradient(kernels_only(ctx.param_grads))
    grad = jax.grad(ctx.loss_fn)
    if mode == "forward":
        return jax.jvp(grad, (ctx.params,), (v,))[1]
    if mode != "reverse":
        raise ValueError(f"unknown mode {mode!r}; expected 'forward' or 'reverse'")

    def dot(params):
        return sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(grad(params)),
                                                   jax.tree_util.tree_leaves(v)))

    return jax.grad(dot)(ctx.params)


def hvp_mode(ctx: Context) -> str:
    """``"reverse"`` for networks that carry their architecture as data, else ``"forward"``.

    Such networks (supernets, :func:`zcjax.contract.has_architecture_data`) may be built of
    ``jax.custom_vjp`` functions, which have no forward mode: reverse-over-reverse there.
    """
    return "reverse" if has_architecture_data(ctx.variables) else "forward"


@register("grasp", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Wang et al., Picking Winning Tickets Before Training by Preserving Gradient "
                "Flow, ICLR 2020",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/grasp.py (T=1)")
def grasp(ctx: Context):
    """``-sum W * (H g)`` over conv / linear kernels (reference sign = paper's ``S(-W)``, T=1).

    See :mod:`zcjax.proxies.grasp`.
    """
    hv = hessian_gradient_product(ctx, mode=hvp_mode(ctx))
    return -sum_over_layers(lambda w, h: w * h, ctx.params, hv)
