r"""Single-proxy correlation table: how well each stored proxy ranks NB201 architectures.

Reads the score store written by ``experiments.score`` (same ``--workspace`` / ``--store`` and the
same network and data flags, which identify the stored setting), averages each architecture's
score over seeds, and compares every proxy with a ground-truth target::

    python -m experiments.correlate                           # test accuracy, CIFAR-10
    python -m experiments.correlate --target=pgd@Linf:eps=1 --per_class
    python -m experiments.correlate --metrics=kendall_tau,spearman_rho --ks=0.01,0.1

Target (``--target``): any spec of :func:`zcjax.evaluate.targets.target`, e.g. ``test_accuracy``
(NAS-Bench-201, percent), ``clean``, ``fgsm@Linf:eps=1``, ``corruption:all``,
``hrs:pgd@Linf:eps=1``; on ``--target_dataset`` (default: ``--dataset``, the data the proxies
were computed on).

Metrics (defaults as in the literature): Kendall's tau and Spearman's rho over all
architectures (NAS-Bench-Suite-Zero, Krishnakumar et al. 2022; Abdelfattah et al. 2021), and the
top-K criteria of Ning et al. (NeurIPS 2021) at K = 10%: P@topK and P@bottomK (fraction of the
predicted top / bottom K in the true top / bottom K, higher is better), BR@K and WR@K (best and
worst true rank among the predicted top-K divided by N, lower is better). Pearson's r is
available (``--metrics=...,pearson_r``) but off by default: raw proxy values span orders of
magnitude, so a linear correlation on them mostly measures a few outliers.

Proxies whose registry entry says lower scores are better are negated first, so that for every
proxy higher = better. ``--per_class`` keeps one architecture per isomorphism class (the
smallest scored index of each class, or ``--class_reduce=mean``), since isomorphic cells have
the same accuracy and would count one function several times.

Outputs under ``<workspace>/results/`` (``--out_prefix``): ``<prefix>.csv``, ``.md``, ``.tex``
(booktabs) and ``<prefix>_scatter.png`` (one panel per proxy: proxy rank vs target). The Markdown
table is printed.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np
from absl import app, flags

from experiments import common

flags.DEFINE_enum("class_reduce", "representative", ["representative", "mean"],
                  "With --per_class: the class's smallest scored index, or the mean over its "
                  "scored members.")
flags.DEFINE_string(
    "metrics",
    "kendall_tau,spearman_rho,precision_at_top_k,precision_at_bottom_k,best_rank_at_k,"
    "worst_rank_at_k",
    "Metrics (zcjax.evaluate.metrics): kendall_tau, spearman_rho, pearson_r, "
    "precision_at_top_k, precision_at_bottom_k, best_rank_at_k, worst_rank_at_k, "
    "kendall_tau_top_k.")
flags.DEFINE_string("ks", "0.1", "K of the top-K metrics: ratios (0.1) or counts (64), "
                                 "comma-separated.")
flags.DEFINE_enum("scatter_x", "rank", ["rank", "symlog", "linear"],
                  "x axis of the scatter plots: the proxy's percentile rank (readable whatever "
                  "the proxy's scale), or its value on a symlog / linear axis.")

FLAGS = flags.FLAGS

DEFAULT_METRICS = ("kendall_tau", "spearman_rho", "precision_at_top_k",
                   "precision_at_bottom_k", "best_rank_at_k", "worst_rank_at_k")

_HEADERS = {
    # name: (markdown header, LaTeX header); {k} is the formatted K
    "kendall_tau": ("Kendall τ ↑", r"Kendall $\tau\uparrow$"),
    "spearman_rho": ("Spearman ρ ↑", r"Spearman $\rho\uparrow$"),
    "pearson_r": ("Pearson r ↑", r"Pearson $r\uparrow$"),
    "precision_at_top_k": ("P@top{k} ↑", r"P@top{k}$\uparrow$"),
    "precision_at_bottom_k": ("P@bot{k} ↑", r"P@bot{k}$\uparrow$"),
    "best_rank_at_k": ("BR@{k} ↓", r"BR@{k}$\downarrow$"),
    "worst_rank_at_k": ("WR@{k} ↓", r"WR@{k}$\downarrow$"),
    "kendall_tau_top_k": ("τ@top{k} ↑", r"$\tau$@top{k}$\uparrow$"),
}


@dataclasses.dataclass(frozen=True)
class CorrelationResult:
    """What :func:`run` computed and wrote."""

    rows: list[dict]
    markdown: str
    paths: dict[str, pathlib.Path]
    n_archs: int
    target: str
    target_dataset: str
    proxies: tuple[str, ...]


def metric_columns(metrics: Sequence[str], ks: Sequence[int | float]) -> list[common.Column]:
    from zcjax.evaluate import metrics as metrics_lib

    cols = []
    for name in metrics:
        md, tex = _HEADERS.get(name, (name, None))
        if name in metrics_lib.K_METRICS:
            for k in ks:
                label = common.format_k(k)
                tex_label = label.replace("%", r"\%")
                cols.append(common.Column(f"{name}@{k}", md.format(k=label),
                                          common.fmt_float(3),
                                          tex.format(k=tex_label) if tex else None))
        else:
            cols.append(common.Column(name, md, common.fmt_float(3), tex))
    return cols


def check_metrics(metrics: Sequence[str]) -> None:
    from zcjax.evaluate import metrics as metrics_lib

    known = set(metrics_lib.METRICS) | set(metrics_lib.K_METRICS)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        common.fail(f"unknown metrics {unknown}; known: {', '.join(sorted(known))}")
    if not metrics:
        common.fail("no metrics given")


def reduce_per_class(indices: np.ndarray, scores: Mapping[str, np.ndarray], truth: np.ndarray,
                     how: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One entry per isomorphism class of the scored cells (``indices`` sorted ascending, so
    the representative is the smallest scored index of each class)."""
    from zcjax.benchmarks import nb201 as nb201_bench
    from zcjax.evaluate import metrics as metrics_lib

    class_ids = nb201_bench.isomorph_ids()[indices]
    out, truth_c = {}, None
    for p, s in scores.items():
        s_c, truth_c = metrics_lib.per_class(s, truth, class_ids, how=how)
        out[p] = s_c
    if truth_c is None:
        truth_c = metrics_lib.per_class(truth, truth, class_ids, how=how)[1]
    return out, truth_c, np.unique(class_ids)


def sort_rows(rows: list[dict], key: str) -> list[dict]:
    def k(r):
        v = r.get(key, float("nan"))
        return (math.isnan(v), -v if not math.isnan(v) else 0.0)

    return sorted(rows, key=k)


def scatter_grid(path: pathlib.Path, scores: Mapping[str, np.ndarray], truth: np.ndarray,
                 rows: Sequence[Mapping], x_mode: str, y_label: str, title: str) -> None:
    """One panel per proxy (in table order): x = proxy (rank or value), y = target."""
    from scipy import stats

    names = [r["proxy"] for r in rows]
    n = len(names)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = common.new_figure(3.2 * ncols, 2.8 * nrows + 0.4)
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    by_name = {r["proxy"]: r for r in rows}
    size = 4 if truth.size > 2000 else 12
    for i, name in enumerate(names):
        ax = axes[i // ncols][i % ncols]
        s = scores[name]
        ok = np.isfinite(s) & np.isfinite(truth)
        x, y = s[ok], truth[ok]
        if x_mode == "rank":
            x = (stats.rankdata(x) - 0.5) / max(1, x.size) if x.size else x
            ax.set_xlim(0, 1)
            ax.set_xlabel("proxy rank (percentile)")
        else:
            ax.set_xlabel("proxy score")
            if x_mode == "symlog" and x.size:
                nonzero = np.abs(x[x != 0])
                linthresh = float(np.min(nonzero)) if nonzero.size else 1.0
                ax.set_xscale("symlog", linthresh=linthresh)
        ax.scatter(x, y, s=size, alpha=0.5 if y.size > 200 else 0.8, linewidths=0,
                   rasterized=True)
        tau = by_name[name].get("kendall_tau")
        label = name if tau is None or math.isnan(tau) else f"{name}  (τ = {tau:.2f})"
        ax.set_title(label, fontsize=9)
        if i % ncols == 0:
            ax.set_ylabel(y_label)
        ax.tick_params(labelsize=7)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.savefig(path, dpi=130)


def run(store_path: "str | pathlib.Path", setting: common.Setting, prefix: pathlib.Path, *,
        target: str = "test_accuracy", target_dataset: str | None = None,
        proxies: str | Sequence[str] = "all", seeds: Sequence[int] | None = None,
        per_class: bool = False, class_reduce: str = "representative",
        metrics: Sequence[str] = DEFAULT_METRICS, ks: Sequence[int | float] = (0.1,),
        scatter_x: str = "rank", config_hash: str | None = None,
        batch_hash: str | None = None) -> CorrelationResult:
    """Computes the correlation table of the stored proxies and writes tables and plots.

    Args:
      store_path: the score store.
      setting: the scoring setting (network and batch) whose scores are read.
      prefix: output path prefix (``<prefix>.csv`` etc.).
      target, target_dataset: ground truth (see :func:`zcjax.evaluate.targets.target`).
      proxies: ``"all"`` stored proxies, or names.
      seeds: average over these seeds (default: every stored seed).
      per_class, class_reduce: evaluate over isomorphism classes.
      metrics, ks: see :func:`zcjax.evaluate.metrics.correlation_table`.
      scatter_x: ``"rank"``, ``"symlog"`` or ``"linear"``.
      config_hash, batch_hash: read this stored setting instead of ``setting``'s.

    Raises:
      ExperimentError: unknown target or metric, missing store, no scores for the setting,
        stored architectures without ground truth.
    """
    from zcjax.evaluate import metrics as metrics_lib

    check_metrics(metrics)
    target_dataset = target_dataset or setting.canonical_dataset
    target_all = common.load_target(target, target_dataset)
    stored, ch, bh = common.read_scores(store_path, setting, config_hash, batch_hash, proxies, seeds)
    truth = target_all[stored.indices]
    common.check_ground_truth(truth, f"target {target!r} on {target_dataset}")
    scores = {p: common.oriented(p, v) for p, v in stored.scores.items()}
    unit_name = "cells"
    if per_class:
        scores, truth, _ = reduce_per_class(stored.indices, scores, truth, class_reduce)
        unit_name = "isomorphism classes"
    rows = metrics_lib.correlation_table(scores, truth, metrics, ks)
    cols = metric_columns(metrics, ks)
    rows = sort_rows(rows, cols[0].key)
    columns = [common.Column("proxy", "proxy"), common.Column("n_used", "N")] + cols

    n = int(truth.size)
    level = f"{n} {unit_name}" if per_class else f"{n} NB201 cells"
    caption = (f"Zero-cost proxies vs {target} on {target_dataset} over {level} "
               f"({setting.describe() if not config_hash else 'config ' + ch}); "
               "scores averaged over seeds.")
    notes = [
        "N: architectures with a finite score and target (others dropped).",
        "↑ higher is better, ↓ lower is better; BR/WR are true ranks / N among the predicted "
        "top-K (K as a ratio of N, rounded up).",
        "Seeds per proxy: " + "; ".join(f"{p}: {s}" for p, s in stored.seeds.items()) + ".",
        f"config_hash={ch} batch_hash={bh}",
    ]
    paths = common.write_tables(prefix, rows, columns, caption, notes)
    paths["scatter"] = prefix.with_name(prefix.name + "_scatter.png")
    unit = common.target_unit(target)
    y_label = f"{target} ({'%' if unit == 'percent' else 'fraction'})"
    scatter_grid(paths["scatter"], scores, truth, rows, scatter_x, y_label,
                 f"{target} on {target_dataset}, {level}")
    md = common.markdown_table(rows, columns)
    return CorrelationResult(rows=rows, markdown=md, paths=paths, n_archs=n, target=target,
                             target_dataset=target_dataset, proxies=tuple(scores))


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        setting = common.Setting.from_flags()
        seeds = common.analysis_seeds()
        metrics = common.parse_list(FLAGS.metrics)
        ks = common.parse_sizes(FLAGS.ks, "K")
        target_dataset = FLAGS.target_dataset or setting.canonical_dataset
        default = common.default_prefix(
            "correlation", target_dataset, FLAGS.target, f"C{setting.channels}N"
            f"{setting.cells_per_stage}", "classes" if FLAGS.per_class else "")
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        result = run(common.store_path(FLAGS.workspace, FLAGS.store), setting, prefix,
                     target=FLAGS.target, target_dataset=target_dataset, proxies=FLAGS.proxies,
                     seeds=seeds, per_class=bool(FLAGS.per_class), class_reduce=FLAGS.class_reduce,
                     metrics=metrics, ks=ks, scatter_x=FLAGS.scatter_x,
                     config_hash=FLAGS.config_hash, batch_hash=FLAGS.batch_hash)
        common.print_block(
            f"{result.target} on {result.target_dataset}, {result.n_archs} "
            f"{'classes' if FLAGS.per_class else 'cells'}:", "", result.markdown, "",
            *(f"wrote {p}" for p in result.paths.values()))
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
