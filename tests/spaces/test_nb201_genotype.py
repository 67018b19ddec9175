"""NB201 genotypes: parsing, formatting, errors and the official index order."""

import csv
import importlib.resources
import itertools

import pytest

from zcjax.spaces import nb201
from zcjax.spaces.nb201 import Genotype


def table_rows():
    path = importlib.resources.files("zcjax.resources") / "nb201_benchmark.csv"
    with path.open() as f:
        return list(csv.DictReader(f))


def test_all_strings_round_trip():
    rows = table_rows()
    assert len(rows) == nb201.NUM_CELLS == 15625
    for row in rows:
        g = Genotype.from_string(row["arch"])
        assert g.to_string() == row["arch"]
        assert Genotype.from_string(str(g)) == g


def test_index_order_equals_table():
    rows = table_rows()
    genotypes = nb201.all_genotypes()
    for i in (0, 1, 1651, 9930, 13714, 15624):
        assert genotypes[i].to_string() == rows[i]["arch"]
        assert nb201.from_index(i) == genotypes[i]
        assert nb201.index_of(genotypes[i]) == i
        assert nb201.index_of(rows[i]["arch"]) == i
    assert [nb201.index_of(g) for g in genotypes] == list(range(15625))


def test_table_covers_the_whole_space_once():
    assert set(nb201.all_genotypes()) == set(nb201.iter_genotypes())
    assert len(set(nb201.all_genotypes())) == 15625


def test_genotype_is_hashable_and_immutable():
    g = nb201.from_index(1)
    assert hash(g) == hash(Genotype.from_string(g.to_string()))
    with pytest.raises(Exception):
        g.ops = ("none",) * 6  # frozen


def test_op_accessor_and_indices():
    g = Genotype.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert g.op(2, 1) == "avg_pool_3x3"
    assert g.op(3, 0) == "skip_connect"
    assert Genotype.from_op_indices(g.op_indices) == g
    with pytest.raises(ValueError, match="no edge"):
        g.op(1, 2)


def test_edges_may_be_listed_in_any_order_within_a_node():
    a = Genotype.from_string("|none~0|+|nor_conv_1x1~1|skip_connect~0|+|none~2|none~1|none~0|")
    assert a.to_string() == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize("bad, message", [
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv_5x5'"),
    ("|none~0|+|none~0|none~1|", "expected 3 nodes"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 incoming edges"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 cannot take input from node 1"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "from node 0 twice"),
    ("|none~x|+|none~0|none~1|+|none~0|none~1|none~2|", "not an integer"),
    ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "lacks '~input'"),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must look like"),
    ("", "expected 3 nodes"),
])
def test_malformed_strings_raise_naming_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        Genotype.from_string(bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="6 edges"):
        Genotype(("none",) * 5)
    with pytest.raises(ValueError, match="unknown operation 'max_pool_3x3'"):
        Genotype(("max_pool_3x3",) + ("none",) * 5)
    with pytest.raises(ValueError, match="0..15624"):
        nb201.from_index(15625)
    with pytest.raises(ValueError):
        nb201.as_genotype(3.5)
    with pytest.raises(ValueError, match="op indices"):
        Genotype.from_op_indices([0, 1, 2, 3, 4, 5])


def test_iter_genotypes_is_lexicographic():
    first = list(itertools.islice(nb201.iter_genotypes(), 2))
    assert first[0].ops == ("none",) * 6
    assert first[1].ops == ("none",) * 5 + ("skip_connect",)
