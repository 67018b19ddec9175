"""The NAS-Bench-101 network as a Flax linen module.

Which reference
---------------
The network the zero-cost references score: ``SamsungLabs/zero-cost-nas``
``foresight/models/nasbench1.py`` + ``nasbench1_ops.py`` (Abdelfattah et al., ICLR 2021, the
published NB101 correlations), inherited unchanged by MeCo (``HamsterMimi/MeCo``,
``correlation/foresight/models/nasbench1.py``). It is a PyTorch port of the original
TensorFlow ``nasbench/lib/model_builder.py`` (Ying et al., ICML 2019) and has the same
parameters: for the 31 cells checked (the issue's two, the README's, and 28 more with their
``trainable_parameters`` from the benchmark) the counts agree with the benchmark's exactly.
NASLib builds the same network through ``romulus0914/NASBench-PyTorch``, whose cells add
``Placeholder`` modules holding one unused scalar parameter each (2 per cell plus one per
vertex without an input edge): their counts exceed this network's by that many (18 and 36 for
the issue's two cells); nothing else differs. The epsilon reference (``egracheva/epsinas``,
``NAS-Bench-101/nas_101_api``) builds the same layers too.

Macro skeleton
--------------
``stem``: ConvBnRelu 3x3 to ``stem_channels`` (128); then ``stacks`` (3) stacks of
``cells_per_stack`` (3) cells; before every stack but the first a 2x2 max pool of stride 2
halves the resolution and the channels double; global average pool; a linear classifier
(with bias). Every cell shares the same (pruned) cell.

ConvBnRelu: convolution (no bias, "same" padding, stride 1) -> batch norm (affine) -> ReLU.
``maxpool3x3``: 3x3 max pool, stride 1, padding 1 (padding never wins the max).

The cell (``model_builder.build_module``; channel rules of the original)
-------------------------------------------------------------------------
Built from the *pruned* cell (:attr:`~zcjax.spaces.nb101.genotype.NB101Cell.pruned`), with
``C_in`` input and ``C`` output channels:

- **channels** (:func:`vertex_channels`, the reference's ``compute_vertex_channels``): the
  output's ``C`` channels are split evenly among the vertices that feed the output, the first
  ``C mod k`` of them getting one more; every other interior vertex takes the maximum of the
  vertices it feeds (walking backwards);
- **vertex input**: the sum of its interior predecessors' outputs, each truncated to the
  vertex's channels (its first channels; they differ by at most one), plus, when the input
  feeds the vertex, a **projection** of the cell input (ConvBnRelu 1x1 from ``C_in``);
- **vertex output**: its operation applied to that sum (convolutions keep the channel count);
- **cell output**: the concatenation (in vertex order) of the vertices that feed the output,
  plus a 1x1 projection of the cell input to ``C`` channels when the input feeds the output;
  only that projection when no interior vertex feeds the output.

One deviation from zero-cost-nas's code, none from its function: when one interior vertex
feeds the output and so does the input, zero-cost-nas adds the projection **in place**
(``outputs += ...``) to that vertex's ReLU output, which autograd needs; its backward pass then
fails ("modified by an inplace operation", checked with PyTorch 2.13) when that vertex is a
convolution, so its gradient proxies cannot score those cells (59 of the 500 shipped rows, 12%
of the benchmark's random draws). The original, NASBench-PyTorch and zcjax add out of place:
the same forward values, with gradients.

Conventions
-----------
- Batch norm on the batch's statistics (training mode), ``eps = 1e-5``; no running statistics
  (the momentum of the references, 0.1 in zero-cost-nas and 0.997 in the original, never
  matters here).
- Initialisation of the reference's ``Network._initialize_weights``: convolution kernels
  ``N(0, 2 / (k * k * C_out))`` (Kaiming normal, fan-out), batch norm 1 and 0, classifier
  weights ``N(0, 0.01**2)`` and bias 0. Not PyTorch's default, which the NB201 networks use:
  zero-cost-nas scores NB101 networks right after construction, with this init.
- ``use_bn=False`` removes every batch norm (stem, projections, vertex convolutions), as the
  reference's ``get_prunable_copy(bn=False)`` does for SynFlow (its ``ConvBnRelu`` drops the
  ``BatchNorm2d`` when ``bn=False``).
- Contract (:mod:`zcjax.contract`): ReLU inputs, convolution outputs, batch variances and the
  pre-pool map are sown. ``hooked`` multiplicities follow the module nesting of the MeCo
  reference's NB101 model (a forward hook on every module of ``named_modules()``):

  =====================================  =====  ===========================================
  tensor                                 hooks  modules whose hook sees it
  =====================================  =====  ===========================================
  convolution output                     1      Conv2d
  batch norm output                      1      BatchNorm2d
  ReLU output, stem and projections      3      ReLU, ``conv_bn_relu`` Sequential, ConvBnRelu
  ReLU output, vertex convolutions       4      the same and Conv3x3BnRelu / Conv1x1BnRelu
  ``maxpool3x3`` vertex output           2      MaxPool2d, MaxPool3x3
  down-sampling max pool output          1      MaxPool2d
  cell output                            1      Cell
  logits                                 (0)    one value per channel: corr := 0, lambda = 0
  =====================================  =====  ===========================================

  ``ModuleList`` containers have no forward and fire no hook. Stage features for CRoZe are not
  declared: its reference supports NAS-Bench-201 and DARTS only (see the space).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.spaces import layers
from zcjax.spaces.blocks import compiled_block
from zcjax.spaces.nb101.genotype import CONV1X1, CONV3X3, MAXPOOL3X3, NB101Cell, as_cell

Array = jax.Array

#: Kernel init of the reference (``normal_(0, sqrt(2 / (k * k * out_channels)))``).
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
#: Classifier init of the reference (``normal_(0, 0.01)``, bias zero).
dense_kernel_init = nn.initializers.normal(0.01)
zeros_init = nn.initializers.zeros

_KERNEL = {CONV3X3: 3, CONV1X1: 1}


def vertex_channels(in_channels: int, out_channels: int,
                    matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of every vertex of a pruned cell (the reference's ``compute_vertex_channels``).

    Raises ``ValueError`` when ``out_channels`` is too small to give every vertex that feeds
    the output a channel (the reference asserts instead).
    """
    v = len(matrix)
    channels = [0] * v
    channels[0], channels[-1] = in_channels, out_channels
    if v == 2:
        return channels
    feeders = [i for i in range(1, v - 1) if matrix[i][v - 1]]
    share, extra = divmod(out_channels, len(feeders))
    if share == 0:
        raise ValueError(f"{out_channels} output channels cannot be split among the "
                         f"{len(feeders)} vertices that feed the cell output")
    for k, i in enumerate(feeders):
        channels[i] = share + (1 if k < extra else 0)
    for i in range(v - 3, 0, -1):
        if not matrix[i][v - 1]:
            channels[i] = max(channels[j] for j in range(i + 1, v - 1) if matrix[i][j])
    return channels


@compiled_block
class ConvBnRelu(nn.Module):
    """Convolution (no bias) -> batch norm (affine) -> ReLU, "same" padding, stride 1.

    ``relu_hooks``: reference hooks that see the output (3 for the stem and the projections,
    4 for a vertex's convolution, nested one module deeper).
    """

    features: int
    kernel_size: int
    relu_hooks: int = 3

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        x = layers.Conv(self.features, self.kernel_size, padding=self.kernel_size // 2,
                        kernel_init=conv_kernel_init, name="conv")(x)
        if use_bn:
            x = layers.BatchNorm(affine=True, name="bn")(x)
        return layers.ReLU(hooks=self.relu_hooks, name="relu")(x)


class Cell(nn.Module):
    """One NAS-Bench-101 cell (module doc) for a *pruned* cell, with ``features`` outputs.

    Submodules: ``vertex_<t>`` (the operation of vertex ``t``) and ``projection_<t>`` (the 1x1
    projection of the cell input into vertex ``t``; ``t = V - 1`` is the output).
    """

    cell: NB101Cell
    features: int

    @nn.compact
    def __call__(self, x: Array, *, use_bn: bool = True) -> Array:
        m, ops = self.cell.matrix, self.cell.ops
        v = len(ops)
        channels = vertex_channels(x.shape[-1], self.features, m)

        def project(t: int) -> Array:
            return ConvBnRelu(channels[t], 1, relu_hooks=3, name=f"projection_{t}")(
                x, use_bn=use_bn)

        tensors = [x]
        for t in range(1, v - 1):
            # The reference's order: truncated predecessors, then the projected input.
            fan_in = [tensors[s][..., :channels[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                fan_in.append(project(t))
            total = fan_in[0]
            for term in fan_in[1:]:
                total = total + term
            if ops[t] == MAXPOOL3X3:
                out = layers.MaxPool(3, 1, 1, hooks=2, name=f"vertex_{t}")(total)
            else:
                out = ConvBnRelu(channels[t], _KERNEL[ops[t]], relu_hooks=4,
                                 name=f"vertex_{t}")(total, use_bn=use_bn)
            tensors.append(out)
        concat = [tensors[t] for t in range(1, v - 1) if m[t][v - 1]]
        if not concat:
            out = project(v - 1)
        else:
            out = concat[0] if len(concat) == 1 else jnp.concatenate(concat, axis=-1)
            if m[0][v - 1]:
                out = out + project(v - 1)
        layers.sow_hooked(self, out, 1)
        return out


class NB101Network(nn.Module):
    """A NAS-Bench-101 network for one cell (module doc).

    Attributes:
      cell: the cell (any form; the network builds its pruned form).
      stem_channels: channels of the stem and the first stack (128 in the benchmark).
      stacks: stacks of cells (3), separated by 2x2 max pools.
      cells_per_stack: cells in each stack (3).
      num_classes: classifier outputs (10).
    """

    cell: NB101Cell
    stem_channels: int = 128
    stacks: int = 3
    cells_per_stack: int = 3
    num_classes: int = 10

    @nn.compact
    def __call__(self, images: Array, *, use_bn: bool = True) -> Array:
        if images.ndim != 4:
            raise ValueError(f"expected NHWC images, got shape {images.shape}")
        pruned = self.cell.pruned
        x = ConvBnRelu(self.stem_channels, 3, relu_hooks=3, name="stem")(images, use_bn=use_bn)
        width = self.stem_channels
        for stack in range(self.stacks):
            if stack > 0:
                x = layers.MaxPool(2, 2, hooks=1, name=f"downsample_{stack}")(x)
                width *= 2
            for i in range(self.cells_per_stack):
                x = Cell(pruned, width, name=f"cell_{stack}_{i}")(x, use_bn=use_bn)
        self.sow(contract.INTERMEDIATES, contract.PRE_POOL, x)
        pooled = layers.global_avg_pool(x)
        return layers.Dense(self.num_classes, kernel_init=dense_kernel_init,
                            bias_init=zeros_init, name="classifier")(pooled)


def build(arch: "NB101Cell | str", *, stem_channels: int = 128, stacks: int = 3,
          cells_per_stack: int = 3, num_classes: int = 10) -> NB101Network:
    """The network of a cell given as a :class:`NB101Cell` or an architecture string."""
    for name, value in (("stem_channels", stem_channels), ("stacks", stacks),
                        ("cells_per_stack", cells_per_stack), ("num_classes", num_classes)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return NB101Network(as_cell(arch), stem_channels, stacks, cells_per_stack, num_classes)


def init(model: nn.Module, key: jax.Array, image_shape=(32, 32, 3)) -> dict[str, Any]:
    """Variables (``{"params": ...}``) of a model from a PRNG key, deterministic in the key."""
    variables = model.init(key, jnp.zeros((1, *image_shape), jnp.float32))
    return {"params": variables["params"]}
