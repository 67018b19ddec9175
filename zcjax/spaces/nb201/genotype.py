"""NAS-Bench-201 cell genotypes: parsing, formatting and the official index order.

A NAS-Bench-201 cell (Dong & Yang, ICLR 2020) is a DAG on four nodes. Node 0 is the cell
input, node 3 its output, and every node ``j`` sums one operation applied to each earlier
node ``i < j``: six edges, five candidate operations each, 5**6 = 15,625 cells.

The official string lists the edges node by node, ``|op~i|`` for the edge from node ``i``::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|
     node 1          node 2                          node 3

The index order is the one of the official benchmark file; it is read from the table shipped
in ``zcjax/resources/nb201_benchmark.csv`` (see ``zcjax/resources/PROVENANCE.md``).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
from typing import Iterator, Sequence

from zcjax.validation import cap, check_index

#: Candidate operations in the official NAS-Bench-201 order.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: The six edges as ``(to_node, from_node)`` in the order of the official string.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

NUM_NODES = 4
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625


@dataclasses.dataclass(frozen=True)
class Genotype:
    """An immutable, hashable NAS-Bench-201 cell.

    Attributes:
      ops: the operation on each edge, in the order of :data:`EDGES`
        (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2).
    """

    ops: tuple[str, ...]

    def __post_init__(self):
        ops = tuple(self.ops)
        if len(ops) != len(EDGES):
            raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)}: "
                             f"{cap(repr(ops))}")
        for (to, frm), op in zip(EDGES, ops):
            if op not in OPS:
                raise ValueError(f"unknown operation {cap(repr(op))} on edge {frm}->{to}; "
                                 f"expected one of {OPS}")
        object.__setattr__(self, "ops", ops)

    # -- parsing and formatting ---------------------------------------------------------

    @classmethod
    def from_string(cls, arch: str) -> "Genotype":
        """Parses the official cell string; raises ``ValueError`` naming what is wrong."""
        if not isinstance(arch, str):
            raise ValueError(f"expected a cell string, got {type(arch).__name__}")
        text = arch.strip()
        shown = repr(cap(arch))  # echoed in messages, at most ~200 characters
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"{shown}: expected {NUM_NODES - 1} nodes separated by '+', got {len(nodes)}")
        op_of: dict[tuple[int, int], str] = {}
        for to, node in enumerate(nodes, start=1):
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"{shown}: node {to} {cap(node)!r} must look like '|op~i|...|'")
            edges = node[1:-1].split("|")
            if len(edges) != to:
                raise ValueError(
                    f"{shown}: node {to} must have {to} incoming edges, got {len(edges)}")
            for edge in edges:
                op, sep, frm_text = edge.partition("~")
                if not sep:
                    raise ValueError(f"{shown}: edge {cap(edge)!r} of node {to} lacks '~input'")
                if op not in OPS:
                    raise ValueError(f"{shown}: unknown operation {cap(op)!r} on node {to}; "
                                     f"expected one of {OPS}")
                # One ASCII digit, as in the official strings: int() would also take " 1",
                # "01", "1_0" or an Arabic-Indic digit.
                if not (len(frm_text) == 1 and frm_text.isascii() and frm_text.isdigit()):
                    raise ValueError(f"{shown}: input node {cap(frm_text)!r} of node {to} is not "
                                     "an integer written as one digit")
                frm = int(frm_text)
                if not 0 <= frm < to:
                    raise ValueError(
                        f"{shown}: node {to} cannot take input from node {frm}; "
                        f"inputs must be in 0..{to - 1}")
                if (to, frm) in op_of:
                    raise ValueError(f"{shown}: node {to} takes input from node {frm} twice")
                op_of[(to, frm)] = op
        return cls(tuple(op_of[edge] for edge in EDGES))

    def to_string(self) -> str:
        """The official cell string."""
        nodes = []
        for to in range(1, NUM_NODES):
            edges = (f"{self.op(to, frm)}~{frm}" for frm in range(to))
            nodes.append("|" + "|".join(edges) + "|")
        return "+".join(nodes)

    def __str__(self) -> str:
        return self.to_string()

    # -- structure ----------------------------------------------------------------------

    def op(self, to: int, frm: int) -> str:
        """The operation on the edge from node ``frm`` to node ``to``."""
        try:
            return self.ops[EDGES.index((to, frm))]
        except ValueError:
            raise ValueError(f"no edge {frm}->{to} in a NAS-Bench-201 cell") from None

    @property
    def op_indices(self) -> tuple[int, ...]:
        """Each edge's operation as its index in :data:`OPS`."""
        return tuple(OPS.index(op) for op in self.ops)

    @classmethod
    def from_op_indices(cls, indices: Sequence[int]) -> "Genotype":
        """The cell whose edge ``k`` carries ``OPS[indices[k]]``; integers in 0..4 only."""
        if len(indices) != len(EDGES):
            raise ValueError(f"expected {len(EDGES)} op indices, got {len(indices)}")
        return cls(tuple(OPS[check_index(i, len(OPS), f"op indices[{k}]")]
                         for k, i in enumerate(indices)))


def as_genotype(arch: "Genotype | str | int") -> Genotype:
    """Accepts what NAS-Bench users know: a Genotype, a cell string, or an integer index.

    Raises:
      ValueError: an unparseable string, or anything else that is not an integer in 0..15624
        (floats, bools and numeric strings are refused, not rounded or parsed).
    """
    if isinstance(arch, Genotype):
        return arch
    if isinstance(arch, str):
        return Genotype.from_string(arch)
    if hasattr(arch, "__index__"):
        return from_index(arch)
    raise ValueError(f"cannot read a NAS-Bench-201 cell from {type(arch).__name__}: "
                     f"{cap(repr(arch))}")


# -- the official index order -------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _table_strings() -> tuple[str, ...]:
    path = importlib.resources.files("zcjax.resources") / "nb201_benchmark.csv"
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    if [int(r["index"]) for r in rows] != list(range(NUM_CELLS)):
        raise RuntimeError("nb201_benchmark.csv is not in index order 0..15624")
    return tuple(r["arch"] for r in rows)


@functools.lru_cache(maxsize=None)
def all_genotypes() -> tuple[Genotype, ...]:
    """All 15,625 cells in the official NAS-Bench-201 index order."""
    return tuple(Genotype.from_string(s) for s in _table_strings())


@functools.lru_cache(maxsize=None)
def _index_map() -> dict[Genotype, int]:
    return {g: i for i, g in enumerate(all_genotypes())}


def index_of(arch: "Genotype | str") -> int:
    """The official NAS-Bench-201 index of a cell."""
    g = as_genotype(arch)
    return _index_map()[g]


def from_index(index: int) -> Genotype:
    """The cell at an official NAS-Bench-201 index: an integer in 0..15624.

    Raises:
      ValueError: a non-integer (``3.7``, ``"5"``, ``True``: refused, never rounded or parsed;
        the error is also a ``TypeError``) or an integer outside 0..15624.
    """
    return all_genotypes()[check_index(index, NUM_CELLS, "NAS-Bench-201 index")]


def iter_genotypes() -> Iterator[Genotype]:
    """Every cell, enumerated in lexicographic op order (independent of the table)."""
    import itertools

    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield Genotype(ops)
