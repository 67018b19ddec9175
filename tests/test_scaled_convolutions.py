"""zcjax.scaled_convolutions: float64 convolutions computed as power-of-two-scaled float32 ones.

Checked against float64 convolutions on operands far outside float32's range (so an unscaled
float32 convolution would overflow or flush to zero), for every kind of convolution a gradient
produces, and the transformation against the untransformed function through jit, cond, scan,
custom derivatives, checkpointing, vmap and eager execution; that it leaves no float64
convolution anywhere (the untransformed function has them, so the check can fail), and that run
eagerly a second time it compiles nothing.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend import core
from jax.extend.core import primitives as prims

from zcjax.scaled_convolutions import float32_convolutions, power_of_two_scale


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _rng_arrays(shape_x, shape_w, scale_x, scale_w, seed=0, signed=False):
    rng = np.random.default_rng(seed)
    draw = (lambda s: rng.normal(size=s)) if signed else (lambda s: rng.uniform(size=s))
    return jnp.asarray(draw(shape_x) * scale_x), jnp.asarray(draw(shape_w) * scale_w)


# (input shape, kernel shape, conv keyword arguments): the forms in the networks and in their
# gradients (strided, padded, dilated input and kernel, grouped).
CONVS = {
    "same_3x3": ((2, 9, 9, 4), (3, 3, 4, 6), dict(window_strides=(1, 1), padding="SAME")),
    "stride_2": ((2, 9, 9, 4), (3, 3, 4, 6), dict(window_strides=(2, 2), padding=((1, 1),) * 2)),
    "dilated": ((2, 9, 9, 4), (3, 3, 4, 6), dict(window_strides=(1, 1), padding="SAME",
                                                 rhs_dilation=(2, 2))),
    "lhs_dilated": ((2, 5, 5, 4), (3, 3, 4, 6), dict(window_strides=(1, 1),
                                                     padding=((2, 2),) * 2, lhs_dilation=(2, 2))),
    "grouped": ((2, 9, 9, 4), (3, 3, 2, 6), dict(window_strides=(1, 1), padding="SAME",
                                                 feature_group_count=2)),
}


def _conv(x, w, **kw):
    return lax.conv_general_dilated(x, w, dimension_numbers=("NHWC", "HWIO", "NHWC"), **kw)


@pytest.mark.parametrize("name", sorted(CONVS))
@pytest.mark.parametrize("scales", [(1e150, 1e100), (1e-150, 1e-100), (1e200, 1e-200)])
def test_scaled_convolution_matches_float64_far_outside_float32_range(name, scales):
    shape_x, shape_w, kw = CONVS[name]
    x, w = _rng_arrays(shape_x, shape_w, *scales)
    exact = _conv(x, w, **kw)
    scaled = float32_convolutions(lambda a, b: _conv(a, b, **kw))(x, w)
    assert scaled.dtype == jnp.float64
    assert np.all(np.isfinite(scaled)) and np.all(np.asarray(exact) > 0)
    # Non-negative terms: no cancellation, so every output is within float32 rounding.
    np.testing.assert_allclose(scaled, exact, rtol=2e-6)


def test_signed_operands_err_relative_to_the_terms():
    x, w = _rng_arrays((2, 9, 9, 4), (3, 3, 4, 6), 1e120, 1e-30, signed=True)
    exact = _conv(x, w, window_strides=(1, 1), padding="SAME")
    scaled = float32_convolutions(lambda a, b: _conv(a, b, window_strides=(1, 1),
                                                     padding="SAME"))(x, w)
    terms = _conv(jnp.abs(x), jnp.abs(w), window_strides=(1, 1), padding="SAME")
    assert np.max(np.abs(scaled - exact) / terms) < 2e-6


def test_power_of_two_scale():
    assert float(power_of_two_scale(jnp.array([0.75, -3.0]))) == 4.0
    assert float(power_of_two_scale(jnp.array([4.0]))) == 8.0   # m / s in [1/2, 1)
    assert float(power_of_two_scale(jnp.zeros(3))) == 1.0
    assert float(power_of_two_scale(jnp.array([jnp.inf, jnp.nan, 2.5e300]))) == 2.0 ** 998


def test_zeros_and_non_finite_values_propagate_as_in_float64():
    x = jnp.zeros((1, 4, 4, 2)).at[0, 0, 0, 0].set(jnp.inf)
    w = jnp.ones((3, 3, 2, 2))
    f = lambda a, b: _conv(a, b, window_strides=(1, 1), padding="SAME")  # noqa: E731
    exact, scaled = f(x, w), float32_convolutions(f)(x, w)
    np.testing.assert_array_equal(np.isfinite(scaled), np.isfinite(exact))
    np.testing.assert_array_equal(np.where(np.isfinite(exact), scaled, 0),
                                  np.where(np.isfinite(exact), exact, 0))


def _loss_and_grads(params, x):
    """A float64 network whose convolutions sit in every construct the transformation walks:
    plain, in a jit, in cond branches, in a scan body, under checkpointing, under relu's
    custom derivative, with the gradient convolutions that jax.grad adds."""

    def net(p, x):
        h = jax.nn.relu(_conv(x, p["a"], window_strides=(1, 1), padding="SAME"))
        h = jax.jit(lambda h, w: _conv(h, w, window_strides=(1, 1), padding="SAME"))(h, p["b"])
        h = lax.cond(jnp.sum(h) > 0,
                     lambda h: _conv(h, p["c"], window_strides=(2, 2), padding="SAME"),
                     lambda h: _conv(-h, p["c"], window_strides=(2, 2), padding="SAME"), h)
        h = jax.checkpoint(lambda h: jax.nn.relu(
            _conv(h, p["d"], window_strides=(1, 1), padding="SAME")))(h)

        def step(h, _):
            return jnp.tanh(_conv(h, p["d"], window_strides=(1, 1), padding="SAME")), None

        h, _ = lax.scan(step, h, None, length=2)
        return jnp.mean(h ** 2) * 1e-200

    return jax.value_and_grad(net, argnums=(0, 1))(params, x)


def _network_args(seed=0):
    rng = np.random.default_rng(seed)
    params = {k: jnp.asarray(rng.normal(size=s) * 1e80) for k, s in
              [("a", (3, 3, 3, 4)), ("b", (3, 3, 4, 4)), ("c", (3, 3, 4, 4)),
               ("d", (3, 3, 4, 4))]}
    params["d"] = params["d"] * 1e-80 * 0.2  # keep the scanned tanh away from saturation
    return params, jnp.asarray(rng.normal(size=(2, 8, 8, 3)) * 1e-40)


def _float64_convs(closed) -> collections.Counter:
    """Counts float64 and float32 convolutions at any depth of a jaxpr."""
    count = collections.Counter()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive is prims.conv_general_dilated_p:
                count[str(eqn.outvars[0].aval.dtype)] += 1
            for sub in core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(closed.jaxpr)
    return count


def _assert_trees_close(got, want, rtol):
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * float(np.max(np.abs(w))))


def test_every_float64_convolution_is_rewritten():
    args = _network_args()
    before = _float64_convs(jax.make_jaxpr(_loss_and_grads)(*args))
    after = _float64_convs(jax.make_jaxpr(float32_convolutions(_loss_and_grads))(*args))
    assert before["float64"] >= 10 and before["float32"] == 0
    assert after["float64"] == 0 and after["float32"] == before["float64"]


@pytest.mark.parametrize("route", ["eager", "jit"])
def test_transformed_function_matches_float64(route):
    args = _network_args()
    exact = jax.jit(_loss_and_grads)(*args)
    f = float32_convolutions(_loss_and_grads)
    got = (jax.jit(f) if route == "jit" else f)(*args)
    _assert_trees_close(got, exact, rtol=1e-5)


def test_transformed_function_under_vmap():
    (p0, x0), (p1, x1) = _network_args(0), _network_args(1)
    stacked = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), (p0, x0), (p1, x1))
    got = jax.vmap(float32_convolutions(_loss_and_grads))(*stacked)
    for i, args in enumerate([(p0, x0), (p1, x1)]):
        _assert_trees_close(jax.tree_util.tree_map(lambda a: a[i], got),
                            jax.jit(_loss_and_grads)(*args), rtol=1e-5)


def test_eager_calls_compile_once():
    f = float32_convolutions(_loss_and_grads)
    args = _network_args()
    jax.block_until_ready(f(*args))
    compiles = []
    from jax import monitoring

    def listen(name, seconds, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    monitoring.register_event_duration_secs_listener(listen)
    try:
        jax.block_until_ready(f(*_network_args(1)))
    finally:
        monitoring.unregister_event_duration_listener(listen)
    assert compiles == []


def test_jit_calls_without_float64_convolutions_are_kept_as_they_are():
    # Not traced again into an equal copy (a copy would be compiled a second time).
    block = jax.jit(lambda h, w: jax.nn.relu(h) * w)
    conv_block = jax.jit(lambda h, w: _conv(h, w, window_strides=(1, 1), padding="SAME"))

    def f(x, w):
        return conv_block(block(x, 2.0), w)

    x, w = _rng_arrays((1, 4, 4, 2), (3, 3, 2, 2), 1.0, 1.0)

    def jit_jaxprs(closed):
        return [e.params["jaxpr"] for e in closed.jaxpr.eqns if e.primitive is prims.jit_p]

    (plain, conv), (plain_t, conv_t) = (jit_jaxprs(jax.make_jaxpr(f)(x, w)),
                                        jit_jaxprs(jax.make_jaxpr(float32_convolutions(f))(x, w)))
    assert plain_t is plain
    assert conv_t is not conv and _float64_convs(conv_t) == {"float32": 1}
