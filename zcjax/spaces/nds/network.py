"""The network pycls builds for an NDS CIFAR record, as a Flax linen module.

Reference: ``facebookresearch/pycls``, ``pycls/models/anynet.py`` as released with NDS (the
initial commit; ``AnyNet`` with ``STEM_TYPE: res_stem_cifar``, as in its
``configs/cifar/anynet/R-56_nds_1gpu.yaml``); the architecture as in
:mod:`zcjax.spaces.nds.genotype`.

============  ===========================================================================
module        layers (pycls names; Flax modules carry the same names)
============  ===========================================================================
``stem``      ``conv`` 3x3 stride 1 -> ``bn`` -> ``relu``
``s1..s3``    ``b1..bd`` residual blocks; the first of a stage has the stage's stride (1, 2, 2)
  basic       ``f``: ``a`` 3x3 (stride) -> ``a_bn`` -> ``a_relu`` -> ``b`` 3x3 -> ``b_bn``
  bottleneck  ``f``: ``a`` 1x1 -> ``a_bn`` -> ``a_relu`` -> ``b`` 3x3 (stride, ``groups``)
              -> ``b_bn`` -> ``b_relu`` -> ``c`` 1x1 -> ``c_bn``
  block       ``relu(shortcut + f(x))``; the shortcut is ``bn(proj(x))`` (1x1, stride) when
              the width or the resolution changes, else ``x``
``head``      global average pool -> ``fc`` (linear, with bias)
============  ===========================================================================

Convolutions have no bias; batch norm is affine, ``eps = 1e-5``, always on the batch's
statistics (:mod:`zcjax.contract`).

Initialisation (``weight_init``)
--------------------------------
``"pycls"`` (default): pycls's ``init_weights``, which ``AnyNet`` applies to itself and which
every zero-cost code that scored NDS inherits (NASWOT's and its descendants' vendored pycls,
``aw_nas``'s NDS supernets): convolution kernels ``N(0, 2 / fan_out)`` with ``fan_out = k * k *
out_channels`` (groups not divided out), linear kernel ``N(0, 0.01^2)``, linear bias 0, batch
norm scale 1 and shift 0. ``"torch"``: PyTorch's default initialisers (the other spaces'
convention, :mod:`zcjax.spaces.layers`).

Batch-norm zero init: none. pycls can start the last batch norm of every residual branch
(``final_bn``) at scale 0 (``BN.ZERO_INIT_FINAL_GAMMA``), but the option is off by default, the
NDS CIFAR configurations do not set it, and NASWOT's vendored pycls keeps it off; every batch
norm starts at scale 1.

``use_bn=False``
----------------
The network the zero-cost references' ``get_prunable_copy(bn=False)`` builds for SynFlow when
a model is built without batch norm: every batch norm is removed -- the stem's, those inside
the residual branches and those of the projection shortcuts. No NDS-specific reference defines
this copy; removing every batch norm is the reading that leaves no normalisation behind.

Forward hooks (``hooked``, for MeCo)
------------------------------------
MeCo hooks every module of ``named_modules()``. In pycls's module tree a tensor is seen by
its layer and by each container it is also the output of: the stem's ReLU output twice
(``stem.relu``, ``stem``), a residual branch's last batch-norm output twice (``f.b_bn`` /
``f.c_bn`` and ``f``), a block's output twice (its ``relu`` and the block) and three times for
the last block of a stage (also the ``AnyStage``); every other convolution, batch norm and ReLU
output once. The head's pooled features and logits (and the root module's logits) have one
value per channel, which the reference's correlation scores 0: they are not sown. Counts are
for ``use_bn=True`` (the network MeCo runs); without batch norm a branch's last convolution
output takes over its batch norm's two hooks.

Not reproduced: the NASWOT loader
---------------------------------
The NDS loader of Mellor et al.'s ``BayesWatch/nas-without-training`` (``nasspace.py``, copied
by EPE-NAS and later zero-cost code) builds another network from a record: pycls's ImageNet
stem (7x7 stride 2 and max pool) at width 12, a fourth stage made of the stem entry
(``ds[0], ws[0]``), ``num_gs`` read as a group *width*, and one output class. zcjax builds the
network that NDS trained and whose accuracy the record reports.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.spaces import layers
from zcjax.spaces.blocks import compiled_block
from zcjax.spaces.nds.genotype import NUM_STAGES, BlockSpec, NDSArch

Array = jax.Array

#: The initialisations :class:`NDSNetwork` knows (see the module doc).
INITS = ("pycls", "torch")


@functools.cache
def initializers(init: str) -> tuple[Callable | None, Callable | None, Callable | None]:
    """``(conv kernel, linear kernel, linear bias)`` initialisers for ``init``.

    ``None`` leaves the layer's PyTorch default (:mod:`zcjax.spaces.layers`). Cached: every
    layer gets the same function objects, so equal blocks compare equal
    (:mod:`zcjax.spaces.blocks`).
    """
    if init == "pycls":
        # Flax's fan_out of a (kh, kw, in / groups, out) kernel is kh * kw * out, as pycls's.
        return (nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                nn.initializers.normal(stddev=0.01), nn.initializers.zeros)
    if init == "torch":
        return None, None, None
    raise ValueError(f"unknown NDS initialisation {init!r}; expected one of {INITS}")


class _Layers(nn.Module):
    """Base of the modules below: builds convolutions and batch norms the same way."""

    weight_init: str = "pycls"

    def conv(self, features: int, kernel: int, stride: int = 1, groups: int = 1,
             hooks: int = 1, name: str | None = None) -> layers.Conv:
        return layers.Conv(features, kernel, stride, padding=kernel // 2, hooks=hooks,
                           groups=groups, kernel_init=initializers(self.weight_init)[0], name=name)


@compiled_block
class Stem(_Layers):
    """pycls ``ResStemCifar``: 3x3 convolution (stride 1), batch norm, ReLU."""

    width: int = 16

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        x = self.conv(self.width, 3, name="conv")(x)
        if use_bn:
            x = layers.BatchNorm(name="bn")(x)
        return layers.ReLU(hooks=2, name="relu")(x)  # ReLU and the stem


class BasicTransform(_Layers):
    """pycls ``BasicTransform``: [3x3 conv, BN, ReLU] then [3x3 conv, BN]."""

    block: BlockSpec | None = None

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        b = self.block
        x = self.conv(b.w_out, 3, b.stride, name="a")(x)
        if use_bn:
            x = layers.BatchNorm(name="a_bn")(x)
        x = layers.ReLU(name="a_relu")(x)
        # The branch's last layer is also the output of f: 2 hooks.
        x = self.conv(b.w_out, 3, hooks=1 if use_bn else 2, name="b")(x)
        if use_bn:
            x = layers.BatchNorm(hooks=2, name="b_bn")(x)
        return x


class BottleneckTransform(_Layers):
    """pycls ``BottleneckTransform``: 1x1, 3x3 (stride, groups), 1x1, each with BN (and ReLU
    but the last)."""

    block: BlockSpec | None = None

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        b = self.block
        x = self.conv(b.w_b, 1, name="a")(x)
        if use_bn:
            x = layers.BatchNorm(name="a_bn")(x)
        x = layers.ReLU(name="a_relu")(x)
        x = self.conv(b.w_b, 3, b.stride, groups=b.groups, name="b")(x)
        if use_bn:
            x = layers.BatchNorm(name="b_bn")(x)
        x = layers.ReLU(name="b_relu")(x)
        x = self.conv(b.w_out, 1, hooks=1 if use_bn else 2, name="c")(x)
        if use_bn:
            x = layers.BatchNorm(hooks=2, name="c_bn")(x)
        return x


@compiled_block
class ResBlock(_Layers):
    """pycls ``ResBasicBlock`` / ``ResBottleneckBlock``: ``relu(shortcut(x) + f(x))``.

    ``hooks``: forward hooks that see the output (2; 3 for the last block of a stage).
    """

    block: BlockSpec | None = None
    hooks: int = 2

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        b = self.block
        if x.shape[-1] != b.w_in:
            raise ValueError(f"block {b.stage + 1}.{b.index + 1} expects {b.w_in} channels, "
                             f"got {x.shape[-1]}")
        shortcut = x
        if b.projects:  # pycls evaluates the projection before f
            shortcut = self.conv(b.w_out, 1, b.stride, name="proj")(x)
            if use_bn:
                shortcut = layers.BatchNorm(name="bn")(shortcut)
        transform = BottleneckTransform if b.w_b is not None else BasicTransform
        y = transform(self.weight_init, b, name="f")(x, use_bn=use_bn)
        return layers.ReLU(hooks=self.hooks, name="relu")(shortcut + y)


class Stage(_Layers):
    """pycls ``AnyStage``: the blocks ``b1..bd`` of one stage."""

    blocks: tuple[BlockSpec, ...] = ()

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        for i, b in enumerate(self.blocks):
            last = i == len(self.blocks) - 1  # also the output of the stage
            x = ResBlock(self.weight_init, b, hooks=3 if last else 2, name=f"b{i + 1}")(
                x, use_bn=use_bn)
        return x


class NDSNetwork(nn.Module):
    """The NDS CIFAR network of one architecture (see the module doc).

    Attributes:
      arch: the architecture (already capped, if a configuration caps it).
      num_classes: classifier outputs (10 for CIFAR-10).
      weight_init: ``"pycls"`` or ``"torch"`` (module doc).
    """

    arch: NDSArch
    num_classes: int = 10
    weight_init: str = "pycls"

    @nn.compact
    def __call__(self, images: Array, *, use_bn: bool = True) -> Array:
        if images.ndim != 4:
            raise ValueError(f"expected NHWC images, got shape {images.shape}")
        _, dense_kernel, dense_bias = initializers(self.weight_init)
        x = Stem(self.weight_init, self.arch.stem_width, name="stem")(images, use_bn=use_bn)
        blocks = self.arch.blocks()
        for stage in range(NUM_STAGES):
            own = tuple(b for b in blocks if b.stage == stage)
            x = Stage(self.weight_init, own, name=f"s{stage + 1}")(x, use_bn=use_bn)
        self.sow(contract.INTERMEDIATES, contract.PRE_POOL, x)
        pooled = layers.global_avg_pool(x)
        return Head(self.num_classes, dense_kernel, dense_bias, name="head")(pooled)


@compiled_block
class Head(nn.Module):
    """pycls ``AnyHead`` after the pool: the linear classifier ``fc``."""

    num_classes: int
    kernel_init: Callable | None = None
    bias_init: Callable | None = None

    @nn.compact
    def __call__(self, pooled: Array) -> Array:
        return layers.Dense(self.num_classes, self.kernel_init, self.bias_init,
                            name="fc")(pooled)


def build(arch: NDSArch, *, num_classes: int = 10, weight_init: str = "pycls") -> NDSNetwork:
    """The network of ``arch``; a clear error for a bad class count or initialisation."""
    if not isinstance(arch, NDSArch):
        raise TypeError(f"expected an NDSArch, got {type(arch).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    initializers(weight_init)
    return NDSNetwork(arch, num_classes, weight_init)


def init(model: nn.Module, key: jax.Array, image_shape=(32, 32, 3)) -> dict[str, Any]:
    """Variables (``{"params": ...}``) of a model from a PRNG key, deterministic in the key."""
    variables = model.init(key, jnp.zeros((1, *image_shape), jnp.float32))
    return {"params": variables["params"]}
