"""MeCo: minimum eigenvalues of the channel correlation matrices of the feature maps.

Formula::

    P(F)  = corrcoef of the channels of feature map F of the FIRST sample
            (rows = channels, observations = spatial positions), NaN / inf entries set to 0
    meco  = sum_{feature maps F} lambda_min(P(F))

Higher is better.

Paper: Jiang, Wang & Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation", NeurIPS 2023.
Reference: ``HamsterMimi/MeCo``, ``correlation/NAS_Bench_201.py`` (``get_score``, the script
behind the paper's NAS-Bench-201 correlations), on the zero-cost-nas NB201 model
(``correlation/foresight/models/nasbench2.py``): ``--batch_size 1`` (one real training image),
training mode, a forward hook on **every** module of ``net.named_modules()``; each hook takes
``output[0]`` (the first sample), reshapes it to (channels, H*W), ``torch.corrcoef``, zeroes NaN
and inf entries, and keeps the smallest real part of ``torch.linalg.eig``; NaN / inf results are
dropped and the rest summed.

Three registered variants:

``meco`` -- the reference, hook for hook
    Hooks fire on containers too, so one tensor can count several times. A network shows meco
    the tensors the reference's hooks see through the contract (:data:`zcjax.contract.HOOKED`):
    each site is sown with its multiplicity as weight, set by the space to match its reference
    model's module nesting. For the zero-cost-nas NB201 model (``zcjax.spaces.nb201``):

    ====================================  ====  ==============================================
    feature map (zcjax module)            times PyTorch modules whose hook sees it
    ====================================  ====  ==============================================
    stem conv output                      1     Conv2d
    stem BN output (``stem_bn``)          3     BatchNorm2d, ``stem.net``, ``stem``
    ReLU output inside ReLUConvBN         1     ReLU
    conv output inside ReLUConvBN         1     Conv2d
    BN output inside ReLUConvBN           3     BatchNorm2d, ``op`` Sequential, ReLUConvBN
    ``skip_connect`` edge output          1     Identity
    ``avg_pool_3x3`` edge output          2     POOLING, its AvgPool2d
    ``none`` edge output                  (0)   Zero: all-zero map, corr := 0, lambda = 0
    cell output                           1     SearchCell (+1, ``stack_cell`` Sequential,
                                                for the last cell of a stage)
    reduction shortcut: 2x2 avg pool      1     AvgPool2d
    reduction shortcut: 1x1 conv          2     Conv2d, ``residual`` Sequential
    reduction output                      1     ``reduction``
    last BN output (``last_bn``)          1     BatchNorm2d
    last ReLU output (``last_relu``)      2     ReLU, ``lastact`` Sequential
    pooled features, logits               (0)   one value per channel: corr := 0, lambda = 0
    ====================================  ====  ==============================================

    The maps are read from one extra forward pass (``use_bn=True``) in the order the layers
    sow them, which is the order in which PyTorch fires the hooks. The batch given is run as
    one batch (batch-norm statistics over all of it) and the first sample's maps are read, as
    the reference's hooks do for any batch size; with the reference's default batch of one
    image the two coincide. ``batch_size = 1``.

``meco_opt`` -- the reference's ``--measure meco_opt``
    The same hooks; each hook correlates 8 channels drawn at random without replacement
    (``random.sample``) and multiplies its smallest eigenvalue by ``channels / 8``. Draws use
    ``ctx.key``, one independent draw per hook firing. Deviation: with fewer than 8 channels the
    reference raises; zcjax uses every channel (factor 1).

``meco_conv`` -- one term per convolution (clean variant)
    The paper sums over the network's layers; the code's hooks on containers count some maps
    three times, count the cell and stage outputs, and give 0 for maps with a single position.
    ``meco_conv`` sums ``lambda_min`` once over the output of every convolution (the
    ``conv_out`` intermediates of the shared forward pass, first sample): our reading of "one
    term per layer", not a formula from the paper.

Linear algebra: the correlation matrix is symmetric, so ``eigvalsh`` replaces the general
``eig``. NaN: the reference's zeroing means a NaN feature map silently scores 0; zcjax returns
NaN when any feature map it reads is not finite (a ``none`` edge multiplying a NaN by 0 is not
read), never a sentinel.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zcjax import contract
from zcjax.profiling import pass_scope
from zcjax.proxies.base import register
from zcjax.proxies.context import Context

Array = jax.Array

#: Channels sampled per feature map by ``meco_opt``.
OPT_CHANNELS = 8

_PAPER = ("Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
          "Minimum Eigenvalue of Correlation, NeurIPS 2023")


# The per-map helpers are jitted: run eagerly (the blocks route), each compiles once per map
# shape instead of once per primitive and shape; under the caller's jit they are traced into it.

@jax.jit
def channel_matrix(feature: Array) -> Array:
    """The first sample of an NHWC map as (channels, positions), the reference's layout."""
    first = feature[0]
    return first.reshape(-1, first.shape[-1]).T


def masked_correlation(rows: Array) -> Array:
    """``torch.corrcoef(rows)`` with NaN / inf entries set to 0 (the reference's masking)."""
    centred = rows - jnp.mean(rows, axis=1, keepdims=True)
    cov = jnp.matmul(centred, centred.T, precision=jax.lax.Precision.HIGHEST)
    std = jnp.sqrt(jnp.diag(cov))
    corr = jnp.clip(cov / std[:, None] / std[None, :], -1.0, 1.0)
    return jnp.where(jnp.isfinite(corr), corr, 0.0)


def min_eigenvalue(rows: Array) -> Array:
    return jnp.linalg.eigvalsh(masked_correlation(rows))[0]


_stacked_min_eigenvalues = jax.jit(jax.vmap(min_eigenvalue))


@jax.jit
def _is_finite_map(feature: Array) -> Array:
    return jnp.all(jnp.isfinite(channel_matrix(feature)))


def min_eigenvalues(matrices: list[Array]) -> Array:
    """``min_eigenvalue`` of each matrix, as one array in the given order.

    Matrices of equal shape go through one batched ``eigvalsh``: one eigen-solver per shape
    instead of one per feature map keeps compile times low (hundreds of maps in NB201).
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, m in enumerate(matrices):
        groups.setdefault(tuple(m.shape), []).append(i)
    parts, order = [], []
    for idx in groups.values():
        parts.append(_stacked_min_eigenvalues(jnp.stack([matrices[i] for i in idx])))
        order.extend(idx)
    values = jnp.concatenate(parts)
    return values[jnp.argsort(jnp.asarray(order))]


def reference_feature_maps(ctx: Context) -> list[tuple[Array, Any]]:
    """``(feature map, hook count)`` of every tensor the reference's hooks read.

    The network's ``hooked`` sites (:data:`zcjax.contract.HOOKED`) of one forward pass, in the
    order sown; the count is the site's weight (a NumPy scalar, or a traced one where a supernet
    weighs a site by its presence). Computed once per Context (``meco`` and ``meco_opt`` share
    the pass).
    """
    shared = vars(ctx).setdefault("_meco_maps", {})
    if "maps" not in shared:
        with jax.named_scope(pass_scope("meco_forward")):  # shared by meco and meco_opt
            _, state = ctx.apply(mutable=[contract.INTERMEDIATES, contract.HOOKS])
        maps = contract.sites(state.get(contract.INTERMEDIATES, {}), contract.HOOKED)
        if not maps:
            raise ValueError(
                f"meco needs the network's hooked feature maps ('{contract.HOOKED}' "
                "intermediates, see zcjax.contract); this network sows none")
        shared["maps"] = [(f, 1 if w is None else w) for f, w in maps]
    return shared["maps"]


def _counts(maps) -> Array:
    counts = [w for _, w in maps]
    if all(isinstance(c, (int, float, np.number)) for c in counts):
        return jnp.asarray(np.asarray(counts, np.float32))
    return jnp.stack([jnp.asarray(c, jnp.float32) for c in counts])


def _all_finite(features, weights=None) -> Array:
    """Every map read is finite (maps of weight 0, absent sites, are not read)."""
    checks = []
    for i, f in enumerate(features):
        ok = _is_finite_map(f)
        if weights is not None and not isinstance(weights[i], (int, float, np.number)):
            ok = ok | (weights[i] == 0)
        checks.append(ok)
    return jnp.all(jnp.stack(checks))


def _sum_finite(values: Array) -> Array:
    """Sum, leaving out NaN / inf terms as the reference does."""
    return jnp.sum(jnp.where(jnp.isfinite(values), values, 0.0))


@register("meco", needs_labels=False, needs_gradients=False, data_free=False,
          higher_is_better=True, batch_size=1, paper=_PAPER,
          reference="HamsterMimi/MeCo correlation/NAS_Bench_201.py (--measure meco)")
def meco(ctx: Context) -> Array:
    """Sum of the smallest eigenvalues of the first sample's channel correlation at every
    PyTorch module output of the zero-cost-nas NB201 model (hook multiplicities included).

    See :mod:`zcjax.proxies.meco`.
    """
    maps = reference_feature_maps(ctx)
    values = _counts(maps) * min_eigenvalues([channel_matrix(f) for f, _ in maps])
    finite = _all_finite([f for f, _ in maps], [w for _, w in maps])
    return jnp.where(finite, _sum_finite(values), jnp.nan)


@functools.partial(jax.jit, static_argnames="take")
def _sampled_min_eigenvalues(key: Array, stacked: Array, owner: Array, take: int) -> Array:
    """Per firing ``f`` (on map ``owner[f]`` of ``stacked``, (M, C, P)): ``take`` channels drawn
    without replacement, their smallest correlation eigenvalue, times ``C / take``."""
    c = stacked.shape[1]
    uniform = jax.random.uniform(key, (owner.shape[0], c))
    _, idx = jax.lax.top_k(uniform, take)                                   # (F, take)
    sampled = stacked[owner[:, None], idx]                                  # (F, take, P)
    return jax.vmap(min_eigenvalue)(sampled) * (c / take)


def sampled_min_eigenvalue_sum(maps: list[tuple[Array, Any]], key: Array,
                               channels: int = OPT_CHANNELS) -> Array:
    """``meco_opt``'s sum: per hook firing, ``channels`` random channels, scaled by C / channels.

    The hook counts must be static (each firing draws its own channels); a supernet's traced
    site weights are refused.

    Each firing draws uniform numbers, one per channel; the indices of the ``channels`` largest
    are a uniform sample without replacement. Maps of one shape are stacked and every firing on
    them handled by one ``top_k``, one gather and one batched eigen-solver (few operations keep
    compile times low; there are about a thousand firings in the NB201 benchmark network).
    """
    try:
        counts = [int(c) for _, c in maps]
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError("meco_opt needs static hook counts (a static network); this network "
                         "weighs its hooked sites with traced values") from None
    rows = [channel_matrix(f) for f, _ in maps]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(tuple(r.shape), []).append(i)
    keys = jax.random.split(key, len(groups))
    values = []
    for g, (shape, members) in enumerate(groups.items()):
        owner = np.asarray([m for m, i in enumerate(members) for _ in range(counts[i])],
                           np.int32)
        if owner.size == 0:
            continue
        stacked = jnp.stack([rows[i] for i in members])                   # (M, C, P)
        values.append(_sampled_min_eigenvalues(keys[g], stacked, jnp.asarray(owner),
                                               min(channels, shape[0])))
    values = jnp.concatenate(values) if values else jnp.zeros((0,), jnp.float32)
    return jnp.where(_all_finite([f for f, _ in maps]), _sum_finite(values), jnp.nan)


@register("meco_opt", needs_labels=False, needs_gradients=False, data_free=False,
          higher_is_better=True, batch_size=1, paper=_PAPER, draws_in_sown_order=True,
          reference="HamsterMimi/MeCo correlation/NAS_Bench_201.py (--measure meco_opt)")
def meco_opt(ctx: Context) -> Array:
    """MeCo with 8 random channels per hook, each minimum eigenvalue scaled by channels / 8.

    See :mod:`zcjax.proxies.meco`.
    """
    return sampled_min_eigenvalue_sum(reference_feature_maps(ctx), ctx.key)


@register("meco_conv", needs_labels=False, needs_gradients=False, data_free=False,
          higher_is_better=True, batch_size=1, paper=_PAPER,
          reference="clean variant: one term per convolution output (conv_out), first sample")
def meco_conv(ctx: Context) -> Array:
    """Sum over convolutions of the smallest eigenvalue of the first sample's channel
    correlation of the convolution's output.

    See :mod:`zcjax.proxies.meco`.
    """
    if contract.has_architecture_data(ctx.variables):
        raise ValueError("meco_conv reads every convolution's output, which a supernet's cell "
                         "edges do not show; score it on the architecture's static network")
    maps = ctx.intermediates(contract.CONV_OUT)
    if not maps:
        raise ValueError("the network sowed no convolution outputs ('conv_out')")
    values = min_eigenvalues([channel_matrix(f) for f in maps])
    return jnp.where(_all_finite(maps), _sum_finite(values), jnp.nan)
