"""The NAS-Bench-101 graph hash: the benchmark's identity of a cell, shared by isomorphic cells.

The benchmark stores each cell under an MD5 "graph hash" of its pruned matrix and labels, and
``nasbench.api.NASBench.query`` looks cells up by it, so two cells with the same hash are one
entry of the benchmark. zcjax uses it as the canonical form (``SearchSpace.canonical``).

Algorithm (``google-research/nasbench``, ``nasbench/lib/graph_util.py`` ``hash_module``, called
by ``ModelSpec.hash_spec`` on the pruned cell), reproduced here exactly:

1. labels: input ``-1``, output ``-2``, an interior vertex the index of its operation in
   ``('conv3x3-bn-relu', 'conv1x1-bn-relu', 'maxpool3x3')`` (the benchmark's
   ``available_ops``);
2. each vertex starts from ``md5(str((out_degree, in_degree, label)))`` (Python's tuple
   ``str``, e.g. ``'(2, 0, -1)'``);
3. ``V`` rounds, ``V`` the number of vertices: a vertex's new hash is the MD5 of the sorted
   hashes of its in-neighbours concatenated, ``'|'``, those of its out-neighbours, ``'|'``, and
   its own hash (a Weisfeiler-Lehman refinement);
4. the fingerprint is ``md5(str(sorted(hashes)))`` (Python's list ``str``).

All MD5s are hex digests of the UTF-8 text. Like any such refinement, the hash is invariant
under relabelling the vertices (isomorphic cells share it); distinct cells of the benchmark
have distinct hashes (the benchmark relies on this: its 423,624 entries are keyed by it).
"""

from __future__ import annotations

import hashlib

from zcjax.spaces.nb101.genotype import INPUT, OPS, OUTPUT, NB101Cell, as_cell


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_module(matrix, labels) -> str:
    """``hash_module`` of the reference for a square 0/1 matrix and integer labels."""
    v = len(labels)
    in_degree = [sum(int(matrix[i][j]) for i in range(v)) for j in range(v)]
    out_degree = [sum(int(matrix[i][j]) for j in range(v)) for i in range(v)]
    hashes = [_md5(str((out_degree[k], in_degree[k], int(labels[k])))) for k in range(v)]
    for _ in range(v):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in range(v) if matrix[w][k])) + "|"
                 + "".join(sorted(hashes[w] for w in range(v) if matrix[k][w])) + "|"
                 + hashes[k])
            for k in range(v)
        ]
    return _md5(str(sorted(hashes)))


def labels(cell: NB101Cell) -> list[int]:
    """The reference's integer labels of a cell's vertices (``-1`` input, ``-2`` output)."""
    special = {INPUT: -1, OUTPUT: -2}
    return [special[op] if op in special else OPS.index(op) for op in cell.ops]


def graph_hash(arch: "NB101Cell | str") -> str:
    """The benchmark's 32-hex-digit hash of a cell (computed on its pruned form)."""
    cell = as_cell(arch).pruned
    return hash_module(cell.matrix, labels(cell))
