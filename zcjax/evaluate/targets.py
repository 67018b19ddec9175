"""Evaluation targets over the 15,625 NAS-Bench-201 cells: accuracy and robustness.

A target is a 1-D float array of shape (15625,) in official NAS-Bench-201 index order (NaN
where the benchmark has no value), higher = better. :func:`target` builds one from a short
spec string:

=================================  =============================================================
spec                               meaning
=================================  =============================================================
``test_accuracy``                  NAS-Bench-201 test accuracy after 200 epochs, **percent**
``clean``                          clean accuracy from the robustness dataset, fraction in [0, 1]
``<attack>:eps=<e>``               accuracy under an adversarial attack at L_inf radius e/255
                                   (``e`` one of ``robustness.epsilons(attack)``), fraction;
                                   attacks: ``fgsm@Linf``, ``pgd@Linf``, ``aa_apgd-ce@Linf``,
                                   ``aa_square@Linf``
``corruption:<group>``             mean accuracy over a corruption group (``noise``, ``blur``,
                                   ``weather``, ``digital``) or ``all`` 15, and over
                                   severities 1-5, fraction
``corruption:<name>``              one corruption (e.g. ``fog``), mean over severities 1-5
``corruption:<g|name>:severity=s`` the same at one severity ``s`` in 1..5
``hrs:<attack or corruption>``     harmonic robustness score of ``clean`` and that target
=================================  =============================================================

Data come from :mod:`zcjax.benchmarks.robustness` (the NAS-Bench-201 robustness dataset of
Jung, Lukasik & Keuper, "Neural Architecture Design and Robustness: A Dataset", ICLR 2023)
and :mod:`zcjax.benchmarks.nb201` (Dong & Yang, ICLR 2020).

Corruptions are those of CIFAR-10-C, grouped as in Hendrycks & Dietterich, "Benchmarking
Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019
(:data:`CORRUPTION_GROUPS`). Means over corruptions / severities are plain means: a cell
missing any component is NaN (the metrics in :mod:`zcjax.evaluate.metrics` drop it and report
the count) rather than a mean over a different subset.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from types import ModuleType

import numpy as np

__all__ = [
    "GroundTruth",
    "ground_truth",
    "CORRUPTION_GROUPS",
    "SEVERITIES",
    "TARGET_EXAMPLES",
    "TargetSpec",
    "corruption_mean",
    "hrs",
    "parse_target",
    "target",
]

#: Hendrycks & Dietterich (ICLR 2019) grouping of the 15 CIFAR-10-C corruptions.
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}

#: Corruption severities of CIFAR-10-C.
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: One valid spec of every form accepted by :func:`target`.
TARGET_EXAMPLES: tuple[str, ...] = (
    "test_accuracy",
    "clean",
    "fgsm@Linf:eps=0.5",
    "pgd@Linf:eps=1",
    "aa_apgd-ce@Linf:eps=1",
    "aa_square@Linf:eps=1",
    "corruption:all",
    "corruption:noise",
    "corruption:fog",
    "corruption:fog:severity=3",
    "corruption:weather:severity=5",
    "hrs:pgd@Linf:eps=1",
    "hrs:corruption:all",
)

_FORMS = (
    "'test_accuracy' | 'clean' | '<attack>:eps=<e>' | "
    "'corruption:<all|noise|blur|weather|digital|corruption name>[:severity=<1..5>]' | "
    "'hrs:<attack or corruption spec>'"
)

# The robustness module is looked up on use, so that this module imports (and its pure parts
# are usable) on its own; tests replace these two functions with fakes.


def _rob() -> ModuleType:
    return importlib.import_module("zcjax.benchmarks.robustness")


def _nb201() -> ModuleType:
    return importlib.import_module("zcjax.benchmarks.nb201")


def _attacks() -> tuple[str, ...]:
    return tuple(_rob().ATTACKS)


_DEFAULT_ATTACKS = ("fgsm@Linf", "pgd@Linf", "aa_apgd-ce@Linf", "aa_square@Linf")


def _all_corruptions() -> tuple[str, ...]:
    return tuple(c for group in CORRUPTION_GROUPS.values() for c in group)


# -- formulas ------------------------------------------------------------------------------


def hrs(clean, robust):
    """Harmonic robustness score (CRoZe; Ha et al., "Generalizable Lightweight Proxy for
    Robust NAS against Diverse Perturbations", NeurIPS 2023).

    ``HRS = 2 C R / (C + R)``: the harmonic mean of clean accuracy C and robust accuracy R
    (same units; the result is in those units). 0 where C + R = 0; NaN propagates.
    Works on scalars and arrays (broadcasting).
    """
    c = np.asarray(clean, dtype=np.float64)
    r = np.asarray(robust, dtype=np.float64)
    total = c + r
    out = np.divide(2.0 * c * r, total, out=np.zeros(np.broadcast(c, r).shape), where=total != 0)
    out = np.where(np.isnan(total), np.nan, out)
    return out if out.ndim else float(out)


def _corruption_names(group: str) -> tuple[str, ...]:
    if group == "all":
        return _all_corruptions()
    if group in CORRUPTION_GROUPS:
        return CORRUPTION_GROUPS[group]
    if group in _all_corruptions():
        return (group,)
    raise ValueError(f"unknown corruption group or name {group!r}; expected 'all', one of "
                     f"{tuple(CORRUPTION_GROUPS)} or one of {_all_corruptions()}")


def _check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or int(severity) not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return int(severity)


def corruption_mean(dataset: str, group: str = "all", severity: int | None = None) -> np.ndarray:
    """Mean accuracy (fraction) over the corruptions of ``group`` and over severities.

    ``mean_{c in group, s in severities} accuracy(dataset, c, severity=s)`` with severities
    = (1, ..., 5) when ``severity`` is None, else just ``severity``.

    Args:
      dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.
      group: ``"all"`` (15 corruptions), a key of :data:`CORRUPTION_GROUPS`, or one
        corruption name.
      severity: None (mean over 1..5) or one severity in 1..5.

    Returns:
      float64 array (15625,); NaN for a cell missing any of the averaged values.
    """
    names = _corruption_names(group)
    severities = SEVERITIES if severity is None else (_check_severity(severity),)
    rob = _rob()
    stack = [np.asarray(rob.accuracy(dataset, name, severity=s), dtype=np.float64)
             for name in names for s in severities]
    return np.mean(np.stack(stack), axis=0)


# -- spec parsing --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """A parsed target spec.

    Attributes:
      kind: ``"test_accuracy"``, ``"clean"``, ``"attack"``, ``"corruption"`` or ``"hrs"``.
      name: the attack name, or the corruption group / name; None otherwise.
      epsilon: for attacks, the L_inf radius in units of 1/255.
      severity: for corruptions, the severity, or None for the mean over 1..5.
      robust: for ``"hrs"``, the spec of the robust accuracy.
    """

    kind: str
    name: str | None = None
    epsilon: float | None = None
    severity: int | None = None
    robust: "TargetSpec | None" = None

    @property
    def unit(self) -> str:
        """``"percent"`` for test_accuracy, else ``"fraction"``."""
        return "percent" if self.kind == "test_accuracy" else "fraction"


_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"


def _bad(spec: str, why: str) -> ValueError:
    return ValueError(f"bad target spec {spec!r}: {why}. Valid forms: {_FORMS}; "
                      f"examples: {', '.join(TARGET_EXAMPLES)}")


def parse_target(spec: str) -> TargetSpec:
    """Parses a target spec (see the module docstring) without loading any data.

    Attack names and epsilons are checked against the robustness module when it can be
    imported; the epsilon is checked against ``epsilons(attack)`` only in :func:`target`.

    Raises:
      ValueError: naming the problem and listing the valid forms.
    """
    if not isinstance(spec, str):
        raise _bad(repr(spec), "a spec is a string")
    text = spec.strip()
    if text in ("test_accuracy", "clean"):
        return TargetSpec(kind=text)
    head, _, rest = text.partition(":")
    if head == "hrs":
        if not rest:
            raise _bad(spec, "'hrs:' needs an attack or corruption spec after it")
        inner = parse_target(rest)
        if inner.kind not in ("attack", "corruption"):
            raise _bad(spec, "hrs takes an attack or corruption spec, e.g. 'hrs:pgd@Linf:eps=1'")
        return TargetSpec(kind="hrs", robust=inner)
    if head == "corruption":
        parts = rest.split(":") if rest else []
        if not parts or len(parts) > 2 or not parts[0]:
            raise _bad(spec, "expected 'corruption:<group or name>[:severity=<s>]'")
        try:
            _corruption_names(parts[0])
        except ValueError as e:
            raise _bad(spec, str(e)) from None
        severity = None
        if len(parts) == 2:
            m = re.fullmatch(r"severity=([0-9]+)", parts[1])
            if not m:
                raise _bad(spec, f"expected 'severity=<int>', got {parts[1]!r}")
            try:
                severity = _check_severity(int(m.group(1)))
            except ValueError as e:
                raise _bad(spec, str(e)) from None
        return TargetSpec(kind="corruption", name=parts[0], severity=severity)
    try:
        attacks = _attacks()
    except ImportError:
        attacks = _DEFAULT_ATTACKS
    if head in attacks:
        m = re.fullmatch(r"eps=(" + _NUMBER + ")", rest)
        if not m:
            raise _bad(spec, f"an attack needs ':eps=<number>', e.g. '{head}:eps=1'")
        return TargetSpec(kind="attack", name=head, epsilon=float(m.group(1)))
    raise _bad(spec, f"unknown target {head!r} (attacks: {', '.join(attacks)})")


# -- loading -------------------------------------------------------------------------------


def _match_epsilon(attack: str, epsilon: float):
    available = tuple(_rob().epsilons(attack))
    for e in available:
        if np.isclose(float(e), epsilon, rtol=1e-9, atol=1e-12):
            return e
    raise ValueError(f"epsilon {epsilon:g} not available for {attack}; available: "
                     f"{', '.join(f'{float(e):g}' for e in available)}")


def _load(parsed: TargetSpec, dataset: str) -> np.ndarray:
    if parsed.kind == "test_accuracy":
        return np.asarray(_nb201().test_accuracy(dataset), dtype=np.float64)
    if parsed.kind == "clean":
        return np.asarray(_rob().accuracy(dataset, "clean"), dtype=np.float64)
    if parsed.kind == "attack":
        eps = _match_epsilon(parsed.name, parsed.epsilon)
        return np.asarray(_rob().accuracy(dataset, parsed.name, epsilon=eps), dtype=np.float64)
    if parsed.kind == "corruption":
        return corruption_mean(dataset, parsed.name, parsed.severity)
    if parsed.kind == "hrs":
        return np.asarray(hrs(_load(TargetSpec("clean"), dataset), _load(parsed.robust, dataset)))
    raise AssertionError(parsed.kind)


def target(spec: str, dataset: str) -> np.ndarray:
    """The target array named by ``spec`` for ``dataset``.

    Args:
      spec: see the module docstring and :data:`TARGET_EXAMPLES`.
      dataset: ``"cifar10"``, ``"cifar100"`` or ``"ImageNet16-120"``.

    Returns:
      float64 array (15625,) in NAS-Bench-201 index order, higher = better: percent for
      ``test_accuracy``, fraction in [0, 1] for all others. NaN where the data are missing.

    Raises:
      ValueError: for an unknown or malformed spec (listing the valid forms), or an epsilon
        the dataset does not have (listing those it has).
    """
    return _load(parse_target(spec), dataset)


# -- ground truth of any search space, by architecture ---------------------------------------

#: The NB201 robustness dataset covers NAS-Bench-201 only.
ROBUSTNESS_SPACE = "nb201"


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """Ground-truth values aligned on a list of architectures.

    Attributes:
      values: float64, NaN where the benchmark has no value.
      name: the target (a benchmark metric or a robustness spec).
      dataset: the data set.
      unit: ``"percent"``, ``"fraction"`` or ``""`` (as the benchmark gives it).
      higher_is_better: orientation (False for errors, perplexities).
    """

    values: np.ndarray
    name: str
    dataset: str
    unit: str
    higher_is_better: bool

    def oriented(self) -> np.ndarray:
        """The values turned so that higher is better (what rank metrics compare with)."""
        return self.values if self.higher_is_better else -self.values


def ground_truth(spec: str | None, space, archs, dataset: str | None = None) -> GroundTruth:
    """Ground truth of ``archs`` (architecture strings of ``space``).

    Args:
      spec: a metric of the space's benchmark (``test_accuracy`` for NB201, ``val_accuracy``
        for NB101 / NB301, ...; ``None``: its first), or, on NAS-Bench-201 only, a robustness
        spec of :func:`target` (``clean``, ``pgd@Linf:eps=1``, ``corruption:all``, ``hrs:...``).
      space: a search space or its name.
      archs: architecture strings (or genotypes) of the space.
      dataset: the benchmark's data set (``None``: its first).

    Raises:
      ValueError: the space has no ground truth here, an unknown metric, data set or spec, or a
        robustness spec on a space other than NAS-Bench-201 (the robustness dataset covers
        NB201 only), naming the problem.
    """
    from zcjax import spaces

    space = spaces.get(space) if isinstance(space, str) else space
    bench = space.benchmark()
    archs = list(archs)
    if spec is None or (bench is not None and spec in bench.metrics):
        if bench is None:
            raise ValueError(f"{space.name} has no ground truth here (see WORKSPACE.md for the "
                             "benchmark files zcjax reads from the workspace)")
        metric, dataset = bench.check(spec, _dataset_name(bench, dataset))
        unit = getattr(bench, "units", {}).get(metric, "percent" if "accuracy" in metric else "")
        return GroundTruth(bench.lookup(archs, metric, dataset), metric, dataset, unit,
                           bench.is_higher_better(metric))
    parsed = parse_target(spec)
    if space.name != ROBUSTNESS_SPACE:
        raise ValueError(f"target {spec!r} comes from the NB201 robustness dataset (Jung et "
                         f"al., ICLR 2023), which covers NAS-Bench-201 only, not {space.name}"
                         + (f"; {space.name}'s ground truth: {', '.join(bench.metrics)}"
                            if bench is not None else ""))
    nb201 = _nb201()
    dataset = nb201.canonical_dataset(dataset or "cifar10")
    values = _load(parsed, dataset)[[nb201.arch_index(a) for a in archs]]
    return GroundTruth(np.asarray(values, np.float64), spec, dataset, parsed.unit, True)


def _dataset_name(bench, dataset: str | None) -> str | None:
    """The benchmark's own spelling of a data set name (case, '-' and '_' ignored)."""
    if dataset is None:
        return None
    key = dataset.lower().replace("-", "").replace("_", "")
    for name in bench.datasets:
        if name.lower().replace("-", "").replace("_", "") == key:
            return name
    return dataset
