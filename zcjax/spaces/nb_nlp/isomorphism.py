"""Canonical form of NAS-Bench-NLP recipes: one string per function, whatever the node names.

Two recipes compute the same family of networks (the same function for corresponding
parameters) when one becomes the other by

1. renaming its intermediate nodes (``node_3`` or ``f_act``: names carry no meaning);
2. reordering the inputs of ``linear`` (each input has its own matrix and all are initialised
   alike), ``elementwise_prod`` and ``elementwise_sum`` (``blend`` is not symmetric: its first
   input is the gate);
3. permuting the hidden states other than ``h_new_0`` (renaming ``h_prev_k``/``h_new_k``
   together for ``k >= 1``: they start at the same value and only ``h_new_0`` is the output);
4. merging parameter-free nodes that compute the same operation of the same values (two
   ``tanh`` of one node, say): they are equal at every step. Linear nodes are never merged,
   since each has its own parameters.

:func:`canonical` applies 4, then returns the smallest serialisation over 1-3: the nodes are
numbered in the post-order of a depth-first walk from ``h_new_0 .. h_new_{n-1}``, visiting the
inputs of a symmetric node sorted by a structural hash of what they compute; inputs with equal
hashes but distinct nodes are tried in every order (rare: the benchmark's cells need at most
a few orders). The result is itself a valid recipe string (intermediate nodes renamed
``node_<i>``), so ``canonical(parse(canonical(r))) == canonical(r)``.
"""

from __future__ import annotations

import hashlib
import itertools
import json

from zcjax.spaces.nb_nlp.recipe import COMMUTATIVE, Node, Recipe, h_new, h_prev, hidden_index

#: Most serialisations tried for one recipe (an error beyond: a recipe that symmetric is not
#: one the benchmark's generator makes).
MAX_ORDERINGS = 100_000


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def _is_output(name: str) -> bool:
    return hidden_index(name, "new") is not None


def merge_duplicates(recipe: Recipe) -> list[Node]:
    """The recipe's nodes with duplicate parameter-free nodes merged (see the module doc).

    Returns nodes in the recipe's topological order; a merged node's readers read the kept
    one, which is an output when the group has one (outputs are never dropped).
    """
    key: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for name in recipe.order:
        node = recipe.node(name)
        inputs = [key.get(i, i) for i in node.inputs]  # cell inputs are their own key
        if node.op == "linear":
            key[name] = _digest("linear", name)  # own parameters: never equal to another
        else:
            key[name] = _digest(node.op, *(sorted(inputs) if node.op in COMMUTATIVE
                                            else inputs))
        groups.setdefault(key[name], []).append(name)
    keep = {}
    for members in groups.values():
        outputs = sorted((m for m in members if _is_output(m)),
                         key=lambda m: hidden_index(m, "new"))
        keep.update({m: (outputs or members)[0] for m in members})
    nodes = []
    for name in recipe.order:
        if keep[name] != name and not _is_output(name):
            continue
        node = recipe.node(name)
        nodes.append(Node(name, node.op, tuple(keep.get(i, i) for i in node.inputs)))
    return nodes


def _structural_hashes(nodes: list[Node]) -> dict[str, str]:
    """A hash per node of what it computes (names of intermediate nodes ignored)."""
    label: dict[str, str] = {}
    for node in nodes:  # topological order
        inputs = [label.get(i, i) for i in node.inputs]
        if node.op in COMMUTATIVE:
            inputs.sort()
        label[node.name] = _digest(node.op, node.name if _is_output(node.name) else "",
                                   *inputs)
    return label


def _serialise(nodes: dict[str, Node], num_hidden: int,
               choice: dict[str, tuple[str, ...]]) -> str:
    """The recipe string of one walk: ``choice[name]`` is the visiting order of its inputs."""
    number: dict[str, str] = {}
    out: dict[str, dict] = {}
    intermediates = itertools.count()

    def ref(name: str) -> str:
        return number.get(name, name)

    for root in [h_new(k) for k in range(num_hidden)]:
        stack = [(root, iter(choice[root]))]
        seen = {root}
        while stack:
            name, inputs = stack[-1]
            for child in inputs:
                if child in nodes and child not in number and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(choice[child])))
                    break
            else:
                stack.pop()
                if name in number:
                    continue
                node = nodes[name]
                number[name] = name if _is_output(name) else f"node_{next(intermediates)}"
                out[number[name]] = {"op": node.op, "input": [ref(i) for i in choice[name]]}
    return json.dumps(out)


def _orderings(nodes: dict[str, Node], label: dict[str, str]):
    """Every visiting order of every node's inputs that is sorted by structural hash."""
    per_node = []
    for name, node in nodes.items():
        if node.op not in COMMUTATIVE:
            per_node.append([(name, node.inputs)])
            continue
        ranked = sorted(node.inputs, key=lambda i: label.get(i, i))
        groups = [list(g) for _, g in itertools.groupby(ranked, key=lambda i: label.get(i, i))]
        options = [tuple(itertools.chain.from_iterable(p))
                   for p in itertools.product(*[sorted(set(itertools.permutations(g)))
                                                for g in groups])]
        per_node.append([(name, o) for o in options])
    total = 1
    for options in per_node:
        total *= len(options)
    if total > MAX_ORDERINGS:
        raise ValueError(f"the recipe is too symmetric for an exact canonical form ({total:,} "
                         f"orderings of its symmetric inputs, over {MAX_ORDERINGS:,})")
    for combo in itertools.product(*per_node):
        yield dict(combo)


def _relabel_hidden(recipe: Recipe, perm: tuple[int, ...]) -> Recipe:
    """The recipe with hidden state ``k`` renamed ``perm[k]`` (``h_prev`` and ``h_new``)."""
    def rename(name: str) -> str:
        for kind, make in (("prev", h_prev), ("new", h_new)):
            k = hidden_index(name, kind)
            if k is not None:
                return make(perm[k])
        return name

    return Recipe(tuple(Node(rename(n.name), n.op, tuple(rename(i) for i in n.inputs))
                        for n in recipe.nodes))


def canonical(recipe: Recipe) -> str:
    """The canonical recipe string of ``recipe`` (see the module doc)."""
    n = recipe.num_hidden
    best = None
    for rest in itertools.permutations(range(1, n)):
        permuted = _relabel_hidden(recipe, (0, *rest)) if rest != tuple(range(1, n)) else recipe
        merged = merge_duplicates(permuted)
        label = _structural_hashes(merged)
        nodes = {node.name: node for node in merged}
        for choice in _orderings(nodes, label):
            text = _serialise(nodes, n, choice)
            if best is None or text < best:
                best = text
    return best
