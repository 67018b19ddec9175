"""Building blocks shared by the search spaces, and the layer conventions they follow.

Conventions that change scores
------------------------------
Zero-cost references disagree on small layer details that move proxy values: whether a cell's
convolutions carry a bias, whether its batch norms have affine parameters. A
:class:`LayerConvention` names one set of choices; :data:`CONVENTIONS` lists the known ones.

=============  ==============  ===========  ============================================
convention     cell conv bias  cell BN      stem / reduction / last BN
=============  ==============  ===========  ============================================
``official``   no              affine       affine    (NAS-Bench-201, Dong & Yang 2020)
``zero_cost``  **yes**         non-affine   affine    (SamsungLabs/zero-cost-nas,
                                                       Abdelfattah et al., ICLR 2021)
``naslib``     no              non-affine   affine    (automl/NASLib zero-cost measures)
=============  ==============  ===========  ============================================

``zero_cost`` follows ``foresight/models/nasbench2_ops.py``, whose ``ReLUConvBN`` builds its
convolution with ``bias=not affine``: the cells, built with ``affine=False``, get a bias.

Batch normalisation is always in training mode
----------------------------------------------
Every zero-cost reference scores a network in ``train()`` mode, so batch norm normalises with
the statistics of the batch at hand. zcjax networks do exactly that and keep no running
statistics: the variables of a network are ``{"params": ...}`` alone, which keeps the proxies
pure. Like PyTorch, the normalisation uses the biased batch variance and ``eps = 1e-5``.

Initialisation
--------------
Weights are drawn as PyTorch draws them by default (what the references use): a kernel with
fan-in ``n`` is uniform on ``[-1/sqrt(n), 1/sqrt(n)]`` (Kaiming-uniform with ``a = sqrt(5)``), a
bias likewise; batch-norm scales start at 1 and shifts at 0.

Intermediates
-------------
Layers ``sow`` what proxies need into the ``"intermediates"`` collection, which costs nothing
unless the caller asks for it with ``mutable=["intermediates"]``:

- ``relu_in``: the input of every ReLU (NASWOT's binary codes, Mellor et al. 2021);
- ``conv_out``: the output of every convolution (feature maps for MeCo, CRoZe);
- ``bn_var``: every batch norm's per-channel batch variance (Zen-NAS's BN term);
- ``pre_pool``: the feature map entering the global average pool (Zen-NAS).

Every convolution output also passes through ``self.perturb("conv_out", ...)``: applying with a
``"perturbations"`` collection of zeros and differentiating with respect to it gives the
gradient of the loss with respect to each convolution's output (Fisher, Turner et al. 2020).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

BN_EPS = 1e-5

# Tags under which layers sow intermediates.
RELU_IN = "relu_in"
CONV_OUT = "conv_out"
BN_VAR = "bn_var"
PRE_POOL = "pre_pool"
#: Prefix of multiplicative convolution-output gates that networks whose convolutions are not
#: ``flax.linen.Conv`` modules (the NB201 supernet's cell edges) expose to Fisher pruning as
#: ``perturbations/.../<FISHER_GATE><name>`` (N, C), with the convolution's fan-in sown as
#: ``intermediates/.../<FISHER_GATE><name>_fan_in``; see :mod:`zcjax.proxies.fisher`.
FISHER_GATE = "fisher_gate_"


@dataclasses.dataclass(frozen=True)
class LayerConvention:
    """Layer choices that differ between NAS-Bench-201 implementations.

    Attributes:
      name: the name under which the convention is registered.
      cell_conv_bias: whether the convolutions inside cells carry a bias.
      cell_bn_affine: whether the batch norms inside cells have scale and shift parameters.
      outer_bn_affine: the same for the stem, the reduction blocks and the last batch norm.
      source: where the convention comes from.
    """

    name: str
    cell_conv_bias: bool
    cell_bn_affine: bool
    outer_bn_affine: bool
    source: str


OFFICIAL = LayerConvention(
    "official", cell_conv_bias=False, cell_bn_affine=True, outer_bn_affine=True,
    source="NAS-Bench-201 (Dong & Yang, ICLR 2020): conv without bias, affine BN everywhere")
ZERO_COST = LayerConvention(
    "zero_cost", cell_conv_bias=True, cell_bn_affine=False, outer_bn_affine=True,
    source="SamsungLabs/zero-cost-nas (Abdelfattah et al., ICLR 2021): cells use "
           "non-affine BN and, because conv bias = not affine, conv with bias")
NASLIB = LayerConvention(
    "naslib", cell_conv_bias=False, cell_bn_affine=False, outer_bn_affine=True,
    source="automl/NASLib (NAS-Bench-Suite-Zero, Krishnakumar et al., NeurIPS 2022): cells use "
           "non-affine BN, conv without bias")

CONVENTIONS: dict[str, LayerConvention] = {c.name: c for c in (OFFICIAL, ZERO_COST, NASLIB)}


def get_convention(convention: "LayerConvention | str") -> LayerConvention:
    if isinstance(convention, LayerConvention):
        return convention
    try:
        return CONVENTIONS[convention]
    except KeyError:
        raise ValueError(
            f"unknown layer convention {convention!r}; expected one of {sorted(CONVENTIONS)}"
        ) from None


# -- PyTorch-default initialisers ---------------------------------------------------------

#: Kernel init equal to PyTorch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int) -> Callable:
    """PyTorch's default bias init for a layer with the given fan-in."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# -- layers -------------------------------------------------------------------------------

class Conv(nn.Module):
    """A 2-D convolution (NHWC) with PyTorch's symmetric padding and default init."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        fan_in = x.shape[-1] * self.kernel_size * self.kernel_size
        y = nn.Conv(
            self.features,
            (self.kernel_size, self.kernel_size),
            strides=(self.stride, self.stride),
            padding=((self.padding, self.padding), (self.padding, self.padding)),
            use_bias=self.use_bias,
            kernel_init=torch_kernel_init,
            bias_init=torch_bias_init(fan_in),
            name="conv",
        )(x)
        y = self.perturb(CONV_OUT, y)
        self.sow("intermediates", CONV_OUT, y)
        return y


class Dense(nn.Module):
    """A linear layer with PyTorch's default init."""

    features: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return nn.Dense(self.features, kernel_init=torch_kernel_init,
                        bias_init=torch_bias_init(x.shape[-1]), name="dense")(x)


class BatchNorm(nn.Module):
    """Batch normalisation with the batch's own statistics (training mode), NHWC.

    ``y = (x - mean) / sqrt(var + eps) * scale + bias`` with mean and biased variance over
    (N, H, W); ``scale`` and ``bias`` exist only when ``affine``. No running statistics.
    """

    affine: bool = True
    eps: float = BN_EPS

    @nn.compact
    def __call__(self, x: Array) -> Array:
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        self.sow("intermediates", BN_VAR, var)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        if self.affine:
            c = x.shape[-1]
            y = y * self.param("scale", nn.initializers.ones, (c,), x.dtype)
            y = y + self.param("bias", nn.initializers.zeros, (c,), x.dtype)
        return y


class ReLU(nn.Module):
    """ReLU that sows its input (the activation pattern proxies such as NASWOT read)."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        self.sow("intermediates", RELU_IN, x)
        return nn.relu(x)


class ReLUConvBN(nn.Module):
    """ReLU -> Conv -> BN, the convolution operation of NAS-Bench-201 and DARTS cells."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    conv_bias: bool = False
    bn_affine: bool = True

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        x = ReLU(name="relu")(x)
        x = Conv(self.features, self.kernel_size, self.stride, self.padding,
                 use_bias=self.conv_bias, name="conv")(x)
        if use_bn:
            x = BatchNorm(self.bn_affine, name="bn")(x)
        return x


def avg_pool_3x3(x: Array) -> Array:
    """3x3 average pooling, stride 1, padding 1, padded cells excluded from the mean."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                       count_include_pad=False)


def zero(x: Array) -> Array:
    """The ``none`` operation as ``x * 0``.

    Multiplying (instead of returning a literal zeros tensor) keeps XLA from constant-folding
    the operations that feed it, which made compiles take minutes, and propagates NaN as the
    PyTorch references do (``x.mul(0.)``).
    """
    return x * 0


def global_avg_pool(x: Array) -> Array:
    return jnp.mean(x, axis=(1, 2))


def parameter_count(params) -> int:
    """Number of scalars in a parameter pytree (abstract shapes are fine)."""
    return int(sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


def flatten_names(tree) -> Sequence[str]:
    """'/'-joined key paths of a pytree's leaves, in flattening order."""
    return ["/".join(str(getattr(k, "key", k)) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
