r"""The first command to run: a handful of proxies on a few architectures, against their accuracy.

::

    python -m experiments.quickstart                 # NAS-Bench-201
    python -m experiments.quickstart --space=nb101   # or any space with ground truth

scores a fixed sample of ``--num_archs`` architectures with ground truth (``--sample_seed``)
with a few proxies on the CIFAR-10 batch bundled with the package (no download), prints one row
per architecture (its ground truth and every proxy's score), then each proxy's Spearman rank
correlation with the ground truth on the sample. Scores go to
``<workspace>/results/quickstart.sqlite``, so a second run is instant; ``--store`` puts them
elsewhere. ``--helpshort`` lists the flags.

Network and proxies. The default is the benchmark's network (C=16, N=5) with five proxies
(``synflow``, ``grad_norm``, ``snip``, ``l2_norm``, ``plain``), run *eagerly* (``--compile=eager``
unless ``--compile`` is given): JAX compiles each primitive once per shape and every cell reuses
those kernels, so nothing waits for a whole-program compilation. For eight cells that is the
fastest route. Measured on a quiet two-core CPU in a fresh workspace: eagerly, the first four
cells are stored after 55 s and the table is printed after 71 s (77 s with Python's start-up);
the sweep engine's compile-once supernet (``--compile=auto``, what ``experiments.score`` uses)
first compiles its program for 84 s, then scores a cell in 1.1 s (first four cells at 87 s,
table at 93 s) -- the route for more than a few dozen cells, not for eight. A rerun with the
same flags finds every score in the store and takes seconds.
``--network=channels=4,cells_per_stage=1`` makes everything faster (a tiny network, for a first
look only). Any other proxy (``--proxies``) runs the same way; the network used is printed.
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
from zcjax.evaluate import tables

for _name in common.define("workspace", "store", "space", "dataset", "batch", "proxies",
                           "seeds", "compile", "compilation_cache", "archs"):
    flags.declare_key_flag(_name)

flags.DEFINE_integer("num_archs", 8, "Architectures in the quickstart sample (random, "
                     "--sample_seed) when --archs is not given.")

FLAGS = flags.FLAGS

#: Proxies of the quickstart, when registered (--proxies overrides): those the engine's supernet
#: scores with one program for all cells (see the module docstring), SynFlow first.
QUICK_PROXIES = ("synflow", "grad_norm", "snip", "l2_norm", "plain")
#: How the quickstart runs networks when --compile is not given (see the module docstring).
QUICK_ROUTE = "eager"


@dataclasses.dataclass(frozen=True)
class QuickstartResult:
    archs: list[str]
    truth: np.ndarray
    scores: dict[str, np.ndarray]
    spearman: dict[str, float]
    table: str
    seconds: float
    setting: common.Setting


def run(archs: Sequence[str], proxies: Sequence[str], seeds: Sequence[int],
        setting: common.Setting, store_path: "str | pathlib.Path", compile: str = "auto",
        progress: bool = True) -> QuickstartResult:
    """Scores the architectures (resumable) and builds the printed tables."""
    from zcjax.evaluate import metrics, targets

    start = time.perf_counter()
    space = setting.search_space
    archs = [space.key(a) for a in archs]
    scored = score_script.run(archs, proxies, seeds, setting, store_path, compile=compile,
                              export_csv=False, progress=progress)
    stored, _, _ = common.read_scores(store_path, setting, scored.config_hash,
                                      scored.batch_hash, list(scored.proxies), seeds)
    stored = stored.subset(np.isin(np.asarray(stored.archs, dtype=object), archs))
    truth = targets.ground_truth(None, space, stored.archs)
    spearman = {p: metrics.spearman_rho(common.oriented(p, v), truth.oriented()).value
                for p, v in stored.scores.items()}
    bench = space.benchmark()
    position = {a: i for i, a in enumerate(bench.archs())} if bench is not None else {}
    rows = []
    for i, arch in enumerate(stored.archs):
        row = {"index": position.get(arch, ""), "truth": float(truth.values[i])}
        row.update({p: float(v[i]) for p, v in stored.scores.items()})
        rows.append(row)
    unit = " (%)" if truth.unit == "percent" else ""
    cols = [tables.Column("index", f"{space.name} index"),
            tables.Column("truth", f"{truth.dataset} {truth.name}{unit}", tables.fmt_float(2))]
    cols += [tables.Column(p, p, _fmt_score) for p in stored.scores]
    table = tables.markdown_table(rows, cols)
    corr_rows = [{"proxy": p, "rho": r} for p, r in spearman.items()]
    corr = tables.markdown_table(corr_rows, [
        tables.Column("proxy", "proxy"),
        tables.Column("rho", f"Spearman ρ vs {truth.name} ({len(rows)} architectures)",
                      tables.fmt_float(3))])
    return QuickstartResult(archs=list(stored.archs), truth=truth.values, scores=stored.scores,
                            spearman=spearman, table=table + "\n\n" + corr,
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
            proxies = common.resolve_proxies(FLAGS.proxies, setting.space)
        else:
            applicable = set(common.resolve_proxies("all", setting.space))
            proxies = [p for p in QUICK_PROXIES if p in applicable]
            if not proxies:
                common.fail("none of the quickstart proxies applies here; pass --proxies")
        seeds = common.parse_int_list(FLAGS.seeds, "seed")
        store = (common.store_path(FLAGS.workspace, FLAGS.store) if FLAGS.store
                 else common.results_dir(FLAGS.workspace) / "quickstart.sqlite")
        given = common.flag_given("archs")
        spec = FLAGS.archs if given else f"sample:{FLAGS.num_archs}"
        archs = score_script.select(setting, spec, FLAGS.sample_seed)
        which = f"--archs={FLAGS.archs}" if given else f"a random sample, seed {FLAGS.sample_seed}"
        fields = setting.network_config().fields()
        common.print_block(
            f"zcjax quickstart: {len(archs)} {setting.space} architectures ({which}), proxies "
            f"{', '.join(proxies)}, seeds {seeds}",
            "network: " + ", ".join(f"{k}={v}" for k, v in fields.items())
            + (" (the benchmark's network)" if not setting.network
               else " (--network overrides the benchmark's network)"),
            f"batch: {setting.describe().split('), ', 1)[1]}",
            f"store: {store}", "")
        if FLAGS.compilation_cache:
            workspace.enable_compilation_cache(FLAGS.workspace)
        # Eagerly unless asked: no whole-program compilation for a handful of cells (module doc).
        route = FLAGS.compile if common.flag_given("compile") else QUICK_ROUTE
        result = run(archs, proxies, seeds, setting, store, compile=route)
        common.print_block("", result.table, "",
                           f"{result.seconds:.1f} s in total. Next: python -m experiments.score "
                           "--archs=sample:1000, then python -m experiments.correlate.")
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
