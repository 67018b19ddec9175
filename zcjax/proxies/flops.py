"""FLOPs: multiply-accumulates of one forward pass of one example, in millions.

Formula::

    flops = (sum over conv_general_dilated and dot_general of their MACs) / 1e6

counted in the jaxpr of ``apply_fn(variables, x)`` for a single example ``x`` with the batch's
example shape and dtype (an image, or a sequence of token ids; ``jax.make_jaxpr`` on abstract
shapes: nothing is computed or compiled). A
convolution counts ``prod(output shape) * C_in/groups * kh * kw`` MACs, a ``dot_general``
``prod(output shape) * prod(contracted dimensions)``. Batch norm, pooling, activations,
additions and biases are not counted; neither is the ``none`` operation (``x * 0``). This is
NAS-Bench-201's "FLOPs" column (``zcjax.spaces.nb201.flops``: 7.78 M for the all-``none`` cell,
220.11 M for the all-``nor_conv_3x3`` cell at C=16, N=5); batch norm is left in the network as
it does not change the count.

Sub-jaxprs (``pjit``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``, ...) are walked;
a ``scan`` body counts ``length`` times, a ``cond`` counts its most expensive branch, a
``while`` body once (its trip count is unknown when tracing). For a language model
(NAS-Bench-NLP) this counts every cell matrix once per time step (the ``scan`` of
``flax.linen.scan``) and the decoder's ``T x E x V``; the embedding lookup is free
(``zcjax.spaces.nb_nlp.cost.macs`` gives the same count from the recipe).

Unit: millions of MACs, as NAS-Bench-201 reports FLOPs and as NAS-Bench-Suite-Zero's ``flops``
proxy divides by 1e6 (``automl/NASLib`` ``predictive.py``). NASLib counts with ``tensorwatch``,
which also charges batch norm, ReLU and pooling: its values are slightly larger than these; the
ranking of NAS-Bench-201 cells is essentially the same. Data-free and shape-only: the score is
a constant of the architecture and the image size. Higher is better.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from zcjax.proxies.base import register
from zcjax.proxies.context import Context


def _conv_macs(eqn) -> int:
    out = eqn.outvars[0].aval.shape
    rhs = eqn.invars[1].aval.shape
    out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    # the kernel's other dimensions (in-features / groups and the window) per output element
    return math.prod(out) * math.prod(rhs) // rhs[out_feature_dim]


def _dot_macs(eqn) -> int:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)


def _sub_jaxprs(value):
    if hasattr(value, "jaxpr") and hasattr(value, "consts"):  # ClosedJaxpr
        yield value.jaxpr
    elif hasattr(value, "eqns"):  # Jaxpr
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _sub_jaxprs(v)


def count_macs(jaxpr) -> int:
    """Multiply-accumulates of convolutions and dot products in a (closed) jaxpr."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += _conv_macs(eqn)
        elif name == "dot_general":
            total += _dot_macs(eqn)
        elif name == "cond":
            total += max(count_macs(b) for b in eqn.params["branches"])
        else:
            inner = sum(count_macs(j) for v in eqn.params.values() for j in _sub_jaxprs(v))
            total += inner * (eqn.params["length"] if name == "scan" else 1)
    return total


def forward_macs(apply_fn, variables, input_shape, dtype=jnp.float32) -> int:
    """MACs of ``apply_fn(variables, x)`` for one example ``x`` of shape ``input_shape``
    (``(H, W, C)`` for an image, ``(T,)`` for token ids with ``dtype=jnp.int32``)."""
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
    example = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    return count_macs(jax.make_jaxpr(lambda v, x: apply_fn(v, x))(abstract, example))


@register("flops", needs_labels=False, needs_gradients=False, data_free=True,
          higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Dong & Yang, NAS-Bench-201, ICLR 2020; Krishnakumar et al., "
                "NAS-Bench-Suite-Zero, NeurIPS 2022",
          reference="NAS-Bench-201 FLOPs (MACs of conv and linear layers) / 1e6")
def flops(ctx: Context):
    """Multiply-accumulates of one forward pass of one example, in millions.

    See :mod:`zcjax.proxies.flops`.
    """
    macs = forward_macs(ctx.apply_fn, ctx.variables, ctx.inputs.shape[1:], ctx.inputs.dtype)
    return jnp.asarray(macs / 1e6, jnp.float32)
