"""DARTS cell genotypes as NAS-Bench-301 uses them: parsing, formatting, canonical form, sampling.

The DARTS search space (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR
2019), as NAS-Bench-301 (Siems, Zimmer, Zela, Lukasik, Keuper & Hutter, 2020) fixes it, has two
cell types, *normal* and *reduce*. A cell has two inputs, nodes 0 and 1 (the outputs of the two
previous cells), and four intermediate nodes 2..5. Intermediate node ``k + 2`` adds two
operations, each applied to one earlier node: the cell lists eight ``(op, input)`` pairs, pairs
``2k`` and ``2k + 1`` feeding node ``k + 2``. The cell's output concatenates nodes 2..5 along
channels. Operations (NAS-Bench-301 has no ``none``)::

    max_pool_3x3  avg_pool_3x3  skip_connect  sep_conv_3x3  sep_conv_5x5  dil_conv_3x3  dil_conv_5x5

Rules (DARTS derives, and NAS-Bench-301 samples, only such cells): the two inputs of a node are
two *different* earlier nodes (``inputs_node_*`` of NAS-Bench-301's ``configspace.json`` are pairs
``i_j`` with ``i < j``; DARTS keeps the two strongest incoming edges, one per predecessor).

String form (what :meth:`DartsGenotype.to_string` writes)
---------------------------------------------------------
The DARTS notation, as ``str()`` of DARTS's ``Genotype`` namedtuple prints it and as the
NAS-Bench-301 API reads it (``representation="genotype"``)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...8 pairs...],
             normal_concat=[2, 3, 4, 5], reduce=[...8 pairs...], reduce_concat=[2, 3, 4, 5])

on one line, pairs in the order given. :meth:`DartsGenotype.from_string` reads it back (single
or double quotes, lists or tuples, any spacing; ``normal_concat=range(2, 6)`` as DARTS's search
logs print it; the concat fields may be left out, and must be nodes 2..5 when present). The
string is parsed with :mod:`ast`, never evaluated. It also reads NASLib's integer encoding (below)
written as a Python literal, e.g. ``[[(0, 0), (1, 5), ...], [(1, 0), ...]]``.

NASLib's integer encoding (``compact``)
---------------------------------------
``automl/NASLib`` (``search_spaces/nasbench301/conversions.py``) and its zero-cost benchmark
``zc_nasbench301.json`` write a genotype as ``(normal, reduce)``, each eight ``(input, op)``
pairs with ``op`` the index in :data:`OPS` (0 = ``max_pool_3x3`` ... 6 = ``dil_conv_5x5``):
note the order, input first. :meth:`DartsGenotype.from_naslib` and
:meth:`DartsGenotype.to_naslib` convert.

Canonical form
--------------
A node *sums* its two operations, so the order of the two pairs of a node does not matter:
:meth:`DartsGenotype.canonical` sorts each node's pairs by ``(input, op index)``. NAS-Bench-301
identifies exactly these (its ``configspace`` representation, which its surrogates read, keeps an
op per edge and an unordered input pair per node). Nothing else is identified: relabelling the
intermediate nodes permutes the channels of the concatenated output, so the next layer's weights
meet the nodes in another order (the same family of networks, not the same network for the same
weights), and NAS-Bench-301 counts such cells as different architectures; nor are operations
that happen to compute similar functions identified.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Sequence

import numpy as np

from zcjax.validation import cap, check_int, check_seed

#: The operations, in the order of NASLib's integer encoding (and of NAS-Bench-301's
#: ``configspace.json`` choices).
OPS: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                        "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

#: Cell types, in the order of the genotype's fields.
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

#: Inputs of a cell (the outputs of the cell before the previous one, and of the previous one).
NUM_INPUTS = 2
#: Intermediate nodes of a cell (nodes 2..5), each fed by two pairs.
NUM_NODES = 4
#: ``(op, input)`` pairs per cell.
NUM_PAIRS = 2 * NUM_NODES
#: The nodes a cell concatenates into its output.
CONCAT: tuple[int, ...] = tuple(range(NUM_INPUTS, NUM_INPUTS + NUM_NODES))

#: Architectures up to the order of a node's two pairs: per cell, node ``k + 2`` has
#: ``C(k + 2, 2)`` input pairs and ``7 ** 2`` op pairs; 1,037,664,180 cells of each type.
NUM_ARCHITECTURES = (1 * 3 * 6 * 10 * len(OPS) ** NUM_PAIRS) ** 2  # about 1.08e18

#: Longest architecture string accepted (the DARTS notation takes ~430 characters; this bounds
#: the work of parsing hostile input).
MAX_STRING_LENGTH = 4096

Pair = tuple[str, int]
Cell = tuple[Pair, ...]


def node_of(pair: int) -> int:
    """The intermediate node that pair ``pair`` (0..7) feeds: ``pair // 2 + 2``."""
    return pair // 2 + NUM_INPUTS


def _check_cell(cell: Any, cell_type: str) -> Cell:
    """``cell`` as a tuple of eight ``(op, input)`` tuples, or a ``ValueError`` naming the fault."""
    if isinstance(cell, (str, bytes)) or not isinstance(cell, Sequence):
        raise ValueError(f"{cell_type} cell: expected a sequence of {NUM_PAIRS} (op, input) "
                         f"pairs, got {type(cell).__name__}")
    if len(cell) != NUM_PAIRS:
        raise ValueError(f"{cell_type} cell: expected {NUM_PAIRS} (op, input) pairs (two per "
                         f"intermediate node), got {len(cell)}")
    pairs = []
    for p, pair in enumerate(cell):
        node = node_of(p)
        where = f"{cell_type} cell, pair {p} (node {node})"
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"{where}: expected an (op, input) pair, got {cap(repr(pair), 80)}")
        op, source = pair
        if not isinstance(op, str) or op not in OPS:
            hint = " (NAS-Bench-301 has no 'none')" if op == "none" else ""
            raise ValueError(f"{where}: unknown operation {cap(repr(op), 80)}{hint}; "
                             f"expected one of {OPS}")
        source = check_int(source, f"{where}: the input node")
        if not 0 <= source < node:
            raise ValueError(f"{where}: node {node} cannot take input from node {source}; its "
                             f"inputs must be earlier nodes, 0..{node - 1}")
        pairs.append((op, source))
    for k in range(NUM_NODES):
        (_, a), (_, b) = pairs[2 * k], pairs[2 * k + 1]
        if a == b:
            raise ValueError(f"{cell_type} cell: node {k + NUM_INPUTS} takes node {a} twice; "
                             "in DARTS and NAS-Bench-301 a node's two inputs are different nodes")
    return tuple(pairs)


@dataclasses.dataclass(frozen=True)
class DartsGenotype:
    """An immutable, hashable DARTS / NAS-Bench-301 architecture: a normal and a reduction cell.

    Attributes:
      normal: the normal cell, eight ``(op, input)`` pairs; pairs ``2k`` and ``2k + 1`` feed
        node ``k + 2``, inputs 0 and 1 are the cell's inputs.
      reduce: the reduction cell, likewise.

    Construction validates (unknown op, an input that is not an earlier node, a wrong number of
    pairs, a node fed twice by the same node: ``ValueError``) and stores tuples, whatever
    sequences were given.
    """

    normal: Cell
    reduce: Cell

    def __post_init__(self):
        for cell_type in CELL_TYPES:
            object.__setattr__(self, cell_type, _check_cell(getattr(self, cell_type), cell_type))

    @property
    def cells(self) -> tuple[Cell, Cell]:
        """``(normal, reduce)``."""
        return self.normal, self.reduce

    # -- strings --------------------------------------------------------------------------

    def to_string(self) -> str:
        """The DARTS notation (see the module doc), on one line, pairs in the stored order."""
        def cell(pairs: Cell) -> str:
            return "[" + ", ".join(f"('{op}', {source})" for op, source in pairs) + "]"

        concat = "[" + ", ".join(str(n) for n in CONCAT) + "]"
        return (f"Genotype(normal={cell(self.normal)}, normal_concat={concat}, "
                f"reduce={cell(self.reduce)}, reduce_concat={concat})")

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def from_string(cls, text: str) -> "DartsGenotype":
        """Parses the DARTS notation or NASLib's integer encoding written as a Python literal.

        Raises:
          ValueError: naming what is wrong (syntax, a missing or unknown field, a bad pair).
        """
        if not isinstance(text, str):
            raise ValueError(f"expected an architecture string, got {type(text).__name__}")
        shown = repr(cap(text))
        if len(text) > MAX_STRING_LENGTH:
            raise ValueError(f"{shown}: longer than {MAX_STRING_LENGTH} characters; not a DARTS "
                             "genotype")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ValueError(f"{shown}: not a DARTS genotype; expected \"Genotype(normal=[(op, "
                             "input), ...], normal_concat=[2, 3, 4, 5], reduce=[...], "
                             "reduce_concat=[2, 3, 4, 5])\" or NASLib's [[(input, op), ...], "
                             "[...]]") from None
        try:
            if isinstance(tree, ast.Call):
                return cls._from_call(tree)
            return cls.from_naslib(_literal(tree, "NASLib encoding"))
        except ValueError as error:
            raise ValueError(f"{shown}: {error}") from None

    @classmethod
    def _from_call(cls, call: ast.Call) -> "DartsGenotype":
        if not (isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
            raise ValueError("expected Genotype(...)")
        if call.args:
            raise ValueError("Genotype fields must be given by name (normal=..., reduce=...)")
        fields = {}
        for keyword in call.keywords:
            if keyword.arg is None or keyword.arg in fields:
                raise ValueError(f"field {keyword.arg or '**'} given twice or unnamed")
            fields[keyword.arg] = keyword.value
        known = {"normal", "normal_concat", "reduce", "reduce_concat"}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown Genotype fields {unknown}; expected {sorted(known)}")
        for cell_type in CELL_TYPES:
            if cell_type not in fields:
                raise ValueError(f"the {cell_type} cell is missing")
            concat = fields.get(f"{cell_type}_concat")
            if concat is not None and _concat(concat) != CONCAT:
                raise ValueError(f"{cell_type}_concat must be the nodes {list(CONCAT)} (the cell "
                                 f"output concatenates every intermediate node), got "
                                 f"{cap(ast.unparse(concat), 80)}")
        return cls(*(_literal(fields[c], f"the {c} cell") for c in CELL_TYPES))

    # -- NASLib's integer encoding --------------------------------------------------------

    @classmethod
    def from_naslib(cls, compact: Any) -> "DartsGenotype":
        """The genotype of NASLib's ``compact`` encoding: ``(normal, reduce)``, each eight
        ``(input, op index)`` pairs (op indices into :data:`OPS`); nested sequences or an
        integer array of shape (2, 8, 2)."""
        if isinstance(compact, np.ndarray):
            compact = compact.tolist()
        if isinstance(compact, (str, bytes)) or not isinstance(compact, Sequence) \
                or len(compact) != len(CELL_TYPES):
            raise ValueError("NASLib encoding: expected [normal, reduce], two lists of "
                             f"{NUM_PAIRS} (input, op) pairs")
        cells = []
        for cell_type, cell in zip(CELL_TYPES, compact):
            if isinstance(cell, (str, bytes)) or not isinstance(cell, Sequence):
                raise ValueError(f"NASLib encoding, {cell_type} cell: expected a list of pairs")
            pairs = []
            for p, pair in enumerate(cell):
                if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) \
                        or len(pair) != 2:
                    raise ValueError(f"NASLib encoding, {cell_type} cell, pair {p}: expected "
                                     f"(input, op), got {cap(repr(pair), 80)}")
                source, op = pair
                op = check_int(op, f"NASLib encoding, {cell_type} cell, pair {p}: the op index",
                               0, len(OPS) - 1)
                pairs.append((OPS[op], source))
            cells.append(pairs)
        return cls(*cells)

    def to_naslib(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """NASLib's ``compact`` encoding: ``((input, op index) x 8, (input, op index) x 8)``."""
        return tuple(tuple((source, OPS.index(op)) for op, source in cell) for cell in self.cells)

    # -- canonical form -------------------------------------------------------------------

    def canonical(self) -> "DartsGenotype":
        """The genotype with each node's two pairs sorted by ``(input, op index)``."""
        def sort(cell: Cell) -> Cell:
            out: list[Pair] = []
            for k in range(NUM_NODES):
                two = sorted(cell[2 * k:2 * k + 2], key=lambda p: (p[1], OPS.index(p[0])))
                out.extend(two)
            return tuple(out)

        return DartsGenotype(sort(self.normal), sort(self.reduce))


def _literal(node: ast.expr, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"{what} is not a literal list of pairs") from None


def _concat(node: ast.expr) -> tuple[int, ...] | None:
    """The nodes of a ``*_concat`` field: a literal list / tuple or ``range(a, b)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "range" and not node.keywords and len(node.args) == 2 \
            and all(isinstance(a, ast.Constant) and type(a.value) is int for a in node.args):
        return tuple(range(node.args[0].value, node.args[1].value))
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None
    if isinstance(value, (list, tuple)) and all(type(v) is int for v in value):
        return tuple(value)
    return None


def as_genotype(arch: "DartsGenotype | str") -> DartsGenotype:
    """A genotype from a genotype or an architecture string (DARTS notation or NASLib's)."""
    if isinstance(arch, DartsGenotype):
        return arch
    if isinstance(arch, str):
        return DartsGenotype.from_string(arch)
    raise ValueError(f"cannot read a DARTS genotype from {type(arch).__name__}: "
                     f"{cap(repr(arch), 80)}")


def sample(n: int, seed: int = 0) -> list[DartsGenotype]:
    """``n`` distinct architectures drawn as NAS-Bench-301 draws them (seeded, reproducible).

    In each cell, each intermediate node draws two different inputs uniformly among the earlier
    nodes and an op uniformly for each: the distribution of NAS-Bench-301's ``configspace.json``
    (an op per edge, an input pair ``i_j`` per node, uniform) and of NASLib's
    ``NasBench301SearchSpace.sample_random_architecture`` (``np.random.choice(i + 2, 2,
    replace=False)`` and uniform ops). The random stream is NumPy's ``default_rng(seed)``, not
    the references'. A draw whose canonical form was already drawn is redrawn (a chance of about
    ``n`` in :data:`NUM_ARCHITECTURES`), so the ``n`` architectures are distinct, in the order
    drawn.
    """
    n = check_int(n, "n", 1)
    rng = np.random.default_rng(check_seed(seed))
    out: list[DartsGenotype] = []
    seen: set[DartsGenotype] = set()
    while len(out) < n:
        cells = []
        for _ in CELL_TYPES:
            pairs = []
            for k in range(NUM_NODES):
                sources = rng.choice(k + NUM_INPUTS, size=2, replace=False)
                ops = rng.integers(len(OPS), size=2)
                pairs += [(OPS[int(o)], int(s)) for s, o in zip(sources, ops)]
            cells.append(pairs)
        genotype = DartsGenotype(*cells)
        if genotype.canonical() not in seen:
            seen.add(genotype.canonical())
            out.append(genotype)
    return out


#: DARTS-V2 (second-order DARTS, ``quark0/darts`` ``cnn/genotypes.py``), the paper's CIFAR-10 cell.
DARTS_V2 = DartsGenotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
)

#: DARTS-V1 (first-order DARTS, ``quark0/darts`` ``cnn/genotypes.py``).
DARTS_V1 = DartsGenotype(
    normal=(("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)),
)
