"""NAS-Bench-NLP ground truth from training logs, on small files written in the logs' format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from zcjax import spaces
from zcjax.benchmarks.nb_nlp import NBNLPBenchmark, read_log
from zcjax.spaces.nb_nlp.recipe import EXAMPLES

RNN, GRU, LSTM = EXAMPLES["rnn"], EXAMPLES["gru"], EXAMPLES["lstm"]


def _log(recipe: str, test, status="OK", data="data/ptb", experiment=999999999):
    """One run as main_one_model_train.py writes it (json.dump of vars(args) and the stats)."""
    return {"data": data, "recepie_id": 3, "recepies_list_path": "data/recepies_example.json",
            "cuda": True, "batch_size": 20, "model": "CustomRNN", "emsize": 400, "nhid": 600,
            "nlayers": 3, "dropout": 0.4, "dropouth": 0.25, "dropouti": 0.4, "dropoute": 0.1,
            "wdrop": 0.5, "tied": True, "bptt": 70, "lr": 0.001, "wdecay": 1.2e-06,
            "epochs": 50, "alpha": 2, "beta": 1, "log_interval": 200, "clip": 0.25,
            "eval_batch_size": 50, "recepie": recipe, "experiment_id": experiment,
            "init_time": "2020-04-18_07-35-19", "num_params": 5731600,
            "wall_times": [500.0] * len(test), "train_losses": [t + 0.1 for t in test],
            "val_losses": [t + 0.05 for t in test], "test_losses": list(test), "status": status}


@pytest.fixture
def logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    runs = [("a", RNN, [5.5, 4.75]), ("b", GRU, [5.0, 4.5]), ("c", GRU, [5.0, 4.25]),
            ("d", LSTM, [6.0, float("nan")])]
    for name, recipe, test in runs:
        status = "OK" if math.isfinite(test[-1]) else "loss is nan!"
        # json.dump writes NaN as the logs do
        (folder / f"log_stats_model_{name}_2020-04-18_07-35-19_999.json").write_text(
            json.dumps(_log(recipe, test, status)))
    (folder / "dump_weights_model_a.pt").write_bytes(b"not a log")
    (folder / "notes.json").write_text("{}")
    return folder


def test_final_losses_and_perplexities(logs):
    bench = NBNLPBenchmark.from_logs(logs)
    assert bench.datasets == ("ptb",)
    assert bench.archs() == (RNN, GRU, LSTM)
    np.testing.assert_allclose(bench.lookup([RNN, GRU]), [4.75, 4.375])  # GRU: mean of 2 runs
    np.testing.assert_allclose(bench.lookup([RNN], "test_perplexity"), [math.exp(4.75)])
    np.testing.assert_allclose(bench.lookup([RNN], "val_loss"), [4.8])
    assert bench.runs(GRU) == 2 and bench.runs(RNN) == 1
    assert np.isnan(bench.lookup([LSTM])[0])  # a diverged run logs NaN
    assert not bench.is_higher_better("test_loss")
    # any spacing of a recipe finds it; a valid recipe without logs is NaN
    spaced = json.dumps(json.loads(RNN), indent=1)
    assert bench.lookup([spaced])[0] == 4.75
    other = spaces.get("nb_nlp").sample(1)[0].to_string()
    assert np.isnan(bench.lookup([other])[0])


def test_bad_input_is_a_clear_error(logs, tmp_path_factory):
    bench = NBNLPBenchmark.from_logs(logs)
    with pytest.raises(ValueError, match="no 'accuracy'"):
        bench.lookup([RNN], "accuracy")
    with pytest.raises(ValueError, match="not a JSON recipe"):
        bench.lookup(["nonsense"])
    bad = logs / "log_stats_model_e_x.json"
    bad.write_text(json.dumps({**_log(RNN, [1.0]), "recepie": '{"h_new_0": {"op": "conv"}}'}))
    with pytest.raises(ValueError, match="log_stats_model_e_x.json.*recipe is not valid"):
        NBNLPBenchmark.from_logs(logs)
    bad.write_text("{")
    with pytest.raises(ValueError, match="log_stats_model_e_x.json is not a JSON log"):
        read_log(bad)
    bad.write_text(json.dumps({"recepie": RNN}))
    with pytest.raises(ValueError, match="missing key"):
        read_log(bad)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="holds no log_stats_model"):
        NBNLPBenchmark.from_logs(empty)
    with pytest.raises(FileNotFoundError):
        NBNLPBenchmark.from_logs(empty / "missing")


def test_the_space_finds_the_logs_in_the_workspace(tmp_path, logs):
    folder = tmp_path / "ws" / "data" / "nb_nlp"
    folder.mkdir(parents=True)
    logs.rename(folder / "train_logs_single_run")
    bench = spaces.get("nb_nlp").benchmark(tmp_path / "ws")
    assert bench is not None and bench.archs() == (RNN, GRU, LSTM)
