r"""Isomorphism classes of NAS-Bench-201 cells.

Many of the 15,625 NAS-Bench-201 cells (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020) compute the same function: a ``none``
edge adds nothing, ``skip_connect`` is the identity, a node sums its inputs in no particular
order, and an edge whose result never reaches the output is irrelevant. The robustness
dataset of Jung, Lukasik & Keuper ("Neural Architecture Design and Robustness: A Dataset",
ICLR 2023) evaluates one cell per class and ships, for every index, the class id ``isomorph``
(the smallest index in the class): 6,466 classes. This module rebuilds that partition from the
cells' computation graphs; the shipped ids are only used by the tests, as the oracle.

The rule: symbolic evaluation of the output node
------------------------------------------------

:func:`canonical` writes down the expression node 3 computes, in terms of the cell input,
walking the nodes in topological order (0, 1, 2, 3):

* the input node 0 is written ``0``;
* every edge ``i -> j`` contributes one summand to node ``j``, depending on its op and on the
  form ``s`` of its source node ``i``:

  - ``none``, or a source that is *known to be zero* (``s == "#"``): the zero summand ``#``;
  - ``skip_connect``: ``s`` itself, spliced in without brackets (identity; ``+`` is
    associative);
  - any other op ``o`` (``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``): ``(s)@o``;

* a node is the ``+``-join of its summands sorted as strings (the sum is commutative);
* the canonical form is node 3's expression.

No node number appears in the form, so intermediate nodes are anonymous; an edge that cannot
reach the output only changes the form of a node that node 3 never reads, so it drops out;
edges leaving a zero node 1 (whose only input is ``none``) become ``#``. Grouping all 15,625
cells by this form gives exactly the 6,466 classes of the robustness dataset (the same
partition, cell for cell, not just the same count). The form is, character for character, the
isomorphism key of the NAS-Bench-201 reference code (``Structure.to_unique_str`` with
``consider_zero=True`` in AutoDL-Projects), which is where these ids come from; this module
re-derives it and does not read the ids.

Where the official classes are not "same function" (reproduced on purpose)
-------------------------------------------------------------------------

Matching the shipped ids exactly requires keeping three artefacts of that key. Each makes
the official classes *finer* than "cells that compute the same function", never coarser:

1. **Zero summands are counted.** ``#`` stays in the sum, so the number of dead inputs
   spliced in through skips is part of the form. Index 186 (output = skip from the input,
   everything else ``none``) has form ``#+#+0``; index 14852 (the same identity, but also a
   skip from a dead node 2) has ``#+#+#+0``: classes 55 and 3, although both are ``x``.
2. **Zero is recognised only one level deep.** A node is zero only if its whole form is
   ``#``, which happens for node 1 (one input) but never for node 2 (two inputs give at least
   ``#+#``). So ``conv(node 1)`` with node 1 dead is ``#``, while ``conv(node 2)`` with node 2
   dead is the non-zero summand ``(#+#)@nor_conv_3x3``. Consequence: swapping the roles of
   nodes 1 and 2 (a genuine graph isomorphism whenever edge 2<-1 is ``none``) does not keep the
   class: 15242 and 4031 both compute ``x + conv(dead node)`` yet are in classes 55 and 9.
3. **Sorting spliced strings is not sorting summands.** A skip splices a whole sorted
   ``a+b`` block, which is then sorted as one string among the other summands; the
   concatenation need not be the sorted list of all summands. Cells 1, 9121 and 14580 all
   compute ``x + C(x) + A(C(x)) + C(C(x))`` (C = nor_conv_3x3, A = avg_pool_3x3) but land in
   three classes; 3549 and 8090 (nodes 1 and 2 swapped, edge 2<-1 ``none``, both computing
   ``C(x) + A(x)``) land in 93 and 221. Because of this, the partition depends on the exact
   spelling of the tokens and on code-point string order: writing the zero as ``Z`` instead of
   ``#`` gives 6,484 classes, writing ``o(s)`` instead of ``(s)@o`` gives 6,350.

For comparison (measured while building this module): dropping zero summands (1, which also
makes a node with only dead inputs zero, fixing 2) gives 5,390 classes; sorting the flattened
summands (fixing 3) gives 5,755; both give 4,930 classes of cells with the same output
expression. Those coarser partitions are not what the benchmark's ids mean, so they are not
offered here. Note also that ``(#+#)@nor_conv_3x3`` is not exactly zero in a trained network
(batch norm's shift makes it a learned constant), which is a reasonable reading of artefact 2
for convolutions, though not for ``avg_pool_3x3``.

What does hold for every cell (and is tested): the ops on edges that cannot reach the output
(into node 2 when 3<-2 is ``none``; into node 1 when 2<-1 and 3<-1 are ``none``) and the ops on
edges leaving a zero node 1 do not change the form; and when 1<-0 is ``skip_connect`` (node 1
equals the input) exchanging the ops of 2<-0 and 2<-1, or of 3<-0 and 3<-1, does not either.
"""

from __future__ import annotations

import functools
from typing import Iterable

from zcjax.spaces.nb201.genotype import NUM_NODES, Genotype, all_genotypes, as_genotype

#: Form of the cell input (node 0).
INPUT_FORM = "0"
#: Form of a zero summand (a ``none`` edge, or any edge out of a zero node).
ZERO_FORM = "#"
#: Number of isomorphism classes of NAS-Bench-201 cells.
NUM_CLASSES = 6466


def _summand(op: str, source_form: str) -> str:
    """What one edge adds to the sum of its target node, given its source node's form."""
    if op == "none" or source_form == ZERO_FORM:
        return ZERO_FORM
    if op == "skip_connect":
        return source_form
    return f"({source_form})@{op}"


def _node_form(summands: Iterable[str]) -> str:
    """A node's form: its summands in string order, joined by ``+``."""
    return "+".join(sorted(summands))


def node_forms(g: "Genotype | str | int") -> tuple[str, ...]:
    """The symbolic expression of every node (0..3) of a cell, in terms of the input ``0``."""
    g = as_genotype(g)
    forms = [INPUT_FORM]
    for to in range(1, NUM_NODES):
        forms.append(_node_form(_summand(g.op(to, frm), forms[frm]) for frm in range(to)))
    return tuple(forms)


def canonical(g: "Genotype | str | int") -> str:
    """The canonical form of a cell: the expression its output node computes (see module doc).

    Two cells are in the same NAS-Bench-201 isomorphism class iff their forms are equal.
    """
    return node_forms(g)[-1]


@functools.lru_cache(maxsize=None)
def _class_of_form() -> dict[str, int]:
    """Maps each canonical form to the smallest official index that has it."""
    classes: dict[str, int] = {}
    for index, g in enumerate(all_genotypes()):
        classes.setdefault(canonical(g), index)
    return classes


def isomorphism_class(g: "Genotype | str | int") -> int:
    """The class id of a cell: the smallest official index among the cells it is isomorphic to.

    This is the ``isomorph`` id of the NAS-Bench-201 robustness dataset (Jung et al., 2023).
    """
    return _class_of_form()[canonical(g)]


@functools.lru_cache(maxsize=None)
def class_representatives() -> tuple[int, ...]:
    """The sorted class ids (6,466 of them); each is the smallest index of its class."""
    return tuple(sorted(_class_of_form().values()))
