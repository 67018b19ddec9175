"""Float64 range at float32 speed: the float64 convolutions of a function, computed in float32.

Why: XLA:CPU runs float32 convolutions with its tuned library kernel, but float64 ones much more
slowly (measured on a 2-core CPU, NHWC, 3x3, batch 64: 44 ms against 2.4 ms at 32x32 with 16
channels, 5.6 against 2.2 ms at 16x16 with 32; the kernel gradient 32 against 11 ms). CRoZe
computes in float64 because its reference does (``net.double()``), and needs float64 for its
*range* (activations reach 1e44 on NAS-Bench-201), not for the precision of its convolutions.

:func:`float32_convolutions` transforms a function so that every float64 convolution it runs --
forward and gradient convolutions alike, also inside jit-compiled blocks, ``lax.cond`` branches
and loops -- is computed as::

    conv(x, w) = s_x * s_w * float64(conv_f32(float32(x / s_x), float32(w / s_w)))

where ``s_a`` is the power of two with ``max|a| / s_a`` in ``[1/2, 1)`` (1 for an all-zero
operand). Dividing and multiplying by a power of two is exact, and a convolution is bilinear, so
the only change is precision: inputs rounded to float32's 24-bit mantissa and products summed
in float32, i.e. a relative error of order 1e-7 of the magnitude of the terms of each output;
entries of an operand smaller than about ``2^-126`` times its largest entry count as zero. The
range stays float64's. Everything else (batch norm, losses, reductions) stays float64.

How: the function is traced to a jaxpr (``jax.make_jaxpr``, so it runs under ``jit``, eagerly and
under ``vmap`` alike) and evaluated equation by equation with float64 ``conv_general_dilated``
replaced; the jaxprs of ``jit`` calls, ``cond`` branches, ``scan`` and ``while`` bodies are
rewritten the same way (a rewritten ``jit`` jaxpr is cached per original jaxpr, so compiled
blocks run eagerly compile once, as before), and custom-derivative and checkpoint calls are
inlined. Any other primitive that carries a jaxpr runs unchanged, its convolutions in float64
(slower, not wrong). The transformation is for functions that compute the derivatives they
need inside (CRoZe's gradients are inside); derivatives *of* the transformed function pass
float32 cotangents through the scaled convolutions without scaling them.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.extend import core
from jax.extend.core import primitives as prims

Array = jax.Array

# Calls whose jaxpr is simply evaluated in place (nothing differentiates the result).
_INLINED = {prims.custom_jvp_call_p: "call_jaxpr", prims.custom_vjp_call_p: "call_jaxpr",
            prims.closed_call_p: "call_jaxpr", prims.remat_p: "jaxpr"}
# Primitives kept, with the named parameters' jaxprs rewritten.
_REWRITTEN = {prims.jit_p: ("jaxpr",), prims.cond_p: ("branches",), prims.scan_p: ("jaxpr",),
              prims.while_p: ("cond_jaxpr", "body_jaxpr")}


def power_of_two_scale(a: Array) -> Array:
    """The power of two ``s`` with ``m / s`` in ``[1/2, 1)``, ``m`` the largest finite
    magnitude in ``a`` (1 if there is none), as a scalar of ``a``'s dtype. Infinities and NaNs
    stay what they are after scaling, so they propagate as in the float64 convolution."""
    magnitude = jnp.abs(a)
    m = jax.lax.stop_gradient(jnp.max(jnp.where(jnp.isfinite(magnitude), magnitude, 0)))
    _, exponent = jnp.frexp(m)
    return jnp.ldexp(jnp.ones((), a.dtype), jnp.where(m > 0, exponent, 0))


def scaled_float32_conv(lhs: Array, rhs: Array, **params: Any) -> Array:
    """``lax.conv_general_dilated_p`` with ``params`` on float64 operands, computed in float32
    on operands scaled by powers of two (module doc); returns float64."""
    s_lhs, s_rhs = power_of_two_scale(lhs), power_of_two_scale(rhs)
    params = {**params, "preferred_element_type": None}
    y = prims.conv_general_dilated_p.bind((lhs / s_lhs).astype(jnp.float32),
                                          (rhs / s_rhs).astype(jnp.float32), **params)
    return y.astype(jnp.float64) * s_lhs * s_rhs


@functools.cache
def _scaled_conv_program(params: tuple[tuple[str, Any], ...]) -> Callable[[Array, Array], Array]:
    # Jitted, so that run eagerly the scaling and the convolution are one compiled program
    # (per shape) rather than a dozen separate operations; under a trace it is inlined.
    return jax.jit(functools.partial(scaled_float32_conv, **dict(params)))


def _is_float64_conv(eqn) -> bool:
    return (eqn.primitive is prims.conv_general_dilated_p
            and eqn.outvars[0].aval.dtype == jnp.float64)


def _has_float64_conv(jaxpr: core.Jaxpr) -> bool:
    """Whether ``jaxpr`` runs a float64 convolution at any depth."""
    return any(_is_float64_conv(e) or any(_has_float64_conv(sub)
                                          for sub in core.jaxprs_in_params(e.params))
               for e in jaxpr.eqns)


def _evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, core.Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        prim, params = eqn.primitive, eqn.params
        if _is_float64_conv(eqn):
            outs = [_scaled_conv_program(tuple(sorted(params.items())))(*invals)]
        elif prim in _INLINED:
            inner = params[_INLINED[prim]]
            if isinstance(inner, core.ClosedJaxpr):
                outs = _evaluate(inner.jaxpr, inner.consts, invals)
            else:
                outs = _evaluate(inner, (), invals)
        else:
            if prim in _REWRITTEN:
                params = {**params, **{name: _rewrite_param(params[name])
                                       for name in _REWRITTEN[prim]}}
            outs = prim.bind(*invals, **params)
            if not prim.multiple_results:
                outs = [outs]
        for v, value in zip(eqn.outvars, outs):
            env[v] = value
    return [read(v) for v in jaxpr.outvars]


_REWRITES: "weakref.WeakKeyDictionary[core.ClosedJaxpr, core.ClosedJaxpr]" = (
    weakref.WeakKeyDictionary())


def _rewrite_param(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_rewrite(v) for v in value)
    return _rewrite(value)


def _rewrite(closed: core.ClosedJaxpr) -> core.ClosedJaxpr:
    """``closed`` with its float64 convolutions scaled (cached per jaxpr object); ``closed``
    itself, so nothing is traced or compiled again, where it has none."""
    if closed in _REWRITES:
        return _REWRITES[closed]
    if not _has_float64_conv(closed.jaxpr):
        rewritten = closed
    else:
        avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype, weak_type=v.aval.weak_type)
                 for v in closed.jaxpr.invars]
        rewritten = jax.make_jaxpr(
            lambda *args: _evaluate(closed.jaxpr, closed.consts, args))(*avals)
    _REWRITES[closed] = rewritten
    return rewritten


def float32_convolutions(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with every float64 convolution it runs computed as a scaled float32 one (module
    doc). ``fn`` takes and returns pytrees of arrays."""

    @functools.wraps(fn)
    def transformed(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        outs = _evaluate(closed.jaxpr, closed.consts, jax.tree_util.tree_leaves(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return transformed
