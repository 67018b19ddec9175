"""The experiment scripts, run in-process on tiny settings (C=4, N=1, batch 8).

Only ``score`` (and ``quickstart``, which reuses its store) run networks: four cells, one seed,
two proxies that share one compiled supernet program. The analyses (``correlate``, ``robustness``, ``search``) read a store filled
with synthetic scores written under the same setting's hashes, which is fast and lets the tests
check that a proxy built from the ground truth comes out on top.
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `experiments` is not installed; plain `pytest` needs the root
    sys.path.insert(0, str(REPO))

# Every script in one process: their flags must not clash (absl raises on a duplicate).
from experiments import (benchmark, benchmark_reference, common, correlate, quickstart,  # noqa: E402
                         robustness, score, search)

FLAGS = flags.FLAGS
TINY = ["--network=channels=4,cells_per_stage=1", "--batch_size=8"]
TINY_SETTING = dict(network=("channels=4", "cells_per_stage=1"), batch_size=8)
# Proxies the engine's supernet scores with one compiled program for every cell (a proxy outside
# it compiles one program per cell, about 10-14 s of CPU time each even at C=4, N=1).
REAL_PROXIES = ("grad_norm", "snip")
# Four cells, test accuracies 58.8, 73.6, 86.8 and 94.4 %.
CELLS = "indices:10867,15133,4384,13714"
N_CELLS = 4


def run_main(module, argv):
    """Parses ``argv`` as the script's command line and runs its ``main``; flags restored."""
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        FLAGS(["prog", *argv])
        return module.main(["prog"])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- a store scored for real ------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    ws = tmp_path_factory.mktemp("scored_ws")
    argv = [f"--workspace={ws}", f"--archs={CELLS}",
            f"--proxies={','.join(REAL_PROXIES)}", "--seeds=0", "--nocompilation_cache", *TINY]
    run_main(score, argv)
    return ws, argv


def test_score_writes_store_and_csv(scored):
    ws, _ = scored
    store = ws / "results" / "scores.sqlite"
    rows = read_csv(ws / "results" / "scores.csv")
    assert store.is_file()
    assert len(rows) == N_CELLS * len(REAL_PROXIES)
    assert {r["proxy"] for r in rows} == set(REAL_PROXIES)
    assert len({r["arch"] for r in rows}) == N_CELLS
    assert all(np.isfinite(float(r["value"])) for r in rows)


def test_score_rerun_skips_stored_work(scored):
    ws, _ = scored
    setting = common.Setting(**TINY_SETTING)
    result = score.run(score.select(setting, CELLS, 0), REAL_PROXIES, [0], setting,
                       ws / "results" / "scores.sqlite", progress=False)
    assert result.summary.tasks_skipped == N_CELLS and result.summary.tasks_computed == 0


def test_correlate_on_scored_store(scored, capsys):
    ws, _ = scored
    run_main(correlate, [f"--workspace={ws}", *TINY, "--out_prefix=corr"])
    out = capsys.readouterr().out
    rows = read_csv(ws / "results" / "corr.csv")
    assert sorted(r["proxy"] for r in rows) == sorted(REAL_PROXIES)
    assert all(r["n_used"] == str(N_CELLS) for r in rows)
    assert "| proxy | N | non-finite | Kendall τ ↑" in out
    for suffix in (".md", ".tex", "_scatter.png"):
        assert (ws / "results" / f"corr{suffix}").is_file()


def test_quickstart_reuses_scored_store(scored, capsys):
    ws, _ = scored
    run_main(quickstart, [f"--workspace={ws}", f"--store={ws / 'results' / 'scores.sqlite'}",
                          f"--archs={CELLS}", "--seeds=0", "--nocompilation_cache",
                          f"--proxies={','.join(REAL_PROXIES)}", *TINY])
    out = capsys.readouterr().out
    assert "network: num_classes=10, channels=4, cells_per_stage=1" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    # header, rule and the cells; then header, rule and one line per proxy
    assert len(table) == 2 + N_CELLS + 2 + len(REAL_PROXIES)
    assert f"Spearman ρ vs test_accuracy ({N_CELLS} architectures)" in out
    for idx in CELLS.split(":")[1].split(","):
        assert f"| {idx} |" in out


def test_search_scores_missing_cells(scored):
    ws, _ = scored
    run_main(search, [f"--workspace={ws}", *TINY, "--pool=classes", "--n=3", "--trials=2",
                      f"--proxies={','.join(REAL_PROXIES)}", "--seeds=0", "--out_prefix=sp",
                      "--nocompilation_cache"])  # JAX's cache setting is global to the process
    rows = read_csv(ws / "results" / "sp.csv")
    assert [r["method"] for r in rows] == [*REAL_PROXIES, "random", "sample best", "space best"]
    trials = read_csv(ws / "results" / "sp_trials.csv")
    assert len(trials) == 2 * (len(REAL_PROXIES) + 1)
    assert all(t["arch"].startswith("|") for t in trials)


# -- a synthetic store ------------------------------------------------------------------------

N_SYNTH = 40


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """40 random cells x 2 seeds x 3 proxies: accuracy + noise, robust accuracy + noise, noise."""
    from zcjax.evaluate import targets
    from zcjax.spaces import nb201
    from zcjax.sweep.store import Record, ResultStore

    ws = tmp_path_factory.mktemp("synthetic_ws")
    setting = common.Setting(**TINY_SETTING)
    ch, bh = common.hashes(setting)
    acc = targets.target("test_accuracy", "cifar10")
    rob = targets.target("pgd@Linf:eps=1", "cifar10")
    rng = np.random.default_rng(0)
    records = []
    for i in rng.choice(nb201.NUM_CELLS, N_SYNTH, replace=False):
        arch = nb201.from_index(int(i)).to_string()
        for seed in (0, 1):
            values = {"synth_good": acc[i] + rng.normal(0, 1.0),
                      "synth_robust": 100 * rob[i] + rng.normal(0, 1.0),
                      "synth_noise": rng.normal()}
            records += [Record("nb201", arch, p, ch, seed, bh, float(v))
                        for p, v in values.items()]
    with ResultStore(ws / "results" / "scores.sqlite") as store:
        store.put_many(records)
    return ws


def test_correlate_synthetic_tables(synthetic, capsys):
    ws = synthetic
    run_main(correlate, [f"--workspace={ws}", *TINY, "--out_prefix=c", "--ks=0.1,5",
                         "--metrics=kendall_tau,spearman_rho,pearson_r,precision_at_top_k,"
                         "best_rank_at_k"])
    rows = read_csv(ws / "results" / "c.csv")
    assert [r["proxy"] for r in rows][0] == "synth_good"  # sorted by Kendall tau
    assert len(rows) == 3
    assert set(rows[0]) >= {"kendall_tau", "pearson_r", "precision_at_top_k@0.1",
                            "precision_at_top_k@5", "best_rank_at_k@5"}
    by = {r["proxy"]: r for r in rows}
    assert float(by["synth_good"]["kendall_tau"]) > 0.5 > abs(float(by["synth_noise"]
                                                                    ["kendall_tau"]))
    assert all(r["n_used"] == str(N_SYNTH) for r in rows)
    tex = (ws / "results" / "c.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "synth\\_good" in tex
    assert (ws / "results" / "c_scatter.png").stat().st_size > 1000
    assert "| synth_good | 40 | 0 |" in capsys.readouterr().out


def test_correlate_per_class_and_robust_target(synthetic):
    ws = synthetic
    run_main(correlate, [f"--workspace={ws}", *TINY, "--per_class", "--out_prefix=cc",
                         "--target=pgd@Linf:eps=1", "--scatter_x=symlog"])
    rows = read_csv(ws / "results" / "cc.csv")
    n = int(rows[0]["n_used"])
    assert 1 < n <= N_SYNTH  # one entry per isomorphism class of the 40 cells
    assert rows[0]["proxy"] == "synth_robust"
    assert (ws / "results" / "cc_scatter.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--target=no_such_target"], "bad target spec"),
    (["--target=pgd@Linf:eps=0.3"], "not available"),
    (["--network=channels=8,cells_per_stage=1"], "no nb201 scores for"),
    (["--network=chanels=8"], "unknown network setting 'chanels'"),
    (["--proxies=synth_good,nope"], "no stored scores for proxies"),
    (["--metrics=kendall_tau,nope"], "unknown metrics"),
])
def test_correlate_errors(synthetic, argv, message):
    base = [f"--workspace={synthetic}", "--batch_size=8"]
    if not any(a.startswith("--network") for a in argv):
        base.append(TINY[0])
    with pytest.raises(SystemExit, match=message):
        run_main(correlate, base + argv)


def test_correlate_lists_what_the_store_holds(scored):
    ws, _ = scored
    with pytest.raises(SystemExit, match="(?s)the store holds:.*channels=4.*source=bundled"):
        run_main(correlate, [f"--workspace={ws}", "--batch_size=8"])


def test_correlate_missing_store(tmp_path):
    with pytest.raises(SystemExit, match="no score store"):
        run_main(correlate, [f"--workspace={tmp_path}", *TINY])
    assert not (tmp_path / "results" / "scores.sqlite").exists()  # not created by the check


def test_correlate_rejects_non_nb201_archs(tmp_path):
    from zcjax.sweep.store import Record, ResultStore

    ch, bh = common.hashes(common.Setting(**TINY_SETTING))
    with ResultStore(tmp_path / "results" / "scores.sqlite") as store:
        store.put_many([Record("nb201", "|not_an_op~0|+|x~0|x~1|+|x~0|x~1|x~2|", "p", ch, 0,
                               bh, 1.0)])
    with pytest.raises(SystemExit, match="unknown operation 'not_an_op'"):
        run_main(correlate, [f"--workspace={tmp_path}", *TINY])


def test_correlate_counts_non_finite_scores_per_policy(tmp_path):
    from zcjax.sweep.store import Record, ResultStore

    ch, bh = common.hashes(common.Setting(**TINY_SETTING))
    space_archs = [f"|nor_conv_3x3~0|+|{a}~0|{b}~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
                   for a in ("none", "skip_connect", "nor_conv_1x1") for b in
                   ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")]
    records = []
    for i, arch in enumerate(space_archs):
        for seed in (0, 1):
            bad = i == 0 and seed == 1
            records.append(Record("nb201", arch, "p", ch, seed, bh,
                                  float("inf") if bad else float(i)))
    with ResultStore(tmp_path / "results" / "scores.sqlite") as store:
        store.put_many(records)
    for policy, n, dropped in (("strict", len(space_archs) - 1, 1),
                               ("finite_seeds", len(space_archs), 0)):
        run_main(correlate, [f"--workspace={tmp_path}", *TINY, f"--nonfinite={policy}",
                             f"--out_prefix=p_{policy}"])
        (row,) = read_csv(tmp_path / "results" / f"p_{policy}.csv")
        assert (int(row["n_used"]), int(row["dropped"])) == (n, dropped), policy


def test_robustness_regression_table(synthetic, capsys):
    ws = synthetic
    run_main(robustness, [f"--workspace={ws}", *TINY, "--out_prefix=r",
                          "--train_sizes=10,1000,0.8", "--fit_seeds=0,1", "--n_estimators=10",
                          "--n_repeats=2"])
    out = capsys.readouterr().out
    assert "train size 1000 skipped" in out
    rows = read_csv(ws / "results" / "r.csv")
    # clean and robust: one row per size; joint: two outputs per size; 2 sizes ran
    assert len(rows) == 2 + 2 + 4
    assert {r["target"] for r in rows} == {"clean", "robust", "joint"}
    assert {r["output"] for r in rows if r["target"] == "joint"} == {"clean", "pgd@Linf:eps=1"}
    assert {"r2_mean", "r2_std", "kendall_tau_mean", "oob_r2_mean"} <= set(rows[0])
    robust_80 = [r for r in rows if r["target"] == "robust" and r["train_size"] == "80%"][0]
    assert float(robust_80["kendall_tau_mean"]) > 0.3
    imp = read_csv(ws / "results" / "r_importance.csv")
    assert len(imp) == 3 * 3  # target sets x features
    top_robust = max((r for r in imp if r["target"] == "robust"),
                     key=lambda r: float(r["permutation_mean"]))
    assert top_robust["proxy"] == "synth_robust"
    assert (ws / "results" / "r_importance.png").stat().st_size > 1000
    assert "R² ↑" in (ws / "results" / "r.md").read_text()


def test_robustness_no_size_fits(synthetic):
    with pytest.raises(SystemExit, match="no training size fits"):
        run_main(robustness, [f"--workspace={synthetic}", *TINY, "--train_sizes=1000",
                              "--n_estimators=5"])


def test_search_table(synthetic, capsys):
    ws = synthetic
    run_main(search, [f"--workspace={ws}", *TINY, "--out_prefix=s", "--n=5,20", "--trials=4",
                      "--combine=rank_sum"])
    rows = read_csv(ws / "results" / "s.csv")
    methods = ["synth_good", "synth_noise", "synth_robust", "rank_sum", "random",
               "sample best", "space best"]
    assert [r["method"] for r in rows] == methods * 2
    assert [r["n"] for r in rows] == ["5"] * 7 + ["20"] * 7
    by = {(r["method"], r["n"]): r for r in rows}
    assert float(by[("synth_good", "20")]["regret_mean"]) <= float(
        by[("random", "20")]["regret_mean"]) + 1e-9
    assert float(by[("space best", "5")]["target_mean"]) == pytest.approx(94.373, abs=1e-3)
    assert len(read_csv(ws / "results" / "s_trials.csv")) == 2 * 4 * 5
    assert "| synth_good | 5 |" in capsys.readouterr().out


def test_search_n_larger_than_pool(synthetic):
    with pytest.raises(SystemExit, match="exceeds"):
        run_main(search, [f"--workspace={synthetic}", *TINY, "--n=500"])


def test_robustness_targets_exist_for_nb201_only():
    import types

    from zcjax.evaluate import targets

    other = types.SimpleNamespace(name="other_space", benchmark=lambda: None)
    with pytest.raises(ValueError, match="covers NAS-Bench-201 only, not other_space"):
        targets.ground_truth("pgd@Linf:eps=1", other, [])


# -- helpers and the notebook ----------------------------------------------------------------

def test_select_archs_and_parsers(tmp_path):
    from zcjax.spaces import nb201, selection

    space = nb201.SPACE
    assert selection.select(space, "range:3-5") == [space.key(i) for i in (3, 4, 5)]
    assert selection.select(space, "indices:9,2,9") == [space.key(9), space.key(2)]
    assert len(selection.select(space, "classes")) == 6466
    s = selection.select(space, "sample:5", 1)
    assert [nb201.index_of(a) for a in s] == sorted(nb201.index_of(a) for a in s)
    assert len(set(s)) == 5 and s == selection.select(space, "sample:5", 1)
    listed = tmp_path / "archs.txt"
    listed.write_text(f"# two cells\n{space.key(7)}\n\n{space.key(8)}  # the eighth\n")
    assert selection.select(space, f"file:{listed}") == [space.key(7), space.key(8)]
    for bad in ("sample:0", "range:5-3", "nope", "indices:99999", "sample:x",
                f"file:{tmp_path / 'none.txt'}"):
        with pytest.raises(ValueError, match="bad architecture selection"):
            selection.select(space, bad)
    assert common.parse_int_list("0,2-4") == [0, 2, 3, 4]
    assert common.parse_sizes("20,100,0.8") == [20, 100, 0.8]
    with pytest.raises(common.ExperimentError):
        common.parse_sizes("1.5")


def test_notebook_is_valid():
    path = REPO / "notebooks" / "zcjax_colab.ipynb"
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4 and nb["cells"]
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], (list, str))
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for step in ("score.run(", "correlate.run(", "robustness.run(", "search.run(", "jax.devices()"):
        assert step in code


def test_benchmark_engine_strategy_times_every_cell(tmp_path):
    out = tmp_path / "bench.json"
    run_main(benchmark, ["benchmark", *TINY, "--strategies=engine", "--cells=10867,15133",
                         "--proxies=grad_norm,snip", "--singles=false", "--repeats=1",
                         f"--json_out={out}"])
    rows = json.loads(out.read_text())["rows"]
    assert {(r["arch"], r["proxies"]) for r in rows} == {(10867, "grad_norm+snip"),
                                                         (15133, "grad_norm+snip")}
    assert all(r["strategy"] == "engine" and r["run_s"] > 0 for r in rows)


def test_benchmark_reference_says_what_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="PyTorch|zero-cost-nas checkout"):
        benchmark_reference.load_reference(str(tmp_path))
    with pytest.raises(SystemExit, match="not a NASLib checkout"):
        benchmark_reference.load_naslib(str(tmp_path))


def test_benchmark_reference_table_sums_naslib_singles_and_compares_the_same_set():
    from zcjax import proxies

    measures = ("grad_norm", "snip")
    sets = benchmark_reference.zcjax_sets(["measures", "suite", "synflow+nwot"], measures)
    assert list(sets.values()) == [measures, proxies.SUITE, ("synflow", "nwot")]
    same, suite, pair = sets
    rows = [dict(arch=7, side="reference", item="NASLib: grad_norm", first_call_s=9, run_s=3.0),
            dict(arch=7, side="reference", item="NASLib: snip", first_call_s=9, run_s=1.0),
            dict(arch=7, side="zcjax", item=same, first_call_s=101.0, run_s=1.0),
            dict(arch=7, side="zcjax", item=suite, first_call_s=5.0, run_s=5.0),
            dict(arch=7, side="zcjax", item=pair, first_call_s=2.0, run_s=0.5)]
    table = benchmark_reference.summarise(rows, measures, sets, naslib=True).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    row = dict(zip(header, (c.strip() for c in table[2].strip("|").split("|"))))
    assert row["reference, the 2 measures (s)"] == "4.00"  # the sum of the single calls
    assert row["speed-up"] == "4.0"  # only for the set that equals the reference's
    assert header.count("speed-up") == 1
    assert row[f"compile, {same} (s, once)"] == "100"


def test_throughput_times_the_first_architecture_apart(capsys):
    from experiments import throughput

    run_main(throughput, [*TINY, "--archs=indices:10867,15133,4384", "--proxies=grad_norm",
                          "--nocompilation_cache"])
    out = capsys.readouterr().out
    assert "3 architectures x 1 seeds x 1 proxies" in out
    assert "architectures/s" in out and "the whole pool (15,625 architectures)" in out
