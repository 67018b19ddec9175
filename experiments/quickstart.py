r"""The first command to run: a handful of proxies on a few NB201 cells, against their accuracy.

::

    python -m experiments.quickstart

scores a fixed sample of ``--num_archs`` NAS-Bench-201 cells (``--sample_seed``) with a few
proxies on the CIFAR-10 batch bundled with the package (no download), prints one row per cell
(index, NB201 CIFAR-10 test accuracy, every proxy's score), then each proxy's Spearman rank
correlation with accuracy on the sample. Scores go to ``<workspace>/results/quickstart.sqlite``,
so a second run is instant; ``--store`` puts them elsewhere.

Network and proxies. The default is the benchmark's network (C=16, N=5) with the proxies that
the sweep engine's supernet scores exactly (``synflow``, ``grad_norm``, ``snip``, ``l2_norm``,
``plain``): one compiled program serves every cell, so the default run takes about 3 minutes on a
two-core CPU shared with other jobs (measured twice: 2 min 48 s and 3 min 1 s wall, 88-90 s CPU,
most of it the one compilation; 5-8 s per cell after it; a rerun takes seconds). Proxies outside the supernet (``nwot``, ``jacob_cov``,
``params``, ``flops``, ...) compile one program per cell, 40-110 s of CPU time each at C=16,
N=5 and 22-33 s at N=1, so with them pass a shallower network, e.g.
``--proxies=synflow,nwot,jacob_cov --cells_per_stage=1``. The network used is printed.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import common
from experiments import score as score_script

flags.DEFINE_integer("num_archs", 8, "Cells in the quickstart sample (random, --sample_seed); "
                     "--archs (any form of experiments.score) replaces the sample.")

FLAGS = flags.FLAGS

#: Proxies of the quickstart, when registered (--proxies overrides): those the engine's supernet
#: scores with one program for all cells (see the module docstring), SynFlow first.
QUICK_PROXIES = ("synflow", "grad_norm", "snip", "l2_norm", "plain")


@dataclasses.dataclass(frozen=True)
class QuickstartResult:
    indices: list[int]
    accuracy: np.ndarray
    scores: dict[str, np.ndarray]
    spearman: dict[str, float]
    table: str
    seconds: float
    setting: common.Setting


def run(indices: Sequence[int], proxies: Sequence[str], seeds: Sequence[int],
        setting: common.Setting, store_path: "str | pathlib.Path", compile: str = "auto",
        progress: bool = True) -> QuickstartResult:
    """Scores the cells (resumable) and builds the printed tables."""
    from zcjax.benchmarks import nb201 as nb201_bench
    from zcjax.evaluate import metrics

    start = time.perf_counter()
    indices = [int(i) for i in indices]
    scored = score_script.run(indices, proxies, seeds, setting, store_path, compile=compile,
                              export_csv=False, progress=progress)
    store = common.open_store_for_reading(store_path)
    try:
        stored = common.load_scores(store, scored.config_hash, scored.batch_hash,
                                    list(scored.proxies), seeds)
    finally:
        store.close()
    keep = np.isin(stored.indices, indices)
    stored = stored.subset(keep)
    acc = nb201_bench.test_accuracy("cifar10")[stored.indices]
    spearman = {p: metrics.spearman_rho(common.oriented(p, v), acc).value
                for p, v in stored.scores.items()}
    rows = []
    for i, idx in enumerate(stored.indices):
        row = {"index": int(idx), "acc": float(acc[i])}
        row.update({p: float(v[i]) for p, v in stored.scores.items()})
        rows.append(row)
    cols = [common.Column("index", "NB201 index"),
            common.Column("acc", "CIFAR-10 test acc (%)", common.fmt_float(2))]
    cols += [common.Column(p, p, _fmt_score) for p in stored.scores]
    table = common.markdown_table(rows, cols)
    corr_rows = [{"proxy": p, "rho": r} for p, r in spearman.items()]
    corr = common.markdown_table(corr_rows, [
        common.Column("proxy", "proxy"),
        common.Column("rho", f"Spearman ρ vs accuracy ({len(rows)} cells)", common.fmt_float(3))])
    return QuickstartResult(indices=[int(i) for i in stored.indices], accuracy=acc,
                            scores=stored.scores, spearman=spearman,
                            table=table + "\n\n" + corr,
                            seconds=time.perf_counter() - start, setting=setting)


def _fmt_score(v) -> str:
    if v is None or not np.isfinite(v):
        return "nan"
    return f"{v:.4g}"


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        from zcjax import workspace

        setting = common.Setting.from_flags()
        if common.flag_given("proxies"):
            proxies = common.resolve_proxies(FLAGS.proxies)
        else:
            available = set(common.load_all_proxies())
            proxies = [p for p in QUICK_PROXIES if p in available]
            if not proxies:
                common.fail("none of the quickstart proxies is registered; pass --proxies")
        seeds = common.parse_int_list(FLAGS.seeds, "seed")
        store = (common.store_path(FLAGS.workspace, FLAGS.store) if FLAGS.store
                 else common.results_dir(FLAGS.workspace) / "quickstart.sqlite")
        if common.flag_given("archs"):
            indices = common.select_archs(FLAGS.archs, FLAGS.sample_seed)
            which = f"--archs={FLAGS.archs}"
        else:
            indices = common.select_archs(f"sample:{FLAGS.num_archs}", FLAGS.sample_seed)
            which = f"a random sample, seed {FLAGS.sample_seed}"
        reduced = (setting.channels, setting.cells_per_stage) != (16, 5)
        common.print_block(
            f"zcjax quickstart: {len(indices)} NAS-Bench-201 cells ({which}), proxies "
            f"{', '.join(proxies)}, seeds {seeds}",
            f"network: C={setting.channels}, N={setting.cells_per_stage} cells per stage"
            + (" (smaller than the benchmark's C=16, N=5)" if reduced
               else " (the benchmark's network)"),
            f"batch: {setting.describe().split(', ', 1)[1]}",
            f"store: {store}", "")
        if FLAGS.compilation_cache:
            workspace.enable_compilation_cache(FLAGS.workspace)
        result = run(indices, proxies, seeds, setting, store, compile=FLAGS.compile)
        common.print_block("", result.table, "",
                           f"network C={setting.channels}, N={setting.cells_per_stage}; "
                           f"{result.seconds:.1f} s in total. Next: python -m experiments.score "
                           "--archs=sample:1000, then python -m experiments.correlate.")
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
