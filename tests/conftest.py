"""Shared fixtures: tiny NB201 networks (C=4, N=1) and small real batches, fast on CPU.

One persistent compilation cache serves the whole run (every xdist worker): the suite is mostly
compilation, and many tests compile programs another test (or worker) already compiled, since
``jax.jit`` caches in memory by function, not by program. It lives in a fresh temporary folder
(made by the first process, removed by it at the end), so each run starts empty, as in CI.
"""

import os
import shutil
import tempfile

import jax
import pytest

from zcjax.spaces import nb201

# A cell with every kind of operation: 3x3 and 1x1 convs, pooling, skip, none.
MIXED_CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


_CACHE_VARIABLE = "ZCJAX_TEST_COMPILATION_CACHE"


def pytest_configure(config):
    if _CACHE_VARIABLE not in os.environ:  # the first process; xdist workers inherit it
        os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="zcjax-test-jax-cache-")
        config._zcjax_owns_cache = True
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_VARIABLE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if getattr(config, "_zcjax_owns_cache", False):
        shutil.rmtree(os.environ.pop(_CACHE_VARIABLE), ignore_errors=True)


@pytest.fixture
def no_compilation_cache():
    """JAX's persistent compilation cache off for one test (the autouse fixture below turns it
    back on)."""
    jax.config.update("jax_compilation_cache_dir", None)


# JAX settings a test (or a script it runs in-process) may change and that are global to the
# process: each test starts from, and leaves, the values the session began with.
_GLOBAL_JAX_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                        "jax_persistent_cache_min_entry_size_bytes")


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


@pytest.fixture
def full_optimizations():
    """XLA's optimisations on for one test, in a module that turns them off (``fast_compiles``).

    For vmapped convolutions: on an AMD EPYC, with optimisations off, XLA:CPU (jax 0.10.2)
    computed the kernel gradients of a vmapped NB201 network up to 2% off the unbatched ones
    (grad_norm 7.5e-4 off on one of 8 seeds); with them on, the two agree to rounding.
    """
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


class CompileCounter:
    """Counts XLA backend compilations (jax's '/jax/core/compile/backend_compile_duration')."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if self.active and event == self.EVENT:
            self.count += 1


@pytest.fixture
def compile_counter():
    """A :class:`CompileCounter`, counting while its ``active`` is set."""
    counter = CompileCounter()
    yield counter
    counter.active = False
