"""Integers only, in a stated range, wherever an index or a seed enters (issue #11, item 5), and
capped echoes of bad input in messages (item 8)."""

import numpy as np
import pytest

from zcjax import data
from zcjax.spaces import nb201
from zcjax.sweep.runner import Task, make_tasks
from zcjax.validation import SEED_MAX, NotAnIntegerError, cap, check_index, check_seed

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
NOT_INTEGERS = [3.7, -0.5, 3.0, "5", True, False, np.bool_(True), None, 1 + 0j, [1]]


@pytest.mark.parametrize("bad", NOT_INTEGERS, ids=repr)
def test_from_index_refuses_non_integers(bad):
    # Before: from_index(3.7) returned cell 3, and "5", True, -0.5 were accepted.
    with pytest.raises(ValueError, match="integer"):
        nb201.from_index(bad)
    with pytest.raises(ValueError):
        nb201.as_genotype(bad)


def test_from_index_accepts_integer_types_in_range():
    assert nb201.from_index(np.int64(3)) == nb201.from_index(3)
    assert nb201.as_genotype(np.uint16(15624)) == nb201.all_genotypes()[15624]
    for bad in (-1, 15625, 2**64):
        with pytest.raises(ValueError, match=r"0\.\.15624"):
            nb201.from_index(bad)


def test_op_indices_and_input_nodes_are_not_coerced():
    with pytest.raises(ValueError, match="integer"):
        nb201.Genotype.from_op_indices([0, 1, 2, 3, 4, 1.5])
    # int() would read " 0", "0_0" or an Arabic-Indic zero as 0.
    for frm in (" 0", "0_0", "\u0660", "00"):
        with pytest.raises(ValueError, match="not an integer"):
            nb201.Genotype.from_string(CELL.replace("~0|", f"~{frm}|", 1))


@pytest.mark.parametrize("bad", [1.7, "1", True, np.float32(2.0), None], ids=repr)
def test_seeds_must_be_integers(bad):
    with pytest.raises(TypeError, match="seed"):
        make_tasks("s", ["a"], [0, bad], ["p"], "c", "b")
    with pytest.raises(ValueError, match="seed"):
        Task("s", "a", bad, ("p",), "c", "b")
    with pytest.raises(ValueError, match="seed"):
        data.default_batch(4, seed=bad)


@pytest.mark.parametrize("bad", [-1, 2**31, 2**32, 2**32 - 1], ids=repr)
def test_seeds_outside_range_would_collide_and_are_refused(bad):
    # 0 and 2**32 (or -1 and 2**32 - 1) are one JAX key: two stored "seeds", one initialisation.
    with pytest.raises(ValueError, match=r"0\.\.2147483647"):
        make_tasks("s", ["a"], [bad], ["p"], "c", "b")
    with pytest.raises(ValueError, match="seed"):
        data.gaussian_batch(2, seed=bad)


def test_seed_range_edges():
    assert check_seed(0) == 0 and check_seed(np.int32(SEED_MAX)) == SEED_MAX == 2**31 - 1
    assert [t.seed for t in make_tasks("s", ["a"], [np.int64(5), 0], ["p"], "c", "b")] == [5, 0]
    assert check_index(np.uint8(4), 5) == 4
    assert isinstance(check_index(np.int16(2), 5), int)
    with pytest.raises(NotAnIntegerError):
        check_index(2.0, 5)


def test_cap_keeps_messages_short():
    big = "x" * 10_000_000
    assert len(cap(big)) < 260 and "9,999,8" in cap(big)
    assert cap("short") == "short"
    with pytest.raises(ValueError) as info:
        nb201.Genotype.from_string(big)
    assert len(str(info.value)) < 400
    with pytest.raises(ValueError) as info:
        nb201.Genotype.from_string(
            "|" + "a" * 5_000_000 + "~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert len(str(info.value)) < 800
    with pytest.raises(ValueError) as info:
        nb201.from_index(10**100_0)
    assert len(str(info.value)) < 300
