"""CRoZe: consistency of a network and a robust surrogate on clean and perturbed inputs.

Ha, Kim & Hwang, "Generalizable Lightweight Proxy for Robust Neural Architecture Search against
Diverse Perturbations", NeurIPS 2023 (arXiv:2306.05031). Reference implementation:
``HyeonjeongHa/CRoZe``, ``zero_cost_methods/pruners/measures/croze.py`` with ``adj_weights``
and ``get_layer_metric_array_adv_feats`` from ``zero_cost_methods/pruners/p_utils.py``, on the
NAS-Bench-201 model of ``nasbench_space/models/nasbench2*.py`` (the zero-cost-nas model).

Two registered variants:

``croze`` -- the reference code, quirks included (:data:`REFERENCE`)
--------------------------------------------------------------------
1. **Network copy.** The measure is registered with ``bn=False``: the network is rebuilt with
   ``use_bn=False``, which removes the batch norms of the stem, of the cells and before the
   classifier -- but *not* those of the two residual reduction blocks, whose ``ReLUConvBN`` are
   built without the ``use_bn`` flag. Those keep affine batch norm in training mode. That is
   what the contract's ``use_bn=False`` builds (:mod:`zcjax.contract`; each space removes batch
   norm where its reference does), so ``bn="reference"`` applies the network with
   ``use_bn=False``.
2. **|theta|.** Every parameter (kernels, biases, batch-norm scales and shifts) is replaced by its
   absolute value (``linearize``, carried over from SynFlow) -- in both the clean network and
   the copy that becomes the surrogate.
3. **Clean pass.** ``g = d CE(f(|theta|, x), y) / d theta`` (mean cross-entropy), and the clean
   features.
4. **Robust surrogate** (one adversarial weight perturbation step, as AWP): an SGD step of
   learning rate ``lr = 1e-3`` on ``-CE`` gives ``diff = lr * g`` (the same gradient as step 3:
   same network, same batch, same mode); for every parameter with more than one dimension whose
   name contains ``weight`` -- conv and linear kernels -- ``theta_r = |theta| + gamma *
   ||theta_l|| / (||diff_l|| + 1e-30) * diff_l`` with ``gamma = 2.0`` (twice the layer's norm).
   Biases and batch-norm parameters are not perturbed.
5. **Input perturbation** (``fgsm_attack``): ``x_r = clamp(x - eps * sign(d CE(f(theta_r, x),
   y) / d x), 0, 1)`` with ``eps = 0.01``. Quirks: the step *subtracts* the gradient sign (it
   lowers the loss, the opposite of FGSM), and the clamp to ``[0, 1]`` is applied to images that
   are already normalised (mean/std), which flattens every value outside ``[0, 1]``.
6. **Perturbed pass.** Features of ``f(theta_r, x_r)`` and ``g_r = d CE(f(theta_r, x_r), y) / d
   theta_r``. Quirk: the surrogate's gradients are not zeroed after step 5, whose backward pass
   also accumulated ``d CE(f(theta_r, x), y) / d theta_r`` into them; so ``g_r`` is the sum of
   both gradients (``accumulate_fgsm_grads=True``).
7. **Score.** For every convolution and linear layer ``l`` with a gradient (those on the forward
   path), with ``cos`` PyTorch's ``CosineSimilarity(dim=0)``::

       w_l = sum(1 + cos(theta_r_l, |theta_l|))       # over dim 0 = output channels
       s_l = sum(|cos(g_r_l, g_l)|)                   # over dim 0 = output channels
       f_l = sum(1 + cos(z_r_k(l), z_k(l)))           # over dim 0 = the batch
       croze = sum_l |w_l * s_l * f_l|

   Quirk: ``dim=0`` makes each term a *sum* of cosines -- one per input channel and kernel tap
   for weights and gradients, one per feature-map entry for features -- not one cosine per
   layer, so layers weigh by their fan-in and by the size of their feature map. In Flax layout
   (kernels ``(kh, kw, in, out)``, features NHWC) the cosine runs over the last kernel axis and
   over the batch axis. The cosine is the PyTorch 1.10 one (the pinned version):
   ``x.y / sqrt(max(|x|^2 |y|^2, eps^2))``, ``eps = 1e-8``; a zero vector gives 0, so a layer
   whose gradient is zero (e.g. it feeds only a ``none`` edge) contributes 0.
8. **Features** ``z_k`` are a few per network, not one per layer: those the reference's model
   returns beside its logits, which the network declares through the contract
   (:data:`zcjax.contract.STAGE_OUT`, in order), with the feature each layer is compared on
   (:data:`zcjax.contract.STAGE_OF`). For NAS-Bench-201 (``zcjax.spaces.nb201.network
   .stage_layout``): ``z_0`` the stem output, ``z_1`` and ``z_2`` the outputs of the two
   reduction blocks, ``z_3`` the output of the last cell, and ``z_4`` the globally pooled
   features entering the classifier; layer ``l`` uses ``z_k(l)`` with ``k = (number of cells
   entered so far) // 5`` (``+1`` for the classifier): the stem uses ``z_0``, the first four
   cells of stage ``s`` use ``z_s`` but the fifth uses ``z_{s+1}``, the reduction after stage
   ``s`` uses ``z_{s+1}`` and the classifier ``z_4``.
9. **Precision.** The reference casts both networks to float64 (``net.double()``), and it needs
   to: with ``|theta|`` and no batch norm in the cells, activations grow by orders of magnitude
   per cell, and the reductions' shortcut (pool + 1x1 conv, no batch norm) carries them past the
   reductions' batch norm. On the benchmark network (C=16, N=5) a cell of 3x3 convolutions
   reaches logits of ~1e44, past float32's 3e38. So ``croze`` computes in float64 inside
   (``double=True``: a local ``jax.enable_x64`` scope, whatever the global setting; checked
   under ``jit`` and ``vmap``) and returns a float32 score. Cosines and norms are also
   computed scale-safely (each vector divided by its largest magnitude first).
   It needs float64's range, not the precision of float64 convolutions, which XLA:CPU runs
   2.5-18x slower than float32 ones (18x on NB201's first stage: 32x32, 16 channels). By
   default the convolutions (forward and gradient) are computed in float32 on operands scaled
   by powers of two, everything else in float64 (:mod:`zcjax.scaled_convolutions`). On
   NAS-Bench-201 (C=16, N=5, batch 64, 2-core CPU, cell 1462): 16.7 s -> 4.5 s per cell on the
   supernet, 18.5 s -> 10.4 s eagerly with compiled blocks. Measured agreement with the
   all-float64 score: 0 to 3.6e-7 relative over six NB201 cells (a few float32 ulps), the same
   float32 score on three NB301 architectures (benchmark network, batch 16).
   ``float64_convolutions=True`` (an option of the registered ``croze``) computes them in
   float64, the reference's arithmetic.

The batch of the reference experiments is 8 images (``main.py --batch_size 8``), one batch,
seed 42. CRoZe draws no random numbers (no random start): ``key`` is ignored. Higher is better
(``main.py`` takes the argmax).

``croze_paper`` -- the formula of the paper (:data:`PAPER`)
------------------------------------------------------------
The same surrogate and score structure, ``sum_m |(1 + cos(theta_r_m, theta_m)) * |cos(g_r_m,
g_m)| * (1 + cos(z_r_m, z_m))|``, with the code's quirks removed as we read the paper: the
network as given (signed weights, every batch norm in training mode), an FGSM step that *raises*
the loss (``x_r = x + eps * sign(grad)``, no clamp), ``g_r`` the gradient on ``x_r`` only, one
cosine per layer over the flattened tensors, and each layer's own output as its feature ``z_m``
(the convolution output, or the logits for the classifier). With every batch norm in place
nothing overflows, so it runs in the parameters' dtype (``double=False``) and its clean pass is
the shared forward and backward of the :class:`~zcjax.proxies.context.Context`. ``gamma``,
``lr`` and ``eps`` are the code's values.

The reference variant needs a network that declares its stage features (``stage_out`` and
``stage_of``, :mod:`zcjax.contract`); the paper variant needs only convolutions that sow
``conv_out`` and at most one linear layer, whose output must be the logits.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.proxies.base import (ApplyFn, Variables, cross_entropy, is_layer_weight, path_names,
                                register)
from zcjax.proxies.context import Context
from zcjax.scaled_convolutions import float32_convolutions

Array = jax.Array

#: The ``EPS`` of the reference's ``adj_weights`` (``p_utils.py``).
AWP_EPS = 1e-30
#: The ``eps`` of ``torch.nn.CosineSimilarity``.
COSINE_EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class CrozeConfig:
    """The choices that distinguish the reference code from the paper's formula.

    Attributes:
      gamma: weight-perturbation step relative to each layer's norm (reference 2.0).
      lr: learning rate of the reference's SGD step; it cancels in the normalisation except
        against ``AWP_EPS``.
      fgsm_eps: input step size (reference 0.01).
      fgsm_sign: ``-1``: ``x - eps * sign(grad)`` (reference); ``+1``: FGSM proper.
      clamp: ``(lo, hi)`` the perturbed input is clipped to (reference ``(0, 1)``), or None.
      abs_params: use ``|theta|`` for every parameter (reference True).
      accumulate_fgsm_grads: add the FGSM pass's parameter gradient to ``g_r`` (reference True).
      cosine: ``"dim0"`` (a sum of PyTorch ``dim=0`` cosines, reference) or ``"flat"`` (one
        cosine per layer over the flattened tensors).
      features: ``"stage"`` (the reference's five features and its layer-to-feature map) or
        ``"layer"`` (each layer's own output).
      bn: ``"reference"`` (the network applied with ``use_bn=False``: batch norm only where the
        reference's ``bn=False`` copy keeps it, the reduction blocks in NAS-Bench-201) or
        ``"all"`` (every batch norm).
      double: compute in float64 (the reference's ``net.double()``), whatever JAX's global x64
        setting; the score is returned as float32. False: the parameters' dtype.
      float64_convolutions: with ``double``, run the convolutions in float64 too (the
        reference's arithmetic). False (the default): float64's range with float32 products
        (:mod:`zcjax.scaled_convolutions`): on NB201's benchmark network 3.7x faster on the
        supernet and 1.8x eagerly with compiled blocks, little on NB301's eager route; the
        scores agree to a few float32 ulps (module doc, step 9).
    """

    gamma: float = 2.0
    lr: float = 1e-3
    fgsm_eps: float = 0.01
    fgsm_sign: int = -1
    clamp: tuple[float, float] | None = (0.0, 1.0)
    abs_params: bool = True
    accumulate_fgsm_grads: bool = True
    cosine: str = "dim0"
    features: str = "stage"
    bn: str = "reference"
    double: bool = True
    float64_convolutions: bool = False

    def __post_init__(self):
        if self.fgsm_sign not in (-1, 1):
            raise ValueError(f"fgsm_sign must be -1 or +1, got {self.fgsm_sign}")
        if self.cosine not in ("dim0", "flat"):
            raise ValueError(f"cosine must be 'dim0' or 'flat', got {self.cosine!r}")
        if self.features not in ("stage", "layer"):
            raise ValueError(f"features must be 'stage' or 'layer', got {self.features!r}")
        if self.bn not in ("reference", "all"):
            raise ValueError(f"bn must be 'reference' or 'all', got {self.bn!r}")


#: The reference code's behaviour (registered as ``croze``).
REFERENCE = CrozeConfig()
#: The paper's formula (registered as ``croze_paper``).
PAPER = CrozeConfig(fgsm_sign=1, clamp=None, abs_params=False, accumulate_fgsm_grads=False,
                    cosine="flat", features="layer", bn="all", double=False)


# -- numerics -------------------------------------------------------------------------------

def _safe_scale(x: Array, axis) -> Array:
    s = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    return jnp.where(s > 0, s, jnp.ones_like(s))


def torch_cosine(a: Array, b: Array, axis=None, eps: float = COSINE_EPS) -> Array:
    """PyTorch 1.10's ``cosine_similarity``: ``a.b / sqrt(max(|a|^2 |b|^2, eps^2))`` along ``axis``.

    ``axis=None`` takes one cosine of the flattened arrays. Each input is divided by its largest
    magnitude first, so the squared norms cannot overflow (the value is unchanged).
    """
    if axis is None:
        a, b, axis = jnp.ravel(a), jnp.ravel(b), 0
    sa, sb = _safe_scale(a, axis), _safe_scale(b, axis)
    an, bn_ = a / sa, b / sb
    num = jnp.sum(an * bn_, axis=axis)
    den = jnp.sqrt(jnp.sum(an * an, axis=axis)) * jnp.sqrt(jnp.sum(bn_ * bn_, axis=axis))
    scale = jnp.squeeze(sa, axis) * jnp.squeeze(sb, axis)
    return num / jnp.maximum(den, eps / scale)


def _norm(x: Array) -> Array:
    """Frobenius norm without overflow of the squares."""
    s = jnp.max(jnp.abs(x))
    s = jnp.where(s > 0, s, jnp.ones_like(s))
    return s * jnp.sqrt(jnp.sum(jnp.square(x / s)))


# -- network plumbing -----------------------------------------------------------------------

def _stage_features(sown: Mapping) -> tuple[list[Array], Mapping[tuple[str, ...], int]]:
    """The network's declared stage features and its ``{path prefix: feature}`` layout."""
    try:
        return contract.stage_layout(sown)
    except ValueError as e:
        raise ValueError(f"croze's reference features: {e}; use croze_paper (per-layer "
                         "features) for networks that do not declare stages") from None


def _layer_features(sown: Mapping, logits: Array, params) -> dict[tuple[str, ...], Array]:
    """Each layer's own output, keyed by the kernel's path: conv_out, or the logits."""
    outs: dict[tuple[str, ...], list[Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(sown)[0]:
        names = path_names(path)
        if contract.CONV_OUT in names:
            module = names[:names.index(contract.CONV_OUT)]
            outs.setdefault(module + ("conv", "kernel"), []).append(leaf)
    kernels = [path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
               if is_layer_weight(p)]
    dense = [k for k in kernels if k[-2] == "dense"]
    if len(dense) > 1:
        raise ValueError("croze with per-layer features supports one linear layer (the "
                         f"classifier), found {len(dense)}")
    feats = {k: (v[0] if len(v) == 1 else jnp.concatenate([jnp.ravel(x) for x in v]))
             for k, v in outs.items()}
    for k in dense:
        feats[k] = logits
    missing = [k for k in kernels if k not in feats]
    if missing:
        raise ValueError(f"no output feature for layers {['/'.join(k) for k in missing]}")
    return feats


# -- the proxy ------------------------------------------------------------------------------

# The per-layer helpers below are jitted: run eagerly (the blocks route), each compiles once
# per layer shape instead of once per primitive and shape (NB301's tiny network: 715 small
# compilations for croze); under the caller's jit or vmap they are traced into its program.

@jax.jit
def _perturb_layer(w: Array, g: Array, gamma: Array | float, lr: Array | float) -> Array:
    diff = lr * g
    return w + gamma * (_norm(w) / (_norm(diff) + AWP_EPS)) * diff


def _perturb_weights(params, grads, gamma, lr):
    """One layer-wise adversarial weight perturbation step (the reference's ``adj_weights``)."""

    def step(path, w, g):
        return _perturb_layer(w, g, gamma, lr) if is_layer_weight(path) else w

    return jax.tree_util.tree_map_with_path(step, params, grads)


@functools.partial(jax.jit, static_argnames="cosine")
def _layer_score(w, w_r, g, g_r, z, z_r, cosine: str) -> Array:
    if cosine == "dim0":
        # PyTorch dim 0 of a weight is the output channel: Flax's last kernel axis.
        w_sim = jnp.sum(1 + torch_cosine(w_r, w, axis=-1))
        g_sim = jnp.sum(jnp.abs(torch_cosine(g_r, g, axis=-1)))
        z_sim = jnp.sum(1 + torch_cosine(z_r, z, axis=0))
    else:
        w_sim = 1 + torch_cosine(w_r, w)
        g_sim = jnp.abs(torch_cosine(g_r, g))
        z_sim = 1 + torch_cosine(z_r, z)
    return jnp.abs(w_sim * g_sim * z_sim)


def _total_score(layers_: list, cosine: str) -> Array:
    """``sum_l |w_l * s_l * f_l|`` over ``(w, w_r, g, g_r, z, z_r)`` tuples, one per layer."""
    return jnp.sum(jnp.stack([_layer_score(*args, cosine) for args in layers_]))


def _loss_grads(apply_fn, bn, others, params, images, labels):
    """((d loss / d params, d loss / d images), (logits, intermediates)): one forward and
    backward pass. Not jitted here: under the caller's ``jit`` it is part of one program, and
    run eagerly it compiles nothing per network (each primitive once per shape)."""

    def loss(p, x):
        logits, state = apply_fn({**others, contract.PARAMS: p}, x, use_bn=bn == "all",
                                 mutable=[contract.INTERMEDIATES])
        return cross_entropy(logits, labels), (logits, state.get(contract.INTERMEDIATES, {}))

    return jax.grad(loss, argnums=(0, 1), has_aux=True)(params, images)


def croze_from_context(ctx: Context, config: CrozeConfig = REFERENCE, **overrides) -> Array:
    """CRoZe of the context's network on its batch under ``config`` (see the module doc)."""
    cfg = dataclasses.replace(config, **overrides) if overrides else config
    if cfg.features == "layer" and contract.has_architecture_data(ctx.variables):
        raise ValueError("croze with per-layer features reads every convolution's output, "
                         "which a supernet's cell edges do not show; score it on the "
                         "architecture's static network")
    if cfg.double:
        # The reference's net.double(): float64 inside, whatever JAX's global x64 setting.
        with jax.enable_x64(True):
            def to64(a):
                a = jnp.asarray(a)
                return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a

            def croze64(variables, images, labels):
                return _croze(ctx.apply_fn, variables, images, labels, cfg, None)

            if not cfg.float64_convolutions:
                croze64 = float32_convolutions(croze64)
            variables = jax.tree_util.tree_map(to64, dict(ctx.variables))
            return croze64(variables, to64(ctx.images), ctx.labels).astype(jnp.float32)
    shared = ctx if (not cfg.abs_params and cfg.bn == "all" and cfg.features == "layer") else None
    return _croze(ctx.apply_fn, ctx.variables, ctx.images, ctx.labels, cfg, shared)


def _croze(apply_fn, variables, x, y, cfg: CrozeConfig, shared: Context | None) -> Array:
    others = {k: v for k, v in variables.items() if k != contract.PARAMS}

    def grad(params, images):
        """((d loss / d params, d loss / d images), (logits, intermediates)): one pass."""
        return _loss_grads(apply_fn, cfg.bn, others, params, images, y)

    # Clean pass: the shared context pass when the network is used as given.
    params = variables["params"]
    if cfg.abs_params:
        params = jax.tree_util.tree_map(jnp.abs, params)
    if shared is not None:
        g, logits, inter = shared.param_grads, shared.logits, shared.sown
    else:
        (g, _), (logits, inter) = grad(params, x)

    # Robust surrogate and perturbed input.
    params_r = _perturb_weights(params, g, cfg.gamma, cfg.lr)
    (g_fgsm, gx), _ = grad(params_r, x)
    x_r = x + cfg.fgsm_sign * cfg.fgsm_eps * jnp.sign(gx)
    if cfg.clamp is not None:
        x_r = jnp.clip(x_r, cfg.clamp[0], cfg.clamp[1])
    x_r = jax.lax.stop_gradient(x_r)
    (g_r, _), (logits_r, inter_r) = grad(params_r, x_r)
    if cfg.accumulate_fgsm_grads:
        g_r = jax.tree_util.tree_map(jnp.add, g_r, g_fgsm)

    # Features per layer.
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    if cfg.features == "stage":
        feats, layout = _stage_features(inter)
        feats_r, _ = _stage_features(inter_r)
        feature_of = lambda path: (feats[contract.stage_of(layout, path)],  # noqa: E731
                                   feats_r[contract.stage_of(layout, path)])
    else:
        by_layer = _layer_features(inter, logits, params)
        by_layer_r = _layer_features(inter_r, logits_r, params)
        feature_of = lambda path: (by_layer[path_names(path)],  # noqa: E731
                                   by_layer_r[path_names(path)])

    leaves = lambda tree: jax.tree_util.tree_leaves(tree)  # noqa: E731
    per_layer = []
    for (path, w), w_r, gl, gl_r in zip(flat, leaves(params_r), leaves(g), leaves(g_r)):
        if is_layer_weight(path):
            per_layer.append((w, w_r, gl, gl_r, *feature_of(path)))
    if not per_layer:
        raise ValueError("the network has no convolution or linear kernels to score")
    return _total_score(per_layer, cfg.cosine).astype(jnp.float32)


_META = dict(needs_labels=True, needs_gradients=True, data_free=False, higher_is_better=True,
             batch_size=8,
             paper="Ha, Kim & Hwang, 'Generalizable Lightweight Proxy for Robust Neural "
                   "Architecture Search against Diverse Perturbations', NeurIPS 2023")


@register("croze", reference="HyeonjeongHa/CRoZe zero_cost_methods/pruners/measures/croze.py "
                             "(quirks kept)", options=("float64_convolutions",), **_META)
def _croze_reference(ctx: Context, float64_convolutions: bool = False) -> Array:
    """CRoZe as the reference code computes it (|theta|, reduction-only BN, dim-0 cosines), in
    float64 with scaled float32 convolutions unless ``float64_convolutions``."""
    if not isinstance(float64_convolutions, bool):
        raise ValueError("croze's option float64_convolutions must be True or False, got "
                         f"{float64_convolutions!r}")
    return croze_from_context(ctx, REFERENCE, float64_convolutions=float64_convolutions)


@register("croze_paper", reference="the paper's formula; surrogate constants from "
                                   "HyeonjeongHa/CRoZe", **_META)
def _croze_paper(ctx: Context) -> Array:
    """CRoZe as the paper writes it (signed weights, FGSM ascent, per-layer cosines)."""
    return croze_from_context(ctx, PAPER)


def croze(apply_fn: ApplyFn, variables: Variables, batch, key: Array | None = None,
          **overrides: Any) -> Array:
    """CRoZe with the reference code's behaviour; keywords override :class:`CrozeConfig` fields."""
    return croze_from_context(Context(apply_fn, variables, batch, key), REFERENCE, **overrides)


def croze_paper(apply_fn: ApplyFn, variables: Variables, batch, key: Array | None = None,
                **overrides: Any) -> Array:
    """CRoZe following the paper's formula; keywords override :class:`CrozeConfig` fields."""
    return croze_from_context(Context(apply_fn, variables, batch, key), PAPER, **overrides)
