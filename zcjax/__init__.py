"""zcjax: zero-cost proxies for neural architecture search in JAX/Flax.

``zcjax.score(model, batch, proxies, seeds)`` scores one network (see :mod:`zcjax.scoring`);
``zcjax.sweep`` scores many; ``zcjax.proxies`` holds the proxies themselves.
"""

# First, before anything imports JAX or Flax: a clear ImportError if either is older than
# zcjax's floor, instead of an AttributeError deep in a sweep.
from zcjax import _version_check

_version_check.check()

from zcjax import _tpu_probe  # noqa: E402

_tpu_probe.install()  # no "Failed to open libtpu.so" on every run of a CPU / GPU machine

from zcjax.scoring import ScoreResult, score  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ScoreResult", "score"]
