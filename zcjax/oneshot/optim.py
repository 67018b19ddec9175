"""The supernet optimiser: optax transformations that update as aw_nas's PyTorch SGD does.

:func:`make_optimizer` chains, per step (``torch.optim.SGD`` with ``clip_grad_norm_`` before
``step()``, as ``BaseNB201SharedNet.step_current_gradients`` calls them)::

    g <- clip_by_global_norm(g, grad_clip)        torch.nn.utils.clip_grad_norm_
    g <- g + weight_decay * p                     SGD weight_decay (coupled)
    m <- momentum * m + g                         SGD momentum (dampening 0, buffer starts at g)
    p <- p - lr(step) * plateau_scale * m

wrapped in :func:`single_path`, which decides what happens to parameters the step's
architecture does not use (:data:`zcjax.oneshot.config.ABSENT`). Every transformation is
optax's; :func:`torch_plateau` only moves ``optax.contrib.reduce_on_plateau`` onto PyTorch's
timing (below).

``ReduceLROnPlateau`` as PyTorch has it (``mode="min"``, ``threshold=1e-4`` relative,
``cooldown=0``), stepped once per epoch with the mean training loss of the epoch, as aw_nas's
``MepaEvaluator.on_epoch_start`` does: the rate drops by ``factor`` when the loss has not
improved for *more than* ``patience`` epochs, from the first step of the next epoch. optax's
``reduce_on_plateau`` drops it after ``patience`` bad epochs, already on the last step of the
epoch that decided; :func:`torch_plateau` passes ``patience + 1`` and scales each step's update
by the scale in force *before* that step's value is counted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax.contrib import ReduceLROnPlateauState, reduce_on_plateau

from zcjax.oneshot.config import TrainConfig

__all__ = ["SinglePathState", "make_optimizer", "single_path", "torch_plateau",
           "learning_rate"]

#: ``ReduceLROnPlateau``'s default relative threshold.
PLATEAU_THRESHOLD = 1e-4


def torch_plateau(factor: float, patience: int, steps_per_epoch: int,
                  threshold: float = PLATEAU_THRESHOLD) -> optax.GradientTransformationExtraArgs:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau(factor, patience, threshold)`` stepped each
    epoch with the mean of the ``value`` (training loss) passed to every update (module doc).

    Scales updates; chain it after the learning rate. ``update(..., value=loss)``.
    """
    inner = reduce_on_plateau(factor=factor, patience=patience + 1, rtol=threshold, atol=0.0,
                              accumulation_size=steps_per_epoch)

    def update(updates, state: ReduceLROnPlateauState, params=None, *, value, **extra):
        del extra
        scaled = jax.tree.map(lambda u: state.scale * u, updates)
        _, state = inner.update(updates, state, params, value=value)
        return scaled, state

    return optax.GradientTransformationExtraArgs(inner.init, update)


class SinglePathState(NamedTuple):
    """:func:`single_path`'s state: the inner optimiser's and, per parameter leaf, whether any
    step so far used it (``zero_grad`` mode)."""

    inner: Any
    used: Any


def single_path(inner: optax.GradientTransformation, absent: str
                ) -> optax.GradientTransformationExtraArgs:
    """``inner`` updating only what PyTorch would update after a single-path backward pass.

    ``update(grads, state, params, *, presence, **extra)``: ``presence`` is a tree like
    ``params`` of 0/1 scalars (:meth:`~zcjax.spaces.base.CompileOnceNetwork.presence` of the
    step's architecture); gradients of absent parameters are zero. A parameter is *active* in
    a step when

    * ``absent="skip"`` (PyTorch >= 2.0, ``zero_grad(set_to_none=True)``): it is present;
    * ``absent="zero_grad"`` (PyTorch 1.x, aw_nas): it is present now or was in any earlier
      step (its ``.grad`` is then a zero tensor, not ``None``).

    Inactive parameters get a zero update and keep their optimiser state (momentum buffers):
    ``torch.optim.SGD`` skips parameters whose ``.grad`` is ``None``. Gradient clipping is
    unaffected (absent gradients are zero, adding nothing to the norm).
    """
    if absent not in ("zero_grad", "skip"):
        raise ValueError(f"absent must be 'zero_grad' or 'skip', got {absent!r}")

    def init(params) -> SinglePathState:
        used = jax.tree.map(lambda p: jnp.zeros((), bool), params)
        return SinglePathState(inner.init(params), used)

    def update(grads, state: SinglePathState, params=None, *, presence, **extra):
        present = jax.tree.map(lambda x: jnp.asarray(x) > 0, presence)
        used = jax.tree.map(jnp.logical_or, state.used, present)
        active = used if absent == "zero_grad" else present
        updates, new_inner = inner.update(grads, state.inner, params, **extra)
        updates = jax.tree.map(lambda a, u: jnp.where(a, u, jnp.zeros_like(u)), active, updates)
        return updates, SinglePathState(_keep_inactive(active, new_inner, state.inner), used)

    return optax.GradientTransformationExtraArgs(init, update)


def _keep_inactive(active, new_state, old_state):
    """``new_state`` with every params-shaped part taken from ``old_state`` where inactive."""
    params_def = jax.tree.structure(active)
    if params_def.num_leaves < 2:
        raise ValueError("single_path needs a tree of several parameter arrays")

    def params_like(node) -> bool:
        return jax.tree.structure(node) == params_def

    def pick(new, old):
        if not params_like(new):
            return new
        return jax.tree.map(lambda a, n, o: jnp.where(a, n, o), active, new, old)

    return jax.tree.map(pick, new_state, old_state, is_leaf=params_like)


def make_optimizer(config: TrainConfig, steps_per_epoch: int
                   ) -> optax.GradientTransformationExtraArgs:
    """The optimiser of ``config`` (module doc); ``update(g, s, p, presence=, value=loss)``."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.learning_rate, decay_steps=total)
    else:
        lr = config.learning_rate
    parts = []
    if config.grad_clip is not None:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    if config.weight_decay:
        parts.append(optax.add_decayed_weights(config.weight_decay))
    if config.momentum:
        parts.append(optax.trace(decay=config.momentum, nesterov=False))
    parts.append(optax.scale_by_learning_rate(lr))
    if config.schedule == "plateau":
        parts.append(torch_plateau(config.plateau_factor, config.plateau_patience,
                                   steps_per_epoch))
    return single_path(optax.chain(*parts), config.absent_params)


def learning_rate(config: TrainConfig, opt_state: Any, step: int, steps_per_epoch: int
                  ) -> float:
    """The learning rate the next update (step ``step``) uses."""
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        return float(optax.cosine_decay_schedule(config.learning_rate, total)(step))
    rate = config.learning_rate
    if config.schedule == "plateau":
        plateau = [s for s in jax.tree.leaves(
            opt_state, is_leaf=lambda x: isinstance(x, ReduceLROnPlateauState))
            if isinstance(s, ReduceLROnPlateauState)]
        rate *= float(plateau[0].scale)
    return rate
