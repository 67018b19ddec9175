"""Epsilon and CRoZe against plain re-implementations of their references.

The naive versions below are written from the reference code (egracheva/epsinas
``compute_epsinas``; HyeonjeongHa/CRoZe ``measures/croze.py`` + ``p_utils.py``), step by step:
Python loops over the flattened parameters, separate forward / backward passes, and the final
formulas in NumPy float64 in PyTorch's layout, so they share no code with the implementation.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict

from zcjax.proxies import base, croze as croze_mod, epsilon as eps_mod
from zcjax.proxies.context import Context
from zcjax.spaces import nb201

# XLA's heavier optimisations off: each test compiles its own programs (a jitted proxy, its naive
# twin), and those compile faster.
pytestmark = pytest.mark.usefixtures("fast_compiles")

# the conftest cell: 3x3 and 1x1 convs, pooling, skip, none
MIXED_CELL = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
              "+|skip_connect~0|none~1|nor_conv_3x3~2|")


def numpy_init(model, seed, image_shape=(32, 32, 3)):
    """PyTorch-like random variables drawn with NumPy.

    ``nb201.init`` compiles JAX's random number generator for every parameter shape (about 15 s
    of CPU the first time in a process); the proxies do not depend on how weights were drawn,
    so these tests draw them with NumPy: kernels and biases uniform on +-1/sqrt(fan_in), batch
    norm scales 1 and shifts 0.
    """
    shapes = jax.eval_shape(model.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, *image_shape), jnp.float32))["params"]
    rng = np.random.default_rng(seed)
    flat = flatten_dict(dict(shapes))
    fan_in = {k[:-1]: int(np.prod(s.shape[:-1])) for k, s in flat.items() if k[-1] == "kernel"}
    out = {}
    for k, s in flat.items():
        if k[-1] == "scale":
            out[k] = np.ones(s.shape, np.float32)
        elif k[-1] == "bias" and k[:-1] not in fan_in:  # batch-norm shift
            out[k] = np.zeros(s.shape, np.float32)
        else:
            bound = 1.0 / np.sqrt(fan_in[k[:-1]])
            out[k] = rng.uniform(-bound, bound, s.shape).astype(np.float32)
    return {"params": jax.tree_util.tree_map(jnp.asarray, unflatten_dict(out))}


# -- epsilon --------------------------------------------------------------------------------

def naive_epsilon(model, variables, images, weights):
    forward = jax.jit(model.apply)  # the plain forward; jitted only to keep the test fast
    preds = []
    for w in weights:
        flat = flatten_dict(dict(variables["params"]))
        new = {}
        for name, value in flat.items():
            if name[-1] == "bias":
                new[name] = np.zeros_like(value)
            elif name[-1] in ("kernel", "scale"):
                new[name] = np.full_like(value, w)
            else:
                new[name] = value
        y = np.asarray(forward({"params": unflatten_dict(new)}, images)).ravel()
        preds.append((y - np.nanmin(y)) / (np.nanmax(y) - np.nanmin(y)))
    preds = np.array(preds)
    preds[np.where(preds == 0.0)] = np.nan
    return np.nanmean(np.abs(preds[0] - preds[1])) / np.nanmean(preds)


@pytest.fixture(scope="module")
def official_model():
    return nb201.build(MIXED_CELL, channels=4, cells_per_stage=1, convention="official")


@pytest.fixture(scope="module")
def eps_net(official_model):
    return official_model, numpy_init(official_model, 2)


@functools.partial(jax.jit, static_argnums=0, static_argnames="weights")
def _eps_jit(apply_fn, variables, batch, weights=(1e-7, 1.0)):
    return eps_mod.epsilon(apply_fn, variables, batch, weights=weights)


RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


@pytest.mark.parametrize("case, space", [("official-c4", "nb201"), ("zero_cost-c8", "nb101")])
def test_epsilon_matches_naive(case, space, eps_net, tiny_batch):
    if case == "official-c4":
        model, variables = eps_net
    else:
        # C=8: with the constants as literals inside jit, XLA's constant folding changed this
        # network's outputs (max 32.4 instead of 30.9 at w=1); the naive forward takes them as
        # run-time values.
        model = nb201.build(RESNET_CELL, channels=8, cells_per_stage=1, convention="zero_cost")
        variables = numpy_init(model, 1)
    weights = eps_mod.epsilon_for(space)
    expected = naive_epsilon(model, variables, tiny_batch.images, weights)
    got = _eps_jit(model.apply, variables, tiny_batch, weights=weights)
    assert got.dtype == jnp.float32 and got.shape == ()
    np.testing.assert_allclose(float(got), expected, rtol=2e-5)


def test_epsilon_score_by_hand():
    # Normalised zeros are dropped (the reference's quirk), which matters when the minima of
    # the two outputs sit at different positions: here only position 2 and 3 keep both values.
    p = jnp.array([[0.0, 0.2, 0.6, 1.0], [0.5, 0.0, 0.3, 1.0]])
    mae = (0.3 + 0.0) / 2
    mean = (0.2 + 0.6 + 1.0 + 0.5 + 0.3 + 1.0) / 6
    np.testing.assert_allclose(float(eps_mod.epsilon_score(p)), mae / mean, rtol=1e-6)
    # With the minima at the same position the quirk cancels out.
    q = jnp.array([[0.0, 0.2, 1.0], [0.0, 0.6, 1.0]])
    np.testing.assert_allclose(float(eps_mod.epsilon_score(q)),
                               float(jnp.mean(jnp.abs(q[0] - q[1])) / jnp.mean(q)), rtol=1e-6)


def test_epsilon_registered_default_eager_equals_jit(eps_net, tiny_batch):
    model, variables = eps_net
    info = base.get("epsilon")
    assert not info.needs_labels and not info.needs_gradients and not info.data_free
    eager = info.fn(model.apply, variables, tiny_batch)  # NB201 constants by default
    np.testing.assert_allclose(float(eager), float(_eps_jit(model.apply, variables, tiny_batch)),
                               rtol=1e-6)


def test_epsilon_ignores_labels(eps_net, tiny_batch):
    model, variables = eps_net
    other = tiny_batch._replace(labels=(tiny_batch.labels + 3) % 10)
    assert float(_eps_jit(model.apply, variables, tiny_batch)) == float(
        _eps_jit(model.apply, variables, other))


def test_epsilon_independent_of_number_of_classes(tiny_batch):
    # Constant weights and zero biases make every logit of a sample equal.
    scores = []
    for k in (1, 10):
        model = nb201.build(MIXED_CELL, channels=4, cells_per_stage=1, num_classes=k,
                            convention="official")
        scores.append(float(eps_mod.epsilon(model.apply, numpy_init(model, 0),
                                            tiny_batch)))
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5)


class ConstantOutput(nn.Module):
    """A network whose output does not depend on its input or weights."""

    @nn.compact
    def __call__(self, x, *, use_bn=True):
        return nn.Dense(10, name="dense")(x.reshape((x.shape[0], -1))) * 0.0


def test_epsilon_nan_for_constant_output(tiny_batch):
    model = ConstantOutput()
    variables = numpy_init(model, 0)
    assert np.isnan(float(eps_mod.epsilon(model.apply, variables, tiny_batch)))
    assert np.isnan(float(_eps_jit(model.apply, variables, tiny_batch)))
    report = eps_mod.epsilon_diagnostics(model.apply, variables, tiny_batch)
    assert np.isnan(report["score"])
    assert "constant" in report["reason"]
    assert [o["range"] for o in report["outputs"]] == [0.0, 0.0]


def test_epsilon_diagnostics_for_a_finite_score(eps_net, tiny_batch):
    model, variables = eps_net
    report = eps_mod.epsilon_diagnostics(model.apply, variables, tiny_batch)
    assert report["reason"] is None
    assert all(o["range"] > 0 and o["nonfinite"] == 0 for o in report["outputs"])
    np.testing.assert_allclose(
        report["score"], float(eps_mod.epsilon(model.apply, variables, tiny_batch)),
        rtol=1e-6)


def test_epsilon_constants():
    assert eps_mod.epsilon_for("nb201") == (1e-7, 1.0)
    assert eps_mod.epsilon_for("NAS-Bench-101") == (1e-4, 10.0)
    with pytest.raises(ValueError):
        eps_mod.epsilon_for("darts")
    with pytest.raises(ValueError):
        eps_mod.epsilon_from_context(None, weights=(1.0, 1.0))


# -- CRoZe: naive re-implementations ----------------------------------------------------------

def _ce(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(logp[jnp.arange(labels.shape[0]), labels])


def _bn_only_in_reductions(next_fun, args, kwargs, context):
    # get_prunable_copy(bn=False) rebuilds the network without batch norm, except inside the
    # residual reduction blocks (their ReLUConvBN ignores use_bn).
    if type(context.module).__name__ == "BatchNorm":
        if not context.module.scope.path[0].startswith("reduction"):
            return args[0]
    return next_fun(*args, **kwargs)


# Reference feature index per layer for N = 1, worked out by hand from the reference's loop
# (layer_cnt = SearchCells entered so far; index = layer_cnt // 5 with 5 -> N, +1 for Linear).
FEATURE_OF_N1 = {"stem_conv": 0, "cell_0_0": 1, "reduction_1": 1, "cell_1_0": 2,
                 "reduction_2": 2, "cell_2_0": 3, "classifier": 4}


def _kernel_torch(a):
    a = np.asarray(a, np.float64)
    return a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T  # Linear (in, out) -> (out, in)


def _feature_torch(a):
    a = np.asarray(a, np.float64)
    return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def _cos_dim0(a, b):
    """torch 1.10 CosineSimilarity(dim=0)."""
    w12, w1, w2 = (a * b).sum(0), (a * a).sum(0), (b * b).sum(0)
    return w12 / np.sqrt(np.maximum(w1 * w2, 1e-16))


def _cos_flat(a, b):
    return _cos_dim0(np.ravel(a), np.ravel(b))


@functools.partial(jax.jit, static_argnums=0)
def _naive_reference_passes(model, params, images, labels):
    flat = flatten_dict(dict(params))
    p_abs = unflatten_dict({k: jnp.abs(v) for k, v in flat.items()})

    def forward(p, x):
        with nn.intercept_methods(_bn_only_in_reductions):
            logits, state = model.apply({"params": p}, x, capture_intermediates=True,
                                        mutable=["intermediates"])
        inter = state["intermediates"]
        feats = [inter["stem_conv"]["__call__"][0], inter["reduction_1"]["__call__"][0],
                 inter["reduction_2"]["__call__"][0], inter["cell_2_0"]["__call__"][0],
                 jnp.mean(inter["last_relu"]["__call__"][0], axis=(1, 2))]
        return logits, feats

    def loss(p, x):  # mean cross-entropy, with the features of the same forward
        logits, feats = forward(p, x)
        return _ce(logits, labels), feats

    # Each pass: one forward and one backward, for the parameters and the input.
    passes = jax.grad(loss, argnums=(0, 1), has_aux=True)
    # clean network (|theta|), clean input
    (g, _), feats = passes(p_abs, images)
    # adj_weights: SGD(lr=1e-3) on -CE, then w += 2.0 * |w| / (|diff| + 1e-30) * diff
    flat_abs, flat_g = flatten_dict(p_abs), flatten_dict(g)
    flat_r = {}
    for k, w in flat_abs.items():
        if k[-1] == "kernel":
            diff = (w + 1e-3 * flat_g[k]) - w
            flat_r[k] = w + 2.0 * (jnp.linalg.norm(w) / (jnp.linalg.norm(diff) + 1e-30)) * diff
        else:
            flat_r[k] = w
    p_r = unflatten_dict(flat_r)
    # fgsm_attack on the perturbed network: x - 0.01 * sign(grad), clamp to [0, 1]; its
    # backward also leaves d loss / d theta_r in the parameters' .grad
    (g_fgsm, gx), _ = passes(p_r, images)
    x_r = jnp.clip(images - 0.01 * jnp.sign(gx), 0.0, 1.0)
    # perturbed network, perturbed input; gradients accumulate onto g_fgsm
    (g_adv, _), feats_r = passes(p_r, x_r)
    g_r = jax.tree_util.tree_map(lambda a, b: a + b, g_adv, g_fgsm)
    return p_abs, g, feats, p_r, g_r, feats_r


def naive_croze_reference(model, variables, batch):
    p, g, feats, p_r, g_r, feats_r = jax.device_get(_naive_reference_passes(
        model, variables["params"], batch.images, batch.labels))
    fp, fg, fpr, fgr = (flatten_dict(dict(t)) for t in (p, g, p_r, g_r))
    total = 0.0
    for k in fp:
        if k[-1] != "kernel":
            continue
        idx = FEATURE_OF_N1[k[0]]
        w_sim = (1 + _cos_dim0(_kernel_torch(fpr[k]), _kernel_torch(fp[k]))).sum()
        sim = np.abs(_cos_dim0(_kernel_torch(fgr[k]), _kernel_torch(fg[k]))).sum()
        feat_sim = (1 + _cos_dim0(_feature_torch(feats_r[idx]), _feature_torch(feats[idx]))).sum()
        total += abs(w_sim * sim * feat_sim)
    return total


@functools.partial(jax.jit, static_argnums=0)
def _naive_paper_passes(model, params, images, labels):
    def forward(p, x):
        logits, state = model.apply({"params": p}, x, capture_intermediates=True,
                                    mutable=["intermediates"])
        return logits, flatten_dict(dict(state["intermediates"]))

    def loss(p, x):  # mean cross-entropy, with each layer's output (kernel path -> output)
        logits, inter = forward(p, x)
        outputs = {k: inter[k[:-1] + ("__call__",)][0]
                   for k in flatten_dict(dict(p)) if k[-1] == "kernel"}
        return _ce(logits, labels), outputs

    passes = jax.grad(loss, argnums=(0, 1), has_aux=True)
    (g, _), z = passes(params, images)
    flat, flat_g = flatten_dict(dict(params)), flatten_dict(g)
    flat_r = {}
    for k, w in flat.items():
        if k[-1] == "kernel":
            diff = 1e-3 * flat_g[k]
            flat_r[k] = w + 2.0 * (jnp.linalg.norm(w) / (jnp.linalg.norm(diff) + 1e-30)) * diff
        else:
            flat_r[k] = w
    p_r = unflatten_dict(flat_r)
    (_, gx), _ = passes(p_r, images)
    x_r = images + 0.01 * jnp.sign(gx)  # FGSM: raise the loss, no clamp
    (g_r, _), z_r = passes(p_r, x_r)
    return params, g, z, p_r, g_r, z_r


def naive_croze_paper(model, variables, batch):
    p, g, z, p_r, g_r, z_r = jax.device_get(_naive_paper_passes(
        model, variables["params"], batch.images, batch.labels))
    fp, fg, fpr, fgr = (flatten_dict(dict(t)) for t in (p, g, p_r, g_r))
    total = 0.0
    for k in z:
        total += abs((1 + _cos_flat(fpr[k], fp[k])) * abs(_cos_flat(fgr[k], fg[k]))
                     * (1 + _cos_flat(z_r[k], z[k])))
    return total


# -- CRoZe tests ------------------------------------------------------------------------------

# One conv per cell (besides the stem, reduction and classifier layers) keeps compiles short.
CROZE_CELL = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
INF = float("inf")
# (gamma, fgsm_eps, clamp_lo, clamp_hi): the reference constants, and no perturbation at all.
DEFAULTS = {"croze": (2.0, 0.01, 0.0, 1.0), "croze_paper": (2.0, 0.01, -INF, INF)}
UNPERTURBED = (0.0, 0.0, -INF, INF)
CONFIGS = {"croze": croze_mod.REFERENCE, "croze_paper": croze_mod.PAPER}


@pytest.fixture(scope="module")
def croze_net(tiny_batch):
    model = nb201.build(CROZE_CELL, channels=4, cells_per_stage=1)
    return model, numpy_init(model, 0), tiny_batch


def _x64(variables, batch):
    variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables)
    return variables, batch._replace(images=jnp.asarray(batch.images, jnp.float64))


@functools.partial(jax.jit, static_argnums=(0, 1), static_argnames="float64_convolutions")
def _croze_jit(name, model, variables, batch, gamma, eps, lo, hi, float64_convolutions=False):
    """The implementation, jitted; perturbation sizes are traced so one compile per variant
    serves every test (a clamp to (-inf, inf) is no clamp)."""
    ctx = Context(model.apply, variables, batch, None)
    return croze_mod.croze_from_context(ctx, CONFIGS[name], gamma=gamma, fgsm_eps=eps,
                                        clamp=(lo, hi), float64_convolutions=float64_convolutions)


def _jit_x64(name, croze_net, args, **kwargs):
    """In float64, as the reference (``net.double()``), so the comparisons can be tight."""
    model, variables, batch = croze_net
    with jax.enable_x64(True):
        v, b = _x64(variables, batch)
        return float(_croze_jit(name, model, v, b, *args, **kwargs))


@pytest.mark.parametrize("name, naive", [("croze", naive_croze_reference),
                                         ("croze_paper", naive_croze_paper)])
def test_croze_matches_naive(name, naive, croze_net):
    model, variables, batch = croze_net
    with jax.enable_x64(True):
        expected = naive(model, *_x64(variables, batch))
    assert np.isfinite(expected) and expected > 0
    # croze in the reference's arithmetic (float64 convolutions too); croze_paper runs in the
    # parameters' dtype (float64 here), where the option changes nothing.
    np.testing.assert_allclose(
        _jit_x64(name, croze_net, DEFAULTS[name], float64_convolutions=True), expected,
        rtol=1e-6)


def test_croze_scaled_float32_convolutions_agree_with_float64(croze_net):
    # The default: float64 everywhere but in the convolutions, which are float32 on operands
    # scaled by powers of two (zcjax.scaled_convolutions). Measured here: the same float32
    # score; on the NB201 benchmark network up to 3.6e-7 relative (croze.py, step 9).
    exact = _jit_x64("croze", croze_net, DEFAULTS["croze"], float64_convolutions=True)
    np.testing.assert_allclose(_jit_x64("croze", croze_net, DEFAULTS["croze"]), exact,
                               rtol=1e-6)


def test_croze_option_must_be_a_bool(croze_net):
    model, variables, batch = croze_net
    with pytest.raises(ValueError, match="float64_convolutions must be True or False"):
        base.get("croze").fn(model.apply, variables, batch, float64_convolutions="no")


def test_croze_registered_eager_equals_jit(croze_net):
    # Not jitted, given float32 variables, through the registry: croze computes in float64
    # inside (the reference's net.double()), so it equals the jitted float64 run.
    # (croze_paper's eager path is the shared Context's; its jitted form is checked above.)
    from zcjax.spaces.blocks import compiled_blocks

    model, variables, batch = croze_net
    with compiled_blocks():  # the eager route a sweep takes
        eager = base.get("croze").fn(model.apply, variables, batch)
    assert eager.dtype == jnp.float32 and eager.shape == ()
    np.testing.assert_allclose(float(eager), _jit_x64("croze", croze_net, DEFAULTS["croze"]),
                               rtol=1e-6)


def _kernels(variables):
    return [(path, leaf) for path, leaf in
            jax.tree_util.tree_flatten_with_path(variables["params"])[0]
            if base.is_layer_weight(path)]


def test_croze_paper_unperturbed_counts_layers(croze_net):
    # No weight and no input perturbation: every cosine is 1, each layer gives 2 * 1 * 2.
    np.testing.assert_allclose(_jit_x64("croze_paper", croze_net, UNPERTURBED),
                               4.0 * len(_kernels(croze_net[1])), rtol=1e-9)


def test_croze_unperturbed_counts_cosines(croze_net):
    # Reference form: sums of dim-0 cosines, so each layer gives (2 n_l) * n_l * (2 m_l), with
    # n_l the kernel's size over its output channels and m_l the size of its feature per image.
    # The clamp must go too, or the input changes even at eps = 0.
    c = 4
    feature_sizes = [32 * 32 * c, 16 * 16 * 2 * c, 8 * 8 * 4 * c, 8 * 8 * 4 * c, 4 * c]
    expected = 0
    for path, kernel in _kernels(croze_net[1]):
        n = kernel.size // kernel.shape[-1]
        expected += 4 * n * n * feature_sizes[FEATURE_OF_N1[base.path_names(path)[0]]]
    np.testing.assert_allclose(_jit_x64("croze", croze_net, UNPERTURBED), expected, rtol=1e-9)


def test_stage_layout_follows_the_reference_loop():
    # Replay get_layer_metric_array_adv_feats over the module order of NAS201Model (N = 5).
    from zcjax import contract
    from zcjax.spaces.nb201.network import stage_layout

    n = 5
    layout = {tuple(k.split("/")): v for k, v in stage_layout(n).items()}
    order = [("stem_conv", False)]
    for stage in range(3):
        if stage:
            order.append((f"reduction_{stage}", False))
        for i in range(n):
            order.append((f"cell_{stage}_{i}", True))
    order.append(("classifier", False))
    layer_cnt = 0
    for name, is_cell in order:
        if is_cell:
            layer_cnt += 1
        expected = layer_cnt // 5 + (1 if name == "classifier" else 0)
        path = (jax.tree_util.DictKey(name), jax.tree_util.DictKey("conv"),
                jax.tree_util.DictKey("kernel"))
        assert contract.stage_of(layout, path) == expected, name


def test_torch_cosine_edge_cases():
    a = np.array([[1.0, 2.0], [3.0, -4.0], [0.5, 0.0]], np.float32)
    b = np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 3.0]], np.float32)
    np.testing.assert_allclose(np.asarray(croze_mod.torch_cosine(a, b, axis=0)), _cos_dim0(a, b),
                               rtol=1e-6)
    np.testing.assert_allclose(float(croze_mod.torch_cosine(a, b)), _cos_flat(a, b), rtol=1e-6)
    zero = np.zeros(3, np.float32)
    assert float(croze_mod.torch_cosine(zero, b[:, 0])) == 0.0
    huge = np.array([3e30, 4e30], np.float32)  # |x|^2 overflows float32
    np.testing.assert_allclose(float(croze_mod.torch_cosine(huge, huge * 2)), 1.0, rtol=1e-6)


def test_croze_registry_metadata():
    for name in ("croze", "croze_paper"):
        info = base.get(name)
        assert info.needs_labels and info.needs_gradients and not info.data_free
        assert info.higher_is_better and info.batch_size == 8
    with pytest.raises(ValueError):
        croze_mod.CrozeConfig(cosine="rows")


def test_croze_reference_needs_declared_stages(tiny_batch):
    model = ConstantOutput()
    variables = numpy_init(model, 0)
    with pytest.raises(ValueError, match="does not declare its stages"):
        croze_mod.croze(model.apply, variables, tiny_batch)


@pytest.mark.usefixtures("full_optimizations")  # the benchmark-size network runs faster so
def test_epsilon_nan_where_float32_underflows_and_f64_resolves_it():
    """Cell 6311 at benchmark size: its w=1e-7 output (~1e-40) underflows in float32 (the
    reference's PyTorch float32 gives NaN for it too); the registered ``epsilon`` reproduces
    that NaN, with a diagnosis, and ``epsilon_f64`` scores the cell."""
    from zcjax.data import default_batch
    from zcjax.spaces.blocks import compiled_blocks

    model = nb201.build(6311)
    variables = nb201.init(model, jax.random.key(0))
    batch = default_batch(16)
    with compiled_blocks():  # the route a sweep takes, and faster here than op by op
        assert np.isnan(base.get("epsilon").fn(model.apply, variables, batch))
        assert np.isfinite(base.get("epsilon_f64").fn(model.apply, variables, batch))
        report = eps_mod.epsilon_diagnostics(model.apply, variables, batch)
        assert "underflow" in report["reason"] and "1e-07" in report["reason"]
        assert eps_mod.epsilon_diagnostics(model.apply, variables, batch,
                                           dtype=jnp.float64)["reason"] is None
