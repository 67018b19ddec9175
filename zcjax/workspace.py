"""Where zcjax keeps data, caches and results: one root, set by one variable or flag.

The root is, in order: the ``root`` argument (the experiments' ``--workspace`` flag), the
environment variable ``ZCJAX_WORKSPACE``, or ``./zcjax_workspace``. Below it::

    data/       the user's data sets: cifar-10-batches-py/, cifar-100-python/, ImageNet16/
    cache/jax/  JAX's persistent compilation cache
    results/    score stores (*.sqlite), tables (CSV, Markdown, LaTeX), plots (PNG), JSON

See WORKSPACE.md for the full picture, including Colab.
"""

from __future__ import annotations

import os
import pathlib

ENV_VAR = "ZCJAX_WORKSPACE"
DEFAULT_ROOT = "zcjax_workspace"


def root(path: "str | os.PathLike | None" = None) -> pathlib.Path:
    """The workspace root (not created)."""
    chosen = path or os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return pathlib.Path(chosen).expanduser().resolve()


def _sub(name: str, path, create: bool) -> pathlib.Path:
    directory = root(path) / name
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def data_dir(path=None, create: bool = False) -> pathlib.Path:
    return _sub("data", path, create)


def results_dir(path=None, create: bool = True) -> pathlib.Path:
    return _sub("results", path, create)


def cache_dir(path=None, create: bool = True) -> pathlib.Path:
    return _sub("cache", path, create)


def enable_compilation_cache(path=None) -> pathlib.Path:
    """Turns on JAX's persistent compilation cache under ``cache/jax`` and returns its path."""
    import jax

    directory = cache_dir(path) / "jax"
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return directory
