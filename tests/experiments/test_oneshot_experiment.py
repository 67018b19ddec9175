"""``python -m experiments.oneshot`` in-process on a tiny setting, and its rerun.

Two supernets (C=4, N=1) train for two epochs of 16-image batches of the bundled images and
score 12 cells at epochs 1 and 2; zero-shot estimators are left out (``--zse=``: they compile
their own programs), so the comparison holds the one-shot scores, parameters and FLOPs. A
rerun of the same command trains and scores nothing and writes the same tables.
"""

from __future__ import annotations

import csv
import math
import json
import pathlib
import sys

import pytest
from absl import flags
from absl.testing import flagsaver

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Every script in one process: their flags must not clash (absl raises on a duplicate).
from experiments import (benchmark, benchmark_reference, common, correlate, oneshot,  # noqa: E402,F401
                         quickstart, robustness, score, search)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_compiles")]
FLAGS = flags.FLAGS
TINY = ["--channels=4", "--cells_per_stage=1", "--epochs=2", "--train_batch_size=16",
        "--num_cells=12", "--score_epochs=1,2", "--eval_batch_size=50", "--zse=",
        "--forest_train_size=6"]


def run_main(argv):
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        FLAGS(["prog", *argv])
        return oneshot.main(["prog"])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_demo_pipeline_runs_and_resumes(tmp_path, capsys):
    ws = tmp_path / "ws"
    run_main([f"--workspace={ws}", *TINY])
    out = capsys.readouterr().out
    results = ws / "results"
    prefix = results / "oneshot_cifar10_C4N1_demo"
    criteria = read_csv(f"{prefix}_criteria.csv")
    assert [(r["seed"], r["epoch"]) for r in criteria] == [("0", "1.0"), ("0", "2.0"),
                                                          ("1", "1.0"), ("1", "2.0")]
    estimators = [r["proxy"] for r in read_csv(f"{prefix}_vs_zse.csv")]
    assert estimators[:4] == ["one-shot (seed 0)", "one-shot (seed 1)", "params", "flops"]
    assert "random forest: one-shot + zero-shot" in estimators
    variance = [r["what"] for r in read_csv(f"{prefix}_variance.csv")]
    assert "τ(seed 0, seed 1)" in variance and "isomorphic cells, seed 0" in variance
    for name in ("criteria", "training", "operations", "params", "isomorphic"):
        assert pathlib.Path(f"{prefix}_{name}.png").stat().st_size > 1000
    summary = json.loads(pathlib.Path(f"{prefix}.json").read_text())
    assert len(summary["scored"]) == 4 and len(summary["cells"]) == 12
    assert "--config_hash=" in out and "python -m experiments.correlate" in out

    from zcjax.sweep import ResultStore

    with ResultStore(results / "scores.sqlite") as store:
        rows = len(store)
    assert rows == 4 * 12 * 2  # 4 checkpoints x 12 cells x (accuracy, loss)
    before = pathlib.Path(f"{prefix}_criteria.csv").read_text()
    run_main([f"--workspace={ws}", *TINY])  # everything stored: nothing is recomputed
    with ResultStore(results / "scores.sqlite") as store:
        assert len(store) == rows
    assert pathlib.Path(f"{prefix}_criteria.csv").read_text() == before
    summary = json.loads(pathlib.Path(f"{prefix}.json").read_text())
    assert math.isnan(summary["timings"]["compile_seed0"])  # no training step ran


def test_bad_flags_are_reported_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match="score_epochs"):
        run_main([f"--workspace={tmp_path}", *TINY, "--score_epochs=3"])
    with pytest.raises(SystemExit, match="ImageNet16|bundled"):
        run_main([f"--workspace={tmp_path}", *TINY, "--dataset=ImageNet16-120"])
