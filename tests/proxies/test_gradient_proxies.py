"""grad_norm, snip, grasp, fisher, synflow, plain, l2_norm, params, flops.

Each proxy is checked against a computation that does not go through it: closed forms on a
single linear layer, a hand-written jax.numpy twin of a small conv network (explicit Hessian
for GraSP, per-sample loops for Fisher, finite differences for plain, float64 SynFlow), channel
gates for Fisher on NAS-Bench-201, and the NAS-Bench-201 cost tables for params and flops.
"""

import importlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from zcjax.data import Batch
from zcjax.proxies import base
from zcjax.proxies.context import Context
from zcjax.spaces import layers, nb201

# XLA's heavier optimisations off: these tests compile many programs for tiny networks.
pytestmark = pytest.mark.usefixtures("fast_compiles")

NAMES = ["grad_norm", "snip", "grasp", "fisher", "synflow", "plain", "l2_norm", "params", "flops"]
MODULES = {name: importlib.import_module(f"zcjax.proxies.{name}") for name in NAMES}

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CONV3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def run(name, apply_fn, variables, batch):
    return float(base.get(name).fn(apply_fn, variables, batch, jax.random.key(0)))


def all_proxies(apply_fn):
    """One function scoring every proxy of this file (jit it to compile them together)."""
    fns = {n: base.get(n).fn for n in NAMES}
    return lambda v, b: {n: f(apply_fn, v, b, jax.random.key(0)) for n, f in fns.items()}


def as_floats(scores):
    return {n: float(v) for n, v in scores.items()}


def numpy_init(model, x, seed):
    """Variables of ``model`` drawn with NumPy, PyTorch-style bounds.

    (``model.init`` compiles one threefry kernel per parameter shape, ~15 s of CPU for the
    tiny NAS-Bench-201 network; the proxies do not care where the values come from.)
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]

    def draw(path, s):
        name = base.path_names(path)[-1]
        if name == "scale":
            return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
        bound = 1 / np.sqrt(np.prod(s.shape[:-1])) if name == "kernel" else 0.3
        return jnp.asarray(rng.uniform(-bound, bound, s.shape), s.dtype)

    return {"params": jax.tree_util.tree_map_with_path(draw, shapes)}


def random_batch(seed, n, shape, classes):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return Batch(jax.random.normal(k1, (n, *shape)),
                 jax.random.randint(k2, (n,), 0, classes).astype(jnp.int32))


def ce(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(logp[jnp.arange(labels.shape[0]), labels])


# -- 1. one linear layer: every proxy in closed form ---------------------------------------

class Linear(nn.Module):
    """logits = flatten(x) W + b (one zcjax Dense)."""

    @nn.compact
    def __call__(self, x, *, use_bn=True):
        return layers.Dense(5, name="fc")(x.reshape(x.shape[0], -1))


def test_single_linear_layer_closed_forms():
    model = Linear()
    batch = random_batch(1, 6, (2, 2, 3), 5)
    variables = numpy_init(model, batch.images, 1)
    W = np.asarray(variables["params"]["fc"]["dense"]["kernel"], np.float64)
    b = np.asarray(variables["params"]["fc"]["dense"]["bias"], np.float64)
    X = np.asarray(batch.images, np.float64).reshape(6, -1)
    Y = np.eye(5)[np.asarray(batch.labels)]
    n, d = X.shape

    Z = X @ W + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    dZ = (P - Y) / n                      # d mean-CE / d logits
    G = X.T @ dZ                          # d mean-CE / d W
    # Hessian-vector product of mean-CE in W along G: X^T [(diag p - p p^T) (X G)] / n
    U = X @ G
    V = P * U - P * np.sum(P * U, axis=1, keepdims=True)
    HG = X.T @ V / n
    fisher = d * np.sum(0.5 * np.mean((Z * dZ) ** 2, axis=0))
    expected = {
        "grad_norm": np.linalg.norm(G),
        "snip": np.abs(W * G).sum(),
        "plain": (W * G).sum(),
        "grasp": -(W * HG).sum(),
        "fisher": fisher,
        # ones input, |W|, |b|: R = sum|W| + sum|b|, dR/d|W| = 1
        "synflow": np.log(np.abs(W).sum()),
        "l2_norm": np.linalg.norm(W),
        "params": (d + 1) * 5 / 1e6,
        "flops": d * 5 / 1e6,
    }
    got = as_floats(jax.jit(all_proxies(model.apply))(variables, batch))
    assert sorted(expected) == sorted(got)
    for name, want in expected.items():
        np.testing.assert_allclose(got[name], want, rtol=2e-5, atol=1e-9, err_msg=name)


# -- 2. a small conv network and its jax.numpy twin ---------------------------------------

class Chain(nn.Module):
    """conv3x3 (bias) -> BN -> ReLU -> conv1x1 -> ReLU -> global mean -> dense."""

    @nn.compact
    def __call__(self, x, *, use_bn=True):
        x = layers.Conv(3, 3, padding=1, use_bias=True, name="c1")(x)
        if use_bn:
            x = layers.BatchNorm(name="bn")(x)
        x = nn.relu(x)
        x = layers.Conv(4, 1, name="c2")(x)
        x = nn.relu(x)
        return layers.Dense(5, name="fc")(jnp.mean(x, axis=(1, 2)))


def _conv(x, k, pad):
    return jax.lax.conv_general_dilated(x, k, (1, 1), ((pad, pad), (pad, pad)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def twin(p, x, use_bn=True, eps=(0.0, 0.0, 0.0)):
    """Chain written out by hand; ``eps`` are added to the three layer outputs."""
    a1 = _conv(x, p["c1"]["conv"]["kernel"], 1) + p["c1"]["conv"]["bias"] + eps[0]
    h = a1
    if use_bn:
        mean = h.mean(axis=(0, 1, 2))
        var = ((h - mean) ** 2).mean(axis=(0, 1, 2))
        h = (h - mean) / jnp.sqrt(var + 1e-5) * p["bn"]["scale"] + p["bn"]["bias"]
    a2 = _conv(jnp.maximum(h, 0), p["c2"]["conv"]["kernel"], 0) + eps[1]
    feats = jnp.maximum(a2, 0).mean(axis=(1, 2))
    a3 = feats @ p["fc"]["dense"]["kernel"] + p["fc"]["dense"]["bias"] + eps[2]
    return a3, (a1, a2, a3)


KERNELS = [("c1", "conv"), ("c2", "conv"), ("fc", "dense")]


def kernels(p):
    return [p[a][b]["kernel"] for a, b in KERNELS]


def with_kernels(p, ks):
    p = jax.tree.map(lambda x: x, p)
    for (a, b), k in zip(KERNELS, ks):
        p[a][b]["kernel"] = k
    return p


@pytest.fixture(scope="module")
def chain():
    model = Chain()
    batch = random_batch(2, 6, (5, 5, 2), 5)
    return model, numpy_init(model, batch.images, 2), batch


@pytest.fixture(scope="module")
def chain_scores(chain):
    """Every proxy on the chain: (eager, jitted, jitted on a second batch)."""
    model, variables, batch = chain
    eager = {n: run(n, model.apply, variables, batch) for n in NAMES}
    jitted = jax.jit(all_proxies(model.apply))
    other = random_batch(3, 6, (5, 5, 2), 5)
    return eager, as_floats(jitted(variables, batch)), as_floats(jitted(variables, other))


def test_twin_reproduces_the_flax_network(chain):
    model, variables, batch = chain
    for use_bn in (True, False):
        np.testing.assert_allclose(model.apply(variables, batch.images, use_bn=use_bn),
                                   twin(variables["params"], batch.images, use_bn)[0],
                                   rtol=1e-5, atol=1e-6)


def test_first_order_proxies_against_the_twin(chain, chain_scores):
    model, variables, batch = chain
    scores = chain_scores[0]
    p = variables["params"]
    loss = lambda ks: ce(twin(with_kernels(p, ks), batch.images)[0], batch.labels)
    ws = [np.asarray(w, np.float64) for w in kernels(p)]
    gs = [np.asarray(g, np.float64) for g in jax.grad(loss)(kernels(p))]
    expected = {
        "grad_norm": sum(np.linalg.norm(g) for g in gs),
        "snip": sum(np.abs(w * g).sum() for w, g in zip(ws, gs)),
        "plain": sum((w * g).sum() for w, g in zip(ws, gs)),
        "l2_norm": sum(np.linalg.norm(w) for w in ws),
    }
    for name, want in expected.items():
        np.testing.assert_allclose(scores[name], want, rtol=1e-5, err_msg=name)


def test_plain_is_the_derivative_along_kernel_scaling(chain, chain_scores):
    """plain = d/de L((1+e) W) at 0: central finite differences in float64."""
    model, variables, batch = chain
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), variables["params"])
        x64 = jnp.asarray(batch.images, jnp.float64)

        def loss_at(e):
            ks = [(1 + e) * k for k in kernels(p64)]
            return float(ce(twin(with_kernels(p64, ks), x64)[0], batch.labels))

        h = 1e-5
        fd = (loss_at(h) - loss_at(-h)) / (2 * h)
    np.testing.assert_allclose(chain_scores[0]["plain"], fd, rtol=1e-4)


def test_grasp_against_an_explicit_hessian(chain, chain_scores):
    model, variables, batch = chain
    p = variables["params"]
    flat, unravel = ravel_pytree(kernels(p))
    loss = lambda v: ce(twin(with_kernels(p, unravel(v)), batch.images)[0], batch.labels)
    g = np.asarray(jax.jit(jax.grad(loss))(flat), np.float64)
    H = np.asarray(jax.jit(jax.hessian(loss))(flat), np.float64)  # kernels only: biases, BN fixed
    assert H.shape == (86, 86)
    want = -np.dot(np.asarray(flat, np.float64), H @ g)
    np.testing.assert_allclose(chain_scores[0]["grasp"], want, rtol=1e-4)


def test_fisher_against_a_per_sample_loop(chain):
    """Without BN samples are independent: loop over them, one gradient per sample."""
    model, variables, batch = chain
    p = variables["params"]
    n = batch.images.shape[0]
    fan_in = [3 * 3 * 2, 3, 4]
    g_rows = []
    for i in range(n):
        x, y = batch.images[i:i + 1], batch.labels[i:i + 1]
        _, acts = twin(p, x, use_bn=False)
        eps0 = tuple(jnp.zeros_like(a) for a in acts)
        # the batch loss is the mean over samples: d L / d a_i = (1/n) d loss_i / d a_i
        grads = jax.grad(lambda e: ce(twin(p, x, False, e)[0], y) / n)(eps0)
        g_rows.append([np.asarray((a * g).reshape(-1, a.shape[-1]).sum(0), np.float64)
                       for a, g in zip(acts, grads)])
    want = 0.0
    for layer in range(3):
        g = np.stack([row[layer] for row in g_rows])            # (n, channels)
        want += fan_in[layer] * np.sum(0.5 * np.mean(g ** 2, axis=0))
    apply_no_bn = lambda v, x, **kw: model.apply(v, x, use_bn=False, **kw)
    np.testing.assert_allclose(run("fisher", apply_no_bn, variables, batch), want, rtol=1e-4)
    # and the variant without the reference's fan-in weighting
    per_channel = float(MODULES["fisher"].fisher_per_channel(
        Context(apply_no_bn, variables, batch, None)))
    assert not np.isclose(per_channel, want, rtol=1e-2)
    want_unweighted = sum(np.sum(0.5 * np.mean(np.stack([r[l] for r in g_rows]) ** 2, axis=0))
                          for l in range(3))
    np.testing.assert_allclose(per_channel, want_unweighted, rtol=1e-4)


def test_synflow_against_the_twin_in_float64(chain, chain_scores):
    model, variables, batch = chain
    with jax.enable_x64(True):
        p = jax.tree.map(lambda x: jnp.abs(jnp.asarray(x, jnp.float64)), variables["params"])
        ones = jnp.ones((1, 5, 5, 2), jnp.float64)
        R = lambda ks: jnp.sum(twin(with_kernels(p, ks), ones, use_bn=False)[0])
        gs = jax.grad(R)(kernels(p))
        want = float(np.log(sum(np.sum(np.asarray(w * g)) for w, g in zip(kernels(p), gs))))
    np.testing.assert_allclose(chain_scores[0]["synflow"], want, rtol=1e-6)


def test_synflow_is_invariant_to_rescaling_between_layers(chain):
    model, variables, batch = chain
    p = variables["params"]
    a = 3.0
    rescaled = jax.tree.map(lambda x: x, p)
    rescaled["c1"]["conv"]["kernel"] = a * p["c1"]["conv"]["kernel"]
    rescaled["c1"]["conv"]["bias"] = a * p["c1"]["conv"]["bias"]
    rescaled["c2"]["conv"]["kernel"] = p["c2"]["conv"]["kernel"] / a
    only_first = jax.tree.map(lambda x: x, rescaled)
    only_first["c2"]["conv"]["kernel"] = p["c2"]["conv"]["kernel"]
    base_score = run("synflow", model.apply, variables, batch)
    # BN is dropped by synflow, so the ReLU network is positively homogeneous per layer
    np.testing.assert_allclose(run("synflow", model.apply, {"params": rescaled}, batch),
                               base_score, rtol=1e-6)
    assert abs(run("synflow", model.apply, {"params": only_first}, batch) - base_score) > 0.5
    # a loss-based proxy with BN is not invariant to the same change
    assert not np.isclose(run("snip", model.apply, {"params": rescaled}, batch),
                          run("snip", model.apply, variables, batch), rtol=1e-3)


def test_synflow_uses_float64_past_float32_range(chain):
    """Kernels x1e13: S ~ 1e40 overflows float32, not float64; ln S stays exact."""
    model, variables, batch = chain
    big = jax.tree.map(lambda x: x, variables["params"])
    for a, b in KERNELS:
        big[a][b]["kernel"] = big[a][b]["kernel"] * 1e13
    ctx = Context(model.apply, {"params": big}, batch, None)
    mod = MODULES["synflow"]
    log64 = float(mod.synflow_score(ctx, jnp.float64, log=True))
    assert np.isfinite(log64) and log64 > np.log(3.4e38)
    assert not np.isfinite(float(mod.synflow_score(ctx, jnp.float32, log=True)))
    assert np.isinf(float(mod.synflow_score(ctx, jnp.float64, log=False)))
    # with the kernels as initialised both precisions agree
    ctx = Context(model.apply, variables, batch, None)
    np.testing.assert_allclose(mod.synflow_score(ctx, jnp.float32, log=False),
                               mod.synflow_score(ctx, jnp.float64, log=False), rtol=1e-5)


# -- 3. NAS-Bench-201 --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_np_variables(tiny_model, tiny_batch):
    return numpy_init(tiny_model, tiny_batch.images[:1], 0)


@pytest.fixture(scope="module")
def nb201_scores(tiny_model, tiny_np_variables, tiny_batch):
    """Every proxy on the tiny NAS-Bench-201 network, compiled together."""
    return as_floats(jax.jit(all_proxies(tiny_model.apply))(tiny_np_variables, tiny_batch))


def test_fisher_equals_channel_gates_on_nb201(tiny_model, tiny_np_variables, tiny_batch,
                                              nb201_scores):
    """d L / d (gate on channel k of sample n) = sum_spatial a * dL/da: a second route."""
    images, labels = tiny_batch
    fan_ins = []

    def gated_loss(gates):
        it = iter(gates)

        def hook(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if context.method_name == "__call__" and isinstance(context.module,
                                                                (nn.Conv, nn.Dense)):
                s = next(it)
                y = y * (s[:, None, None, :] if y.ndim == 4 else s)
            return y

        with nn.intercept_methods(hook):
            return ce(tiny_model.apply(tiny_np_variables, images), labels)

    kernels_ = base.layer_weights(tiny_np_variables["params"])
    # one gate per counted layer: 15 convs (stem, 3 per cell, 2+1 per reduction) + classifier
    assert len(kernels_) == 17
    # gate shapes in call order: trace once to learn them
    shapes = []

    def record(next_fun, args, kwargs, context):
        y = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and isinstance(context.module, (nn.Conv, nn.Dense)):
            shapes.append((y.shape[0], y.shape[-1]))
            fan_ins.append(int(np.prod(context.module.variables["params"]["kernel"].shape[:-1])))
        return y

    with nn.intercept_methods(record):
        jax.eval_shape(tiny_model.apply, tiny_np_variables, images)
    gates = [jnp.ones(s) for s in shapes]
    g = jax.jit(jax.grad(gated_loss))(gates)
    want = sum(n * np.sum(0.5 * np.mean(np.asarray(gk, np.float64) ** 2, axis=0))
               for gk, n in zip(g, fan_ins))
    assert len(g) == 17
    np.testing.assert_allclose(nb201_scores["fisher"], want, rtol=1e-4)


@pytest.mark.parametrize("convention", ["zero_cost", "official", "naslib"])
def test_params_equals_the_nb201_param_count(convention, tiny_batch):
    for arch in (ALL_NONE, MIXED, ALL_CONV3):
        model = nb201.build(arch, channels=4, cells_per_stage=1, convention=convention)
        shapes = jax.eval_shape(lambda k: nb201.init(model, k), jax.random.key(0))
        want = nb201.param_count(arch, channels=4, cells_per_stage=1, convention=convention)
        np.testing.assert_allclose(run("params", model.apply, shapes, tiny_batch) * 1e6, want,
                                   rtol=1e-6, err_msg=arch)


def test_params_of_the_benchmark_network_match_the_benchmark_table(tiny_batch):
    # NAS-Bench-201 params_mb_cifar10 of cell 1 (official convention, C=16, N=5): 0.802426
    model = nb201.build(1, convention="official")
    shapes = jax.eval_shape(lambda k: nb201.init(model, k), jax.random.key(0))
    np.testing.assert_allclose(run("params", model.apply, shapes, tiny_batch), 0.802426,
                               rtol=1e-6)


def test_flops_equals_the_nb201_table(tiny_batch):
    small = Batch(jnp.zeros((2, 16, 16, 3)), jnp.zeros((2,), jnp.int32))
    for arch in (ALL_NONE, MIXED, ALL_CONV3, 1234):
        model = nb201.build(arch, channels=4, cells_per_stage=1)
        shapes = jax.eval_shape(lambda k: nb201.init(model, k), jax.random.key(0))
        for batch, size in ((tiny_batch, 32), (small, 16)):
            want = nb201.flops(arch, channels=4, cells_per_stage=1, image_size=size)
            np.testing.assert_allclose(run("flops", model.apply, shapes, batch) * 1e6, want,
                                       rtol=1e-6, err_msg=f"{arch} {size}")
    # benchmark network: the published 7.78 M (all none) and 220.11 M (all 3x3 convs)
    for arch, published in ((ALL_NONE, 7.78), (ALL_CONV3, 220.11)):
        model = nb201.build(arch)
        shapes = jax.eval_shape(lambda k: nb201.init(model, k), jax.random.key(0))
        assert int(run("flops", model.apply, shapes, tiny_batch) * 100) / 100 == published  # truncated


def test_flops_walks_sub_jaxprs():
    count = MODULES["flops"].count_macs
    x = jnp.ones((3, 4))
    w = jnp.ones((4, 5))
    plain_ = count(jax.make_jaxpr(lambda x, w: x @ w)(x, w))
    assert plain_ == 3 * 4 * 5
    assert count(jax.make_jaxpr(lambda x, w: jax.jit(lambda a, b: a @ b)(x, w))(x, w)) == plain_
    matmul = jax.custom_jvp(lambda a, b: a @ b)
    matmul.defjvp(lambda primals, tangents: (matmul(*primals), tangents[0] @ primals[1] + primals[0] @ tangents[1]))
    assert count(jax.make_jaxpr(matmul)(x, w)) == plain_
    looped = lambda x, w: jax.lax.scan(lambda c, _: (c, c @ w), x, None, length=7)[1]
    assert count(jax.make_jaxpr(looped)(x, w)) == 7 * plain_


# -- 4. contract: jit, finiteness, what each proxy reads ----------------------------------

def test_jit_equals_eager(chain_scores):
    eager, jitted, _ = chain_scores
    for name in NAMES:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=2e-5, err_msg=name)


def test_scores_on_nb201_are_finite(nb201_scores):
    for name in NAMES:
        assert np.isfinite(nb201_scores[name]), name
    for name in ("grad_norm", "snip", "fisher", "l2_norm", "params", "flops"):
        assert nb201_scores[name] > 0, name
    # grasp and plain are signed sums; both are non-zero on a real network
    assert nb201_scores["grasp"] != 0 and nb201_scores["plain"] != 0


def test_registry_metadata():
    for name in NAMES:
        info = base.get(name)
        assert info.fn.__doc__ and info.paper and info.reference, name
        assert info.data_free == (name in ("synflow", "l2_norm", "params", "flops")), name
        assert info.needs_labels == (not info.data_free), name
        assert info.higher_is_better


def test_data_free_proxies_ignore_the_data_and_the_others_do_not(chain_scores):
    _, scores, other = chain_scores
    for name in NAMES:
        if base.get(name).data_free:
            np.testing.assert_allclose(other[name], scores[name], rtol=1e-6, err_msg=name)
        else:
            assert not np.isclose(other[name], scores[name], rtol=1e-3), name
