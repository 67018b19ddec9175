r"""Zero-cost search: sample N architectures, keep the one a proxy scores best, report its accuracy.

The protocol of NASWOT (Mellor et al., ICML 2021), CRoZe (Ha et al., NeurIPS 2023) and the
epsilon proxy (Gracheva 2021): in each of ``--trials`` trials (trial t uses seed t), draw ``--n``
architectures (several sizes allowed: ``--n=10,100``), pick the one with the best (mean over
seeds) score of each proxy, and look up its true accuracy; report mean ± std over trials::

    python -m experiments.search --n=10,100 --trials=50 --proxies=synflow,nwot --combine=rank_sum

Pool (``--pool``): ``store`` samples from the architectures already scored for the setting (fast,
no network is run); ``space`` samples from the space's architectures with ground truth (all
15,625 NB201 cells, the 500 NB101 cells, ...) and ``classes`` from one per isomorphism class,
scoring what the store lacks through the sweep engine first (resumable, into the same store).

Columns: the pick's ``--target`` (default: the benchmark's first metric, e.g. NB201 test
accuracy in %), on NB201 also ``--robust_target`` (default PGD at 1/255, in %), and the regret:
the best ``--target`` in the sample minus the pick's. Rows: every proxy, ``--combine=rank_sum`` (the architecture with the largest sum of its
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
from zcjax.evaluate import tables

for _name in common.define("workspace", "store", "space", "dataset", "batch", "proxies",
                           "seeds", "stored", "target", "target_dataset", "output", "robust",
                           "compile", "compilation_cache"):
    flags.declare_key_flag(_name)

flags.DEFINE_integer("trials", 10, "Search trials (trial t samples with seed t).")
flags.DEFINE_string("n", "100", "Architectures sampled per trial; several sizes: 10,100.")
flags.DEFINE_enum("pool", "store", ["store", "space", "classes"],
                  "Where samples come from: the setting's stored architectures, the space's "
                  "architectures with ground truth, or one per isomorphism class of those "
                  "(space / classes score what is missing first).")
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
        combine: str | None = None, target: str | None = None,
        robust_target: str | None = "pgd@Linf:eps=1", target_dataset: str | None = None,
        score_seeds: Sequence[int] = (0,), compile: str = "auto",
        config_hash: str | None = None, batch_hash: str | None = None,
        policy: str = "strict", progress: bool = True) -> SearchResult:
    """Runs the trials and writes the tables.

    Args:
      proxies: ``"all"`` stored proxies, or names (for ``pool != "store"``, names to score).
      seeds: reduce scores over these seeds (default: every stored seed).
      pool: ``"store"``, ``"space"`` or ``"classes"`` (see module doc).
      target, target_dataset: ground truth (default: the benchmark's first metric).
      robust_target: NB201 only (ignored on other spaces): a second column.
      score_seeds, compile: how missing architectures are scored (``pool != "store"``).
      policy: non-finite seeds (:mod:`zcjax.evaluate.stored`).

    Raises:
      ExperimentError: unknown target, missing store, no scores, N larger than the pool.
    """
    from zcjax.evaluate import targets
    from zcjax.spaces import selection

    if trials < 1:
        common.fail("--trials must be >= 1")
    if not ns or min(ns) < 1:
        common.fail("--n must be >= 1")
    if combine not in (None, "rank_sum"):
        common.fail(f"unknown --combine {combine!r}; expected rank_sum")
    space = setting.search_space
    if space.name != targets.ROBUSTNESS_SPACE:
        robust_target = None
    dataset = target_dataset or setting.dataset_name

    samples: dict[tuple[int, int], list[str]] = {}
    if pool == "store":
        stored, ch, bh = common.read_scores(store_path, setting, config_hash, batch_hash,
                                            proxies, seeds, policy)
    else:
        names = common.resolve_proxies(proxies if isinstance(proxies, str) else ",".join(proxies),
                                       setting.space)
        members = selection.pool(space)
        if pool == "classes":
            members = tuple(selection.class_representatives(space, members))
        if max(ns) > len(members):
            common.fail(f"--n={max(ns)} exceeds the {len(members)} architectures of "
                        f"--pool={pool}")
        for t in range(trials):
            for n in ns:
                rng = np.random.default_rng([t, n])
                samples[(t, n)] = [members[i] for i in
                                   sorted(rng.choice(len(members), size=n, replace=False))]
        wanted = sorted({a for s in samples.values() for a in s})
        scored = score_script.run(wanted, names, score_seeds, setting, store_path,
                                  compile=compile, export_csv=False, progress=progress)
        stored, ch, bh = common.read_scores(store_path, setting, scored.config_hash,
                                            scored.batch_hash, names, seeds, policy)

    def truth_of(spec, archs):
        try:
            gt = targets.ground_truth(spec, space, archs, dataset)
        except ValueError as e:
            common.fail(str(e))
        return gt, gt.oriented() * (100.0 if gt.unit == "fraction" else 1.0)

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
    else:  # map the sampled architectures to rows of `stored`
        row_of = {a: r for r, a in enumerate(stored.archs)}
        samples = {k: np.asarray([row_of[a] for a in v]) for k, v in samples.items()}

    gt, truth_rows = truth_of(target, stored.archs)
    target = gt.name
    unit = " (%)" if gt.unit in ("percent", "fraction") else ""
    robust_rows = truth_of(robust_target, stored.archs)[1] if robust_target else None
    methods = list(names) + (["rank_sum"] if combine == "rank_sum" else []) + ["random"]
    trial_rows, table = [], []

    def best(values):
        return float(np.nanmax(values)) if np.isfinite(values).any() else np.nan

    for n in ns:
        picks: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
        bests = []
        for t in range(trials):
            rows = samples[(t, n)]
            rng = np.random.default_rng([t, n, 1])
            truth_s = truth_rows[rows]
            robust_s = robust_rows[rows] if robust_rows is not None else np.full(rows.size, np.nan)
            sample_best = best(truth_s)
            bests.append((sample_best, best(robust_s)))
            for m in methods:
                if m == "random":
                    k = int(rng.integers(rows.size))
                elif m == "rank_sum":
                    k = _pick(rank_sum([columns_all[p][rows] for p in names]), rng)
                else:
                    k = _pick(columns_all[m][rows], rng)
                if k < 0:
                    acc = rob = np.nan
                    arch = ""
                else:
                    acc, rob = float(truth_s[k]), float(robust_s[k])
                    arch = stored.archs[rows[k]]
                picks[m].append((acc, rob, sample_best - acc))
                trial_rows.append({"n": n, "trial": t, "method": m, "arch": arch,
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
        everything = selection.pool(space)
        table.append({"method": "space best", "n": n,
                      "target": (best(truth_of(target, everything)[1]), 0.0),
                      "robust": ((best(truth_of(robust_target, everything)[1]), 0.0)
                                 if robust_target else (np.nan, np.nan)),
                      "regret": (np.nan, np.nan)})

    sign = "" if gt.higher_is_better else "-"
    columns = [tables.Column("method", "method"), tables.Column("n", "N"),
               tables.Column("target", f"{sign}{target}{unit} ↑", tables.fmt_mean_std(2))]
    if robust_target:
        columns.append(tables.Column("robust", f"{robust_target} (%) ↑", tables.fmt_mean_std(2)))
    columns.append(tables.Column("regret", "regret ↓", tables.fmt_mean_std(2)))
    caption = (f"Zero-cost search on {space.name} ({gt.dataset}): the best-scored of N sampled "
               f"architectures, mean ± std over {trials} trials; pool: {pool} "
               f"({pool_idx.size} scored architectures).")
    notes = ["regret: best target in the sample minus the pick's.",
             "sample best / space best: the best value of each column on its own (bounds, not "
             "one architecture).",
             f"config_hash={ch} batch_hash={bh}"]
    paths = tables.write_tables(prefix, table, columns, caption, notes)
    paths["trials"] = prefix.with_name(prefix.name + "_trials.csv")
    tables.write_csv(paths["trials"], trial_rows, [tables.Column(k, k) for k in (
        "n", "trial", "method", "arch", "target", "robust", "sample_best")])
    return SearchResult(rows=table, trials=trial_rows,
                        markdown=tables.markdown_table(table, columns), paths=paths,
                        pool_size=int(pool_idx.size))


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        from zcjax import workspace

        setting = common.Setting.from_flags()
        if FLAGS.pool != "store" and FLAGS.compilation_cache:  # it scores what is missing
            workspace.enable_compilation_cache(FLAGS.workspace)
        given = common.flag_given("seeds")
        seeds = common.parse_int_list(FLAGS.seeds, "seed") if given else None
        ns = common.parse_int_list(FLAGS.n, "N")
        target_dataset = FLAGS.target_dataset or setting.dataset_name
        default = tables.default_prefix("search", setting.short(), target_dataset, FLAGS.pool,
                                        "n" + "-".join(map(str, ns)))
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        result = run(common.store_path(FLAGS.workspace, FLAGS.store), setting, prefix,
                     proxies=FLAGS.proxies, seeds=seeds, trials=FLAGS.trials, ns=ns,
                     pool=FLAGS.pool, combine=FLAGS.combine, target=FLAGS.target,
                     robust_target=FLAGS.robust_target, target_dataset=target_dataset,
                     score_seeds=common.parse_int_list(FLAGS.seeds, "seed"),
                     compile=FLAGS.compile, policy=FLAGS.nonfinite,
                     config_hash=FLAGS.config_hash, batch_hash=FLAGS.batch_hash)
        common.print_block(f"pool: {FLAGS.pool} ({result.pool_size} scored architectures)", "",
                           result.markdown, "", *(f"wrote {p}" for p in result.paths.values()))
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
