"""The DARTS evaluation network (``NetworkCIFAR``) of a NAS-Bench-301 genotype, as a Flax module.

Macro skeleton (DARTS, Liu et al., ICLR 2019; ``quark0/darts`` ``cnn/model.py``
``NetworkCIFAR``, which NAS-Bench-301 trained through Auto-PyTorch):

- stem: 3 x 3 convolution to ``3 C`` channels (``stem_multiplier = 3``) and batch norm;
- ``layers`` cells; cells ``layers // 3`` and ``2 * layers // 3`` are reduction cells (the
  genotype's ``reduce`` cell, stride 2 on the ops that read the cell inputs, channels doubled),
  the others normal cells. Cell ``i`` reads the outputs of cells ``i - 2`` and ``i - 1`` (the
  stem's output for both, at the start) and preprocesses them to its ``C_i`` channels: the first
  with ``FactorizedReduce`` when cell ``i - 1`` was a reduction, else ``ReLUConvBN`` 1 x 1, the
  second with ``ReLUConvBN`` 1 x 1 (both with affine batch norm). Node ``k + 2`` sums its two
  ops; the cell's output concatenates nodes 2..5 (``4 C_i`` channels);
- global average pooling and a linear classifier.

Left out, being training-only: the auxiliary head (its logits are only computed in training and
only enter the loss; the published parameter counts of DARTS exclude it), and drop-path.

Benchmark network: ``C = 32``, ``layers = 8`` -- NAS-Bench-301's training configuration
(``nasbench301/data_generation/configs/config_0.json``: ``init_channels`` 32, ``layers`` 8) and
the network NASLib's ``NasBench301SearchSpace`` builds (``channels = [32, 64, 128]``, 8 cells)
on its ``zerocost`` branch, whose zero-cost scores are NAS-Bench-Suite-Zero's published NB301
numbers. (NASLib's development branch later reduced it to ``[16, 32, 64]``, after those scores
were computed.) The ops follow a convention (:mod:`zcjax.spaces.nb301.ops`): ``naslib`` (the
default, behind the published zero-cost numbers) or ``darts`` (DARTS's evaluation ops).

Calling the module: ``logits = model.apply(variables, images)`` with NHWC images. ``use_bn=False``
removes *every* batch norm (stem, preprocessing, ops, pools): the references' zero-cost code
has no ``get_prunable_copy`` for this network, so ``copynet(bn=False)`` makes every
``BatchNorm2d`` the identity (``automl/NASLib`` ``predictors/utils/pruners/predictive.py``;
CRoZe's ``zero_cost_methods/pruners/predictive.py`` does the same).

Contract (:mod:`zcjax.contract`): layers sow what proxies read; ``pre_pool`` is the last cell's
output (DARTS pools it directly); CRoZe's stage features are those its DARTS model
(``HyeonjeongHa/CRoZe`` ``darts_space/model.py``) returns with ``return_activated_feats``:
the stem's output, every cell's output, and the pooled features (:func:`stage_layout`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.spaces import layers
from zcjax.spaces.nb301 import ops
from zcjax.spaces.nb301.genotype import (CONCAT, NUM_INPUTS, NUM_NODES, Cell as CellPairs,
                                         DartsGenotype, as_genotype)
from zcjax.spaces.nb301.ops import OpConvention

Array = jax.Array

#: The stem's width relative to ``C`` (hard-coded in DARTS).
STEM_MULTIPLIER = 3


def reduction_cells(num_layers: int) -> frozenset[int]:
    """The indices of the reduction cells: ``layers // 3`` and ``2 * layers // 3``."""
    return frozenset((num_layers // 3, 2 * num_layers // 3))


def cell_widths(channels: int, num_layers: int) -> list[tuple[int, bool, bool]]:
    """``(C_i, reduction, reduction_prev)`` of each cell (channels double at a reduction)."""
    out, c, previous = [], channels, False
    for i in range(num_layers):
        reduction = i in reduction_cells(num_layers)
        c = 2 * c if reduction else c
        out.append((c, reduction, previous))
        previous = reduction
    return out


class Cell(nn.Module):
    """A DARTS cell: preprocessing of its two inputs, four nodes, concatenated output.

    Attributes:
      pairs: the cell's eight ``(op, input)`` pairs.
      features: ``C_i``, the channels of every node.
      reduction: a reduction cell (stride 2 on the ops reading nodes 0 and 1).
      reduction_prev: the previous cell was a reduction (``FactorizedReduce`` preprocessing).
      convention: how the ops are built.
    """

    pairs: CellPairs
    features: int
    reduction: bool
    reduction_prev: bool
    convention: OpConvention

    @nn.compact
    def __call__(self, s0: Array, s1: Array, *, use_bn: bool = True) -> Array:
        c = self.features
        if self.reduction_prev:
            s0 = ops.FactorizedReduce(c, name="preprocess0")(s0, use_bn=use_bn)
        else:
            s0 = layers.ReLUConvBN(c, 1, name="preprocess0")(s0, use_bn=use_bn)
        s1 = layers.ReLUConvBN(c, 1, name="preprocess1")(s1, use_bn=use_bn)
        states = [s0, s1]
        for k in range(NUM_NODES):
            total = None
            for p in (2 * k, 2 * k + 1):
                op, source = self.pairs[p]
                stride = 2 if self.reduction and source < NUM_INPUTS else 1
                y = ops.make_op(op, c, stride, self.convention, f"op_{p}")(
                    states[source], use_bn=use_bn)
                total = y if total is None else total + y
            states.append(total)
        out = jnp.concatenate([states[n] for n in CONCAT], axis=-1)
        layers.sow_hooked(self, out, 1)  # the Cell module's own hook
        return out


class NB301Network(nn.Module):
    """The DARTS evaluation network of one genotype (auxiliary head and drop-path left out).

    Attributes:
      genotype: the normal and reduction cells.
      channels: ``C``, the channels of the first cells (32 in NAS-Bench-301).
      layers: the number of cells (8 in NAS-Bench-301).
      num_classes: classifier outputs.
      convention: the op convention (:data:`zcjax.spaces.nb301.ops.CONVENTIONS`).
    """

    genotype: DartsGenotype
    channels: int = 32
    layers: int = 8
    num_classes: int = 10
    convention: OpConvention = ops.NASLIB

    @nn.compact
    def __call__(self, images: Array, *, use_bn: bool = True) -> Array:
        if images.ndim != 4:
            raise ValueError(f"expected NHWC images, got shape {images.shape}")
        x = layers.Conv(STEM_MULTIPLIER * self.channels, 3, padding=1, name="stem_conv")(images)
        if use_bn:
            # BatchNorm2d and the stem's nn.Sequential: 2 hooks.
            x = layers.BatchNorm(hooks=2, name="stem_bn")(x)
        features = [x]
        s0 = s1 = x
        for i, (width, reduction, reduction_prev) in enumerate(
                cell_widths(self.channels, self.layers)):
            pairs = self.genotype.reduce if reduction else self.genotype.normal
            cell = Cell(pairs, width, reduction, reduction_prev, self.convention,
                        name=f"cell_{i}")
            s0, s1 = s1, cell(s0, s1, use_bn=use_bn)
            features.append(s1)
        self.sow(contract.INTERMEDIATES, contract.PRE_POOL, s1)
        pooled = layers.global_avg_pool(s1)
        contract.declare_stages(self, features + [pooled], stage_layout(self.layers))
        return layers.Dense(self.num_classes, name="classifier")(pooled)


def stage_layout(num_layers: int) -> dict[str, int]:
    """CRoZe's stage feature of each top-level block (:func:`zcjax.contract.stage_of`).

    CRoZe's DARTS model returns ``L + 2`` features: the stem's output, the output of each of the
    ``L`` cells, and the pooled features. Its ``get_layer_metric_array_adv_feats`` (with
    ``search_space == 'darts'``) walks ``net.modules()`` counting the cells entered so far,
    ``layer_cnt``, and compares a convolution on feature ``layer_cnt`` and the classifier on
    ``layer_cnt + 1``: the stem uses feature 0, every layer of cell ``i`` feature ``i + 1`` (that
    cell's own output), the classifier feature ``L + 1``.
    """
    layout = {"stem_conv": 0, "stem_bn": 0, "classifier": num_layers + 1}
    layout.update({f"cell_{i}": i + 1 for i in range(num_layers)})
    return layout


def build(arch: "DartsGenotype | str", *, channels: int = 32, layers: int = 8,
          num_classes: int = 10, convention: "OpConvention | str" = "naslib") -> NB301Network:
    """The network of a genotype (a :class:`DartsGenotype` or an architecture string)."""
    for name, value in (("channels", channels), ("layers", layers),
                        ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return NB301Network(as_genotype(arch), channels, layers, num_classes,
                        ops.get_convention(convention))


def init(model: nn.Module, key: jax.Array, image_shape=(32, 32, 3)) -> dict[str, Any]:
    """Variables (``{"params": ...}``) of a model from a PRNG key, deterministic in the key."""
    variables = model.init(key, jnp.zeros((1, *image_shape), jnp.float32))
    return {"params": variables["params"]}
