"""NAS-Bench-201 isomorphism classes against the ids shipped with the robustness dataset."""

from __future__ import annotations

import csv
import functools
import importlib.resources
import itertools

from zcjax.spaces.nb201 import (
    EDGES,
    OPS,
    Genotype,
    all_genotypes,
    canonical,
    class_representatives,
    index_of,
    isomorphism_class,
)
from zcjax.spaces.nb201.isomorphism import NUM_CLASSES, node_forms


@functools.lru_cache(maxsize=None)
def table_classes() -> tuple[int, ...]:
    """The ``isomorph`` column of nb201_benchmark.csv, by index."""
    path = importlib.resources.files("zcjax.resources") / "nb201_benchmark.csv"
    with path.open("r", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    return tuple(int(r["isomorph"]) for r in rows)


def with_ops(g: Genotype, **changes: str) -> Genotype:
    """``g`` with some edges' ops replaced; edges named ``e{to}{frm}``, e.g. ``e21``."""
    ops = dict(zip(EDGES, g.ops))
    for name, op in changes.items():
        ops[(int(name[1]), int(name[2]))] = op
    return Genotype(tuple(ops[e] for e in EDGES))


def test_number_of_classes():
    reps = class_representatives()
    assert len(reps) == NUM_CLASSES == 6466
    assert list(reps) == sorted(set(reps))
    assert set(reps) == set(table_classes())


def test_partition_equals_the_table_for_every_cell():
    ours = tuple(isomorphism_class(g) for g in all_genotypes())
    assert ours == table_classes()


def test_class_id_is_smallest_index_of_its_class():
    for index, g in enumerate(all_genotypes()):
        cls = isomorphism_class(g)
        assert cls <= index
        assert canonical(all_genotypes()[cls]) == canonical(g)


def test_accepts_strings_and_indices():
    s = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
         "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert isomorphism_class(s) == isomorphism_class(1) == 1
    # The form is the output's expression in the input "0" (same spelling as the
    # NAS-Bench-201 reference key).
    assert canonical(s) == (
        "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0")
    assert node_forms(s)[:2] == ("0", "(0)@nor_conv_3x3")


def test_output_taking_only_none_is_the_class_of_the_all_none_cell():
    all_none = Genotype(("none",) * 6)
    assert index_of(all_none) == 1651
    assert isomorphism_class(all_none) == 10  # 1651 is in class 10, its smallest index
    for ops in itertools.product(OPS, repeat=3):
        g = Genotype(ops + ("none", "none", "none"))
        assert isomorphism_class(g) == 10
        assert canonical(g) == "#+#+#"


def test_edges_that_cannot_reach_the_output_do_not_matter():
    # Node 2 feeds nothing (3<-2 is none): the ops into node 2 are irrelevant.
    base = Genotype(("nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                     "nor_conv_1x1", "nor_conv_3x3", "none"))
    forms = {canonical(with_ops(base, e20=a, e21=b)) for a, b in itertools.product(OPS, OPS)}
    assert len(forms) == 1
    # Node 1 feeds nothing (2<-1 and 3<-1 are none): the op into node 1 is irrelevant.
    base = Genotype(("nor_conv_3x3", "avg_pool_3x3", "none",
                     "skip_connect", "none", "nor_conv_1x1"))
    assert len({isomorphism_class(with_ops(base, e10=a)) for a in OPS}) == 1


def test_invariances_over_the_whole_space():
    for g in all_genotypes():
        form = canonical(g)
        if g.op(3, 2) == "none":
            assert canonical(with_ops(g, e20="none", e21="none")) == form
        if g.op(2, 1) == "none" and g.op(3, 1) == "none":
            assert canonical(with_ops(g, e10="none")) == form
        if g.op(1, 0) == "none":  # node 1 is zero: what leaves it is zero too
            assert canonical(with_ops(g, e21="none", e31="none")) == form
        if g.op(1, 0) == "skip_connect":  # node 1 equals the input: 0 and 1 are interchangeable
            assert canonical(with_ops(g, e20=g.op(2, 1), e21=g.op(2, 0))) == form
            assert canonical(with_ops(g, e30=g.op(3, 1), e31=g.op(3, 0))) == form


def test_node_sums_are_commutative():
    # Cells 0 and 6642 spread the same summands differently over the edges:
    # both outputs are A(x) + A(x) + C(x) + C(x) (A = avg_pool_3x3, C = nor_conv_1x1).
    assert canonical(0) == canonical(6642)
    assert isomorphism_class(6642) == 0


# -- artefacts of the official key, pinned because the shipped ids depend on them ----------

def test_zero_summands_are_counted():
    # Both compute the identity, but 14852 also splices a dead node 2 into the output.
    assert canonical(186) == "#+#+0"
    assert canonical(14852) == "#+#+#+0"
    assert (isomorphism_class(186), isomorphism_class(14852)) == (55, 3)


def test_zero_is_recognised_only_for_node_1():
    # x + conv(dead node 1) vs x + conv(dead node 2): nodes 1 and 2 swapped (2<-1 is none).
    a = Genotype.from_string(
        "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    b = Genotype.from_string(
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert (index_of(a), index_of(b)) == (15242, 4031)
    assert node_forms(a)[1] == "#" and node_forms(b)[2] == "#+#"
    assert (isomorphism_class(a), isomorphism_class(b)) == (55, 9)


def test_spliced_blocks_are_sorted_as_strings():
    # Same output expression, x + C(x) + A(C(x)) + C(C(x)), three official classes.
    assert sorted(canonical(1).split("+")) == sorted(canonical(9121).split("+"))
    assert len({isomorphism_class(i) for i in (1, 9121, 14580)}) == 3
    # Nodes 1 and 2 swapped (2<-1 none), both C(x) + A(x): two official classes.
    assert (isomorphism_class(3549), isomorphism_class(8090)) == (93, 221)
