"""zcjax: zero-cost proxies for neural architecture search in JAX/Flax."""

__version__ = "0.1.0"
