"""Supernet training: one compiled step for every architecture, resumable to the bit.

:func:`train` trains the compile-once network of a space
(:meth:`~zcjax.spaces.base.SearchSpace.scorer`) by single-path sampling
(:mod:`zcjax.oneshot.sampling`): each step draws its architecture(s) on the host and passes
them to the compiled step as data, so every architecture runs the same program. Per step::

    images <- augment(uint8 batch), normalise         (in the step, key = fold_in(run key, step))
    for each path: loss, grads <- value_and_grad(cross-entropy of path's logits)
    grads <- sum over paths / paths using each parameter   (aw_nas's multi-sample average)
    params, opt_state <- optimiser(grads, presence, loss)  (:mod:`zcjax.oneshot.optim`)

Everything random in a step is a function of ``(seed, step)``: the data order
(:func:`zcjax.oneshot.data.epoch_order`), the paths (:class:`~zcjax.oneshot.sampling.Sampler`),
the augmentation and dropout keys (``fold_in`` of the run key). With the state restored from a
checkpoint, a resumed run therefore computes exactly what the uninterrupted run computes, and
ends with the same weights (tested by killing a real process).

Checkpoints (:mod:`zcjax.oneshot.checkpoint`) are written every ``checkpoint_every`` steps
(default: once an epoch), at the end, and on Ctrl-C; a run killed otherwise loses the steps
since the last one. Progress lines give the step count, steps per second, ETA and the running
loss, accuracy and learning rate of the epoch; a line per epoch gives its means.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import statistics
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from zcjax import validation
from zcjax.oneshot import data as data_lib
from zcjax.oneshot.checkpoint import Checkpoints, params_hash
from zcjax.oneshot.config import TrainConfig
from zcjax.oneshot.optim import learning_rate, make_optimizer
from zcjax.oneshot.sampling import Sampler
from zcjax.spaces import base
from zcjax.sweep.progress import Progress

__all__ = ["TrainState", "TrainResult", "Supernet", "train", "load", "network_of",
           "init_state", "make_train_step", "steps_per_epoch"]


@flax.struct.dataclass
class TrainState:
    """Everything a step changes: parameters, optimiser state, the step count and the run's
    RNG key (raw ``uint32`` key data, so that any checkpoint format stores it)."""

    params: Any
    opt_state: Any
    step: jax.Array
    rng: jax.Array

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "opt_state": self.opt_state, "step": self.step,
                "rng": self.rng}

    @classmethod
    def from_dict(cls, tree: Mapping[str, Any]) -> "TrainState":
        return cls(tree["params"], tree["opt_state"], tree["step"], tree["rng"])


@dataclasses.dataclass(frozen=True)
class Supernet:
    """Trained supernet weights and where they come from.

    Attributes:
      config: the run.
      params: the parameters.
      step: steps trained.
      steps_per_epoch: steps in an epoch of that run.
      checkpoint_hash: :func:`~zcjax.oneshot.checkpoint.params_hash` of ``params``.
      data_hash: hash of the training images.
      directory: the checkpoint folder (``None`` for weights never saved).
    """

    config: TrainConfig
    params: Any
    step: int
    steps_per_epoch: int
    checkpoint_hash: str
    data_hash: str
    directory: str | None = None

    @property
    def epoch(self) -> float:
        """Epochs trained (fractional for a checkpoint taken inside an epoch)."""
        return self.step / self.steps_per_epoch

    @property
    def network(self) -> base.CompileOnceNetwork:
        return network_of(self.config)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes:
      supernet: the weights at the end (last step run).
      history: one dict per finished epoch: ``epoch`` (1-based), ``loss`` and ``accuracy``
        (means over the epoch's steps, training mode: augmentation and dropout on),
        ``learning_rate`` (of the epoch's last step), ``seconds`` (wall time of its steps).
      fingerprint: the run's fingerprint (its checkpoints carry it).
      resumed_from: the step of the checkpoint this call started from (``None``: afresh).
      steps_run: steps this call ran.
      compile_seconds: wall time of compiling the step (NaN if nothing was left to run).
      seconds_per_step: median wall time of this call's steps, compiled (NaN if none ran).
    """

    supernet: Supernet
    history: list[dict]
    fingerprint: str
    resumed_from: int | None
    steps_run: int
    compile_seconds: float
    seconds_per_step: float


def network_of(config: TrainConfig) -> base.CompileOnceNetwork:
    """The compile-once network a run trains; a clear error for spaces without one."""
    network = config.search_space.scorer(config.network)
    if network is None:
        raise ValueError(f"search space {config.space!r} offers no compile-once network "
                         "(SearchSpace.scorer), so it has no supernet to train")
    return network


def steps_per_epoch(config: TrainConfig, n_images: int) -> int:
    steps = n_images // config.batch_size
    if steps < 1:
        raise ValueError(f"{n_images} training images make no batch of {config.batch_size}; "
                         "lower batch_size or give more images")
    return steps


def init_state(config: TrainConfig, network: base.CompileOnceNetwork,
               optimizer: optax.GradientTransformationExtraArgs,
               image_shape: Sequence[int]) -> TrainState:
    """The state before the first step: parameters from the seed's init key (PyTorch's default
    initialisation, as the reference supernet), a fresh optimiser state."""
    init_key, run_key = jax.random.split(jax.random.key(config.seed))
    params = network.init_params(init_key, tuple(image_shape))
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32),
                      jax.random.key_data(run_key))


def make_train_step(config: TrainConfig, network: base.CompileOnceNetwork,
                    optimizer: optax.GradientTransformationExtraArgs, images: data_lib.ImageSet
                    ) -> Callable[[TrainState, Any, Any, Any], tuple[TrainState, dict]]:
    """The compiled step ``(state, uint8 images, labels, paths) -> (state, {loss, accuracy})``
    (module doc); ``paths`` is ``(P, *arch_shape)`` with ``P`` fixed by the sampler."""
    pad = data_lib.PADDING.get(images.image_shape[0], images.image_shape[0] // 8)

    def loss_fn(params, arch, x, labels, key):
        logits = network.train_apply(network.variables_for(params, arch), x,
                                     dropout_rate=config.dropout, key=key)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: TrainState, images_u8, labels, paths):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        aug_key, dropout_key = jax.random.split(key)
        x = data_lib.augment(aug_key, images_u8, pad) if config.augment else images_u8
        x = data_lib.normalize(x, images.mean, images.std)
        grad_sum = users = None
        losses, accuracies = [], []
        for i in range(paths.shape[0]):  # static: one path in the default, P for fair
            (loss, acc), grads = grad_fn(state.params, paths[i], x, labels,
                                         jax.random.fold_in(dropout_key, i))
            present = network.presence(state.params, paths[i])
            grad_sum = grads if grad_sum is None else jax.tree.map(jnp.add, grad_sum, grads)
            users = present if users is None else jax.tree.map(jnp.add, users, present)
            losses.append(loss)
            accuracies.append(acc)
        grads = jax.tree.map(lambda g, n: g / jnp.maximum(n, 1.0), grad_sum, users)
        loss = jnp.mean(jnp.stack(losses))
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params,
                                              presence=users, value=loss)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state,
                         state.step + 1, state.rng)
        return new, {"loss": loss, "accuracy": jnp.mean(jnp.stack(accuracies))}

    return jax.jit(step)


def train(config: TrainConfig, images: data_lib.ImageSet, directory: "str | os.PathLike", *,
          checkpoint_every: int | None = None, keep_last: int = 2,
          keep_epochs: Iterable[int] = (), max_steps: int | None = None,
          progress: bool | Progress = True) -> TrainResult:
    """Trains (or resumes training) a supernet; checkpoints in ``directory``.

    Args:
      config: the run (:class:`~zcjax.oneshot.config.TrainConfig`).
      images: the training images (e.g. ``zcjax.oneshot.data.load(...)[0]``).
      directory: the run's checkpoint folder; an existing one is resumed from its latest
        checkpoint if it belongs to this run (same fingerprint), else refused untouched.
      checkpoint_every: steps between checkpoints (default: the steps of an epoch).
      keep_last: checkpoints kept besides those of ``keep_epochs``.
      keep_epochs: epochs whose end checkpoints are kept (e.g. for analyses over training).
      max_steps: stop after this many steps of the run in total (``None``: all epochs).
      progress: progress lines on stderr (``True``), none (``False``) or your
        :class:`~zcjax.sweep.progress.Progress` (its ``total`` is set to the run's steps).

    Returns:
      A :class:`TrainResult`.

    Raises:
      ValueError: a space without a supernet, images that do not fit the network, too few
        images for a batch; :class:`~zcjax.oneshot.checkpoint.CheckpointMismatchError` /
        :class:`~zcjax.oneshot.checkpoint.CheckpointCorruptError` for a folder of another run
        or a damaged checkpoint (nothing written).
      KeyboardInterrupt: after saving a checkpoint of the last finished step.
    """
    network = network_of(config)
    _check_images(config, images)
    spe = steps_per_epoch(config, len(images))
    total = config.epochs * spe
    if max_steps is not None:
        total = min(total, validation.check_int(max_steps, "max_steps", 1))
    every = spe if checkpoint_every is None else validation.check_int(
        checkpoint_every, "checkpoint_every", 1)
    keep_steps = {validation.check_int(e, "keep_epochs", 1) * spe for e in keep_epochs}
    optimizer = make_optimizer(config, spe)
    sampler = Sampler(config.search_space, network, config.sampling, config.paths_per_step)
    fingerprint = config.fingerprint(images.hash)
    fields = _fields(config, images, spe)

    checkpoints = Checkpoints(directory, keep_last=keep_last, keep_steps=keep_steps)
    try:
        checkpoints.check(fingerprint, fields)
        state = init_state(config, network, optimizer, images.image_shape)
        start = checkpoints.latest()
        history, partial = [], _new_partial()
        if start is not None:
            tree, meta = checkpoints.restore(start, state.as_dict())
            state = TrainState.from_dict(tree)
            history, partial = list(meta["history"]), dict(meta["partial"])
            if int(state.step) != start:
                raise ValueError(f"checkpoint {start} holds step {int(state.step)}")
        step = start or 0
        durations: list[float] = []
        compile_seconds = math.nan
        if step < total:
            t0 = time.perf_counter()
            step_fn = _compile(make_train_step(config, network, optimizer, images), state,
                               images, config.batch_size, sampler(config.seed, step))
            compile_seconds = time.perf_counter() - t0
        reporter = _reporter(progress, config, total, step)  # rates exclude compilation
        if step < total:
            reporter.write(f"{'resuming at' if start else 'starting'} step {step} of {total} "
                           f"({spe} per epoch); compiled the step in {compile_seconds:.1f} s")
        saved = start

        def save() -> None:
            nonlocal saved
            if saved == step:
                return
            with _interrupts_deferred():  # Ctrl-C waits for the save to finish
                meta = {"fingerprint": fingerprint, "fields": fields, "step": step,
                        "history": history, "partial": partial}
                checkpoints.save(step, state.as_dict(), meta)
                saved = step

        order, order_epoch = None, -1
        try:
            while step < total:
                epoch, index = divmod(step, spe)
                if epoch != order_epoch:
                    order = data_lib.epoch_order(config.seed, epoch, len(images))
                    order_epoch = epoch
                rows = order[index * config.batch_size:(index + 1) * config.batch_size]
                t0 = time.perf_counter()
                new_state, metrics = step_fn(state, images.images[rows], images.labels[rows],
                                             sampler(config.seed, step))
                loss, acc = float(metrics["loss"]), float(metrics["accuracy"])
                seconds = time.perf_counter() - t0
                running = {"loss_sum": partial["loss_sum"] + loss,
                           "accuracy_sum": partial["accuracy_sum"] + acc,
                           "steps": partial["steps"] + 1,
                           "seconds": partial["seconds"] + seconds}
                lr = learning_rate(config, state.opt_state, step, spe)  # what this step used
                new_partial, new_history = running, history
                epoch_done = (step + 1) % spe == 0
                if epoch_done:
                    new_partial = _new_partial()
                    new_history = history + [{
                        "epoch": (step + 1) // spe, "learning_rate": lr,
                        "loss": running["loss_sum"] / running["steps"],
                        "accuracy": running["accuracy_sum"] / running["steps"],
                        "seconds": running["seconds"]}]
                # The step is taken: one statement, inside which Python delivers no Ctrl-C, so
                # a checkpoint never pairs the state of one step with the counts of another.
                state, step, partial, history = new_state, step + 1, new_partial, new_history
                durations.append(seconds)
                reporter.status = (f"epoch {epoch + 1} loss "
                                   f"{running['loss_sum'] / running['steps']:.4f} acc "
                                   f"{running['accuracy_sum'] / running['steps']:.4f} lr {lr:.4g}")
                if epoch_done:
                    reporter.write(_epoch_line(history[-1], config.epochs))
                reporter.update()
                if step % every == 0 or step in keep_steps or step == total:
                    save()
        except KeyboardInterrupt:
            save()
            reporter.write(f"interrupted: checkpoint of step {step} saved in "
                           f"{checkpoints.directory}; rerun to resume")
            raise
        finally:
            reporter.close()
    finally:
        checkpoints.close()

    supernet = Supernet(config, state.params, step, spe, params_hash(state.params),
                        images.hash, str(checkpoints.directory))
    return TrainResult(supernet, history, fingerprint, start, len(durations), compile_seconds,
                       statistics.median(durations) if durations else math.nan)


def load(directory: "str | os.PathLike", step: int | None = None) -> Supernet:
    """The supernet of a checkpoint folder (its latest step, or ``step``), checked against the
    hash saved with it; the configuration is read from the checkpoint itself."""
    checkpoints = Checkpoints(directory)
    try:
        steps = checkpoints.steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {checkpoints.directory}")
        if step is None:
            step = steps[-1]
        elif step not in steps:
            raise ValueError(f"no checkpoint of step {validation.cap(repr(step))} in "
                             f"{checkpoints.directory}; it has steps {steps}")
        meta = checkpoints.meta(step)
        config = TrainConfig.from_fields(meta["fields"]["train"])
        spe = int(meta["fields"]["steps_per_epoch"])
        network = network_of(config)
        optimizer = make_optimizer(config, spe)
        shape = tuple(meta["fields"]["data"]["image_shape"])
        template = jax.eval_shape(lambda: init_state(config, network, optimizer, shape))
        tree, meta = checkpoints.restore(step, template.as_dict())
    finally:
        checkpoints.close()
    return Supernet(config, tree["params"], int(step), spe, meta["params_hash"],
                    meta["fields"]["data"]["hash"], str(checkpoints.directory))


# -- helpers ------------------------------------------------------------------------------

@contextlib.contextmanager
def _interrupts_deferred():
    """Ctrl-C (SIGINT) during the block is raised after it: orbax's save, interrupted half-way,
    leaves its manager unable to save again. Only the main thread can hold the signal."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _compile(step_fn, state: TrainState, images: data_lib.ImageSet, batch_size: int,
             paths: np.ndarray):
    """The step compiled ahead of time for the run's shapes (so step times exclude it)."""
    shape = (batch_size, *images.image_shape)
    # Lowered from shapes alone: a fresh state and one restored from a checkpoint (arrays
    # committed to a device) then give one program, which the persistent cache can reuse.
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
    return step_fn.lower(abstract, jax.ShapeDtypeStruct(shape, jnp.uint8),
                         jax.ShapeDtypeStruct((batch_size,), jnp.int32),
                         jax.ShapeDtypeStruct(paths.shape, paths.dtype)).compile()


def _check_images(config: TrainConfig, images: data_lib.ImageSet) -> None:
    spec = config.search_space.input_spec(config.network)
    if images.image_shape != tuple(spec.shape):
        raise ValueError(f"{images.name}: images of shape {images.image_shape}, but the "
                         f"{config.space} network takes {tuple(spec.shape)}")
    classes = config.network.num_classes
    if len(images) and (images.labels.min() < 0 or images.labels.max() >= classes):
        raise ValueError(f"{images.name}: labels {images.labels.min()}..{images.labels.max()}"
                         f" do not fit the network's {classes} classes")


def _fields(config: TrainConfig, images: data_lib.ImageSet, spe: int) -> dict[str, Any]:
    return {"train": config.fields(), "steps_per_epoch": spe,
            "data": {"name": images.name, "hash": images.hash, "size": len(images),
                     "image_shape": list(images.image_shape)}}


def _new_partial() -> dict[str, float]:
    return {"loss_sum": 0.0, "accuracy_sum": 0.0, "steps": 0, "seconds": 0.0}


def _reporter(progress: bool | Progress, config: TrainConfig, total: int, start: int
              ) -> Progress:
    if isinstance(progress, Progress):
        progress.total = total
        return progress
    return Progress(total, desc=f"supernet {config.space} seed {config.seed}", unit="step",
                    enabled=bool(progress), initial=start)


def _epoch_line(row: Mapping[str, float], epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f} accuracy "
            f"{row['accuracy']:.4f} lr {row['learning_rate']:.4g} ({row['seconds']:.1f} s)")
