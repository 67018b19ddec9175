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
bias likewise; batch-norm scales start at 1 and shifts at 0. A space whose reference model
re-initialises its weights (pycls's ResNet-style init for the NDS spaces) passes its own
``kernel_init`` / ``bias_init`` to :class:`Conv` and :class:`Dense`.

Intermediates
-------------
Layers ``sow`` what proxies read into the ``"intermediates"`` collection, as the network-proxy
contract (:mod:`zcjax.contract`) defines it: ReLU inputs (``relu_in``), convolution outputs
(``conv_out``), batch variances with their counts (``bn_var``, ``bn_var_count``), and the
tensors a forward hook of the reference model would see (``hooked``, weighted by how many hooks
see them: the field ``hooks`` of each layer, set by the network that builds it to match the
reference's module nesting; 0 sows nothing). Every convolution output also passes through
``self.perturb("conv_out", ...)``, so a proxy can differentiate with respect to it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zcjax import contract
from zcjax.spaces.blocks import compiled_block

Array = jax.Array

BN_EPS = 1e-5



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


# -- layers ---------------------------------------------------------------------------------

def sow_hooked(module: nn.Module, value: Array, hooks: int) -> None:
    """Sows ``value`` as a tensor that ``hooks`` forward hooks of the reference model see.

    Nothing is sown for ``hooks == 0``. The weight is a NumPy scalar: static under every JAX
    transformation (see :data:`zcjax.contract.HOOKED`).
    """
    if hooks:
        module.sow(contract.INTERMEDIATES, contract.HOOKED, value)
        module.sow(contract.INTERMEDIATES, contract.HOOKED + contract.WEIGHT_SUFFIX,
                   np.float32(hooks))


@compiled_block
class Conv(nn.Module):
    """A 2-D convolution (NHWC) with PyTorch's symmetric padding and default init.

    ``groups`` splits the input channels as PyTorch's ``groups`` (``groups == in_channels``:
    depthwise); ``dilation`` spaces the kernel taps. ``hooks``: forward hooks of the reference
    model that see the output (see module doc). ``kernel_init`` / ``bias_init``: initialisers
    replacing PyTorch's defaults, for spaces whose reference model initialises its own weights
    (``None``: PyTorch's default).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = False
    hooks: int = 1
    groups: int = 1
    dilation: int = 1
    kernel_init: Callable | None = None
    bias_init: Callable | None = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.shape[-1] % self.groups or self.features % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels "
                             f"({x.shape[-1]}) and the output channels ({self.features})")
        fan_in = x.shape[-1] // self.groups * self.kernel_size * self.kernel_size
        y = nn.Conv(
            self.features,
            (self.kernel_size, self.kernel_size),
            strides=(self.stride, self.stride),
            padding=((self.padding, self.padding), (self.padding, self.padding)),
            kernel_dilation=(self.dilation, self.dilation),
            feature_group_count=self.groups,
            use_bias=self.use_bias,
            kernel_init=self.kernel_init or torch_kernel_init,
            bias_init=self.bias_init or torch_bias_init(fan_in),
            name="conv",
        )(x)
        y = self.perturb(contract.CONV_OUT, y)
        self.sow(contract.INTERMEDIATES, contract.CONV_OUT, y)
        sow_hooked(self, y, self.hooks)
        return y


@compiled_block
class Dense(nn.Module):
    """A linear layer with PyTorch's default init (or the given initialisers, as in
    :class:`Conv`)."""

    features: int
    kernel_init: Callable | None = None
    bias_init: Callable | None = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return nn.Dense(self.features, kernel_init=self.kernel_init or torch_kernel_init,
                        bias_init=self.bias_init or torch_bias_init(x.shape[-1]),
                        name="dense")(x)


@compiled_block
class BatchNorm(nn.Module):
    """Batch normalisation with the batch's own statistics (training mode), NHWC.

    ``y = (x - mean) / sqrt(var + eps) * scale + bias`` with mean and biased variance over
    (N, H, W); ``scale`` and ``bias`` exist only when ``affine``. No running statistics.
    Sows the batch variance and the number of values it averages (``bn_var``,
    ``bn_var_count``), and its output as ``hooks`` times hooked.
    """

    affine: bool = True
    eps: float = BN_EPS
    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        self.sow(contract.INTERMEDIATES, contract.BN_VAR, var)
        self.sow(contract.INTERMEDIATES, contract.BN_VAR + contract.COUNT_SUFFIX,
                 np.int64(math.prod(x.shape[:-1])))
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        if self.affine:
            c = x.shape[-1]
            y = y * self.param("scale", nn.initializers.ones, (c,), x.dtype)
            y = y + self.param("bias", nn.initializers.zeros, (c,), x.dtype)
        sow_hooked(self, y, self.hooks)
        return y


class ReLU(nn.Module):
    """ReLU that sows its input (the activation pattern proxies such as NASWOT read)."""

    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        self.sow(contract.INTERMEDIATES, contract.RELU_IN, x)
        y = nn.relu(x)
        sow_hooked(self, y, self.hooks)
        return y


class Identity(nn.Module):
    """The identity (``skip_connect``), a module so that it can be hooked like PyTorch's."""

    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        sow_hooked(self, x, self.hooks)
        return x


def max_pool(x: Array, window: int, stride: int, padding: int = 0) -> Array:
    """PyTorch's ``MaxPool2d(window, stride, padding)`` on NHWC maps, with its gradient.

    Padding is ``-inf`` (it never wins). The gradient of each output goes to the **first**
    maximum of its window in row-major order, as PyTorch's backward sends it (ties are common:
    SynFlow feeds a constant image); a NaN in a window is its maximum, as in PyTorch.

    Written with slices, ``maximum`` and ``where`` instead of ``lax.reduce_window``: the
    gradient of ``reduce_window`` (``select_and_scatter_add``) and ``argmax`` are lowered by
    re-tracing Python code at compile time, outside a ``jax.enable_x64`` scope, and then fail
    with a float32 / float64 mismatch for the float64 passes of SynFlow and epsilon_f64 under
    ``jit`` (JAX 0.10, CPU and GPU). These ops have plain lowerings, and forward- and
    reverse-mode derivatives.
    """
    n, h, w, c = x.shape
    p, k, s = padding, window, stride
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)),
                 constant_values=np.array(-np.inf, x.dtype))
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    views = [xp[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
             for i in range(k) for j in range(k)]
    top = views[0]
    for view in views[1:]:
        top = jnp.maximum(top, view)  # NaN-propagating
    out = jnp.zeros_like(top)
    taken = jnp.zeros(top.shape, bool)
    for view in views:  # row-major: the first maximum is taken, its gradient alone flows
        first = ~taken & ((view == top) | jnp.isnan(view))
        out = jnp.where(first, view, out)
        taken = taken | first
    return out


@compiled_block
class MaxPool(nn.Module):
    """:func:`max_pool` as a module whose output ``hooks`` reference hooks see."""

    window: int
    stride: int = 1
    padding: int = 0
    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        y = max_pool(x, self.window, self.stride, self.padding)
        sow_hooked(self, y, self.hooks)
        return y


@compiled_block
class AvgPool(nn.Module):
    """Average pooling, PyTorch's ``AvgPool2d(window, stride, padding,
    count_include_pad=False)``."""

    window: int
    stride: int = 1
    padding: int = 0
    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array) -> Array:
        p = self.padding
        y = nn.avg_pool(x, (self.window, self.window), strides=(self.stride, self.stride),
                        padding=((p, p), (p, p)), count_include_pad=not p)
        sow_hooked(self, y, self.hooks)
        return y


@compiled_block
class ReLUConvBN(nn.Module):
    """ReLU -> Conv -> BN, the convolution operation of NAS-Bench-201 and DARTS cells.

    Hooks as in the references' ``ReLUConvBN`` (an ``nn.Sequential`` inside a module): the
    batch norm's output is also the output of the sequence and of the block (3 hooks).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    conv_bias: bool = False
    bn_affine: bool = True
    bn_hooks: int = 3

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        x = ReLU(name="relu")(x)
        x = Conv(self.features, self.kernel_size, self.stride, self.padding,
                 use_bias=self.conv_bias, name="conv")(x)
        if use_bn:
            x = BatchNorm(self.bn_affine, hooks=self.bn_hooks, name="bn")(x)
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
