"""Parameter counts and multiply-accumulates of NAS-Bench-301 networks, in closed form.

Nothing is traced or run: both are sums over the cells of per-operation counts
(:func:`op_params`, :func:`op_macs`), following the network of :mod:`zcjax.spaces.nb301.network`.
The tests check them against the traced network (``jax.eval_shape``) and against the ``flops``
proxy's count of the traced program.

Parameters (convolutions have no bias; an affine batch norm of ``c`` channels has ``2 c``, a
non-affine one none):

================================  ==========================================================
block                             parameters
================================  ==========================================================
stem                              ``27 (3C) + 2 (3C)``
preprocessing (``ReLUConvBN`` 1x1 ``C_in C_i + 2 C_i`` (``FactorizedReduce`` too: two 1x1
or ``FactorizedReduce``)          convs of ``C_i / 2`` outputs)
``sep_conv_kxk``                  ``2 (k^2 C + C^2) + 2 bn``
``dil_conv_kxk``                  ``k^2 C + C^2 + bn``
``skip_connect``, stride 2        ``C^2 + bn``
pools, ``skip_connect`` stride 1  0
classifier                        ``4 C_L K + K``
================================  ==========================================================

with ``bn = 2 C`` in the ``darts`` convention and 0 in ``naslib`` (non-affine op batch norms).
Known values: DARTS-V2 at ``C = 36``, 20 cells, DARTS ops: 3,349,342 (``quark0/darts``,
"param size = 3.35 MB", auxiliary head excluded); NAS-Bench-301 cells at the benchmark's
``C = 32``, 8 cells, NASLib ops: e.g. 856,298 for the first cell of the shipped benchmark
table (NASLib's ``NasBench301SearchSpace`` counts the same; ``tests/spaces/test_nb301.py``).

MACs count convolutions and the classifier for one image, ``out_h out_w C_out (C_in / groups)
k^2`` per convolution, as the ``flops`` proxy and NAS-Bench-201's "FLOPs" do (batch norm,
pooling, additions not counted).
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from zcjax.spaces.nb301 import ops
from zcjax.spaces.nb301.genotype import CONCAT, NUM_INPUTS, DartsGenotype, as_genotype
from zcjax.spaces.nb301.network import STEM_MULTIPLIER, cell_widths
from zcjax.spaces.nb301.ops import OpConvention


class CellShape(NamedTuple):
    """The sizes one cell of the network works with."""

    c_prev_prev: int  # channels of the cell's first input
    c_prev: int       # channels of its second input
    c: int            # C_i, the channels of its nodes
    reduction: bool
    reduction_prev: bool
    size: int         # spatial size of its second input (its first is twice that after a
                      # reduction)


def cell_shapes(channels: int, layers: int, image_size: int = 32) -> Iterator[CellShape]:
    """The :class:`CellShape` of every cell, in order."""
    c_pp = c_p = STEM_MULTIPLIER * channels
    size = image_size
    for c, reduction, reduction_prev in cell_widths(channels, layers):
        yield CellShape(c_pp, c_p, c, reduction, reduction_prev, size)
        c_pp, c_p = c_p, len(CONCAT) * c
        size = size // 2 if reduction else size


def op_params(op: str, c: int, stride: int, convention: OpConvention) -> int:
    """Parameters of one cell operation on ``c`` channels."""
    bn = 2 * c if convention.cell_bn_affine else 0
    if op.startswith("sep_conv"):
        k = int(op[-1])
        return 2 * (k * k * c + c * c) + 2 * bn
    if op.startswith("dil_conv"):
        k = int(op[-1])
        return k * k * c + c * c + bn
    if op == "skip_connect" and stride == 2:
        return c * c + bn
    return 0


def op_macs(op: str, c: int, stride: int, size: int) -> int:
    """MACs of one cell operation on ``c`` channels of a ``size x size`` input."""
    out = (size // stride) ** 2
    if op.startswith("sep_conv"):
        k = int(op[-1])
        return 2 * out * (k * k * c + c * c)
    if op.startswith("dil_conv"):
        k = int(op[-1])
        return out * (k * k * c + c * c)
    if op == "skip_connect" and stride == 2:
        return out * c * c
    return 0


def _ops(genotype: DartsGenotype, shape: CellShape) -> Iterator[tuple[str, int, int]]:
    """``(op, stride, input size)`` of the cell's eight operations: in a reduction cell the
    ops reading the cell inputs have stride 2, and the nodes they feed are at half the size."""
    pairs = genotype.reduce if shape.reduction else genotype.normal
    for op, source in pairs:
        if source < NUM_INPUTS:
            yield op, 2 if shape.reduction else 1, shape.size
        else:
            yield op, 1, shape.size // 2 if shape.reduction else shape.size


def param_count(arch: "DartsGenotype | str", *, channels: int = 32, layers: int = 8,
                num_classes: int = 10, convention: "OpConvention | str" = "naslib") -> int:
    """Parameters of the network of ``arch`` (NAS-Bench-301's network by default)."""
    genotype, conv = as_genotype(arch), ops.get_convention(convention)
    c_stem = STEM_MULTIPLIER * channels
    total = 27 * c_stem + 2 * c_stem
    c_last = c_stem
    for shape in cell_shapes(channels, layers):
        total += (shape.c_prev_prev + shape.c_prev) * shape.c + 2 * (2 * shape.c)
        total += sum(op_params(op, shape.c, stride, conv)
                     for op, stride, _ in _ops(genotype, shape))
        c_last = len(CONCAT) * shape.c
    return total + c_last * num_classes + num_classes


def flops(arch: "DartsGenotype | str", *, channels: int = 32, layers: int = 8,
          num_classes: int = 10, image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one ``image_size`` square image."""
    genotype = as_genotype(arch)
    if image_size < 4 or image_size % 4:
        raise ValueError(f"image_size must be a positive multiple of 4 (two reductions), got "
                         f"{image_size}")
    c_stem = STEM_MULTIPLIER * channels
    total = image_size * image_size * c_stem * 3 * 9
    c_last = c_stem
    for shape in cell_shapes(channels, layers, image_size):
        s = shape.size
        total += s * s * shape.c * (shape.c_prev_prev + shape.c_prev)  # both preprocessings
        total += sum(op_macs(op, shape.c, stride, size)
                     for op, stride, size in _ops(genotype, shape))
        c_last = len(CONCAT) * shape.c
    return total + c_last * num_classes
