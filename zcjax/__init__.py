"""zcjax: zero-cost proxies for neural architecture search in JAX/Flax.

``zcjax.score(model, batch, proxies, seeds)`` scores one network (see :mod:`zcjax.scoring`);
``zcjax.sweep`` scores many; ``zcjax.proxies`` holds the proxies themselves.
"""

from zcjax.scoring import ScoreResult, score

__version__ = "0.1.0"
__all__ = ["ScoreResult", "score"]
