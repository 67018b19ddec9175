"""Ground truth for evaluating zero-cost proxies, shipped as package data.

* :mod:`zcjax.benchmarks.nb201` -- NAS-Bench-201 / NATS-Bench test accuracies, parameter counts
  and isomorphism classes of all 15,625 cells.
* :mod:`zcjax.benchmarks.nb101` -- NAS-Bench-101 CIFAR-10 validation accuracies of 500 sampled
  cells, looked up by graph hash.
* :mod:`zcjax.benchmarks.nds` -- a reader for the user's NDS result files (ResNet, ResNeXt-A;
  nothing ships).
* :mod:`zcjax.benchmarks.robustness` -- the NAS-Bench-201 robustness dataset of Jung et al.
  (ICLR 2023): clean, adversarial and common-corruption accuracies.

Sources, licenses and conversions: ``zcjax/resources/PROVENANCE.md``.
"""

from zcjax.benchmarks import nb101, nb201, nds, robustness

__all__ = ["nb101", "nb201", "nds", "robustness"]
