"""Activation / Jacobian / statistics proxies: jacob_cov, nwot, epe_nas, zen, zico, meco.

Each proxy is checked against a second, independent computation written here (explicit loops,
NumPy float64 linear algebra, other autodiff routes), plus jit against eager evaluation,
finiteness, NaN propagation and one property per proxy that a wrong implementation would fail.

Cost: every proxy is compiled once, fused on one shared Context (``suite`` fixture); XLA's
heavier optimisations are switched off for this module only, which halves compile times on CPU.
"""

from __future__ import annotations

import collections
import math
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax.data import Batch
from zcjax.proxies import epe_nas as epe_nas_mod
from zcjax.proxies import jacob_cov as jacob_cov_mod
from zcjax.proxies import meco as meco_mod
from zcjax.proxies import nwot as nwot_mod
from zcjax.proxies import zen as zen_mod
from zcjax.proxies import zico as zico_mod
from zcjax.proxies.base import REGISTRY, get, path_names
from zcjax.proxies.context import Context
from zcjax.spaces import layers, nb201
from zcjax.spaces.blocks import compiled_blocks

NAMES = ("jacob_cov", "nwot", "epe_nas", "zen", "zen_paper", "zico", "meco", "meco_opt",
         "meco_conv")
KEY = jax.random.key(1)


# -- fixtures ---------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def suite(tiny_model):
    """All proxies of this module on one Context, compiled once: (variables, batch, key) -> dict."""

    def evaluate(variables, batch, key):
        ctx = Context(tiny_model.apply, variables, batch, key)
        return {name: REGISTRY[name].from_context(ctx) for name in NAMES}

    return jax.jit(evaluate)


@pytest.fixture(scope="module")
def scores(suite, tiny_variables, tiny_batch):
    return {k: float(v) for k, v in suite(tiny_variables, tiny_batch, KEY).items()}


@pytest.fixture(scope="module")
def forwards(tiny_model, tiny_variables, tiny_batch):
    """The plain forward passes the independent computations read, in one compiled program.

    - ``relu_in``: the input of every ReLU, caught by intercepting the module calls (not the sow);
    - ``conv_out``: the sown convolution outputs;
    - ``meco_maps`` / ``meco_counts``: meco's reference hook maps;
    - ``zen``: (pre-pool features, {path: BN batch variance}) of the Gaussian-weight network on
      the clean and the perturbed input, with the proxy's key schedule (weights, input, noise).
    """
    counts = []

    def run(variables, batch):
        relu_in = []

        def grab(next_fun, args, kwargs, context):
            if isinstance(context.module, layers.ReLU) and context.method_name == "__call__":
                relu_in.append(args[0])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(grab):
            _, state = tiny_model.apply(variables, batch.images, mutable=["intermediates"])
        conv_out = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
                    if "conv_out" in path_names(path)]
        maps = meco_mod.reference_feature_maps(Context(tiny_model.apply, variables, batch, KEY))
        counts[:] = [c for _, c in maps]
        k_w, k_x, k_e = jax.random.split(KEY, 3)
        gaussian = {"params": zen_mod.gaussian_params(variables["params"], k_w)}
        x = jax.random.normal(k_x, batch.images.shape)
        x_mix = x + 0.01 * jax.random.normal(k_e, batch.images.shape)
        zen = []
        for inputs in (x, x_mix):
            _, st = tiny_model.apply(gaussian, inputs, mutable=["intermediates"])
            flat = jax.tree_util.tree_flatten_with_path(st["intermediates"])[0]
            feats = [leaf for path, leaf in flat if "pre_pool" in path_names(path)]
            bn = {"/".join(path_names(path)): leaf for path, leaf in flat
                  if "bn_var" in path_names(path)}
            zen.append((feats[0], bn))
        return {"relu_in": relu_in, "conv_out": conv_out, "meco_maps": [f for f, _ in maps],
                "zen": zen}

    out = jax.tree_util.tree_map(np.asarray, jax.jit(run)(tiny_variables, tiny_batch))
    out["meco_counts"] = list(counts)
    return out


@pytest.fixture(scope="module")
def reference_maps(forwards):
    return list(zip(forwards["meco_maps"], forwards["meco_counts"]))


def _batch(images, labels) -> Batch:
    return Batch(jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32))


def _kernels(tree) -> list[np.ndarray]:
    """Conv / dense kernels of a params-shaped tree, as float64 NumPy arrays."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = path_names(path)
        if names[-1] == "kernel" and names[-2] in ("conv", "dense"):
            out.append(np.asarray(leaf, np.float64))
    return out


def _corrcoef(rows: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.corrcoef(rows)


# -- registry ---------------------------------------------------------------------------------

def test_registry_metadata():
    assert get("jacov").name == "jacob_cov"
    assert get("naswot").name == "nwot"
    for name in ("zen", "zen_paper"):
        assert REGISTRY[name].data_free and not REGISTRY[name].needs_labels
    for name in ("epe_nas", "zico"):
        assert REGISTRY[name].needs_labels and REGISTRY[name].needs_gradients
    for name in ("meco", "meco_opt", "meco_conv", "nwot"):
        assert not REGISTRY[name].needs_gradients and not REGISTRY[name].needs_labels
    assert REGISTRY["meco"].batch_size == 1
    for name in NAMES:
        assert REGISTRY[name].paper and REGISTRY[name].reference
        assert REGISTRY[name].fn.__doc__


def test_all_finite(scores):
    for name in NAMES:
        assert math.isfinite(scores[name]), (name, scores[name])


# Eager evaluation compiles every primitive separately, which costs seconds per proxy on CPU.
# Two proxies run whole (one on the shared forward pass, one on its own passes through
# ctx.apply); for every proxy the score computation that follows its passes is compared eager
# against jit below.
@pytest.mark.parametrize("name", ["nwot", "zen"])
def test_jit_matches_eager(name, scores, tiny_model, tiny_variables, tiny_batch):
    eager = float(REGISTRY[name].fn(tiny_model.apply, tiny_variables, tiny_batch, KEY))
    np.testing.assert_allclose(eager, scores[name], rtol=1e-4, atol=1e-4)


def test_score_functions_jit_matches_eager():
    rng = np.random.default_rng(0)
    rows = jnp.asarray(rng.normal(size=(8, 30)) + rng.normal(size=(1, 30)), jnp.float32)
    labels = jnp.asarray([1, 1, 4, 4, 4, 7, 2, 2])
    grads = {"a": {"conv": {"kernel": jnp.asarray(rng.normal(size=(2, 3, 3, 2, 5)),
                                                   jnp.float32)}},
             "b": {"dense": {"kernel": jnp.asarray(rng.normal(size=(2, 6, 4)), jnp.float32),
                             "bias": jnp.ones((2, 4))}}}
    acts = [jnp.asarray(rng.normal(size=(8, 4, 4, 3)), jnp.float32),
            jnp.asarray(rng.normal(size=(8, 10)), jnp.float32)]
    # One shape only: every eager eigen-solver compile costs seconds.
    maps = [(jnp.asarray(rng.normal(size=(2, 5, 5, 12)), jnp.float32), count)
            for count in (1, 3)]
    cases = {
        "jacob_cov": lambda: jacob_cov_mod.jacob_cov_score(rows),
        "epe_nas": lambda: epe_nas_mod.epe_nas_score(rows, labels, 10),
        "epe_nas_120": lambda: epe_nas_mod.epe_nas_score(rows, labels, 120),
        "zico": lambda: zico_mod.zico_from_gradients(grads),
        "nwot": lambda: jnp.linalg.slogdet(nwot_mod.hamming_kernel(acts))[1],
        "meco": lambda: jnp.sum(meco_mod.min_eigenvalues(
            [meco_mod.channel_matrix(f) for f, _ in maps])),
        "meco_opt": lambda: meco_mod.sampled_min_eigenvalue_sum(maps, KEY),
    }
    for name, fn in cases.items():
        eager = float(fn())
        assert math.isfinite(eager), name
        np.testing.assert_allclose(float(jax.jit(fn)()), eager, rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_nan_stays_nan(suite, tiny_variables, tiny_batch):
    params = jax.tree_util.tree_map(lambda x: x, tiny_variables["params"])
    kernel = params["stem_conv"]["conv"]["kernel"]
    params["stem_conv"]["conv"]["kernel"] = kernel.at[0, 0, 0, 0].set(jnp.nan)
    out = suite({"params": params}, tiny_batch, KEY)
    for name in NAMES:
        if REGISTRY[name].data_free:
            # Zen-NAS re-draws every weight: the NaN is overwritten, as in the reference.
            assert math.isfinite(float(out[name])), name
        else:
            assert math.isnan(float(out[name])), (name, float(out[name]))


# -- jacob_cov / epe_nas ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def jacobian_rows(tiny_model, tiny_variables, tiny_batch):
    """d sum(logits) / d x by the full Jacobian (jacrev of every logit), float64 rows."""
    full = jax.jit(jax.jacrev(lambda x: tiny_model.apply(tiny_variables, x)))(tiny_batch.images)
    rows = np.asarray(full, np.float64).sum(axis=(0, 1))       # (N, H, W, C)
    return rows.reshape(rows.shape[0], -1)


def _jacob_cov_numpy(rows: np.ndarray, k: float = 1e-5) -> float:
    eig = np.real_if_close(np.linalg.eig(np.corrcoef(rows))[0])
    return float(-np.sum(np.log(eig + k) + 1.0 / (eig + k)))


def _epe_nas_numpy(rows: np.ndarray, labels, n_classes: int, k: float = 1e-5) -> float:
    groups = collections.defaultdict(list)
    for row, label in zip(rows, labels):
        groups[int(label)].append(row)
    per_class = {}
    for label, members in groups.items():
        if len(members) == 1:
            if n_classes > 100:
                continue                     # the reference's len() of a 0-d array fails
            per_class[label] = math.log(1.0 + k)
            continue
        corr = _corrcoef(np.stack(members))
        value = float(np.sum(np.log(np.abs(corr) + k)))
        per_class[label] = value / len(members) if n_classes > 100 else value
    if n_classes <= 100:
        return float(sum(abs(v) for v in per_class.values()))
    values = list(per_class.values())
    total = sum(abs(a - b) for a in values for b in values)
    return total / len(values) if values else 0.0


def test_jacob_cov_matches_full_jacobian(scores, jacobian_rows):
    np.testing.assert_allclose(scores["jacob_cov"], _jacob_cov_numpy(jacobian_rows), rtol=1e-4)


def test_epe_nas_matches_grouped_numpy(scores, jacobian_rows, tiny_batch):
    labels = np.asarray(tiny_batch.labels)
    assert len(set(labels.tolist())) < len(labels), "want a class with several samples"
    expected = _epe_nas_numpy(jacobian_rows, labels, 10)
    np.testing.assert_allclose(scores["epe_nas"], expected, rtol=1e-4)


@pytest.mark.parametrize("n_classes", [10, 120])
def test_epe_nas_score_both_regimes(n_classes):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(14, 40)) + rng.normal(size=(1, 40))      # correlated rows
    labels = np.array([3, 3, 3, 7, 7, 1, 9, 9, 9, 9, 0, 5, 5, 11 % n_classes])
    got = float(epe_nas_mod.epe_nas_score(jnp.asarray(rows, jnp.float32),
                                          jnp.asarray(labels), n_classes))
    np.testing.assert_allclose(got, _epe_nas_numpy(rows, labels, n_classes), rtol=1e-4)


def test_epe_nas_many_classes_all_single_is_zero():
    rows = jnp.asarray(np.random.default_rng(1).normal(size=(5, 12)), jnp.float32)
    assert float(epe_nas_mod.epe_nas_score(rows, jnp.arange(5), 120)) == 0.0


def test_jacob_cov_permutation_invariant_and_duplicates_collapse(suite, tiny_variables,
                                                                 tiny_batch, scores):
    perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
    permuted = _batch(np.asarray(tiny_batch.images)[perm], np.asarray(tiny_batch.labels)[perm])
    out = suite(tiny_variables, permuted, KEY)
    np.testing.assert_allclose(float(out["jacob_cov"]), scores["jacob_cov"], rtol=1e-4)
    # epe_nas: the same classes with the same members, in another order. Equal up to float32
    # rounding of the correlations, which log(|c| + 1e-5) amplifies where |c| is small: the
    # XLA of jax 0.8.2 to 0.10.0 gives a relative difference of 1.1e-4 here, 0.10.2 less.
    np.testing.assert_allclose(float(out["epe_nas"]), scores["epe_nas"], rtol=2e-4)

    images = np.asarray(tiny_batch.images).copy()
    images[1] = images[0]
    out = suite(tiny_variables, _batch(images, tiny_batch.labels), KEY)
    # Two identical rows: an eigenvalue 0 contributes -(log k + 1/k), about -1e5.
    assert float(out["jacob_cov"]) < -5e4 < scores["jacob_cov"]


def test_epe_nas_relabelling(suite, tiny_variables, tiny_batch, scores):
    labels = np.asarray(tiny_batch.labels)
    renamed = (labels * 3 + 1) % 10        # a permutation of the 10 class ids
    out = suite(tiny_variables, _batch(tiny_batch.images, renamed), KEY)
    np.testing.assert_allclose(float(out["epe_nas"]), scores["epe_nas"], rtol=1e-5)
    merged = np.zeros_like(labels)         # one class: every pair now counts
    out = suite(tiny_variables, _batch(tiny_batch.images, merged), KEY)
    assert abs(float(out["epe_nas"]) - scores["epe_nas"]) > 1e-3 * abs(scores["epe_nas"])


# -- nwot -------------------------------------------------------------------------------------

def test_nwot_matches_explicit_hamming_loops(scores, forwards):
    acts = forwards["relu_in"]
    # 3 convolutions per cell x 3 cells, 2 per reduction x 2, the last ReLU.
    assert len(acts) == 14
    n = acts[0].shape[0]
    kernel = np.zeros((n, n))
    for a in acts:
        codes = [a[i].ravel() > 0 for i in range(n)]
        for i in range(n):
            for j in range(n):
                kernel[i, j] += np.count_nonzero(codes[i] == codes[j])   # D - Hamming
    np.testing.assert_allclose(scores["nwot"], np.linalg.slogdet(kernel)[1], rtol=1e-5)


def test_nwot_duplicate_images_lower_the_score(suite, tiny_variables, tiny_batch, scores):
    images = np.asarray(tiny_batch.images).copy()
    images[5] = images[2]
    dup = float(suite(tiny_variables, _batch(images, tiny_batch.labels), KEY)["nwot"])
    # Identical codes make K singular: -inf in exact arithmetic.
    assert dup == -math.inf or dup < scores["nwot"] - 5.0


# -- zen --------------------------------------------------------------------------------------

def _bn_stage(names: tuple[str, ...]) -> int:
    for name in names:
        if name in ("stem_bn",):
            return 0
        if name == "last_bn":
            return 2
        if name.startswith(("cell_", "reduction_")):
            return int(name.split("_")[1])
    raise AssertionError(names)


def test_zen_matches_two_explicit_forwards(scores, forwards, tiny_batch):
    shape = tiny_batch.images.shape
    runs = [(np.asarray(f, np.float64), {k: np.asarray(v, np.float64) for k, v in bn.items()})
            for f, bn in forwards["zen"]]
    (f1, bn1), (f2, bn2) = runs
    assert len(bn1) == 15            # stem, 3 per cell x 3, 2 per reduction x 2, last
    delta = np.mean(np.sum(np.abs(f1 - f2), axis=(1, 2, 3)))
    running, batch_var = 0.0, 0.0
    for names, v1 in bn1.items():
        side = shape[1] >> _bn_stage(tuple(names.split("/")))
        n = shape[0] * side * side
        rv = 0.9 * (0.9 * 1.0 + 0.1 * v1 * n / (n - 1)) + 0.1 * bn2[names] * n / (n - 1)
        running += np.log(np.sqrt(np.mean(rv)))
        batch_var += np.log(np.sqrt(np.mean(v1)))
    np.testing.assert_allclose(scores["zen"], np.log(delta) + running, rtol=1e-4)
    np.testing.assert_allclose(scores["zen_paper"], np.log(delta) + batch_var, rtol=1e-4)


def test_zen_gaussian_init(tiny_variables):
    params = zen_mod.gaussian_params(tiny_variables["params"], jax.random.key(3))
    kernels = _kernels(params)
    pooled = np.concatenate([k.ravel() for k in kernels])
    assert pooled.size > 5000
    assert abs(pooled.mean()) < 0.05 and abs(pooled.std() - 1.0) < 0.05
    assert len({float(k.ravel()[0]) for k in kernels}) == len(kernels)   # independent draws
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = path_names(path)[-1]
        if name == "bias":
            assert not np.any(np.asarray(leaf))
        elif name == "scale":
            assert np.all(np.asarray(leaf) == 1.0)


def test_zen_is_data_free_and_keyed(suite, tiny_variables, tiny_batch, scores, tiny_model):
    other_images = -np.asarray(tiny_batch.images)[::-1]
    other_vars = nb201.init(tiny_model, jax.random.key(42))
    out = suite(other_vars, _batch(other_images, tiny_batch.labels), KEY)
    for name in ("zen", "zen_paper"):
        assert float(out[name]) == pytest.approx(scores[name], rel=1e-6)
    out = suite(tiny_variables, tiny_batch, jax.random.key(2))
    assert float(out["zen"]) != pytest.approx(scores["zen"], rel=1e-6)


# -- zico -------------------------------------------------------------------------------------

def _zico_numpy(model, variables, images, labels, splits: int = 2) -> float:
    def loss(params, x, y):
        logp = jax.nn.log_softmax(model.apply({"params": params}, x))
        return -jnp.mean(logp[jnp.arange(y.shape[0]), y])

    grad = jax.jit(jax.grad(loss))
    n = images.shape[0]
    per_part = []
    for s in range(splits):                      # one backward pass per mini-batch
        lo, hi = s * n // splits, (s + 1) * n // splits
        per_part.append(_kernels(grad(variables["params"], images[lo:hi], labels[lo:hi])))
    total = 0.0
    for layer in zip(*per_part):
        g = np.stack([w.ravel() for w in layer])
        std = g.std(axis=0)
        mean_abs = np.abs(g).mean(axis=0)
        keep = std != 0
        ratio_sum = np.sum(mean_abs[keep] / std[keep])
        if ratio_sum != 0:
            total += math.log(ratio_sum)
    return total


def test_zico_matches_per_minibatch_loop(scores, tiny_model, tiny_variables, tiny_batch):
    expected = _zico_numpy(tiny_model, tiny_variables, tiny_batch.images, tiny_batch.labels)
    np.testing.assert_allclose(scores["zico"], expected, rtol=2e-3)


def test_zico_uneven_split_matches_loop():
    # A linear "network" keeps this cheap; 7 samples in 3 parts of 2, 2 and 3.
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(12, 5)).astype(np.float32)
    images = rng.normal(size=(7, 2, 2, 3)).astype(np.float32)
    labels = np.array([0, 3, 1, 4, 4, 2, 0])

    def apply_fn(variables, x, **_):
        return x.reshape(x.shape[0], -1) @ variables["params"]["head"]["dense"]["kernel"]

    variables = {"params": {"head": {"dense": {"kernel": jnp.asarray(weight)}}}}
    ctx = Context(apply_fn, variables, _batch(images, labels), None)
    got = float(zico_mod.zico_from_gradients(zico_mod.split_gradients(ctx, 3)))
    parts = []
    for lo, hi in [(0, 2), (2, 4), (4, 7)]:       # s * 7 // 3
        x = images[lo:hi].reshape(hi - lo, -1).astype(np.float64)
        logits = x @ weight
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(hi - lo), labels[lo:hi]] -= 1.0
        parts.append((x.T @ p / (hi - lo)).ravel())   # d mean CE / d weight
    g = np.stack(parts)
    std, mean_abs = g.std(axis=0), np.abs(g).mean(axis=0)
    expected = math.log(np.sum(mean_abs[std != 0] / std[std != 0]))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_zico_identical_halves_score_zero(tiny_model, tiny_variables, tiny_batch, scores):
    images = np.asarray(tiny_batch.images).copy()
    labels = np.asarray(tiny_batch.labels).copy()
    images[4:], labels[4:] = images[:4], labels[:4]
    ctx = Context(tiny_model.apply, tiny_variables, _batch(images, labels), None)
    with compiled_blocks():  # eagerly, as a sweep runs it (faster than op by op)
        halves = zico_mod.split_gradients(ctx, 2)
    # The two halves' gradients agree (to rounding: XLA may batch the halves differently) ...
    for g in jax.tree_util.tree_leaves(halves):
        np.testing.assert_allclose(g[0], g[1], rtol=1e-5, atol=1e-7)
    # ... and exactly equal gradients have std 0 everywhere: every layer is left out.
    same = jax.tree_util.tree_map(lambda g: jnp.stack([g[0], g[0]]), halves)
    assert float(zico_mod.zico_from_gradients(same)) == 0.0 and scores["zico"] != 0.0


# -- meco -------------------------------------------------------------------------------------

def _min_eig_numpy(feature: np.ndarray) -> float:
    first = np.asarray(feature, np.float64)[0]
    rows = first.reshape(-1, first.shape[-1]).T          # (channels, positions)
    corr = _corrcoef(rows)
    corr[~np.isfinite(corr)] = 0.0
    return float(np.linalg.eigvalsh(corr).min())


def test_meco_hook_multiset(reference_maps, tiny_variables, tiny_batch):
    # Counted by hand on zero-cost-nas's NB201 model, one mixed cell per stage:
    # x1: stem conv; per cell 3 ReLUs, 3 convs, 1 skip; per reduction 2 ReLUs, 2 convs, the
    #     avg pool and the output; last BN            -> 1 + 3 * 7 + 2 * 6 + 1 = 35
    # x2: shortcut conv x2, pooling edge x3, last cell of each stage x3, last ReLU -> 9
    # x3: every BN of a ReLUConvBN (9 in cells, 4 in reductions) and the stem BN -> 14
    histogram = collections.Counter(count for _, count in reference_maps)
    assert histogram == {1: 35, 2: 9, 3: 14}
    # The stem convolution, computed here, is one of the maps, and its batch norm another.
    kernel = tiny_variables["params"]["stem_conv"]["conv"]["kernel"]
    conv = np.asarray(jax.lax.conv_general_dilated(
        tiny_batch.images, kernel, (1, 1), ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC")))
    bn = (conv - conv.mean(axis=(0, 1, 2))) / np.sqrt(conv.var(axis=(0, 1, 2)) + 1e-5)
    found = {c for f, c in reference_maps if f.shape == conv.shape and np.allclose(f, conv,
                                                                                 atol=1e-4)}
    assert found == {1}
    found = [c for f, c in reference_maps if f.shape == bn.shape and np.allclose(f, bn,
                                                                               atol=1e-3)]
    # The stem BN's three hooks, and the cell's skip_connect~0 (node 0 is the stem output).
    assert sorted(found) == [1, 3]


def test_meco_matches_numpy(scores, reference_maps):
    expected = sum(count * _min_eig_numpy(f) for f, count in reference_maps)
    np.testing.assert_allclose(scores["meco"], expected, rtol=1e-4, atol=1e-4)


def test_meco_conv_matches_numpy(scores, forwards):
    maps = forwards["conv_out"]
    assert len(maps) == 9 + 2 * 3 + 1          # cells, reductions (a, b, shortcut), stem
    expected = sum(_min_eig_numpy(np.asarray(f)) for f in maps)
    np.testing.assert_allclose(scores["meco_conv"], expected, rtol=1e-4, atol=1e-4)


def test_meco_is_scale_invariant(suite, tiny_variables, tiny_batch, scores):
    # Correlations ignore the scale of each channel; batch norm absorbs the input's.
    out = suite(tiny_variables, _batch(3.0 * np.asarray(tiny_batch.images), tiny_batch.labels),
                KEY)
    for name in ("meco", "meco_conv"):
        np.testing.assert_allclose(float(out[name]), scores[name], rtol=1e-3, atol=1e-3)
    # ...but a nonlinear change of one colour channel
    # changes them.
    images = np.asarray(tiny_batch.images).copy()
    images[..., 0] = images[..., 0] ** 2
    out = suite(tiny_variables, _batch(images, tiny_batch.labels), KEY)
    assert abs(float(out["meco"]) - scores["meco"]) > 1e-3


def test_meco_opt_with_all_channels_is_meco(forwards, scores):
    # Drawing at least as many channels as a map has takes them all: no sampling, factor 1.
    counts = forwards["meco_counts"]
    assert max(f.shape[-1] for f in forwards["meco_maps"]) == 16

    def both(arrays, key):
        maps = list(zip(arrays, counts))
        return (meco_mod.sampled_min_eigenvalue_sum(maps, key, channels=16),
                meco_mod.sampled_min_eigenvalue_sum(maps, key, channels=8))

    full, sampled = map(float, jax.jit(both)(forwards["meco_maps"], KEY))
    np.testing.assert_allclose(full, scores["meco"], rtol=1e-4, atol=1e-4)
    assert abs(sampled - full) > 1e-3


def test_meco_opt_depends_on_the_key(suite, tiny_variables, tiny_batch, scores):
    out = suite(tiny_variables, tiny_batch, jax.random.key(7))
    assert float(out["meco_opt"]) != pytest.approx(scores["meco_opt"], rel=1e-6)
    assert float(out["meco"]) == pytest.approx(scores["meco"], rel=1e-6)
