"""Metrics against hand-computed rankings and against scipy."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from zcjax.evaluate import metrics as M

# Hand-made ranking, N = 10. truth is strictly decreasing, so the true rank of index i is i+1.
# The scores order the cells (best first) as 2, 0, 5, 1, 9, 3, 4, 6, 7, 8.
TRUTH = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
SCORES = np.array([9, 7, 10, 5, 4, 8, 3, 2, 1, 6], dtype=float)


def test_hand_case_precision():
    # predicted top-3 {2,0,5}, true top-3 {0,1,2}: overlap {0,2}
    assert M.precision_at_top_k(SCORES, TRUTH, 3).value == pytest.approx(2 / 3)
    # predicted top-5 {2,0,5,1,9}, true top-5 {0..4}: overlap {0,1,2}
    assert M.precision_at_top_k(SCORES, TRUTH, 5).value == pytest.approx(3 / 5)
    assert M.precision_at_top_k(SCORES, TRUTH, 1).value == 0.0
    assert M.precision_at_top_k(SCORES, TRUTH, 10).value == 1.0
    # predicted bottom-3 {6,7,8}, true bottom-3 {7,8,9}: overlap {7,8}
    assert M.precision_at_bottom_k(SCORES, TRUTH, 3).value == pytest.approx(2 / 3)
    # predicted bottom-2 {7,8}, true bottom-2 {8,9}: overlap {8}
    assert M.precision_at_bottom_k(SCORES, TRUTH, 2).value == pytest.approx(1 / 2)


def test_hand_case_best_and_worst_rank():
    # top-3 {2,0,5} have true ranks 3,1,6
    assert M.best_rank_at_k(SCORES, TRUTH, 3).value == pytest.approx(0.1)
    assert M.worst_rank_at_k(SCORES, TRUTH, 3).value == pytest.approx(0.6)
    # top-5 adds index 1 (rank 2) and 9 (rank 10)
    assert M.best_rank_at_k(SCORES, TRUTH, 5).value == pytest.approx(0.1)
    assert M.worst_rank_at_k(SCORES, TRUTH, 5).value == pytest.approx(1.0)
    # top-1 is index 2, rank 3
    assert M.best_rank_at_k(SCORES, TRUTH, 1).value == pytest.approx(0.3)
    assert M.worst_rank_at_k(SCORES, TRUTH, 1).value == pytest.approx(0.3)
    # a perfect proxy: BR@K = 1/N, WR@K = K/N
    assert M.best_rank_at_k(TRUTH, TRUTH, 4).value == pytest.approx(0.1)
    assert M.worst_rank_at_k(TRUTH, TRUTH, 4).value == pytest.approx(0.4)


def _aw_nas_style(scores, truth, k):
    """Independent re-derivation (no ties): 0-based true ranks, +1, / N."""
    n = len(truth)
    true_rank0 = np.empty(n)
    true_rank0[np.argsort(-truth)] = np.arange(n)
    top = np.argsort(-scores)[:k]
    return (true_rank0[top].min() + 1) / n, (true_rank0[top].max() + 1) / n


def test_best_worst_rank_match_direct_formula_without_ties():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=50), rng.normal(size=50)
    for k in (1, 3, 10, 50):
        br, wr = _aw_nas_style(s, t, k)
        assert M.best_rank_at_k(s, t, k).value == pytest.approx(br)
        assert M.worst_rank_at_k(s, t, k).value == pytest.approx(wr)


def test_hand_case_kendall_top_k():
    # top-5 by score (10,9,8,7,6) have truths (8,10,5,9,1): 7 concordant, 3 discordant pairs
    ev = M.kendall_tau_top_k(SCORES, TRUTH, 5)
    assert ev.value == pytest.approx(0.4)
    assert ev.k == 5


def test_correlations_match_scipy():
    rng = np.random.default_rng(1)
    s = rng.normal(size=40)
    t = s + rng.normal(size=40)
    s[::7] = np.round(s[::7])  # some ties
    assert M.kendall_tau(s, t).value == pytest.approx(stats.kendalltau(s, t)[0])
    assert M.spearman_rho(s, t).value == pytest.approx(stats.spearmanr(s, t)[0])
    assert M.pearson_r(s, t).value == pytest.approx(stats.pearsonr(s, t)[0])
    assert M.kendall_tau(SCORES, TRUTH).value == pytest.approx(stats.kendalltau(SCORES, TRUTH)[0])
    assert float(M.kendall_tau(TRUTH, TRUTH)) == pytest.approx(1.0)


def test_undefined_correlations_are_nan():
    assert math.isnan(M.kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).value)
    assert math.isnan(M.spearman_rho([1.0], [2.0]).value)
    ev = M.pearson_r([np.nan, np.nan], [1.0, 2.0])
    assert math.isnan(ev.value) and ev.n_used == 0 and ev.n_dropped == 2


def test_nan_and_inf_pairs_are_dropped_and_counted():
    s = SCORES.copy()
    t = TRUTH.copy()
    s[3] = np.nan
    t[6] = np.inf
    s[9] = -np.inf
    keep = np.ones(10, bool)
    keep[[3, 6, 9]] = False
    for fn in (M.kendall_tau, M.spearman_rho, M.pearson_r):
        ev = fn(s, t)
        assert (ev.n_used, ev.n_dropped) == (7, 3)
        assert ev.value == pytest.approx(fn(s[keep], t[keep]).value)
    for fn in (M.precision_at_top_k, M.precision_at_bottom_k, M.best_rank_at_k,
               M.worst_rank_at_k, M.kendall_tau_top_k):
        ev = fn(s, t, 3)
        assert (ev.n_used, ev.n_dropped) == (7, 3)
        assert ev.value == pytest.approx(fn(s[keep], t[keep], 3).value)
    # the ratio refers to the finite pairs: ceil(0.5 * 7) = 4
    assert M.precision_at_top_k(s, t, 0.5).k == 4


def test_k_as_ratio_vs_count():
    assert M.resolve_k(0.3, 10) == 3      # 0.3 * 10 = 3.0000000000000004 in floats
    assert M.resolve_k(0.1, 30) == 3
    assert M.resolve_k(0.25, 10) == 3     # ceil(2.5)
    assert M.resolve_k(0.21, 10) == 3     # ceil(2.1)
    assert M.resolve_k(0.2, 10) == 2
    assert M.resolve_k(0.001, 15625) == 16
    assert M.resolve_k(0.0001, 10) == 1   # never 0
    assert M.resolve_k(1.0, 10) == 10     # float 1.0 = all
    assert M.resolve_k(1, 10) == 1        # int 1 = one
    assert M.resolve_k(np.int64(4), 10) == 4
    for k in (3, 0.3, 0.25):
        assert M.precision_at_top_k(SCORES, TRUTH, k).value == pytest.approx(2 / 3)
        assert M.precision_at_top_k(SCORES, TRUTH, k).k == 3
    for bad in (0, 11, -1, 0.0, 1.5, -0.1):
        with pytest.raises(ValueError):
            M.resolve_k(bad, 10)
    with pytest.raises(TypeError):
        M.resolve_k(True, 10)
    with pytest.raises(TypeError):
        M.resolve_k("3", 10)


def test_shape_errors():
    with pytest.raises(ValueError, match="length"):
        M.kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        M.precision_at_top_k(np.ones((2, 2)), np.ones((2, 2)), 1)


def test_ties_hand_case():
    # scores tie 1,2,3 at the top-2 cut-off: cell 0 is in, one of {1,2,3} with p = 1/3 each.
    s = np.array([3, 2, 2, 2, 1], dtype=float)
    t = np.array([5, 4, 3, 2, 1], dtype=float)     # true ranks 1..5
    # true top-2 {0,1}: expected overlap 1 + 1/3
    assert M.precision_at_top_k(s, t, 2).value == pytest.approx((4 / 3) / 2)
    assert M.best_rank_at_k(s, t, 2).value == pytest.approx(1 / 5)
    assert M.worst_rank_at_k(s, t, 2).value == pytest.approx(3 / 5)   # E[rank of {2,3,4}]
    # K=3: two of {1,2,3} (ranks 2,3,4); max over {2,3},{2,4},{3,4} = 3,4,4
    assert M.worst_rank_at_k(s, t, 3).value == pytest.approx((11 / 3) / 5)
    # min of a random 2-subset of ranks {2,3,4} with nothing forced: 2,2,3
    assert M._expected_extreme(np.array([]), np.array([2.0, 3.0, 4.0]), 2, True) == \
        pytest.approx(7 / 3)
    # Kendall in the top-K keeps every tie at the cut-off: {0,1,2,3}
    ev = M.kendall_tau_top_k(s, t, 2)
    assert ev.k == 4
    assert ev.value == pytest.approx(stats.kendalltau(s[:4], t[:4])[0])
    # truth ties share the better (competition) rank
    t2 = np.array([5, 4, 4, 2, 1], dtype=float)
    assert M.worst_rank_at_k(t2, t2, 3).value == pytest.approx(2 / 5)


def _brute_force(s, t, k):
    """Exact expectation over all tie-breaking orders (n small)."""
    n = len(s)
    ranks = 1 + np.array([(t > ti).sum() for ti in t])
    perms = list(itertools.permutations(range(n)))
    tops_s = [set(np.lexsort((np.array(p), -s))[:k]) for p in perms]
    tops_t = [set(np.lexsort((np.array(p), -t))[:k]) for p in perms]
    bots_s = [set(np.lexsort((np.array(p), s))[:k]) for p in perms]
    bots_t = [set(np.lexsort((np.array(p), t))[:k]) for p in perms]
    p_top = np.mean([len(a & b) for a in tops_s for b in tops_t]) / k
    p_bot = np.mean([len(a & b) for a in bots_s for b in bots_t]) / k
    br = np.mean([min(ranks[list(a)]) for a in tops_s]) / n
    wr = np.mean([max(ranks[list(a)]) for a in tops_s]) / n
    return p_top, p_bot, br, wr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, size=5).astype(float)
    t = rng.integers(0, 3, size=5).astype(float)
    for k in (1, 2, 3):
        p_top, p_bot, br, wr = _brute_force(s, t, k)
        assert M.precision_at_top_k(s, t, k).value == pytest.approx(p_top)
        assert M.precision_at_bottom_k(s, t, k).value == pytest.approx(p_bot)
        assert M.best_rank_at_k(s, t, k).value == pytest.approx(br)
        assert M.worst_rank_at_k(s, t, k).value == pytest.approx(wr)


def test_large_tie_group_is_stable():
    s = np.zeros(20000)
    t = np.arange(20000, dtype=float)
    ev = M.best_rank_at_k(s, t, 16)
    # E[min of 16 of ranks 1..N] = (N + 1) / 17
    assert ev.value == pytest.approx((20001 / 17) / 20000)
    assert M.precision_at_top_k(s, t, 16).value == pytest.approx(16 / 20000)


def test_correlation_table():
    proxies = {"good": TRUTH + 0.5, "bad": -TRUTH, "scored": SCORES}
    s = proxies["scored"].copy()
    s[0] = np.nan
    proxies["scored"] = s
    rows = M.correlation_table(proxies, TRUTH,
                               metrics=("kendall_tau", "precision_at_top_k", "best_rank_at_k"),
                               ks=(3, 0.5))
    assert [r["proxy"] for r in rows] == ["good", "bad", "scored"]
    good, bad, scored = rows
    assert good["kendall_tau"] == pytest.approx(1.0) and bad["kendall_tau"] == pytest.approx(-1.0)
    assert good["precision_at_top_k@3"] == 1.0 and bad["precision_at_top_k@3"] == 0.0
    assert good["best_rank_at_k@0.5"] == pytest.approx(0.1)
    assert (scored["n_used"], scored["n_dropped"]) == (9, 1)
    assert scored["kendall_tau"] == pytest.approx(M.kendall_tau(s, TRUTH).value)
    # a proxy with too few finite values gives NaN entries, not an error
    rows = M.correlation_table({"empty": np.full(10, np.nan), "short": s}, TRUTH,
                               metrics=("kendall_tau", "worst_rank_at_k"), ks=(10, 0.5))
    assert rows[0]["n_used"] == 0 and np.isnan(rows[0]["worst_rank_at_k@0.5"])
    assert np.isnan(rows[1]["worst_rank_at_k@10"]) and rows[1]["worst_rank_at_k@0.5"] > 0
    with pytest.raises(ValueError, match="unknown metrics"):
        M.correlation_table(proxies, TRUTH, metrics=("nope",))


def test_per_class():
    classes = np.array([0, 0, 2, 2, 2, 5])
    s = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    t = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    sc, tc = M.per_class(s, t, classes)
    np.testing.assert_array_equal(sc, [1.0, 3.0, 6.0])
    np.testing.assert_array_equal(tc, [10.0, 30.0, 60.0])
    sc, tc = M.per_class(s, t, classes, how="mean")
    np.testing.assert_allclose(sc, [1.5, 4.0, 6.0])
    np.testing.assert_allclose(tc, [15.0, 40.0, 60.0])
    sc, tc = M.per_class(s, t, classes, representatives={0: 1, 2: 4, 5: 5})
    np.testing.assert_array_equal(sc, [2.0, 5.0, 6.0])
    sc, tc = M.per_class(s, t, classes, representatives=[1, 3, 5])
    assert np.isnan(sc[1]) and tc[1] == 40.0
    with pytest.raises(ValueError, match="own class"):
        M.per_class(s, t, classes, representatives=[2, 3, 5])
    with pytest.raises(ValueError, match="representative"):
        M.per_class(s, t, classes, representatives={0: 1, 2: 4})
    with pytest.raises(ValueError):
        M.per_class(s, t, classes[:5])
    with pytest.raises(ValueError, match="how"):
        M.per_class(s, t, classes, how="median")
    # all-NaN class under "mean" stays NaN, later dropped by the metrics
    sc, _ = M.per_class(np.array([np.nan, np.nan, 1.0]), np.ones(3), [7, 7, 8], how="mean")
    assert np.isnan(sc[0]) and sc[1] == 1.0
