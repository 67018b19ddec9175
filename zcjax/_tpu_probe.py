"""Keeps JAX's failed TPU probe out of the log on machines without a TPU runtime.

When no platform is forced (``JAX_PLATFORMS`` unset), JAX tries every backend it knows on first
use. Without the TPU runtime (the ``libtpu`` package, or ``TPU_LIBRARY_PATH``) the TPU probe
fails and JAX logs, at INFO through Python logging::

    Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so: ...

That is expected on every CPU and GPU machine, and absl programs (the experiment scripts) show
INFO on stderr, so every run printed it. :func:`install` drops exactly that record, and only
when no TPU runtime is installed: a TPU runtime that fails to load, and every other backend's
message (a CUDA plugin that fails, JAX's hint that a GPU or TPU is present but unused), is
still logged.
"""

from __future__ import annotations

import importlib.util
import logging
import os

#: The logger of ``jax._src.xla_bridge``, which initialises the backends.
LOGGER = "jax._src.xla_bridge"


def tpu_runtime_installed() -> bool:
    """Whether JAX could find a TPU runtime (then a failed probe is a real error)."""
    return (bool(os.environ.get("TPU_LIBRARY_PATH"))
            or importlib.util.find_spec("libtpu") is not None)


class MissingTpuRuntimeFilter(logging.Filter):
    """Drops the record of a TPU probe that failed because ``libtpu.so`` is not there."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Unable to initialize backend 'tpu'")
                    and "Failed to open libtpu.so" in message)


def install() -> None:
    """Adds the filter to JAX's backend logger, once, unless a TPU runtime is installed."""
    if tpu_runtime_installed():
        return
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, MissingTpuRuntimeFilter) for f in logger.filters):
        logger.addFilter(MissingTpuRuntimeFilter())
