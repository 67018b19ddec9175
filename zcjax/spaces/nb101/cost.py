"""Parameter counts and FLOPs of NAS-Bench-101 networks, counted from the cell, not traced.

Parameters (:func:`param_count`)
    A ConvBnRelu from ``a`` to ``b`` channels with a ``k x k`` kernel holds ``k*k*a*b`` kernel
    weights (no bias) and ``2*b`` batch-norm parameters. A network holds the stem (3x3 from 3
    to ``stem_channels``), in every cell one ConvBnRelu per convolution vertex (from and to the
    vertex's channels) and one 1x1 projection from the cell's input channels per input edge,
    and the classifier (``C*K + K``). Max pools hold nothing. With the benchmark's network
    (128 stem channels, 3 x 3 cells, 10 classes) this is the benchmark's
    ``trainable_parameters`` (checked for 31 cells, see the tests) and the count of
    zero-cost-nas's PyTorch network. :func:`param_count_traced` counts the Flax module's
    parameters with ``jax.eval_shape``; the tests check that both agree.

FLOPs (:func:`flops`)
    Multiply-accumulates of one forward pass of one image: every convolution
    (``H*W*k*k*C_in*C_out`` at its resolution) and the classifier (``C*K``); batch norm,
    pooling, additions and concatenation are not counted.
"""

from __future__ import annotations

import jax

from zcjax.spaces import layers
from zcjax.spaces.nb101 import network
from zcjax.spaces.nb101.genotype import CONV1X1, CONV3X3, NB101Cell, as_cell

_KERNEL = {CONV3X3: 3, CONV1X1: 1}


def _convs(cell: NB101Cell, in_channels: int, out_channels: int) -> list[tuple[int, int, int]]:
    """``(kernel, in, out)`` of every ConvBnRelu of one cell (pruned form)."""
    m, ops = cell.matrix, cell.ops
    v = len(ops)
    channels = network.vertex_channels(in_channels, out_channels, m)
    convs = [(_KERNEL[ops[t]], channels[t], channels[t]) for t in range(1, v - 1)
             if ops[t] in _KERNEL]
    convs += [(1, in_channels, channels[t]) for t in range(1, v) if m[0][t]]
    return convs


def _network_convs(cell: NB101Cell, stem_channels: int, stacks: int, cells_per_stack: int
                   ) -> list[tuple[int, int, int, int]]:
    """``(downsampling, kernel, in, out)`` of every ConvBnRelu of the network."""
    cell = cell.pruned
    convs = [(0, 3, 3, stem_channels)]
    width = c_in = stem_channels
    for stack in range(stacks):
        if stack > 0:
            width *= 2
        for _ in range(cells_per_stack):
            convs += [(stack, *conv) for conv in _convs(cell, c_in, width)]
            c_in = width
    return convs


def param_count(arch: "NB101Cell | str", *, stem_channels: int = 128, stacks: int = 3,
                cells_per_stack: int = 3, num_classes: int = 10) -> int:
    """Number of parameters of the network of ``arch`` (module doc)."""
    convs = _network_convs(as_cell(arch), stem_channels, stacks, cells_per_stack)
    total = sum(k * k * a * b + 2 * b for _, k, a, b in convs)
    width = stem_channels * 2 ** (stacks - 1)
    return total + width * num_classes + num_classes


def param_count_traced(arch: "NB101Cell | str", *, stem_channels: int = 128, stacks: int = 3,
                       cells_per_stack: int = 3, num_classes: int = 10) -> int:
    """Parameters of the Flax network, traced with ``jax.eval_shape`` (no compilation)."""
    model = network.build(arch, stem_channels=stem_channels, stacks=stacks,
                          cells_per_stack=cells_per_stack, num_classes=num_classes)
    shapes = jax.eval_shape(lambda key: network.init(model, key), jax.random.key(0))
    return layers.parameter_count(shapes["params"])


def flops(arch: "NB101Cell | str", *, stem_channels: int = 128, stacks: int = 3,
          cells_per_stack: int = 3, num_classes: int = 10, image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one ``image_size`` square image."""
    if image_size % 2 ** (stacks - 1):
        raise ValueError(f"image_size must be divisible by {2 ** (stacks - 1)} (one 2x2 max "
                         f"pool per stack after the first), got {image_size}")
    convs = _network_convs(as_cell(arch), stem_channels, stacks, cells_per_stack)
    total = sum((image_size // 2 ** s) ** 2 * k * k * a * b for s, k, a, b in convs)
    return total + stem_channels * 2 ** (stacks - 1) * num_classes
