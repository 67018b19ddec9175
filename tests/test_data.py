"""Tests for zcjax.data: bundled batches, pickle readers, synthetic batches."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import data


# -- constants ----------------------------------------------------------------------------------

def test_normalization_constants_match_zero_cost_reference():
    # SamsungLabs/zero-cost-nas foresight/dataset.py
    assert data.CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert data.CIFAR10_STD == (0.2023, 0.1994, 0.2010)
    assert data.normalization("cifar100") == (data.CIFAR10_MEAN, data.CIFAR10_STD)
    mean, std = data.normalization("imagenet16-120")
    np.testing.assert_allclose(np.array(mean) * 255, [122.68, 116.66, 104.01])
    np.testing.assert_allclose(np.array(std) * 255, [63.22, 61.26, 65.09])
    with pytest.raises(ValueError, match="cifar10"):
        data.normalization("mnist")


# -- default_batch ------------------------------------------------------------------------------

def test_default_batch_shapes_and_dtypes():
    b = data.default_batch()
    assert isinstance(b, data.Batch)
    assert isinstance(b.images, jax.Array) and isinstance(b.labels, jax.Array)
    assert b.images.shape == (64, 32, 32, 3) and b.images.dtype == jnp.float32
    assert b.labels.shape == (64,) and b.labels.dtype == jnp.int32
    assert 0 <= int(b.labels.min()) and int(b.labels.max()) <= 9
    data.check_batch(b, num_classes=10, image_shape=(32, 32, 3))


def test_default_batch_deterministic_by_seed():
    a = data.default_batch(16, seed=3)
    b = data.default_batch(16, seed=3)
    c = data.default_batch(16, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    t = data.default_batch(16, seed=3, split="test")
    assert not np.array_equal(a.images, t.images)


def test_default_batch_images_are_distinct_bundled_images():
    b = data.default_batch(1000, seed=1)
    raw, labels = data.bundled_arrays("train")
    mean, std = np.array(data.CIFAR10_MEAN), np.array(data.CIFAR10_STD)
    back = np.rint((np.asarray(b.images) * std + mean) * 255).astype(np.int64)
    # A permutation of all 1000 images: same multiset of labels, same pixel sum.
    assert np.bincount(np.asarray(b.labels), minlength=10).tolist() == \
        np.bincount(labels, minlength=10).tolist()
    assert back.sum() == raw.astype(np.int64).sum()


def test_normalisation_of_full_test_split():
    raw, labels = data.bundled_arrays("test")
    b = data.batch_from_arrays(raw, labels, None, 0, data.CIFAR10_MEAN, data.CIFAR10_STD)
    assert b.images.shape == (1000, 32, 32, 3)
    raw_mean = raw.reshape(-1, 3).mean(0) / 255.0
    np.testing.assert_allclose(raw_mean, (0.497, 0.487, 0.451), atol=1e-3)  # README value
    expected = (raw_mean - np.array(data.CIFAR10_MEAN)) / np.array(data.CIFAR10_STD)
    got = np.asarray(b.images).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(b.labels[:10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])


@pytest.mark.parametrize("size", [0, -1, 1001, 2.5, True, "8"])
def test_default_batch_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        data.default_batch(size)


def test_default_batch_bad_split_and_dataset():
    with pytest.raises(ValueError, match="split"):
        data.default_batch(8, split="val")
    with pytest.raises(ValueError, match="only CIFAR-10"):
        data.default_batch(8, dataset="cifar100")
    with pytest.raises(ValueError, match="unknown"):
        data.default_batch(8, dataset="svhn")
    assert data.default_batch(1, dataset="CIFAR-10").images.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("size", [10, 64, 850])
def test_balanced_batch(size):
    b = data.default_batch(size, seed=7, balanced=True)
    counts = np.bincount(np.asarray(b.labels), minlength=10)
    assert counts.sum() == size
    assert counts.max() - counts.min() <= 1
    # No image drawn twice.
    flat = np.asarray(b.images).reshape(size, -1)
    assert len(np.unique(flat, axis=0)) == size


def test_balanced_batch_too_large():
    # The smallest bundled train class has 85 images.
    with pytest.raises(ValueError, match="class 5 has only 85"):
        data.default_batch(860, balanced=True)


# -- batch_from_arrays --------------------------------------------------------------------------

def test_batch_from_arrays_checks_inputs():
    imgs = np.zeros((4, 8, 8, 3), np.uint8)
    labels = np.arange(4)
    b = data.batch_from_arrays(imgs, labels, 2, seed=0, mean=(0, 0, 0), std=(1, 1, 1))
    assert b.images.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(b.images, 0.0)
    with pytest.raises(ValueError, match="uint8"):
        data.batch_from_arrays(imgs.astype(np.float32), labels, 2)
    with pytest.raises(ValueError, match="NHWC"):
        data.batch_from_arrays(imgs[0], labels, 2)
    with pytest.raises(ValueError, match="labels"):
        data.batch_from_arrays(imgs, labels[:3], 2)
    with pytest.raises(ValueError, match="one per channel"):
        data.batch_from_arrays(imgs, labels, 2, mean=(0.5,), std=(0.2,))
    with pytest.raises(ValueError, match="positive"):
        data.batch_from_arrays(imgs, labels, 2, mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(ValueError, match="1..4"):
        data.batch_from_arrays(imgs, labels, 5)


def test_check_batch_errors():
    b = data.gaussian_batch(2)
    with pytest.raises(ValueError, match="rank 4"):
        data.check_batch(data.Batch(b.images[0], b.labels))
    with pytest.raises(ValueError, match="float32"):
        data.check_batch(data.Batch(b.images.astype(jnp.float16), b.labels))
    with pytest.raises(ValueError, match="integer class indices"):
        data.check_batch(data.Batch(b.images, b.labels.astype(jnp.float32)))
    with pytest.raises(ValueError, match=r"labels must be in 0..0"):
        data.check_batch(data.Batch(b.images, jnp.array([0, 1], jnp.int32)), num_classes=1)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        data.check_batch(b, image_shape=(16, 16, 3))


# The bad batches of issue #11 (item 4), each of which gave plausible scores before: every one
# must be refused by zcjax.score with a message that names the problem.
_SPEC = None


def _bad_batches():
    b = data.default_batch(8)
    images, labels = np.asarray(b.images), np.asarray(b.labels)
    nan = images.copy()
    nan[0, 0, 0, 0] = np.nan
    inf = images.copy()
    inf[1, 2, 3, 1] = np.inf
    raw = np.round((images * 0.2 + 0.48) * 255).astype(np.uint8)
    return {
        "label 10": (data.Batch(b.images, b.labels.at[0].set(10)), r"labels must be in 0..9"),
        "label 1e6": (data.Batch(b.images, b.labels.at[0].set(1_000_000)), r"0..9"),
        "label -1": (data.Batch(b.images, b.labels.at[3].set(-1)), r"0..9"),
        "NCHW": (data.Batch(jnp.asarray(images.transpose(0, 3, 1, 2)), b.labels), "NCHW"),
        "uint8 pixels": (data.Batch(jnp.asarray(raw), b.labels), "float32 and normalised"),
        "0..255 floats": (data.Batch(jnp.asarray(raw, jnp.float32), b.labels), "unnormalised"),
        "16x16": (data.Batch(b.images[:, :16, :16], b.labels), r"\(32, 32, 3\)"),
        "1 channel": (data.Batch(b.images[..., :1], b.labels), r"\(32, 32, 3\)"),
        "4 channels": (data.Batch(jnp.concatenate([b.images, b.images[..., :1]], -1), b.labels),
                       r"\(32, 32, 3\)"),
        "empty": (data.Batch(b.images[:0], b.labels[:0]), "at least 1"),
        "NaN pixel": (data.Batch(jnp.asarray(nan), b.labels), "NaN or infinite"),
        "inf pixel": (data.Batch(jnp.asarray(inf), b.labels), "NaN or infinite"),
    }


@pytest.mark.parametrize("case", sorted(_bad_batches()))
def test_score_refuses_bad_batches(case):
    from zcjax import scoring
    from zcjax.spaces import nb201

    batch, message = _bad_batches()[case]
    space = nb201.SPACE
    config = space.tiny_config()
    model = space.build(0, config)
    with pytest.raises(ValueError, match=message):
        scoring.score(model, batch, ["grad_norm"], input_spec=space.input_spec(config))


def test_covariance_proxies_need_two_samples():
    from zcjax import scoring
    from zcjax.spaces import nb201

    b = data.default_batch(8)
    model = nb201.build(0, channels=4, cells_per_stage=1)
    with pytest.raises(ValueError, match="at least 2"):
        scoring.score(model, data.Batch(b.images[:1], b.labels[:1]), ["jacob_cov"])
    with pytest.raises(ValueError, match="labels must be in 0..9"):  # no spec: label range only
        scoring.score(model, data.Batch(b.images, b.labels.at[0].set(12)), ["grad_norm"])


# -- synthetic ----------------------------------------------------------------------------------

def test_gaussian_batch():
    a = data.gaussian_batch(8, (16, 16, 3), seed=1, num_classes=120)
    assert a.images.shape == (8, 16, 16, 3) and a.images.dtype == jnp.float32
    assert a.labels.dtype == jnp.int32 and int(a.labels.max()) < 120
    np.testing.assert_array_equal(a.images, data.gaussian_batch(8, (16, 16, 3), seed=1,
                                                                num_classes=120).images)
    assert not np.array_equal(a.images, data.gaussian_batch(8, (16, 16, 3), seed=2).images)
    big = data.gaussian_batch(64)
    assert abs(float(big.images.mean())) < 0.02 and abs(float(big.images.std()) - 1) < 0.02
    with pytest.raises(ValueError, match="shape"):
        data.gaussian_batch(2, (32, 32))
    with pytest.raises(ValueError, match="size"):
        data.gaussian_batch(0)


def test_constant_batch():
    c = data.constant_batch(12, value=2.0, shape=(4, 4, 1), num_classes=5)
    assert c.images.shape == (12, 4, 4, 1) and c.images.dtype == jnp.float32
    np.testing.assert_array_equal(c.images, 2.0)
    np.testing.assert_array_equal(c.labels, np.arange(12) % 5)
    assert data.constant_batch().images.shape == (64, 32, 32, 3)
    with pytest.raises(ValueError, match="num_classes"):
        data.constant_batch(2, num_classes=0)


# -- pickle readers -----------------------------------------------------------------------------

def _dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _planes(n, hw, rng):
    """Channel-first flattened rows and the NHWC images they encode."""
    nhwc = rng.integers(0, 256, size=(n, hw, hw, 3), dtype=np.uint8)
    rows = nhwc.transpose(0, 3, 1, 2).reshape(n, 3 * hw * hw)
    return rows, nhwc


def _fake_cifar10(root, n=3, rng=None):
    rng = rng or np.random.default_rng(0)
    folder = os.path.join(root, "cifar-10-batches-py")
    expected, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        rows, nhwc = _planes(n, 32, rng)
        lab = list(rng.integers(0, 10, n))
        # Like the official files: bytes keys.
        _dump(os.path.join(folder, name), {b"batch_label": b"x", b"data": rows, b"labels": lab})
        expected.append(nhwc)
        labels += lab
    rows, nhwc = _planes(n, 32, rng)
    _dump(os.path.join(folder, "test_batch"), {"data": rows, "labels": [1] * n})
    return folder, np.concatenate(expected), np.array(labels), nhwc


def test_load_cifar10_from_fake_pickles(tmp_path):
    folder, expected, labels, test_nhwc = _fake_cifar10(str(tmp_path))
    images, got_labels = data.load_cifar(tmp_path, "cifar10", "train")
    assert images.dtype == np.uint8 and images.shape == (15, 32, 32, 3)
    assert got_labels.dtype == np.int32
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(got_labels, labels)
    # The folder itself is accepted too.
    images, got_labels = data.load_cifar(folder, "cifar10", "test")
    np.testing.assert_array_equal(images, test_nhwc)
    np.testing.assert_array_equal(got_labels, [1, 1, 1])
    b = data.batch_from_arrays(images, got_labels, 2, 0, *data.normalization("cifar10"))
    assert b.images.shape == (2, 32, 32, 3)


def test_load_cifar100_from_fake_pickles(tmp_path):
    rng = np.random.default_rng(1)
    rows, nhwc = _planes(4, 32, rng)
    folder = tmp_path / "cifar-100-python"
    _dump(str(folder / "train"), {"data": rows, "fine_labels": [0, 99, 5, 7],
                                  "coarse_labels": [0, 1, 2, 3]})
    images, labels = data.load_cifar(tmp_path, "cifar100", "train")
    np.testing.assert_array_equal(images, nhwc)
    np.testing.assert_array_equal(labels, [0, 99, 5, 7])


def test_load_cifar_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.data_batch_1"):
        data.load_cifar(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python.test"):
        data.load_cifar(tmp_path, "cifar100", "test")
    folder, *_ = _fake_cifar10(str(tmp_path))
    os.remove(os.path.join(folder, "data_batch_4"))
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        data.load_cifar(tmp_path)


def test_load_cifar_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="load_imagenet16"):
        data.load_cifar(tmp_path, "ImageNet16-120")
    with pytest.raises(ValueError, match="split"):
        data.load_cifar(tmp_path, "cifar10", "val")


@pytest.mark.parametrize("entry, match", [
    ({"data": np.zeros((2, 3072), np.uint8)}, r"missing key\(s\) \['labels'\]"),
    ({"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]}, r"shape \(N, 3072\)"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 entries"),
    ({"data": np.full((2, 3072), 300), "labels": [0, 1]}, "0..255"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, r"0..9"),
    ([1, 2, 3], "pickled dict"),
])
def test_load_cifar_malformed(tmp_path, entry, match):
    _dump(str(tmp_path / "cifar-10-batches-py" / "test_batch"), entry)
    with pytest.raises(ValueError, match=match):
        data.load_cifar(tmp_path, "cifar10", "test")


def test_load_cifar_not_a_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match="not a readable python pickle"):
        data.load_cifar(tmp_path, "cifar10", "test")


def _fake_imagenet16(root, rng):
    folder = os.path.join(root, "ImageNet16")
    all_rows, all_labels = [], []
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        rows, nhwc = _planes(4, 16, rng)
        labels = [1, 120, 121, 1000]  # 1-based; only the first two are in ImageNet16-120
        _dump(os.path.join(folder, name), {"data": rows, "labels": labels, "mean": np.zeros(3)})
        all_rows.append(nhwc)
        all_labels.append(labels)
    return folder, all_rows, all_labels


def test_load_imagenet16_from_fake_pickles(tmp_path):
    folder, nhwc, _ = _fake_imagenet16(str(tmp_path), np.random.default_rng(2))
    images, labels = data.load_imagenet16(tmp_path, 120, "train")
    assert images.shape == (20, 16, 16, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, [0, 119] * 10)
    np.testing.assert_array_equal(images, np.concatenate([x[:2] for x in nhwc[:10]]))
    images, labels = data.load_imagenet16(folder, num_classes=1000, split="val")
    np.testing.assert_array_equal(images, nhwc[10])
    np.testing.assert_array_equal(labels, [0, 119, 120, 999])
    b = data.batch_from_arrays(images, labels, 4, 0, *data.normalization("ImageNet16-120"))
    data.check_batch(b, num_classes=1000, image_shape=(16, 16, 3))


def test_load_imagenet16_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageNet16.train_data_batch_1"):
        data.load_imagenet16(tmp_path)
    with pytest.raises(ValueError, match="num_classes"):
        data.load_imagenet16(tmp_path, num_classes=0)
    with pytest.raises(ValueError, match="split"):
        data.load_imagenet16(tmp_path, split="holdout")
    _dump(str(tmp_path / "ImageNet16" / "val_data"),
          {"data": np.zeros((2, 768), np.uint8), "labels": [0, 1]})
    with pytest.raises(ValueError, match="1-based"):
        data.load_imagenet16(tmp_path, split="test")
    _dump(str(tmp_path / "ImageNet16" / "val_data"),
          {"data": np.zeros((2, 3072), np.uint8), "labels": [1, 1]})
    with pytest.raises(ValueError, match=r"\(N, 768\)"):
        data.load_imagenet16(tmp_path, split="test")
