"""NAS-Bench-NLP recurrent cells in the benchmark's own recipe format.

Klyuchnikov et al., "NAS-Bench-NLP: Neural Architecture Search Benchmark for Natural Language
Processing", IEEE Access 2022 (arXiv:2006.07116); reference ``fmsnew/nas-bench-nlp-release``
(``custom_rnn.py`` runs a recipe, ``search_space.py`` generates them, the training logs store
each as ``json.dumps(recipe)`` under ``"recepie"``).

Format
------
A recipe is a JSON object ``{node name: {"op": OP, "input": [names]}}``. A cell at time ``t``
reads the inputs ``x`` (the layer's input at ``t``) and ``h_prev_0 .. h_prev_{n-1}`` (its
hidden states from ``t - 1``) and computes every node; the nodes ``h_new_0 .. h_new_{n-1}`` are
the new hidden states, ``h_new_0`` is also the layer's output (an LSTM's ``c`` is
``h_new_1``). Node names are free (``node_3``, the hand-written LSTM's ``f_act``), and a node
may read a new hidden state like any node. Operations and their inputs:

=========================  ======  =========================================================
op                         inputs  value
=========================  ======  =========================================================
``linear``                 >= 1    ``sum_i W_i a_i + b`` (one matrix per input, one bias)
``blend``                  3       ``a_0 * a_1 + (1 - a_0) * a_2``
``elementwise_prod``       2       ``a_0 * a_1``
``elementwise_sum``        2       ``a_0 + a_1``
``activation_tanh``        1       ``tanh(a_0)``
``activation_sigm``        1       ``sigmoid(a_0)``
``activation_leaky_relu``  1       ``leaky_relu(a_0)``, negative slope 0.01 (PyTorch default)
=========================  ======  =========================================================

Validation (a ``ValueError`` naming the node): an unknown op, a wrong number of inputs, a node
reading an undefined name (``h_prev_k`` is defined for ``k < n``), a cycle, a node that feeds no
new hidden state (the generator removes them and the benchmark has none), a missing output
(``h_new_0``, or a gap in ``h_new_0 .. h_new_{n-1}``), a node named like an input, names such
as ``h_new_01`` (the reference would read the suffix as a number). The reference applies
elementwise ops with more than two inputs wrongly (its loop reuses a stale index); the
generator never makes them, and they are refused here.

The architecture string (:meth:`Recipe.to_string`) is ``json.dumps`` of the recipe with the
default separators and the nodes in the recipe's own order: exactly the logs' ``recepie``
string, so ``parse(log["recepie"]).to_string() == log["recepie"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any, Mapping

from zcjax.validation import cap

#: The benchmark's operations, with (minimum, maximum) inputs (``None``: no maximum).
ARITY: Mapping[str, tuple[int, int | None]] = {
    "linear": (1, None),
    "blend": (3, 3),
    "elementwise_prod": (2, 2),
    "elementwise_sum": (2, 2),
    "activation_tanh": (1, 1),
    "activation_sigm": (1, 1),
    "activation_leaky_relu": (1, 1),
}
OPS = tuple(ARITY)
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")
#: Operations whose inputs commute (the order of their inputs does not change the function).
COMMUTATIVE = ("linear", "elementwise_prod", "elementwise_sum")

INPUT = "x"
_HIDDEN = re.compile(r"h_(prev|new)_(\d+)")
#: Largest recipe accepted (nodes); the benchmark's have at most ~25.
MAX_NODES = 1000


def h_prev(k: int) -> str:
    return f"h_prev_{k}"


def h_new(k: int) -> str:
    return f"h_new_{k}"


def hidden_index(name: str, kind: str) -> int | None:
    """``k`` for ``h_<kind>_k`` (``kind`` ``"prev"`` or ``"new"``), else ``None``.

    Raises ``ValueError`` for ``h_<kind>_`` followed by a number with leading zeros.
    """
    match = _HIDDEN.fullmatch(name)
    if match is None or match.group(1) != kind:
        return None
    digits = match.group(2)
    if digits != str(int(digits)):
        raise ValueError(f"ambiguous hidden-state name {cap(repr(name))} (leading zeros)")
    return int(digits)


@dataclasses.dataclass(frozen=True)
class Node:
    """One node of a recipe: its name, operation and ordered inputs."""

    name: str
    op: str
    inputs: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A validated NAS-Bench-NLP cell (immutable, hashable; nodes in the recipe's order).

    Build with :meth:`from_string` / :meth:`from_dict` (validated); :meth:`to_string` gives the
    architecture string.
    """

    nodes: tuple[Node, ...]

    def __post_init__(self):
        _validate(self.nodes)

    # -- reading and writing -------------------------------------------------------------

    @classmethod
    def from_dict(cls, recipe: Mapping[str, Any]) -> "Recipe":
        """A recipe from its JSON object (``{name: {"op": ..., "input": [...]}}``)."""
        if not isinstance(recipe, Mapping):
            raise ValueError(f"a recipe is a JSON object of nodes, got "
                             f"{type(recipe).__name__}")
        if not recipe:
            raise ValueError("empty recipe: it needs at least the node h_new_0")
        if len(recipe) > MAX_NODES:
            raise ValueError(f"a recipe of {len(recipe)} nodes is over the {MAX_NODES} accepted")
        nodes = []
        for name, spec in recipe.items():
            where = f"node {cap(repr(name), 80)}"
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where}: node names are non-empty strings")
            if not isinstance(spec, Mapping) or set(spec) != {"op", "input"}:
                keys = sorted(spec) if isinstance(spec, Mapping) else type(spec).__name__
                raise ValueError(f"{where}: expected {{\"op\": ..., \"input\": [...]}}, got "
                                 f"{cap(repr(keys), 80)}")
            op, inputs = spec["op"], spec["input"]
            if not isinstance(inputs, (list, tuple)) or not all(
                    isinstance(i, str) for i in inputs):
                raise ValueError(f"{where}: 'input' must be a list of node names, got "
                                 f"{cap(repr(inputs), 80)}")
            if not isinstance(op, str):
                raise ValueError(f"{where}: 'op' must be a string, got {cap(repr(op), 80)}")
            nodes.append(Node(name, op, tuple(inputs)))
        return cls(tuple(nodes))

    @classmethod
    def from_string(cls, text: str) -> "Recipe":
        """A recipe from its JSON text (any white space; a repeated node name is an error)."""
        if not isinstance(text, str):
            raise ValueError(f"a recipe string is JSON text, got {type(text).__name__}")
        try:
            recipe = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a JSON recipe ({e.msg} at character {e.pos}): "
                             f"{cap(text, 120)!r}") from None
        return cls.from_dict(recipe)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {n.name: {"op": n.op, "input": list(n.inputs)} for n in self.nodes}

    def to_string(self) -> str:
        """``json.dumps`` of the recipe: the logs' ``recepie`` string."""
        return json.dumps(self.to_dict())

    # -- structure -----------------------------------------------------------------------

    @property
    def num_hidden(self) -> int:
        """``n``: the hidden states the cell carries (``h_new_0 .. h_new_{n-1}``)."""
        return _structure(self.nodes)[0]

    @property
    def order(self) -> tuple[str, ...]:
        """Node names in an order that computes every input before its reader."""
        return _structure(self.nodes)[1]

    def node(self, name: str) -> Node:
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def count(self, op: str) -> int:
        return sum(n.op == op for n in self.nodes)

    def __repr__(self) -> str:
        return f"Recipe({cap(self.to_string(), 160)})"


def _no_duplicates(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"node {cap(repr(key), 80)} is defined twice")
        seen.add(key)
    return dict(pairs)


def is_input(name: str, num_hidden: int) -> bool:
    """Whether ``name`` is a cell input (``x`` or ``h_prev_k``, ``k < num_hidden``)."""
    k = hidden_index(name, "prev")
    return name == INPUT or (k is not None and k < num_hidden)


@functools.lru_cache(maxsize=4096)
def _structure(nodes: tuple[Node, ...]) -> tuple[int, tuple[str, ...]]:
    """``(number of hidden states, a topological order)``; ``ValueError`` on a cycle.

    Depth-first from each node in the recipe's order, inputs in their order (iterative, so a
    long chain cannot exhaust Python's recursion limit).
    """
    num_hidden = sum(hidden_index(n.name, "new") is not None for n in nodes)
    by_name = {n.name: n for n in nodes}
    on_path, done, order = set(), set(), []
    for root in by_name:
        if root in done:
            continue
        on_path.add(root)
        stack = [(root, iter(by_name[root].inputs))]
        while stack:
            name, inputs = stack[-1]
            for child in inputs:
                if child not in by_name or child in done:
                    continue  # a cell input, or computed already
                if child in on_path:
                    raise ValueError(f"the recipe has a cycle through node "
                                     f"{cap(repr(child), 80)}: every node must be computable "
                                     "from x and the previous hidden states")
                on_path.add(child)
                stack.append((child, iter(by_name[child].inputs)))
                break
            else:
                stack.pop()
                on_path.discard(name)
                done.add(name)
                order.append(name)
    return num_hidden, tuple(order)


def _validate(nodes: tuple[Node, ...]) -> None:
    if not nodes:
        raise ValueError("empty recipe: it needs at least the node h_new_0")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError("a node name is defined twice")
    outputs = []
    for node in nodes:
        where = f"node {cap(repr(node.name), 80)}"
        if node.op not in ARITY:
            raise ValueError(f"{where}: unknown op {cap(repr(node.op), 80)}; the benchmark's "
                             f"ops are {', '.join(OPS)}")
        lo, hi = ARITY[node.op]
        if len(node.inputs) < lo or (hi is not None and len(node.inputs) > hi):
            wanted = f"{lo}" if lo == hi else f"at least {lo}"
            raise ValueError(f"{where}: {node.op} takes {wanted} input(s), got "
                             f"{len(node.inputs)}")
        if node.name == INPUT or hidden_index(node.name, "prev") is not None:
            raise ValueError(f"{where}: {node.name} is a cell input, not a node name")
        k = hidden_index(node.name, "new")
        if k is not None:
            outputs.append(k)
    num_hidden = len(outputs)
    if not outputs or sorted(outputs) != list(range(num_hidden)):
        missing = sorted(set(range(max(outputs, default=0) + 1)) - set(outputs))
        raise ValueError(f"missing output(s) {', '.join(h_new(k) for k in missing)}: the new "
                         f"hidden states must be h_new_0 .. h_new_{{n-1}}")
    defined = set(names)
    for node in nodes:
        for name in node.inputs:
            if name in defined or is_input(name, num_hidden):
                continue
            k = hidden_index(name, "prev")
            hint = (f" (the cell carries {num_hidden} hidden state(s), h_prev_0.."
                    f"h_prev_{num_hidden - 1})" if k is not None else "")
            raise ValueError(f"node {cap(repr(node.name), 80)} reads {cap(repr(name), 80)}, "
                             f"which is neither a node nor an input{hint}")
    _structure(nodes)  # cycles
    by_name = {n.name: n for n in nodes}
    live, stack = set(), [h_new(k) for k in range(num_hidden)]
    while stack:
        name = stack.pop()
        if name in live or name not in by_name:
            continue
        live.add(name)
        stack.extend(by_name[name].inputs)
    dead = [n for n in names if n not in live]
    if dead:
        raise ValueError(f"node(s) {cap(', '.join(dead), 120)} feed no new hidden state "
                         "(the benchmark's generator removes such nodes)")


def as_recipe(arch: "Recipe | str | Mapping[str, Any]") -> Recipe:
    """A :class:`Recipe` from a recipe, its JSON string or its dict."""
    if isinstance(arch, Recipe):
        return arch
    if isinstance(arch, str):
        return Recipe.from_string(arch)
    if isinstance(arch, Mapping):
        return Recipe.from_dict(arch)
    raise TypeError(f"expected a Recipe, a recipe string or dict, got {type(arch).__name__}")


#: The benchmark's three hand-written cells (``search_space.py`` ``get_example_recepie``).
EXAMPLES: Mapping[str, str] = {
    "rnn": json.dumps({
        "f": {"op": "linear", "input": ["x", "h_prev_0"]},
        "h_new_0": {"op": "activation_tanh", "input": ["f"]}}),
    "lstm": json.dumps({
        "i": {"op": "linear", "input": ["x", "h_prev_0"]},
        "i_act": {"op": "activation_tanh", "input": ["i"]},
        "j": {"op": "linear", "input": ["x", "h_prev_0"]},
        "j_act": {"op": "activation_sigm", "input": ["j"]},
        "f": {"op": "linear", "input": ["x", "h_prev_0"]},
        "f_act": {"op": "activation_sigm", "input": ["f"]},
        "o": {"op": "linear", "input": ["x", "h_prev_0"]},
        "o_act": {"op": "activation_tanh", "input": ["o"]},
        "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
        "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
        "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
        "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
        "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]}}),
    "gru": json.dumps({
        "r": {"op": "linear", "input": ["x", "h_prev_0"]},
        "r_act": {"op": "activation_sigm", "input": ["r"]},
        "z": {"op": "linear", "input": ["x", "h_prev_0"]},
        "z_act": {"op": "activation_sigm", "input": ["z"]},
        "rh": {"op": "elementwise_prod", "input": ["r_act", "h_prev_0"]},
        "h_tilde": {"op": "linear", "input": ["x", "rh"]},
        "h_tilde_act": {"op": "activation_tanh", "input": ["h_tilde"]},
        "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "h_tilde_act"]}}),
}
