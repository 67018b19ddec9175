"""Random-forest regression on synthetic problems."""

import numpy as np
import pytest

from zcjax.evaluate import regression as R


def _problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 4))
    y = np.sin(3.0 * X[:, 0]) + X[:, 0] ** 2 + 0.02 * rng.normal(size=n)  # f(x0) only
    return X, y


FAST = dict(n_estimators=30, n_repeats=3)


def test_only_informative_feature_wins():
    X, y = _problem()
    res = R.fit_and_evaluate(X, y, ["x0", "x1", "x2", "x3"], train_size=0.8, seeds=(0, 1), **FAST)
    assert res.n_used == 300 and res.n_dropped == 0
    assert [s.seed for s in res.per_seed] == [0, 1]
    assert res.per_seed[0].n_train == 240 and res.per_seed[0].n_test == 60
    assert res.r2_mean.shape == (1,) and res.r2_mean[0] > 0.9
    assert res.kendall_tau_mean[0] > 0.8
    assert res.oob_r2_mean > 0.9
    for kind in ("impurity", "permutation"):
        ranking = res.importance_ranking(kind)
        assert ranking[0][0] == "x0"
        assert ranking[0][1] > 5 * max(m for _, m, _ in ranking[1:])
    assert res.impurity_importance_mean.sum() == pytest.approx(1.0)
    assert res.r2_std.shape == (1,) and res.r2_std[0] >= 0.0
    summary = res.summary()
    assert summary["r2_mean[target0]"] == pytest.approx(res.r2_mean[0])
    assert next(iter(summary["permutation_importance"])) == "x0"
    # a different split per seed
    assert not np.allclose(res.per_seed[0].r2, res.per_seed[1].r2)


def test_joint_target_and_counts():
    X, y0 = _problem(n=200, seed=1)
    y1 = np.cos(2.0 * X[:, 1])  # the second target depends on x1 only
    Y = np.stack([y0, y1], axis=1)
    X[5, 2] = np.nan
    Y[7, 1] = np.inf
    res = R.fit_and_evaluate(X, Y, ["x0", "x1", "x2", "x3"], train_size=100, seeds=(3,),
                             target_names=["a", "b"], permutation_max_samples=50, **FAST)
    assert (res.n_used, res.n_dropped) == (198, 2)
    seed = res.per_seed[0]
    assert (seed.n_train, seed.n_test) == (100, 98)
    assert seed.r2.shape == (2,) and seed.kendall_tau.shape == (2,)
    assert np.all(seed.r2 > 0.7)
    assert {n for n, _, _ in res.importance_ranking("impurity")[:2]} == {"x0", "x1"}
    assert res.target_names == ("a", "b")
    assert "r2_mean[b]" in res.summary()


def test_no_bootstrap_has_no_oob():
    X, y = _problem(n=80)
    res = R.fit_and_evaluate(X, y, list("abcd"), train_size=20, seeds=(0,), bootstrap=False,
                             **FAST)
    assert np.isnan(res.per_seed[0].oob_r2)
    assert res.per_seed[0].n_train == 20


def test_shape_and_argument_errors():
    X, y = _problem(n=50)
    names = ["x0", "x1", "x2", "x3"]
    with pytest.raises(ValueError, match="rows"):
        R.fit_and_evaluate(X, y[:-1], names, **FAST)
    with pytest.raises(ValueError, match="feature names"):
        R.fit_and_evaluate(X, y, names[:3], **FAST)
    with pytest.raises(ValueError, match="2-D"):
        R.fit_and_evaluate(X[:, 0], y, names, **FAST)
    with pytest.raises(ValueError, match="targets"):
        R.fit_and_evaluate(X, np.zeros((50, 2, 2)), names, **FAST)
    with pytest.raises(ValueError, match="target names"):
        R.fit_and_evaluate(X, y, names, target_names=["a", "b"], **FAST)
    with pytest.raises(ValueError, match="train_size"):
        R.fit_and_evaluate(X, y, names, train_size=49, **FAST)
    with pytest.raises(ValueError, match="ratio"):
        R.fit_and_evaluate(X, y, names, train_size=1.0, **FAST)
    with pytest.raises(TypeError):
        R.fit_and_evaluate(X, y, names, train_size=True, **FAST)
    with pytest.raises(ValueError, match="seeds"):
        R.fit_and_evaluate(X, y, names, seeds=(), **FAST)
    with pytest.raises(ValueError, match="kind"):
        R.fit_and_evaluate(X, y, names, seeds=(0,), **FAST).importance_ranking("gini")


def test_stack_features():
    X, names = R.stack_features({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    assert names == ("a", "b") and X.shape == (3, 2) and X[2, 1] == 6.0
    X, names = R.stack_features({"a": [1, 2, 3], "b": [4, 5, 6]}, names=["b", "a"])
    assert names == ("b", "a") and X[0, 0] == 4.0
    with pytest.raises(ValueError, match="differ in length"):
        R.stack_features({"a": [1, 2, 3], "b": [4, 5]})
    with pytest.raises(ValueError, match="1-D"):
        R.stack_features({"a": np.ones((2, 2))})
    with pytest.raises(ValueError, match="no proxies"):
        R.stack_features({})
