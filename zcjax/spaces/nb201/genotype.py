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
            raise ValueError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)}: {ops}")
        for (to, frm), op in zip(EDGES, ops):
            if op not in OPS:
                raise ValueError(
                    f"unknown operation {op!r} on edge {frm}->{to}; expected one of {OPS}")
        object.__setattr__(self, "ops", ops)

    # -- parsing and formatting ---------------------------------------------------------

    @classmethod
    def from_string(cls, arch: str) -> "Genotype":
        """Parses the official cell string; raises ``ValueError`` naming what is wrong."""
        if not isinstance(arch, str):
            raise ValueError(f"expected a cell string, got {type(arch).__name__}")
        text = arch.strip()
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"{arch!r}: expected {NUM_NODES - 1} nodes separated by '+', got {len(nodes)}")
        op_of: dict[tuple[int, int], str] = {}
        for to, node in enumerate(nodes, start=1):
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"{arch!r}: node {to} {node!r} must look like '|op~i|...|'")
            edges = node[1:-1].split("|")
            if len(edges) != to:
                raise ValueError(
                    f"{arch!r}: node {to} must have {to} incoming edges, got {len(edges)}")
            for edge in edges:
                op, sep, frm_text = edge.partition("~")
                if not sep:
                    raise ValueError(f"{arch!r}: edge {edge!r} of node {to} lacks '~input'")
                if op not in OPS:
                    raise ValueError(
                        f"{arch!r}: unknown operation {op!r} on node {to}; expected one of {OPS}")
                try:
                    frm = int(frm_text)
                except ValueError:
                    raise ValueError(
                        f"{arch!r}: input node {frm_text!r} of node {to} is not an integer"
                    ) from None
                if not 0 <= frm < to:
                    raise ValueError(
                        f"{arch!r}: node {to} cannot take input from node {frm}; "
                        f"inputs must be in 0..{to - 1}")
                if (to, frm) in op_of:
                    raise ValueError(f"{arch!r}: node {to} takes input from node {frm} twice")
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
        if len(indices) != len(EDGES):
            raise ValueError(f"expected {len(EDGES)} op indices, got {len(indices)}")
        bad = [i for i in indices if not 0 <= int(i) < len(OPS)]
        if bad:
            raise ValueError(f"op indices must be in 0..{len(OPS) - 1}, got {bad}")
        return cls(tuple(OPS[int(i)] for i in indices))


def as_genotype(arch: "Genotype | str | int") -> Genotype:
    """Accepts what NAS-Bench users know: a Genotype, a cell string, or an index."""
    if isinstance(arch, Genotype):
        return arch
    if isinstance(arch, str):
        return Genotype.from_string(arch)
    if isinstance(arch, int) or hasattr(arch, "__index__"):
        return from_index(int(arch))
    raise ValueError(f"cannot read a NAS-Bench-201 cell from {type(arch).__name__}: {arch!r}")


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
    """The cell at an official NAS-Bench-201 index (0..15624)."""
    if not 0 <= int(index) < NUM_CELLS:
        raise ValueError(f"NAS-Bench-201 index must be in 0..{NUM_CELLS - 1}, got {index}")
    return all_genotypes()[int(index)]


def iter_genotypes() -> Iterator[Genotype]:
    """Every cell, enumerated in lexicographic op order (independent of the table)."""
    import itertools

    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield Genotype(ops)
