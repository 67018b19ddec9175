"""Random-forest regression from zero-cost proxies to accuracy and robustness targets.

After Lukasik, Moeller & Keuper, "An Evaluation of Zero-Cost Proxies -- from Neural
Architecture Performance Prediction to Model Robustness" (GCPR 2023, arXiv:2307.09365;
extended in IJCV 2024). There, the proxies of every non-isomorphic NAS-Bench-201 cell form the
feature matrix and a random forest (scikit-learn ``RandomForestRegressor``, 100 trees,
bootstrap with out-of-bag score) regresses clean accuracy, one robust accuracy, or both jointly
(one multi-output forest); feature importance is read from the mean decrease in impurity.
Their public script (github.com/jovitalukasik/zcp_eval, ``random_forest.py``) uses one 80/20
split with ``random_state=42``.

:func:`fit_and_evaluate` generalises that protocol: several seeds (each seed draws the split
and seeds the forest), a training set given as a count (few-shot: 20, 100, 1000 cells) or a
ratio (0.8), and, per seed, on the held-out cells:

* R^2 per target, ``1 - sum (y - y_hat)^2 / sum (y - mean y)^2`` (``sklearn.metrics.r2_score``);
* Kendall's tau-b per target between predictions and truth;
* the out-of-bag R^2 (``oob_score_``, averaged over targets for a joint target) when
  ``bootstrap`` is on;
* impurity importance (mean decrease in impurity, ``feature_importances_``, sums to 1);
* permutation importance (``sklearn.inspection.permutation_importance`` on the held-out set:
  the mean drop of the forest's R^2 -- averaged over targets for a joint target -- when one
  feature column is shuffled, over ``n_repeats`` shuffles).

Summaries are mean and standard deviation over seeds (``np.std``, ddof=0).
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Mapping, Sequence

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.metrics import r2_score

from zcjax.evaluate.metrics import kendall_tau

__all__ = ["SeedResult", "RegressionResult", "fit_and_evaluate", "stack_features"]


@dataclasses.dataclass(frozen=True)
class SeedResult:
    """What one seed's split and forest gave.

    Attributes:
      seed: the seed of the split and of the forest.
      n_train, n_test: cells in the training and the held-out set.
      r2: (T,) held-out R^2 per target.
      kendall_tau: (T,) held-out Kendall tau-b per target.
      oob_r2: out-of-bag R^2 (mean over targets), NaN without bootstrap.
      impurity_importance: (F,) mean decrease in impurity per feature.
      permutation_importance: (F,) mean over repeats of the held-out R^2 drop per feature.
      permutation_importance_std: (F,) its standard deviation over the repeats.
    """

    seed: int
    n_train: int
    n_test: int
    r2: np.ndarray
    kendall_tau: np.ndarray
    oob_r2: float
    impurity_importance: np.ndarray
    permutation_importance: np.ndarray
    permutation_importance_std: np.ndarray


def _mean_std(values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in values])
    return stacked.mean(axis=0), stacked.std(axis=0)


@dataclasses.dataclass(frozen=True)
class RegressionResult:
    """Results over seeds; ``*_mean`` / ``*_std`` are over seeds (ddof=0).

    Attributes:
      feature_names: (F,) names of the feature columns.
      target_names: (T,) names of the targets.
      n_used: rows with all features and targets finite.
      n_dropped: rows dropped for a NaN / +-Inf feature or target.
      per_seed: one :class:`SeedResult` per seed, in the order given.
    """

    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    n_used: int
    n_dropped: int
    per_seed: tuple[SeedResult, ...]

    def _field(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return _mean_std([getattr(s, name) for s in self.per_seed])

    @property
    def r2_mean(self) -> np.ndarray:
        """(T,) mean held-out R^2 per target."""
        return self._field("r2")[0]

    @property
    def r2_std(self) -> np.ndarray:
        return self._field("r2")[1]

    @property
    def kendall_tau_mean(self) -> np.ndarray:
        """(T,) mean held-out Kendall tau per target."""
        return self._field("kendall_tau")[0]

    @property
    def kendall_tau_std(self) -> np.ndarray:
        return self._field("kendall_tau")[1]

    @property
    def oob_r2_mean(self) -> float:
        return float(self._field("oob_r2")[0])

    @property
    def oob_r2_std(self) -> float:
        return float(self._field("oob_r2")[1])

    @property
    def impurity_importance_mean(self) -> np.ndarray:
        return self._field("impurity_importance")[0]

    @property
    def impurity_importance_std(self) -> np.ndarray:
        return self._field("impurity_importance")[1]

    @property
    def permutation_importance_mean(self) -> np.ndarray:
        return self._field("permutation_importance")[0]

    @property
    def permutation_importance_std(self) -> np.ndarray:
        """Standard deviation over seeds of the per-seed mean permutation importance."""
        return self._field("permutation_importance")[1]

    def importance_ranking(self, kind: str = "permutation") -> list[tuple[str, float, float]]:
        """``[(feature, mean, std), ...]`` sorted by decreasing mean importance.

        Args:
          kind: ``"permutation"`` or ``"impurity"``.
        """
        if kind == "permutation":
            mean, std = self.permutation_importance_mean, self.permutation_importance_std
        elif kind == "impurity":
            mean, std = self.impurity_importance_mean, self.impurity_importance_std
        else:
            raise ValueError(f"kind must be 'permutation' or 'impurity', got {kind!r}")
        order = np.argsort(-mean, kind="stable")
        return [(self.feature_names[i], float(mean[i]), float(std[i])) for i in order]

    def summary(self) -> dict:
        """A flat, JSON-friendly dict of the means and standard deviations."""
        out: dict = {"n_used": self.n_used, "n_dropped": self.n_dropped,
                     "n_train": self.per_seed[0].n_train, "n_test": self.per_seed[0].n_test,
                     "seeds": [s.seed for s in self.per_seed],
                     "oob_r2_mean": self.oob_r2_mean, "oob_r2_std": self.oob_r2_std}
        for j, name in enumerate(self.target_names):
            out[f"r2_mean[{name}]"] = float(self.r2_mean[j])
            out[f"r2_std[{name}]"] = float(self.r2_std[j])
            out[f"kendall_tau_mean[{name}]"] = float(self.kendall_tau_mean[j])
            out[f"kendall_tau_std[{name}]"] = float(self.kendall_tau_std[j])
        for kind in ("impurity", "permutation"):
            out[f"{kind}_importance"] = {n: {"mean": m, "std": s}
                                         for n, m, s in self.importance_ranking(kind)}
        return out


def stack_features(scores_by_proxy: Mapping[str, np.ndarray],
                   names: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Stacks proxy score arrays as the columns of a feature matrix.

    Args:
      scores_by_proxy: proxy name -> 1-D scores, all of one length.
      names: column order (default: the mapping's order).

    Returns:
      ``(features, names)``: float64 (n, F) and the column names.
    """
    names = tuple(scores_by_proxy) if names is None else tuple(names)
    if not names:
        raise ValueError("no proxies given")
    columns = []
    for n in names:
        col = np.asarray(scores_by_proxy[n], dtype=np.float64)
        if col.ndim != 1:
            raise ValueError(f"proxy {n!r} must be 1-D, got shape {col.shape}")
        columns.append(col)
    lengths = {c.shape[0] for c in columns}
    if len(lengths) != 1:
        raise ValueError("proxies differ in length: "
                         + ", ".join(f"{n}={c.shape[0]}" for n, c in zip(names, columns)))
    return np.stack(columns, axis=1), names


def _resolve_train_size(train_size, n: int) -> int:
    if isinstance(train_size, (bool, np.bool_)):
        raise TypeError("train_size must be an int count or a float ratio, not a bool")
    if isinstance(train_size, numbers.Integral):
        n_train = int(train_size)
    elif isinstance(train_size, numbers.Real):
        ratio = float(train_size)
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"train_size={ratio} as a ratio must be in (0, 1)")
        n_train = int(np.floor(ratio * n + 1e-9))
    else:
        raise TypeError(f"train_size must be an int or a float, got {type(train_size).__name__}")
    if not 2 <= n_train <= n - 2:
        raise ValueError(f"train_size={train_size!r} gives {n_train} training rows of {n} usable "
                         "ones; need at least 2 for training and 2 held out")
    return n_train


def fit_and_evaluate(
    features,
    targets,
    feature_names: Sequence[str],
    train_size: int | float = 0.8,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    target_names: Sequence[str] | None = None,
    n_estimators: int = 100,
    bootstrap: bool = True,
    max_features: float | int | str | None = 1.0,
    n_repeats: int = 5,
    permutation_max_samples: int | None = None,
    n_jobs: int | None = 1,
    **forest_kwargs,
) -> RegressionResult:
    """Fits a random forest per seed and evaluates it on the held-out cells.

    Rows with a NaN or +-Inf in any feature or target are dropped first (counted in
    ``RegressionResult.n_dropped``). For each seed: a random permutation
    (``np.random.default_rng(seed)``) puts ``n_train`` rows in training and the rest in the
    held-out set; ``RandomForestRegressor(n_estimators, bootstrap, oob_score=bootstrap,
    random_state=seed, max_features, n_jobs, **forest_kwargs)`` is fitted (multi-output when
    ``targets`` has several columns: one forest for the joint target, as in Lukasik et al.).

    Args:
      features: (n, F) feature matrix, one column per proxy (see :func:`stack_features`).
      targets: (n,) or (n, T) targets.
      feature_names: F names.
      train_size: int count of training rows (e.g. 20, 100, 1000), or float ratio in (0, 1)
        of the usable rows (``floor(ratio * n)``; 0.8 = the 80/20 split of Lukasik et al.).
        At least 2 rows must remain on each side.
      seeds: one fit per seed.
      target_names: T names (default ``"target0"``, ...).
      n_estimators: trees per forest (100 in Lukasik et al.).
      bootstrap: bootstrap samples per tree; enables the out-of-bag R^2.
      max_features: features tried per split; 1.0 (all) is sklearn's regression default.
      n_repeats: shuffles per feature for permutation importance.
      permutation_max_samples: if set, permutation importance uses at most this many held-out
        rows (a seeded subset) to bound its cost; R^2 and Kendall tau always use them all.
      n_jobs: parallel jobs for the forest and the permutation importance.
      **forest_kwargs: passed on to ``RandomForestRegressor`` (e.g. ``max_depth``).

    Returns:
      A :class:`RegressionResult`.

    Raises:
      ValueError: for mismatched shapes or names, too few usable rows, or empty ``seeds``.
    """
    X = np.asarray(features, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"features must be 2-D (n_cells, n_features), got shape {X.shape}")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(f"targets must be 1-D or 2-D (n_cells, n_targets), got shape {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"features have {X.shape[0]} rows but targets have {Y.shape[0]} "
                         f"(shapes {X.shape} and {np.shape(targets)})")
    feature_names = tuple(feature_names)
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {X.shape[1]} feature columns")
    if target_names is None:
        target_names = tuple(f"target{j}" for j in range(Y.shape[1]))
    target_names = tuple(target_names)
    if len(target_names) != Y.shape[1]:
        raise ValueError(f"{len(target_names)} target names for {Y.shape[1]} target columns")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds is empty")

    keep = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Y), axis=1)
    X, Y = X[keep], Y[keep]
    n = X.shape[0]
    n_dropped = int(keep.size - n)
    n_train = _resolve_train_size(train_size, n)

    results = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        tr, te = order[:n_train], order[n_train:]
        y_tr = Y[tr, 0] if Y.shape[1] == 1 else Y[tr]
        y_te = Y[te, 0] if Y.shape[1] == 1 else Y[te]
        forest = RandomForestRegressor(
            n_estimators=n_estimators, bootstrap=bootstrap, oob_score=bootstrap,
            max_features=max_features, random_state=seed, n_jobs=n_jobs, **forest_kwargs)
        with warnings.catch_warnings():
            # sklearn warns when a tiny training set leaves some row in no out-of-bag sample.
            warnings.simplefilter("ignore", UserWarning)
            forest.fit(X[tr], y_tr)
        pred = forest.predict(X[te]).reshape(len(te), Y.shape[1])
        r2 = np.atleast_1d(r2_score(Y[te], pred, multioutput="raw_values"))
        tau = np.array([kendall_tau(pred[:, j], Y[te, j]).value for j in range(Y.shape[1])])
        oob = float(forest.oob_score_) if bootstrap else float("nan")
        perm_rows = te
        if permutation_max_samples is not None and te.size > permutation_max_samples:
            perm_rows = rng.choice(te, size=int(permutation_max_samples), replace=False)
        y_perm = Y[perm_rows, 0] if Y.shape[1] == 1 else Y[perm_rows]
        perm = permutation_importance(forest, X[perm_rows], y_perm, n_repeats=n_repeats,
                                      random_state=seed, n_jobs=n_jobs)
        results.append(SeedResult(
            seed=seed, n_train=int(tr.size), n_test=int(te.size), r2=r2, kendall_tau=tau,
            oob_r2=oob, impurity_importance=np.asarray(forest.feature_importances_),
            permutation_importance=np.asarray(perm.importances_mean),
            permutation_importance_std=np.asarray(perm.importances_std)))
    return RegressionResult(feature_names=feature_names, target_names=target_names,
                            n_used=n, n_dropped=n_dropped, per_seed=tuple(results))
