"""Epsilon (epsinas): output spread of a network under two constant weight settings.

Gracheva, "Trainless model performance estimation based on random weights initialisations",
2021 (arXiv:2112.14590). Reference implementation: ``egracheva/epsinas``,
``NAS-Bench-201/epsinas_utils.py`` (``compute_epsinas``), reproduced here.

Algorithm (reference behaviour, kept exactly)
---------------------------------------------
For each of two constants ``w1 < w2``:

1. every weight -- convolution and linear kernels, affine batch-norm scales -- is set to the
   constant and every bias (linear, convolution, batch-norm shift) to zero. Here this is a
   :func:`jax.tree_util.tree_map_with_path` over the parameters: leaves named ``kernel``,
   ``scale`` or ``embedding`` become the constant, leaves named ``bias`` become 0, anything else
   is left untouched (as the reference's ``initialize_weights`` only touches modules with a
   ``weight`` / ``bias`` attribute);
2. one forward pass on the batch, batch norm with the batch's statistics;
3. the whole output, flattened (batch x outputs), is min-max normalised:
   ``p = (y - nanmin(y)) / (nanmax(y) - nanmin(y))``.

Then, with ``p1``, ``p2`` the two normalised outputs stacked into a ``(2, N*K)`` array:

4. entries equal to 0 are set to NaN (quirk: this drops the minimum of each output, and every
   entry tied with it, from both sums below);
5. ``score = nanmean(|p1 - p2|) / nanmean([p1, p2])``: the mean absolute difference over
   positions where both are defined, divided by the joint mean of all defined entries of both
   (not the mean of the two means, which differs when the NaN counts differ).

Constants: NAS-Bench-201 ``(1e-7, 1)``, NAS-Bench-101 ``(1e-4, 10)``, NAS-Bench-NLP
``(1e-5, 1e-3)`` (the ``weights`` of the reference's ``Reproduce.ipynb`` notebooks); see
:data:`EPSILON_WEIGHTS` and :func:`epsilon_for`. The registered ``epsilon`` takes them as its
``weights`` option, which each search space sets (``SearchSpace.proxy_options``); the default
is the NAS-Bench-201 pair.

Recurrent language models (``scheme="recurrent"``, NAS-Bench-NLP)
-----------------------------------------------------------------
The reference scores NAS-Bench-NLP differently (``egracheva/epsinas``,
``NAS-Bench-NLP/epsinas_utils.py`` ``compute_epsinas`` with its ``model.py`` and
``Reproduce.ipynb``), and ``scheme="recurrent"`` reproduces it:

- every parameter of every recurrent cell, the matrices *and the biases*, is set to the
  constant (its ``initialize_resnet`` fills all ``CustomRNNCell`` parameters); here: leaves
  named ``kernel`` or ``bias``;
- the embedding is drawn uniform on ``[0, 1)`` from one fixed seed, the same draw for both
  constants (the reference reseeds with 21 before each and calls ``uniform_(0, 1)``; its
  comment: "embedding is not constant"). Here: :data:`EMBEDDING_SEED` in JAX's generator, so
  the numbers differ from PyTorch's but are equally one fixed draw, and the score is a constant
  of the architecture;
- every layer starts from hidden states filled with the constant (its ``init_hidden(bsz, w)``;
  the network's ``initial_state`` collection, :data:`zcjax.contract.INITIAL_STATE`);
- dropouts off (``eval()``);
- the output normalised is the first unit of the last recurrent layer's output sequence,
  ``raw_outputs[-1][:, :, 0]`` (``N x T`` values, before the decoder): the network's last
  ``rnn_out`` (:data:`zcjax.contract.RNN_OUT`), ``[..., 0]``;
- the batch: ``batchify(corpus.train, 256)`` then ``get_batch(..., 0)``, 256 streams of the
  first 70 (``bptt``) tokens of the Penn Treebank's train split
  (:func:`zcjax.spaces.nb_nlp.scoring_batch`);
- the normalisation and score are steps 3-5 above. Only the first unit enters the score, and
  the decoder bias, which the reference leaves at its default initialisation, does not.

Labels are not used; gradients are not needed. Higher is better (the reference correlates the
raw score with accuracy).

NaN
---
The score is NaN -- never an exception -- when a network's output is constant (``max == min``,
e.g. every path multiplied by zero or values underflowing at ``w = 1e-7``), when it is not finite
(``inf`` makes every entry ``0`` or NaN), or when nothing survives step 4. The proxy stays a pure
jit-able function and does not log; :func:`epsilon_diagnostics` (eager, host side) recomputes
the per-constant output ranges and says which of these happened.

Precision: the reference's float32 NaNs (quirk, reproduced) and ``epsilon_f64`` (clean)
-------------------------------------------------------------------------------------------
With ``w = 1e-7`` every convolution multiplies its input by about ``1e-7 * fan_in`` and every
batch norm by ``1e-7 / sqrt(eps)`` (the batch variance, ~1e-14, is far below ``eps = 1e-5``, so
batch norm no longer renormalises). The output of a deep NAS-Bench-201 path is 1e-31 and below,
and in float32 the whole ``w = 1e-7`` output of many cells underflows to a constant (0): their
score is NaN, and the reference's ``compute_stats`` drops NaN scores before correlating.

Measured on 200 random NB201 cells (``random.Random(0).sample(range(15625), 200)``, C=16, N=5,
the bundled CIFAR-10 batch of 64), running the reference's own ``TinyNetwork`` and scoring code
in PyTorch on CPU: float32 gives NaN for 80 of 200 cells and Spearman 0.74 with CIFAR-10 test
accuracy over the other 120; float64 gives NaN for 9 (outputs that are constant in exact
arithmetic) and Spearman 0.32 over 191. On the 120 cells both can score, the two precisions give
the same scores (max difference 3e-7), so **the published correlation (0.87 over NB201) is a
correlation over the cells float32 can score**: the underflowing cells are mostly conv-heavy
cells without a parameter-free path, which are among the most accurate (Spearman of "float32
can score it" with accuracy: -0.45), and scoring them (float64) lowers the correlation to 0.32.

- ``epsilon`` (registered, the reference's behaviour): the two forwards in float32, so the
  cells the reference cannot score are NaN here too. Checked cell for cell on those 200 cells
  (``convention="official"``, ``num_classes=1``, the engine's supernet): the same 80 NaN cells
  as the reference's float32, scores within 1.7e-3 relative, the same Spearman (0.739). XLA:CPU
  flushes subnormals to zero where PyTorch keeps them, so the NaN sets could differ at the
  margin; on this sample they did not.
- ``epsilon_f64`` (registered, clean variant): the forwards in float64 (inside
  :func:`jax.enable_x64`, which works under ``jit``). Against the reference's float64 on the
  same cells: scores within 5e-8 relative; one more NaN (cell 1471, a chain of 30 convolutions
  whose ``w = 1e-7`` output is a float64 subnormal, ~1e-310, flushed to 0 by XLA). The score
  itself equals ``epsilon``'s wherever both are finite.

Matching the reference network
------------------------------
The reference (``NAS-Bench-201/nasspace.py``) builds NAS-Bench-201's ``TinyNetwork`` (no conv
bias, affine batch norm everywhere) with ``num_classes = 1`` and scores its first output, the
logits. Build with ``convention="official"`` to match it: under constant weights the conv biases
vanish anyway, but the cells' affine batch-norm scales (also set to the constant) do not exist
in the ``zero_cost`` and ``naslib`` conventions, so those give different scores. The number of
classes does not matter: with constant weights and zero biases every logit of a sample equals
``w * sum(features)``, so the K outputs of a sample are K copies of one value and the score is
the same for any K (tested). The reference's ``Reproduce.ipynb`` uses a batch of 256.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zcjax import contract
from zcjax.proxies.base import ApplyFn, Variables, path_names, register
from zcjax.proxies.context import Context

Array = jax.Array

#: Constant weight pairs of the reference per search space (``Reproduce.ipynb`` notebooks).
EPSILON_WEIGHTS: Mapping[str, tuple[float, float]] = {
    "nb201": (1e-7, 1.0),
    "nb101": (1e-4, 10.0),
    "nb_nlp": (1e-5, 1e-3),
}

_SPACE_ALIASES = {  # keys: lower case, without "-" and "_"
    "nb201": "nb201", "nasbench201": "nb201", "natsbenchtss": "nb201",
    "nb101": "nb101", "nasbench101": "nb101",
    "nbnlp": "nb_nlp", "nasbenchnlp": "nb_nlp",
}

#: Parameter names set to the constant; ``bias`` leaves are set to zero.
WEIGHT_NAMES = ("kernel", "scale", "embedding")
BIAS_NAMES = ("bias",)

#: How the reference sets a network's parameters and which output it normalises:
#: ``"classifier"`` (NAS-Bench-101 / 201: the logits) or ``"recurrent"`` (NAS-Bench-NLP).
SCHEMES = ("classifier", "recurrent")
#: The seed of the reference's uniform embedding in the recurrent scheme (``prepare_seed(21)``).
EMBEDDING_SEED = 21


def epsilon_for(space: str) -> tuple[float, float]:
    """The reference's constant pair for a search space (``"nb201"``, ``"nb101"``, ``"nb_nlp"``
    or aliases)."""
    key = _SPACE_ALIASES.get(space.lower().replace("-", "").replace("_", ""))
    if key is None:
        raise ValueError(f"no epsilon constants for search space {space!r}; "
                         f"known: {sorted(EPSILON_WEIGHTS)}; pass weights=(w1, w2)")
    return EPSILON_WEIGHTS[key]


def _check_weights(weights: Sequence[float]) -> tuple[float, float]:
    weights = tuple(float(w) for w in weights)
    if len(weights) != 2:
        raise ValueError(f"epsilon needs exactly two constant weights, got {weights}")
    if not all(math.isfinite(w) for w in weights) or weights[0] == weights[1]:
        raise ValueError(f"epsilon needs two different finite constants, got {weights}")
    return weights


def recurrent_params(params, weight: float):
    """The recurrent scheme's parameters: every ``kernel`` and ``bias`` set to ``weight``, every
    ``embedding`` uniform on ``[0, 1)`` drawn in float32 from :data:`EMBEDDING_SEED` (see the
    module doc; the same draw, cast, in float64).

    Constants are computed from the incoming leaves, as in :func:`constant_params`.
    """

    def set_leaf(path, leaf):
        name = path_names(path)[-1]
        if name in ("kernel", "bias"):
            return leaf * 0 + jnp.asarray(weight, leaf.dtype)
        if name == "embedding":  # drawn in float32 (one draw for both precisions), then cast
            draw = jax.random.uniform(jax.random.key(EMBEDDING_SEED), leaf.shape, jnp.float32)
            return draw.astype(leaf.dtype)
        return leaf

    return jax.tree_util.tree_map_with_path(set_leaf, params)


def constant_params(params, weight: float):
    """``params`` with every weight set to ``weight`` and every bias to zero.

    The constants are computed from the incoming leaves (``leaf * 0 + weight``) so that, under
    ``jit``, they are not compile-time constants: with literal constant weights XLA (CPU)
    constant-folds and simplifies the network and, measured on NAS-Bench-201 (C=16, N=5), returned
    outputs that were all 0 or ~1e33 where the same forward with the weights as run-time values
    (and float64) gives 1e-33..1e-31 and 0.7..84. (Finite parameters are assumed.)
    """

    def set_leaf(path, leaf):
        name = path_names(path)[-1]
        if name in BIAS_NAMES:
            return leaf * 0
        if name in WEIGHT_NAMES:
            return leaf * 0 + jnp.asarray(weight, leaf.dtype)
        return leaf

    return jax.tree_util.tree_map_with_path(set_leaf, params)


def _min_max(y: Array) -> Array:
    """The flattened output, min-max normalised over all its entries (NaN-aware bounds)."""
    y = jnp.ravel(y)
    lo, hi = jnp.nanmin(y), jnp.nanmax(y)
    return (y - lo) / (hi - lo)


def epsilon_score(normalised: Array) -> Array:
    """The reference's score from the two normalised outputs stacked as ``(2, M)``."""
    p = jnp.where(normalised == 0, jnp.nan, normalised)
    mae = jnp.nanmean(jnp.abs(p[0] - p[1]))
    return mae / jnp.nanmean(p)


def _forward(apply_fn, variables, inputs, scheme):
    """The output epsilon normalises. Not jitted here: under the caller's ``jit`` it is part of
    one program, and run eagerly it compiles nothing per network."""
    if scheme == "classifier":
        return apply_fn(variables, inputs)
    _, state = apply_fn(variables, inputs, mutable=[contract.INTERMEDIATES])
    outputs = contract.values(state[contract.INTERMEDIATES], contract.RNN_OUT)
    if not outputs:
        raise ValueError(f"epsilon's recurrent scheme normalises the last recurrent layer's "
                         f"output, but the network sows no '{contract.RNN_OUT}'")
    return outputs[-1][..., 0]


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown epsilon scheme {scheme!r}; expected one of {SCHEMES}")
    return scheme


def _outputs(ctx: Context, weights, dtype=jnp.float64, scheme: str = "classifier"
             ) -> list[Array]:
    # Two plain forwards, not vmapped (unrolled measured faster on CPU).
    params = jax.tree.map(lambda p: p.astype(dtype), ctx.params)
    inputs = ctx.inputs
    if jnp.issubdtype(inputs.dtype, jnp.floating):
        inputs = inputs.astype(dtype)  # images; token ids stay ids
    outs = []
    for w in weights:
        if scheme == "classifier":
            variables = {**ctx.variables, "params": constant_params(params, w)}
        else:
            variables = {**ctx.variables, "params": recurrent_params(params, w),
                         contract.INITIAL_STATE: {"fill": jnp.asarray(w, dtype)}}
        outs.append(_forward(ctx.apply_fn, variables, inputs, scheme))
    return outs


def epsilon_from_context(ctx: Context, weights: Sequence[float] = EPSILON_WEIGHTS["nb201"],
                         dtype=jnp.float32, scheme: str = "classifier") -> Array:
    """Epsilon for the context's network and inputs (labels ignored); see the module doc.

    ``dtype`` is the precision of the two forwards: ``jnp.float32`` (the default, the
    reference's) or ``jnp.float64`` (resolves outputs that underflow in float32); see
    "Precision" in the module doc. The score is returned as float32 either way. ``scheme``:
    ``"classifier"`` (NAS-Bench-101 / 201) or ``"recurrent"`` (NAS-Bench-NLP).
    """
    weights = _check_weights(weights)
    scheme = _check_scheme(scheme)
    with jax.enable_x64(dtype == jnp.float64):
        outs = _outputs(ctx, weights, dtype, scheme)
        return epsilon_score(jnp.stack([_min_max(y) for y in outs])).astype(jnp.float32)


_METADATA = dict(needs_labels=False, needs_gradients=False, data_free=False,
                 higher_is_better=True, batch_size=256, options=("weights", "scheme"),
                 inputs=("images", "tokens"),
                 paper="Gracheva, 'Trainless model performance estimation based on random "
                       "weights initialisations', arXiv:2112.14590, 2021",
                 reference="egracheva/epsinas NAS-Bench-201/epsinas_utils.py compute_epsinas "
                           "(weights 1e-7, 1)")


@register("epsilon", **_METADATA)
def _epsilon_f32(ctx: Context, weights: Sequence[float] = EPSILON_WEIGHTS["nb201"],
                 scheme: str = "classifier") -> Array:
    """Epsilon with the search space's constants (NAS-Bench-201's (1e-7, 1) by default) in
    float32, as the reference: NaN where the small constant's output underflows (see
    "Precision" in the module doc)."""
    return epsilon_from_context(ctx, weights, dtype=jnp.float32, scheme=scheme)


@register("epsilon_f64", **_METADATA)
def _epsilon_f64(ctx: Context, weights: Sequence[float] = EPSILON_WEIGHTS["nb201"],
                 scheme: str = "classifier") -> Array:
    """Epsilon in float64: scores the cells whose float32 output underflows."""
    return epsilon_from_context(ctx, weights, dtype=jnp.float64, scheme=scheme)


def epsilon(apply_fn: ApplyFn, variables: Variables, batch, key: Array | None = None, *,
            weights: Sequence[float] = EPSILON_WEIGHTS["nb201"], dtype=jnp.float32,
            scheme: str = "classifier") -> Array:
    """Epsilon score (float32 scalar) of a network on a batch; labels are not used.

    Args:
      apply_fn, variables, batch, key: the proxy contract (:mod:`zcjax.proxies.base`).
      weights: the two constants; ``epsilon_for("nb101")`` gives the NAS-Bench-101 pair.
      dtype: precision of the forwards; ``jnp.float64`` is the clean variant (``epsilon_f64``).
      scheme: ``"classifier"`` or ``"recurrent"`` (NAS-Bench-NLP; see the module doc).

    Returns NaN (not an error) for a network whose output is constant or not finite; see
    :func:`epsilon_diagnostics`.
    """
    return epsilon_from_context(Context(apply_fn, variables, batch, key), weights, dtype,
                                scheme)


def epsilon_diagnostics(apply_fn: ApplyFn, variables: Variables, batch, *,
                        weights: Sequence[float] = EPSILON_WEIGHTS["nb201"],
                        dtype=jnp.float32, scheme: str = "classifier") -> dict:
    """Why an epsilon score is (or is not) NaN: the per-constant output ranges, host side.

    Runs eagerly (not for use under ``jit``). Returns a dict with ``score`` (float), ``outputs``
    (one dict per constant: ``weight``, ``min``, ``max``, ``range``, ``nonfinite`` -- the number
    of NaN or infinite outputs -- and ``dropped``, the number of normalised entries equal to 0
    that the score ignores) and ``reason``: ``None`` for a finite score, else a sentence.
    """
    weights = _check_weights(weights)
    scheme = _check_scheme(scheme)
    ctx = Context(apply_fn, variables, batch, None)
    with jax.enable_x64(dtype == jnp.float64):  # the same computation as the score
        raw = _outputs(ctx, weights, dtype, scheme)
        normalised = jnp.stack([_min_max(y) for y in raw])
        score = float(epsilon_score(normalised))
        outs = [np.asarray(y, np.float64).ravel() for y in raw]
        normalised = np.asarray(normalised)
    reports, reasons = [], []
    for w, y, p in zip(weights, outs, normalised):
        finite = y[np.isfinite(y)]
        lo = float(finite.min()) if finite.size else float("nan")
        hi = float(finite.max()) if finite.size else float("nan")
        nonfinite = int(y.size - finite.size)
        reports.append({"weight": w, "min": lo, "max": hi, "range": hi - lo,
                        "nonfinite": nonfinite, "dropped": int(np.sum(p == 0))})
        if nonfinite:
            reasons.append(f"weight {w:g}: {nonfinite} of {y.size} outputs are not finite")
        elif hi == lo:
            hint = (" (an underflow in float32? epsilon_f64 / dtype=jnp.float64 resolves it)"
                    if dtype != jnp.float64 and lo == 0 else "")
            reasons.append(f"weight {w:g}: the output is constant ({lo:g}), so min-max "
                           f"normalisation divides 0 by 0{hint}")
    reason = None
    if not math.isfinite(score):
        reason = "; ".join(reasons) or (
            "no entry survives: every normalised output is 0 or NaN for one of the constants")
    return {"score": score, "outputs": reports, "reason": reason}
