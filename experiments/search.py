r"""Zero-cost search: sample N architectures, keep the one a proxy scores best, report its accuracy.

The protocol of NASWOT (Mellor et al., ICML 2021), CRoZe (Ha et al., NeurIPS 2023) and the
epsilon proxy (Gracheva 2021): in each of ``--trials`` trials (trial t uses seed t), draw ``--n``
architectures (several sizes allowed: ``--n=10,100``), pick the one with the best (mean over
seeds) score of each proxy, and look up its true accuracy; report mean ± std over trials::

    python -m experiments.search --n=10,100 --trials=50 --proxies=synflow,nwot --combine=rank_sum

Pool (``--pool``): ``store`` samples from the architectures already scored for the setting (fast,
no network is run); ``space`` samples from all 15,625 cells and ``classes`` from the 6,466
isomorphism-class representatives, scoring what the store lacks through the sweep engine first
(resumable, into the same store).

Columns: the pick's ``--target`` (default NB201 test accuracy, %) and ``--robust_target``
(default PGD at 1/255, in %), and the regret: the best ``--target`` in the sample minus the
pick's. Rows: every proxy, ``--combine=rank_sum`` (the architecture with the largest sum of its
per-proxy ranks within the sample, ranks from 1 = worst, ties averaged), ``random`` (a uniformly
random member of the sample), ``sample best`` and ``space best``, which show, in each column
separately, the best value of that column in the sample / in the whole space (so they are
bounds, not one architecture). Ties in a proxy's best score are broken at random (seeded by the
trial).

Outputs under ``<workspace>/results/`` (``--out_prefix``): ``<prefix>.csv / .md / .tex`` and
``<prefix>_trials.csv`` (every trial's pick).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Sequence

import numpy as np
from absl import app, flags
from scipy import stats

from experiments import common
from experiments import score as score_script

flags.DEFINE_integer("trials", 10, "Search trials (trial t samples with seed t).")
flags.DEFINE_string("n", "100", "Architectures sampled per trial; several sizes: 10,100.")
flags.DEFINE_enum("pool", "store", ["store", "space", "classes"],
                  "Where samples come from: the setting's stored architectures, all 15,625 "
                  "cells, or the 6,466 class representatives (space / classes score what is "
                  "missing first).")
flags.DEFINE_enum("combine", None, ["rank_sum"],
                  "Also pick by a combination of all --proxies: rank_sum.")

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class SearchResult:
    rows: list[dict]
    trials: list[dict]
    markdown: str
    paths: dict[str, pathlib.Path]
    pool_size: int


def _pick(values: np.ndarray, rng: np.random.Generator) -> int:
    """Index of the largest finite value; ties broken uniformly at random; -1 if none."""
    ok = np.isfinite(values)
    if not ok.any():
        return -1
    best = np.max(values[ok])
    cands = np.flatnonzero(ok & (values == best))
    return int(cands[rng.integers(cands.size)])


def rank_sum(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Sum over proxies of the within-sample rank (1 = worst, ties averaged); NaN where any
    proxy is NaN."""
    total = np.zeros(len(columns[0]))
    for c in columns:
        r = np.full(c.size, np.nan)
        ok = np.isfinite(c)
        r[ok] = stats.rankdata(c[ok])
        total = total + r
    return total


def run(store_path: "str | pathlib.Path", setting: common.Setting, prefix: pathlib.Path, *,
        proxies: str | Sequence[str] = "all", seeds: Sequence[int] | None = None,
        trials: int = 10, ns: Sequence[int] = (100,), pool: str = "store",
        combine: str | None = None, target: str = "test_accuracy",
        robust_target: str = "pgd@Linf:eps=1", target_dataset: str | None = None,
        score_seeds: Sequence[int] = (0,), compile: str = "auto",
        config_hash: str | None = None, batch_hash: str | None = None,
        progress: bool = True) -> SearchResult:
    """Runs the trials and writes the tables.

    Args:
      proxies: ``"all"`` stored proxies, or names (for ``pool != "store"``, names to score).
      seeds: average scores over these seeds (default: every stored seed).
      pool: ``"store"``, ``"space"`` or ``"classes"`` (see module doc).
      score_seeds, compile: how missing architectures are scored (``pool != "store"``).

    Raises:
      ExperimentError: unknown target, missing store, no scores, N larger than the pool.
    """
    if trials < 1:
        common.fail("--trials must be >= 1")
    if not ns or min(ns) < 1:
        common.fail("--n must be >= 1")
    if combine not in (None, "rank_sum"):
        common.fail(f"unknown --combine {combine!r}; expected rank_sum")
    target_dataset = target_dataset or setting.canonical_dataset
    truth_all = common.load_target(target, target_dataset)
    robust_all = common.load_target(robust_target, target_dataset)
    scale = {target: 100.0 if common.target_unit(target) == "fraction" else 1.0,
             robust_target: 100.0 if common.target_unit(robust_target) == "fraction" else 1.0}

    samples: dict[tuple[int, int], np.ndarray] = {}
    if pool == "store":
        stored, ch, bh = common.read_scores(store_path, setting, config_hash, batch_hash, proxies, seeds)
    else:
        names = common.resolve_proxies(proxies if isinstance(proxies, str) else ",".join(proxies))
        from zcjax.spaces import nb201

        space = (np.arange(nb201.NUM_CELLS) if pool == "space"
                 else np.asarray(nb201.class_representatives()))
        if max(ns) > space.size:
            common.fail(f"--n={max(ns)} exceeds the {space.size} architectures of --pool={pool}")
        for t in range(trials):
            for n in ns:
                rng = np.random.default_rng([t, n])
                samples[(t, n)] = np.sort(rng.choice(space, size=n, replace=False))
        wanted = sorted({int(i) for s in samples.values() for i in s})
        scored = score_script.run(wanted, names, score_seeds, setting, store_path,
                                  compile=compile, export_csv=False, progress=progress)
        store = common.open_store_for_reading(store_path)
        try:
            stored = common.load_scores(store, scored.config_hash, scored.batch_hash, names,
                                        seeds)
        finally:
            store.close()
        ch, bh = scored.config_hash, scored.batch_hash

    names = list(stored.scores)
    columns_all = {p: common.oriented(p, v) for p, v in stored.scores.items()}
    # the pool: stored architectures with a finite score for every proxy
    complete = np.all(np.stack([np.isfinite(c) for c in columns_all.values()]), axis=0)
    pool_idx = np.flatnonzero(complete)
    if pool == "store":
        too_big = [n for n in ns if n > pool_idx.size]
        if too_big:
            common.fail(f"--n={too_big} exceeds the {pool_idx.size} stored architectures with a "
                        "finite score for every proxy; score more (experiments.score) or use "
                        "--pool=space")
        for t in range(trials):
            for n in ns:
                rng = np.random.default_rng([t, n])
                samples[(t, n)] = np.sort(rng.choice(pool_idx, size=n, replace=False))
    else:  # map the sampled NB201 indices to rows of `stored`
        row_of = {int(i): r for r, i in enumerate(stored.indices)}
        samples = {k: np.asarray([row_of[int(i)] for i in v]) for k, v in samples.items()}

    truth_rows = truth_all[stored.indices] * scale[target]
    robust_rows = robust_all[stored.indices] * scale[robust_target]
    methods = list(names) + (["rank_sum"] if combine == "rank_sum" else []) + ["random"]
    trial_rows, table = [], []
    for n in ns:
        picks: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
        bests = []
        for t in range(trials):
            rows = samples[(t, n)]
            rng = np.random.default_rng([t, n, 1])
            truth_s, robust_s = truth_rows[rows], robust_rows[rows]
            sample_best = float(np.nanmax(truth_s)) if np.isfinite(truth_s).any() else np.nan
            bests.append((sample_best, float(np.nanmax(robust_s))
                          if np.isfinite(robust_s).any() else np.nan))
            for m in methods:
                if m == "random":
                    k = int(rng.integers(rows.size))
                elif m == "rank_sum":
                    k = _pick(rank_sum([columns_all[p][rows] for p in names]), rng)
                else:
                    k = _pick(columns_all[m][rows], rng)
                if k < 0:
                    acc = rob = np.nan
                    arch_index = -1
                else:
                    acc, rob = float(truth_s[k]), float(robust_s[k])
                    arch_index = int(stored.indices[rows[k]])
                picks[m].append((acc, rob, sample_best - acc))
                trial_rows.append({"n": n, "trial": t, "method": m, "arch_index": arch_index,
                                   "target": acc, "robust": rob, "sample_best": sample_best})

        def ms(values):
            v = np.asarray(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            return (float(v.mean()), float(v.std())) if v.size else (np.nan, np.nan)

        for m in methods:
            vals = np.asarray(picks[m])
            table.append({"method": m, "n": n, "target": ms(vals[:, 0]),
                          "robust": ms(vals[:, 1]), "regret": ms(vals[:, 2])})
        b = np.asarray(bests)
        table.append({"method": "sample best", "n": n, "target": ms(b[:, 0]),
                      "robust": ms(b[:, 1]), "regret": (0.0, 0.0)})
        table.append({"method": "space best", "n": n,
                      "target": (float(np.nanmax(truth_all)) * scale[target], 0.0),
                      "robust": (float(np.nanmax(robust_all)) * scale[robust_target], 0.0),
                      "regret": (np.nan, np.nan)})

    columns = [
        common.Column("method", "method"), common.Column("n", "N"),
        common.Column("target", f"{target} (%) ↑", common.fmt_mean_std(2)),
        common.Column("robust", f"{robust_target} (%) ↑", common.fmt_mean_std(2)),
        common.Column("regret", "regret ↓", common.fmt_mean_std(2)),
    ]
    caption = (f"Zero-cost search on NB201 ({target_dataset}): the best-scored of N sampled "
               f"architectures, mean ± std over {trials} trials; pool: {pool} "
               f"({pool_idx.size} scored architectures).")
    notes = ["regret: best target in the sample minus the pick's.",
             "sample best / space best: the best value of each column on its own (bounds, not "
             "one architecture).",
             f"config_hash={ch} batch_hash={bh}"]
    paths = common.write_tables(prefix, table, columns, caption, notes)
    paths["trials"] = prefix.with_name(prefix.name + "_trials.csv")
    common.write_csv(paths["trials"], trial_rows, [common.Column(k, k) for k in (
        "n", "trial", "method", "arch_index", "target", "robust", "sample_best")])
    return SearchResult(rows=table, trials=trial_rows,
                        markdown=common.markdown_table(table, columns), paths=paths,
                        pool_size=int(pool_idx.size))


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        setting = common.Setting.from_flags()
        given = common.flag_given("seeds")
        seeds = common.parse_int_list(FLAGS.seeds, "seed") if given else None
        ns = common.parse_int_list(FLAGS.n, "N")
        target_dataset = FLAGS.target_dataset or setting.canonical_dataset
        default = common.default_prefix(
            "search", target_dataset, f"C{setting.channels}N{setting.cells_per_stage}",
            FLAGS.pool, "n" + "-".join(map(str, ns)))
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        result = run(common.store_path(FLAGS.workspace, FLAGS.store), setting, prefix,
                     proxies=FLAGS.proxies, seeds=seeds, trials=FLAGS.trials, ns=ns,
                     pool=FLAGS.pool, combine=FLAGS.combine, target=FLAGS.target,
                     robust_target=FLAGS.robust_target, target_dataset=target_dataset,
                     score_seeds=common.parse_int_list(FLAGS.seeds, "seed"),
                     compile=FLAGS.compile,
                     config_hash=FLAGS.config_hash, batch_hash=FLAGS.batch_hash)
        common.print_block(f"pool: {FLAGS.pool} ({result.pool_size} scored architectures)", "",
                           result.markdown, "", *(f"wrote {p}" for p in result.paths.values()))
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
