"""Every registered search space, through the protocol alone (a new space is covered for free).

Per space: architecture strings round-trip, bad strings are a clear ValueError, sampling is
reproducible, the network of a tiny configuration takes the example batch, and every registered
proxy that applies to the space scores a sampled architecture with a finite score (NaN only
where the space documents it, ``SearchSpace.nan_proxies``). Proxies run eagerly with compiled
blocks, the route a sweep takes for them (no compilation per network), one architecture per
space, to keep the suite fast.
"""

from __future__ import annotations

import math
import pathlib

import jax
import numpy as np
import pytest

from zcjax import proxies, scoring, spaces
from zcjax.sweep import ResultStore
from zcjax.sweep.engine import SweepConfig, sweep

SPACES = spaces.names()

# XLA's heavier optimisations off: the eager proxies compile one small kernel per primitive and
# shape, and those compile faster (NB301's tiny network: 313 s against 408 s, every proxy).
pytestmark = pytest.mark.usefixtures("fast_compiles")


def _space(name):
    return spaces.get(name)


@pytest.mark.parametrize("name", SPACES)
def test_strings_round_trip_and_sampling_is_seeded(name):
    space = _space(name)
    archs = space.sample(5, seed=3)
    assert archs == space.sample(5, seed=3)
    for arch in archs:
        text = space.format(arch)
        assert isinstance(text, str)
        assert space.parse(text) == arch
        assert space.key(text) == text
        assert space.canonical(arch) == space.canonical(space.parse(text))
        assert len(space.arch_hash(arch)) == 32


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("bad", ["", "nonsense", "|" * 3, "x" * 10_000])
def test_bad_strings_are_a_clear_error(name, bad):
    with pytest.raises(ValueError) as info:
        _space(name).parse(bad)
    assert len(str(info.value)) < 1000  # the message names the problem; it does not echo 10 kB


@pytest.mark.parametrize("name", SPACES)
def test_config_rejects_unknown_settings(name):
    space = _space(name)
    with pytest.raises(ValueError, match="unknown network settings"):
        space.config(no_such_setting=1)
    assert space.config() == space.Config()


#: Spaces whose every registered proxy is already run eagerly, on tiny networks, by a stronger
#: test: NB201's golden test pins every proxy's value on three cells that hold every operation
#: (tests/golden, ``test_every_registered_proxy_is_pinned`` fails when a proxy is added without a
#: value), so running them here again would only repeat 2 CPU-minutes of kernel compilation.
PINNED_ELSEWHERE = {"nb201": "tests/golden/test_nb201_golden.py::test_eager_scores_are_pinned"}


@pytest.mark.parametrize("name", SPACES)
def test_every_proxy_scores_a_tiny_network(name):
    if name in PINNED_ELSEWHERE:
        path, test = PINNED_ELSEWHERE[name].split("::")
        source = pathlib.Path(__file__).parents[2] / path
        assert f"def {test}(" in source.read_text(), f"{PINNED_ELSEWHERE[name]} is gone"
        pytest.skip(f"every proxy is run and pinned by {PINNED_ELSEWHERE[name]}")
    space = _space(name)
    config = space.tiny_config()
    batch = space.example_batch(config, size=8)
    kind = space.input_spec(config).kind
    names = [p for p in proxies.names()
             if kind in proxies.get(p).inputs and p not in space.unsupported_proxies]
    assert names, f"no proxy applies to {name}"
    for arch in space.sample(1, seed=0):
        model = space.build(arch, config)
        result = scoring.score(model, batch, names, seeds=[0], jit=False, blocks=True,
                               options=space.proxy_options)
        bad = {p: float(v[0]) for p, v in result.scores.items()
               if not math.isfinite(v[0]) and p not in space.nan_proxies}
        assert not bad, f"{name} {space.format(arch)}: non-finite {bad}"


@pytest.mark.parametrize("name", SPACES)
def test_unsupported_proxies_are_refused_with_the_reason(name):
    space = _space(name)
    for proxy, reason in space.unsupported_proxies.items():
        assert proxy in proxies.names(), f"{name} lists an unknown proxy {proxy!r}"
        assert reason


@pytest.mark.parametrize("name", SPACES)
def test_uninformative_proxies_are_registered_with_the_reason(name):
    space = _space(name)
    for config in (space.config(), space.tiny_config()):
        for proxy, reason in space.uninformative_proxies(config).items():
            assert proxy in proxies.names(), f"{name} lists an unknown proxy {proxy!r}"
            assert reason


@pytest.mark.parametrize("name", SPACES)
def test_cost_without_running_equals_the_network(name):
    space = _space(name)
    config = space.tiny_config()
    for arch in space.sample(3, seed=1):
        counted = space.param_count(arch, config)
        if counted is None:
            continue
        model = space.build(arch, config)
        spec = space.input_spec(config)
        dummy = jax.ShapeDtypeStruct((1, *spec.shape), np.dtype(spec.dtype))
        shapes = jax.eval_shape(model.init, jax.random.key(0), dummy)
        assert counted == sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize("name", SPACES)
def test_counted_params_and_flops_equal_the_proxies(name):
    """What the sweep engine stores for params / flops without a network (the space's counts)
    equals the proxies computed on the network."""
    from zcjax.sweep.engine import counted

    space = _space(name)
    config = space.tiny_config()
    batch = space.example_batch(config, size=2)
    for arch in space.sample(2, seed=2):
        if counted(space, arch, config, "params") is None:
            continue
        model = space.build(arch, config)
        result = scoring.score(model, batch, ["params", "flops"], seeds=[0], jit=False)
        for proxy in ("params", "flops"):
            value = counted(space, arch, config, proxy)
            if value is not None:
                assert value == float(result.scores[proxy][0]), (proxy, space.format(arch))


def test_a_sweep_warns_of_uninformative_proxies(tmp_path, caplog):
    space = _space("nb301")
    config = SweepConfig(proxies=("jacob_cov", "snip"), space="nb301",
                         network=space.tiny_config())
    with ResultStore(tmp_path / "s.sqlite") as store:
        sweep([], [0], space.example_batch(config.network, size=8), config, store,
              progress=False)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("jacob_cov on nb301 carries no information") for m in warned), warned
    assert not any(m.startswith("snip") for m in warned)
