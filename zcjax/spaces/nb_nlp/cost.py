"""Parameters and multiply-accumulates of NAS-Bench-NLP networks, counted from the recipe.

Parameters (the logs' ``num_params``: every parameter of the PyTorch model once, the tied
decoder matrix being the embedding)::

    V E                        embedding (= the tied decoder's matrix)
  + V                          decoder bias
  + V H_L   (untied only)      decoder matrix
  + sum_layers sum_linear ( sum_inputs d_i H_l + H_l )

with ``d_i`` the layer's input size for ``x`` and ``H_l`` otherwise. Checked against the
``num_params`` of the benchmark's published WikiText-2 logs (``train_logs_wikitext-2``,
``V = 33,278``) in ``tests/spaces/test_nb_nlp.py``.

Multiply-accumulates of one sequence of ``T`` tokens (what the ``flops`` proxy counts in the
network's program: matrix products only; the embedding lookup, activations and elementwise
operations are free)::

    T ( sum_layers sum_linear sum_inputs d_i H_l  +  E V )
"""

from __future__ import annotations

from zcjax.spaces.nb_nlp.network import layer_sizes
from zcjax.spaces.nb_nlp.recipe import INPUT, Recipe


def _cell_matrices(recipe: Recipe, input_size: int, hidden: int) -> tuple[int, int]:
    """(matrix entries, linear nodes) of one layer's cell."""
    entries = nodes = 0
    for node in recipe.nodes:
        if node.op == "linear":
            nodes += 1
            entries += sum((input_size if i == INPUT else hidden) * hidden for i in node.inputs)
    return entries, nodes


def param_count(recipe: Recipe, *, vocab_size: int, embedding_size: int, hidden_size: int,
                num_layers: int, tied: bool = True) -> int:
    """Parameters of the network (see the module doc)."""
    total = vocab_size * embedding_size + vocab_size
    sizes = layer_sizes(embedding_size, hidden_size, num_layers, tied)
    if not tied:
        total += sizes[-1][1] * vocab_size
    for d, h in sizes:
        entries, nodes = _cell_matrices(recipe, d, h)
        total += entries + nodes * h
    return total


def macs(recipe: Recipe, *, seq_len: int, vocab_size: int, embedding_size: int,
         hidden_size: int, num_layers: int, tied: bool = True) -> int:
    """Multiply-accumulates of one forward pass of one sequence of ``seq_len`` tokens."""
    sizes = layer_sizes(embedding_size, hidden_size, num_layers, tied)
    per_step = sum(_cell_matrices(recipe, d, h)[0] for d, h in sizes)
    return seq_len * (per_step + sizes[-1][1] * vocab_size)
