"""The one-shot estimator analyses of Ning et al. (NeurIPS 2021), as pure functions and plots.

Ning, Tang, Li, Zhou, Liang, Yang & Wang, "Evaluating Efficient Performance Estimators of
Neural Architectures" (NeurIPS 2021; reference ``walkerning/aw_nas``,
``examples/research/surgery/evaluation.py`` for the criteria) study one-shot estimators (OSE)
along four lines, each a function here taking plain arrays (scores aligned with the ground
truth, higher = better for both; negate a loss first) and returning rows ready for a table:

1. **Criteria over training** (:func:`criteria_over_epochs`): Kendall's tau, P@topK, BR@K and
   WR@K (:mod:`zcjax.evaluate.metrics`) of the one-shot score of each checkpoint; their curve
   (:func:`plot_criteria_over_epochs`) shows how the ranking forms while the supernet trains.
2. **Bias**: :func:`cost_bias`, the rank correlation of the score with the architectures'
   parameters / FLOPs beside the ground truth's (an OSE that ranks by size more than the
   truth does is biased towards large or small networks); :func:`operation_bias`, the mean
   rank (as a percentile, 1 = best) of the cells containing each operation, by the OSE and by
   the truth (an estimator that ranks the cells with some operation above their accuracy is
   biased towards it).
3. **Variance**: :func:`seed_variance`, the criteria of supernets trained from different seeds
   and the rank correlation between seeds; :func:`isomorphism_spread`, the spread of scores
   among isomorphic cells, which compute the same function and should score alike (the
   paper's motivation for de-isomorphism sampling).
4. **OSE and ZSE side by side** (:func:`estimator_table`) and combined: :func:`rank_average`
   (the mean percentile rank over estimators) and :func:`forest_combination` (the random
   forest of :mod:`zcjax.evaluate.regression` on all estimators as features).

Plots are ``matplotlib.figure.Figure`` objects drawn without pyplot (no global state, no
display): ``fig.savefig(path)``.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from zcjax.evaluate import metrics
from zcjax.evaluate.regression import RegressionResult, fit_and_evaluate, stack_features

__all__ = ["DEFAULT_KS", "CRITERIA", "criteria", "criteria_over_epochs", "cost_bias",
           "operation_bias", "seed_variance", "isomorphism_spread", "estimator_table",
           "rank_average", "percentile_ranks", "forest_combination",
           "plot_criteria_over_epochs", "plot_operation_bias", "plot_cost_bias",
           "plot_isomorphism_spread", "plot_training_history"]

#: The K of the top-K criteria (ratios of the scored architectures).
DEFAULT_KS: tuple[float, ...] = (0.05, 0.1)
#: The criteria of the tables: correlations, then the top-K ones at every K.
CRITERIA: tuple[str, ...] = ("kendall_tau", "spearman_rho", "precision_at_top_k",
                             "best_rank_at_k", "worst_rank_at_k")


def criteria(scores, truth, ks: Sequence[float] = DEFAULT_KS) -> dict:
    """One row of :data:`CRITERIA` for one estimator (keys as in
    :func:`zcjax.evaluate.metrics.correlation_table`: ``"kendall_tau"``,
    ``"precision_at_top_k@0.05"``, ...), and ``"mean_score"``, the mean of the finite scores
    (aw_nas's "oneshot average")."""
    scores = np.asarray(scores, np.float64)
    row = metrics.correlation_table({"score": scores}, truth, CRITERIA, ks)[0]
    row.pop("proxy")
    finite = scores[np.isfinite(scores)]
    row["mean_score"] = float(finite.mean()) if finite.size else math.nan
    return row


def criteria_over_epochs(scores_by_epoch: Mapping[float, np.ndarray], truth,
                         ks: Sequence[float] = DEFAULT_KS) -> list[dict]:
    """:func:`criteria` of each checkpoint's scores, one row per epoch (ascending), with
    ``"epoch"`` first."""
    return [{"epoch": epoch, **criteria(scores_by_epoch[epoch], truth, ks)}
            for epoch in sorted(scores_by_epoch)]


def percentile_ranks(values) -> np.ndarray:
    """Average-tie ranks scaled to (0, 1]: 1 for the highest value; NaN stays NaN."""
    values = np.asarray(values, np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    if ok.any():
        out[ok] = stats.rankdata(values[ok]) / ok.sum()
    return out


def cost_bias(scores, truth, costs: Mapping[str, np.ndarray]) -> list[dict]:
    """Kendall's tau of the score with each cost and of the truth with it, and their gap.

    Rows ``{"cost", "kendall_tau_score", "kendall_tau_truth", "gap"}``: a positive gap means
    the estimator prefers costly (large) architectures more than their accuracy warrants.
    """
    rows = []
    for name, cost in costs.items():
        by_score = metrics.kendall_tau(scores, cost).value
        by_truth = metrics.kendall_tau(truth, cost).value
        rows.append({"cost": name, "kendall_tau_score": by_score,
                     "kendall_tau_truth": by_truth, "gap": by_score - by_truth})
    return rows


def operation_bias(scores, truth, op_counts, op_names: Sequence[str]) -> list[dict]:
    """For each operation, the mean percentile rank (1 = best) of the cells containing it,
    ranked by the score and by the truth.

    Args:
      scores, truth: (n,) per cell.
      op_counts: (n, n_ops) how often each cell contains each operation.
      op_names: the n_ops names.

    Returns:
      Rows ``{"operation", "cells", "mean_rank_score", "mean_rank_truth", "gap"}``; a positive
      gap means the estimator ranks cells with this operation higher than the truth does.
    """
    counts = np.asarray(op_counts)
    if counts.ndim != 2 or counts.shape[1] != len(op_names):
        raise ValueError(f"op_counts must be (n cells, {len(op_names)} operations), got "
                         f"{counts.shape}")
    s, t = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    if not s.shape == t.shape == counts.shape[:1]:
        raise ValueError(f"scores, truth and op_counts disagree in length: {s.shape}, "
                         f"{t.shape}, {counts.shape}")
    ok = np.isfinite(s) & np.isfinite(t)
    rank_s, rank_t = percentile_ranks(s[ok]), percentile_ranks(t[ok])
    rows = []
    for j, name in enumerate(op_names):
        has = counts[ok, j] > 0
        mean_s = float(rank_s[has].mean()) if has.any() else math.nan
        mean_t = float(rank_t[has].mean()) if has.any() else math.nan
        rows.append({"operation": name, "cells": int(has.sum()), "mean_rank_score": mean_s,
                     "mean_rank_truth": mean_t, "gap": mean_s - mean_t})
    return rows


def seed_variance(scores_by_seed: Mapping[object, np.ndarray], truth,
                  ks: Sequence[float] = DEFAULT_KS) -> tuple[list[dict], list[dict]]:
    """Criteria per seed with their mean and standard deviation, and the agreement of seeds.

    Returns:
      ``(rows, pairs)``: ``rows`` has one row per seed (``"seed"``, then the criteria) and a
      last row ``seed="mean ± std"`` whose values are ``(mean, std)`` pairs (std with
      ddof=1); ``pairs`` has one row per pair of seeds with the Kendall tau between their
      scores (``"seed_a"``, ``"seed_b"``, ``"kendall_tau"``).
    """
    if len(scores_by_seed) < 2:
        raise ValueError(f"variance across seeds needs at least 2 seeds, got "
                         f"{len(scores_by_seed)}")
    rows = [{"seed": seed, **criteria(scores, truth, ks)}
            for seed, scores in scores_by_seed.items()]
    keys = [k for k in rows[0] if k not in ("seed", "n_used", "n_dropped")]
    summary = {"seed": "mean ± std"}
    for k in keys:
        values = np.array([r[k] for r in rows], np.float64)
        summary[k] = (float(np.nanmean(values)), float(np.nanstd(values, ddof=1)))
    pairs = [{"seed_a": a, "seed_b": b,
              "kendall_tau": metrics.kendall_tau(scores_by_seed[a], scores_by_seed[b]).value}
             for a, b in itertools.combinations(scores_by_seed, 2)]
    return rows + [summary], pairs


def isomorphism_spread(scores, class_ids) -> dict:
    """How differently isomorphic cells score (they compute one function).

    Over the classes with at least two scored members:

    * ``classes``, ``cells``: how many such classes and cells;
    * ``within_std``: the mean over classes of the standard deviation (ddof=0) of their
      members' scores; ``overall_std``: the standard deviation over all scored cells;
    * ``within_fraction``: the within-class sum of squares over the total sum of squares of
      those cells (0: isomorphic cells score identically; about 1: classes explain nothing);
    * ``rank_range``: the mean over classes of the range of their members' percentile ranks
      among all scored cells (0 = alike; a value of 0.2 means isomorphic cells sit 20% of the
      ranking apart on average).
    """
    s = np.asarray(scores, np.float64)
    c = np.asarray(class_ids)
    if s.shape != c.shape or s.ndim != 1:
        raise ValueError(f"scores and class_ids must be 1-D of one length, got {s.shape} and "
                         f"{c.shape}")
    ok = np.isfinite(s)
    s, c = s[ok], c[ok]
    ranks = percentile_ranks(s)
    classes, inverse, sizes = np.unique(c, return_inverse=True, return_counts=True)
    multi = sizes[inverse] >= 2
    out = {"classes": int(np.sum(sizes >= 2)), "cells": int(multi.sum()),
           "overall_std": float(np.std(s)) if s.size else math.nan}
    if not multi.any():
        return {**out, "within_std": math.nan, "within_fraction": math.nan,
                "rank_range": math.nan}
    stds, ranges, ss_within = [], [], 0.0
    for k in np.flatnonzero(sizes >= 2):
        members = inverse == k
        stds.append(np.std(s[members]))
        ranges.append(np.ptp(ranks[members]))
        ss_within += float(np.sum((s[members] - s[members].mean()) ** 2))
    ss_total = float(np.sum((s[multi] - s[multi].mean()) ** 2))
    return {**out, "within_std": float(np.mean(stds)),
            "within_fraction": ss_within / ss_total if ss_total > 0 else math.nan,
            "rank_range": float(np.mean(ranges))}


def estimator_table(scores_by_estimator: Mapping[str, np.ndarray], truth,
                    ks: Sequence[float] = DEFAULT_KS) -> list[dict]:
    """:data:`CRITERIA` of several estimators on the same cells, one row each (``"proxy"``
    holds the estimator's name), in the order given."""
    return metrics.correlation_table({k: np.asarray(v, np.float64)
                                      for k, v in scores_by_estimator.items()},
                                     truth, CRITERIA, ks)


def rank_average(scores_by_estimator: Mapping[str, np.ndarray]) -> np.ndarray:
    """The mean percentile rank of each architecture over the estimators (NaN scores are left
    out of its mean; NaN where no estimator scored it)."""
    ranks = np.stack([percentile_ranks(v) for v in scores_by_estimator.values()])
    with np.errstate(invalid="ignore"):
        count = np.sum(np.isfinite(ranks), axis=0)
        total = np.nansum(ranks, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def forest_combination(scores_by_estimator: Mapping[str, np.ndarray], truth,
                       train_size: int | float = 0.5, seeds: Sequence[int] = (0, 1, 2),
                       **forest_kwargs) -> RegressionResult:
    """A random forest from all estimators (as feature columns) to the truth, evaluated on
    held-out cells (:func:`zcjax.evaluate.regression.fit_and_evaluate`): how much a few
    known accuracies let OSE and ZSE scores complement each other."""
    features, names = stack_features(scores_by_estimator)
    return fit_and_evaluate(features, np.asarray(truth, np.float64), names, train_size, seeds,
                            target_names=("truth",), **forest_kwargs)


# -- plots ---------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_criteria_over_epochs(rows_by_run: Mapping[str, Sequence[Mapping]],
                              ks: Sequence[float] = DEFAULT_KS, title: str = ""):
    """Kendall tau, P@topK and BR@K / WR@K against epochs, one line per run (e.g. seed)."""
    fig = _figure(12, 3.4)
    if title:
        fig.suptitle(title, fontsize=10)
    ax_tau, ax_p, ax_r = fig.subplots(1, 3)
    styles = ["-", "--", ":", "-."]
    for i, (run, rows) in enumerate(rows_by_run.items()):
        epochs = [r["epoch"] for r in rows]
        ls = styles[i % len(styles)]
        ax_tau.plot(epochs, [r["kendall_tau"] for r in rows], ls, marker="o", ms=3,
                    label=f"{run}")
        for j, k in enumerate(ks):
            color = f"C{j}"
            ax_p.plot(epochs, [r[f"precision_at_top_k@{k}"] for r in rows], ls, color=color,
                      marker="o", ms=3, label=f"K={_pct(k)} {run}")
            ax_r.plot(epochs, [r[f"best_rank_at_k@{k}"] for r in rows], ls, color=color,
                      marker="^", ms=3, label=f"BR@{_pct(k)} {run}")
            ax_r.plot(epochs, [r[f"worst_rank_at_k@{k}"] for r in rows], ls, color=color,
                      marker="v", ms=3, alpha=0.6, label=f"WR@{_pct(k)} {run}")
    ax_tau.set(xlabel="epoch", ylabel="Kendall τ ↑", title="ranking correlation")
    ax_p.set(xlabel="epoch", ylabel="P@topK ↑", title="top-K precision", ylim=(-0.02, 1.02))
    ax_r.set(xlabel="epoch", ylabel="true rank / N ↓", title="BR@K (▲) and WR@K (▼)",
             ylim=(0, 1.02))
    for ax in (ax_tau, ax_p, ax_r):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return fig


def plot_operation_bias(rows: Sequence[Mapping], title: str = ""):
    """Mean percentile rank of the cells containing each operation: estimator vs truth."""
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["mean_rank_score"] for r in rows], 0.4, label="one-shot score")
    ax.bar(x + 0.2, [r["mean_rank_truth"] for r in rows], 0.4, label="true accuracy")
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_xticks(x, [r["operation"] for r in rows], rotation=20, fontsize=8)
    ax.set(ylabel="mean percentile rank of cells with it (1 = best)", ylim=(0, 1),
           title=title or "operation bias")
    ax.legend(fontsize=8)
    return fig


def plot_cost_bias(scores, truth, cost, cost_name: str = "parameters", title: str = ""):
    """Percentile rank by the score and by the truth against a cost (log axis)."""
    fig = _figure(9, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, values, label in ((axes[0], scores, "one-shot score"), (axes[1], truth, "truth")):
        tau = metrics.kendall_tau(values, cost).value
        ax.scatter(cost, percentile_ranks(values), s=8, alpha=0.6, linewidths=0)
        ax.set_xscale("log")
        ax.set(xlabel=cost_name, title=f"{label} (Kendall τ with it: {tau:.2f})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("percentile rank (1 = best)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_isomorphism_spread(scores, class_ids, truth, title: str = ""):
    """The scores of the members of each multi-member isomorphism class, classes ordered by
    their true accuracy: a vertical spread is disagreement between identical functions."""
    s, c, t = (np.asarray(v) for v in (scores, class_ids, truth))
    classes, inverse, sizes = np.unique(c, return_inverse=True, return_counts=True)
    multi = [k for k in range(classes.size) if sizes[k] >= 2]
    order = sorted(multi, key=lambda k: np.nanmean(t[inverse == k]))
    fig = _figure(8, 3.2)
    ax = fig.subplots()
    for x, k in enumerate(order):
        members = s[inverse == k]
        ax.plot([x, x], [np.nanmin(members), np.nanmax(members)], color="C0", lw=1, alpha=0.6)
        ax.scatter(np.full(members.size, x), members, s=8, color="C0", linewidths=0)
    ax.set(xlabel="isomorphism class (ordered by true accuracy)", ylabel="one-shot score",
           title=title or "scores of isomorphic cells")
    ax.grid(alpha=0.3)
    return fig


def plot_training_history(histories: Mapping[str, Sequence[Mapping]], title: str = ""):
    """Training loss and accuracy per epoch, one line per run."""
    fig = _figure(8, 3)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for run, rows in histories.items():
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["loss"] for r in rows], label=str(run))
        ax_acc.plot(epochs, [r["accuracy"] for r in rows], label=str(run))
    ax_loss.set(xlabel="epoch", ylabel="training loss (sampled paths)")
    ax_acc.set(xlabel="epoch", ylabel="training accuracy (sampled paths)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _pct(k: float) -> str:
    return f"{100 * k:g}%" if isinstance(k, float) else str(k)
