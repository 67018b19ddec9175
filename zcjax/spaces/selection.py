"""Which architectures to score or analyse, from a short spec, on any search space.

``select(space, spec, seed)`` returns architecture strings (the store's and the ground truth's
key). The *pool* is the architectures with ground truth when the space ships a benchmark (every
NB201 cell, the 500 NB101 and 725 NB301 cells, ...), else the space's enumeration if it has one:

==========================  ===================================================================
spec                        architectures
==========================  ===================================================================
``all``                     the whole pool, in the benchmark's order
``classes``                 one per isomorphism class of the pool (its first member)
``sample:N``                ``N`` distinct members of the pool, uniformly (seeded), in pool order
``sample_classes:N``        ``N`` distinct class representatives, likewise
``space_sample:N``          ``N`` architectures drawn as the space's benchmark drew them
                            (:meth:`SearchSpace.sample`; they may have no ground truth)
``range:A-B``               pool positions ``A..B`` inclusive (NB201: official indices)
``indices:I,J,...``         pool positions ``I, J, ...``
``file:PATH``               one architecture string per line (blank lines and ``#`` comments
                            skipped), checked by the space's parser
==========================  ===================================================================
"""

from __future__ import annotations

import pathlib
import re
from typing import Sequence

import numpy as np

from zcjax import validation
from zcjax.spaces.base import SearchSpace

FORMS = ("all", "classes", "sample:N", "sample_classes:N", "space_sample:N", "range:A-B",
         "indices:I,J,...", "file:PATH")


def pool(space: SearchSpace) -> tuple[str, ...]:
    """The architectures ``all`` names: the benchmark's, else the space's enumeration."""
    bench = space.benchmark()
    if bench is not None:
        return tuple(bench.archs())
    listed = space.enumerate()
    if listed is None:
        raise ValueError(f"{space.name} has no ground truth here and is too large to list; use "
                         "'space_sample:N' or 'file:PATH'")
    return tuple(space.format(a) for a in listed)


def class_representatives(space: SearchSpace, archs: Sequence[str]) -> list[str]:
    """The first architecture of each isomorphism class, in the order given."""
    seen, out = set(), []
    for arch in archs:
        key = space.canonical(space.as_arch(arch))
        if key not in seen:
            seen.add(key)
            out.append(arch)
    return out


def _bad(spec: str, why: str) -> ValueError:
    return ValueError(f"bad architecture selection {validation.cap(repr(spec))}: {why}; "
                      f"expected one of {', '.join(FORMS)}")


def _count(spec: str, text: str, most: int) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise _bad(spec, "N must be a positive integer")
    n = int(text)
    if not 1 <= n <= most:
        raise _bad(spec, f"N must be in 1..{most}")
    return n


def _positions(spec: str, text: str) -> list[int]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([0-9]+)\s*", part)
        if not m:
            raise _bad(spec, f"{validation.cap(repr(part))} is not a non-negative integer")
        out.append(int(m.group(1)))
    return list(dict.fromkeys(out))


def select(space: SearchSpace, spec: str, seed: int = 0) -> list[str]:
    """Architecture strings named by ``spec`` (module doc); ``seed`` drives the samples.

    Raises:
      ValueError: an unknown or malformed spec, counts or positions out of range, or an
        architecture string (``file:``) the space does not parse, naming the problem.
    """
    spec = str(spec).strip()
    seed = validation.check_seed(seed, "sample seed")
    head, _, rest = spec.partition(":")
    if spec == "all":
        return list(pool(space))
    if spec == "classes":
        return class_representatives(space, pool(space))
    if head == "space_sample":
        n = _count(spec, rest, 10**7)
        return [space.format(a) for a in space.sample(n, seed)]
    if head in ("sample", "sample_classes"):
        members = pool(space) if head == "sample" else class_representatives(space, pool(space))
        n = _count(spec, rest, len(members))
        picked = np.random.default_rng(seed).choice(len(members), size=n, replace=False)
        return [members[i] for i in sorted(int(i) for i in picked)]
    if head == "range":
        m = re.fullmatch(r"([0-9]+)-([0-9]+)", rest)
        if not m:
            raise _bad(spec, "expected 'range:A-B' (inclusive)")
        lo, hi, members = int(m.group(1)), int(m.group(2)), pool(space)
        if not lo <= hi < len(members):
            raise _bad(spec, f"need 0 <= A <= B <= {len(members) - 1}")
        return list(members[lo:hi + 1])
    if head == "indices":
        members = pool(space)
        positions = _positions(spec, rest)
        bad = [i for i in positions if i >= len(members)]
        if bad:
            raise _bad(spec, f"positions {bad[:5]} outside 0..{len(members) - 1}")
        return [members[i] for i in positions]
    if head == "file":
        path = pathlib.Path(rest).expanduser()
        if not path.is_file():
            raise _bad(spec, f"no file {validation.cap(str(path))}")
        lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        archs = [space.key(line) for line in lines if line]
        if not archs:
            raise _bad(spec, f"{validation.cap(str(path))} lists no architecture")
        return list(dict.fromkeys(archs))
    raise _bad(spec, "unknown form")
