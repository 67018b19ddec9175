"""The DARTS cell operations and their two conventions (DARTS's evaluation network, NASLib's).

Blocks (``quark0/darts`` ``cnn/operations.py``; NASLib ``search_spaces/core/primitives.py``
builds the same layers):

- :class:`SepConv` -- ``sep_conv_kxk``: twice ReLU -> depthwise k x k conv -> 1 x 1 conv -> BN;
  only the first depthwise conv has the op's stride; padding ``k // 2``.
- :class:`DilConv` -- ``dil_conv_kxk``: ReLU -> depthwise k x k conv, dilation 2, padding
  ``k - 1`` -> 1 x 1 conv -> BN.
- :class:`FactorizedReduce` -- ``skip_connect`` of stride 2, and the preprocessing of a cell's
  first input after a reduction: ReLU, then two 1 x 1 convs of stride 2 with ``C_out / 2``
  outputs each, one on ``x`` and one on ``x`` shifted by one pixel (``x[:, 1:, 1:]``), their
  outputs concatenated, then BN.
- :class:`Pool` -- ``max_pool_3x3`` (``MaxPool2d(3, stride, padding=1)``, padding never wins) and
  ``avg_pool_3x3`` (``AvgPool2d(3, stride, padding=1, count_include_pad=False)``), with a
  non-affine BN after the pool in the NASLib convention.
- ``skip_connect`` of stride 1 is the identity. There is no ``none`` in NAS-Bench-301.

Convolutions carry no bias. Stride 2 applies to the operations of a reduction cell that read
the cell's inputs (nodes 0 and 1).

Conventions
-----------
=============  ===================  ==================  ===================================
convention     sep / dil conv BN,   BN after pools      source
               stride-2 skip BN
=============  ===================  ==================  ===================================
``darts``      affine               none                ``quark0/darts`` ``NetworkCIFAR``
                                                        (DARTS's evaluation network, which
                                                        NAS-Bench-301 trained)
``naslib``     **non-affine**       **non-affine BN**   ``automl/NASLib``
                                                        ``NasBench301SearchSpace._set_ops``
                                                        (behind NAS-Bench-Suite-Zero's
                                                        NB301 zero-cost scores)
=============  ===================  ==================  ===================================

Both keep the stem's and the preprocessing's (``ReLUConvBN``, ``FactorizedReduce``) batch norms
affine. NASLib builds every cell op as in DARTS's *search* model (``affine=False``, pools followed
by ``BatchNorm2d(C, affine=False)``), wired into the evaluation network's macro skeleton.

Hooks (MeCo)
------------
Each layer's ``hooks`` is the number of modules of MeCo's DARTS network
(``HamsterMimi/MeCo`` ``sota/cnn/model.py`` with ``sota/cnn/operations.py``, the same nesting as
``quark0/darts``) whose forward output is that tensor, as MeCo hooks every module: the last BN of
a SepConv / DilConv is the output of the BN, of the ``op`` ``nn.Sequential`` and of the block (3);
FactorizedReduce's BN, of the BN and of the block (2); every ReLU, conv, the first BN of a
SepConv, a pool and the identity, 1. The NASLib convention's BN after a pool, which MeCo's model
lacks, is counted as NASLib nests it (``nn.Sequential(pool, BN)`` inside the pool primitive: 3).
The network (:mod:`zcjax.spaces.nb301.network`) adds the stem (conv 1; BN and the stem's
``nn.Sequential`` 2) and each cell's concatenated output (the ``Cell`` module, 1); the pooled
features and the logits, one value per channel, score 0 in MeCo and are not sown. MeCo's
repository scores NAS-Bench-101 / -201 networks only (``correlation/``) and uses its DARTS network
for training; these counts apply its hooking rule to that network.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax.spaces import layers
from zcjax.spaces.blocks import compiled_block

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class OpConvention:
    """How a DARTS cell's operations are built (see the module doc).

    Attributes:
      name: the registered name.
      cell_bn_affine: whether the batch norms inside SepConv, DilConv and the stride-2
        ``skip_connect`` have scale and shift parameters.
      pool_bn: whether a non-affine batch norm follows every pool.
      source: where the convention comes from.
    """

    name: str
    cell_bn_affine: bool
    pool_bn: bool
    source: str


DARTS = OpConvention(
    "darts", cell_bn_affine=True, pool_bn=False,
    source="quark0/darts cnn/model.py NetworkCIFAR and cnn/operations.py (Liu et al., ICLR 2019):"
           " affine BN in every op, bare pools")
NASLIB = OpConvention(
    "naslib", cell_bn_affine=False, pool_bn=True,
    source="automl/NASLib search_spaces/nasbench301/graph.py NasBench301SearchSpace (zerocost "
           "branch, NAS-Bench-Suite-Zero, Krishnakumar et al., NeurIPS 2022): non-affine BN in "
           "the ops, a non-affine BN after every pool")

CONVENTIONS: dict[str, OpConvention] = {c.name: c for c in (DARTS, NASLIB)}


def get_convention(convention: "OpConvention | str") -> OpConvention:
    """The convention called ``convention`` (or the convention itself)."""
    if isinstance(convention, OpConvention):
        return convention
    try:
        return CONVENTIONS[convention]
    except (KeyError, TypeError):
        raise ValueError(f"unknown DARTS op convention {convention!r}; expected one of "
                         f"{sorted(CONVENTIONS)}") from None


@compiled_block
class Pool(nn.Module):
    """``max_pool_3x3`` or ``avg_pool_3x3`` (padding 1; the average excludes padding), followed
    by a non-affine batch norm when ``bn`` (the NASLib convention)."""

    kind: str  # "max" or "avg"
    stride: int = 1
    bn: bool = False

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        if self.kind == "max":
            x = layers.MaxPool(3, self.stride, 1, name="pool")(x)
        elif self.kind == "avg":
            x = layers.AvgPool(3, self.stride, 1, name="pool")(x)
        else:
            raise ValueError(f"unknown pool {self.kind!r}; expected 'max' or 'avg'")
        if self.bn and use_bn:
            x = layers.BatchNorm(affine=False, hooks=3, name="bn")(x)
        return x


@compiled_block
class SepConv(nn.Module):
    """``sep_conv_kxk``: (ReLU -> depthwise conv -> 1 x 1 conv -> BN) twice; the first
    depthwise conv has the stride. Output channels ``features`` (the input's, in a cell)."""

    features: int
    kernel_size: int
    stride: int = 1
    bn_affine: bool = True

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        c_in, k = x.shape[-1], self.kernel_size
        for half, (stride, c_out, bn_hooks) in enumerate(((self.stride, c_in, 1),
                                                          (1, self.features, 3))):
            tag = "ab"[half]
            x = layers.ReLU(name=f"relu_{tag}")(x)
            x = layers.Conv(c_in, k, stride, k // 2, groups=c_in, name=f"depthwise_{tag}")(x)
            x = layers.Conv(c_out, 1, name=f"pointwise_{tag}")(x)
            if use_bn:
                x = layers.BatchNorm(self.bn_affine, hooks=bn_hooks, name=f"bn_{tag}")(x)
        return x


@compiled_block
class DilConv(nn.Module):
    """``dil_conv_kxk``: ReLU -> depthwise conv (dilation 2, padding ``k - 1``) -> 1 x 1 conv
    -> BN."""

    features: int
    kernel_size: int
    stride: int = 1
    bn_affine: bool = True
    dilation: int = 2

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        c_in, k = x.shape[-1], self.kernel_size
        x = layers.ReLU(name="relu")(x)
        x = layers.Conv(c_in, k, self.stride, self.dilation * (k - 1) // 2, groups=c_in,
                        dilation=self.dilation, name="depthwise")(x)
        x = layers.Conv(self.features, 1, name="pointwise")(x)
        if use_bn:
            x = layers.BatchNorm(self.bn_affine, hooks=3, name="bn")(x)
        return x


@compiled_block
class FactorizedReduce(nn.Module):
    """Halves the resolution: ReLU, ``concat(conv_1(x), conv_2(x[:, 1:, 1:]))`` (1 x 1 convs of
    stride 2, ``features / 2`` outputs each), BN. ``features`` must be even."""

    features: int
    bn_affine: bool = True

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        if self.features % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got "
                             f"{self.features}")
        x = layers.ReLU(name="relu")(x)
        half = self.features // 2
        a = layers.Conv(half, 1, stride=2, name="conv_1")(x)
        b = layers.Conv(half, 1, stride=2, name="conv_2")(x[:, 1:, 1:, :])
        y = jnp.concatenate([a, b], axis=-1)
        if use_bn:
            y = layers.BatchNorm(self.bn_affine, hooks=2, name="bn")(y)
        return y


def make_op(op: str, features: int, stride: int, convention: OpConvention,
            name: str) -> nn.Module:
    """The module of a cell operation; called as ``module(x, use_bn=...)``."""
    affine = convention.cell_bn_affine
    if op == "skip_connect":
        if stride == 1:
            return _Identity(name=name)
        return FactorizedReduce(features, affine, name=name)
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return Pool(op[:3], stride, convention.pool_bn, name=name)
    if op in ("sep_conv_3x3", "sep_conv_5x5"):
        return SepConv(features, int(op[-1]), stride, affine, name=name)
    if op in ("dil_conv_3x3", "dil_conv_5x5"):
        return DilConv(features, int(op[-1]), stride, affine, name=name)
    raise ValueError(f"unknown DARTS operation {op!r}")


class _Identity(nn.Module):
    """``skip_connect`` of stride 1: the identity, hooked once (DARTS's ``Identity`` module)."""

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        return layers.Identity(hooks=1, name="identity")(x)
