"""NAS-Bench-201 ground truth: test accuracies, parameter counts and isomorphism classes.

Reads the table shipped in ``zcjax/resources/nb201_benchmark.csv`` (15,625 rows in the official
NAS-Bench-201 index order; see ``zcjax/resources/PROVENANCE.md``):

* test accuracy in percent after 200 epochs, as in NATS-Bench's topology search space
  (Dong et al., TPAMI 2021; NAS-Bench-201, Dong & Yang, ICLR 2020) for CIFAR-10, CIFAR-100 and
  ImageNet16-120;
* parameter count in millions of the CIFAR-10 network (C=16, N=5);
* the id of each architecture's isomorphism class (the smallest index in the class; 6,466
  classes), as given by the robustness dataset of Jung et al. (ICLR 2023).

Architectures are queried by what NAS-Bench users know: an index, an official cell string or a
:class:`~zcjax.spaces.nb201.genotype.Genotype`.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
from typing import TYPE_CHECKING, Iterable, NamedTuple, Union

import numpy as np

from zcjax.data import DATASETS, canonical_dataset  # re-exported: NAS-Bench-201's data sets
from zcjax.spaces.base import Benchmark

if TYPE_CHECKING:  # imported lazily below: the space package pulls in Flax.
    from zcjax.spaces.nb201.genotype import Genotype

NUM_CELLS = 15625

#: What identifies a cell: its official index, its cell string or a Genotype.
Arch = Union["Genotype", str, int]

_ACC_COLUMN = {
    "cifar10": "cifar10_test_acc",
    "cifar100": "cifar100_test_acc",
    "ImageNet16-120": "imagenet16_120_test_acc",
}


def arch_index(arch: Arch) -> int:
    """The official NAS-Bench-201 index of an index, cell string or Genotype.

    Raises:
      ValueError: for an index outside 0..15624 or an unparseable cell.
    """
    if isinstance(arch, (bool, np.bool_)):
        raise ValueError(f"cannot read a NAS-Bench-201 cell from a bool: {arch!r}")
    if not isinstance(arch, str) and hasattr(arch, "__index__"):
        index = int(arch)
        if not 0 <= index < NUM_CELLS:
            raise ValueError(f"NAS-Bench-201 index must be in 0..{NUM_CELLS - 1}, got {index}")
        return index
    from zcjax.spaces.nb201 import genotype

    return genotype.index_of(genotype.as_genotype(arch))


class _Table(NamedTuple):
    arch: tuple[str, ...]
    isomorph: np.ndarray
    accuracy: dict[str, np.ndarray]
    params_mb: np.ndarray


@functools.lru_cache(maxsize=None)
def _table() -> _Table:
    path = importlib.resources.files("zcjax.resources") / "nb201_benchmark.csv"
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    if [int(r["index"]) for r in rows] != list(range(NUM_CELLS)):
        raise RuntimeError("nb201_benchmark.csv is not in index order 0..15624")

    def column(name: str, dtype) -> np.ndarray:
        arr = np.array([r[name] for r in rows], dtype=dtype)
        arr.setflags(write=False)
        return arr

    return _Table(
        arch=tuple(r["arch"] for r in rows),
        isomorph=column("isomorph", np.int64),
        accuracy={d: column(c, np.float64) for d, c in _ACC_COLUMN.items()},
        params_mb=column("params_mb_cifar10", np.float64),
    )


def test_accuracy(dataset: str) -> np.ndarray:
    """Test accuracy in percent of all 15,625 cells, in official index order.

    Args:
      dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"`` (aliases accepted, see
        :func:`canonical_dataset`).

    Returns:
      float64 array of shape (15625,) (a fresh copy).
    """
    return _table().accuracy[canonical_dataset(dataset)].copy()


# Not a pytest test despite the name.
test_accuracy.__test__ = False  # type: ignore[attr-defined]


def test_accuracy_of(arch: Arch, dataset: str) -> float:
    """Test accuracy in percent of one cell (index, official string or Genotype)."""
    return float(_table().accuracy[canonical_dataset(dataset)][arch_index(arch)])


test_accuracy_of.__test__ = False  # type: ignore[attr-defined]


def params_mb() -> np.ndarray:
    """Parameters in millions of each cell's CIFAR-10 network (C=16, N=5), shape (15625,)."""
    return _table().params_mb.copy()


def isomorph_ids() -> np.ndarray:
    """Isomorphism-class id of every cell (the smallest index in its class), int64 (15625,)."""
    return _table().isomorph.copy()


def arch_string(arch: Arch) -> str:
    """The official cell string of an index, cell string or Genotype."""
    return _table().arch[arch_index(arch)]


class NB201Benchmark(Benchmark):
    """NAS-Bench-201 test accuracies (percent, 200 epochs) looked up by cell string.

    ``lookup(archs, "test_accuracy", dataset)`` takes cell strings, Genotypes or indices.
    """

    space = "nb201"
    datasets = DATASETS
    metrics = ("test_accuracy",)
    higher_is_better = {"test_accuracy": True}
    source = ("NATS-Bench topology search space, hp=200 (Dong et al., TPAMI 2021), as exported "
              "in v-tao/nats-bench-landscape; see zcjax/resources/PROVENANCE.md")

    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        self.check(None, dataset if dataset is None else canonical_dataset(dataset))
        return _table().arch

    def lookup(self, archs: Iterable[Arch], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        metric, dataset = self.check(metric, None if dataset is None
                                     else canonical_dataset(dataset))
        column = _table().accuracy[dataset]
        return np.array([column[arch_index(a)] for a in archs], dtype=np.float64)


BENCHMARK = NB201Benchmark()
