"""The NAS-Bench-201 network with the genotype as data: one compilation for every cell.

:class:`NB201Supernet` computes exactly what :class:`~zcjax.spaces.nb201.network.NB201Network`
computes, but reads the cell from its variables (``variables["genotype"]["ops"]``, six op indices
in :data:`~zcjax.spaces.nb201.genotype.OPS` order) and picks each edge's operation with
``lax.switch``. A proxy program traced once therefore scores all 15,625 cells.

Why the plain ``lax.switch`` backward was slow (root cause, measured)
---------------------------------------------------------------------
XLA:CPU runs a convolution fast (Eigen) only in canonical form (NHWC input, HWIO kernel, NHWC
output). The gradient convolutions JAX emits are not canonical (kernel gradient
``f01b_i01o->01bf``, input gradient ``b01f_01oi->b01f``); XLA:CPU's ``ConvCanonicalization`` pass
rewrites them with transposes, but walks only the *entry* computation
(``module->entry_computation()`` in ``xla/service/cpu/conv_canonicalization.cc``). Convolutions
inside a conditional branch (or a while body: ``lax.map``, ``lax.scan``) keep their form and are
emitted as naive loop nests. The forward convolutions are already canonical, hence a fast
forward and a 16-33x slower backward. Compiled HLO of 2 cells (all ``nor_conv_3x3``): static
gradient, 33 convolutions all ``b01f_01io->b01f``; switch gradient, 24 of 54 non-canonical.

The fix, and the measurements behind it
---------------------------------------
1. :func:`conv_same` is a stride-1 convolution with a ``custom_vjp`` whose two gradient
   convolutions are written in canonical form with explicit transposes (what the pass would
   have done), so they stay fast inside branches.
2. Each edge is a ``custom_vjp`` function (:func:`edge`) that switches in the forward and again in
   the backward, keeping only its input as residual and recomputing the chosen operation. Plain
   AD of ``lax.switch`` makes every branch output the residuals of all branches and costs more.

Forward + gradient, batch 64, 2 cells of 16 channels at 32x32 (median of 5, interleaved, loaded
machine): all-3x3 cell: static 0.65 s, switch + canonical conv 0.74 s, + per-edge custom_vjp
0.64 s; small cell ``(skip, none, 1x1, pool, 3x3, skip)``: 0.21 s, 0.55 s, 0.27 s. Plain switch:
9.8 s and 3.9 s.

Whole network (C=16, N=5, batch 64, ``experiments/benchmark.py``, median of 3 interleaved runs,
load average ~6 on 2 cores, so absolute seconds are ~2-3x a quiet machine's), supernet run time
relative to the static module of each cell: grad_norm 1.09x / 1.00x (all-3x3 cell 1462 / small
cell 10760), snip 0.91x / 1.21x, synflow 1.12x / 0.88x, the three fused 1.10x / 1.01x (3.04 s vs
2.77 s; 0.75 s vs 0.75 s). Compiles: static 13-37 s per cell and proxy set; supernet 28-73 s
once per proxy set, then 0 s for every further cell.

Parameters: the same seed gives the same weights
------------------------------------------------
Flax derives a parameter's initial value from the init key and its path only, so the static
network of any cell holds, edge by edge, the parameters of the all-``nor_conv_3x3`` or the
all-``nor_conv_1x1`` network. The supernet's parameters are the all-3x3 network's tree (same
paths) plus, for each edge ``edge_i_j``, a sibling ``edge_i_j_1x1`` holding the all-1x1
network's edge: :func:`init_params` builds them from those two static inits, and
:func:`to_static` maps them back to the static tree of one cell. Parameters of edges whose
operation is not a convolution are zeroed by :func:`mask_params` before proxies see them, so
proxies that sum over parameters (``l2_norm``) or their gradients agree with the static network.

Intermediates: weighted sites
----------------------------
Outside the cells the supernet sows what the static network sows. Inside a cell it cannot sow
from within the ``custom_vjp`` / ``switch``, so every edge is a *potential* site: the cell sows
(``SwitchCell._sow_site``) the edge's ReLU input (``relu_in``; zeros where the edge is not a
convolution) and its batch norm's batch variance (``bn_var``, returned by the edge next to its
output and carrying no gradient; ones where absent), each followed by ``<tag>_weight``: 1.0 where
the static network of the cell has that site, else 0.0, and ``bn_var_count`` (N H W).
:meth:`zcjax.proxies.context.Context.weighted_intermediates` pairs values and weights (weight 1
for static networks); nwot and zen accumulate ``weight * term``, so absent sites add exactly
nothing. Zen-NAS also redraws the weights: :func:`variables_for` adds a ``"presence"``
collection (:func:`presence`) with which :func:`zcjax.proxies.zen.gaussian_params` gives the
present kernels the static network's draws.

Fisher and GraSP: Fisher pruning needs each convolution's ``sum_spatial a * dL/da`` per sample
and channel; the edges' convolutions are not Flax modules it can intercept, so each edge
multiplies its convolution output by a gate of ones that :meth:`SwitchCell._fisher_gate` exposes
as a perturbation (the gate's gradient is that sum) with the convolution's fan-in sown beside
it. GraSP's Hessian-gradient product is forward-over-reverse on static networks, but a
``custom_vjp`` has no forward mode, so on the supernet it is reverse-over-reverse
(:func:`zcjax.proxies.grasp.hvp_mode`), which differentiates the edges' backward functions.

MeCo and CRoZe: when a caller makes the contract's ``hooks`` collection mutable (MeCo does),
each edge also returns its ReLU and convolution outputs from inside the switch, and the cell
sows every potential ``hooked`` map with the static layer's hook count times its presence
(:meth:`SwitchCell._sow_hooked`), and its own output with the cell's hooks; other proxies'
programs carry no trace of them. CRoZe reads the stage features the shared skeleton declares and
the masked parameters (absent edges have zero weights and gradients, so their layer terms are
exactly 0).

Limits: :data:`EXACT_PROXIES` lists the proxies tested equal. The others use the static
network (eagerly in a sweep, see :mod:`zcjax.sweep.engine`): ``params`` and ``flops`` count the
module (the supernet holds every edge's parameters; a sweep takes them from the space's counts
instead); ``meco_opt`` draws channels per hook firing and needs static hook counts;
``meco_conv`` and ``croze_paper`` read every convolution's output, which the edges do not show
(both refuse supernet variables with that reason).
A switch whose index is *batched* (``vmap`` over genotypes) becomes a ``select`` that runs every
branch: on accelerators batch seeds, and shard or loop genotypes.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zcjax import contract
from zcjax.spaces import layers
from zcjax.spaces.layers import LayerConvention
from zcjax.spaces.nb201.genotype import EDGES, NUM_NODES, OPS, Genotype, as_genotype
from zcjax.spaces.nb201.network import build, skeleton

Array = jax.Array

#: Proxies whose supernet scores are tested equal to the static network's
#: (``tests/sweep/test_engine.py`` and, for those a sweep runs here, the golden cells'
#: ``test_engine_equals_eager``; zico, an ill-conditioned sum, to 1e-3: see there).
EXACT_PROXIES = frozenset({"grad_norm", "snip", "synflow", "plain", "l2_norm", "epsilon",
                           "epsilon_f64", "jacob_cov", "epe_nas", "zico", "nwot", "zen",
                           "zen_paper", "fisher", "grasp", "meco", "croze"})

#: The exact proxies a sweep runs on the supernet by default (``SweepConfig(compile="auto")``).
#: GraSP is exact here but much slower than the static network run eagerly (2 CPU cores, C=16
#: N=5, batch 64, quiet machine: all-3x3 cell 35.9 s against 6.1 s eagerly, small cell 7.3 s
#: against 1.9 s, after a 126 s compilation). Routing the edges' second-order convolutions
#: through canonical custom_vjp convolutions did not change that; the differentiated backward
#: (a switch over per-branch VJPs, each recomputing its forward) is the suspect, unprofiled.
#: MeCo and CRoZe run here: eagerly on the static network they took 24-28 s per cell together
#: (loaded machine), while their supernet program is compiled once.
PREFERRED_PROXIES = EXACT_PROXIES - {"grasp"}

_DN = ("NHWC", "HWIO", "NHWC")
_CONV = {OPS.index("nor_conv_1x1"): "_1x1", OPS.index("nor_conv_3x3"): ""}
_CONV_1X1, _CONV_3X3 = OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")
WEIGHT_SUFFIX = contract.WEIGHT_SUFFIX


def _conv(x: Array, w: Array) -> Array:
    p = w.shape[0] // 2
    return lax.conv_general_dilated(x, w, (1, 1), ((p, p), (p, p)), dimension_numbers=_DN)


@jax.custom_vjp
def conv_same(x: Array, w: Array) -> Array:
    """Stride-1 'same' convolution (NHWC, HWIO) whose gradient convolutions are canonical."""
    return _conv(x, w)


def _conv_fwd(x, w):
    return _conv(x, w), (x, w)


def _conv_bwd(res, dy):
    x, w = res
    p = w.shape[0] // 2
    # dx: correlate dy with the flipped kernel, input/output channels swapped.
    dx = _conv(dy, jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2)))
    # dw[a, b, i, o] = sum_{n,h,w} x_pad[n, h+a, w+b, i] dy[n, h, w, o]: a convolution with
    # channels i as batch, samples n as features and dy as a (H, W, n, o) kernel.
    dw = lax.conv_general_dilated(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(dy, (1, 2, 0, 3)),
                                  (1, 1), ((p, p), (p, p)), dimension_numbers=_DN)
    return dx, jnp.transpose(dw, (1, 2, 0, 3))


conv_same.defvjp(_conv_fwd, _conv_bwd)


def relu_conv_bn(x: Array, p: dict, gate: Array | None, use_bn: bool, conv=conv_same) -> Array:
    """:class:`zcjax.spaces.layers.ReLUConvBN` (stride 1) on a params subtree, as a function.

    ``gate`` (N, C_out), if given, multiplies the convolution's output (after its bias, before
    batch norm) per sample and channel; it is 1, and the derivative of a loss with respect to it
    is Fisher pruning's ``sum_spatial a * dL/da`` (:mod:`zcjax.proxies.fisher`).
    """
    return relu_conv_bn_var(x, p, gate, use_bn, conv)[0]


def relu_conv_bn_var(x: Array, p: dict, gate: Array | None, use_bn: bool,
                     conv=conv_same) -> tuple[Array, Array]:
    """:func:`relu_conv_bn` and its batch norm's per-channel batch variance (zeros without BN)."""
    return relu_conv_bn_parts(x, p, gate, use_bn, conv)[:2]


def relu_conv_bn_parts(x: Array, p: dict, gate: Array | None, use_bn: bool,
                       conv=conv_same) -> tuple[Array, Array, Array, Array]:
    """``(output, BN batch variance, ReLU output, convolution output)`` of the operation: what
    the static network's layers sow (the last two are the ReLU's and the convolution's
    ``hooked`` maps)."""
    params = p["conv"]["conv"]
    relu = nn.relu(x)
    y = conv(relu, params["kernel"])
    if "bias" in params:
        y = y + params["bias"]
    if gate is not None:
        y = y * gate[:, None, None, :]
    conv_out = y
    var = y[0, 0, 0] * 0  # zeros typed like y (under shard_map, "varying" like y)
    if use_bn:
        mean = jnp.mean(y, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(y - mean), axis=(0, 1, 2))
        y = (y - mean) * lax.rsqrt(var + layers.BN_EPS)
        if "scale" in p.get("bn", {}):
            y = y * p["bn"]["scale"] + p["bn"]["bias"]
    return y, var, relu, conv_out


def _branches(use_bn: bool, conv=conv_same):
    return [
        lambda x, p1, p3, g: layers.zero(x),
        lambda x, p1, p3, g: x,
        lambda x, p1, p3, g: relu_conv_bn(x, p1, g, use_bn, conv),
        lambda x, p1, p3, g: relu_conv_bn(x, p3, g, use_bn, conv),
        lambda x, p1, p3, g: layers.avg_pool_3x3(x),
    ]


def _stat_branches(use_bn: bool, conv=conv_same, parts: bool = False):
    """The branches returning ``(output, BN batch variance)`` (zeros for non-conv operations),
    and with ``parts`` also the ReLU and convolution outputs (``x * 0`` where there are none)."""
    def no_var(f):
        # x[0, 0, 0] * 0, not jnp.zeros: the branches' outputs must have one type, which under
        # shard_map includes being "varying" over the mesh axis like x.
        if parts:
            return lambda x, p1, p3, g: (f(x, p1, p3, g), x[0, 0, 0] * 0, x * 0, x * 0)
        return lambda x, p1, p3, g: (f(x, p1, p3, g), x[0, 0, 0] * 0)

    op_parts = relu_conv_bn_parts if parts else relu_conv_bn_var
    plain = _branches(use_bn, conv)
    return [
        no_var(plain[0]),
        no_var(plain[1]),
        lambda x, p1, p3, g: op_parts(x, p1, g, use_bn, conv),
        lambda x, p1, p3, g: op_parts(x, p3, g, use_bn, conv),
        no_var(plain[4]),
    ]


@functools.lru_cache(maxsize=None)
def _edge_fn(use_bn: bool, parts: bool = False):
    branches = _branches(use_bn)
    stat_branches = _stat_branches(use_bn, parts=parts)

    @jax.custom_vjp
    def edge_(op, x, p1, p3, gate):
        return lax.switch(op, stat_branches, x, p1, p3, gate)

    def fwd(op, x, p1, p3, gate):
        return edge_(op, x, p1, p3, gate), (op, x, p1, p3, gate)

    def bwd(res, cotangents):
        # The BN variance (and the parts) are only sown, read by forward-only proxies: their
        # cotangents are ignored.
        dy = cotangents[0]
        op, *args = res
        pullbacks = [lambda x, p1, p3, g, dy, f=f: jax.vjp(f, x, p1, p3, g)[1](dy)
                     for f in branches]
        return (None, *lax.switch(op, pullbacks, *args, dy))

    edge_.defvjp(fwd, bwd)
    return edge_


def edge_with_var(op: Array, x: Array, p1: dict, p3: dict, use_bn: bool = True,
                  custom_backward: bool = True, gate: Array | None = None,
                  parts: bool = False) -> tuple[Array, ...]:
    """:func:`edge` and the batch variance of the edge's batch norm (zeros if it has none);
    with ``parts`` also its ReLU and convolution outputs (see :func:`relu_conv_bn_parts`).

    With ``custom_backward`` the extra outputs carry no gradient (their cotangents are dropped).
    """
    if not custom_backward:
        return lax.switch(op, _stat_branches(use_bn, conv=_conv, parts=parts), x, p1, p3, gate)
    return _edge_fn(bool(use_bn), bool(parts))(op, x, p1, p3, gate)


def edge(op: Array, x: Array, p1: dict, p3: dict, use_bn: bool = True,
         custom_backward: bool = True, gate: Array | None = None) -> Array:
    """One cell edge: operation ``OPS[op]`` on ``x``, with the 1x1 / 3x3 conv params.

    ``gate`` (N, C) or ``None`` multiplies a convolution's pre-BN output (see
    :func:`relu_conv_bn`). ``custom_backward=False`` is the plain ``lax.switch`` with JAX's own
    AD (the slow baseline; it also allows forward-mode AD).
    """
    return edge_with_var(op, x, p1, p3, use_bn, custom_backward, gate)[0]


# -- parameter declaration at the static network's paths ---------------------------------

class _ConvParams(nn.Module):
    kernel: int
    in_features: int
    features: int
    use_bias: bool

    @nn.compact
    def __call__(self):
        fan_in = self.in_features * self.kernel ** 2
        shape = (self.kernel, self.kernel, self.in_features, self.features)
        out = {"kernel": self.param("kernel", layers.torch_kernel_init, shape)}
        if self.use_bias:
            out["bias"] = self.param("bias", layers.torch_bias_init(fan_in), (self.features,))
        return out


class _Conv(nn.Module):
    """``conv/conv/{kernel,bias}``, the nesting of :class:`zcjax.spaces.layers.Conv`."""

    kernel: int
    features: int
    use_bias: bool

    @nn.compact
    def __call__(self):
        return {"conv": _ConvParams(self.kernel, self.features, self.features, self.use_bias,
                                    name="conv")()}


class _BNParams(nn.Module):
    features: int

    @nn.compact
    def __call__(self):
        return {"scale": self.param("scale", nn.initializers.ones, (self.features,)),
                "bias": self.param("bias", nn.initializers.zeros, (self.features,))}


class _EdgeParams(nn.Module):
    kernel: int
    features: int
    convention: LayerConvention

    @nn.compact
    def __call__(self):
        out = {"conv": _Conv(self.kernel, self.features, self.convention.cell_conv_bias,
                             name="conv")()}
        if self.convention.cell_bn_affine:
            out["bn"] = _BNParams(self.features, name="bn")()
        return out


class SwitchCell(nn.Module):
    """A cell whose six operations come from a traced ``ops`` array.

    ``hooks``: forward hooks of the reference model that see the cell's output (as
    :class:`~zcjax.spaces.nb201.network.Cell`).
    """

    features: int
    convention: LayerConvention
    custom_backward: bool = True
    hooks: int = 1

    @nn.compact
    def __call__(self, x: Array, ops: Array, *, use_bn: bool = True) -> Array:
        show_hooked = self.is_mutable_collection(contract.HOOKS)
        nodes = [x]
        for to in range(1, NUM_NODES):
            total = None
            for frm in range(to):
                name = f"edge_{frm}_{to}"
                p3 = _EdgeParams(3, self.features, self.convention, name=name)()
                p1 = _EdgeParams(1, self.features, self.convention, name=name + "_1x1")()
                op = ops[EDGES.index((to, frm))]
                gate = self._fisher_gate(name, op, nodes[frm])
                y, var, *parts = edge_with_var(op, nodes[frm], p1, p3, use_bn,
                                               self.custom_backward, gate, parts=show_hooked)
                self._sow_site(op, nodes[frm], var, use_bn)
                if show_hooked:
                    self._sow_hooked(op, y, *parts, use_bn)
                total = y if total is None else total + y
            nodes.append(total)
        if show_hooked:
            layers.sow_hooked(self, nodes[-1], self.hooks)
        return nodes[-1]

    def _sow_hooked(self, op: Array, y: Array, relu: Array, conv: Array, use_bn: bool) -> None:
        """The edge's potential ``hooked`` maps, weighted by the hooks of the static network's
        layers (ReLU 1, convolution 1, batch norm 3, ``skip_connect`` 1, ``avg_pool_3x3`` 2)
        times the presence of the layer (0 where the edge lacks it)."""
        conv_edge = ((op == _CONV_3X3) | (op == _CONV_1X1)).astype(y.dtype)
        out_hooks = (3 * conv_edge if use_bn else 0 * conv_edge) + jnp.where(
            op == OPS.index("skip_connect"), 1.0, 0.0) + jnp.where(
            op == OPS.index("avg_pool_3x3"), 2.0, 0.0)
        for value, weight in ((relu, conv_edge), (conv, conv_edge), (y, out_hooks)):
            self.sow(contract.INTERMEDIATES, contract.HOOKED, value)
            self.sow(contract.INTERMEDIATES, contract.HOOKED + WEIGHT_SUFFIX,
                     weight.astype(y.dtype))

    def _fisher_gate(self, name: str, op: Array, x: Array) -> Array | None:
        """The edge's convolution gate when a ``"perturbations"`` collection asks for it, else
        ``None`` (no gate: the programs of other proxies carry no trace of it).

        The gate is ones plus ``perturbations/<cell>/<FISHER_GATE><edge>``; differentiating with
        respect to that gives Fisher pruning's per-(sample, channel) ``sum_spatial a * dL/da``
        of the edge's convolution (zero where the edge is not one). ``<FISHER_GATE><edge>_fan_in``
        is sown beside it: the fan-in of the chosen convolution (``C`` or ``9 C``), 0 otherwise.
        """
        key = contract.FISHER_GATE + name
        if not (self.is_mutable_collection("perturbations")
                or self.has_variable("perturbations", key)):
            return None
        channels = x.shape[-1]
        fan_in = jnp.where(op == _CONV_3X3, 9 * channels,
                           jnp.where(op == _CONV_1X1, channels, 0)).astype(x.dtype)
        self.sow(contract.INTERMEDIATES, key + contract.FAN_IN_SUFFIX, fan_in)
        return self.perturb(key, jnp.ones((x.shape[0], channels), x.dtype))

    def _sow_site(self, op: Array, x: Array, var: Array, use_bn: bool) -> None:
        """Sows what the static edge's ReLUConvBN sows, with its presence weight.

        Every potential site sows a value (finite; zeros where the edge is not a convolution)
        and ``<tag>_weight`` (1.0 where the static network has the site, else 0.0), read by
        :meth:`zcjax.proxies.context.Context.weighted_intermediates`. ``bn_var_count`` is the
        number of values (N H W) each batch variance averages (Zen-NAS's unbiased correction).
        """
        present = (op == _CONV_3X3) | (op == _CONV_1X1)
        weight = present.astype(x.dtype)
        sow = functools.partial(self.sow, contract.INTERMEDIATES)
        sow(contract.RELU_IN, jnp.where(present, x, jnp.zeros_like(x)))
        sow(contract.RELU_IN + WEIGHT_SUFFIX, weight)
        if use_bn:
            count = x.shape[0] * x.shape[1] * x.shape[2]
            sow(contract.BN_VAR, jnp.where(present, var, jnp.ones_like(var)))
            sow(contract.BN_VAR + WEIGHT_SUFFIX, weight)
            sow(contract.BN_VAR + contract.COUNT_SUFFIX, jnp.asarray(count, x.dtype))


class NB201Supernet(nn.Module):
    """:class:`~zcjax.spaces.nb201.network.NB201Network` for every cell at once.

    Variables: ``{"params": ..., "genotype": {"ops": int32 (6,)}}``. Outside the cells it is
    the static network (same modules, names and sown intermediates). ``custom_backward=False``
    gives the plain-switch baseline (see :func:`edge`).
    """

    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    convention: LayerConvention = layers.ZERO_COST
    custom_backward: bool = True

    @nn.compact
    def __call__(self, images: Array, *, use_bn: bool = True, dropout_rate: float = 0.0
                 ) -> Array:
        """Logits; ``dropout_rate > 0`` (training only, needs a ``"dropout"`` RNG) drops
        pooled features before the classifier (see :func:`~.network.skeleton`)."""
        ops = self.variable(contract.ARCHITECTURE, "ops",
                            lambda: jnp.zeros((len(EDGES),), jnp.int32)).value

        def cell(width: int, hooks: int, name: str) -> nn.Module:
            cell_ = SwitchCell(width, self.convention, self.custom_backward, hooks, name=name)
            return functools.partial(cell_, ops=ops)

        return skeleton(self, images, cell, use_bn, dropout_rate)


def build_supernet(*, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                   convention: "LayerConvention | str" = "zero_cost",
                   custom_backward: bool = True) -> NB201Supernet:
    return NB201Supernet(channels, cells_per_stage, num_classes,
                         layers.get_convention(convention), custom_backward)


def genotype_array(arch: "Genotype | str | int") -> np.ndarray:
    """The ``ops`` variable of a cell: its op indices, int32 (6,)."""
    return np.asarray(as_genotype(arch).op_indices, np.int32)


# -- parameters: the mapping to and from the static network -------------------------------

_ALL = {k: "|" + "|+|".join("|".join(f"{k}~{i}" for i in range(j)) for j in range(1, 4)) + "|"
        for k in ("nor_conv_3x3", "nor_conv_1x1")}


def _template_model(net: NB201Supernet, op: str):
    return build(_ALL[op], channels=net.channels, cells_per_stage=net.cells_per_stage,
                 num_classes=net.num_classes, convention=net.convention)


_TEMPLATE_INITS: dict = {}


def _template_init(net: NB201Supernet, image_shape: tuple):
    """One jitted init (compiled once) of the all-3x3 and all-1x1 static networks."""
    key = (net.channels, net.cells_per_stage, net.num_classes, net.convention.name, image_shape)
    if key not in _TEMPLATE_INITS:
        _TEMPLATE_INITS[key] = _make_template_init(net, image_shape)
    return _TEMPLATE_INITS[key]


def _make_template_init(net: NB201Supernet, image_shape: tuple):
    models = [_template_model(net, op) for op in ("nor_conv_3x3", "nor_conv_1x1")]
    zeros = jnp.zeros((1, *image_shape), jnp.float32)
    return jax.jit(lambda key: tuple(m.init(key, zeros)["params"] for m in models))


def init_params(net: NB201Supernet, key: Array, image_shape=(32, 32, 3)) -> dict:
    """Supernet params equal, edge by edge, to the static network's for the same init key."""
    p3, p1 = _template_init(net, tuple(image_shape))(key)
    out = dict(p3)
    for name, cell in p3.items():
        if name.startswith("cell_"):
            out[name] = {**cell, **{e + "_1x1": p1[name][e] for e in cell}}
    return out


def to_static(params: dict, arch: "Genotype | str | int") -> dict:
    """The static network's params for one cell, taken from supernet params."""
    ops = as_genotype(arch).op_indices
    out = {}
    for name, sub in params.items():
        if not name.startswith("cell_"):
            out[name] = sub
            continue
        cell = {}
        for (to, frm), op in zip(EDGES, ops):
            if op in _CONV:
                cell[f"edge_{frm}_{to}"] = sub[f"edge_{frm}_{to}{_CONV[op]}"]
        if cell:
            out[name] = cell
    return out


def mask_params(params: dict, ops: Array) -> dict:
    """Zeroes the parameters of edges whose operation (traced ``ops``) does not use them."""
    out = {}
    for name, sub in params.items():
        if not name.startswith("cell_"):
            out[name] = sub
            continue
        cell = {}
        for (to, frm) in EDGES:
            op = ops[EDGES.index((to, frm))]
            for suffix, idx in (("", OPS.index("nor_conv_3x3")), ("_1x1", OPS.index("nor_conv_1x1"))):
                key = f"edge_{frm}_{to}{suffix}"
                keep = op == idx
                cell[key] = jax.tree_util.tree_map(
                    lambda a, keep=keep: jnp.where(keep, a, jnp.zeros_like(a)), sub[key])
        out[name] = cell
    return out


def presence(params: dict, ops: Array) -> dict:
    """A tree like ``params`` of float32 scalars: 1 where the cell ``ops`` uses the parameter.

    It is the ``"presence"`` collection of :func:`variables_for` (read by Zen-NAS's Gaussian
    re-initialisation, :func:`zcjax.proxies.zen.gaussian_params`, so that unused edges take no
    random draws).
    """
    one = jnp.ones((), jnp.float32)
    out = {}
    for name, sub in params.items():
        if not name.startswith("cell_"):
            out[name] = jax.tree_util.tree_map(lambda a: one, sub)
            continue
        cell = {}
        for (to, frm) in EDGES:
            op = ops[EDGES.index((to, frm))]
            for suffix, idx in (("", _CONV_3X3), ("_1x1", _CONV_1X1)):
                key = f"edge_{frm}_{to}{suffix}"
                here = (op == idx).astype(jnp.float32)
                cell[key] = jax.tree_util.tree_map(lambda a, here=here: here, sub[key])
        out[name] = cell
    return out


def variables_for(params: dict, ops: Array, mask: bool = True) -> dict:
    """Variables to apply the supernet to one cell (``ops`` may be traced).

    ``{"params", "genotype": {"ops"}, "presence"}``; see :func:`mask_params`, :func:`presence`.
    """
    ops = jnp.asarray(ops, jnp.int32)
    return {contract.PARAMS: mask_params(params, ops) if mask else params,
            contract.ARCHITECTURE: {"ops": ops}, contract.PRESENCE: presence(params, ops)}


def static_equivalent(net: NB201Supernet, arch) -> nn.Module:
    """The static network computing what ``net`` computes for ``arch``."""
    return build(arch, channels=net.channels, cells_per_stage=net.cells_per_stage,
                 num_classes=net.num_classes, convention=net.convention)


def batch_genotypes(archs: Sequence) -> np.ndarray:
    """int32 (n, 6) op indices of several cells."""
    return np.stack([genotype_array(a) for a in archs])
