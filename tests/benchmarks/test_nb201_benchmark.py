"""Tests for zcjax.benchmarks.nb201 against the checks of shared/data/README.md."""

import numpy as np
import pytest

from zcjax.benchmarks import nb201

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CELL_9930 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
             "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def test_shapes_and_dtypes():
    for d in nb201.DATASETS:
        acc = nb201.test_accuracy(d)
        assert acc.shape == (15625,) and acc.dtype == np.float64
        assert np.isfinite(acc).all() and (acc >= 0).all() and (acc <= 100).all()
    assert nb201.params_mb().shape == (15625,)
    iso = nb201.isomorph_ids()
    assert iso.shape == (15625,) and np.issubdtype(iso.dtype, np.integer)


def test_best_cifar10():
    acc = nb201.test_accuracy("cifar10")
    assert round(acc.max(), 3) == 94.373
    assert set(np.flatnonzero(np.round(acc, 3) == 94.373)) == {13714, 6111}
    assert round(nb201.test_accuracy_of(13714, "cifar10"), 3) == 94.373


def test_cell_9930_and_best_cifar100():
    assert round(nb201.test_accuracy_of(CELL_9930, "cifar10"), 3) == 94.363
    assert nb201.arch_string(9930) == CELL_9930
    c100 = nb201.test_accuracy("cifar100")
    assert round(c100.max(), 3) == 73.513
    assert round(c100[9930], 3) == 73.513


def test_all_none_cell():
    from zcjax.spaces.nb201.genotype import Genotype

    assert nb201.arch_index(ALL_NONE) == 1651
    g = Genotype(("none",) * 6)
    got = [round(nb201.test_accuracy_of(a, d), 2)
           for a, d in [(1651, "cifar10"), (ALL_NONE, "cifar100"), (g, "ImageNet16-120")]]
    assert got == [10.0, 1.0, 0.83]


def test_params_range():
    p = nb201.params_mb()
    assert round(p.min(), 4) == 0.0733 and round(p.max(), 4) == 1.5315


def test_isomorph_ids():
    iso = nb201.isomorph_ids()
    assert len(np.unique(iso)) == 6466
    assert (iso <= np.arange(15625)).all()
    assert (iso[iso] == iso).all()  # a class id is its own class's member
    # The robustness dataset's classes are functional: all 225 cells with no path from input
    # to output (the all-none cell among them) form one class, id 10.
    assert iso[1651] == 10 and (iso == 10).sum() == 225
    assert (nb201.test_accuracy("cifar10")[iso == 10] == 10.0).all()


@pytest.mark.parametrize("alias, canonical", [
    ("cifar10", "cifar10"), ("CIFAR-10", "cifar10"), ("Cifar100", "cifar100"),
    ("imagenet16-120", "ImageNet16-120"), ("ImageNet16-120", "ImageNet16-120"),
    ("IMAGENET16_120", "ImageNet16-120"),
])
def test_aliases(alias, canonical):
    assert nb201.canonical_dataset(alias) == canonical
    np.testing.assert_array_equal(nb201.test_accuracy(alias), nb201.test_accuracy(canonical))


def test_unknown_dataset_and_arch():
    with pytest.raises(ValueError, match="ImageNet16-120"):
        nb201.test_accuracy("imagenet")
    with pytest.raises(ValueError, match="cifar100"):
        nb201.test_accuracy_of(0, "svhn")
    with pytest.raises(ValueError, match="0..15624"):
        nb201.test_accuracy_of(15625, "cifar10")
    with pytest.raises(ValueError):
        nb201.test_accuracy_of("|conv~0|", "cifar10")


def test_returns_copies():
    a = nb201.test_accuracy("cifar10")
    a[:] = 0
    assert nb201.test_accuracy("cifar10").max() > 94
