"""Parameter counts and FLOPs of NAS-Bench-201 networks, without compiling anything.

Parameters
    Counted from the Flax module itself with ``jax.eval_shape`` (shapes only, no compilation).
    A full network's trace takes ~0.15 s, so :func:`param_count` composes it: the skeleton (the
    network with an all-``none`` cell) plus, per stage, ``N`` times the parameters of each
    edge's operation, each traced once and cached. :func:`param_count_traced` traces the whole
    network; the tests check that both agree, and that the official convention reproduces the
    benchmark's ``params`` for all 15,625 cells.

FLOPs
    :func:`flops` counts multiply-accumulates (MACs) of convolutions and the classifier, the
    quantity NAS-Bench-201 reports as "FLOPs" (7.78 M for the all-``none`` cell, 220.11 M for
    the all-``nor_conv_3x3`` cell at C=16, N=5 on 32x32 images). Batch norm, pooling, additions
    and biases are not counted.
"""

from __future__ import annotations

import functools

import jax

from zcjax.spaces import layers
from zcjax.spaces.layers import LayerConvention
from zcjax.spaces.nb201 import network
from zcjax.spaces.nb201.genotype import EDGES, Genotype, as_genotype

_ALL_NONE = Genotype(("none",) * len(EDGES))
_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def param_count_traced(arch, *, channels=16, cells_per_stage=5, num_classes=10,
                       convention="official") -> int:
    """Parameters of the whole network, traced with ``jax.eval_shape``."""
    model = network.build(arch, channels=channels, cells_per_stage=cells_per_stage,
                          num_classes=num_classes, convention=convention)
    shapes = jax.eval_shape(lambda key: network.init(model, key), jax.random.key(0))
    return layers.parameter_count(shapes["params"])


@functools.lru_cache(maxsize=None)
def _skeleton_params(channels, cells_per_stage, num_classes, convention: LayerConvention) -> int:
    return param_count_traced(_ALL_NONE, channels=channels, cells_per_stage=cells_per_stage,
                              num_classes=num_classes, convention=convention)


@functools.lru_cache(maxsize=None)
def _op_params(op: str, features: int, convention: LayerConvention) -> int:
    if op not in _CONV_KERNEL:
        return 0
    kernel = _CONV_KERNEL[op]
    module = layers.ReLUConvBN(features, kernel, padding=kernel // 2,
                               conv_bias=convention.cell_conv_bias,
                               bn_affine=convention.cell_bn_affine)
    x = jax.ShapeDtypeStruct((1, 8, 8, features), jax.numpy.float32)
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    return layers.parameter_count(shapes["params"])


def param_count(arch, *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                convention: "LayerConvention | str" = "official") -> int:
    """Number of parameters of the network for ``arch`` (a Genotype, string or index).

    With the default ``official`` convention and C=16, N=5, 10 classes this is the
    benchmark's parameter count (``params_mb_cifar10`` times 1e6).
    """
    g = as_genotype(arch)
    conv = layers.get_convention(convention)
    total = _skeleton_params(channels, cells_per_stage, num_classes, conv)
    for stage in range(3):
        features = channels * 2 ** stage
        total += cells_per_stage * sum(_op_params(op, features, conv) for op in g.ops)
    return total


def flops(arch, *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
          image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one image (NAS-Bench-201's "FLOPs")."""
    g = as_genotype(arch)
    if image_size % 4:
        raise ValueError(f"image_size must be divisible by 4, got {image_size}")

    def conv_macs(size, c_in, c_out, k):
        return size * size * c_out * c_in * k * k

    total = conv_macs(image_size, 3, channels, 3)  # stem
    for stage in range(3):
        c = channels * 2 ** stage
        size = image_size // 2 ** stage
        if stage > 0:  # reduction: conv_a (stride 2), conv_b, 1x1 shortcut, at the new size
            total += conv_macs(size, c // 2, c, 3) + conv_macs(size, c, c, 3)
            total += conv_macs(size, c // 2, c, 1)
        cell = sum(conv_macs(size, c, c, _CONV_KERNEL[op]) for op in g.ops if op in _CONV_KERNEL)
        total += cells_per_stage * cell
    return total + 4 * channels * num_classes
