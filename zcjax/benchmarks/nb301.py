"""NAS-Bench-301 ground truth: CIFAR-10 validation accuracies of 725 DARTS architectures.

Siems, Zimmer, Zela, Lukasik, Keuper & Hutter, "NAS-Bench-301 and the Case for Surrogate
Benchmarks for Neural Architecture Search", 2020 (arXiv:2008.09777). The values are those of
NAS-Bench-301's surrogate (validation accuracy in percent after 100 epochs of NAS-Bench-301's
training pipeline) as NAS-Bench-Suite-Zero exported them beside its zero-cost scores
(``automl/NASLib`` ``naslib/data/zc_nasbench301.json``, Krishnakumar et al., NeurIPS 2022).

The table ships as ``zcjax/resources/nb301_benchmark.csv`` (see
``zcjax/resources/PROVENANCE.md``): one row per architecture, its genotype in NASLib's integer
encoding and its accuracy. Architectures are looked up by architecture string (the DARTS
notation, or NASLib's encoding as a string) or
:class:`~zcjax.spaces.nb301.genotype.DartsGenotype`, through the canonical form: a string whose
nodes list their two pairs in the other order finds the same row.
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
    from zcjax.spaces.nb301.genotype import DartsGenotype

#: The data set of NAS-Bench-301.
DATASETS: tuple[str, ...] = ("cifar10",)
#: The architectures in the shipped table.
NUM_ARCHS = 725

#: What identifies an architecture: a genotype or an architecture string.
Arch = Union["DartsGenotype", str]


class _Table(NamedTuple):
    genotypes: tuple["DartsGenotype", ...]
    archs: tuple[str, ...]
    val_accuracy: np.ndarray
    row_of: dict["DartsGenotype", int]  # canonical genotype -> row


@functools.lru_cache(maxsize=None)
def _table() -> _Table:
    from zcjax.spaces.nb301.genotype import DartsGenotype

    path = importlib.resources.files("zcjax.resources") / "nb301_benchmark.csv"
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != NUM_ARCHS:
        raise RuntimeError(f"nb301_benchmark.csv has {len(rows)} rows, expected {NUM_ARCHS}")
    genotypes = tuple(DartsGenotype.from_naslib(ast.literal_eval(r["naslib_genotype"]))
                      for r in rows)
    row_of = {g.canonical(): i for i, g in enumerate(genotypes)}
    if len(row_of) != len(genotypes):
        raise RuntimeError("nb301_benchmark.csv lists an architecture twice")
    accuracy = np.array([float(r["val_accuracy"]) for r in rows], np.float64)
    accuracy.setflags(write=False)
    return _Table(genotypes, tuple(g.to_string() for g in genotypes), accuracy, row_of)


def canonical_dataset(dataset: str) -> str:
    """``"cifar10"`` for any spelling of CIFAR-10 (case, ``-`` and ``_`` ignored)."""
    if isinstance(dataset, str) and dataset.strip().lower().replace("-", "").replace(
            "_", "") == "cifar10":
        return "cifar10"
    raise ValueError(f"NAS-Bench-301 has no data set {cap(repr(dataset), 80)}; it has "
                     f"{', '.join(DATASETS)}")


def genotypes() -> tuple["DartsGenotype", ...]:
    """The 725 architectures of the table, in its order."""
    return _table().genotypes


def val_accuracy() -> np.ndarray:
    """Validation accuracy in percent of the 725 architectures, in table order (a copy)."""
    return _table().val_accuracy.copy()


def row_of(arch: Arch) -> int | None:
    """The table row of an architecture (any pair order within a node), or ``None``."""
    from zcjax.spaces.nb301.genotype import as_genotype

    return _table().row_of.get(as_genotype(arch).canonical())


def val_accuracy_of(arch: Arch) -> float:
    """Validation accuracy in percent of one architecture; NaN if the table lacks it."""
    row = row_of(arch)
    return float("nan") if row is None else float(_table().val_accuracy[row])


class NB301Benchmark(Benchmark):
    """NAS-Bench-301 surrogate validation accuracies (percent) of 725 architectures,
    looked up by architecture string or genotype; NaN for an architecture not in the table."""

    space = "nb301"
    datasets = DATASETS
    metrics = ("val_accuracy",)
    higher_is_better = {"val_accuracy": True}
    source = ("NAS-Bench-301 surrogate validation accuracy (Siems et al., 2020) as exported in "
              "automl/NASLib naslib/data/zc_nasbench301.json (NAS-Bench-Suite-Zero, Krishnakumar "
              "et al., NeurIPS 2022); see zcjax/resources/PROVENANCE.md")

    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        self.check(None, dataset if dataset is None else canonical_dataset(dataset))
        return _table().archs

    def lookup(self, archs: Iterable[Arch], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        self.check(metric, dataset if dataset is None else canonical_dataset(dataset))
        return np.array([val_accuracy_of(a) for a in archs], dtype=np.float64)


BENCHMARK = NB301Benchmark()
