"""The supernet optimiser against a hand-written PyTorch SGD / ReduceLROnPlateau, in NumPy.

The references below spell out what ``torch.optim.SGD.step`` (momentum, coupled weight decay,
skipping parameters whose ``.grad`` is ``None``), ``torch.nn.utils.clip_grad_norm_`` and
``torch.optim.lr_scheduler.ReduceLROnPlateau`` do, step by step, on a small tree of
parameters; the optax chain of :mod:`zcjax.oneshot.optim` must follow them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax.oneshot import optim
from zcjax.oneshot.config import TrainConfig

NAMES = ("a", "b", "c", "d")
SHAPES = {"a": (3,), "b": (2, 2), "c": (4,), "d": ()}


def as_tree(flat):
    return {"a": flat["a"], "nested": {"b": flat["b"], "c": flat["c"]}, "d": flat["d"]}


def as_flat(tree):
    return {"a": tree["a"], "b": tree["nested"]["b"], "c": tree["nested"]["c"], "d": tree["d"]}


def torch_sgd(params, steps, *, lr, momentum, weight_decay, clip, zero_grad):
    """PyTorch 1.x (``zero_grad``) or >= 2.0 semantics; ``steps`` = [(grads, present)]."""
    p = {n: np.array(v, np.float64) for n, v in params.items()}
    buf, had_grad = {}, set()
    for grads, present in steps:
        grad = {}
        for n in NAMES:
            if n in present:
                grad[n] = np.array(grads[n], np.float64)
                had_grad.add(n)
            elif zero_grad and n in had_grad:
                grad[n] = np.zeros_like(p[n])  # Module.zero_grad() zeroes, never frees
            else:
                grad[n] = None
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grad.values() if g is not None))
        coef = clip / (norm + 1e-6)
        for n, g in grad.items():
            if g is None:
                continue  # SGD skips the parameter: no decay, no momentum, buffer kept
            if coef < 1:
                g = g * coef
            d = g + weight_decay * p[n]
            buf[n] = d.copy() if n not in buf else momentum * buf[n] + d
            p[n] = p[n] - lr * buf[n]
    return p


def run_optax(params, steps, config):
    tx = optim.make_optimizer(config, steps_per_epoch=1000)
    tree = as_tree({n: jnp.asarray(v, jnp.float32) for n, v in params.items()})
    state = tx.init(tree)
    update = jax.jit(lambda g, s, p, pres: tx.update(g, s, p, presence=pres, value=1.0))
    for grads, present in steps:
        g = as_tree({n: jnp.asarray(grads[n] if n in present else np.zeros(SHAPES[n]),
                                     jnp.float32) for n in NAMES})
        pres = as_tree({n: jnp.float32(n in present) for n in NAMES})
        updates, state = update(g, state, tree, pres)
        tree = jax.tree.map(jnp.add, tree, updates)
    return as_flat(tree)


@pytest.mark.parametrize("absent", ["zero_grad", "skip"])
def test_sgd_clip_decay_momentum_follow_pytorch(absent):
    rng = np.random.default_rng(0)
    params = {n: rng.normal(size=SHAPES[n]) for n in NAMES}
    # Presence per step: "d" is first used at step 2, "c" only at step 0; the scale of the
    # gradients makes clipping act on some steps and not on others.
    present = [{"a", "b", "c"}, {"a", "b"}, {"a", "d"}, {"b"}, {"a", "b", "d"}, {"a"}]
    scale = [0.1, 5.0, 0.2, 3.0, 0.05, 1.0]
    steps = [({n: s * rng.normal(size=SHAPES[n]) for n in NAMES}, pres)
             for pres, s in zip(present, scale)]
    config = TrainConfig(learning_rate=0.05, momentum=0.9, weight_decay=5e-4, grad_clip=1.0,
                         schedule="constant", absent_params=absent)
    expected = torch_sgd(params, steps, lr=0.05, momentum=0.9, weight_decay=5e-4, clip=1.0,
                         zero_grad=absent == "zero_grad")
    got = run_optax(params, steps, config)
    for n in NAMES:
        np.testing.assert_allclose(got[n], expected[n], rtol=2e-6, atol=1e-7, err_msg=n)
    if absent == "skip":  # "c" unused after step 0: untouched by decay and momentum since
        c_after_0 = torch_sgd(params, steps[:1], lr=0.05, momentum=0.9, weight_decay=5e-4,
                              clip=1.0, zero_grad=False)["c"]
        np.testing.assert_allclose(got["c"], c_after_0, rtol=2e-6)
    else:  # momentum and decay keep moving it
        assert np.max(np.abs(got["c"] - expected["c"])) < 1e-6
        assert not np.allclose(got["c"], torch_sgd(params, steps[:1], lr=0.05, momentum=0.9,
                                                   weight_decay=5e-4, clip=1.0,
                                                   zero_grad=True)["c"])


def torch_plateau_rates(epoch_losses, lr, factor, patience, threshold=1e-4):
    """The learning rate of every epoch under ``ReduceLROnPlateau(mode="min")``, stepped at
    the start of each epoch with the previous epoch's mean loss."""
    best, bad, rates = math.inf, 0, []
    for loss in epoch_losses:
        rates.append(lr)
        if loss < best * (1 - threshold):
            best, bad = loss, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
    return rates


def test_plateau_schedule_follows_pytorch():
    steps_per_epoch, patience, factor = 3, 2, 0.5
    # Per-epoch mean losses: improve, plateau (ties and a 1e-5 relative "improvement", below
    # the threshold), improve, long plateau.
    epoch_losses = [3.0, 2.0, 2.0, 1.99999, 2.5, 1.5, 1.6, 1.5, 1.5, 1.5, 1.5, 1.5, 1.0]
    rng = np.random.default_rng(1)
    step_losses = []
    for mean in epoch_losses:  # three steps whose mean is the epoch's loss
        noise = rng.normal(size=steps_per_epoch) * 0.01
        step_losses.extend(mean + noise - noise.mean())
    config = TrainConfig(learning_rate=0.1, momentum=0.0, weight_decay=0.0, grad_clip=None,
                         schedule="plateau", plateau_patience=patience, plateau_factor=factor)
    tx = optim.make_optimizer(config, steps_per_epoch)
    params = {"w": jnp.zeros(()), "v": jnp.zeros(())}
    state = tx.init(params)
    ones = {"w": jnp.ones(()), "v": jnp.ones(())}
    rates = []
    for value in step_losses:
        updates, state = tx.update(ones, state, params, presence=ones,
                                   value=jnp.float32(value))
        rates.append(-float(updates["w"]))
    expected = np.repeat(torch_plateau_rates(epoch_losses, 0.1, factor, patience),
                         steps_per_epoch)
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert min(expected) < 0.1  # the schedule did act


def test_learning_rate_reports_the_plateau_scale():
    config = TrainConfig(schedule="plateau", plateau_patience=0, momentum=0.0,
                         weight_decay=0.0, grad_clip=None, learning_rate=0.2)
    tx = optim.make_optimizer(config, steps_per_epoch=1)
    params = {"w": jnp.zeros(()), "v": jnp.zeros(())}
    state = tx.init(params)
    for value in (1.0, 1.0):  # no improvement in the second epoch: halved after it
        _, state = tx.update(params, state, params, presence=params, value=value)
    assert optim.learning_rate(config, state, 2, 1) == pytest.approx(0.1)


def test_single_path_refuses_unknown_modes():
    import optax

    with pytest.raises(ValueError, match="absent"):
        optim.single_path(optax.sgd(0.1), "sometimes")
