"""The dependency floors: the import-time version check, and the uses of optax, orbax and the
sharded sweep that the floors in pyproject.toml were tested with (``tools/check_floors.py``
runs this file, among others, on exactly those floors)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import _version_check as vc

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- the import-time check ---------------------------------------------------------------------


@pytest.mark.parametrize("found, floor, ok", [
    ("0.8.2", "0.8.2", True), ("0.8.3", "0.8.2", True), ("0.10.0", "0.8.2", True),
    ("0.9.0.1", "0.9.0", True), ("0.8.2.dev20251201+cuda12", "0.8.2", True), ("1.0", "0.8.2", True),
    ("0.8.1", "0.8.2", False), ("0.4.30", "0.8.2", False), ("0.8", "0.8.2", False),
    ("0.9", "0.10.0", False), ("unknown", "0.8.2", True),
])
def test_at_least(found, floor, ok):
    assert vc.at_least(found, floor) is ok


def test_old_jax_gives_the_documented_error(monkeypatch):
    versions = {"jax": "0.7.1", "flax": "0.12.8"}
    monkeypatch.setattr(vc, "installed_version", versions.get)
    floor = vc.MINIMUM["jax"]
    with pytest.raises(ImportError) as info:
        vc.check()
    assert str(info.value).startswith(
        f"zcjax needs jax >= {floor}, found 0.7.1; pip install -U 'jax>={floor}'")


def test_old_flax_gives_the_documented_error(monkeypatch):
    versions = {"jax": vc.MINIMUM["jax"], "flax": "0.8.5"}
    monkeypatch.setattr(vc, "installed_version", versions.get)
    floor = vc.MINIMUM["flax"]
    with pytest.raises(ImportError, match=re.escape(
            f"zcjax needs flax >= {floor}, found 0.8.5; pip install -U 'flax>={floor}'")):
        vc.check()


def test_floor_versions_and_missing_packages_pass(monkeypatch):
    monkeypatch.setattr(vc, "installed_version", dict(vc.MINIMUM).get)
    vc.check()
    monkeypatch.setattr(vc, "installed_version", lambda name: None)
    vc.check()  # not installed: left to the import that needs it


def test_the_installed_versions_pass():
    vc.check()


def test_import_zcjax_reports_an_old_jax_before_touching_it():
    """End to end: ``import zcjax`` with jax's metadata saying 0.4.30 fails with the message,
    not with an AttributeError from code that expects a newer JAX."""
    code = textwrap.dedent("""
        import importlib.metadata as m
        real = m.version
        m.version = lambda name: "0.4.30" if name == "jax" else real(name)
        try:
            import zcjax
        except ImportError as e:
            print("ImportError:", e)
            import sys
            print("jax imported:", "jax" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    floor = vc.MINIMUM["jax"]
    assert f"ImportError: zcjax needs jax >= {floor}, found 0.4.30" in out.stdout
    assert "jax imported: False" in out.stdout


def _pyproject_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    out = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)>=([0-9][^,;\s]*)", spec.replace(" ", ""))
        assert match, f"{spec!r}: every dependency is 'name>=floor' (tools/check_floors.py pins it)"
        out[match.group(1)] = match.group(2)
    return out


def test_check_uses_the_pyproject_floors():
    floors = _pyproject_floors()
    for name, floor in vc.MINIMUM.items():
        assert floors[name] == floor, f"pyproject.toml says {name}>={floors[name]}"
    assert floors["jaxlib"] == floors["jax"]  # they are released together


# -- optax and orbax, as the one-shot estimators use them --------------------------------------


def test_optax_sgd_momentum_weight_decay_and_clipping():
    """``clip_by_global_norm`` -> ``add_decayed_weights`` -> Nesterov ``sgd``, jitted, two
    steps, against the same update written out (PyTorch's SGD with nesterov=True)."""
    import optax

    lr, momentum, wd, max_norm = 0.1, 0.9, 5e-4, 1.0
    tx = optax.chain(optax.clip_by_global_norm(max_norm), optax.add_decayed_weights(wd),
                     optax.sgd(lr, momentum=momentum, nesterov=True))
    params = {"w": jnp.arange(6.0).reshape(2, 3) / 10, "b": jnp.array([0.5, -0.5])}
    grads = [{"w": jnp.full((2, 3), 2.0), "b": jnp.array([1.0, -3.0])},
             {"w": jnp.full((2, 3), 0.1), "b": jnp.array([0.2, 0.0])}]

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    got = params
    for g in grads:
        got, state = step(got, state, g)

    want = {k: np.asarray(v, np.float64) for k, v in params.items()}
    buf = {k: np.zeros_like(v) for k, v in want.items()}
    for g in grads:
        g = {k: np.asarray(v, np.float64) for k, v in g.items()}
        norm = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
        scale = min(1.0, max_norm / norm)
        for k in want:
            d = g[k] * scale + wd * want[k]
            buf[k] = momentum * buf[k] + d
            want[k] = want[k] - lr * (d + momentum * buf[k])
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-6, atol=1e-7)


def test_orbax_standard_checkpointer_round_trip(tmp_path):
    import orbax.checkpoint as ocp

    tree = {"params": {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.ones(4, jnp.bfloat16)},
            "step": jnp.asarray(7, jnp.int32), "rng": np.arange(3, dtype=np.uint32)}
    checkpointer = ocp.StandardCheckpointer()
    path = (tmp_path / "ckpt").absolute()
    checkpointer.save(path, tree)
    checkpointer.wait_until_finished()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=device),
                            tree)
    restored = checkpointer.restore(path, abstract)
    checkpointer.close()
    assert jax.tree.structure(restored) == jax.tree.structure(tree)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(tree)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


# -- the sharded sweep (jax.shard_map, jax.lax.pcast) ------------------------------------------

_SHARDED = textwrap.dedent("""
    import jax, numpy as np
    from jax.sharding import Mesh
    from zcjax.data import default_batch
    from zcjax.spaces.nb201 import NB201Config
    from zcjax.sweep.engine import CompileOnceScorer, SweepConfig
    assert len(jax.devices()) == 2, jax.devices()
    proxies = ("jacob_cov",)
    config = SweepConfig(proxies=proxies, network=NB201Config(channels=4, cells_per_stage=1))
    scorer = CompileOnceScorer(config, proxies)
    batch = default_batch(8, seed=0)
    archs = [123, 4567, 9000]
    sharded = scorer.score_sharded(archs, [0], batch, Mesh(np.array(jax.devices()), ("items",)))
    single = np.stack([scorer(a, [0], batch)["jacob_cov"] for a in archs])
    np.testing.assert_allclose(sharded["jacob_cov"], single, rtol=2e-5, atol=1e-6)
    print("sharded ok", sharded["jacob_cov"].ravel().tolist())
""")


def test_score_sharded_on_two_host_devices():
    """One input-gradient proxy (jacob_cov) over two devices equals the per-cell scores: the
    path through ``jax.shard_map`` and ``jax.lax.pcast`` that sets the jax floor.
    (``tests/sweep/test_engine.py`` checks every proxy on four devices, at a higher cost.)"""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    out = subprocess.run([sys.executable, "-c", _SHARDED], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "sharded ok" in out.stdout
