"""Fisher: the channel-pruning saliency of Theis et al. / Turner et al., summed.

Formula (reference convention)::

    g_l,n,k = sum_{spatial} a_l,n,...,k * dL/da_l,n,...,k     (a_l = output of layer l)
    F_l,k   = 0.5 * mean_n g_l,n,k ** 2
    fisher  = sum_l fan_in_l * sum_k F_l,k

``a_l`` is the output of the ``l``-th convolution or linear layer (after its bias, before batch
norm), ``L`` the mean softmax cross-entropy of the batch (so ``dL/da`` carries the ``1/N`` of
the mean), ``k`` an output channel and ``fan_in_l`` the number of weights feeding one output
channel (``C_in/groups * kh * kw`` for a convolution, ``in_features`` for a linear layer). For a
linear layer there is no spatial sum: ``g = a * dL/da``.

``g_l,n,k`` is the derivative of the loss with respect to a multiplicative gate on channel ``k``
of sample ``n`` (evaluated at 1), so ``F_l,k`` is Theis et al.'s empirical Fisher estimate of
the loss increase when that channel is removed.

Papers: Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018;
Turner et al., "BlockSwap: Fisher-guided Block Substitution for Network Compression on a
Budget", ICLR 2020. Reference: ``SamsungLabs/zero-cost-nas``,
``foresight/pruners/measures/fisher.py`` (identical in ``automl/NASLib``): ``bn=True`` (batch
statistics), ``mode='channel'``. Each ``nn.Conv2d`` and ``nn.Linear`` passes its output through
a dummy identity whose backward hook computes ``F_l,k`` from the output and its gradient.

Reference quirks reproduced:

- **fan-in weighting.** The per-channel values are broadcast to the shape of the layer's
  weight (``reshape_elements`` fills ``weight.shape[1:]`` with each channel's value) before
  ``find_measures`` sums everything, so each channel counts ``fan_in_l`` times. Without this
  weighting (:func:`fisher_per_channel`) the score would be ``sum_l sum_k F_l,k``.
- **linear layers count**, the classifier included (its ``a`` are the logits).
- an ``abs`` is applied to ``F`` (a no-op: it is non-negative).
- no layer of the NAS-Bench-201 reference network is marked ``dont_ch_prune``, so every
  convolution counts (stem, cells, both reduction convolutions and the 1x1 shortcut).

Implementation: the output of every ``flax.linen.Conv`` and ``flax.linen.Dense`` whose kernel
is counted by :func:`~zcjax.proxies.base.is_layer_weight` is intercepted
(:func:`flax.linen.intercept_methods`): the layer sows its output and passes it through
``perturb`` in the ``"perturbations"`` collection, so one forward and one backward pass with
respect to a zero ``"perturbations"`` tree give every ``a_l`` and ``dL/da_l``. (zcjax
convolutions also perturb their own output under ``conv_out``; those entries are created and
fed zeros but not read, so the linear classifier is handled by the same mechanism.) Each
intercepted layer must be called once per forward pass. Convolutions that are not Flax modules
(the NB201 supernet's cell edges, inside a ``jax.custom_vjp``) multiply their output by a gate
of ones, ``1 + perturbation`` (:data:`zcjax.contract.FISHER_GATE`); the gradient with
respect to it is ``g_l,n,k`` itself, since ``d L(a * s) / d s_n,k = sum_spatial a * dL/da`` at
``s = 1``. Higher is better.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax.contract import FAN_IN_SUFFIX as _FAN_IN
from zcjax.contract import FISHER_GATE
from zcjax.proxies.base import cross_entropy, is_layer_weight, path_names, register
from zcjax.proxies.context import Context

_OUT = "fisher_out"  # perturbation added to each intercepted layer's output
_ACT = "fisher_act"  # the layer's output, sown into "intermediates"


def _intercept(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and isinstance(context.module, (nn.Conv, nn.Dense)):
        context.module.sow("intermediates", _ACT, y)
        y = context.module.perturb(_OUT, y)
    return y


def _get(tree, names):
    for name in names:
        tree = tree[name]
    return tree


def layer_terms(ctx: Context) -> list[tuple[tuple[str, ...], jax.Array, int | jax.Array]]:
    """``(layer path, F_l (channels,), fan_in_l)`` for every counted conv / linear layer.

    Also for every convolution a network exposes through a gate (``FISHER_GATE``, the NB201
    supernet's cell edges): there ``g`` is the gate's gradient and ``fan_in_l`` the sown fan-in
    (a traced value, 0 where the edge is not a convolution, whose ``g`` is 0 as well).
    """
    variables = {k: v for k, v in ctx.variables.items() if k != "perturbations"}

    def run(perturbations):
        with nn.intercept_methods(_intercept):
            logits, state = ctx.apply_fn({**variables, "perturbations": perturbations},
                                         ctx.images, mutable=["intermediates"])
        return cross_entropy(logits, ctx.labels), state["intermediates"]

    def shapes(v, images):
        with nn.intercept_methods(_intercept):
            return ctx.apply_fn(v, images, mutable=["perturbations"])[1]["perturbations"]

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(shapes, variables, ctx.images))
    grads, sown = jax.grad(run, has_aux=True)(zeros)

    acts, gate_fan_in = {}, {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(sown)[0]:
        names = path_names(path)
        gate = [n for n in names if n.startswith(FISHER_GATE) and n.endswith(_FAN_IN)]
        if gate:
            module = names[:names.index(gate[0])] + (gate[0][:-len(_FAN_IN)],)
            gate_fan_in[module] = leaf
        if _ACT in names:
            module = names[:names.index(_ACT)]
            if module in acts:
                raise ValueError(f"fisher: layer {'/'.join(module)} is called more than once")
            acts[module] = leaf

    terms = []
    for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]:
        names = path_names(path)
        if names[-1].startswith(FISHER_GATE):  # grad of a gate on a conv output: g directly
            f = 0.5 * jnp.mean(jnp.square(grad), axis=0)
            terms.append((names, f, gate_fan_in[names]))
            continue
        if names[-1] != _OUT:
            continue
        module = names[:-1]
        if not is_layer_weight(module + ("kernel",)):
            continue
        kernel = _get(ctx.params, module + ("kernel",))
        act = acts[module]
        g = act * grad
        if g.ndim > 2:  # NHWC: sum over the spatial axes, keep batch and channels
            g = jnp.sum(g, axis=tuple(range(1, g.ndim - 1)))
        f = jnp.abs(0.5 * jnp.mean(jnp.square(g), axis=0))
        terms.append((module, f, math.prod(kernel.shape[:-1])))
    if not terms:
        raise ValueError("the network has no convolution or linear kernels to score")
    return terms


def fisher_per_channel(ctx: Context):
    """``sum_l sum_k F_l,k``: the Fisher score without the reference's fan-in weighting."""
    return jnp.sum(jnp.stack([jnp.sum(f) for _, f, _ in layer_terms(ctx)]))


@register("fisher", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, batch_size=64,
          paper="Theis et al., Faster gaze prediction with dense networks and Fisher pruning, "
                "2018; Turner et al., BlockSwap, ICLR 2020",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/fisher.py")
def fisher(ctx: Context):
    """``sum_l fan_in_l * sum_k 0.5 * mean_n (sum_spatial a * dL/da)^2`` (reference, BN on).

    See :mod:`zcjax.proxies.fisher`.
    """
    return jnp.sum(jnp.stack([n * jnp.sum(f) for _, f, n in layer_terms(ctx)]))
