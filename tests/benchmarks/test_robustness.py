"""Tests for zcjax.benchmarks.robustness (Jung et al., ICLR 2023)."""

import json
import os
import pathlib

import numpy as np
import pytest

from zcjax.benchmarks import nb201, robustness as rob

SHARED = pathlib.Path(os.environ.get(
    "ZCJAX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"))
ROBUSTNESS = SHARED / "robustness"


def test_readme_check_13433():
    assert rob.accuracy_of(13433, "cifar10", "clean") == 0.893
    assert rob.accuracy_of(13433, "cifar10", "pgd@Linf", epsilon=1.0) == 0.336
    assert rob.accuracy_of(13433, "CIFAR-10", "pgd@Linf", epsilon=1) == 0.336
    assert rob.accuracy("cifar10", "pgd@Linf", epsilon=1)[13433] == 0.336


def test_constants():
    assert len(rob.CORRUPTIONS) == 15 and len(set(rob.CORRUPTIONS)) == 15
    assert rob.DATASETS == ("cifar10", "cifar100", "ImageNet16-120")
    assert rob.epsilons("pgd@Linf") == (0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0)
    assert rob.epsilons("fgsm@Linf") == (0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 255.0)
    assert rob.keys("ImageNet16-120") == ("clean",) + rob.ATTACKS
    assert len(rob.keys("cifar100")) == 20
    with pytest.raises(ValueError, match="pgd@Linf"):
        rob.epsilons("pgd")


@pytest.mark.parametrize("dataset", rob.DATASETS)
def test_shapes_ranges_and_isomorphism(dataset):
    iso = nb201.isomorph_ids()
    for key in rob.keys(dataset):
        if key == "clean":
            kwargs = [{}]
        elif key in rob.ATTACKS:
            kwargs = [{"epsilon": e} for e in rob.epsilons(key)]
        else:
            kwargs = [{"severity": s} for s in rob.SEVERITIES]
        for kw in kwargs:
            a = rob.accuracy(dataset, key, **kw)
            assert a.shape == (15625,) and a.dtype == np.float64
            assert not np.isnan(a).any()  # the shipped release has no missing values
            assert (a >= 0).all() and (a <= 1).all()
            np.testing.assert_array_equal(a, a[iso])  # constant on isomorphism classes


def test_matches_nb201_isomorphism_and_clean_accuracy():
    np.testing.assert_array_equal(rob.isomorph_ids(), np.unique(nb201.isomorph_ids()))
    # Robustness clean accuracy is on a 1000-image evaluation; it tracks NB201 test accuracy.
    clean = rob.accuracy("cifar10", "clean")
    bench = nb201.test_accuracy("cifar10") / 100
    assert np.corrcoef(clean, bench)[0, 1] > 0.9
    assert rob.accuracy_of(1651, "cifar10", "clean") == 0.1  # all-none: chance


def test_arch_forms_agree():
    from zcjax.spaces.nb201.genotype import from_index

    s = nb201.arch_string(13433)
    for arch in (13433, s, from_index(13433), np.int64(13433)):
        assert rob.accuracy_of(arch, "cifar10", "fog", severity=3) == \
            rob.accuracy("cifar10", "fog", severity=3)[13433]


def test_errors():
    with pytest.raises(ValueError, match="cifar100"):
        rob.accuracy("svhn", "clean")
    with pytest.raises(ValueError, match="'clean'.*fgsm@Linf.*brightness"):
        rob.accuracy("cifar10", "blur")
    with pytest.raises(ValueError, match="only exist for CIFAR"):
        rob.accuracy("ImageNet16-120", "fog", severity=1)
    with pytest.raises(ValueError, match="needs epsilon"):
        rob.accuracy("cifar10", "pgd@Linf")
    with pytest.raises(ValueError, match=r"no epsilon 9.*\(0.1, 0.5"):
        rob.accuracy("cifar10", "pgd@Linf", epsilon=9)
    with pytest.raises(ValueError, match="255"):
        rob.accuracy("cifar10", "pgd@Linf", epsilon=255)  # only FGSM has 255
    with pytest.raises(ValueError, match="needs severity"):
        rob.accuracy("cifar100", "snow")
    for bad in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match=r"severity must be one of \(1, 2, 3, 4, 5\)"):
            rob.accuracy("cifar100", "snow", severity=bad)
    with pytest.raises(ValueError, match="neither"):
        rob.accuracy("cifar10", "clean", epsilon=1)
    with pytest.raises(ValueError, match="not a severity"):
        rob.accuracy("cifar10", "fgsm@Linf", epsilon=1, severity=1)
    with pytest.raises(ValueError, match="not an epsilon"):
        rob.accuracy("cifar10", "fog", epsilon=1, severity=1)
    with pytest.raises(ValueError, match="0..15624"):
        rob.accuracy_of(-1, "cifar10", "clean")


@pytest.mark.skipif(not (ROBUSTNESS / "meta.json").is_file(),
                    reason="shared/data/robustness not present")
def test_round_trip_against_json():
    """Every value in the shipped npz equals the source JSON exactly."""
    with open(ROBUSTNESS / "meta.json") as f:
        meta = json.load(f)
    iso_of = np.array([int(meta["ids"][str(i)]["isomorph"]) for i in range(15625)])
    np.testing.assert_array_equal(iso_of, nb201.isomorph_ids())
    for attack in rob.ATTACKS:
        assert list(rob.epsilons(attack)) == meta["epsilons"][attack]
    for dataset in rob.DATASETS:
        for key in rob.keys(dataset):
            with open(ROBUSTNESS / dataset / f"{key}_accuracy.json") as f:
                src = json.load(f)[dataset][key]["accuracy"]
            assert len(src) == 6466
            table = np.array([src[str(i)] for i in rob.isomorph_ids()], np.float64)
            if key == "clean":
                got = rob.accuracy(dataset, key)[rob.isomorph_ids()]
            elif key in rob.ATTACKS:
                got = np.stack([rob.accuracy(dataset, key, epsilon=e)[rob.isomorph_ids()]
                                for e in rob.epsilons(key)], axis=1)
            else:
                got = np.stack([rob.accuracy(dataset, key, severity=s)[rob.isomorph_ids()]
                                for s in rob.SEVERITIES], axis=1)
            np.testing.assert_array_equal(got, table, err_msg=f"{dataset}/{key}")
