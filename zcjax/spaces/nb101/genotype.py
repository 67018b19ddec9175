"""NAS-Bench-101 cells: validation, pruning, the architecture string and random sampling.

A NAS-Bench-101 cell (Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture
Search", ICML 2019) is a DAG of at most 7 vertices given by an upper-triangular 0/1 adjacency
matrix (``matrix[i][j] = 1``: an edge from vertex ``i`` to vertex ``j > i``) and one label per
vertex: the first is ``input``, the last ``output``, the others one of :data:`OPS`. The
benchmark holds every such cell with at most 9 edges after pruning (423,624 graph classes).

Reference: ``google-research/nasbench``, ``nasbench/lib/model_spec.py`` (``ModelSpec``, its
pruning) and ``nasbench/api.py`` (``_check_spec``: what the benchmark accepts).

Original and pruned forms
-------------------------
A :class:`NB101Cell` keeps the matrix and labels **exactly as given** (the original form): its
string is what the user wrote, and ``parse(format(cell)) == cell``. Vertices that are not on a
path from the input to the output compute nothing the output sees; ``ModelSpec`` deletes them
(and their edges) and the network is built from what remains. :attr:`NB101Cell.pruned` is that
pruned cell (itself a :class:`NB101Cell`, with fewer vertices when any were removed). Like the
benchmark's ``_check_spec``, validation applies the limits to the pruned cell: an original
matrix may hold more than 9 edges when pruning removes the excess (the issue's first example
cell has 12 edges, 9 after pruning vertex 5). A cell whose input does not reach its output is
refused (``ModelSpec`` marks it invalid; the benchmark has no such cell).

Cells with fewer than 7 vertices are accepted, as ``ModelSpec`` accepts them: the benchmark
stores pruned cells (``module_adjacency`` of the official API can be 6x6 or smaller).

The architecture string
-----------------------
The rows of the adjacency matrix as digit strings, then the labels, separated by spaces, e.g.
a 5-vertex cell (input -> 1, 2, 4; 1 -> 3, 4; 2 -> 4; 3 -> 4)::

    01101 00011 00001 00001 00000 input conv3x3 maxpool3x3 conv1x1 output

``V`` rows of ``V`` digits and ``V`` labels (``2 <= V <= 7``). Labels are written short
(``conv3x3``, ``conv1x1``, ``maxpool3x3``); :meth:`NB101Cell.from_string` also reads the
benchmark's own labels (``conv3x3-bn-relu``, ``conv1x1-bn-relu``). Any run of whitespace
separates tokens. Isomorphic cells have different strings and the same graph hash
(:mod:`zcjax.spaces.nb101.isomorphism`).

Other encodings: :meth:`NB101Cell.from_spec` / :meth:`NB101Cell.to_spec` (a matrix and the
benchmark's labels, as ``nasbench.api.ModelSpec`` takes them) and
:meth:`NB101Cell.from_naslib_tuple` / :meth:`NB101Cell.to_naslib_tuple` (NASLib's flat tuple:
the matrix row by row, then op codes 0=input, 1=output, 2=maxpool3x3, 3=conv1x1, 4=conv3x3;
the encoding of the shipped ground truth).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np

from zcjax.validation import cap, check_int, check_seed

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3"
CONV1X1 = "conv1x1"
MAXPOOL3X3 = "maxpool3x3"

#: Interior operations in the order of the benchmark's ``config['available_ops']``; the graph
#: hash labels each by its index here.
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)

#: The benchmark's label of each operation (``nasbench/lib/base_ops.py`` ``OP_MAP``).
BENCHMARK_LABELS: dict[str, str] = {
    CONV3X3: "conv3x3-bn-relu", CONV1X1: "conv1x1-bn-relu", MAXPOOL3X3: "maxpool3x3",
    INPUT: INPUT, OUTPUT: OUTPUT,
}
_FROM_LABEL = {**{v: k for k, v in BENCHMARK_LABELS.items()}, **{k: k for k in BENCHMARK_LABELS}}

#: NASLib's op codes (``naslib/search_spaces/nasbench101/conversions.py``).
NASLIB_CODES: tuple[str, ...] = (INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3)

#: The benchmark's limits (``nasbench/lib/config.py``), checked on the pruned cell.
MAX_VERTICES = 7
MAX_EDGES = 9


@dataclasses.dataclass(frozen=True)
class NB101Cell:
    """An immutable, hashable NAS-Bench-101 cell in its original (unpruned) form.

    Attributes:
      matrix: the adjacency matrix as a tuple of rows of 0/1 ints; ``matrix[i][j] == 1`` is an
        edge from vertex ``i`` to vertex ``j`` (strictly upper triangular).
      ops: one label per vertex: ``input``, then :data:`OPS` entries, then ``output``.

    Construction validates the cell (``ValueError`` naming what is wrong) and accepts any 0/1
    integer or boolean array-like for ``matrix`` and the short or benchmark labels for ``ops``.
    Equality and hashing compare the original form; isomorphic cells compare different (use
    :func:`zcjax.spaces.nb101.isomorphism.graph_hash` to identify them).
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]
    _kept: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        ops = _normalise_ops(self.ops)
        matrix = _normalise_matrix(self.matrix, len(ops))
        kept = _kept_vertices(matrix)
        if kept is None:
            raise ValueError("the input does not reach the output (no input-to-output path), "
                             "so the cell computes nothing")
        edges = sum(matrix[i][j] for i in kept for j in kept)
        if edges > MAX_EDGES:
            raise ValueError(f"{edges} edges after pruning; NAS-Bench-101 allows at most "
                             f"{MAX_EDGES}")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "_kept", kept)

    # -- structure ------------------------------------------------------------------------

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        """Edges of the original matrix (the benchmark's limit applies to :attr:`pruned`)."""
        return sum(map(sum, self.matrix))

    @property
    def kept_vertices(self) -> tuple[int, ...]:
        """The vertices on a path from input to output (what pruning keeps), ascending."""
        return self._kept

    @property
    def is_pruned(self) -> bool:
        """True when pruning removes nothing."""
        return len(self._kept) == self.num_vertices

    @functools.cached_property
    def pruned(self) -> "NB101Cell":
        """The cell without the vertices that are not on an input-to-output path.

        ``ModelSpec._prune`` of the reference: rows and columns of the removed vertices are
        deleted, the others keep their order. The network of a cell is the network of its
        pruned form; a cell that is already pruned returns itself.
        """
        if self.is_pruned:
            return self
        keep = self._kept
        return NB101Cell(tuple(tuple(self.matrix[i][j] for j in keep) for i in keep),
                         tuple(self.ops[i] for i in keep))

    # -- the architecture string ----------------------------------------------------------

    @classmethod
    def from_string(cls, text: str) -> "NB101Cell":
        """Parses the architecture string (module doc); ``ValueError`` naming what is wrong."""
        if not isinstance(text, str):
            raise ValueError(f"expected a NAS-Bench-101 cell string, got {type(text).__name__}")
        shown = repr(cap(text))
        tokens = text.split()
        if not tokens or len(tokens) % 2:
            raise ValueError(
                f"{shown}: expected V rows of V digits then V operation labels (2 <= V <= "
                f"{MAX_VERTICES}), separated by spaces; got {len(tokens)} tokens")
        v = len(tokens) // 2
        if not 2 <= v <= MAX_VERTICES:
            raise ValueError(f"{shown}: {v} vertices; a NAS-Bench-101 cell has 2 to "
                             f"{MAX_VERTICES}")
        rows = []
        for i, row in enumerate(tokens[:v]):
            if len(row) != v or any(c not in "01" for c in row):
                raise ValueError(f"{shown}: row {i} of the adjacency matrix, {cap(row, 40)!r}, "
                                 f"must be {v} digits 0 or 1")
            rows.append(tuple(int(c) for c in row))
        try:
            return cls(tuple(rows), tuple(tokens[v:]))
        except ValueError as e:
            raise ValueError(f"{shown}: {e}") from None

    def to_string(self) -> str:
        """The architecture string: the rows as digits, then the short labels."""
        rows = ("".join(str(x) for x in row) for row in self.matrix)
        return " ".join((*rows, *self.ops))

    def __str__(self) -> str:
        return self.to_string()

    # -- other encodings ------------------------------------------------------------------

    @classmethod
    def from_spec(cls, matrix: Any, ops: Sequence[str]) -> "NB101Cell":
        """A cell from an adjacency matrix and labels, as ``nasbench.api.ModelSpec`` takes
        them (benchmark or short labels)."""
        return cls(matrix, tuple(ops))

    def to_spec(self) -> tuple[np.ndarray, list[str]]:
        """``(matrix, labels)`` for ``nasbench.api.ModelSpec``: an int matrix and the
        benchmark's labels (``conv3x3-bn-relu``, ...)."""
        return (np.array(self.matrix, dtype=np.int64),
                [BENCHMARK_LABELS[op] for op in self.ops])

    @classmethod
    def from_naslib_tuple(cls, values: Sequence[int]) -> "NB101Cell":
        """A cell from NASLib's flat tuple (``V*V`` matrix entries row by row, then ``V`` op
        codes 0=input, 1=output, 2=maxpool3x3, 3=conv1x1, 4=conv3x3)."""
        values = tuple(values)
        v = next((v for v in range(2, MAX_VERTICES + 1) if v * v + v == len(values)), None)
        if v is None:
            raise ValueError(f"a NASLib NAS-Bench-101 tuple has V*V + V entries (56 for 7 "
                             f"vertices), got {len(values)}")
        codes = [check_int(c, f"op code {k}", 0, len(NASLIB_CODES) - 1)
                 for k, c in enumerate(values[v * v:])]
        matrix = np.array(values[:v * v], dtype=object).reshape(v, v)
        return cls(matrix, tuple(NASLIB_CODES[c] for c in codes))

    def to_naslib_tuple(self) -> tuple[int, ...]:
        """NASLib's flat tuple (the encoding of the shipped ground truth)."""
        flat = tuple(x for row in self.matrix for x in row)
        return flat + tuple(NASLIB_CODES.index(op) for op in self.ops)


def as_cell(arch: "NB101Cell | str") -> NB101Cell:
    """A cell from a :class:`NB101Cell` or an architecture string."""
    if isinstance(arch, NB101Cell):
        return arch
    if isinstance(arch, str):
        return NB101Cell.from_string(arch)
    raise ValueError(f"cannot read a NAS-Bench-101 cell from {type(arch).__name__}: "
                     f"{cap(repr(arch))}")


# -- validation helpers ----------------------------------------------------------------------

def _normalise_ops(ops: Any) -> tuple[str, ...]:
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise ValueError(f"ops must be a sequence of labels, got {cap(repr(ops))}")
    ops = tuple(ops)
    if not 2 <= len(ops) <= MAX_VERTICES:
        raise ValueError(f"{len(ops)} vertices; a NAS-Bench-101 cell has 2 to {MAX_VERTICES}")
    out = []
    for k, op in enumerate(ops):
        short = _FROM_LABEL.get(op) if isinstance(op, str) else None
        if short is None:
            raise ValueError(f"unknown operation {cap(repr(op), 60)} at vertex {k}; expected "
                             f"one of {OPS} (or the benchmark's labels)")
        out.append(short)
    if out[0] != INPUT:
        raise ValueError(f"vertex 0 must be {INPUT!r}, got {out[0]!r}")
    if out[-1] != OUTPUT:
        raise ValueError(f"the last vertex must be {OUTPUT!r}, got {out[-1]!r}")
    for k, op in enumerate(out[1:-1], start=1):
        if op in (INPUT, OUTPUT):
            raise ValueError(f"interior vertex {k} cannot be {op!r}; expected one of {OPS}")
    return tuple(out)


def _normalise_matrix(matrix: Any, v: int) -> tuple[tuple[int, ...], ...]:
    try:
        rows = [list(row) for row in matrix]
    except TypeError:
        raise ValueError(f"the adjacency matrix must be a {v}x{v} array of 0/1, got "
                         f"{cap(repr(matrix))}") from None
    if len(rows) != v or any(len(row) != v for row in rows):
        shape = f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})}"
        raise ValueError(f"the adjacency matrix must be {v}x{v} (one row and column per "
                         f"label), got {cap(shape, 80)}")
    out = []
    for i, row in enumerate(rows):
        values = []
        for j, x in enumerate(row):
            if not (isinstance(x, (int, np.integer, np.bool_)) and x in (0, 1)):
                raise ValueError(f"adjacency entry [{i}][{j}] must be 0 or 1, got "
                                 f"{cap(repr(x), 40)}")
            if x and j <= i:
                raise ValueError(f"the adjacency matrix must be strictly upper triangular (a "
                                 f"DAG in vertex order): entry [{i}][{j}] is 1")
            values.append(int(x))
        out.append(tuple(values))
    return tuple(out)


def _kept_vertices(matrix: tuple[tuple[int, ...], ...]) -> tuple[int, ...] | None:
    """Vertices reachable from the input that also reach the output; ``None`` when the input
    does not reach the output (``ModelSpec`` then marks the spec invalid)."""
    v = len(matrix)
    from_input = {0}
    for j in range(1, v):  # vertex order is a topological order
        if any(matrix[i][j] for i in from_input):
            from_input.add(j)
    to_output = {v - 1}
    for i in range(v - 2, -1, -1):
        if any(matrix[i][j] for j in to_output):
            to_output.add(i)
    kept = from_input & to_output
    return tuple(sorted(kept)) if v - 1 in kept and 0 in kept else None


# -- random sampling -------------------------------------------------------------------------

def sample(n: int, seed: int = 0) -> list[NB101Cell]:
    """``n`` cells drawn as the benchmark's random search draws them (with replacement).

    The ``random_spec`` of the official ``NASBench.ipynb`` (also NASLib's
    ``sample_random_architecture``): every entry of a 7x7 matrix is 0 or 1 with probability
    1/2, the matrix is cut to its strict upper triangle, each of the 7 labels is drawn
    uniformly from :data:`OPS` (the first and last then set to input and output), and the draw
    is repeated until the benchmark accepts it (an input-to-output path, at most 9 edges after
    pruning). Draws use ``numpy.random.RandomState(seed)``, the generator behind the legacy
    ``np.random`` functions the notebook calls, so ``sample(n, seed)`` gives the notebook's
    first ``n`` cells after ``np.random.seed(seed)``. Returned in their original (unpruned)
    form.
    """
    n = check_int(n, "n", 1)
    rng = np.random.RandomState(check_seed(seed))
    cells = []
    while len(cells) < n:
        matrix = np.triu(rng.choice([0, 1], size=(MAX_VERTICES, MAX_VERTICES)), 1)
        ops = [OPS[i] for i in rng.choice(len(OPS), size=MAX_VERTICES)]
        ops[0], ops[-1] = INPUT, OUTPUT
        try:
            cells.append(NB101Cell(matrix, tuple(ops)))
        except ValueError:
            continue  # not in the benchmark: draw again
    return cells
