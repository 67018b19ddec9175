"""The NAS-Bench-NLP language model as the benchmark trained it, in Flax.

Reference: ``fmsnew/nas-bench-nlp-release``: ``model.py`` (``AWDRNNModel``, the AWD-LSTM
container of Merity et al. 2018), ``custom_rnn.py`` (``CustomRNNCell`` / ``CustomRNN``),
``multilinear.py`` (``MultiLinear``) and ``main_one_model_train.py`` (the sizes).

Network (:class:`NBNLPNetwork`, input ``(N, T)`` token ids, output ``(N, T, V)`` logits):

- an embedding ``V x E`` (``encoder``), ``E = 400``;
- ``L = 3`` recurrent layers, each the recipe's cell run over the sequence with
  :func:`flax.linen.scan` (one compiled step for all ``T`` positions), from zero hidden states
  (the benchmark's ``init_hidden``). Layer ``l`` reads ``E`` (first) or ``H = 600`` features;
  its hidden size is ``H``, except the last layer's, which is ``E`` because the weights are
  tied. A layer's output at ``t`` is ``h_new_0``;
- the decoder: logits ``= h E^T + b`` with the embedding matrix itself (``tie_weights``) and its
  own bias ``b``.

Each ``linear`` node is the reference's ``MultiLinear``: one ``H x d_i`` matrix per input
(``d_i = `` the layer's input size for ``x``, ``H`` otherwise), summed, plus one bias. Here the
matrix of input ``i`` is the kernel of a Flax ``Dense`` named ``dense`` (module ``in<i>``), so
proxies count it as a linear layer (:func:`zcjax.contract.is_layer_weight`).

Initialisation (the reference's): every cell parameter, matrices and biases, uniform on
``[-1/sqrt(H_l), 1/sqrt(H_l)]`` with ``H_l`` the layer's hidden size (``CustomRNN.
reset_parameters``, which overrides ``MultiLinear``'s own init); the embedding uniform on
``[-0.1, 0.1]`` and the decoder bias 0 (``AWDRNNModel.init_weights``).

Scoring conventions:

- dropouts are off (the reference's ``eval()``: ``dropout``, ``dropouth``, ``dropouti``,
  ``dropoute`` and the weight drop ``wdrop`` are all identities), so none is built;
- every layer sows its output sequence under ``rnn_out`` (``raw_outputs`` of the reference);
- the embedded input passes through ``perturb("embedded")``, and float inputs ``(N, T, E)`` are
  taken as an embedded sequence (:mod:`zcjax.contract`, "Token inputs");
- the initial hidden states are ``variables["initial_state"]["fill"]`` when given (epsilon's
  reference fills them with its constant), else zeros;
- every activation sows its *output* under ``relu_in``: the tensor whose positive entries are the
  codes NASWOT reads in the one public zero-cost study of this space (Serianni & Kalita, ACL
  2023, ``aaronserianni/training-free-nas`` ``RNN_metrics.ipynb``: ``output > 0`` of every
  ``tanh``, ``sigmoid`` and leaky ReLU of every cell, layer and step). For ``tanh`` and the
  leaky ReLU this is the sign of the input; a sigmoid's output is always positive.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zcjax import contract
from zcjax.spaces.nb_nlp.recipe import INPUT, Recipe, h_new, h_prev

Array = jax.Array

#: The reference's embedding (and untied decoder) init range, ``AWDRNNModel.init_weights``.
EMBEDDING_INIT_RANGE = 0.1
#: PyTorch's ``LeakyReLU`` default slope.
LEAKY_SLOPE = 0.01


def uniform(bound: float) -> Callable:
    """Initialiser drawing uniformly from ``[-bound, bound]``."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _activation(op: str) -> Callable[[Array], Array]:
    return {"activation_tanh": jnp.tanh,
            "activation_sigm": jax.nn.sigmoid,
            "activation_leaky_relu": lambda v: jax.nn.leaky_relu(v, LEAKY_SLOPE)}[op]


class MultiLinear(nn.Module):
    """``sum_i W_i a_i + b``: one matrix per input, one bias (the reference's ``MultiLinear``)."""

    features: int
    num_inputs: int

    @nn.compact
    def __call__(self, *inputs: Array) -> Array:
        bound = 1.0 / math.sqrt(self.features)
        out = self.param("bias", uniform(bound), (self.features,))
        for i, a in enumerate(inputs):
            out = out + Projection(self.features, bound, name=f"in{i}")(a)
        return out


class Projection(nn.Module):
    """A matrix without bias, as a ``Dense`` named ``dense`` (so proxies count its kernel)."""

    features: int
    init_bound: float

    @nn.compact
    def __call__(self, a: Array) -> Array:
        return nn.Dense(self.features, use_bias=False, kernel_init=uniform(self.init_bound),
                        name="dense")(a)


class Cell(nn.Module):
    """One step of the recipe's cell: ``(hidden states, x_t) -> (new hidden states, h_new_0)``."""

    recipe: Recipe
    hidden_size: int

    @nn.compact
    def __call__(self, carry: tuple[Array, ...], x: Array):
        values: dict[str, Array] = {INPUT: x}
        values.update({h_prev(k): h for k, h in enumerate(carry)})
        for name in self.recipe.order:
            node = self.recipe.node(name)
            a = [values[i] for i in node.inputs]
            if node.op == "linear":
                v = MultiLinear(self.hidden_size, len(a), name=name)(*a)
            elif node.op == "blend":
                v = a[0] * a[1] + (1 - a[0]) * a[2]
            elif node.op == "elementwise_prod":
                v = a[0] * a[1]
            elif node.op == "elementwise_sum":
                v = a[0] + a[1]
            else:
                v = _activation(node.op)(a[0])
                self.sow(contract.INTERMEDIATES, contract.RELU_IN, v)
            values[name] = v
        new = tuple(values[h_new(k)] for k in range(self.recipe.num_hidden))
        return new, new[0]


class RecurrentLayer(nn.Module):
    """The cell over a sequence ``(N, T, d) -> (N, T, H)`` (``flax.linen.scan`` over ``T``)."""

    recipe: Recipe
    hidden_size: int

    @nn.compact
    def __call__(self, xs: Array, fill: Any = 0.0) -> Array:
        scan = nn.scan(Cell, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=1, out_axes=1,
                       variable_axes={contract.INTERMEDIATES: 1})
        carry = tuple(jnp.full((xs.shape[0], self.hidden_size), fill, xs.dtype)
                      for _ in range(self.recipe.num_hidden))
        _, ys = scan(self.recipe, self.hidden_size, name="cell")(carry, xs)
        return ys


class NBNLPNetwork(nn.Module):
    """Embedding, ``num_layers`` recurrent layers of the recipe's cell, tied decoder.

    Attributes:
      recipe: the cell.
      vocab_size: ``V`` (10,000 for the Penn Treebank).
      embedding_size: ``E`` (400).
      hidden_size: ``H`` (600).
      num_layers: ``L`` (3).
      tied: decoder weights = embedding (the benchmark: True); the last layer's hidden size is
        then ``E``. Untied: a decoder ``H x V`` (init uniform on ``[-0.1, 0.1]``).
    """

    recipe: Recipe
    vocab_size: int = 10000
    embedding_size: int = 400
    hidden_size: int = 600
    num_layers: int = 3
    tied: bool = True

    def layer_sizes(self) -> list[tuple[int, int]]:
        """``(input size, hidden size)`` of every layer (the reference's ``AWDRNNModel``)."""
        return layer_sizes(self.embedding_size, self.hidden_size, self.num_layers, self.tied)

    @nn.compact
    def __call__(self, inputs: Array, *, use_bn: bool = True) -> Array:
        del use_bn  # no batch norm in these networks
        encoder = nn.Embed(self.vocab_size, self.embedding_size,
                           embedding_init=uniform(EMBEDDING_INIT_RANGE), name="encoder")
        if jnp.issubdtype(inputs.dtype, jnp.integer):
            x = encoder(inputs)
        else:  # an embedded sequence given directly (see the contract)
            x = inputs
        x = self.perturb(contract.EMBEDDED, x)
        fill = (self.get_variable(contract.INITIAL_STATE, "fill")
                if self.has_variable(contract.INITIAL_STATE, "fill") else 0.0)
        for layer, (_, hidden) in enumerate(self.layer_sizes()):
            x = RecurrentLayer(self.recipe, hidden, name=f"rnn_{layer}")(x, fill)
            self.sow(contract.INTERMEDIATES, contract.RNN_OUT, x)
        if self.tied:
            logits = encoder.attend(x)
        else:
            logits = Projection(self.vocab_size, EMBEDDING_INIT_RANGE, name="decoder")(x)
        return logits + self.param("decoder_bias", nn.initializers.zeros, (self.vocab_size,),
                                   logits.dtype)


def layer_sizes(embedding_size: int, hidden_size: int, num_layers: int, tied: bool
                ) -> list[tuple[int, int]]:
    """``(input size, hidden size)`` per layer: ``E`` in first, ``H`` hidden, ``E`` last if tied."""
    return [(embedding_size if layer == 0 else hidden_size,
             embedding_size if (tied and layer == num_layers - 1) else hidden_size)
            for layer in range(num_layers)]
