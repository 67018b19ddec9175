"""Tests of the compile-once sweep path (zcjax.sweep.engine + zcjax.spaces.nb201.supernet).

Tiny networks (C=4, N=1) and a batch of 8 keep these fast on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from zcjax import proxies as proxies_lib
from zcjax.scoring import score
from zcjax.spaces import nb201
from zcjax.spaces.nb201 import supernet as sn
from zcjax.spaces.nb201 import NB201Config
from zcjax.sweep.engine import (CompileOnceScorer, SweepConfig, compile_once_scorer, compute_chunk,
                                profile_architecture)
from zcjax.sweep.runner import make_tasks

MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
LARGEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = dict(channels=4, cells_per_stage=1)


PROXIES = tuple(sorted(sn.EXACT_PROXIES))


def test_every_exact_proxy_is_registered():
    registered = set(proxies_lib.names())
    assert set(PROXIES) <= registered, set(PROXIES) - registered


#: (rtol, atol) of supernet-vs-static agreement per proxy (default (2e-5, 1e-6)). ZiCo sums
#: ``(|g1| + |g2|) / |g1 - g2|`` over weights whose two half-batch gradients nearly agree, which
#: amplifies float32 rounding of the gradients (a different XLA optimisation level alone moves a
#: static score by ~1e-5); the supernet's reordered gradient arithmetic moves it by up to ~1e-4,
#: and against the eagerly run static network by up to 5.4e-4 (measured).
#: GraSP's score is a sum of signed terms that nearly cancel on some cells (e.g. -0.038 from
#: terms of order 1); the supernet's reverse-over-reverse Hessian product and the static
#: network's forward-over-reverse one round differently (measured: up to 2e-5 absolute).
TOL = {"zico": (1e-3, 1e-6), "grasp": (5e-4, 1e-4)}


def _tol(name: str) -> dict:
    rtol, atol = TOL.get(name, (2e-5, 1e-6))
    return dict(rtol=rtol, atol=atol)


pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def batch():
    from zcjax.data import default_batch

    return default_batch(8, seed=0)


def test_static_params_are_a_subtree_of_supernet_params():
    net = sn.build_supernet(**TINY, convention="official")
    key = jax.random.key(3)
    params = sn.init_params(net, key)
    assert jax.tree.structure(params) == jax.tree.structure(
        net.init(key, np.zeros((1, 32, 32, 3), np.float32))["params"])
    for arch in (MIXED, 0, 4000):
        static = nb201.init(nb201.build(arch, **TINY, convention="official"), key)["params"]
        mapped = sn.to_static(params, arch)
        assert jax.tree.structure(static) == jax.tree.structure(mapped)
        for a, b in zip(jax.tree.leaves(static), jax.tree.leaves(mapped)):
            np.testing.assert_array_equal(a, b)


def test_supernet_forward_and_gradient_equal_static(batch):
    net = sn.build_supernet(**TINY)
    params = sn.init_params(net, jax.random.key(1))
    apply = jax.jit(net.apply)
    for arch in (MIXED, LARGEST, 15624):
        model = nb201.build(arch, **TINY)
        static = sn.to_static(params, arch)
        variables = sn.variables_for(params, sn.genotype_array(arch))
        np.testing.assert_allclose(apply(variables, batch.images),
                                   model.apply({"params": static}, batch.images),
                                   rtol=1e-5, atol=1e-6)
        g_static = jax.grad(lambda p: model.apply({"params": p}, batch.images).sum())(static)
        g_super = jax.jit(jax.grad(
            lambda p: net.apply({**variables, "params": p}, batch.images).sum()))(
                variables["params"])
        g_super = sn.to_static(g_super, arch)
        scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(g_static))
        for a, b in zip(jax.tree.leaves(g_static), jax.tree.leaves(g_super)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * scale)


def _sites_by_cell(sites):
    """Weight-1 sites of a weighted_sites list, sorted (site order differs between networks)."""
    kept = [np.asarray(v, np.float64) for v, w in sites if float(w) == 1.0]

    def projection(a):  # a random direction: distinct sites differ by O(1), equal ones agree
        return a.shape, float(np.sum(a * np.random.default_rng(0).standard_normal(a.shape)))

    return sorted(kept, key=projection)


@pytest.mark.parametrize("tag", ["relu_in", "bn_var"])
def test_supernet_weighted_sites_equal_static_sites(batch, tag):
    """Sites with weight 1 are the static network's sown values; weight-0 sites are finite."""
    from zcjax.contract import weighted_sites

    net = sn.build_supernet(**TINY)
    params = sn.init_params(net, jax.random.key(2))
    apply = jax.jit(lambda v, x: net.apply(v, x, mutable=["intermediates"])[1]["intermediates"])
    for arch in (MIXED, LARGEST, 0):
        sown = apply(sn.variables_for(params, sn.genotype_array(arch)), batch.images)
        got = weighted_sites(sown, tag)
        assert {float(w) for _, w in got} <= {0.0, 1.0}
        assert all(np.all(np.isfinite(v)) for v, _ in got)
        model = nb201.build(arch, **TINY)
        static_sown = model.apply({"params": sn.to_static(params, arch)}, batch.images,
                                  mutable=["intermediates"])[1]["intermediates"]
        want = weighted_sites(static_sown, tag)
        assert all(float(w) == 1.0 for _, w in want)
        got, want = _sites_by_cell(got), _sites_by_cell(want)
        assert len(got) == len(want), arch
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


#: One proxy of each kind of pass a compiled program runs: parameter gradients (snip), input
#: gradients (jacob_cov), sown intermediates (nwot), a float64 pass (synflow) and a forward
#: with split batches (zico). Which proxies the program holds does not change whether a new
#: cell compiles: the cell is traced data, which no proxy can read statically; what could
#: compile per cell is the Python around the program (the cell's data, the parameters, the
#: variables), the same for every proxy set. (With the 13 first-order proxies the fifty-cells
#: test took 59 s, with these 33 s, measured alone on one VM.)
ONE_PER_PASS = ("jacob_cov", "nwot", "snip", "synflow", "zico")


@pytest.fixture(scope="module")
def one_per_pass_scorer():
    """One compiled supernet program, shared by the tests below."""
    config = SweepConfig(proxies=ONE_PER_PASS, network=NB201Config(**TINY))
    return compile_once_scorer(config, config.proxies)


def test_fifty_cells_compile_once(batch, one_per_pass_scorer, compile_counter):
    counter = compile_counter
    scorer = one_per_pass_scorer
    archs = list(range(0, nb201.genotype.NUM_CELLS, 313))[:50]
    assert len(set(nb201.as_genotype(a) for a in archs)) == 50
    scorer(archs[0], [0], batch)  # warm-up: the program, the parameter init, small eager ops
    counter.active = True
    for arch in archs[1:]:
        scorer(arch, [0], batch)
    counter.active = False
    assert scorer.is_compiled(batch)
    assert counter.count == 0, f"{counter.count} compilations after the first cell"


def test_profile_says_where_the_time_goes(batch, one_per_pass_scorer):
    """Per shared pass and proxy inside the compiled program, per eager or counted proxy."""
    config = SweepConfig(proxies=(*ONE_PER_PASS, "params", "meco_opt"),
                         network=NB201Config(**TINY))
    assert compile_once_scorer(config, ONE_PER_PASS) is one_per_pass_scorer  # compiled already
    profile = profile_architecture(MIXED, 0, batch, config, repeats=1)
    scopes = set(profile.by_scope)
    assert {"pass.forward", "pass.param_grads", "pass.input_grads", "blocks.meco_opt",
            "counted.params"} <= scopes
    own = {f"proxy.{n}" for n in ONE_PER_PASS} | {"blocks.meco_opt", "counted.params", "other"}
    assert all(s.startswith("pass.") or s in own for s in scopes), scopes
    assert min(profile.by_scope.values()) >= 0 and profile.by_scope["pass.forward"] > 0
    assert profile.wall_s >= profile.by_scope["blocks.meco_opt"] > 0


@pytest.mark.usefixtures("no_compilation_cache")  # the message below says there is none
def test_sweep_compiles_as_a_phase_before_timing_tasks(batch, tmp_path, monkeypatch,
                                                        compile_counter):
    """The compile-once program is compiled, announced and timed before the first chunk; the
    chunks then compile nothing, so the per-task rate and the ETA are running time."""
    from zcjax.sweep import ResultStore, engine
    from zcjax.sweep.engine import sweep
    from zcjax.sweep.progress import Progress

    monkeypatch.setattr(engine, "_SCORERS", {})  # a program other tests compiled is not reused

    counter, lines = compile_counter, []

    def write(line):  # count compilations from the end of the compile phase on
        lines.append(line)
        counter.active = counter.active or "compiling done in" in line

    config = SweepConfig(proxies=("grad_norm", "snip"), network=NB201Config(**TINY))
    bar = Progress(desc="nb201 sweep", unit="task", write=write, interval=0.0)
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = sweep([MIXED, 123, 4567], [0, 1], batch, config, store, chunk_size=2,
                        progress=bar)
        assert summary.complete and summary.tasks_computed == 6
        again = Progress(desc="nb201 sweep", write=lines.append)
        sweep([MIXED, 123, 4567], [0, 1], batch, config, store, progress=again)
    assert lines[1] == ("nb201 sweep: compiling the nb201 program for grad_norm, snip (no "
                        "persistent compilation cache, so every run compiles it; "
                        "zcjax.workspace.enable_compilation_cache turns one on) ...")
    assert lines[2].startswith("nb201 sweep: compiling done in ")
    assert "(compiling 0:" in lines[3] and "ETA" in lines[3]
    assert counter.count == 0, f"{counter.count} compilations while tasks were timed"
    assert not any("compiling" in line for line in lines[-3:])  # nothing to do: no phase


def test_supernet_scores_equal_static_in_the_official_convention(batch):
    """The layer convention changes the network, not the proxies: a few of each kind. The
    zero_cost convention's equality, every proxy the engine runs on the supernet (MeCo and CRoZe
    included), is tested on the golden cells: tests/golden ``test_engine_equals_eager``."""
    config = SweepConfig(proxies=("jacob_cov", "nwot", "snip", "synflow", "zen"),
                         network=NB201Config(convention="official", **TINY))
    scorer = CompileOnceScorer(config, config.proxies)
    # The static reference runs eagerly (with compiled blocks): no compilation per cell, and a
    # different code path.
    got = scorer(MIXED, [0, 1], batch)
    want = score(config.build(MIXED), batch, config.proxies, [0, 1], jit=False,
                 blocks=True).scores
    for name in config.proxies:
        np.testing.assert_allclose(got[name], want[name], **_tol(name), err_msg=name)


def test_supernet_grasp_equals_static(batch):
    """Reverse-over-reverse through the custom_vjp edges equals the static forward-over-reverse."""
    config = SweepConfig(proxies=("grasp",), network=NB201Config(**TINY))
    scorer = CompileOnceScorer(config, config.proxies)
    for arch in (MIXED, 123):
        got = scorer(arch, [0, 1], batch)["grasp"]
        # The static reference: its forward-over-reverse product, eagerly on compiled blocks
        # (no program per cell).
        want = score(config.build(arch), batch, ["grasp"], [0, 1], jit=False,
                     blocks=True).scores
        np.testing.assert_allclose(got, want["grasp"], **_tol("grasp"), err_msg=str(arch))


def test_supernet_refuses_what_it_cannot_show(batch):
    from zcjax import proxies as proxies_lib

    net = sn.build_supernet(**TINY)
    variables = sn.variables_for(sn.init_params(net, jax.random.key(0)), sn.genotype_array(0))
    for name in ("meco_conv", "croze_paper"):
        with pytest.raises(ValueError, match="static network"):
            proxies_lib.get(name).fn(net.apply, variables, batch)


def test_compute_chunk_same_records_in_every_compile_mode(batch):
    # Supernet proxies and one that always runs on the static module (jitted or eager).
    names = ("grad_norm", "meco_opt", "nwot", "params", "flops")
    tasks = make_tasks("nb201", [MIXED], [0, 1], names, "c" * 16, "b" * 16)
    by_mode = {}
    for mode in ("static", "supernet", "eager", "blocks", "auto"):
        config = SweepConfig(proxies=names, compile=mode, network=NB201Config(**TINY))
        by_mode[mode] = {(r.proxy, r.seed): r.value for r in compute_chunk(tasks, batch, config)}
    static = by_mode.pop("static")
    for mode, got in by_mode.items():
        assert got.keys() == static.keys()
        for key in static:
            np.testing.assert_allclose(got[key], static[key], **_tol(key[0]),
                                       err_msg=f"{key} under compile={mode}")


def test_split_proxies_by_compile_mode():
    names = ("meco_opt", "grad_norm", "grasp")
    for mode, fast, route in (("auto", ("grad_norm",), "blocks"),
                              ("supernet", ("grad_norm", "grasp"), "static"),
                              ("eager", (), "eager"), ("blocks", (), "blocks"),
                              ("static", (), "static")):
        config = SweepConfig(proxies=names, compile=mode)
        assert config.split_proxies(names)[0] == fast, mode
        assert config.static_route == route, mode
        assert config.jit_static == (route == "static"), mode


def test_config_rejects_unknown_compile_mode():
    with pytest.raises(ValueError, match="compile"):
        SweepConfig(proxies=(), compile="lazy")


_SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import zcjax.proxies
    from jax.sharding import Mesh
    from zcjax.data import default_batch
    from zcjax.spaces.nb201 import NB201Config
    from zcjax.sweep.engine import CompileOnceScorer, SweepConfig
    proxies = tuple(sys.argv[1].split(","))
    assert len(jax.devices()) == 4, jax.devices()
    batch = default_batch(8, seed=0)
    config = SweepConfig(proxies=proxies, network=NB201Config(channels=4, cells_per_stage=1))
    scorer = CompileOnceScorer(config, proxies)
    mesh = Mesh(np.array(jax.devices()), ("items",))
    archs, seeds = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    sharded = scorer.score_sharded(archs, seeds, batch, mesh)
    print(json.dumps({n: sharded[n].tolist() for n in proxies}))
""")
SHARDED_ARCHS = (MIXED, LARGEST, 123)
SHARDED_SEEDS = (0, 1)


#: The sharded program runs one proxy of each kind of pass (:data:`ONE_PER_PASS`); input
#: gradients (jacob_cov) once came out summed over the devices, as differentiating with respect
#: to the replicated batch inside shard_map psums its cotangent (the batch is now made varying
#: first). Not fisher, whose sharded program crashes XLA:CPU (a segfault at run time, jax
#: 0.10.2; score_sharded refuses it on CPU).
SHARDED_PROXIES = ONE_PER_PASS


def test_sharded_fisher_refused_on_cpu(batch):
    from jax.sharding import Mesh

    config = SweepConfig(proxies=("fisher",), network=NB201Config(**TINY))
    scorer = CompileOnceScorer(config, config.proxies)
    mesh = Mesh(np.array(jax.devices()[:1]), ("items",))
    with pytest.raises(NotImplementedError, match="fisher"):
        scorer.score_sharded([MIXED], [0], batch, mesh)


def test_four_device_sharded_equals_single_device(batch, one_per_pass_scorer):
    """Four host devices in a child process; the single-device scores are this process's
    (the same program, compiled once for the module)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    out = subprocess.run([sys.executable, "-c", _SHARDED, ",".join(SHARDED_PROXIES),
                          json.dumps(SHARDED_ARCHS), json.dumps(SHARDED_SEEDS)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(result) == sorted(SHARDED_PROXIES)
    single = [one_per_pass_scorer(arch, list(SHARDED_SEEDS), batch) for arch in SHARDED_ARCHS]
    for name, sharded in result.items():
        assert np.shape(sharded) == (len(SHARDED_ARCHS), len(SHARDED_SEEDS))
        want = np.stack([scores[name] for scores in single])
        np.testing.assert_allclose(sharded, want, **_tol(name), err_msg=name)


def test_nb201_config_hash_is_the_one_stores_were_written_with():
    # The key every NB201 score stored so far carries: the space plus the network's fields.
    from zcjax.sweep.store import config_hash

    old = config_hash({"space": "nb201", "channels": 16, "cells_per_stage": 5,
                       "num_classes": 10, "convention": "zero_cost"})
    assert SweepConfig(proxies=("grad_norm",)).hash() == old == "%s" % old
    tiny = SweepConfig(proxies=(), network=NB201Config(**TINY)).hash()
    assert tiny == config_hash({"space": "nb201", "channels": 4, "cells_per_stage": 1,
                                "num_classes": 10, "convention": "zero_cost"})


def test_config_rejects_bad_settings_when_made_not_when_used():
    with pytest.raises(ValueError, match="convention"):
        SweepConfig(proxies=("grad_norm",), network=NB201Config(convention="pytorch"))
    with pytest.raises(ValueError, match="unknown search space"):
        SweepConfig(proxies=("grad_norm",), space="nb999")
    with pytest.raises(ValueError, match="takes no option"):
        SweepConfig(proxies=("epsilon",), proxy_options={"epsilon": {"weight": (1, 2)}})


def test_option_overrides_change_the_hash_and_reach_the_proxy(batch):
    base = SweepConfig(proxies=("epsilon",), network=NB201Config(**TINY))
    other = SweepConfig(proxies=("epsilon",), network=NB201Config(**TINY),
                        proxy_options={"epsilon": {"weights": (1e-4, 10.0)}})
    assert base.hash() != other.hash()
    assert other.options()["epsilon"] == {"weights": (1e-4, 10.0)}
    tasks = make_tasks("nb201", [MIXED], [0], ("epsilon",), "c" * 16, "b" * 16)
    a, b = (compute_chunk(tasks, batch, c)[0].value for c in (base, other))
    assert a != b


def test_seeds_vmapped_on_the_compile_once_network_equal_the_loop(batch):
    names = ("grad_norm", "snip", "nwot")
    loop = CompileOnceScorer(SweepConfig(proxies=names, network=NB201Config(**TINY),
                                         strategy="loop"), names)
    vmapped = CompileOnceScorer(SweepConfig(proxies=names, network=NB201Config(**TINY),
                                            strategy="vmap"), names)
    a, b = loop(MIXED, [0, 1, 2], batch), vmapped(MIXED, [0, 1, 2], batch)
    for name in names:
        np.testing.assert_allclose(b[name], a[name], rtol=2e-5, atol=1e-6, err_msg=name)
    assert len(set(np.round(a["grad_norm"], 5))) == 3  # three different initialisations
