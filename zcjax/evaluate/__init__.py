"""Evaluating zero-cost proxies against ground truth.

* :mod:`zcjax.evaluate.metrics` -- NaN-aware ranking metrics (Kendall tau, Spearman rho,
  Pearson r, P@topK / P@bottomK, BR@K / WR@K, Kendall tau in the top-K), a per-proxy table,
  and reduction to isomorphism classes.
* :mod:`zcjax.evaluate.targets` -- accuracy and robustness targets over NAS-Bench-201
  (clean, adversarial, common corruptions, harmonic robustness score) from spec strings.
* :mod:`zcjax.evaluate.regression` -- random-forest regression from proxies to targets, with
  held-out R^2 / Kendall tau and impurity / permutation feature importance.
* :mod:`zcjax.evaluate.oneshot` -- the one-shot estimator analyses of Ning et al. (NeurIPS
  2021): criteria over training epochs, bias, variance across seeds and isomorphic cells,
  one-shot and zero-shot estimators side by side and combined.
"""

from zcjax.evaluate import metrics, oneshot, regression, targets
from zcjax.evaluate.metrics import (
    Evaluation,
    best_rank_at_k,
    correlation_table,
    kendall_tau,
    kendall_tau_top_k,
    pearson_r,
    per_class,
    precision_at_bottom_k,
    precision_at_top_k,
    spearman_rho,
    worst_rank_at_k,
)
from zcjax.evaluate.regression import RegressionResult, SeedResult, fit_and_evaluate, stack_features
from zcjax.evaluate.targets import (
    CORRUPTION_GROUPS,
    TARGET_EXAMPLES,
    corruption_mean,
    hrs,
    parse_target,
    target,
)

__all__ = [
    "metrics", "oneshot", "regression", "targets",
    "Evaluation", "kendall_tau", "spearman_rho", "pearson_r", "precision_at_top_k",
    "precision_at_bottom_k", "best_rank_at_k", "worst_rank_at_k", "kendall_tau_top_k",
    "correlation_table", "per_class",
    "RegressionResult", "SeedResult", "fit_and_evaluate", "stack_features",
    "CORRUPTION_GROUPS", "TARGET_EXAMPLES", "corruption_mean", "hrs", "parse_target", "target",
]
