r"""Proxies as features: random-forest regression of clean and robust accuracy (Lukasik et al.).

After Lukasik, Moeller & Keuper, "An Evaluation of Zero-Cost Proxies -- from Neural Architecture
Performance Prediction to Model Robustness" (GCPR 2023 / IJCV 2024): the stored proxies of every
scored architecture (mean over seeds) form the feature matrix, and a random forest regresses

* ``clean``: clean accuracy from the NB201 robustness dataset (``--clean_target``),
* the robust target (``--robust_target``, default ``pgd@Linf:eps=1``: accuracy under PGD at
  L-inf radius 1/255), and
* ``joint``: both at once (one multi-output forest),

with :func:`zcjax.evaluate.regression.fit_and_evaluate` for each training-set size
(``--train_sizes``, counts or ratios; sizes larger than the data are skipped with a message) and
each split seed (``--fit_seeds``). Example::

    python -m experiments.robustness --train_sizes=20,100,1000,0.8 --fit_seeds=0-2

Why PGD at 1/255 by default: it is the robust objective named in Lukasik et al.'s code release
(README: "clean, pgd@Linf_eps=1.0, clean-pgd@Linf_eps=1.0"); PGD is the standard strong
first-order attack; at 1/255 the CIFAR-10 accuracies of the 6,466 classes still spread
(10th-90th percentile 0.23-0.44; at 2/255 they collapse to a mean of 0.10, at 0.5/255 they stay
near clean accuracy); and it is only weakly rank-correlated with clean accuracy (Kendall tau 0.17,
against 0.63 for FGSM at 1/255), so the robust and joint regressions ask something the clean one
does not.

By default the data are reduced to one architecture per isomorphism class (the robustness
dataset evaluates one cell per class; isomorphic copies would put identical rows on both sides of
a split); ``--noper_class`` keeps every cell.

Outputs under ``<workspace>/results/`` (``--out_prefix``): ``<prefix>.csv / .md / .tex`` (held-out
R^2, Kendall tau and out-of-bag R^2, mean ± std over seeds, per target and training size),
``<prefix>_importance.csv`` and ``<prefix>_importance.png`` (permutation importance with error
bars beside impurity importance, per target, at ``--importance_train_size``, default the largest
size that ran).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import common
from zcjax.evaluate import tables

for _name in common.define("workspace", "store", "space", "dataset", "batch", "proxies",
                           "seeds", "stored", "target_dataset", "output", "per_class", "robust"):
    flags.declare_key_flag(_name)

flags.DEFINE_string("clean_target", "clean",
                    "The clean-accuracy target spec (default: the robustness dataset's clean "
                    "accuracy, measured on the same trained networks as the attacks).")
flags.DEFINE_string("train_sizes", "20,100,1000,0.8",
                    "Training-set sizes: counts (20) or ratios of the usable rows (0.8).")
flags.DEFINE_string("fit_seeds", "0,1,2", "Seeds of the splits and forests (A-B ranges ok).")
flags.DEFINE_integer("n_estimators", 100, "Trees per forest (100 in Lukasik et al.).")
flags.DEFINE_integer("n_repeats", 5, "Shuffles per feature for permutation importance.")
flags.DEFINE_integer("permutation_max_samples", 2000,
                     "At most this many held-out rows for permutation importance.")
flags.DEFINE_integer("n_jobs", 1, "Parallel jobs of the forests (-1: all cores).")
flags.DEFINE_string("importance_train_size", None,
                    "Training size whose feature importances are plotted (default: the largest "
                    "one that ran).")

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    rows: list[dict]
    importance_rows: list[dict]
    markdown: str
    paths: dict[str, pathlib.Path]
    skipped: list[str]
    n_rows: int
    features: tuple[str, ...]
    results: dict  # (target_set, train_size) -> RegressionResult


def _n_train(size: int | float, n: int) -> int:
    return int(size) if isinstance(size, int) else int(np.floor(float(size) * n + 1e-9))


def _size_label(size: int | float) -> str:
    return tables.format_k(size) if isinstance(size, float) else str(size)


def importance_figure(path: pathlib.Path, results: dict, title: str) -> None:
    """Rows: target sets; columns: permutation importance (± std over seeds) and impurity."""
    fig = None
    names = list(results)
    n_feat = len(results[names[0]].feature_names)
    fig = tables.new_figure(10, max(2.2, 0.28 * n_feat + 1.0) * len(names) + 0.4)
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(len(names), 2, squeeze=False)
    for i, name in enumerate(names):
        res = results[name]
        ranking = res.importance_ranking("permutation")
        order = [res.feature_names.index(f) for f, _, _ in ranking][::-1]  # best on top
        labels = [res.feature_names[j] for j in order]
        y = np.arange(len(order))
        for col, (kind, mean, std, color) in enumerate((
                ("permutation importance (held-out R² drop)", res.permutation_importance_mean,
                 res.permutation_importance_std, "tab:blue"),
                ("impurity importance (mean decrease)", res.impurity_importance_mean,
                 res.impurity_importance_std, "tab:orange"))):
            ax = axes[i][col]
            ax.barh(y, mean[order], xerr=std[order], color=color, alpha=0.85,
                    error_kw={"elinewidth": 0.8, "capsize": 2})
            ax.set_yticks(y, labels, fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.axvline(0, color="black", linewidth=0.5)
            ax.set_title(f"{name}: {kind}", fontsize=8)
    fig.savefig(path, dpi=130)


def run(store_path: "str | pathlib.Path", setting: common.Setting, prefix: pathlib.Path, *,
        clean_target: str = "clean", robust_target: str = "pgd@Linf:eps=1",
        target_dataset: str | None = None, proxies: str | Sequence[str] = "all",
        seeds: Sequence[int] | None = None, per_class: bool = True,
        train_sizes: Sequence[int | float] = (20, 100, 1000, 0.8),
        fit_seeds: Sequence[int] = (0, 1, 2), n_estimators: int = 100, n_repeats: int = 5,
        permutation_max_samples: int | None = 2000, n_jobs: int | None = 1,
        importance_train_size: int | float | None = None, config_hash: str | None = None,
        batch_hash: str | None = None, policy: str = "strict", log=print) -> RobustnessResult:
    """Fits and evaluates the forests; writes the regression table and importance chart.

    The robustness targets exist for NAS-Bench-201 only (the robustness dataset of Jung et al.);
    another space is refused with that reason.

    Raises:
      ExperimentError: unknown target, missing store, no scores for the setting, no training
        size that fits the data, a space without robustness data.
    """
    from zcjax.evaluate import regression, targets
    from zcjax.spaces.selection import class_representatives

    if clean_target == robust_target:
        common.fail("--clean_target and --robust_target are the same target")
    space = setting.search_space
    stored, ch, bh = common.read_scores(store_path, setting, config_hash, batch_hash, proxies,
                                        seeds, policy)
    if per_class:  # the first scored member of each class, in the benchmark's order
        keep = set(class_representatives(space, stored.archs))
        stored = stored.subset(np.array([a in keep for a in stored.archs]))
    try:
        truth = {t: targets.ground_truth(t, space, stored.archs,
                                         target_dataset or setting.dataset_name)
                 for t in (clean_target, robust_target)}
    except ValueError as e:
        common.fail(str(e))
    clean, robust = truth[clean_target].values, truth[robust_target].values
    target_dataset = truth[clean_target].dataset
    for t, gt in truth.items():
        if gt.values.size and not np.isfinite(gt.values).any():
            common.fail(f"none of the {gt.values.size} stored architectures has a value for "
                        f"{t} on {target_dataset}")
    usable_features = {p: v for p, v in stored.scores.items() if np.isfinite(v).any()}
    dropped_features = sorted(set(stored.scores) - set(usable_features))
    for p in dropped_features:
        log(f"proxy {p} has no finite score: left out of the features")
    if not usable_features:
        common.fail("no proxy has a finite score for this setting")
    X, feature_names = regression.stack_features(usable_features)
    target_sets = {
        "clean": (np.stack([clean], 1), (clean_target,)),
        "robust": (np.stack([robust], 1), (robust_target,)),
        "joint": (np.stack([clean, robust], 1), (clean_target, robust_target)),
    }
    rows, skipped, results = [], [], {}
    for set_name, (Y, names) in target_sets.items():
        usable = int(np.sum(np.all(np.isfinite(X), 1) & np.all(np.isfinite(Y), 1)))
        for size in train_sizes:
            n_train = _n_train(size, usable)
            if not 2 <= n_train <= usable - 2:
                msg = (f"{set_name}: train size {_size_label(size)} skipped: {n_train} "
                       f"training rows of {usable} usable (need >= 2 on each side)")
                skipped.append(msg)
                log(msg)
                continue
            res = regression.fit_and_evaluate(
                X, Y, feature_names, train_size=size, seeds=fit_seeds, target_names=names,
                n_estimators=n_estimators, n_repeats=n_repeats,
                permutation_max_samples=permutation_max_samples, n_jobs=n_jobs)
            results[(set_name, size)] = res
            for j, out in enumerate(names):
                rows.append({
                    "target": set_name, "output": out, "train_size": _size_label(size),
                    "n_train": res.per_seed[0].n_train, "n_test": res.per_seed[0].n_test,
                    "r2": (float(res.r2_mean[j]), float(res.r2_std[j])),
                    "kendall_tau": (float(res.kendall_tau_mean[j]),
                                    float(res.kendall_tau_std[j])),
                    "oob_r2": (res.oob_r2_mean, res.oob_r2_std),
                })
    if not rows:
        common.fail(f"no training size fits the {X.shape[0]} scored architectures: "
                    + "; ".join(skipped))
    columns = [
        tables.Column("target", "target"), tables.Column("output", "output"),
        tables.Column("train_size", "train"), tables.Column("n_train", "n_train"),
        tables.Column("n_test", "n_test"),
        tables.Column("r2", "R² ↑", tables.fmt_mean_std(3), r"$R^2\uparrow$"),
        tables.Column("kendall_tau", "Kendall τ ↑", tables.fmt_mean_std(3),
                      r"Kendall $\tau\uparrow$"),
        tables.Column("oob_r2", "OOB R² ↑", tables.fmt_mean_std(3), r"OOB $R^2\uparrow$"),
    ]
    level = "isomorphism classes" if per_class else "cells"
    caption = (f"Random-forest regression from {len(feature_names)} zero-cost proxies to "
               f"{clean_target} and {robust_target} on {target_dataset} ({X.shape[0]} {level}); "
               f"held-out R², Kendall τ and out-of-bag R², mean ± std over "
               f"{len(tuple(fit_seeds))} seeds.")
    notes = [f"Features: {', '.join(feature_names)}.",
             "joint: one multi-output forest for both targets; its OOB R² is the mean over "
             "the two outputs.",
             *skipped,
             *(f"Left out (no finite score): {p}." for p in dropped_features),
             f"config_hash={ch} batch_hash={bh}"]
    paths = tables.write_tables(prefix, rows, columns, caption, notes)

    # Feature importance at one training size.
    ran_sizes = [s for s in train_sizes if any((t, s) in results for t in target_sets)]
    if importance_train_size is None:
        n_of = {s: max(results[(t, s)].per_seed[0].n_train for t in target_sets
                       if (t, s) in results) for s in ran_sizes}
        imp_size = max(ran_sizes, key=lambda s: n_of[s])
    else:
        matches = [s for s in ran_sizes if s == importance_train_size]
        if not matches:
            common.fail(f"--importance_train_size {importance_train_size} did not run; ran: "
                        f"{[_size_label(s) for s in ran_sizes]}")
        imp_size = matches[0]
    imp_results = {t: results[(t, imp_size)] for t in target_sets if (t, imp_size) in results}
    imp_rows = []
    for t, res in imp_results.items():
        for j, f in enumerate(res.feature_names):
            imp_rows.append({"target": t, "train_size": _size_label(imp_size), "proxy": f,
                             "permutation": (float(res.permutation_importance_mean[j]),
                                             float(res.permutation_importance_std[j])),
                             "impurity": (float(res.impurity_importance_mean[j]),
                                          float(res.impurity_importance_std[j]))})
    imp_prefix = prefix.with_name(prefix.name + "_importance")
    paths["importance_csv"] = imp_prefix.with_name(imp_prefix.name + ".csv")
    tables.write_csv(paths["importance_csv"], imp_rows, [
        tables.Column("target", "target"), tables.Column("train_size", "train"),
        tables.Column("proxy", "proxy"), tables.Column("permutation", "permutation"),
        tables.Column("impurity", "impurity")])
    paths["importance_png"] = imp_prefix.with_name(imp_prefix.name + ".png")
    importance_figure(paths["importance_png"], imp_results,
                      f"Feature importance, train size {_size_label(imp_size)}, "
                      f"{target_dataset} ({X.shape[0]} {level}); mean ± std over seeds")
    return RobustnessResult(rows=rows, importance_rows=imp_rows,
                            markdown=tables.markdown_table(rows, columns), paths=paths,
                            skipped=skipped, n_rows=int(X.shape[0]),
                            features=tuple(feature_names), results=results)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        setting = common.Setting.from_flags()
        seeds = common.analysis_seeds()
        per_class = True if FLAGS.per_class is None else bool(FLAGS.per_class)
        sizes = common.parse_sizes(FLAGS.train_sizes, "train size")
        imp = (common.parse_sizes(FLAGS.importance_train_size, "train size")[0]
               if FLAGS.importance_train_size else None)
        target_dataset = FLAGS.target_dataset or setting.dataset_name
        default = tables.default_prefix("robustness", setting.short(), target_dataset,
                                        FLAGS.robust_target, "" if per_class else "cells")
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        result = run(common.store_path(FLAGS.workspace, FLAGS.store), setting, prefix,
                     clean_target=FLAGS.clean_target, robust_target=FLAGS.robust_target,
                     target_dataset=target_dataset, proxies=FLAGS.proxies, seeds=seeds,
                     per_class=per_class, train_sizes=sizes,
                     fit_seeds=common.parse_int_list(FLAGS.fit_seeds, "fit seed"),
                     n_estimators=FLAGS.n_estimators, n_repeats=FLAGS.n_repeats,
                     permutation_max_samples=FLAGS.permutation_max_samples,
                     n_jobs=FLAGS.n_jobs, importance_train_size=imp,
                     config_hash=FLAGS.config_hash, batch_hash=FLAGS.batch_hash,
                     policy=FLAGS.nonfinite)
        common.print_block(
            f"{result.n_rows} architectures, features: {', '.join(result.features)}", "",
            result.markdown, "", *(f"wrote {p}" for p in result.paths.values()))
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
