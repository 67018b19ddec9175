"""Ranking metrics for zero-cost proxies: correlations and top-K criteria.

Every metric takes two 1-D arrays of equal length, ``scores`` (a proxy's values) and
``truth`` (the ground truth, e.g. test accuracy), with **higher = better for both**. Negate a
proxy whose small values mean good architectures before passing it in.

NaN handling. Every metric first drops the positions where either ``scores`` or ``truth``
is not finite (NaN, +Inf or -Inf) and returns an :class:`Evaluation` that records the value,
how many pairs were used and how many were dropped. ``float(evaluation)`` gives the value.

Metrics (N = number of finite pairs):

* :func:`kendall_tau`, :func:`spearman_rho`, :func:`pearson_r` -- ``scipy.stats``
  (Kendall's tau-b, Spearman's rho, Pearson's r). Ties are handled by scipy: tau-b corrects
  for ties in either ranking, Spearman ranks ties with their average rank. The value is NaN
  when N < 2 or either input is constant (the coefficient is undefined).
* :func:`precision_at_top_k`, :func:`precision_at_bottom_k` -- P@topK / P@bottomK:
  ``|predicted top-K  ∩  true top-K| / K`` (resp. bottom-K).
* :func:`best_rank_at_k`, :func:`worst_rank_at_k` -- BR@K / WR@K: among the predicted top-K,
  the best (smallest) and the worst (largest) *true* rank, divided by N. Lower is better.
* :func:`kendall_tau_top_k` -- Kendall's tau-b within the predicted top-K.

The top-K criteria follow Ning et al., "Evaluating Efficient Performance Estimators of Neural
Architectures", NeurIPS 2021 (arXiv:2008.03064), whose reference implementation is
``examples/research/surgery/evaluation.py`` in https://github.com/walkerning/aw_nas
(``minmax_n_at_k`` for BR@K/WR@K, ``p_at_tb_k`` for P@topK/P@bottomK and the Kendall tau in
the predicted top-K).

K. ``k`` is either an ``int`` count, 1 <= k <= N, or a ``float`` ratio in (0, 1] of N, turned
into a count with ``K = ceil(ratio * N)`` (so that K >= 1 and the top-K covers at least the
requested fraction; a relative tolerance of 1e-9 absorbs float noise, so ``0.1 * 30`` gives
3, not 4). N is the number of finite pairs. Note: aw_nas uses ``int(ratio * N)`` (floor) and
skips ratios that give K = 0; e.g. for N = 15,625 and ratio 0.001 aw_nas uses K = 15, this
module K = 16. Pass an ``int`` to reproduce a given K exactly. ``k=1`` (int) is one
architecture, ``k=1.0`` (float) is all of them.

Ties in the top-K criteria. Selecting "the top K" is ambiguous when values tie at the
cut-off (common for proxies such as #params or FLOPs). P@K, BR@K and WR@K therefore return
the **expected value under uniformly random tie-breaking** (independently in ``scores`` and
``truth``): an architecture tied at the cut-off belongs to the top-K with probability
``(free slots) / (number tied at the cut-off)``. Without ties this is the plain definition.
True ranks are competition ranks, ``rank_i = 1 + #{j : truth_j > truth_i}`` (equal truths
share the better rank). :func:`kendall_tau_top_k` instead keeps *every* architecture whose
score ties the K-th highest score (so the set may hold more than K); the size used is
reported in ``Evaluation.k``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import special, stats

__all__ = [
    "Evaluation",
    "finite_pairs",
    "resolve_k",
    "kendall_tau",
    "spearman_rho",
    "pearson_r",
    "precision_at_top_k",
    "precision_at_bottom_k",
    "best_rank_at_k",
    "worst_rank_at_k",
    "kendall_tau_top_k",
    "METRICS",
    "K_METRICS",
    "correlation_table",
    "per_class",
]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The result of one metric.

    Attributes:
      value: the metric value (NaN when undefined, e.g. fewer than two finite pairs).
      n_used: number of (score, truth) pairs that were finite and used.
      n_dropped: number of pairs dropped because the score or the truth was NaN or +-Inf.
      k: for the top-K metrics, the K used (count, after resolving a ratio); for
        :func:`kendall_tau_top_k` the size of the set actually used (ties included);
        ``None`` for the correlations over all pairs.
    """

    value: float
    n_used: int
    n_dropped: int
    k: int | None = None

    def __float__(self) -> float:
        return float(self.value)


# -- input handling ------------------------------------------------------------------------


def _as_1d(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr


def finite_pairs(scores, truth) -> tuple[np.ndarray, np.ndarray, int]:
    """Drops the positions where ``scores`` or ``truth`` is NaN or +-Inf.

    Returns:
      ``(scores_kept, truth_kept, n_dropped)`` as float64 arrays.

    Raises:
      ValueError: if the inputs are not 1-D or differ in length.
    """
    s = _as_1d("scores", scores)
    t = _as_1d("truth", truth)
    if s.shape != t.shape:
        raise ValueError(f"scores and truth differ in length: {s.shape[0]} vs {t.shape[0]}")
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep], int(keep.size - np.count_nonzero(keep))


def resolve_k(k: int | float, n: int) -> int:
    """Turns ``k`` (an int count or a float ratio in (0, 1]) into a count for ``n`` items.

    ``K = k`` for an ``int`` (1 <= k <= n); ``K = ceil(k * n)`` for a ``float`` ratio, with a
    relative tolerance of 1e-9 against float noise. ``bool`` is rejected.

    Raises:
      ValueError: if ``n < 1`` or ``k`` is out of range; TypeError for other types.
    """
    if n < 1:
        raise ValueError("no finite (score, truth) pairs left to select a top-K from")
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("k must be an int count or a float ratio, not a bool")
    if isinstance(k, numbers.Integral):
        kk = int(k)
        if not 1 <= kk <= n:
            raise ValueError(f"k={kk} as a count must be in [1, {n}] (N = {n} finite pairs)")
        return kk
    if isinstance(k, numbers.Real):
        ratio = float(k)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"k={ratio} as a ratio must be in (0, 1]")
        return max(1, min(n, math.ceil(ratio * n * (1.0 - 1e-9))))
    raise TypeError(f"k must be an int count or a float ratio, got {type(k).__name__}")


# -- correlations --------------------------------------------------------------------------


def _correlation(fn: Callable, scores, truth) -> Evaluation:
    s, t, dropped = finite_pairs(scores, truth)
    n = s.size
    if n < 2 or np.all(s == s[0]) or np.all(t == t[0]):
        return Evaluation(float("nan"), n, dropped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(s, t)[0])
    return Evaluation(value, n, dropped)


def kendall_tau(scores, truth) -> Evaluation:
    """Kendall's tau-b, ``scipy.stats.kendalltau`` (tie-corrected).

    ``tau_b = (P - Q) / sqrt((P + Q + T_s) (P + Q + T_t))`` with P concordant and Q discordant
    pairs, T_s / T_t pairs tied only in scores / only in truth.
    """
    return _correlation(stats.kendalltau, scores, truth)


def spearman_rho(scores, truth) -> Evaluation:
    """Spearman's rho, ``scipy.stats.spearmanr``: Pearson's r of the (average-tie) ranks."""
    return _correlation(stats.spearmanr, scores, truth)


def pearson_r(scores, truth) -> Evaluation:
    """Pearson's linear correlation coefficient, ``scipy.stats.pearsonr``."""
    return _correlation(stats.pearsonr, scores, truth)


# -- top-K machinery -----------------------------------------------------------------------


def _top_k_split(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Splits the top-``k`` of ``values`` into a sure part and a tie group at the cut-off.

    Returns ``(above, tied, slots)``: boolean masks of the values strictly above the K-th
    highest value and equal to it, and how many of the tied ones fit in the top-K
    (``slots = k - above.sum()``, 1 <= slots <= tied.sum()).
    """
    threshold = np.partition(values, values.size - k)[values.size - k]  # K-th highest
    above = values > threshold
    tied = values == threshold
    return above, tied, k - int(np.count_nonzero(above))


def _membership(values: np.ndarray, k: int) -> np.ndarray:
    """Probability that each item is in the top-``k`` under random tie-breaking."""
    above, tied, slots = _top_k_split(values, k)
    return above.astype(np.float64) + tied * (slots / np.count_nonzero(tied))


def _true_ranks(truth: np.ndarray) -> np.ndarray:
    """Competition ranks, 1 = best: ``1 + #{j : truth_j > truth_i}``."""
    return stats.rankdata(-truth, method="min").astype(np.float64)


def _log_comb(a, b):
    """log C(a, b) via log-gamma (exact enough for the sizes of NAS benchmarks)."""
    return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)


def _expected_extreme(forced: np.ndarray, group: np.ndarray, slots: int, best: bool) -> float:
    """E[min] (``best``) or E[max] of ``forced`` plus a uniformly random ``slots``-subset of
    ``group``.

    With ``group`` sorted best-first, b_1 .. b_g, the best member of a random m-subset is
    b_j with probability C(g - j, m - 1) / C(g, m), j = 1 .. g - m + 1.
    """
    g = group.size
    ordered = np.sort(group) if best else np.sort(group)[::-1]
    j = np.arange(1, g - slots + 2)
    p = np.exp(_log_comb(g - j, slots - 1) - _log_comb(g, slots))
    candidates = ordered[: j.size]
    if forced.size:
        bound = forced.min() if best else forced.max()
        candidates = np.minimum(candidates, bound) if best else np.maximum(candidates, bound)
    return float(np.sum(p * candidates) / np.sum(p))


def _precision(scores, truth, k, bottom: bool) -> Evaluation:
    s, t, dropped = finite_pairs(scores, truth)
    kk = resolve_k(k, s.size)
    if bottom:
        s, t = -s, -t
    overlap = float(np.sum(_membership(s, kk) * _membership(t, kk)))
    return Evaluation(overlap / kk, s.size, dropped, kk)


def precision_at_top_k(scores, truth, k: int | float) -> Evaluation:
    """P@topK (Ning et al., NeurIPS 2021): the fraction of the predicted top-K that is in the
    true top-K.

    ``P@topK = |{i : i in top_K(scores)} ∩ {i : i in top_K(truth)}| / K``, in [0, 1], higher
    is better. ``k``: int count or float ratio (``K = ceil(ratio * N)``). Ties at either
    cut-off: expected value under random tie-breaking (see module docstring).
    """
    return _precision(scores, truth, k, bottom=False)


def precision_at_bottom_k(scores, truth, k: int | float) -> Evaluation:
    """P@bottomK (Ning et al., NeurIPS 2021): the fraction of the predicted bottom-K (lowest
    scores) that is in the true bottom-K (lowest truth). In [0, 1], higher is better."""
    return _precision(scores, truth, k, bottom=True)


def _rank_at_k(scores, truth, k, best: bool) -> Evaluation:
    s, t, dropped = finite_pairs(scores, truth)
    n = s.size
    kk = resolve_k(k, n)
    ranks = _true_ranks(t)
    above, tied, slots = _top_k_split(s, kk)
    value = _expected_extreme(ranks[above], ranks[tied], slots, best)
    return Evaluation(value / n, n, dropped, kk)


def best_rank_at_k(scores, truth, k: int | float) -> Evaluation:
    """BR@K (Ning et al., NeurIPS 2021): the best true rank among the predicted top-K, / N.

    ``BR@K = min_{i in top_K(scores)} rank_i / N`` with ``rank_i = 1 + #{j : truth_j >
    truth_i}`` (rank 1 = the truly best architecture). Values lie in [1/N, 1]; lower is
    better; BR@K = 1/N means the truly best architecture is among the predicted top-K. This
    matches aw_nas ``minmax_n_at_k`` (``(min rank0 + 1) / N`` with 0-based ranks). Ties in
    ``scores`` at the cut-off: expected value under random tie-breaking.
    """
    return _rank_at_k(scores, truth, k, best=True)


def worst_rank_at_k(scores, truth, k: int | float) -> Evaluation:
    """WR@K (Ning et al., NeurIPS 2021): the worst true rank among the predicted top-K, / N.

    ``WR@K = max_{i in top_K(scores)} rank_i / N``, ranks as in :func:`best_rank_at_k`
    (1 = best). In [1/N, 1]; lower is better; a perfect proxy gives WR@K = K/N.
    """
    return _rank_at_k(scores, truth, k, best=False)


def kendall_tau_top_k(scores, truth, k: int | float) -> Evaluation:
    """Kendall's tau-b within the predicted top-K (Ning et al., NeurIPS 2021; aw_nas
    ``p_at_tb_k``): ``kendall_tau(scores[S], truth[S])`` with S the K highest scores.

    Every architecture whose score equals the K-th highest score is kept, so ``|S| >= K``;
    ``Evaluation.k`` holds |S|. NaN when |S| < 2 or either side is constant on S.
    """
    s, t, dropped = finite_pairs(scores, truth)
    kk = resolve_k(k, s.size)
    above, tied, _ = _top_k_split(s, kk)
    chosen = above | tied
    inner = kendall_tau(s[chosen], t[chosen])
    return Evaluation(inner.value, s.size, dropped, int(np.count_nonzero(chosen)))


# -- tables --------------------------------------------------------------------------------

#: Metrics over all pairs, by name.
METRICS: dict[str, Callable[..., Evaluation]] = {
    "kendall_tau": kendall_tau,
    "spearman_rho": spearman_rho,
    "pearson_r": pearson_r,
}

#: Metrics that take a K, by name.
K_METRICS: dict[str, Callable[..., Evaluation]] = {
    "precision_at_top_k": precision_at_top_k,
    "precision_at_bottom_k": precision_at_bottom_k,
    "best_rank_at_k": best_rank_at_k,
    "worst_rank_at_k": worst_rank_at_k,
    "kendall_tau_top_k": kendall_tau_top_k,
}

DEFAULT_TABLE_METRICS = ("kendall_tau", "spearman_rho", "precision_at_top_k",
                         "best_rank_at_k", "worst_rank_at_k")


def correlation_table(
    scores_by_proxy: Mapping[str, np.ndarray],
    truth,
    metrics: Sequence[str] = DEFAULT_TABLE_METRICS,
    ks: Iterable[int | float] = (0.001, 0.01, 0.05, 0.1),
) -> list[dict]:
    """One row per proxy with every requested metric.

    Args:
      scores_by_proxy: proxy name -> 1-D scores (higher = better), each as long as ``truth``.
      truth: 1-D ground truth (higher = better).
      metrics: names from :data:`METRICS` and :data:`K_METRICS`.
      ks: the K values (counts or ratios) for the metrics in :data:`K_METRICS`.

    Returns:
      A list of dicts, one per proxy in input order: ``"proxy"``, ``"n_used"``,
      ``"n_dropped"`` (finite pairs used / dropped for that proxy), then one float per metric:
      key ``name`` for a correlation, ``f"{name}@{k}"`` for a top-K metric (``k`` as given,
      e.g. ``"precision_at_top_k@0.01"`` or ``"best_rank_at_k@10"``). A top-K entry is NaN
      (instead of an error) when a proxy has no finite pair or fewer than an int ``k``.

    Raises:
      ValueError: for an unknown metric name.
    """
    unknown = [m for m in metrics if m not in METRICS and m not in K_METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS) + sorted(K_METRICS)}")
    ks = tuple(ks)
    rows = []
    for proxy, scores in scores_by_proxy.items():
        _, _, dropped = finite_pairs(scores, truth)
        n_used = int(np.asarray(truth).shape[0]) - dropped
        row: dict = {"proxy": proxy, "n_used": n_used, "n_dropped": dropped}
        for name in metrics:
            if name in METRICS:
                row[name] = METRICS[name](scores, truth).value
            else:
                for k in ks:
                    fits = n_used >= 1 and (not isinstance(k, numbers.Integral) or k <= n_used)
                    row[f"{name}@{k}"] = (K_METRICS[name](scores, truth, k).value if fits
                                          else float("nan"))
        rows.append(row)
    return rows


# -- isomorphism classes -------------------------------------------------------------------


def per_class(scores, truth, class_ids, *, how: str = "representative",
              representatives=None) -> tuple[np.ndarray, np.ndarray]:
    """Reduces architectures to one entry per isomorphism class.

    Isomorphic cells (e.g. NAS-Bench-201 cells that differ only in edges that do not reach
    the output) compute the same function; evaluating over all of them counts each function
    several times. This keeps one entry per class.

    Args:
      scores, truth: 1-D arrays over architectures (NaN allowed; nothing is dropped here, the
        metrics drop non-finite pairs afterwards).
      class_ids: 1-D array of hashable class labels, one per architecture.
      how: ``"representative"`` (default): the scores and truth of one member per class --
        the given representative, else the class's first occurrence in array order.
        ``"mean"``: the mean over the members with a finite value (NaN and +-Inf members are
        skipped), of the scores and, separately, of the truths; NaN when no member is finite.
      representatives: optional, only with ``how="representative"``: for each class in the
        output order, the index of its representative (a sequence of ints), or a mapping
        class id -> index. Each index must belong to its class.

    Returns:
      ``(scores_c, truth_c)``, one entry per class, classes in ascending order of
      ``np.unique(class_ids)``.
    """
    s = _as_1d("scores", scores)
    t = _as_1d("truth", truth)
    c = np.asarray(class_ids)
    if c.ndim != 1 or not (s.shape == t.shape == c.shape):
        raise ValueError(f"scores, truth and class_ids must be 1-D of one length, got shapes "
                         f"{s.shape}, {t.shape}, {c.shape}")
    classes, first, inverse = np.unique(c, return_index=True, return_inverse=True)
    if how == "representative":
        if representatives is None:
            idx = first
        else:
            if isinstance(representatives, Mapping):
                try:
                    idx = np.array([representatives[cl.item() if hasattr(cl, "item") else cl]
                                    for cl in classes], dtype=np.int64)
                except KeyError as e:
                    raise ValueError(f"no representative given for class {e.args[0]!r}") from None
            else:
                idx = np.asarray(representatives, dtype=np.int64)
                if idx.shape != classes.shape:
                    raise ValueError(f"{classes.size} classes but {idx.size} representatives")
            if np.any((idx < 0) | (idx >= c.size)) \
                    or np.any(inverse[idx] != np.arange(classes.size)):
                raise ValueError("each representative index must lie in its own class")
        return s[idx], t[idx]
    if how == "mean":
        return _class_nanmean(s, inverse, classes.size), _class_nanmean(t, inverse, classes.size)
    raise ValueError(f"how must be 'representative' or 'mean', got {how!r}")


def _class_nanmean(x: np.ndarray, inverse: np.ndarray, n_classes: int) -> np.ndarray:
    ok = np.isfinite(x)
    total = np.bincount(inverse[ok], weights=x[ok], minlength=n_classes)
    count = np.bincount(inverse[ok], minlength=n_classes)
    out = np.full(n_classes, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out
