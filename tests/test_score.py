"""zcjax.score: seeds, strategies (vmap / lax.map / loop), fusion, jit, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zcjax.proxies  # noqa: F401  (registers every proxy)
from zcjax import scoring as score_lib
from zcjax.proxies import base
from zcjax.scoring import score
from zcjax.spaces import nb201

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
CHEAP = ["grad_norm", "snip", "nwot", "jacob_cov", "synflow", "params"]


def available(names):
    """The names, checked to be registered (a missing proxy fails the test, never skips it)."""
    missing = [n for n in names if n not in base.REGISTRY]
    assert not missing, f"not registered: {missing}"
    return list(names)


pytestmark = pytest.mark.usefixtures("fast_compiles")  # a program per proxy: compile them fast


@pytest.fixture(scope="module")
def model():
    return nb201.build(CELL, channels=4, cells_per_stage=1)


def test_seed_gives_the_documented_initialisation(model, tiny_batch):
    names = available(["params", "grad_norm"])
    result = score(model, tiny_batch, names, seeds=[3])
    init_key, _ = score_lib.seed_keys(3)
    variables = {"params": model.init(init_key, jnp.zeros((1, 32, 32, 3)))["params"]}
    for name in names:
        direct = base.get(name).fn(model.apply, variables, tiny_batch, score_lib.seed_keys(3)[1])
        np.testing.assert_allclose(result.scores[name][0], direct, rtol=1e-5)


@pytest.mark.parametrize("strategy", ["vmap", "map"])
@pytest.mark.usefixtures("full_optimizations")  # see there: vmapped convolutions
def test_strategies_equal_a_python_loop_over_8_seeds(model, tiny_batch, strategy):
    names = available(CHEAP)
    seeds = list(range(8))
    loop = score(model, tiny_batch, names, seeds, strategy="loop")
    other = score(model, tiny_batch, names, seeds, strategy=strategy)
    for name in names:
        np.testing.assert_allclose(other.scores[name], loop.scores[name], rtol=2e-4, atol=1e-6,
                                   err_msg=name)
    # different seeds give different scores for a data-dependent proxy
    assert len(set(np.round(loop.scores[names[0]], 6))) > 1


def test_jit_equals_eager(model, tiny_batch):
    names = available(CHEAP)
    a = score(model, tiny_batch, names, [0, 1], strategy="loop", jit=True)
    b = score(model, tiny_batch, names, [0, 1], strategy="loop", jit=False)
    for name in names:
        np.testing.assert_allclose(a.scores[name], b.scores[name], rtol=2e-4, atol=1e-6,
                                   err_msg=name)


def test_fused_equals_proxy_by_proxy(model, tiny_batch):
    # Eagerly with compiled blocks: fusion is decided while tracing, the same with or without jit
    # (test_jit_equals_eager), and the blocks' programs are shared by the single runs instead of
    # one program compiled per proxy (op by op, this test took 2.5 CPU-minutes).
    names = available(list(base.REGISTRY))
    fused = score(model, tiny_batch, names, [1], jit=False, blocks=True)
    for name in names:
        alone = score(model, tiny_batch, [name], [1], jit=False, blocks=True)
        np.testing.assert_allclose(fused.scores[name], alone.scores[name], rtol=2e-4,
                                   atol=1e-6, err_msg=name)


def test_summary_is_nan_aware(model, tiny_batch):
    result = score_lib.ScoreResult({"x": np.array([1.0, np.nan, 3.0])}, (0, 1, 2))
    assert result.mean("x") == 2.0
    assert result.std("x") == 1.0
    assert np.isnan(score_lib.ScoreResult({"x": np.array([np.nan])}, (0,)).mean("x"))


def test_bad_arguments(model, tiny_batch):
    with pytest.raises(ValueError, match="unknown proxy"):
        score(model, tiny_batch, ["gradnorm"])
    with pytest.raises(ValueError, match="no proxies"):
        score(model, tiny_batch, [])
    with pytest.raises(ValueError, match="unknown strategy"):
        score(model, tiny_batch, available(["params"]), strategy="pmap")
    bad = tiny_batch._replace(labels=tiny_batch.labels[:3])
    with pytest.raises(ValueError, match="labels"):
        score(model, bad, available(["params"]))
    with pytest.raises(ValueError, match="NHWC"):
        score(model, tiny_batch._replace(images=tiny_batch.images[0]), available(["params"]))


def test_auto_strategy_is_a_loop_on_cpu():
    assert jax.default_backend() == "cpu"
    assert score_lib.resolve_strategy("auto") == "loop"


def test_score_is_the_package_entry_point():
    import zcjax
    import zcjax.scoring

    assert zcjax.score is zcjax.scoring.score and zcjax.ScoreResult is zcjax.scoring.ScoreResult
