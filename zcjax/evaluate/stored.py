"""Stored scores as analysis-ready columns: one value per (architecture, proxy).

:func:`load_scores` reads one setting (space, config hash, batch hash) of a
:class:`~zcjax.sweep.store.ResultStore` and reduces each architecture's seeds to one value under
a documented policy for non-finite scores:

``"strict"`` (default)
    the mean over the architecture's seeds if every seed is finite, else NaN: one NaN or
    infinite seed takes the architecture out of that proxy's analysis (an overflow or a
    singular matrix on one initialisation is information, not noise to average away);
``"finite_seeds"``
    the mean over the finite seeds (NaN only when no seed is finite).

``+inf``, ``-inf`` and NaN are treated alike. Which architectures each proxy keeps is reported
(:attr:`StoredScores.counts`), and :func:`common_cells` restricts every proxy to the same
architectures, so that tables can say exactly what each correlation is computed over.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

POLICIES = ("strict", "finite_seeds")


def reduce_seeds(values: np.ndarray, policy: str = "strict") -> float:
    """One architecture's seeds -> one score under ``policy`` (module doc)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown non-finite policy {policy!r}; expected one of {POLICIES}")
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    if not values.size or (policy == "strict" and not finite.all()) or not finite.any():
        return float("nan")
    return float(np.mean(values[finite]))


@dataclasses.dataclass(frozen=True)
class StoredScores:
    """Per-architecture scores of one stored setting, aligned on :attr:`archs`.

    Attributes:
      space: the search space.
      archs: architecture strings, in the order given (or sorted).
      scores: proxy -> float64 (len(archs),): seeds reduced under :attr:`policy`; NaN where
        the proxy has no score or (policy) a non-finite one.
      seeds: proxy -> the seeds read.
      counts: proxy -> ``{"stored", "finite", "nonfinite"}``: architectures with a stored score,
        with a finite reduced score, and dropped as non-finite.
      policy: the non-finite policy.
      config_hash, batch_hash: the setting.
    """

    space: str
    archs: tuple[str, ...]
    scores: dict[str, np.ndarray]
    seeds: dict[str, list[int]]
    counts: dict[str, dict[str, int]]
    policy: str
    config_hash: str
    batch_hash: str

    def subset(self, keep: np.ndarray) -> "StoredScores":
        """The same scores on the architectures where ``keep`` (a boolean mask) is true."""
        keep = np.asarray(keep, bool)
        return dataclasses.replace(
            self, archs=tuple(a for a, k in zip(self.archs, keep) if k),
            scores={p: v[keep] for p, v in self.scores.items()})


def load_scores(store, space: str, config_hash: str, batch_hash: str,
                proxies: "str | Sequence[str]" = "all", seeds: Sequence[int] | None = None,
                policy: str = "strict", archs: Sequence[str] | None = None,
                order: Sequence[str] | None = None) -> StoredScores:
    """Reads one setting's scores, one value per architecture and proxy.

    Args:
      store: an open :class:`~zcjax.sweep.store.ResultStore`.
      space, config_hash, batch_hash: the setting.
      proxies: ``"all"`` (every proxy stored for the setting) or names.
      seeds: reduce over these seeds only (default: every stored seed).
      policy: ``"strict"`` or ``"finite_seeds"`` (module doc).
      archs: the architectures, in this order (default: every stored one).
      order: with ``archs=None``, sort the stored architectures by their position here (a
        benchmark's order); others follow, sorted. Default: sorted strings.

    Raises:
      LookupError: no scores for the setting, or requested proxies it does not have (the
        message lists what it has).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown non-finite policy {policy!r}; expected one of {POLICIES}")
    stored = store.stored_proxies(space, config_hash, batch_hash)
    present = sorted({p for ps in stored.values() for p in ps})
    if not present:
        raise LookupError(f"no {space} scores for config_hash={config_hash} "
                          f"batch_hash={batch_hash}")
    if isinstance(proxies, str):
        names = present if proxies.strip() == "all" else [p.strip() for p in proxies.split(",")
                                                           if p.strip()]
    else:
        names = list(proxies)
    missing = [p for p in names if p not in present]
    if missing:
        raise LookupError(f"no stored scores for proxies {missing} in this setting; stored: "
                          f"{', '.join(present)}")
    from zcjax.sweep.store import proxy_version

    wanted = None if seeds is None else {int(s) for s in seeds}
    per_proxy: dict[str, dict[str, dict[int, float]]] = {}
    for p in names:
        by_arch = per_proxy.setdefault(p, {})
        for rec in store.records(space=space, config_hash=config_hash, batch_hash=batch_hash,
                                 proxy=p, proxy_version=proxy_version(p)):
            if wanted is None or rec.seed in wanted:
                by_arch.setdefault(rec.arch, {})[rec.seed] = rec.value
    if archs is None:
        position = {a: i for i, a in enumerate(order or ())}
        archs = sorted({a for d in per_proxy.values() for a in d},
                       key=lambda a: (position.get(a, len(position)), a))
    archs = tuple(archs)
    scores, counts, seeds_read = {}, {}, {}
    for p, by_arch in per_proxy.items():
        column = np.array([reduce_seeds(list(by_arch[a].values()), policy) if a in by_arch
                           else np.nan for a in archs])
        n_stored = sum(1 for a in archs if a in by_arch)
        n_finite = int(np.isfinite(column).sum())
        scores[p] = column
        counts[p] = {"stored": n_stored, "finite": n_finite, "nonfinite": n_stored - n_finite}
        seeds_read[p] = sorted({s for d in by_arch.values() for s in d})
    return StoredScores(space, archs, scores, seeds_read, counts, policy, config_hash,
                        batch_hash)


def common_cells(scores: Mapping[str, np.ndarray], *others: np.ndarray) -> np.ndarray:
    """Boolean mask of the architectures where every column (and each of ``others``) is
    finite: evaluating every proxy on exactly these makes their numbers comparable."""
    columns = [np.asarray(v, np.float64) for v in (*scores.values(), *others)]
    if not columns:
        return np.zeros(0, bool)
    return np.logical_and.reduce([np.isfinite(c) for c in columns])
