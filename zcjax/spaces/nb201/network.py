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

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.spaces import layers
from zcjax.spaces.blocks import compiled_block
from zcjax.spaces.layers import LayerConvention
from zcjax.spaces.nb201.genotype import EDGES, NUM_NODES, Genotype, as_genotype

Array = jax.Array


class Cell(nn.Module):
    """A NAS-Bench-201 cell: node ``j`` sums ``op(j, i)(node i)`` over ``i < j``.

    ``hooks``: forward hooks of the reference model that see the cell's output (2 for the last
    cell of a stage, which is also the output of the stage's ``nn.Sequential``).
    """

    genotype: Genotype
    features: int
    convention: LayerConvention
    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        nodes = [x]
        for to in range(1, NUM_NODES):
            total = None
            for frm in range(to):
                y = self._edge(self.genotype.op(to, frm), nodes[frm], f"edge_{frm}_{to}", use_bn)
                total = y if total is None else total + y
            nodes.append(total)
        layers.sow_hooked(self, nodes[-1], self.hooks)
        return nodes[-1]

    def _edge(self, op: str, x: Array, name: str, use_bn: bool) -> Array:
        if op == "none":
            return layers.zero(x)  # the reference's Zero module returns zeros: hooks read 0
        if op == "skip_connect":
            return layers.Identity(hooks=1, name=name)(x)
        if op == "avg_pool_3x3":
            # POOLING and its AvgPool2d both return the pooled map.
            return layers.AvgPool(3, 1, 1, hooks=2, name=name)(x)
        kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[op]
        return layers.ReLUConvBN(
            self.features, kernel, stride=1, padding=kernel // 2,
            conv_bias=self.convention.cell_conv_bias,
            bn_affine=self.convention.cell_bn_affine, name=name,
        )(x, use_bn=use_bn)


@compiled_block
class ResidualReduction(nn.Module):
    """The ResNet basic block that halves resolution and doubles channels between stages.

    ``out = ReLUConvBN_3x3(ReLUConvBN_3x3,stride 2(x)) + Conv1x1(AvgPool2x2(x))``. Hooks as in
    the reference: the shortcut's 1x1 convolution is also the output of its ``nn.Sequential``.
    """

    features: int
    bn_affine: bool = True

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        y = layers.ReLUConvBN(self.features, 3, stride=2, padding=1,
                              bn_affine=self.bn_affine, name="conv_a")(x, use_bn=use_bn)
        y = layers.ReLUConvBN(self.features, 3, stride=1, padding=1,
                              bn_affine=self.bn_affine, name="conv_b")(y, use_bn=use_bn)
        shortcut = layers.AvgPool(2, 2, hooks=1, name="shortcut_pool")(x)
        shortcut = layers.Conv(self.features, 1, hooks=2, name="shortcut")(shortcut)
        out = y + shortcut
        layers.sow_hooked(self, out, 1)
        return out


#: Stages of the NAS-Bench-201 macro skeleton.
STAGES = 3


def skeleton(net: nn.Module, images: Array, make_cell: Callable[[int, int, str], nn.Module],
             use_bn: bool, dropout_rate: float = 0.0) -> Array:
    """The macro skeleton around the cells, shared by the static network and the supernet.

    Called inside ``net``'s compact ``__call__`` (``net`` has ``channels``,
    ``cells_per_stage``, ``num_classes`` and ``convention``); ``make_cell(width, hooks, name)``
    returns the cell module, called as ``cell(x, use_bn=use_bn)``. Declares the contract's
    stage features (:func:`stage_layout`) and sows ``pre_pool``.

    ``dropout_rate > 0`` drops pooled features before the classifier (inverted dropout, drawn
    from the ``"dropout"`` RNG stream), as the one-shot supernet of aw_nas does in training
    (``NB201SharedNet(dropout_rate=0.1)``); 0, the default, is the benchmark's network.
    """
    if images.ndim != 4:
        raise ValueError(f"expected NHWC images, got shape {images.shape}")
    outer_affine = net.convention.outer_bn_affine
    x = layers.Conv(net.channels, 3, padding=1, name="stem_conv")(images)
    if use_bn:
        # BatchNorm2d, the stem's nn.Sequential and the stem: 3 hooks.
        x = layers.BatchNorm(outer_affine, hooks=3, name="stem_bn")(x)
    features = [x]
    n = net.cells_per_stage
    for stage in range(STAGES):
        width = net.channels * 2 ** stage
        if stage > 0:
            # use_bn=False keeps the reductions' BN, as the references do (module doc).
            x = ResidualReduction(width, outer_affine, name=f"reduction_{stage}")(x)
            features.append(x)
        for i in range(n):
            # The last cell of a stage is also the output of the stage's nn.Sequential.
            x = make_cell(width, 2 if i == n - 1 else 1, f"cell_{stage}_{i}")(x, use_bn=use_bn)
    features.append(x)
    if use_bn:
        x = layers.BatchNorm(outer_affine, name="last_bn")(x)
    x = layers.ReLU(hooks=2, name="last_relu")(x)  # ReLU and the lastact nn.Sequential
    net.sow(contract.INTERMEDIATES, contract.PRE_POOL, x)
    pooled = layers.global_avg_pool(x)
    contract.declare_stages(net, features + [pooled], stage_layout(n))
    if dropout_rate:
        pooled = nn.Dropout(dropout_rate, deterministic=False, name="dropout")(pooled)
    return layers.Dense(net.num_classes, name="classifier")(pooled)


def stage_layout(cells_per_stage: int) -> dict[str, int]:
    """CRoZe's stage feature of each top-level block (:func:`zcjax.contract.stage_of`).

    The features are the stem's output, the two reductions' outputs, the last cell's output and
    the pooled features (what the CRoZe reference's NAS-Bench-201 model returns). Its
    ``get_layer_metric_array_adv_feats`` compares a layer on feature ``layer_cnt // 5``, where
    ``layer_cnt`` counts the cells entered so far in module order (stem, the cells of stage 0,
    reduction 1, ...), and the classifier on the last feature. zcjax divides by the cells per
    stage ``N`` instead of the reference's literal 5 (the same for the benchmark's ``N = 5``),
    so that smaller networks keep one feature per stage.
    """
    n = cells_per_stage
    layout = {"stem_conv": 0, "stem_bn": 0, "classifier": STAGES + 1}
    for stage in range(STAGES):
        if stage > 0:
            layout[f"reduction_{stage}"] = stage * n // n
        for i in range(n):
            layout[f"cell_{stage}_{i}"] = (stage * n + i + 1) // n
    return layout


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
        def cell(width: int, hooks: int, name: str) -> Cell:
            return Cell(self.genotype, width, self.convention, hooks=hooks, name=name)

        return skeleton(self, images, cell, use_bn)


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
