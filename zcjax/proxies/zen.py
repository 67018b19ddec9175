"""Zen-NAS: expressivity of a Gaussian-initialised network, corrected by its batch norms.

Formula (one repeat)::

    theta     <- every conv / linear kernel ~ N(0, 1); every bias = 0; every BN scale = 1
    x, e      ~  N(0, 1) of the batch's shape                     (images are not used)
    F(.)      =  the feature map entering the global average pool (after the last BN + ReLU)
    delta     =  mean_n sum_{h,w,c} | F(x)_n - F(x + alpha e)_n |,      alpha = 0.01
    zen       =  log(delta) + sum_{BN layers b} log( sqrt( mean_c var_b,c ) )

Higher is better.

Paper: Lin, Wang, Sun, Chen, Sun, Qian, Li & Jin, "Zen-NAS: A Zero-Shot NAS for
High-Performance Image Recognition", ICCV 2021.
Reference code: ``idstcv/ZenNAS``, ``ZeroShotProxy/compute_zen_score.py`` (``repeat=1`` and
batch 64 in its CIFAR search scripts), ported unchanged to ``automl/NASLib``
(``naslib/predictors/utils/pruners/measures/zen.py``, ``repeat=1``, ``mixup_gamma=1e-2``), whose
NAS-Bench-201 ``forward_before_global_avg_pool`` returns the input of the
``AdaptiveAvgPool2d``: after the last BN and ReLU, which is zcjax's ``pre_pool`` intermediate.
``alpha`` multiplies the noise; ``delta`` is not divided by ``alpha``.

Two registered variants differ only in ``var_b``:

``zen`` -- the reference code
    ``var_b`` is the batch norm's ``running_var`` after the two forward passes (clean, then
    perturbed) that the code runs in training mode under ``torch.no_grad()``: PyTorch's
    default ``momentum = 0.1`` from the initial ``running_var = 1`` with the *unbiased* batch
    variance ``v* = v n / (n - 1)`` (``n = N H W``) gives::

        running_var = 0.81 + 0.09 v*_clean + 0.1 v*_perturbed

    zcjax networks keep no running statistics; this is computed from the batch variances of
    the two passes. Every batch norm counts. (The NB201 cell batch norms of NASLib and of
    zero-cost-nas are built with ``track_running_stats=False``, so ``running_var`` is ``None``
    and the reference raises there; zcjax treats every batch norm as PyTorch's default
    ``BatchNorm2d``, which is the setting of the Zen-NAS code itself.)

``zen_paper`` -- the paper's definition
    ``var_b`` is the batch variance (biased, as batch norm normalises with it) of the clean
    pass: the paper's ``sigma_b = sqrt(sum_c sigma_b,c^2 / m)``.

Fused evaluation: ``zen`` and ``zen_paper`` on one Context share the two forward passes.
Randomness: ``ctx.key`` draws the weights, ``x`` and ``e``; the batch's images only give the
shape. The variables' *structure* is used, their values are not. Parameters other than kernels,
biases and BN scales (none in zcjax spaces) are left as they are.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.profiling import pass_scope
from zcjax.proxies.base import path_names, register
from zcjax.proxies.context import Context

Array = jax.Array

#: ``mixup_gamma`` of the reference: the scale of the input perturbation.
ALPHA = 1e-2
#: PyTorch's default BatchNorm momentum (the reference's running_var update).
BN_MOMENTUM = 0.1
#: Optional variables collection: a tree like ``params`` of 0/1 scalars, 0 for parameters of
#: layers the network does not use (set by supernets; see :func:`gaussian_params`).
PRESENCE = contract.PRESENCE


def gaussian_params(params, key: Array, presence=None):
    """The reference's ``network_weight_gaussian_init``: kernels ~ N(0, 1), biases 0, scales 1.

    All kernels are drawn in one ``jax.random.normal`` call (one random-bit kernel instead of
    one per layer, which compiles much faster) and cut into shape, in tree order.

    ``presence`` (optional, a tree like ``params`` of 0/1 scalars, possibly traced): parameters
    with presence 0 belong to layers the network does not use (the NB201 supernet's unused
    edges). They are set to 0 and take no draws, so the kernels that are present receive
    exactly the draws of the network without the absent ones: each kernel starts at the total
    size of the *present* kernels before it (a traced offset), and with JAX's partitionable
    Threefry (the default, ``jax_threefry_partitionable``) the first ``m`` of ``n`` draws do
    not depend on ``n``.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    present = ([None] * len(leaves) if presence is None
               else jax.tree_util.tree_leaves(presence))
    if len(present) != len(leaves):
        raise ValueError("presence must have one scalar per parameter")
    kernels = [leaf for path, leaf in leaves if path_names(path)[-1] == "kernel"]
    total = sum(int(leaf.size) for leaf in kernels)
    dtype = kernels[0].dtype if kernels else jnp.float32
    draws = jax.random.normal(key, (total,), dtype)
    new, offset = [], 0
    for (path, leaf), here in zip(leaves, present):
        name = path_names(path)[-1]
        if name == "kernel":
            size = leaf.size
            if here is None:
                leaf = draws[offset:offset + size].reshape(leaf.shape)
                offset += size
            else:
                start = jnp.asarray(offset, jnp.int32)
                leaf = jax.lax.dynamic_slice(draws, (start,), (size,)).reshape(leaf.shape)
                leaf = jnp.where(here != 0, leaf, jnp.zeros_like(leaf))
                offset = offset + jnp.where(here != 0, size, 0).astype(jnp.int32)
        elif name == "bias":
            leaf = jnp.zeros_like(leaf)
        elif name == "scale":
            leaf = jnp.ones_like(leaf) if here is None else jnp.where(
                here != 0, jnp.ones_like(leaf), jnp.zeros_like(leaf))
        new.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, new)


def _features_and_bn_stats(ctx: Context, variables, images):
    """(pre-pool features, [(biased batch variance per channel, n, weight)] for every BN).

    Batch norms come in the order the network sowed them, those sown without a weight (the
    layers every architecture has) first, then a supernet's potential sites: the order zcjax
    has summed the BN terms in since its first release (sums move with order at float
    rounding only).
    """
    _, state = ctx.apply(variables, images, mutable=[contract.INTERMEDIATES])
    sown = state.get(contract.INTERMEDIATES, {})
    features = contract.values(sown, contract.PRE_POOL)
    if len(features) != 1:
        raise ValueError(
            f"zen needs exactly one '{contract.PRE_POOL}' feature map, found {len(features)}")
    stats = contract.bn_sites(sown)
    return features[0], ([s for s in stats if s[2] is None]
                         + [s for s in stats if s[2] is not None])


def _passes(ctx: Context):
    """The two forward passes both variants read, computed once per Context."""
    shared = vars(ctx).setdefault("_zen_passes", {})
    if "passes" not in shared:
        with jax.named_scope(pass_scope("zen_passes")):  # shared by zen and zen_paper
            k_w, k_x, k_e = jax.random.split(ctx.key, 3)
            presence = ctx.variables.get(PRESENCE)
            variables = {**ctx.variables, "params": gaussian_params(ctx.params, k_w, presence)}
            shape, dtype = ctx.images.shape, ctx.images.dtype
            x = jax.random.normal(k_x, shape, dtype)
            x_mix = x + ALPHA * jax.random.normal(k_e, shape, dtype)
            shared["passes"] = (_features_and_bn_stats(ctx, variables, x),
                                _features_and_bn_stats(ctx, variables, x_mix))
    return shared["passes"]


def _zen(ctx: Context, running_var: bool) -> Array:
    (f, stats), (f_mix, stats_mix) = _passes(ctx)
    delta = jnp.mean(jnp.sum(jnp.abs(f - f_mix), axis=tuple(range(1, f.ndim))))
    bn_term = jnp.zeros((), jnp.float32)
    for (v, n, w), (v_mix, _, _) in zip(stats, stats_mix):
        if running_var:
            if isinstance(n, int):
                unbiased = n / (n - 1) if n > 1 else float("nan")
            else:  # a sown count (traced scalar)
                unbiased = jnp.where(n > 1, n / jnp.maximum(n - 1, 1), jnp.nan)
            m = BN_MOMENTUM
            var = (1 - m) ** 2 + (1 - m) * m * v * unbiased + m * v_mix * unbiased
        else:
            var = v
        term = jnp.log(jnp.sqrt(jnp.mean(var)))
        if w is not None:  # a site of a layer the network may lack: weight 0 adds nothing
            term = jnp.where(w != 0, w * term, 0.0)
        bn_term = bn_term + term
    return jnp.log(delta) + bn_term


_PAPER = ("Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, "
          "ICCV 2021")


@register("zen", needs_labels=False, needs_gradients=False, data_free=True,
          higher_is_better=True, batch_size=64, paper=_PAPER,
          reference="idstcv/ZenNAS ZeroShotProxy/compute_zen_score.py "
                    "(= automl/NASLib measures/zen.py)")
def zen(ctx: Context) -> Array:
    """``log E|F(x) - F(x + 0.01 e)| + sum_BN log sqrt(mean running_var)`` on a N(0,1)-weight
    network and N(0,1) inputs, running_var as PyTorch leaves it after the two passes.

    See :mod:`zcjax.proxies.zen`.
    """
    return _zen(ctx, running_var=True)


@register("zen_paper", needs_labels=False, needs_gradients=False, data_free=True,
          higher_is_better=True, batch_size=64, paper=_PAPER,
          reference="the paper's formula: batch variance of the clean pass in the BN term")
def zen_paper(ctx: Context) -> Array:
    """Zen-score with the batch-norm term from the clean pass's batch variance (the paper).

    See :mod:`zcjax.proxies.zen`.
    """
    return _zen(ctx, running_var=False)
