"""Parameter counts and FLOPs of NDS networks, in closed form (nothing is built or traced).

Parameters (:func:`param_count`)
    Every parameter of :mod:`zcjax.spaces.nds.network`, as PyTorch's ``model.parameters()``
    counts pycls's model: convolution kernels (no biases), two per channel for each batch norm,
    the classifier's kernel and bias. This is the NDS records' ``params``: the tests check it
    on the two CIFAR records that NNI's NDS tutorial prints (``microsoft/nni``,
    ``docs/source/tutorials/nasbench_as_dataset.rst``: ResNet ``d = 12, 12, 12``, ``w = 24, 24,
    40``: 594,138; ResNeXt-A ``d = 16, 1, 4``, ``w = 64, 128, 16``, ``bm = 0.25``, ``g = 2, 1,
    2``: 83,002), on pycls's ResNet-56 (``d = 9, 9, 9``, ``w = 16, 32, 64``: 855,770, the 0.856 M
    that the NDS notebooks of ``facebookresearch/nds`` take as their ResNet-56 bound), and
    against :func:`param_count_traced` (the Flax module's parameters, from ``jax.eval_shape``).

Multiply-accumulates (:func:`flops`)
    What :meth:`zcjax.spaces.base.SearchSpace.flops` reports for every space: the MACs of the
    convolutions (``weight.numel() * H_out * W_out``, grouped ones included) and of the
    classifier's matrix product; batch norm, ReLU, additions, pooling and biases are not
    counted. pycls's ResNet-56: 125,747,840.

The records' ``flops`` (:func:`record_flops`)
    The NDS files count more: the MACs above, plus the classifier's bias (one per class), plus
    five per output element of every batch norm. The formula is ours, inferred from and matched
    exactly on the three CIFAR records of NNI's tutorial (the two above: 184,519,578 and
    69,890,986; and a Vanilla record, whose blocks are not built here); the counter that wrote
    the files is not public.
"""

from __future__ import annotations

import jax

from zcjax.spaces import layers
from zcjax.spaces.nds import network
from zcjax.spaces.nds.genotype import NDSArch

#: Batch-norm parameters per channel (scale and shift).
_BN = 2


def param_count(arch: NDSArch, *, num_classes: int = 10) -> int:
    """Parameters of the network of ``arch`` (closed form)."""
    total = 3 * 9 * arch.stem_width + _BN * arch.stem_width
    for b in arch.blocks():
        if b.projects:
            total += b.w_in * b.w_out + _BN * b.w_out
        if b.w_b is None:  # basic: 3x3 (w_in -> w_out), 3x3 (w_out -> w_out)
            total += 9 * b.w_in * b.w_out + 9 * b.w_out * b.w_out + 2 * _BN * b.w_out
        else:  # bottleneck: 1x1, grouped 3x3, 1x1
            total += (b.w_in * b.w_b + 9 * b.w_b * b.w_b // b.groups + b.w_b * b.w_out
                      + _BN * (2 * b.w_b + b.w_out))
    return total + arch.widths[-1] * num_classes + num_classes


def flops(arch: NDSArch, *, num_classes: int = 10, image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one ``image_size``-square image."""
    size = image_size
    total = size * size * 9 * 3 * arch.stem_width
    for b in arch.blocks():
        out = (size - 1) // b.stride + 1  # 3x3 with padding 1 and 1x1 without: same size
        if b.projects:
            total += out * out * b.w_in * b.w_out
        if b.w_b is None:
            total += out * out * 9 * (b.w_in * b.w_out + b.w_out * b.w_out)
        else:  # the 1x1 reduction runs before the strided 3x3, at the input size
            total += (size * size * b.w_in * b.w_b + out * out * 9 * b.w_b * b.w_b // b.groups
                      + out * out * b.w_b * b.w_out)
        size = out
    return total + arch.widths[-1] * num_classes


def record_flops(arch: NDSArch, *, num_classes: int = 10, image_size: int = 32) -> int:
    """The ``flops`` an NDS record reports for ``arch`` (see the module doc)."""
    size = image_size
    bn_outputs = size * size * arch.stem_width
    for b in arch.blocks():
        out = (size - 1) // b.stride + 1
        area = out * out
        bn_outputs += area * b.w_out * (2 if b.projects else 1)  # last BN of f, shortcut BN
        if b.w_b is None:
            bn_outputs += area * b.w_out  # a_bn
        else:
            bn_outputs += size * size * b.w_b + area * b.w_b  # a_bn (input size), b_bn
        size = out
    return flops(arch, num_classes=num_classes, image_size=image_size) + num_classes \
        + 5 * bn_outputs


def param_count_traced(arch: NDSArch, *, num_classes: int = 10) -> int:
    """Parameters of the Flax network, counted from ``jax.eval_shape`` of its init."""
    model = network.build(arch, num_classes=num_classes)
    shapes = jax.eval_shape(lambda key: network.init(model, key), jax.random.key(0))
    return layers.parameter_count(shapes["params"])
