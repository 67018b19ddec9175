"""Compiled blocks (zcjax.spaces.blocks) on every registered space.

Per space, on its tiny network: the scores of proxies that exercise each way a block talks to
the rest (sown intermediates, perturbations, parameter and input gradients) equal the op-by-op
ones to float32 rounding, and a network rebuilt from the same architecture compiles nothing more
than op by op (a block whose fields differ between builds, e.g. a fresh initialiser closure,
would compile for every network). NB-NLP marks no block, so there the test only runs the
route. NB201's golden test compares every proxy on both routes; grasp's Hessian-vector product
through blocks is checked there.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import proxies, scoring, spaces
from zcjax.spaces import blocks

pytestmark = pytest.mark.usefixtures("fast_compiles")

#: Sown ReLU inputs (nwot), perturbed convolution outputs (fisher), parameter and input
#: gradients (snip, jacob_cov).
PROXIES = ("nwot", "fisher", "snip", "jacob_cov")
#: rtol per proxy (default 2e-5). jacob_cov takes logarithms of the eigenvalues of a nearly
#: singular 8 x 8 correlation matrix, which amplifies rounding.
RTOL = {"jacob_cov": 1e-3}


@pytest.mark.parametrize("name", spaces.names())
@pytest.mark.usefixtures("no_compilation_cache")  # a recompilation must show as one
def test_blocks_equal_op_by_op_and_compile_nothing_more(name, compile_counter):
    space = spaces.get(name)
    config = space.tiny_config()
    batch = space.example_batch(config, size=8)
    kind = space.input_spec(config).kind
    names = [p for p in PROXIES if kind in proxies.get(p).inputs
             and p not in space.unsupported_proxies
             and p not in space.uninformative_proxies(config)]
    arch = space.sample(1, seed=0)[0]

    def run(blocked):
        result = scoring.score(space.build(arch, config), batch, names, seeds=[0], jit=False,
                               blocks=blocked, options=space.proxy_options)
        return {p: float(v[0]) for p, v in result.scores.items()}

    op_by_op, compiled = run(False), run(True)
    for p in names:
        np.testing.assert_allclose(compiled[p], op_by_op[p], rtol=RTOL.get(p, 2e-5), atol=1e-6,
                                   err_msg=f"{p} on {name}")
    counts = {}
    for blocked in (False, True):  # the same architecture, a rebuilt network
        compile_counter.count, compile_counter.active = 0, True
        again = run(blocked)
        compile_counter.active = False
        counts[blocked] = compile_counter.count
        assert again == (compiled if blocked else op_by_op)
    # Op by op, NB-NLP's recurrence (lax.scan run eagerly) compiles its body on every call;
    # blocks must add nothing to that.
    assert counts[True] <= counts[False], f"{name}: a rebuilt network compiled {counts}"


class _Scaled(nn.Module):
    factor: float

    @nn.compact
    def __call__(self, x, *, square: bool = False):
        self.sow("intermediates", "seen", x)
        y = nn.Dense(3, name="dense")(x) * self.factor
        return y * y if square else y


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = _Scaled(2.0, name="a")(x, square=True)
        return (_Scaled(2.0, name="b")(y) + _Scaled(0.5, name="c")(y)
                + _Scaled(0.5, name="d")(y))


def test_a_marked_block_is_compiled_once_per_fields_and_shape(compile_counter, monkeypatch):
    monkeypatch.setattr(blocks, "_BLOCKS", {_Scaled})
    traced = []
    original = blocks._call_block
    monkeypatch.setattr(blocks, "_call_block", lambda m, *a, **k: (traced.append(
        (m.factor, k.get("square", False))), original(m, *a, **k))[1])
    blocks._compiled.cache_clear()
    net, x = _Net(), jnp.arange(6.0).reshape(2, 3)
    variables = net.init(jax.random.key(0), x)
    assert not traced  # initialisation runs the plain modules
    want, want_sown = net.apply(variables, x, mutable=["intermediates"])
    with blocks.compiled_blocks():
        got, got_sown = net.apply(variables, x, mutable=["intermediates"])
        grad = jax.grad(lambda v: net.apply(v, x).sum())(variables)
    blocks._compiled.cache_clear()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert jax.tree.structure(got_sown) == jax.tree.structure(want_sown)
    want_grad = jax.grad(lambda v: net.apply(v, x).sum())(variables)
    for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(want_grad)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # One trace per (fields, static flag, collections): a (2.0, square), b (2.0), c and d
    # (0.5) share one; the gradient's apply (no mutable collection) traces each again.
    assert sorted(traced) == sorted(2 * [(0.5, False), (2.0, False), (2.0, True)])


def test_only_module_classes_can_be_marked():
    with pytest.raises(TypeError, match="Flax module"):
        blocks.compiled_block(lambda x: x)


def test_blocks_need_eager_execution(tiny_model, tiny_batch):
    with pytest.raises(ValueError, match="jit=False"):
        scoring.score(tiny_model, tiny_batch, ["snip"], jit=True, blocks=True)
