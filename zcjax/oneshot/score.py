"""One-shot scores: each architecture's held-out accuracy and loss with the supernet's weights.

How aw_nas scores an architecture (``MepaEvaluator.evaluate_rollouts`` with ``is_training=
False``, as ``awnas derive --test`` runs it): the candidate network takes the supernet's
weights of its operations and runs over the held-out images (the last 20% of the training
split, test-time transform, not shuffled) in batches of 512, with

* **batch norm in training mode** ("In parameter-sharing evaluation, let's keep using
  train-mode BN"): every batch is normalised with its own mean and variance, computed for the
  architecture at hand; the running statistics the supernet accumulated while training
  (shared by all architectures, hence wrong for each) are never used;
* dropout off;
* the score of a metric is the mean over batches of its per-batch value (``aggregate_fn``:
  ``np.mean``).

zcjax networks keep no running statistics and always normalise with the batch's statistics,
so this module does exactly that: :func:`score_archs` runs the supernet with the
architecture as data (one compiled program, ``lax.map`` over batches) and averages the
per-batch accuracy and cross-entropy. Deviation: only full batches are used (aw_nas also
scores the last, smaller one, e.g. 272 of CIFAR-10's 10,000 held-out images), which keeps
one compiled shape and every batch's statistics equally reliable.

Stored scores. With a :class:`~zcjax.sweep.store.ResultStore` the scores go in as the proxies
:data:`ESTIMATORS` (``oneshot_accuracy``, higher is better; ``oneshot_loss``, lower is
better), under

* ``config_hash``: :func:`scores_config_hash`, of the network configuration, the checkpoint's
  parameter hash, its step and epoch, and the evaluation settings;
* ``seed``: the supernet's training seed;
* ``batch_hash``: the held-out images' hash (:attr:`zcjax.oneshot.data.ImageSet.hash`),

so an analysis reads them as it reads proxy scores (``experiments.correlate --config_hash=
... --batch_hash=...``). Scoring is resumable like a sweep: stored architectures are skipped,
and a chunk of architectures is written in one transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zcjax import validation
from zcjax.oneshot import data as data_lib
from zcjax.oneshot.trainer import Supernet
from zcjax.spaces import get as get_space
from zcjax.sweep.progress import Progress
from zcjax.sweep.runner import make_tasks, run_resumable
from zcjax.sweep.store import ResultStore, config_hash

__all__ = ["ESTIMATORS", "EVAL_BATCH_SIZE", "OneShotScores", "score_archs",
           "scores_config_hash", "make_eval_fn"]

#: The one-shot estimators as stored proxies: name -> whether higher values are better.
ESTIMATORS: dict[str, bool] = {"oneshot_accuracy": True, "oneshot_loss": False}
#: aw_nas's evaluation batch size (``evaluator_cfg.batch_size``).
EVAL_BATCH_SIZE = 512


@dataclasses.dataclass(frozen=True)
class OneShotScores:
    """One-shot scores of architectures by one supernet checkpoint.

    Attributes:
      archs: architecture strings (the space's keys), in the order asked.
      accuracy: (n,) held-out accuracy in [0, 1] (mean over batches).
      loss: (n,) held-out mean cross-entropy.
      config_hash, batch_hash, seed: the keys the scores are stored under.
      step, epoch: the checkpoint's training progress.
    """

    archs: tuple[str, ...]
    accuracy: np.ndarray
    loss: np.ndarray
    config_hash: str
    batch_hash: str
    seed: int
    step: int
    epoch: float

    def by_estimator(self) -> dict[str, np.ndarray]:
        """``{"oneshot_accuracy": ..., "oneshot_loss": ...}``."""
        return {"oneshot_accuracy": self.accuracy, "oneshot_loss": self.loss}


def scores_config_hash(supernet: Supernet, batch_size: int, n_batches: int) -> str:
    """The store's ``config_hash`` of a checkpoint's scores (module doc)."""
    return config_hash({
        "estimator": "oneshot", "space": supernet.config.space,
        "network": supernet.config.network.fields(), "checkpoint": supernet.checkpoint_hash,
        "step": supernet.step, "epoch": supernet.epoch,
        "eval": {"batch_size": batch_size, "batches": n_batches, "bn": "batch statistics",
                 "dropout": 0.0, "aggregate": "mean over batches"}})


@functools.lru_cache(maxsize=8)
def make_eval_fn(network) -> Any:
    """Compiled ``(params, arch_data, x (b, B, ...), labels (b, B)) -> (loss, accuracy)``,
    each the mean over the ``b`` batches of the batch's mean (one per network, cached)."""

    def one_batch(params, arch, x, labels):
        logits = network.module().apply(network.variables_for(params, arch), x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

    def run(params, arch, x, labels):
        losses, accs = jax.lax.map(lambda b: one_batch(params, arch, *b), (x, labels))
        return jnp.mean(losses), jnp.mean(accs)

    return jax.jit(run)


@functools.lru_cache(maxsize=8)
def _network(space: str, network_config) -> Any:
    """One compile-once network per configuration, so that its compiled evaluation is reused
    across checkpoints."""
    return get_space(space).scorer(network_config)


def score_archs(supernet: Supernet, archs: Sequence[Any], images: data_lib.ImageSet, *,
                batch_size: int = EVAL_BATCH_SIZE, max_batches: int | None = None,
                store: ResultStore | None = None, chunk_size: int = 16,
                progress: bool = True) -> OneShotScores:
    """Scores architectures with a supernet's shared weights (module doc).

    Args:
      supernet: the weights (:func:`zcjax.oneshot.load` of a checkpoint, or a run's result).
      archs: architectures (genotypes or strings of the supernet's space).
      images: the held-out images (``zcjax.oneshot.data.load(...)[1]``), never trained on.
      batch_size: images per batch, whose statistics batch norm uses (512 in the paper).
      max_batches: use only the first this many full batches (default: all).
      store: if given, scores are stored there (resumable) and stored ones reused.
      chunk_size: architectures per store transaction.
      progress: progress lines on stderr.

    Returns:
      :class:`OneShotScores` in the order of ``archs``.
    """
    config = supernet.config
    space = config.search_space
    keys = tuple(dict.fromkeys(space.key(a) for a in archs))
    if len(keys) != len(archs):
        raise ValueError(f"{len(archs) - len(keys)} architectures are given twice")
    batch_size = validation.check_int(batch_size, "batch_size", 1)
    n_batches = len(images) // batch_size
    if max_batches is not None:
        n_batches = min(n_batches, validation.check_int(max_batches, "max_batches", 1))
    if n_batches < 1:
        raise ValueError(f"{images.name}: {len(images)} images make no batch of {batch_size}")
    spec = space.input_spec(config.network)
    if images.image_shape != tuple(spec.shape):
        raise ValueError(f"{images.name}: images of shape {images.image_shape}, but the "
                         f"{config.space} network takes {tuple(spec.shape)}")
    network = _network(config.space, config.network)
    used = n_batches * batch_size
    x = data_lib.normalize(jnp.asarray(images.images[:used]), images.mean, images.std)
    x = x.reshape(n_batches, batch_size, *images.image_shape)
    labels = jnp.asarray(images.labels[:used]).reshape(n_batches, batch_size)
    evaluate = make_eval_fn(network)
    params = supernet.params

    def score(arch: str) -> tuple[float, float]:
        loss, acc = evaluate(params, jnp.asarray(network.arch_data(arch)), x, labels)
        return float(acc), float(loss)

    ch = scores_config_hash(supernet, batch_size, n_batches)
    bh = images.hash
    desc = f"one-shot scores ({config.space}, step {supernet.step})"
    if store is None:
        values = {}
        with Progress(len(keys), desc=desc, unit="arch", enabled=progress) as bar:
            for key in keys:
                values[key] = score(key)
                bar.update()
        acc = np.array([values[k][0] for k in keys])
        loss = np.array([values[k][1] for k in keys])
    else:
        def compute(chunk):
            records = []
            for task in chunk:
                start = time.perf_counter()
                a, l = score(task.arch)
                seconds = (time.perf_counter() - start) / len(task.proxies)
                for name in task.proxies:
                    value = a if name == "oneshot_accuracy" else l
                    reason = f"{name} is NaN (the supernet diverged?)" if np.isnan(value) else None
                    records.append(task.record(name, value, reason=reason, seconds=seconds))
            return records

        tasks = make_tasks(config.space, keys, [config.seed], tuple(ESTIMATORS), ch, bh)
        run_resumable(tasks, compute, store, chunk_size=chunk_size, progress=progress,
                      desc=desc)
        stored = {name: store.scores(config.space, name, ch, bh, archs=keys,
                                     seeds=[config.seed]) for name in ESTIMATORS}
        acc = np.array([stored["oneshot_accuracy"][k][0] for k in keys])
        loss = np.array([stored["oneshot_loss"][k][0] for k in keys])
    return OneShotScores(keys, acc, loss, ch, bh, config.seed, supernet.step, supernet.epoch)
