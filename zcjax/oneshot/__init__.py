"""One-shot estimators: a supernet trained once, whose shared weights score every architecture.

Ning et al., "Evaluating Efficient Performance Estimators of Neural Architectures" (NeurIPS
2021; reference code ``walkerning/aw_nas``) evaluate one-shot estimators (OSE) beside zero-shot
ones. This package trains the supernet and scores architectures with it:

* :mod:`~zcjax.oneshot.config` -- :class:`TrainConfig`, the run (defaults: the paper's NB201
  setting) and its fingerprint;
* :mod:`~zcjax.oneshot.data` -- the 80/20 split of the training images, data order,
  augmentation;
* :mod:`~zcjax.oneshot.sampling` -- uniform, de-isomorphism and fair sampling of paths;
* :mod:`~zcjax.oneshot.optim` -- SGD / clipping / plateau schedule with PyTorch's semantics
  for parameters a step does not use;
* :mod:`~zcjax.oneshot.checkpoint` -- orbax checkpoints, checked against the run;
* :mod:`~zcjax.oneshot.trainer` -- :func:`train` (resumable, one compiled step for every
  architecture) and :func:`load`;
* :mod:`~zcjax.oneshot.score` -- :func:`score_archs`: held-out accuracy and loss of each
  architecture with the shared weights, stored like proxy scores.

The analyses of the paper (criteria over training, bias, variance, OSE vs ZSE) are in
:mod:`zcjax.evaluate.oneshot`; ``python -m experiments.oneshot`` runs them end to end.
"""

from zcjax.oneshot.checkpoint import (CheckpointCorruptError, CheckpointError,
                                      CheckpointMismatchError, Checkpoints, params_hash)
from zcjax.oneshot.config import TrainConfig
from zcjax.oneshot.data import ImageSet
from zcjax.oneshot.data import load as load_data
from zcjax.oneshot.score import ESTIMATORS, OneShotScores, score_archs, scores_config_hash
from zcjax.oneshot.trainer import Supernet, TrainResult, load, train

__all__ = ["CheckpointCorruptError", "CheckpointError", "CheckpointMismatchError",
           "Checkpoints", "ESTIMATORS", "ImageSet", "OneShotScores", "Supernet", "TrainConfig",
           "TrainResult", "load", "load_data", "params_hash", "score_archs",
           "scores_config_hash", "train"]
