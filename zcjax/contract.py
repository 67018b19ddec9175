"""The contract between networks and proxies: the one module both sides import.

Search spaces (:mod:`zcjax.spaces`) build networks; proxies (:mod:`zcjax.proxies`) score them.
Neither imports the other: a proxy reads a network only through what this module names, and a
space builds its networks to show exactly that. A network that honours the contract is scored
correctly by every proxy, whatever its space.

Calling a network
-----------------
``apply_fn(variables, inputs, *, use_bn=True, mutable=False)`` is a Flax ``Module.apply``:

- ``variables`` holds :data:`PARAMS`; networks keep no running statistics (batch norm always
  normalises with the batch's statistics, as every zero-cost reference scores in ``train()``
  mode). A compile-once network (a supernet) adds :data:`ARCHITECTURE` (the architecture as
  data) and :data:`PRESENCE`.
- ``inputs`` are what the space's batches hold: float32 NHWC images ``(N, H, W, C)`` for the
  vision spaces, int32 token ids ``(N, T)`` for the language-model spaces
  (:func:`input_kind` tells them apart).
- ``use_bn=False`` gives the network that the references' ``get_prunable_copy(bn=False)``
  builds for SynFlow: batch norm removed where the reference removes it (each space documents
  where; NAS-Bench-201 keeps the reduction blocks' batch norm, as its reference does).
- ``mutable=[INTERMEDIATES]`` also returns what the layers sowed (below); a proxy that reads
  the ``hooked`` sites asks with ``mutable=[INTERMEDIATES, HOOKS]`` (see :data:`HOOKS`);
  ``mutable=[PERTURBATIONS]`` / a ``PERTURBATIONS`` collection of zeros lets a proxy
  differentiate with respect to perturbed outputs (:data:`CONV_OUT`, :data:`FISHER_GATE`).

Intermediates: what a network sows
----------------------------------
Layers ``sow`` into :data:`INTERMEDIATES` under these tags (sowing costs nothing unless a caller
asks for the collection):

=================  ================================================================  ==========
tag                value                                                             read by
=================  ================================================================  ==========
``relu_in``        the input of every ReLU (a recurrent cell without ReLUs: the output   nwot
                   of every activation, whose positive entries are its active code)
``conv_out``       the output of every convolution (before batch norm)               meco_conv,
                                                                                     croze_paper
``bn_var``         every batch norm's per-channel batch variance (biased), with       zen
                   ``bn_var_count`` (the number of values it averages, N H W)
``pre_pool``       the feature map entering the global average pool (once)           zen
``hooked``         every tensor a forward hook on a module of the proxy's reference   meco
                   model sees; its weight is how many such hooks see it
``stage_out``      the features a stage-wise robustness proxy compares, in order     croze
                   (sown by the network's top module)
``stage_of``       ``{path prefix: stage index}``: which ``stage_out`` feature the   croze
                   layers under a parameter-path prefix are compared on (top module)
``rnn_out``        the output sequence ``(N, T, H)`` of every recurrent layer, in     epsilon
                   order (language models)
=================  ================================================================  ==========

Weighted sites
--------------
A network whose set of layers is data (a supernet) sows a value at every *potential* site and,
beside it under ``tag + WEIGHT_SUFFIX``, one scalar per value: 1.0 where the static network of
the current architecture has that site, 0.0 where it does not. Any other weight is a
multiplicity (``hooked``: how many reference hooks see the tensor). Values sown without a
weight have weight 1. :func:`sites` pairs values with weights; a proxy that accumulates
``weight * term`` scores a supernet exactly as the static network.

Order: :func:`sites` walks the sown tree in the order of its dictionaries. For the collection
returned by a direct ``apply`` that is the order in which the layers sowed (a module's own sows
after its children's: the order of forward hooks in PyTorch); after a JAX transformation has
rebuilt the tree (``jax.vjp`` with ``has_aux``) keys are sorted. The order only moves float
rounding of sums over sites.

Weights that proxies count
--------------------------
Per-weight proxies sum over the kernels of convolutions and linear layers only, as the
references' ``get_layer_metric_array`` does: a parameter named ``kernel`` whose module is
named ``conv`` or ``dense`` (:func:`is_layer_weight`). Spaces build every convolution and linear
layer from :mod:`zcjax.spaces.layers`, whose modules name their kernels so. Biases and
batch-norm parameters are left out.

Token inputs
------------
A network whose inputs are token ids (a language model) reads them through an embedding and
passes the embedded sequence ``(N, T, E)`` through ``self.perturb(EMBEDDED, ...)`` in its top
module, so a proxy can differentiate with respect to the continuous input it actually computes
with (the input Jacobian of jacob_cov, the references' gradient with respect to the
embeddings). Called with float inputs of shape ``(N, T, E)`` instead of ids, such a network
takes them as that embedded sequence and skips the lookup (the data-free proxies feed an
all-ones embedded input, as they feed all-ones images). Its logits are ``(N, T, V)``: one
prediction of the next token per position.

A recurrent network sows the output sequence of each recurrent layer under :data:`RNN_OUT`
(``(N, T, H)``, before any dropout), and starts every layer from the hidden state
``variables[INITIAL_STATE]["fill"]`` (a scalar broadcast to every entry) when that optional
collection is given, from zeros otherwise (as the benchmarks trained).

Perturbation gates
------------------
A convolution that is not a Flax module (a supernet's edge inside a ``jax.custom_vjp``) shows
Fisher pruning its output through a multiplicative gate of ones:
``PERTURBATIONS/.../<FISHER_GATE><name>`` of shape (N, C), with the convolution's fan-in sown
beside it as ``INTERMEDIATES/.../<FISHER_GATE><name><FAN_IN_SUFFIX>`` (0 where the gated
convolution is absent).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# -- collections -----------------------------------------------------------------------------

#: The network's parameters.
PARAMS = "params"
#: Where layers sow (see the module doc).
INTERMEDIATES = "intermediates"
#: Perturbations added to (or gates multiplied into) layer outputs.
PERTURBATIONS = "perturbations"
#: A supernet's architecture, as data (e.g. NAS-Bench-201's six op indices).
ARCHITECTURE = "genotype"
#: A tree like ``params`` of 0/1 scalars: 0 for parameters of layers the current architecture
#: lacks (set by supernets; a proxy that redraws weights gives them no draws).
PRESENCE = "presence"
#: A request, not a store: a proxy that reads the ``hooked`` sites also makes this collection
#: mutable. Static networks sow their hooked sites anyway (at no cost); a network that has to
#: compute extra values to show them (a supernet, whose edges run inside ``lax.switch``) shows
#: them only when asked.
HOOKS = "hooks"
#: Optional collection of recurrent networks: ``{"fill": scalar}``, the value of every entry of
#: every layer's initial hidden state (zeros when absent).
INITIAL_STATE = "initial_state"

# -- intermediate tags -----------------------------------------------------------------------

RELU_IN = "relu_in"
CONV_OUT = "conv_out"
BN_VAR = "bn_var"
PRE_POOL = "pre_pool"
HOOKED = "hooked"
STAGE_OUT = "stage_out"
STAGE_OF = "stage_of"
RNN_OUT = "rnn_out"

#: The perturbation a token network adds to its embedded input (see "Token inputs").
EMBEDDED = "embedded"

#: The input kinds (``zcjax.spaces.base.InputSpec.kind``) and their dtypes.
INPUT_KINDS = ("images", "tokens")

#: A site's weight is sown under ``tag + WEIGHT_SUFFIX`` beside its value.
WEIGHT_SUFFIX = "_weight"
#: The number of values each batch variance averages is sown under ``BN_VAR + COUNT_SUFFIX``.
COUNT_SUFFIX = "_count"

#: Prefix of the multiplicative convolution-output gates exposed to Fisher pruning.
FISHER_GATE = "fisher_gate_"
#: Suffix of the sown fan-in of a gated convolution.
FAN_IN_SUFFIX = "_fan_in"

#: Module names whose ``kernel`` proxies count (:func:`is_layer_weight`).
LAYER_MODULES = ("conv", "dense")


# -- inputs ----------------------------------------------------------------------------------

def input_kind(inputs) -> str:
    """``"images"`` for floating NHWC arrays, ``"tokens"`` for integer ``(N, T)`` arrays.

    Anything else is a ``ValueError`` naming its rank and dtype.
    """
    ndim, dtype = getattr(inputs, "ndim", None), getattr(inputs, "dtype", None)
    if ndim == 4 and dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return "images"
    if ndim == 2 and dtype is not None and jnp.issubdtype(dtype, jnp.integer):
        return "tokens"
    raise ValueError(f"inputs must be floating NHWC images (rank 4) or integer token ids "
                     f"(N, T) (rank 2); got rank {ndim} and dtype {dtype}")


def embedded_perturbation(tree: Any) -> Any:
    """The value under :data:`EMBEDDED` in a perturbations-shaped tree (exactly one)."""
    found = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
             if path_names(path)[-1:] == (EMBEDDED,)]
    if len(found) != 1:
        raise ValueError(f"a token network perturbs its embedded input once under "
                         f"'{EMBEDDED}'; found {len(found)} such perturbations")
    return found[0]


# -- paths and weights -----------------------------------------------------------------------

def path_names(path) -> tuple[str, ...]:
    """The key names of a pytree path (dict keys, attribute names or indices as strings)."""
    return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def is_layer_weight(path) -> bool:
    """True for the kernel of a convolution or a linear layer (the weights proxies count)."""
    names = path_names(path)
    return len(names) >= 2 and names[-1] == "kernel" and names[-2] in LAYER_MODULES


def has_architecture_data(variables: Mapping[str, Any]) -> bool:
    """Whether the variables carry the architecture as data (a supernet).

    Such networks may be built of ``jax.custom_vjp`` functions, which have no forward-mode
    derivative: second-order proxies use reverse-over-reverse products on them.
    """
    return ARCHITECTURE in variables


# -- reading sown intermediates --------------------------------------------------------------

def _as_tuple(values) -> tuple:
    return tuple(values) if isinstance(values, (tuple, list)) else (values,)


def sites(sown: Any, tag: str) -> list[tuple[Any, Any]]:
    """``(value, weight)`` of every value sown under ``tag``, in the tree's own order.

    ``weight`` is what was sown under ``tag + WEIGHT_SUFFIX`` in the same module (a presence
    weight or a multiplicity; possibly traced), else ``None`` (weight 1).
    """
    out: list[tuple[Any, Any]] = []

    def walk(node):
        if not isinstance(node, Mapping):
            return
        for key in node:
            if key == tag:
                values = _as_tuple(node[key])
                weights = node.get(tag + WEIGHT_SUFFIX)
                weights = (None,) * len(values) if weights is None else _as_tuple(weights)
                if len(weights) != len(values):
                    raise ValueError(f"{len(values)} values sown under {tag!r} but "
                                     f"{len(weights)} weights")
                out.extend(zip(values, weights))
            elif isinstance(node[key], Mapping):
                walk(node[key])

    walk(sown)
    return out


def weighted_sites(sown: Any, tag: str) -> list[tuple[Array, Array]]:
    """:func:`sites` with every missing weight replaced by a 1 of the value's dtype."""
    return [(v, jnp.ones((), v.dtype) if w is None else w) for v, w in sites(sown, tag)]


def values(sown: Any, tag: str) -> list[Any]:
    """Every value sown under ``tag`` (weights ignored), in the tree's own order."""
    return [v for v, _ in sites(sown, tag)]


def bn_sites(sown: Any) -> list[tuple[Array, Any, Any]]:
    """``(batch variance, count, weight)`` of every batch norm, in the tree's own order.

    ``count`` is the number of values the variance averages (an int for static networks, a
    traced scalar where a supernet sows it); ``weight`` as in :func:`sites`.
    """
    out = []

    def walk(node):
        if not isinstance(node, Mapping):
            return
        for key in node:
            if key == BN_VAR:
                variances = _as_tuple(node[key])
                counts = _as_tuple(node[BN_VAR + COUNT_SUFFIX])
                weights = node.get(BN_VAR + WEIGHT_SUFFIX)
                weights = (None,) * len(variances) if weights is None else _as_tuple(weights)
                for v, n, w in zip(variances, counts, weights):
                    out.append((v, int(n) if isinstance(n, (int, np.integer)) else n, w))
            elif isinstance(node[key], Mapping):
                walk(node[key])

    walk(sown)
    return out


def stage_layout(sown: Any) -> tuple[list[Array], dict[tuple[str, ...], int]]:
    """The stage features (``stage_out``) and the ``stage_of`` map of a network's top module.

    Returns ``(features, {path prefix: feature index})``; raises ``ValueError`` naming what is
    missing when the network does not declare its stages.
    """
    features = values(sown, STAGE_OUT)
    maps = values(sown, STAGE_OF)
    if not features or len(maps) != 1:
        raise ValueError(
            f"the network does not declare its stages (sown {len(features)} '{STAGE_OUT}' "
            f"features and {len(maps)} '{STAGE_OF}' maps; expected >= 1 and 1)")
    layout = {tuple(k.split("/")): _decode_index(v) for k, v in maps[0].items()}
    bad = {"/".join(k): i for k, i in layout.items() if not 0 <= i < len(features)}
    if bad:
        raise ValueError(f"'{STAGE_OF}' names features outside 0..{len(features) - 1}: {bad}")
    return features, layout


def stage_of(layout: Mapping[tuple[str, ...], int], path) -> int:
    """The stage feature of the parameter at ``path``: its longest prefix in ``layout``."""
    names = path_names(path)
    for end in range(len(names), 0, -1):
        if names[:end] in layout:
            return layout[names[:end]]
    raise ValueError(f"no stage declared for the parameter {'/'.join(names)} "
                     f"(declared prefixes: {sorted('/'.join(k) for k in layout)})")


def declare_stages(module, features: Sequence[Array], layout: Mapping[str, int]) -> None:
    """Sows a network's stage features and its ``{path prefix: index}`` map (top module).

    ``layout`` keys are '/'-joined parameter-path prefixes. Each index is written into the
    tree's *structure* (``{prefix: {str(index): {}}}``: keys, no leaves), which every JAX
    transformation keeps static, ``jit`` boundaries included (array leaves would become
    tracers there).
    """
    for feature in features:
        module.sow(INTERMEDIATES, STAGE_OUT, feature)
    module.sow(INTERMEDIATES, STAGE_OF, {k: {str(int(v)): {}} for k, v in layout.items()})


def _decode_index(entry: Mapping) -> int:
    (index,) = entry.keys()
    return int(index)
