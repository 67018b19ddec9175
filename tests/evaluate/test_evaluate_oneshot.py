"""The one-shot analyses on small arrays whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from zcjax.evaluate import oneshot as ose

TRUTH = np.arange(20, dtype=float)  # cell i has true rank 20 - i


def test_criteria_of_a_perfect_and_a_reversed_estimator():
    good = ose.criteria(TRUTH * 3 + 1, TRUTH, ks=(0.1,))
    assert good["kendall_tau"] == pytest.approx(1.0)
    assert good["precision_at_top_k@0.1"] == pytest.approx(1.0)
    assert good["best_rank_at_k@0.1"] == pytest.approx(1 / 20)
    assert good["worst_rank_at_k@0.1"] == pytest.approx(2 / 20)
    assert good["mean_score"] == pytest.approx(np.mean(TRUTH * 3 + 1))
    bad = ose.criteria(-TRUTH, TRUTH, ks=(0.1,))
    assert bad["kendall_tau"] == pytest.approx(-1.0)
    assert bad["precision_at_top_k@0.1"] == 0.0
    assert bad["worst_rank_at_k@0.1"] == pytest.approx(1.0)


def test_criteria_over_epochs_are_sorted_by_epoch():
    rows = ose.criteria_over_epochs({2.0: TRUTH, 1.0: -TRUTH}, TRUTH)
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert rows[0]["kendall_tau"] < 0 < rows[1]["kendall_tau"]


def test_operation_bias_by_hand():
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    counts = np.array([[1, 0], [1, 0], [0, 2], [0, 1]])
    rows = ose.operation_bias(scores, truth, counts, ["conv", "pool"])
    # percentile ranks (1 = best): by score [1, .75, .5, .25], by truth [.25, .5, .75, 1]
    assert rows[0] == {"operation": "conv", "cells": 2, "mean_rank_score": pytest.approx(0.875),
                       "mean_rank_truth": pytest.approx(0.375), "gap": pytest.approx(0.5)}
    assert rows[1]["mean_rank_score"] == pytest.approx(0.375)
    with pytest.raises(ValueError, match="operations"):
        ose.operation_bias(scores, truth, counts, ["conv"])


def test_cost_bias_compares_with_the_truth():
    cost = np.arange(20.0)
    rows = ose.cost_bias(cost ** 2, -cost, {"params": cost})
    assert rows[0]["kendall_tau_score"] == pytest.approx(1.0)
    assert rows[0]["kendall_tau_truth"] == pytest.approx(-1.0)
    assert rows[0]["gap"] == pytest.approx(2.0)


def test_isomorphism_spread_by_hand():
    classes = np.array([0, 0, 1, 1, 2])
    alike = ose.isomorphism_spread(np.array([1.0, 1.0, 3.0, 3.0, 5.0]), classes)
    assert alike["classes"] == 2 and alike["cells"] == 4
    assert alike["within_std"] == 0 and alike["within_fraction"] == 0
    assert alike["rank_range"] == 0
    apart = ose.isomorphism_spread(np.array([1.0, 4.0, 2.0, 3.0, 5.0]), classes)
    # within SS: class 0 (1, 4): 4.5; class 1 (2, 3): 0.5; total SS of 1..4: 5
    assert apart["within_fraction"] == pytest.approx(5.0 / 5.0)
    assert apart["within_std"] == pytest.approx((1.5 + 0.5) / 2)
    # percentile ranks of 1..5: .2 .. 1; ranges 0.6 and 0.2
    assert apart["rank_range"] == pytest.approx(0.4)


def test_seed_variance_and_agreement():
    rows, pairs = ose.seed_variance({0: TRUTH, 1: TRUTH + 1, 2: -TRUTH}, TRUTH, ks=(0.1,))
    assert [r["seed"] for r in rows] == [0, 1, 2, "mean ± std"]
    mean, std = rows[-1]["kendall_tau"]
    assert mean == pytest.approx(1 / 3) and std == pytest.approx(np.std([1, 1, -1], ddof=1))
    assert [p["kendall_tau"] for p in pairs] == pytest.approx([1.0, -1.0, -1.0])
    with pytest.raises(ValueError, match="2 seeds"):
        ose.seed_variance({0: TRUTH}, TRUTH)


def test_rank_average_and_estimator_table():
    a = np.array([1.0, 2.0, 3.0, np.nan])
    b = np.array([3.0, 2.0, 1.0, 5.0])
    avg = ose.rank_average({"a": a, "b": b})
    # ranks: a -> [1/3, 2/3, 1, nan]; b -> [.75, .5, .25, 1]
    np.testing.assert_allclose(avg, [(1 / 3 + .75) / 2, (2 / 3 + .5) / 2, (1 + .25) / 2, 1.0])
    rows = ose.estimator_table({"a": a, "b": b}, np.array([1.0, 2.0, 3.0, 4.0]), ks=(0.5,))
    assert [r["proxy"] for r in rows] == ["a", "b"] and rows[0]["n_used"] == 3


def test_forest_combination_runs_on_held_out_cells():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=60)
    result = ose.forest_combination({"a": truth + 0.1 * rng.normal(size=60),
                                     "b": rng.normal(size=60)}, truth, train_size=30,
                                    seeds=(0,), n_estimators=20)
    assert result.per_seed[0].n_test == 30
    assert result.kendall_tau_mean[0] > 0.5


def test_plots_draw(tmp_path):
    rows = ose.criteria_over_epochs({1.0: -TRUTH, 2.0: TRUTH}, TRUTH)
    figures = {
        "curve": ose.plot_criteria_over_epochs({"seed 0": rows, "seed 1": rows}),
        "ops": ose.plot_operation_bias(ose.operation_bias(
            TRUTH, TRUTH, np.eye(20, 2, dtype=int) + 1, ["a", "b"])),
        "cost": ose.plot_cost_bias(TRUTH, TRUTH, TRUTH + 1),
        "iso": ose.plot_isomorphism_spread(TRUTH, np.arange(20) // 2, TRUTH),
        "history": ose.plot_training_history({"0": [{"epoch": 1, "loss": 2.0, "accuracy": .1},
                                                    {"epoch": 2, "loss": 1.5, "accuracy": .3}]}),
    }
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png", dpi=50)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
