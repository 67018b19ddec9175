r"""Single-proxy correlation table: how well each stored proxy ranks a space's architectures.

Reads the score store written by ``experiments.score`` (same ``--workspace`` / ``--store`` and the
same space, network and data flags, which identify the stored setting), reduces each
architecture's seeds to one score (``--nonfinite``), and compares every proxy with the ground
truth::

    python -m experiments.correlate                           # NB201 test accuracy, CIFAR-10
    python -m experiments.correlate --space=nb101             # NB101 validation accuracy
    python -m experiments.correlate --target=pgd@Linf:eps=1 --per_class
    python -m experiments.correlate --metrics=kendall_tau,spearman_rho --ks=0.01,0.1

Target (``--target``, :func:`zcjax.evaluate.targets.ground_truth`): a metric of the space's
benchmark (default: its first), or on NB201 a robustness spec (``clean``, ``fgsm@Linf:eps=1``,
``corruption:all``, ``hrs:pgd@Linf:eps=1``); on ``--target_dataset`` (default: ``--dataset``, the
data the proxies were computed on). A metric where lower is better (an error, a perplexity) is
negated for the rank metrics, so that for every row higher = better.

Metrics (defaults as in the literature): Kendall's tau and Spearman's rho over all
architectures (NAS-Bench-Suite-Zero, Krishnakumar et al. 2022; Abdelfattah et al. 2021), and the
top-K criteria of Ning et al. (NeurIPS 2021) at K = 10%: P@topK and P@bottomK (fraction of the
predicted top / bottom K in the true top / bottom K, higher is better), BR@K and WR@K (best and
worst true rank among the predicted top-K divided by N, lower is better). Pearson's r is
available (``--metrics=...,pearson_r``) but off by default: raw proxy values span orders of
magnitude, so a linear correlation on them mostly measures a few outliers.

Proxies whose registry entry says lower scores are better are negated first, so that for every
proxy higher = better. ``--per_class`` keeps one architecture per isomorphism class (the first
scored member of each class in the benchmark's order, or ``--class_reduce=mean``), since
isomorphic cells have the same accuracy and would count one function several times. Each row
says on how many architectures it is computed (N) and how many were dropped for a non-finite
score; ``--eval_cells=common`` evaluates every proxy on the same architectures. Published values
(:mod:`zcjax.evaluate.published`) are printed beside the reproduced Spearman's rho.

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
from zcjax.evaluate import tables

for _name in common.define("workspace", "store", "space", "dataset", "batch", "proxies",
                           "seeds", "stored", "eval_cells", "target", "target_dataset", "output",
                           "per_class"):
    flags.declare_key_flag(_name)

flags.DEFINE_enum("class_reduce", "representative", ["representative", "mean"],
                  "With --per_class: the class's first scored member, or the mean over its "
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


def metric_columns(metrics: Sequence[str], ks: Sequence[int | float]) -> list[tables.Column]:
    from zcjax.evaluate import metrics as metrics_lib

    cols = []
    for name in metrics:
        md, tex = _HEADERS.get(name, (name, None))
        if name in metrics_lib.K_METRICS:
            for k in ks:
                label = tables.format_k(k)
                tex_label = label.replace("%", r"\%")
                cols.append(tables.Column(f"{name}@{k}", md.format(k=label),
                                          tables.fmt_float(3),
                                          tex.format(k=tex_label) if tex else None))
        else:
            cols.append(tables.Column(name, md, tables.fmt_float(3), tex))
    return cols


def check_metrics(metrics: Sequence[str]) -> None:
    from zcjax.evaluate import metrics as metrics_lib

    known = set(metrics_lib.METRICS) | set(metrics_lib.K_METRICS)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        common.fail(f"unknown metrics {unknown}; known: {', '.join(sorted(known))}")
    if not metrics:
        common.fail("no metrics given")


def class_ids(space, archs: Sequence[str]) -> np.ndarray:
    """An integer per architecture, equal for isomorphic ones (:meth:`SearchSpace.canonical`)."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(space.canonical(space.as_arch(a)), len(ids)) for a in archs])


def reduce_per_class(ids: np.ndarray, scores: Mapping[str, np.ndarray], truth: np.ndarray,
                     how: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One entry per isomorphism class (the first member in the given order, or the mean)."""
    from zcjax.evaluate import metrics as metrics_lib

    out, truth_c = {}, metrics_lib.per_class(truth, truth, ids, how=how)[1]
    for p, s in scores.items():
        out[p] = metrics_lib.per_class(s, truth, ids, how=how)[0]
    return out, truth_c


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
    fig = tables.new_figure(3.2 * ncols, 2.8 * nrows + 0.4)
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
        target: str | None = None, target_dataset: str | None = None,
        proxies: str | Sequence[str] = "all", seeds: Sequence[int] | None = None,
        per_class: bool = False, class_reduce: str = "representative",
        metrics: Sequence[str] = DEFAULT_METRICS, ks: Sequence[int | float] = (0.1,),
        scatter_x: str = "rank", config_hash: str | None = None,
        batch_hash: str | None = None, policy: str = "strict",
        cells: str = "pairwise") -> CorrelationResult:
    """Computes the correlation table of the stored proxies and writes tables and plots.

    Args:
      store_path: the score store.
      setting: the scoring setting (space, network and batch) whose scores are read.
      prefix: output path prefix (``<prefix>.csv`` etc.).
      target, target_dataset: ground truth (:func:`zcjax.evaluate.targets.ground_truth`).
      proxies: ``"all"`` stored proxies, or names.
      seeds: reduce over these seeds (default: every stored seed).
      per_class, class_reduce: evaluate over isomorphism classes.
      metrics, ks: see :func:`zcjax.evaluate.metrics.correlation_table`.
      scatter_x: ``"rank"``, ``"symlog"`` or ``"linear"``.
      config_hash, batch_hash: read this stored setting instead of ``setting``'s.
      policy: non-finite seeds (:mod:`zcjax.evaluate.stored`).
      cells: ``"pairwise"`` or ``"common"`` (module doc).

    Raises:
      ExperimentError: unknown target or metric, missing store, no scores for the setting,
        stored architectures without ground truth.
    """
    from zcjax.evaluate import metrics as metrics_lib
    from zcjax.evaluate import published, targets
    from zcjax.evaluate.stored import common_cells

    check_metrics(metrics)
    space = setting.search_space
    stored, ch, bh = common.read_scores(store_path, setting, config_hash, batch_hash, proxies,
                                        seeds, policy)
    try:
        truth = targets.ground_truth(target, space, stored.archs,
                                     target_dataset or setting.dataset_name)
    except ValueError as e:
        common.fail(str(e))
    if truth.values.size and not np.isfinite(truth.values).any():
        common.fail(f"none of the {truth.values.size} stored architectures has a value for "
                    f"{truth.name} on {truth.dataset}: the stored architectures and the ground "
                    "truth do not match")
    scores = {p: common.oriented(p, v) for p, v in stored.scores.items()}
    values = truth.oriented()
    if cells == "common":
        keep = common_cells(scores, values)
        scores = {p: np.where(keep, v, np.nan) for p, v in scores.items()}
    unit_name = f"{space.name} architectures"
    if per_class:
        scores, values = reduce_per_class(class_ids(space, stored.archs), scores, values,
                                          class_reduce)
        unit_name = "isomorphism classes"
    rows = metrics_lib.correlation_table(scores, values, metrics, ks)
    for row in rows:
        row["dropped"] = stored.counts[row["proxy"]]["nonfinite"]
        row["published"] = published.spearman(space.name, row["proxy"])
    cols = metric_columns(metrics, ks)
    rows = sort_rows(rows, cols[0].key)
    columns = [tables.Column("proxy", "proxy"), tables.Column("n_used", "N"),
               tables.Column("dropped", "non-finite")] + cols
    if any(r["published"] is not None for r in rows):
        columns.append(tables.Column("published", "published ρ", tables.fmt_float(2)))

    n = int(values.size)
    caption = (f"Zero-cost proxies vs {truth.name} on {truth.dataset} over {n} {unit_name} "
               f"({setting.describe() if not config_hash else 'config ' + ch}); seeds reduced "
               f"under the '{policy}' policy.")
    notes = [
        "N: architectures with a finite score and target"
        + (" (the same for every proxy: --eval_cells=common)." if cells == "common" else ".")
        + " non-finite: architectures whose score is NaN or infinite"
        + (" on some seed." if policy == "strict" else " on every seed."),
        "↑ higher is better, ↓ lower is better; BR/WR are true ranks / N among the predicted "
        "top-K (K as a ratio of N, rounded up).",
        "Seeds per proxy: " + "; ".join(f"{p}: {s}" for p, s in stored.seeds.items()) + ".",
        f"config_hash={ch} batch_hash={bh}",
    ]
    if any(r["published"] is not None for r in rows):
        notes.append("Published ρ: " + "; ".join(published.sources(space.name)) + ".")
    paths = tables.write_tables(prefix, rows, columns, caption, notes)
    paths["scatter"] = prefix.with_name(prefix.name + "_scatter.png")
    unit = {"percent": " (%)", "fraction": " (fraction)"}.get(truth.unit, "")
    scatter_grid(paths["scatter"], scores,
                 truth.values if not per_class else values if truth.higher_is_better else -values,
                 rows, scatter_x, f"{truth.name}{unit}",
                 f"{truth.name} on {truth.dataset}, {n} {unit_name}")
    md = tables.markdown_table(rows, columns)
    return CorrelationResult(rows=rows, markdown=md, paths=paths, n_archs=n, target=truth.name,
                             target_dataset=truth.dataset, proxies=tuple(scores))


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        setting = common.Setting.from_flags()
        metrics = common.parse_list(FLAGS.metrics)
        ks = common.parse_sizes(FLAGS.ks, "K")
        default = tables.default_prefix(
            "correlation", setting.short(), FLAGS.target or "", FLAGS.target_dataset or "",
            "classes" if FLAGS.per_class else "")
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        result = run(common.store_path(FLAGS.workspace, FLAGS.store), setting, prefix,
                     target=FLAGS.target, target_dataset=FLAGS.target_dataset,
                     proxies=FLAGS.proxies, seeds=common.analysis_seeds(),
                     per_class=bool(FLAGS.per_class), class_reduce=FLAGS.class_reduce,
                     metrics=metrics, ks=ks, scatter_x=FLAGS.scatter_x,
                     config_hash=FLAGS.config_hash, batch_hash=FLAGS.batch_hash,
                     policy=FLAGS.nonfinite, cells=FLAGS.eval_cells)
        common.print_block(
            f"{result.target} on {result.target_dataset}, {result.n_archs} "
            f"{'classes' if FLAGS.per_class else 'architectures'}:", "", result.markdown, "",
            *(f"wrote {p}" for p in result.paths.values()))
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
