"""The NAS-Bench-201 network as a Flax linen module.

Macro skeleton (Dong & Yang, ICLR 2020, Fig. 1): a 3x3 convolution stem with batch norm; three
stages of ``N`` cells at ``C``, ``2C`` and ``4C`` channels, separated by ResNet basic blocks of
stride 2; batch norm and ReLU; global average pooling; a linear classifier. Every cell in the
network shares one genotype. ``C = 16, N = 5`` is the benchmark's network.

Cell operations: ``none`` (``x * 0``), ``skip_connect`` (identity), ``nor_conv_1x1`` and
``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3`` (stride 1, padding excluded from the mean).
Layer conventions (conv bias, affine batch norm) are described in :mod:`zcjax.spaces.layers`.

Calling the module: ``logits = model.apply(variables, images)`` with NHWC images;
``mutable=["intermediates"]`` also returns what the layers sowed. The keyword ``use_bn=False``
gives the network that zero-cost-nas's ``get_prunable_copy(bn=False)`` builds for SynFlow: batch
norm removed from the stem, the cells and the last layer, every other parameter where it is. The
two ResNet reduction blocks keep their batch norm, as in the reference, whose ``reduction``
module is built without the ``use_bn`` flag (CRoZe's reference inherits the same network).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax.spaces import layers
from zcjax.spaces.layers import LayerConvention
from zcjax.spaces.nb201.genotype import EDGES, NUM_NODES, Genotype, as_genotype

Array = jax.Array


class Cell(nn.Module):
    """A NAS-Bench-201 cell: node ``j`` sums ``op(j, i)(node i)`` over ``i < j``."""

    genotype: Genotype
    features: int
    convention: LayerConvention

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        nodes = [x]
        for to in range(1, NUM_NODES):
            total = None
            for frm in range(to):
                y = self._edge(self.genotype.op(to, frm), nodes[frm], f"edge_{frm}_{to}", use_bn)
                total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]

    def _edge(self, op: str, x: Array, name: str, use_bn: bool) -> Array:
        if op == "none":
            return layers.zero(x)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return layers.avg_pool_3x3(x)
        kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[op]
        return layers.ReLUConvBN(
            self.features, kernel, stride=1, padding=kernel // 2,
            conv_bias=self.convention.cell_conv_bias,
            bn_affine=self.convention.cell_bn_affine, name=name,
        )(x, use_bn=use_bn)


class ResidualReduction(nn.Module):
    """The ResNet basic block that halves resolution and doubles channels between stages.

    ``out = ReLUConvBN_3x3(ReLUConvBN_3x3,stride 2(x)) + Conv1x1(AvgPool2x2(x))``.
    """

    features: int
    bn_affine: bool = True

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        y = layers.ReLUConvBN(self.features, 3, stride=2, padding=1,
                              bn_affine=self.bn_affine, name="conv_a")(x, use_bn=use_bn)
        y = layers.ReLUConvBN(self.features, 3, stride=1, padding=1,
                              bn_affine=self.bn_affine, name="conv_b")(y, use_bn=use_bn)
        shortcut = nn.avg_pool(x, (2, 2), strides=(2, 2))
        shortcut = layers.Conv(self.features, 1, name="shortcut")(shortcut)
        return y + shortcut


class NB201Network(nn.Module):
    """A NAS-Bench-201 network for one genotype.

    Attributes:
      genotype: the cell shared by every stage.
      channels: ``C``, the channels of the first stage (16 in the benchmark).
      cells_per_stage: ``N``, cells per stage (5 in the benchmark).
      num_classes: classifier outputs (10, 100 or 120).
      convention: layer convention, see :mod:`zcjax.spaces.layers` (default ``zero_cost``,
        the one behind the published zero-cost correlations).
    """

    genotype: Genotype
    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    convention: LayerConvention = layers.ZERO_COST

    @nn.compact
    def __call__(self, images: Array, *, use_bn: bool = True) -> Array:
        if images.ndim != 4:
            raise ValueError(f"expected NHWC images, got shape {images.shape}")
        outer_affine = self.convention.outer_bn_affine
        x = layers.Conv(self.channels, 3, padding=1, name="stem_conv")(images)
        if use_bn:
            x = layers.BatchNorm(outer_affine, name="stem_bn")(x)
        for stage in range(3):
            features = self.channels * 2 ** stage
            if stage > 0:
                # use_bn=False keeps the reductions' BN, as the references do (module doc).
                x = ResidualReduction(features, outer_affine, name=f"reduction_{stage}")(x)
            for i in range(self.cells_per_stage):
                x = Cell(self.genotype, features, self.convention, name=f"cell_{stage}_{i}")(
                    x, use_bn=use_bn)
        if use_bn:
            x = layers.BatchNorm(outer_affine, name="last_bn")(x)
        x = layers.ReLU(name="last_relu")(x)
        self.sow("intermediates", layers.PRE_POOL, x)
        return layers.Dense(self.num_classes, name="classifier")(layers.global_avg_pool(x))


def build(
    arch: "Genotype | str | int",
    *,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    convention: "LayerConvention | str" = "zero_cost",
) -> NB201Network:
    """The network for a cell given as a Genotype, an official string or an index."""
    if channels < 1 or cells_per_stage < 1 or num_classes < 1:
        raise ValueError(
            f"channels, cells_per_stage and num_classes must be positive, got "
            f"{channels}, {cells_per_stage}, {num_classes}")
    return NB201Network(as_genotype(arch), channels, cells_per_stage, num_classes,
                        layers.get_convention(convention))


def init(model: nn.Module, key: jax.Array, image_shape=(32, 32, 3)) -> dict[str, Any]:
    """Variables (``{"params": ...}``) of a model from a PRNG key, deterministic in the key."""
    variables = model.init(key, jnp.zeros((1, *image_shape), jnp.float32))
    return {"params": variables["params"]}
