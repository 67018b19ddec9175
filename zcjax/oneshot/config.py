"""What a one-shot supernet training run is: every setting that changes the trained weights.

Defaults are the NAS-Bench-201 one-shot configuration of Ning et al., "Evaluating Efficient
Performance Estimators of Neural Architectures" (NeurIPS 2021), as released in
``walkerning/aw_nas`` (``examples/research/surgery/nb201/deiso_plateaulr.yaml``, the same values
as the earlier ``examples/research/surgery/oneshot.yaml``; read at commit ``732a003``):

=======================  ==========================  ============================================
setting                  value                       where in aw_nas
=======================  ==========================  ============================================
optimiser                SGD, momentum 0.9           ``evaluator_cfg.mepa_optimizer``
learning rate            0.05                        ``mepa_optimizer.lr``
weight decay             5e-4 (coupled, as torch)    ``mepa_optimizer.weight_decay``
schedule                 ReduceLROnPlateau, factor   ``mepa_scheduler``; stepped once per epoch
                         0.5, patience 30 (epochs)   with the epoch's mean training loss
                                                     (``MepaEvaluator.on_epoch_start``)
gradient clipping        global norm 5.0             ``weights_manager_cfg.max_grad_norm``
batch size               512                         ``evaluator_cfg.batch_size``
epochs                   1000 (1400 in the deiso     ``trainer_cfg.epochs``
                         config)
dropout                  0.1 before the classifier   ``weights_manager_cfg.dropout_rate``
sampling                 one architecture per step   ``mepa_samples: 1``, controller
                         (uniform; ``deiso`` in the  ``nasbench-201-rs``
                         released config)
data                     first 80% of the train      ``data_portion: [0.0, 0.8, 0.2]``, no
                         split; scores on the last   shuffle before the split
                         20% (no augmentation)
augmentation             random crop (pad 4; 2 on    ``aw_nas/dataset/cifar10.py`` (and
                         16x16 images), flip         ``imagenet_downsample.py``)
network                  C=16, N=5; cell convs       ``NB201SharedNet``: ``cell_bn_affine=False``,
                         without bias, non-affine    ``ReLUConvBN(bias=False)``, affine stem and
                         cell BN (zcjax ``naslib``   reductions
                         convention)
=======================  ==========================  ============================================

The schedule of the NAS-Bench-201 benchmark itself (cosine decay per step) is offered as
``schedule="cosine"``: with few epochs the paper's plateau schedule (patience 30 epochs) never
fires, and a cosine decay gives a better-converged supernet for short runs.

Absent parameters. aw_nas's pinned PyTorch (1.2, ``requirements.txt``) zeroes gradients in
``Module.zero_grad`` instead of freeing them, so a parameter that any earlier step used keeps a
zero gradient when the sampled architecture does not use it, and SGD still applies weight
decay and momentum to it; a parameter never used yet has ``.grad is None`` and is skipped.
That is ``absent_params="zero_grad"`` (default). PyTorch >= 2.0 frees gradients
(``set_to_none=True``), so a modern single-path trainer skips every parameter the sampled
architecture does not use (no decay, no momentum, momentum buffer kept): ``"skip"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from zcjax import validation
from zcjax.spaces import base as spaces_base
from zcjax.spaces import get as get_space
from zcjax.sweep.store import config_hash

__all__ = ["ABSENT", "SAMPLING", "SCHEDULES", "PAPER_NETWORK", "TrainConfig"]

#: Architecture sampling strategies (:mod:`zcjax.oneshot.sampling`).
SAMPLING = ("uniform", "deiso", "fair")
#: Learning-rate schedules (:mod:`zcjax.oneshot.optim`).
SCHEDULES = ("plateau", "cosine", "constant")
#: How the optimiser treats parameters the sampled architecture does not use (module doc).
ABSENT = ("zero_grad", "skip")
#: The reference supernet's network settings, per space (overrides of the space's defaults).
PAPER_NETWORK: Mapping[str, Mapping[str, Any]] = {"nb201": {"convention": "naslib"}}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A supernet training run (the defaults are the paper's NAS-Bench-201 setting).

    Attributes:
      space: the registered search space (it must offer a compile-once network that trains:
        :meth:`~zcjax.spaces.base.CompileOnceNetwork.variables_for` and ``presence``).
      network: the space's network configuration; ``None`` takes the space's defaults with
        :data:`PAPER_NETWORK` (NB201: C=16, N=5, ``naslib`` convention, 10 classes).
      epochs: passes over the training images.
      batch_size: images per step (the last incomplete batch of an epoch is dropped, so every
        step runs one compiled program; aw_nas keeps it).
      learning_rate, momentum, weight_decay: SGD as ``torch.optim.SGD`` (coupled decay,
        dampening 0, no Nesterov).
      grad_clip: global-norm clipping of the gradient before decay (``clip_grad_norm_``);
        ``None`` for none.
      schedule: ``"plateau"`` (the paper: learning rate times ``plateau_factor`` when the
        epoch's mean training loss has not improved by 1e-4 relative for more than
        ``plateau_patience`` epochs, as ``torch.optim.lr_scheduler.ReduceLROnPlateau``),
        ``"cosine"`` (per step to 0 over the run) or ``"constant"``.
      dropout: dropout rate before the classifier in training (scores use none).
      sampling: ``"uniform"`` (SPOS, Guo et al. 2020: every cell equally likely),
        ``"deiso"`` (every isomorphism class equally likely, then its representative: aw_nas's
        ``deiso: true``) or ``"fair"`` (FairNAS, Chu et al. 2021: per step, as many paths as
        each edge has operations, each operation of each edge in exactly one of them).
      paths_per_step: architectures per step for ``uniform`` / ``deiso`` (aw_nas's
        ``mepa_samples``); their gradients are averaged per parameter over the paths that use
        it, as aw_nas does. ``fair`` sets it to the number of operations.
      absent_params: ``"zero_grad"`` or ``"skip"`` (module doc).
      augment: random crop and horizontal flip of training images.
      seed: initialisation, data order, sampled architectures, augmentation and dropout; each
        step's randomness is a function of ``(seed, step)`` alone, so a resumed run repeats an
        uninterrupted one exactly.
    """

    space: str = "nb201"
    network: spaces_base.NetworkConfig | None = None
    epochs: int = 1000
    batch_size: int = 512
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0
    schedule: str = "plateau"
    plateau_patience: int = 30
    plateau_factor: float = 0.5
    dropout: float = 0.1
    sampling: str = "uniform"
    paths_per_step: int = 1
    absent_params: str = "zero_grad"
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        space = get_space(self.space)
        network = self.network
        if network is None:
            network = space.config(**PAPER_NETWORK.get(space.name, {}))
        object.__setattr__(self, "network", space.check_config(network))
        object.__setattr__(self, "space", space.name)
        for name in ("epochs", "batch_size", "paths_per_step"):
            object.__setattr__(self, name, validation.check_int(getattr(self, name), name, 1))
        object.__setattr__(self, "plateau_patience",
                           validation.check_int(self.plateau_patience, "plateau_patience", 0))
        object.__setattr__(self, "seed", validation.check_seed(self.seed))
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("sampling", self.sampling, SAMPLING)
        _choice("absent_params", self.absent_params, ABSENT)
        _number("learning_rate", self.learning_rate, 0.0, None, low_open=True)
        _number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _number("weight_decay", self.weight_decay, 0.0, None)
        _number("dropout", self.dropout, 0.0, 1.0, high_open=True)
        _number("plateau_factor", self.plateau_factor, 0.0, 1.0, low_open=True,
                high_open=True)
        if self.grad_clip is not None:
            _number("grad_clip", self.grad_clip, 0.0, None, low_open=True)
        if not isinstance(self.augment, bool):
            raise TypeError(f"augment must be a bool, got {validation.cap(repr(self.augment))}")

    @property
    def search_space(self) -> spaces_base.SearchSpace:
        return get_space(self.space)

    def fields(self) -> dict[str, Any]:
        """Every setting as plain JSON values (the network as its own fields)."""
        out = dataclasses.asdict(self)
        out["network"] = self.network.fields()
        return out

    def fingerprint(self, data_hash: str) -> str:
        """16 hex digits identifying the weights this run produces on the data ``data_hash``
        (:attr:`zcjax.oneshot.data.ImageSet.hash` of the training images, so the data set and
        its train / held-out split are part of it): a checkpoint whose fingerprint differs
        belongs to another run."""
        return config_hash({"train": self.fields(), "data": data_hash})

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> "TrainConfig":
        """The configuration :meth:`fields` describes (e.g. read back from a checkpoint)."""
        fields = dict(fields)
        space = get_space(fields["space"])
        fields["network"] = space.config(**fields["network"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        return cls(**fields)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"unknown {name} {validation.cap(repr(value))}; expected one of "
                         f"{', '.join(options)}")


def _number(name: str, value: Any, low: float, high: float | None, *, low_open: bool = False,
            high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {validation.cap(repr(value))}")
    ok = (value > low if low_open else value >= low) and (
        high is None or (value < high if high_open else value <= high))
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low}, {'inf' if high is None else high}{hi}, "
                         f"got {value!r}")
