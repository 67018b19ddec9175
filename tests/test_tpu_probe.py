"""JAX's failed TPU probe is not logged on machines without a TPU runtime (zcjax._tpu_probe)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from zcjax import _tpu_probe

# An absl program, like the experiment scripts (absl shows INFO records on stderr), that lets
# JAX choose its backends and optionally imports zcjax first.
PROGRAM = textwrap.dedent("""
    import sys
    from absl import app
    if sys.argv[1] == "zcjax":
        import zcjax
    import jax
    app.run(lambda argv: print("devices:", jax.devices()))
""")
PROBE = "Unable to initialize backend 'tpu'"


def _stderr(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "devices:" in done.stdout, done.stderr
    return done.stderr


@pytest.mark.skipif(_tpu_probe.tpu_runtime_installed(), reason="a TPU runtime is installed")
def test_importing_zcjax_silences_the_missing_libtpu_probe():
    if PROBE not in _stderr("plain"):
        pytest.skip("this JAX logs no failed TPU probe here (nothing to silence)")
    assert PROBE not in _stderr("zcjax")


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord(_tpu_probe.LOGGER, logging.INFO, __file__, 1, message, None, None)


def test_the_filter_drops_only_the_missing_libtpu_probe():
    keep = _tpu_probe.MissingTpuRuntimeFilter().filter
    assert not keep(_record("Unable to initialize backend 'tpu': INTERNAL: Failed to open "
                            "libtpu.so: libtpu.so: cannot open shared object file"))
    assert keep(_record("Unable to initialize backend 'tpu': INTERNAL: TPU initialization "
                        "failed: No TPU device found"))
    assert keep(_record("Unable to initialize backend 'cuda': FAILED_PRECONDITION: No visible "
                        "GPU devices."))
    assert keep(_record("A Google TPU may be present on this machine, but either a TPU-enabled "
                        "jaxlib or libtpu is not installed. Falling back to cpu."))


def test_not_installed_when_a_tpu_runtime_is(monkeypatch):
    logger = logging.getLogger(_tpu_probe.LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setenv("TPU_LIBRARY_PATH", "/opt/libtpu.so")
    _tpu_probe.install()
    assert logger.filters == []
    monkeypatch.delenv("TPU_LIBRARY_PATH")
    monkeypatch.setattr(_tpu_probe, "tpu_runtime_installed", lambda: False)
    _tpu_probe.install()
    _tpu_probe.install()
    assert len(logger.filters) == 1
