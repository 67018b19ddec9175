r"""One-shot estimators end to end: train supernets, score cells, the paper's four analyses.

Reproduces the one-shot half of Ning et al., "Evaluating Efficient Performance Estimators of
Neural Architectures" (NeurIPS 2021) on NAS-Bench-201::

    python -m experiments.oneshot                         # the demo: bundled CIFAR-10, minutes
    python -m experiments.oneshot --preset=paper --data_dir=/data   # the paper's setting

For each supernet seed (``--supernet_seeds``) a supernet is trained (:func:`zcjax.oneshot.train`,
resumable: rerun the same command after a crash) with checkpoints kept at the ``--score_epochs``;
each of those checkpoints scores the same ``--num_cells`` cells on the held-out images
(:func:`zcjax.oneshot.score_archs`), stored in the score store like proxy scores. Zero-shot
estimators (``--zse``) are scored on the same cells on the benchmark network (C=16, N=5,
``zero_cost`` layers, a batch of 64: the setting of the README's proxy table). Then, against
NAS-Bench-201 test accuracy (``--target_dataset``, default: ``--dataset``):

1. criteria over training: Kendall tau, P@topK, BR@K, WR@K per checkpoint (table and curve);
2. bias: rank correlation with parameters and FLOPs, mean rank of cells per operation;
3. variance: the criteria per seed, the agreement of seeds, the spread of scores among
   isomorphic cells (half the cells are drawn as pairs of isomorphic cells for this);
4. one-shot and zero-shot estimators side by side, their rank average, and a random forest
   on all of them (held-out cells).

Presets (any flag given explicitly overrides its preset value):

==============  ==================================  ========================================
setting         ``demo`` (default)                  ``paper`` (aw_nas NB201 configuration)
==============  ==================================  ========================================
data            bundled CIFAR-10: 800 train images  the data set's train split: first 80% to
                (200 held out)                      train, last 20% to score (``--data_dir``)
supernet        C=8, N=1                            C=16, N=5
training        30 epochs, batch 64, cosine         1000 epochs, batch 512, plateau
scored cells    100, at epochs 1 2 5 10 20 30       1000, every 100 epochs
seeds           0, 1                                0, 1
==============  ==================================  ========================================

Both use SGD (0.05, momentum 0.9, decay 5e-4), clipping at 5, dropout 0.1, uniform single-path
sampling, ``naslib`` (aw_nas) layers; ``--flagfile`` and single flags adjust the rest. Outputs
under ``<workspace>/results/`` (``--out_prefix``): ``<prefix>_criteria``, ``_bias``,
``_variance``, ``_vs_zse`` (each ``.csv``, ``.md``, ``.tex``), plots ``_criteria.png``,
``_training.png``, ``_operations.png``, ``_params.png``, ``_isomorphic.png`` and
``<prefix>.json`` (settings, timings, the store keys of every scored checkpoint). The supernet
checkpoints live in ``<workspace>/results/supernets/<fingerprint>/``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Sequence

import numpy as np
from absl import app, flags

from experiments import common
from zcjax.evaluate import tables

#: The space the one-shot script trains (the one with a compile-once network that one-shot
#: training can use; ``zcjax.oneshot.train`` itself takes any such space).
SPACE = "nb201"

for _name in common.define("workspace", "store", "dataset", "target_dataset", "output",
                           "supernet", "compilation_cache"):
    flags.declare_key_flag(_name)
flags.declare_key_flag("verbosity")  # absl's: the run quiets orbax's INFO lines unless given

flags.DEFINE_enum("preset", "demo", ["demo", "paper"], "Default settings (module doc).")
flags.DEFINE_string("supernet_seeds", None, "Supernet seeds (e.g. 0,1; ranges A-B).")
flags.DEFINE_integer("epochs", None, "Supernet training epochs.")
flags.DEFINE_integer("train_batch_size", None, "Supernet training batch size.")
flags.DEFINE_float("learning_rate", None, "Initial SGD learning rate.")
flags.DEFINE_enum("schedule", None, ["plateau", "cosine", "constant"],
                  "Learning-rate schedule (zcjax.oneshot.config).")
flags.DEFINE_enum("sampling", None, ["uniform", "deiso", "fair"],
                  "Path sampling (zcjax.oneshot.sampling).")
flags.DEFINE_enum("absent_params", None, ["zero_grad", "skip"],
                  "How SGD treats parameters a step does not use (zcjax.oneshot.config).")
flags.DEFINE_float("holdout", 0.2, "Fraction of the training split held out for scoring.")
flags.DEFINE_string("score_epochs", None, "Epochs whose checkpoints score the cells.")
flags.DEFINE_integer("num_cells", None, "Cells to score (half as pairs of isomorphic cells).")
flags.DEFINE_integer("cell_seed", 0, "Which cells are drawn.")
flags.DEFINE_integer("eval_batch_size", None,
                     "Held-out images per batch (whose statistics batch norm uses).")
flags.DEFINE_integer("eval_batches", None, "Held-out batches per cell (default: all).")
flags.DEFINE_string("zse", "synflow,nwot,jacob_cov,snip,grad_norm",
                    "Zero-shot estimators scored on the same cells ('' for none).")
flags.DEFINE_integer("zse_channels", 16, "Zero-shot estimators' network: C.")
flags.DEFINE_integer("zse_cells_per_stage", 5, "Zero-shot estimators' network: N.")
flags.DEFINE_string("forest_train_size", "0.5",
                    "Cells that train the random forest of the combination: a ratio (0.5) or a "
                    "count (50).")

FLAGS = flags.FLAGS

PRESETS: dict[str, dict[str, Any]] = {
    "demo": {"channels": 8, "cells_per_stage": 1, "epochs": 30, "train_batch_size": 64,
             "schedule": "cosine", "score_epochs": "1,2,5,10,20,30", "num_cells": 100,
             "eval_batch_size": 100, "supernet_seeds": "0,1"},
    "paper": {"channels": 16, "cells_per_stage": 5, "epochs": 1000, "train_batch_size": 512,
              "schedule": "plateau", "score_epochs": ",".join(str(100 * i) for i in range(1, 11)),
              "num_cells": 1000, "eval_batch_size": 512, "supernet_seeds": "0,1"},
}
PAPER = {"learning_rate": 0.05, "sampling": "uniform", "absent_params": "zero_grad",
         "convention": "naslib"}
KS = (0.05, 0.1)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a run does, from flags or from Python."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    workspace: str | None = None
    channels: int = 8
    cells_per_stage: int = 1
    convention: str = "naslib"
    epochs: int = 30
    train_batch_size: int = 64
    learning_rate: float = 0.05
    schedule: str = "cosine"
    sampling: str = "uniform"
    absent_params: str = "zero_grad"
    holdout: float = 0.2
    supernet_seeds: tuple[int, ...] = (0, 1)
    score_epochs: tuple[int, ...] = (1, 2, 5, 10, 20, 30)
    num_cells: int = 100
    cell_seed: int = 0
    eval_batch_size: int = 100
    eval_batches: int | None = None
    zse: tuple[str, ...] = ("synflow", "nwot", "jacob_cov", "snip", "grad_norm")
    zse_channels: int = 16
    zse_cells_per_stage: int = 5
    target_dataset: str | None = None
    forest_train_size: int | float = 0.5

    def train_config(self, seed: int):
        from zcjax import oneshot, spaces

        space = spaces.get(SPACE)
        network = space.config(channels=self.channels, cells_per_stage=self.cells_per_stage,
                               convention=self.convention, num_classes=self._classes())
        return oneshot.TrainConfig(
            space=space.name, network=network, epochs=self.epochs,
            batch_size=self.train_batch_size, learning_rate=self.learning_rate,
            schedule=self.schedule, sampling=self.sampling, absent_params=self.absent_params,
            seed=seed)

    def _classes(self) -> int:
        from zcjax import data

        return data.NUM_CLASSES[data.canonical_dataset(self.dataset)]


@dataclasses.dataclass(frozen=True)
class OneShotRun:
    """What :func:`run` computed and wrote."""

    criteria: list[dict]
    vs_zse: list[dict]
    bias: list[dict]
    variance: list[dict]
    paths: dict[str, pathlib.Path]
    timings: dict[str, float]
    scored: list[dict]


def select_cells(num: int, seed: int) -> list[str]:
    """``num`` distinct cells: half as pairs of isomorphic cells (for the variance analysis),
    the rest drawn uniformly; in NB201 index order."""
    from zcjax import spaces

    space = spaces.get(SPACE)
    archs = list(space.enumerate())
    rng = np.random.default_rng(seed)
    classes: dict[str, list[int]] = {}
    for i, arch in enumerate(archs):
        classes.setdefault(space.canonical(arch), []).append(i)
    multi = [members for members in classes.values() if len(members) >= 2]
    chosen: set[int] = set()
    for k in rng.permutation(len(multi))[:num // 4]:
        chosen.update(int(i) for i in rng.choice(multi[k], size=2, replace=False))
    for i in rng.permutation(len(archs)):
        if len(chosen) >= num:
            break
        chosen.add(int(i))
    return [space.key(archs[i]) for i in sorted(chosen)]


def run(plan: Plan, store_path: "str | pathlib.Path", prefix: pathlib.Path, *,
        progress: bool = True) -> OneShotRun:
    """Trains, scores, analyses and writes (module doc); resumable at every stage."""
    from zcjax import oneshot, spaces, workspace
    from zcjax.evaluate import oneshot as ose
    from zcjax.sweep import ResultStore

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    space = spaces.get(SPACE)
    from zcjax import data

    try:
        target_dataset = data.canonical_dataset(plan.target_dataset or plan.dataset)
    except ValueError as e:
        common.fail(str(e))
    try:
        train_images, held = oneshot.load_data(plan.dataset, plan.data_dir, plan.holdout)
    except (FileNotFoundError, ValueError) as e:
        common.fail(str(e))
    cells = select_cells(plan.num_cells, plan.cell_seed)
    truth = space.benchmark().lookup(cells, "test_accuracy", target_dataset)
    runs_dir = workspace.results_dir(plan.workspace) / "supernets"

    scores: dict[int, dict[float, Any]] = {}
    histories: dict[str, list[dict]] = {}
    scored: list[dict] = []
    with ResultStore(store_path) as store:
        for seed in plan.supernet_seeds:
            try:
                config = plan.train_config(seed)
            except (TypeError, ValueError) as e:
                common.fail(str(e))
            directory = runs_dir / config.fingerprint(train_images.hash)
            t0 = time.perf_counter()
            result = oneshot.train(config, train_images, directory,
                                   keep_epochs=plan.score_epochs, progress=progress)
            timings[f"train_seed{seed}"] = time.perf_counter() - t0
            timings[f"seconds_per_step_seed{seed}"] = result.seconds_per_step
            timings[f"compile_seed{seed}"] = result.compile_seconds
            histories[f"seed {seed}"] = result.history
            spe = result.supernet.steps_per_epoch
            t0 = time.perf_counter()
            scores[seed] = {}
            for epoch in plan.score_epochs:
                supernet = oneshot.load(directory, step=epoch * spe)
                s = oneshot.score_archs(supernet, cells, held,
                                        batch_size=plan.eval_batch_size,
                                        max_batches=plan.eval_batches, store=store,
                                        progress=progress)
                scores[seed][float(epoch)] = s
                scored.append({"seed": seed, "epoch": epoch, "config_hash": s.config_hash,
                               "batch_hash": s.batch_hash, "directory": str(directory)})
            timings[f"score_seed{seed}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        zse = _zero_shot(plan, cells, store, progress)
        timings["zse"] = time.perf_counter() - t0

    # -- analyses ---------------------------------------------------------------------
    final = float(max(plan.score_epochs))
    criteria_rows, curves = [], {}
    for seed, by_epoch in scores.items():
        rows = ose.criteria_over_epochs({e: s.accuracy for e, s in by_epoch.items()}, truth, KS)
        curves[f"seed {seed}"] = rows
        criteria_rows += [{"seed": seed, **r} for r in rows]

    costs = {"params": np.array([space.param_count(c, space.config()) for c in cells], float),
             "flops": np.array([space.flops(c, space.config()) for c in cells], float)}
    op_names = list(_op_names())
    counts = np.array([np.bincount(space.as_arch(c).op_indices, minlength=len(op_names))
                       for c in cells])
    bias_rows = []
    for seed, by_epoch in scores.items():
        acc = by_epoch[final].accuracy
        bias_rows += [{"seed": seed, "what": r["cost"], "score": r["kendall_tau_score"],
                       "truth": r["kendall_tau_truth"], "gap": r["gap"], "measure": "Kendall τ"}
                      for r in ose.cost_bias(acc, truth, costs)]
        bias_rows += [{"seed": seed, "what": r["operation"], "score": r["mean_rank_score"],
                       "truth": r["mean_rank_truth"], "gap": r["gap"],
                       "measure": f"mean rank ({r['cells']} cells)"}
                      for r in ose.operation_bias(acc, truth, counts, op_names)]

    class_ids = np.array([space.canonical(c) for c in cells])
    variance_rows = []
    finals = {seed: by_epoch[final].accuracy for seed, by_epoch in scores.items()}
    if len(finals) >= 2:
        rows, pairs = ose.seed_variance(finals, truth, KS)
        *per_seed, summary = rows
        variance_rows += [{"what": f"seed {r['seed']}", **r} for r in per_seed]
        for i, stat in enumerate(("mean", "std")):
            variance_rows.append({"what": f"{stat} over seeds",
                                  **{k: v[i] for k, v in summary.items() if k != "seed"}})
        variance_rows += [{"what": f"τ(seed {p['seed_a']}, seed {p['seed_b']})",
                           "kendall_tau": p["kendall_tau"]} for p in pairs]
    iso = {seed: ose.isomorphism_spread(acc, class_ids) for seed, acc in finals.items()}
    iso_truth = ose.isomorphism_spread(truth, class_ids)
    for seed, spread in iso.items():
        variance_rows.append({"what": f"isomorphic cells, seed {seed}", **spread})
    variance_rows.append({"what": "isomorphic cells, true accuracy", **iso_truth})

    estimators = {f"one-shot (seed {seed})": acc for seed, acc in finals.items()}
    estimators.update({name: common.oriented(name, values) for name, values in zse.items()})
    estimators.update({"params": costs["params"], "flops": costs["flops"]})
    zse_names = [n for n in estimators if not n.startswith("one-shot")]
    ose_names = [n for n in estimators if n.startswith("one-shot")]
    combos = {"rank average: one-shot + zero-shot":
              ose.rank_average({n: estimators[n] for n in ose_names[:1] + zse_names}),
              "rank average: zero-shot": ose.rank_average({n: estimators[n] for n in zse_names})}
    vs_rows = [dict(r, kind="OSE" if r["proxy"].startswith("one-shot") else
                    ("combination" if r["proxy"].startswith("rank") else "ZSE"))
               for r in ose.estimator_table({**estimators, **combos}, truth, KS)]
    for label, names in (("one-shot", ose_names[:1]), ("zero-shot", zse_names),
                         ("one-shot + zero-shot", ose_names[:1] + zse_names)):
        try:
            fit = ose.forest_combination({n: estimators[n] for n in names}, truth,
                                         train_size=plan.forest_train_size)
        except ValueError as e:  # too few cells for the split: say so in the table
            vs_rows.append({"proxy": f"random forest: {label}", "kind": "combination",
                            "note": str(e)})
            continue
        vs_rows.append({"proxy": f"random forest: {label}", "kind": "combination",
                        "n_used": fit.n_used - fit.per_seed[0].n_train,
                        "kendall_tau": float(fit.kendall_tau_mean[0]),
                        "note": f"± {fit.kendall_tau_std[0]:.3f} over {len(fit.per_seed)} "
                                f"splits; trained on {fit.per_seed[0].n_train} cells"})

    paths = _write(prefix, plan, criteria_rows, curves, bias_rows, variance_rows, vs_rows,
                   histories, finals, truth, costs, counts, op_names, class_ids, target_dataset,
                   len(cells))
    timings["total"] = time.perf_counter() - t_start
    paths["json"] = prefix.with_name(prefix.name + ".json")
    paths["json"].write_text(json.dumps(
        {"plan": dataclasses.asdict(plan), "timings": timings, "scored": scored,
         "cells": cells, "target_dataset": target_dataset}, indent=1, default=str))
    return OneShotRun(criteria_rows, vs_rows, bias_rows, variance_rows, paths, timings, scored)


def _op_names() -> tuple[str, ...]:
    from zcjax.spaces.nb201 import OPS

    return tuple(OPS)


def _zero_shot(plan: Plan, cells: Sequence[str], store, progress: bool
               ) -> dict[str, np.ndarray]:
    """Zero-shot scores of the cells (default network: the benchmark's, C=16, N=5,
    ``zero_cost`` layers; a batch of 64 of the data set)."""
    if not plan.zse:
        return {}
    from zcjax.sweep.engine import batch_hash, sweep

    setting = common.Setting(space=SPACE, dataset=plan.dataset, data_dir=plan.data_dir,
                             workspace=plan.workspace,
                             network=(f"channels={plan.zse_channels}",
                                      f"cells_per_stage={plan.zse_cells_per_stage}"))
    config = setting.config(plan.zse)
    batch = setting.batch()
    sweep(cells, [0], batch, config, store, progress=progress)
    out = {}
    for name in config.proxies:
        stored = store.scores(SPACE, name, config.hash(), batch_hash(batch), archs=cells,
                              seeds=[0])
        out[name] = np.array([stored[c][0] for c in cells])
    return out


def _write(prefix, plan, criteria_rows, curves, bias_rows, variance_rows, vs_rows, histories,
           finals, truth, costs, counts, op_names, class_ids, target_dataset, n_cells
           ) -> dict[str, pathlib.Path]:
    from zcjax.evaluate import oneshot as ose

    f3 = tables.fmt_float(3)

    def text(v):
        return "" if v is None else str(v)

    k_cols = [tables.Column(f"{m}@{k}", f"{h}{tables.format_k(k)} {arrow}", f3)
              for k in KS for m, h, arrow in (("precision_at_top_k", "P@top", "↑"),
                                              ("best_rank_at_k", "BR@", "↓"),
                                              ("worst_rank_at_k", "WR@", "↓"))]
    base = [tables.Column("kendall_tau", "Kendall τ ↑", f3),
            tables.Column("spearman_rho", "Spearman ρ ↑", f3)]
    setting = (f"NB201 supernet C={plan.channels} N={plan.cells_per_stage} ({plan.convention}) "
               f"trained on {plan.dataset} ({'bundled sample' if plan.data_dir is None else plan.data_dir}),"
               f" {plan.epochs} epochs, batch {plan.train_batch_size}, {plan.schedule} schedule, "
               f"{plan.sampling} sampling; {n_cells} cells against NB201 {target_dataset} test "
               "accuracy")
    paths: dict[str, pathlib.Path] = {}
    outputs = {
        "criteria": (criteria_rows,
                     [tables.Column("seed", "seed", text), tables.Column("epoch", "epoch", "{:g}".format),
                      tables.Column("mean_score", "mean acc.", f3), *base, *k_cols],
                     f"One-shot accuracy over training: {setting}."),
        "bias": (bias_rows,
                 [tables.Column("seed", "seed", text), tables.Column("what", "against", text),
                  tables.Column("measure", "measure", text), tables.Column("score", "one-shot", f3),
                  tables.Column("truth", "truth", f3), tables.Column("gap", "gap", f3)],
                 f"Bias at epoch {max(plan.score_epochs)}: Kendall τ with parameters / FLOPs, "
                 f"and mean percentile rank (1 = best) of the cells holding each operation; "
                 f"{setting}."),
        "variance": (variance_rows,
                     [tables.Column("what", "what", text), tables.Column("kendall_tau", "Kendall τ ↑", f3),
                      tables.Column("precision_at_top_k@0.1", "P@top10% ↑", f3),
                      tables.Column("classes", "classes", text), tables.Column("within_std", "σ within", f3),
                      tables.Column("within_fraction", "SS within / total", f3),
                      tables.Column("rank_range", "rank range", f3)],
                     f"Variance at epoch {max(plan.score_epochs)}: across supernet seeds, and "
                     f"among isomorphic cells; {setting}."),
        "vs_zse": (vs_rows,
                   [tables.Column("proxy", "estimator", text), tables.Column("kind", "kind", text),
                    tables.Column("n_used", "N", text),
                    tables.Column("kendall_tau", "Kendall τ ↑", f3),
                    tables.Column("spearman_rho", "Spearman ρ ↑", f3), *k_cols,
                    tables.Column("note", "note", text)],
                   f"One-shot (epoch {max(plan.score_epochs)}) and zero-shot estimators on the "
                   f"same cells; zero-shot on the NB201 benchmark network (C=16, N=5, zero_cost, "
                   f"batch of 64). Random forests: held-out cells, mean ± std over 3 splits; "
                   f"{setting}."),
    }
    for name, (rows, columns, caption) in outputs.items():
        out = tables.write_tables(prefix.with_name(f"{prefix.name}_{name}"), rows, columns,
                                  caption)
        paths.update({f"{name}_{k}": v for k, v in out.items()})
    final_seed, acc = next(iter(finals.items()))
    figures = {
        "criteria": ose.plot_criteria_over_epochs(curves, KS, title=f"one-shot accuracy vs NB201 "
                                                  f"{target_dataset} test accuracy, {n_cells} cells"),
        "training": ose.plot_training_history(histories, title="supernet training"),
        "operations": ose.plot_operation_bias(ose.operation_bias(acc, truth, counts, op_names),
                                              title=f"operation bias (seed {final_seed})"),
        "params": ose.plot_cost_bias(acc, truth, costs["params"], "parameters (C=16, N=5)"),
        "isomorphic": ose.plot_isomorphism_spread(acc, class_ids, truth),
    }
    for name, fig in figures.items():
        path = prefix.with_name(f"{prefix.name}_{name}.png")
        fig.savefig(path, dpi=120)
        paths[f"{name}_png"] = path
    return paths


#: The flags whose default comes from the preset (``pick`` reads them by name).
PRESET_FLAGS = ("channels", "cells_per_stage", "convention", "epochs", "train_batch_size",
                "learning_rate", "schedule", "sampling", "absent_params", "supernet_seeds",
                "score_epochs", "num_cells", "eval_batch_size")


@common.reads_flags("preset", *PRESET_FLAGS)
def _preset_values() -> dict[str, Any]:
    """The preset's value of each of :data:`PRESET_FLAGS`, or the flag's when given."""
    preset = {**PRESETS[FLAGS.preset], **PAPER}
    given = {"channels": FLAGS.channels, "cells_per_stage": FLAGS.cells_per_stage,
             "convention": FLAGS.convention, "epochs": FLAGS.epochs,
             "train_batch_size": FLAGS.train_batch_size, "learning_rate": FLAGS.learning_rate,
             "schedule": FLAGS.schedule, "sampling": FLAGS.sampling,
             "absent_params": FLAGS.absent_params, "supernet_seeds": FLAGS.supernet_seeds,
             "score_epochs": FLAGS.score_epochs, "num_cells": FLAGS.num_cells,
             "eval_batch_size": FLAGS.eval_batch_size}
    return {name: value if FLAGS[name].present or name not in preset else preset[name]
            for name, value in given.items()}


def plan_from_flags() -> Plan:
    values = _preset_values()

    def pick(name: str):
        return values[name]

    return Plan(
        dataset=FLAGS.dataset or "cifar10", data_dir=FLAGS.data_dir, workspace=FLAGS.workspace,
        channels=pick("channels"), cells_per_stage=pick("cells_per_stage"),
        convention=pick("convention"), epochs=pick("epochs"),
        train_batch_size=pick("train_batch_size"), learning_rate=pick("learning_rate"),
        schedule=pick("schedule"), sampling=pick("sampling"),
        absent_params=pick("absent_params"), holdout=FLAGS.holdout,
        supernet_seeds=tuple(common.parse_int_list(pick("supernet_seeds"), "seed")),
        score_epochs=tuple(common.parse_int_list(pick("score_epochs"), "epoch")),
        num_cells=pick("num_cells"), cell_seed=FLAGS.cell_seed,
        eval_batch_size=pick("eval_batch_size"), eval_batches=FLAGS.eval_batches,
        zse=tuple(common.resolve_proxies(FLAGS.zse, SPACE)) if FLAGS.zse.strip() else (),
        zse_channels=FLAGS.zse_channels, zse_cells_per_stage=FLAGS.zse_cells_per_stage,
        target_dataset=FLAGS.target_dataset,
        forest_train_size=common.parse_sizes(FLAGS.forest_train_size, "forest_train_size")[0])


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        from absl import logging

        from zcjax import workspace

        if not common.flag_given("verbosity"):  # orbax logs every save and restore at INFO
            logging.set_verbosity(logging.WARNING)
        plan = plan_from_flags()
        if max(plan.score_epochs) > plan.epochs or min(plan.score_epochs) < 1:
            common.fail(f"--score_epochs {list(plan.score_epochs)} must lie in 1..{plan.epochs}")
        if FLAGS.compilation_cache:  # the seeds' supernets compile once
            workspace.enable_compilation_cache(FLAGS.workspace)
        default = tables.default_prefix("oneshot", plan.dataset, f"C{plan.channels}N"
                                        f"{plan.cells_per_stage}", FLAGS.preset)
        prefix = common.output_prefix(FLAGS.workspace, FLAGS.out_prefix, default)
        store = common.store_path(FLAGS.workspace, FLAGS.store)
        common.print_block(f"one-shot run ({FLAGS.preset}): {plan}", f"store: {store}")
        result = run(plan, store, prefix)
        final = [r for r in result.criteria if r["epoch"] == max(plan.score_epochs)]
        last = result.scored[-1]
        common.print_block(
            "", tables.markdown_table(final, [tables.Column("seed", "seed"),
                                              tables.Column("kendall_tau", "Kendall τ",
                                                            tables.fmt_float(3))]),
            "", (prefix.with_name(prefix.name + "_vs_zse.md")).read_text(encoding="utf-8"),
            "timings (s): " + ", ".join(f"{k} {v:.3g}" for k, v in result.timings.items()),
            *(f"wrote {p}" for p in result.paths.values()),
            "read the stored one-shot scores like proxy scores, e.g. the last checkpoint's:",
            f"  python -m experiments.correlate --store={store} --proxies=oneshot_accuracy,"
            f"oneshot_loss --config_hash={last['config_hash']} --batch_hash={last['batch_hash']}")
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
