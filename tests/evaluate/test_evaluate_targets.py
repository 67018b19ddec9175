"""Targets: HRS closed form, corruption means, spec parsing (fake data), real data if present."""

import types

import numpy as np
import pytest

from zcjax.evaluate import targets as T

N = 6
EPS = {"fgsm@Linf": (0.1, 0.5, 1.0, 8.0), "pgd@Linf": (0.1, 0.5, 1.0, 8.0),
       "aa_apgd-ce@Linf": (0.1, 1.0), "aa_square@Linf": (0.1, 1.0)}
ALL15 = ("brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost",
         "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur",
         "pixelate", "shot_noise", "snow", "zoom_blur")


def _fake_value(dataset, key, epsilon, severity):
    # a distinct, reproducible array per evaluation
    seed = abs(hash((dataset, key, epsilon, severity))) % (2**32)
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=N)


@pytest.fixture
def fake(monkeypatch):
    calls = []

    def accuracy(dataset, key, *, epsilon=None, severity=None):
        calls.append((dataset, key, epsilon, severity))
        return _fake_value(dataset, key, epsilon, severity)

    rob = types.SimpleNamespace(
        ATTACKS=tuple(EPS), CORRUPTIONS=ALL15, epsilons=lambda a: EPS[a], accuracy=accuracy)
    nb = types.SimpleNamespace(test_accuracy=lambda d: np.arange(N, dtype=float) * 10.0)
    monkeypatch.setattr(T, "_rob", lambda: rob)
    monkeypatch.setattr(T, "_nb201", lambda: nb)
    return calls


def test_hrs_closed_form():
    assert T.hrs(0.8, 0.4) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert T.hrs(0.5, 0.5) == pytest.approx(0.5)
    assert T.hrs(0.0, 0.0) == 0.0
    assert T.hrs(1.0, 0.0) == 0.0
    c = np.array([0.9, 0.6, 0.0, np.nan])
    r = np.array([0.3, 0.6, 0.0, 0.5])
    out = T.hrs(c, r)
    np.testing.assert_allclose(out[:3], [2 * 0.27 / 1.2, 0.6, 0.0])
    assert np.isnan(out[3])
    # harmonic mean: between min and max, and scale-equivariant (percent vs fraction)
    assert min(0.9, 0.3) <= out[0] <= max(0.9, 0.3)
    assert T.hrs(90.0, 30.0) == pytest.approx(100 * T.hrs(0.9, 0.3))


def test_corruption_groups_partition_the_15():
    names = [c for g in T.CORRUPTION_GROUPS.values() for c in g]
    assert len(names) == 15 and set(names) == set(ALL15)
    assert set(T.CORRUPTION_GROUPS) == {"noise", "blur", "weather", "digital"}


def test_corruption_means_equal_manual_means(fake):
    d = "cifar10"
    noise = T.corruption_mean(d, "noise")
    manual = np.mean([_fake_value(d, c, None, s) for c in ("gaussian_noise", "shot_noise",
                      "impulse_noise") for s in (1, 2, 3, 4, 5)], axis=0)
    np.testing.assert_allclose(noise, manual)
    all_sev3 = T.corruption_mean(d, "all", severity=3)
    np.testing.assert_allclose(all_sev3, np.mean([_fake_value(d, c, None, 3) for c in ALL15],
                                                 axis=0))
    # "all" over severities is the mean of the four equally-weighted-by-corruption groups
    total = T.corruption_mean(d, "all")
    sizes = {g: len(v) for g, v in T.CORRUPTION_GROUPS.items()}
    weighted = sum(T.corruption_mean(d, g) * sizes[g] for g in sizes) / 15
    np.testing.assert_allclose(total, weighted)
    fog = T.corruption_mean(d, "fog")
    np.testing.assert_allclose(fog, np.mean([_fake_value(d, "fog", None, s) for s in range(1, 6)],
                                            axis=0))
    with pytest.raises(ValueError, match="unknown corruption"):
        T.corruption_mean(d, "rain")
    with pytest.raises(ValueError, match="severity"):
        T.corruption_mean(d, "noise", severity=6)


def test_corruption_mean_propagates_nan(monkeypatch, fake):
    rob = T._rob()
    orig = rob.accuracy

    def with_gap(dataset, key, *, epsilon=None, severity=None):
        out = orig(dataset, key, epsilon=epsilon, severity=severity)
        if key == "fog" and severity == 2:
            out = out.copy()
            out[1] = np.nan
        return out

    rob.accuracy = with_gap
    m = T.corruption_mean("cifar10", "weather")
    assert np.isnan(m[1]) and np.isfinite(np.delete(m, 1)).all()


def test_target_specs_load(fake):
    d = "cifar100"
    np.testing.assert_array_equal(T.target("test_accuracy", d), np.arange(N) * 10.0)
    clean = _fake_value(d, "clean", None, None)
    np.testing.assert_allclose(T.target("clean", d), clean)
    pgd = _fake_value(d, "pgd@Linf", 1.0, None)
    np.testing.assert_allclose(T.target("pgd@Linf:eps=1", d), pgd)
    np.testing.assert_allclose(T.target(" pgd@Linf:eps=1.0 ", d), pgd)
    np.testing.assert_allclose(T.target("fgsm@Linf:eps=0.5", d),
                               _fake_value(d, "fgsm@Linf", 0.5, None))
    np.testing.assert_allclose(T.target("hrs:pgd@Linf:eps=1", d), 2 * clean * pgd / (clean + pgd))
    np.testing.assert_allclose(T.target("corruption:noise", d), T.corruption_mean(d, "noise"))
    np.testing.assert_allclose(T.target("corruption:fog:severity=3", d),
                               _fake_value(d, "fog", None, 3))
    np.testing.assert_allclose(T.target("hrs:corruption:all", d),
                               T.hrs(clean, T.corruption_mean(d, "all")))
    for spec in T.TARGET_EXAMPLES:
        assert T.target(spec, d).shape == (N,)
    with pytest.raises(ValueError, match="available: 0.1, 0.5, 1, 8"):
        T.target("pgd@Linf:eps=0.3", d)


def test_parse_target():
    assert T.parse_target("clean") == T.TargetSpec("clean")
    assert T.parse_target("test_accuracy").unit == "percent"
    assert T.parse_target("pgd@Linf:eps=1") == T.TargetSpec("attack", "pgd@Linf", 1.0)
    assert T.parse_target("aa_apgd-ce@Linf:eps=.5").epsilon == 0.5
    assert T.parse_target("corruption:blur") == T.TargetSpec("corruption", "blur")
    assert T.parse_target("corruption:fog:severity=3") == T.TargetSpec("corruption", "fog",
                                                                       severity=3)
    h = T.parse_target("hrs:fgsm@Linf:eps=8")
    assert h.kind == "hrs" and h.robust == T.TargetSpec("attack", "fgsm@Linf", 8.0)
    assert h.unit == "fraction"
    for spec in T.TARGET_EXAMPLES:
        T.parse_target(spec)


@pytest.mark.parametrize("spec", [
    "", "accuracy", "Clean", "pgd@Linf", "pgd@Linf:", "pgd@Linf:eps=", "pgd@Linf:eps=abc",
    "pgd@Linf:epsilon=1", "pgd@L2:eps=1", "corruption", "corruption:", "corruption:rain",
    "corruption:fog:severity=6", "corruption:fog:severity=0", "corruption:fog:sev=3",
    "corruption:fog:severity=3:x", "hrs", "hrs:", "hrs:clean", "hrs:test_accuracy",
    "hrs:hrs:pgd@Linf:eps=1", "hrs:nope",
])
def test_bad_specs_raise_with_forms(spec):
    with pytest.raises(ValueError) as e:
        T.parse_target(spec)
    msg = str(e.value)
    assert "Valid forms" in msg and "corruption:" in msg and "hrs:pgd@Linf:eps=1" in msg


def test_non_string_spec():
    with pytest.raises(ValueError, match="string"):
        T.parse_target(3)


# -- the shipped data, when the benchmark modules and files are present --------------------


@pytest.fixture(scope="module")
def real():
    try:
        from zcjax.benchmarks import nb201, robustness
        robustness.accuracy("cifar10", "clean")
        nb201.test_accuracy("cifar10")
    except (ImportError, FileNotFoundError, OSError) as e:  # pragma: no cover
        pytest.skip(f"benchmark data not available: {e}")
    return robustness


def test_real_data_targets(real):
    assert set(real.ATTACKS) == set(EPS)
    assert set(real.CORRUPTIONS) == set(ALL15)
    for spec in T.TARGET_EXAMPLES:
        y = T.target(spec, "cifar10")
        assert y.shape == (15625,) and y.dtype == np.float64
        if spec != "test_accuracy":
            finite = y[np.isfinite(y)]
            assert finite.size and finite.min() >= 0.0 and finite.max() <= 1.0
    ta = T.target("test_accuracy", "cifar10")
    assert 90.0 < np.nanmax(ta) <= 100.0
    clean = T.target("clean", "cifar10")
    pgd = real.accuracy("cifar10", "pgd@Linf", epsilon=1.0)
    np.testing.assert_allclose(T.target("hrs:pgd@Linf:eps=1", "cifar10"), T.hrs(clean, pgd))
    manual = np.mean([real.accuracy("cifar10", c, severity=s)
                      for c in T.CORRUPTION_GROUPS["digital"] for s in range(1, 6)], axis=0)
    np.testing.assert_allclose(T.target("corruption:digital", "cifar10"), manual)
    assert T.target("clean", "ImageNet16-120").shape == (15625,)
    with pytest.raises(ValueError):
        T.target("corruption:all", "ImageNet16-120")   # no corruptions for ImageNet16-120
    with pytest.raises(ValueError, match="available"):
        T.target("pgd@Linf:eps=0.3", "cifar10")
