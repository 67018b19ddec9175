"""Which architectures (paths) of the supernet each training step trains.

A :class:`Sampler` returns, for ``(seed, step)``, the step's paths as an integer array
``(paths, *arch_shape)`` of :meth:`~zcjax.spaces.base.CompileOnceNetwork.arch_data`: the
compiled step takes it as data, so one program trains every architecture. The draw uses
``numpy.random.default_rng((seed, step, 1))``, a function of the seed and the step alone: a
resumed run draws what an uninterrupted one draws, and no sampler state needs saving.

Strategies:

* ``uniform``: single-path one-shot (SPOS, Guo et al., ECCV 2020) as aw_nas's random-sampling
  controller does it (``NasBench201RSController``): every architecture equally likely; for
  spaces whose architectures are every combination of independent choices
  (:meth:`~zcjax.spaces.base.CompileOnceNetwork.arch_choices`, NB201: 5 operations on each of
  6 edges) each entry is drawn independently, otherwise uniformly from
  :meth:`~zcjax.spaces.base.SearchSpace.enumerate`.
* ``deiso``: every isomorphism class equally likely (its first member in enumeration order,
  for NB201 the smallest index, the benchmark's class id, stands for it): aw_nas's
  ``deiso: true`` (the released NB201 config), which stops large classes (many cells computing
  one function) from dominating training.
* ``fair``: strict fairness (FairNAS, Chu et al., ICCV 2021): ``k`` paths per step, where every
  entry has ``k`` choices, built from an independent random permutation of ``0..k-1`` per
  entry, so each operation of each edge is trained exactly once per step.
"""

from __future__ import annotations

import functools

import numpy as np

from zcjax import validation
from zcjax.spaces import base

__all__ = ["Sampler"]


class Sampler:
    """The paths of each step (module doc).

    Args:
      space: the search space.
      network: its compile-once network.
      strategy: ``"uniform"``, ``"deiso"`` or ``"fair"``.
      paths_per_step: paths per step for ``uniform`` and ``deiso`` (``fair`` fixes it).
    """

    def __init__(self, space: base.SearchSpace, network: base.CompileOnceNetwork,
                 strategy: str, paths_per_step: int = 1):
        self.space = space
        self.network = network
        self.strategy = strategy
        self.choices = network.arch_choices()
        if strategy == "fair":
            if not self.choices or len(set(self.choices)) != 1:
                raise ValueError(
                    f"fair sampling needs architectures made of independent choices with the "
                    f"same number of options each; {space.name} has "
                    f"{'constraints between its entries' if not self.choices else self.choices}")
            self.paths_per_step = self.choices[0]
        elif strategy in ("uniform", "deiso"):
            self.paths_per_step = validation.check_int(paths_per_step, "paths_per_step", 1)
            if strategy == "deiso" or not self.choices:
                self.pool  # fail now, not at the first step, if the space cannot list them
        else:
            raise ValueError(f"unknown sampling strategy {validation.cap(repr(strategy))}; "
                             "expected uniform, deiso or fair")

    @functools.cached_property
    def pool(self) -> np.ndarray:
        """The architectures drawn from, as stacked arch data (``deiso``: one per class)."""
        archs = self.space.enumerate()
        if archs is None:
            raise ValueError(f"{self.strategy} sampling of {self.space.name} needs its "
                             "architectures listed (SearchSpace.enumerate), which it does not "
                             "offer")
        if self.strategy == "deiso":
            first: dict[str, object] = {}
            for arch in archs:
                first.setdefault(self.space.canonical(arch), arch)
            archs = list(first.values())
        return np.stack([np.asarray(self.network.arch_data(a)) for a in archs])

    @property
    def pool_size(self) -> int | None:
        """How many architectures ``deiso`` (or an enumerated ``uniform``) draws from."""
        if self.strategy == "deiso" or (self.strategy == "uniform" and not self.choices):
            return int(self.pool.shape[0])
        return None

    def __call__(self, seed: int, step: int) -> np.ndarray:
        """The paths of step ``step`` of run ``seed``: ``(paths_per_step, *arch_shape)``."""
        rng = np.random.default_rng((validation.check_seed(seed),
                                     validation.check_int(step, "step", 0), 1))
        if self.strategy == "fair":
            k = self.paths_per_step
            perms = np.stack([rng.permutation(k) for _ in self.choices], axis=1)
            return perms.astype(np.int32)
        if self.strategy == "uniform" and self.choices:
            return rng.integers(0, self.choices, size=(self.paths_per_step,
                                                       len(self.choices))).astype(np.int32)
        pool = self.pool
        return pool[rng.integers(0, pool.shape[0], size=self.paths_per_step)]
