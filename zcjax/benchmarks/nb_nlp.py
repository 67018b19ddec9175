"""NAS-Bench-NLP ground truth from the benchmark's published training logs (the user's copy).

Klyuchnikov et al., "NAS-Bench-NLP", 2020; logs in ``fmsnew/nas-bench-nlp-release``:
``train_logs_single_run/logs.zip`` (14,322 Penn Treebank runs, one seed),
``train_logs_multi_runs/logs.zip`` (4,114 recipes, three seeds each) and
``train_logs_wikitext-2/logs.zip``. zcjax ships none of them: unzip one into the workspace
(``<workspace>/data/nb_nlp/train_logs_single_run/``, see WORKSPACE.md) or pass any folder to
:meth:`NBNLPBenchmark.from_logs`.

Log format (``main_one_model_train.py``): one JSON object per run, in a file
``log_stats_model_<recepie_id>_<time>_<experiment_id>.json``, holding the run's arguments
(``data``, ``emsize``, ``nhid``, ``nlayers``, dropouts, ...), ``recepie`` (the recipe as
``json.dumps`` text), ``num_params``, ``status`` (``"OK"``, ``"loss is nan!"``, an exception)
and per-epoch lists ``train_losses``, ``val_losses``, ``test_losses`` (mean cross-entropy per
token, natural log: the log-perplexity) and ``wall_times``.

Metrics (lower is better for all): ``test_loss`` (default), ``val_loss``, ``train_loss``: the
last logged epoch, as the reference correlation study reads them (``log["test_losses"][-1]``,
``egracheva/epsinas`` ``Reproduce.ipynb``; NaN when the list is empty); ``test_perplexity`` and
``val_perplexity`` are their exponentials. A run that diverged (``status`` ``"loss is nan!"``)
logs NaN as its last loss and so has NaN. A recipe logged by several runs (the multi-run logs)
has the mean of its runs' values (NaN runs left out; NaN when all are NaN), as the reference's
``accs_mean``. The data set is the logs' ``data`` folder name (``ptb``, ``wikitext-2``).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Iterable, Mapping

import numpy as np

from zcjax.spaces.base import Benchmark
from zcjax.spaces.nb_nlp.recipe import as_recipe
from zcjax.validation import cap

#: The files of a log folder.
LOG_FILE = re.compile(r"log_stats_model_.*\.json")

#: metric -> (the logs' key, exponentiate).
METRICS: Mapping[str, tuple[str, bool]] = {
    "test_loss": ("test_losses", False),
    "val_loss": ("val_losses", False),
    "train_loss": ("train_losses", False),
    "test_perplexity": ("test_losses", True),
    "val_perplexity": ("val_losses", True),
}
_REQUIRED = ("recepie", "data", "train_losses", "val_losses", "test_losses")


def _final(values: Any, path: str, key: str) -> float:
    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{cap(path, 300)}: '{key}' must be a list of numbers")
    return float(values[-1]) if values else math.nan


def read_log(path: "str | os.PathLike") -> dict[str, Any]:
    """One log file: ``{"arch", "dataset", "status", "num_params", <key>: final value}``.

    Raises:
      ValueError: naming the file: not JSON, not an object, a missing key, a recipe that is
        not valid, losses that are not lists of numbers.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            log = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{cap(path, 300)} is not a JSON log ({e})") from None
    if not isinstance(log, dict):
        raise ValueError(f"{cap(path, 300)}: a log is a JSON object, got {type(log).__name__}")
    missing = [k for k in _REQUIRED if k not in log]
    if missing:
        raise ValueError(f"{cap(path, 300)}: missing key(s) {missing}")
    try:
        arch = as_recipe(log["recepie"]).to_string()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{cap(path, 300)}: its recipe is not valid: {e}") from None
    record = {"arch": arch, "dataset": os.path.basename(str(log["data"]).rstrip("/")),
              "status": log.get("status"), "num_params": log.get("num_params")}
    for key in ("train_losses", "val_losses", "test_losses"):
        record[key] = _final(log[key], path, key)
    return record


class NBNLPBenchmark(Benchmark):
    """Final losses and perplexities of the logged runs, looked up by recipe string.

    Recipes are matched by their string (:meth:`~zcjax.spaces.nb_nlp.recipe.Recipe.to_string`
    of the parsed recipe, so any JSON spacing of the same recipe finds it); a valid recipe that
    the logs do not hold gets NaN.
    """

    space = "nb_nlp"
    datasets: tuple[str, ...] = ("ptb",)
    metrics = tuple(METRICS)
    higher_is_better = {m: False for m in METRICS}
    source = ("NAS-Bench-NLP training logs (Klyuchnikov et al. 2020, "
              "fmsnew/nas-bench-nlp-release), the user's copy")

    def __init__(self, records: Iterable[Mapping[str, Any]], source: str | None = None):
        self._values: dict[str, dict[str, dict[str, float]]] = {}
        self._order: dict[str, list[str]] = {}
        runs: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for record in records:
            key = (record["dataset"], record["arch"])
            if key not in runs:
                self._order.setdefault(record["dataset"], []).append(record["arch"])
            runs.setdefault(key, []).append(record)
        if not runs:
            raise ValueError("no NAS-Bench-NLP runs to build a benchmark from")
        for (dataset, arch), group in runs.items():
            values = {}
            for key in ("train_losses", "val_losses", "test_losses"):
                column = np.array([r[key] for r in group], np.float64)
                values[key] = (float(np.nanmean(column)) if np.isfinite(column).any()
                               else math.nan)
            values["runs"] = len(group)
            self._values.setdefault(dataset, {})[arch] = values
        self.datasets = tuple(sorted(self._order, key=lambda d: (d != "ptb", d)))
        if source is not None:
            self.source = source

    @classmethod
    def from_logs(cls, folder: "str | os.PathLike") -> "NBNLPBenchmark":
        """Every ``log_stats_model_*.json`` in ``folder`` (sorted by name; other files ignored).

        Raises:
          FileNotFoundError: no such folder.
          ValueError: no log file in it, or a malformed one (named).
        """
        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"no NAS-Bench-NLP log folder at {cap(folder, 300)}")
        names = sorted(n for n in os.listdir(folder) if LOG_FILE.fullmatch(n))
        if not names:
            raise ValueError(f"{cap(folder, 300)} holds no log_stats_model_*.json file")
        return cls([read_log(os.path.join(folder, n)) for n in names],
                   source=f"NAS-Bench-NLP logs in {folder}")

    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        _, dataset = self.check(None, dataset)
        return tuple(self._order[dataset])

    def runs(self, arch: str, dataset: str | None = None) -> int:
        """How many logged runs a recipe has (0 if none)."""
        _, dataset = self.check(None, dataset)
        entry = self._values[dataset].get(as_recipe(arch).to_string())
        return 0 if entry is None else entry["runs"]

    def lookup(self, archs: Iterable[str], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        metric, dataset = self.check(metric, dataset)
        key, exponentiate = METRICS[metric]
        table = self._values[dataset]
        out = []
        for arch in archs:
            entry = table.get(as_recipe(arch).to_string())
            value = math.nan if entry is None else entry[key]
            out.append(math.exp(value) if exponentiate and math.isfinite(value) else value)
        return np.array(out, np.float64)
