"""The NAS-Bench-201 robustness dataset (Jung, Lukasik & Keuper, ICLR 2023).

"Neural Architecture Design and Robustness: A Dataset" evaluates all 6,466 non-isomorphic
NAS-Bench-201 cells, trained normally, on clean test data, under four L-infinity adversarial
attacks over a range of radii, and (CIFAR-10 and CIFAR-100 only) under the 15 common corruptions
of Hendrycks & Dietterich (ICLR 2019) at severities 1..5. Accuracies are fractions in [0, 1].
Original data and helper: https://github.com/steffen-jung/robustness-dataset.

The values ship losslessly in ``zcjax/resources/nb201_robustness.npz`` (written by
``experiments/make_resources.py``; see ``zcjax/resources/PROVENANCE.md``). Every cell gets the
value of its isomorphism class, so the arrays here are indexed like NAS-Bench-201 (15,625 cells).

Example (the check given by the dataset's authors)::

    >>> accuracy_of(13433, "cifar10", "clean")
    0.893
    >>> accuracy_of(13433, "cifar10", "pgd@Linf", epsilon=1.0)
    0.336
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from typing import NamedTuple, Optional

import numpy as np

from zcjax.benchmarks.nb201 import DATASETS, Arch, arch_index, canonical_dataset

__all__ = [
    "DATASETS", "ATTACKS", "CORRUPTIONS", "SEVERITIES", "KEYS", "epsilons", "keys",
    "accuracy", "accuracy_of", "isomorph_ids",
]

#: Adversarial attacks, all L-infinity: FGSM, PGD, and AutoAttack's APGD-CE and Square.
ATTACKS: tuple[str, ...] = ("fgsm@Linf", "pgd@Linf", "aa_apgd-ce@Linf", "aa_square@Linf")

#: The 15 common corruptions (CIFAR-10-C / CIFAR-100-C), CIFAR only.
CORRUPTIONS: tuple[str, ...] = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost",
    "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur",
    "pixelate", "shot_noise", "snow", "zoom_blur",
)

#: Corruption severities.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Every evaluation key.
KEYS: tuple[str, ...] = ("clean",) + ATTACKS + CORRUPTIONS

_CIFAR = ("cifar10", "cifar100")


class _Data(NamedTuple):
    isomorph_ids: np.ndarray       # (6466,) evaluated ids, ascending
    row_of_index: np.ndarray       # (15625,) row of each NB201 index in the tables
    epsilons: dict[str, tuple[float, ...]]
    tables: dict[tuple[str, str], np.ndarray]  # (dataset, key) -> float64, NaN where missing


@functools.lru_cache(maxsize=None)
def _data() -> _Data:
    path = importlib.resources.files("zcjax.resources") / "nb201_robustness.npz"
    with path.open("rb") as f, np.load(f) as z:
        if int(z["format_version"]) != 1:
            raise RuntimeError(f"nb201_robustness.npz: unknown format {int(z['format_version'])}")
        scale = float(z["scale"])
        missing = int(z["missing_code"])
        iso_ids = z["isomorph_ids"].astype(np.int64)
        iso_of_index = z["isomorph_of_index"].astype(np.int64)
        rows = np.searchsorted(iso_ids, iso_of_index)
        if not np.array_equal(iso_ids[rows], iso_of_index):
            raise RuntimeError("nb201_robustness.npz: an isomorph id has no row")
        eps = {a: tuple(float(e) for e in z[f"epsilons/{a}"]) for a in ATTACKS}
        tables = {}
        for name in z.files:
            if not name.startswith("acc/"):
                continue
            _, dataset, key = name.split("/", 2)
            codes = z[name]
            values = codes.astype(np.float64) / scale
            values[codes == missing] = np.nan
            values.setflags(write=False)
            tables[(dataset, key)] = values
    for a in (rows, iso_ids):
        a.setflags(write=False)
    return _Data(iso_ids, rows, eps, tables)


def keys(dataset: str) -> tuple[str, ...]:
    """The evaluation keys available for ``dataset`` (no corruptions on ImageNet16-120)."""
    dataset = canonical_dataset(dataset)
    return KEYS if dataset in _CIFAR else ("clean",) + ATTACKS


def epsilons(attack: str) -> tuple[float, ...]:
    """The L-infinity radii of an attack, in units of 1/255 (e.g. ``1.0`` means 1/255)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; expected one of {ATTACKS}")
    return _data().epsilons[attack]


def isomorph_ids() -> np.ndarray:
    """The 6,466 evaluated cells (smallest NB201 index of each isomorphism class), ascending."""
    return _data().isomorph_ids.copy()


def _column(dataset: str, key: str, epsilon: Optional[float],
            severity: Optional[int]) -> np.ndarray:
    """The (6466,) column of one evaluation, validated."""
    dataset = canonical_dataset(dataset)
    if key not in KEYS:
        raise ValueError(f"unknown robustness key {key!r}; expected 'clean', an attack "
                         f"{ATTACKS} or a corruption {CORRUPTIONS}")
    if key in CORRUPTIONS and dataset not in _CIFAR:
        raise ValueError(f"corruption {key!r}: common corruptions only exist for CIFAR "
                         f"{_CIFAR}, not {dataset!r}")
    table = _data().tables[(dataset, key)]
    if key == "clean":
        if epsilon is not None or severity is not None:
            raise ValueError("'clean' takes neither epsilon nor severity")
        return table
    if key in ATTACKS:
        if severity is not None:
            raise ValueError(f"attack {key!r} takes an epsilon, not a severity")
        eps = epsilons(key)
        if epsilon is None:
            raise ValueError(f"attack {key!r} needs epsilon=, one of {eps} (units of 1/255)")
        try:
            e = float(epsilon)
        except (TypeError, ValueError):
            raise ValueError(f"epsilon must be a number, one of {eps}; got {epsilon!r}") from None
        for col, candidate in enumerate(eps):
            if math.isclose(e, candidate, rel_tol=1e-9, abs_tol=1e-12):
                return table[:, col]
        raise ValueError(f"attack {key!r} has no epsilon {epsilon!r}; expected one of {eps} "
                         "(units of 1/255)")
    # A corruption.
    if epsilon is not None:
        raise ValueError(f"corruption {key!r} takes a severity, not an epsilon")
    if severity is None:
        raise ValueError(f"corruption {key!r} needs severity=, one of {SEVERITIES}")
    if isinstance(severity, (bool, np.bool_)) or not hasattr(severity, "__index__") \
            or int(severity) not in SEVERITIES:
        raise ValueError(f"corruption {key!r}: severity must be one of {SEVERITIES}, "
                         f"got {severity!r}")
    return table[:, int(severity) - 1]


def accuracy(dataset: str, key: str, *, epsilon: Optional[float] = None,
             severity: Optional[int] = None) -> np.ndarray:
    """Accuracy in [0, 1] of all 15,625 cells, indexed by NAS-Bench-201 index.

    Each cell gets the value of its isomorphism class (isomorphic cells compute the same
    function and were evaluated once).

    Args:
      dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"`` (aliases accepted).
      key: ``"clean"``, an attack in :data:`ATTACKS` or a corruption in :data:`CORRUPTIONS`.
      epsilon: for an attack (required): the radius in units of 1/255, one of
        :func:`epsilons`.
      severity: for a corruption (required): 1..5.

    Returns:
      float64 array of shape (15625,); NaN where the dataset has no value (none in the
      shipped release).

    Raises:
      ValueError: unknown dataset, key, epsilon or severity; a corruption on ImageNet16-120;
        an attack without epsilon or a corruption without severity.
    """
    return _column(dataset, key, epsilon, severity)[_data().row_of_index]


def accuracy_of(arch: Arch, dataset: str, key: str, *, epsilon: Optional[float] = None,
                severity: Optional[int] = None) -> float:
    """Accuracy in [0, 1] of one cell (index, official string or Genotype); see
    :func:`accuracy`."""
    column = _column(dataset, key, epsilon, severity)
    return float(column[_data().row_of_index[arch_index(arch)]])
