"""Ground truth for evaluating zero-cost proxies, shipped as package data.

* :mod:`zcjax.benchmarks.nb201` -- NAS-Bench-201 / NATS-Bench test accuracies, parameter counts
  and isomorphism classes of all 15,625 cells.
* :mod:`zcjax.benchmarks.robustness` -- the NAS-Bench-201 robustness dataset of Jung et al.
  (ICLR 2023): clean, adversarial and common-corruption accuracies.

Sources, licenses and conversions: ``zcjax/resources/PROVENANCE.md``.
"""

from zcjax.benchmarks import nb201, robustness

__all__ = ["nb201", "robustness"]
