"""NAS-Bench-101 ground truth: CIFAR-10 validation accuracy of 500 sampled cells.

Reads ``zcjax/resources/nb101_cifar10_val_accuracy.csv`` (see
``zcjax/resources/PROVENANCE.md``): 500 rows, each a cell in NASLib's flat encoding (the 7x7
adjacency matrix row by row, then op codes 0=input, 1=output, 2=maxpool3x3, 3=conv1x1,
4=conv3x3) and its validation accuracy in percent after 108 epochs, from NASLib's
``zc_nasbench101.json`` (NAS-Bench-Suite-Zero, Krishnakumar et al., NeurIPS 2022).

Looked up by the graph hash
---------------------------
Cells are identified by the benchmark's graph hash (:mod:`zcjax.spaces.nb101.isomorphism`), as
``nasbench.api`` identifies them: any string of a cell isomorphic to a row's cell (or equal to
it after pruning) finds that row's value.

The 500 rows are 292 graph classes: the cells were drawn with the benchmark's random sampler
(uniform random matrices, which favour sparse cells after pruning: ~9% of its draws prune to
the input-to-output projection alone, and 55 of these rows do), in unpruned form. NAS-Bench-101
trained every cell three times and its ``query`` returns one of the three runs at random; the
rows of one class carry such single runs (the 55 rows of the projection-only cell hold the
values 83.163, 83.464 and 83.584). A class's value here is the **mean over its rows**, so every
string of a class gets one value and the duplicates' runs are averaged (closer to the
three-run mean that zero-cost papers correlate with). :func:`row_accuracy` keeps each row's own
value; :func:`class_of` gives each row's class.
"""

from __future__ import annotations

import ast
import csv
import functools
import importlib.resources
from typing import TYPE_CHECKING, Iterable, NamedTuple, Union

import numpy as np

from zcjax.spaces.base import Benchmark
from zcjax.validation import cap

if TYPE_CHECKING:  # imported lazily below: the space package pulls in Flax.
    from zcjax.spaces.nb101.genotype import NB101Cell

#: The data sets with ground truth (NAS-Bench-101 trained on CIFAR-10 only).
DATASETS: tuple[str, ...] = ("cifar10",)
#: Rows of the shipped table.
NUM_ROWS = 500
_FILE = "nb101_cifar10_val_accuracy.csv"

Arch = Union["NB101Cell", str]


class _Table(NamedTuple):
    arch: tuple[str, ...]
    hashes: tuple[str, ...]
    accuracy: np.ndarray
    class_accuracy: dict[str, float]


@functools.lru_cache(maxsize=None)
def _table() -> _Table:
    from zcjax.spaces.nb101.genotype import NB101Cell
    from zcjax.spaces.nb101.isomorphism import graph_hash

    path = importlib.resources.files("zcjax.resources") / _FILE
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != NUM_ROWS:
        raise RuntimeError(f"{_FILE} has {len(rows)} rows, expected {NUM_ROWS}")
    cells = [NB101Cell.from_naslib_tuple(ast.literal_eval(r["adjacency_7x7_then_ops"]))
             for r in rows]
    hashes = tuple(graph_hash(c) for c in cells)
    accuracy = np.array([float(r["val_accuracy"]) for r in rows], dtype=np.float64)
    accuracy.setflags(write=False)
    per_class: dict[str, list[float]] = {}
    for h, a in zip(hashes, accuracy):
        per_class.setdefault(h, []).append(float(a))
    return _Table(tuple(c.to_string() for c in cells), hashes, accuracy,
                  {h: float(np.mean(v)) for h, v in per_class.items()})


def canonical_dataset(dataset: str) -> str:
    """``"cifar10"`` for any spelling of CIFAR-10 (case, ``-`` and ``_`` ignored)."""
    if isinstance(dataset, str) and dataset.strip().lower().replace("-", "").replace(
            "_", "") == "cifar10":
        return "cifar10"
    raise ValueError(f"unknown NAS-Bench-101 data set {cap(repr(dataset))}; NAS-Bench-101 "
                     f"has {DATASETS}")


def _hash(arch: Arch) -> str:
    from zcjax.spaces.nb101.isomorphism import graph_hash

    return graph_hash(arch)


def val_accuracy_of(arch: Arch) -> float:
    """Validation accuracy (percent) of a cell's graph class; NaN when the table lacks it."""
    return _table().class_accuracy.get(_hash(arch), float("nan"))


def row_accuracy() -> np.ndarray:
    """Each row's own validation accuracy, in file order (a fresh copy, shape (500,))."""
    return _table().accuracy.copy()


def class_of() -> tuple[str, ...]:
    """The graph hash of each row, in file order."""
    return _table().hashes


class NB101Benchmark(Benchmark):
    """NAS-Bench-101 CIFAR-10 validation accuracy (percent, 108 epochs) of 500 cells.

    ``archs()`` lists the 500 rows' strings in file order; ``lookup`` takes strings or
    :class:`~zcjax.spaces.nb101.genotype.NB101Cell` objects and returns the mean over the rows
    of each one's graph class (module doc).
    """

    space = "nb101"
    datasets = DATASETS
    metrics = ("val_accuracy",)
    higher_is_better = {"val_accuracy": True}
    source = ("NAS-Bench-101 (Ying et al., ICML 2019) validation accuracy at 108 epochs of 500 "
              "cells, from NASLib's zc_nasbench101.json (NAS-Bench-Suite-Zero); see "
              "zcjax/resources/PROVENANCE.md")

    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        self.check(None, None if dataset is None else canonical_dataset(dataset))
        return _table().arch

    def lookup(self, archs: Iterable[Arch], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        self.check(metric, None if dataset is None else canonical_dataset(dataset))
        return np.array([val_accuracy_of(a) for a in archs], dtype=np.float64)


BENCHMARK = NB101Benchmark()
