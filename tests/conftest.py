"""Shared fixtures: tiny NB201 networks (C=4, N=1) and small real batches, fast on CPU."""

import jax
import pytest

from zcjax.spaces import nb201

# A cell with every kind of operation: 3x3 and 1x1 convs, pooling, skip, none.
MIXED_CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


# JAX settings a test (or a script it runs in-process) may change and that are global to the
# process: each test starts from, and leaves, the values the session began with.
_GLOBAL_JAX_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")


@pytest.fixture(autouse=True)
def _restore_global_jax_settings():
    before = {name: getattr(jax.config, name) for name in _GLOBAL_JAX_SETTINGS}
    yield
    for name, value in before.items():
        if getattr(jax.config, name) != value:
            jax.config.update(name, value)


@pytest.fixture(scope="session")
def tiny_model():
    return nb201.build(MIXED_CELL, channels=4, cells_per_stage=1, num_classes=10)


@pytest.fixture(scope="session")
def tiny_variables(tiny_model):
    return nb201.init(tiny_model, jax.random.key(0))


@pytest.fixture(scope="session")
def tiny_batch():
    from zcjax.data import default_batch

    return default_batch(8, seed=0)


@pytest.fixture(scope="module")
def fast_compiles():
    """XLA's heavier optimisations off for one module: fused proxy programs compile far faster.

    Use with ``pytestmark = pytest.mark.usefixtures("fast_compiles")``.
    """
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
