"""Batches for zero-cost proxies: a bundled CIFAR-10 sample, CIFAR / ImageNet16 readers, synthetic
data, and token batches for language models.

Every image batch is a :class:`Batch` of NHWC ``float32`` images, normalised per channel, and
``int32`` labels; a language model's batch is a :class:`TokenBatch` of ``int32`` token ids and
their next tokens (built from text by :mod:`zcjax.text`). Both expose ``inputs`` and ``labels``,
which is what proxies read.

Most proxies score an architecture on a single mini-batch (Abdelfattah et al., "Zero-Cost
Proxies for Lightweight NAS", ICLR 2021; Mellor et al., "Neural Architecture Search without
Training", ICML 2021), so one deterministic batch is what a proxy needs:

* :func:`default_batch` -- drawn from 1,000 CIFAR-10 train (or test) images shipped with the
  package (``zcjax/resources/cifar10_{train,test}_1000.npz``, see ``PROVENANCE.md``), so scores
  are reproducible without downloading anything.
* :func:`load_cifar` / :func:`load_imagenet16` -- the user's own copy of the full data sets (the
  standard CIFAR python pickles, NAS-Bench-201's ImageNet16 pickles), then
  :func:`batch_from_arrays`.
* :func:`gaussian_batch` / :func:`constant_batch` -- inputs for data-free proxies (e.g. SynFlow
  feeds an all-ones input; Zen-NAS feeds Gaussian noise).

Normalisation constants are those of the zero-cost reference implementation
(SamsungLabs/zero-cost-nas, ``foresight/dataset.py``), which uses the CIFAR-10 statistics for
both CIFAR-10 and CIFAR-100 and the ImageNet16 statistics of NAS-Bench-201 for ImageNet16-120.

The pickles are read with :mod:`zcjax.safe_pickle`, which admits only what the real files contain
(dicts, lists, strings, numbers, numeric numpy arrays) and refuses anything that would run code,
naming the file and the forbidden global; a damaged file gives a ``ValueError`` naming the file.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zcjax import safe_pickle
from zcjax.validation import cap, check_seed

__all__ = [
    "Batch", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_PIXEL_STD", "CIFAR100_MEAN", "CIFAR100_STD",
    "IMAGENET16_MEAN", "IMAGENET16_STD", "NUM_CLASSES", "IMAGE_SHAPE", "BUNDLED_SIZE",
    "normalization", "bundled_arrays", "default_batch", "batch_from_arrays", "load_cifar",
    "load_imagenet16", "gaussian_batch", "constant_batch", "check_batch",
    "TokenBatch", "check_token_batch",
]


class Batch(NamedTuple):
    """A mini-batch.

    Attributes:
      images: ``float32`` array ``(N, H, W, C)`` (NHWC), normalised.
      labels: ``int32`` array ``(N,)`` of class indices starting at 0.
    """

    images: jax.Array
    labels: jax.Array

    @property
    def inputs(self) -> jax.Array:
        """What the network takes (the images): the name every batch type shares."""
        return self.images


class TokenBatch(NamedTuple):
    """A mini-batch of token sequences for a language model.

    Attributes:
      tokens: ``int32`` array ``(N, T)``: ``N`` sequences of ``T`` token ids.
      labels: ``int32`` array ``(N, T)``: the next token of every position (the sequence
        shifted by one), what the model predicts.
    """

    tokens: jax.Array
    labels: jax.Array

    @property
    def inputs(self) -> jax.Array:
        """The network's inputs (the token ids): what every proxy reads."""
        return self.tokens


def check_token_batch(batch: TokenBatch, *, vocab_size: Optional[int] = None,
                      seq_len: Optional[int] = None) -> TokenBatch:
    """Checks a token batch at a public boundary; returns it unchanged.

    Raises:
      ValueError: tokens not int32 ``(N, T)``, labels not int32 of the same shape, a sequence
        length other than ``seq_len`` or (for concrete arrays) ids outside
        ``0..vocab_size-1``.
    """
    tokens, labels = batch
    if getattr(tokens, "ndim", None) != 2:
        raise ValueError("tokens must be (N, T) token ids (rank 2), "
                         f"got shape {getattr(tokens, 'shape', None)}")
    if tokens.dtype != jnp.int32:
        raise ValueError(f"tokens must be int32, got {tokens.dtype}")
    if getattr(labels, "shape", None) != tokens.shape:
        raise ValueError(f"labels must have the tokens' shape {tuple(tokens.shape)} (the next "
                         f"token of every position), got {getattr(labels, 'shape', None)}")
    if labels.dtype != jnp.int32:
        raise ValueError(f"labels must be int32, got {labels.dtype}")
    if seq_len is not None and tokens.shape[1] != seq_len:
        raise ValueError(f"sequences must have {seq_len} tokens, got {tokens.shape[1]}")
    if vocab_size is not None:
        for name, ids in (("tokens", tokens), ("labels", labels)):
            try:
                ids = np.asarray(ids)
            except jax.errors.TracerArrayConversionError:  # traced: values unknown here
                return batch
            if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
                raise ValueError(f"{name} must be ids in 0..{vocab_size - 1}, "
                                 f"got range {ids.min()}..{ids.max()}")
    return batch


# -- data sets --------------------------------------------------------------------------------

#: The image data sets zcjax reads (NAS-Bench-201's three), in their canonical spelling.
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")

_ALIASES = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet16120": "ImageNet16-120",
}


def canonical_dataset(dataset: str) -> str:
    """The canonical name of an image data set.

    Case, ``-`` and ``_`` are ignored: ``"CIFAR-10"``, ``"cifar10"``, ``"imagenet16-120"``,
    ``"ImageNet16_120"`` are all accepted.

    Raises:
      ValueError: for anything else, listing the valid names.
    """
    if isinstance(dataset, str):
        key = dataset.strip().lower().replace("-", "").replace("_", "")
        if key in _ALIASES:
            return _ALIASES[key]
    raise ValueError(f"unknown data set {dataset!r}; expected one of {DATASETS}")


# -- normalisation ----------------------------------------------------------------------------

#: CIFAR-10 channel means (RGB, on [0, 1] pixels), as in zero-cost-nas ``foresight/dataset.py``.
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
#: CIFAR-10 channel "std" as used by zero-cost-nas (and many CIFAR training scripts). Note: these
#: are not the per-pixel standard deviations of CIFAR-10 (see :data:`CIFAR10_PIXEL_STD`); they are
#: kept so that data-dependent proxies match the reference implementation.
CIFAR10_STD: tuple[float, float, float] = (0.2023, 0.1994, 0.2010)
#: The actual per-pixel standard deviation of the CIFAR-10 training set, for users who want it.
CIFAR10_PIXEL_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
#: zero-cost-nas normalises CIFAR-100 with the CIFAR-10 constants (``'cifar' in dataset``).
CIFAR100_MEAN: tuple[float, float, float] = CIFAR10_MEAN
CIFAR100_STD: tuple[float, float, float] = CIFAR10_STD
#: ImageNet16-120 constants of NAS-Bench-201 / zero-cost-nas: (122.68, 116.66, 104.01) / 255.
IMAGENET16_MEAN: tuple[float, float, float] = (122.68 / 255, 116.66 / 255, 104.01 / 255)
#: (63.22, 61.26, 65.09) / 255.
IMAGENET16_STD: tuple[float, float, float] = (63.22 / 255, 61.26 / 255, 65.09 / 255)

_NORMALIZATION = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "ImageNet16-120": (IMAGENET16_MEAN, IMAGENET16_STD),
}

#: Number of classes of each data set.
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: Image shape (H, W, C) of each data set.
IMAGE_SHAPE: dict[str, tuple[int, int, int]] = {
    "cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "ImageNet16-120": (16, 16, 3)}

#: Number of bundled CIFAR-10 images per split.
BUNDLED_SIZE = 1000

_SPLITS = ("train", "test")


def normalization(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` per RGB channel used for ``dataset`` (aliases accepted)."""
    return _NORMALIZATION[canonical_dataset(dataset)]


# -- validation helpers -----------------------------------------------------------------------

def _check_size(size: Any, *, maximum: Optional[int] = None, name: str = "size") -> int:
    if isinstance(size, (bool, np.bool_)) or not hasattr(size, "__index__"):
        raise ValueError(f"{name} must be an integer, got {size!r}")
    size = int(size)
    if size < 1 or (maximum is not None and size > maximum):
        bound = f"1..{maximum}" if maximum is not None else ">= 1"
        raise ValueError(f"{name} must be in {bound}, got {size}")
    return size


def _check_split(split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {_SPLITS}")
    return split


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence (H, W, C), got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (H, W, C) with positive entries, got {shape}")
    return shape


#: Largest magnitude a normalised image batch plausibly has; raw 0..255 pixels exceed it.
_MAX_NORMALISED = 50.0


def check_batch(batch: Any, *, input_spec: Any = None, num_classes: Optional[int] = None,
                min_size: int = 1, image_shape: Optional[Sequence[int]] = None) -> Any:
    """Checks a batch against the network it is for; returns it unchanged.

    Args:
      batch: a :class:`Batch` (or any batch with ``inputs`` and ``labels``).
      input_spec: the network's :class:`zcjax.spaces.base.InputSpec` (kind, per-example shape,
        dtype), e.g. ``zcjax.spaces.get("nb201").input_spec(config)``; without it only the
        structure is checked.
      num_classes: the classifier's outputs: labels must lie in ``0..num_classes-1``.
      min_size: the smallest batch the proxies asked for are defined on
        (``ProxyInfo.min_batch``).
      image_shape: the expected ``(H, W, C)`` (the older spelling of ``input_spec.shape``).

    Raises:
      ValueError: naming the problem: a layout other than NHWC (an NCHW batch is recognised),
        the wrong image size or channels, integer or unnormalised (0..255) pixels, NaN / inf
        values, labels of the wrong shape, dtype or range, a batch smaller than ``min_size``.
        Values are checked only for concrete arrays (not under ``jit``).
    """
    images, labels = batch.inputs, batch.labels
    spec_shape = tuple(image_shape) if image_shape is not None else (
        tuple(input_spec.shape) if input_spec is not None else None)
    inputs = batch.inputs
    kind = getattr(input_spec, "kind", None) or (
        "tokens" if getattr(inputs, "ndim", None) == 2
        and jnp.issubdtype(getattr(inputs, "dtype", np.float32), jnp.integer) else "images")
    if kind == "tokens":
        check_token_batch(batch, vocab_size=num_classes,
                          seq_len=None if input_spec is None else input_spec.shape[0])
        if batch.inputs.shape[0] < max(1, int(min_size)):
            raise ValueError(f"the batch has {batch.inputs.shape[0]} sequences; the proxies "
                             f"asked for need at least {max(1, int(min_size))}")
        return batch
    if kind != "images":
        raise ValueError(f"check_batch checks image and token batches; this network takes "
                         f"{kind}")
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"images must be NHWC (rank 4), got shape {shape}")
    if spec_shape is not None and shape[1:] != spec_shape:
        channels = spec_shape[-1]
        if shape[1] == channels and shape[-1] != channels:
            raise ValueError(f"images of shape {shape} look NCHW; zcjax networks take NHWC "
                             f"(N, H, W, C) = (N, {', '.join(map(str, spec_shape))}): "
                             "transpose with images.transpose(0, 2, 3, 1)")
        raise ValueError(f"images must have (H, W, C) = {spec_shape} for this network, got "
                         f"{shape[1:]}")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"images must be float32 and normalised, got {images.dtype} (raw "
                         "pixels? zcjax.data.batch_from_arrays normalises them)")
    if images.dtype != jnp.float32:
        raise ValueError(f"images must be float32, got {images.dtype}")
    if shape[0] < max(1, int(min_size)):
        raise ValueError(f"the batch has {shape[0]} images; the proxies asked for need at least "
                         f"{max(1, int(min_size))}")
    if getattr(labels, "ndim", None) != 1 or labels.shape[0] != shape[0]:
        raise ValueError(f"labels must have shape ({shape[0]},) to match images {shape}, got "
                         f"{getattr(labels, 'shape', None)}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    try:
        values, lab = np.asarray(images), np.asarray(labels)
    except jax.errors.TracerArrayConversionError:  # traced: values unknown here
        return batch
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"images hold {bad} NaN or infinite values")
    if values.size and float(np.max(np.abs(values))) > _MAX_NORMALISED:
        raise ValueError(f"images reach {float(np.max(np.abs(values))):g}: unnormalised pixels? "
                         "Normalise with mean / std (zcjax.data.batch_from_arrays, "
                         "zcjax.data.normalization)")
    if num_classes is not None and lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1} for a network with "
                         f"{num_classes} outputs, got range {lab.min()}..{lab.max()}")
    return batch


# -- batches from arrays ----------------------------------------------------------------------

def _select(labels: np.ndarray, size: int, rng: np.random.Generator,
            balanced: bool) -> np.ndarray:
    """Indices of a seeded random subset of ``size`` items (class-balanced on request)."""
    n = labels.shape[0]
    if not balanced:
        return rng.permutation(n)[:size]
    classes = np.unique(labels)
    k = len(classes)
    per, extra = divmod(size, k)
    # The `extra` classes that get one image more are drawn at random too.
    counts = np.full(k, per, np.int64)
    counts[rng.permutation(k)[:extra]] += 1
    chosen = []
    for c, count in zip(classes, counts):
        members = np.flatnonzero(labels == c)
        if count > members.size:
            raise ValueError(
                f"a balanced batch of {size} over the {k} classes present needs up to "
                f"{-(-size // k)} images per class, but class {int(c)} has only {members.size}")
        chosen.append(rng.permutation(members)[:count])
    # Shuffle so classes are interleaved.
    return rng.permutation(np.concatenate(chosen))


def batch_from_arrays(images: np.ndarray, labels: np.ndarray, size: Optional[int] = None,
                      seed: int = 0, mean: Sequence[float] = CIFAR10_MEAN,
                      std: Sequence[float] = CIFAR10_STD, *, balanced: bool = False) -> Batch:
    """A normalised :class:`Batch` drawn from uint8 NHWC images.

    ``images / 255`` is normalised per channel: ``(x / 255 - mean) / std``.

    Args:
      images: ``uint8`` array ``(N, H, W, C)``.
      labels: integer array ``(N,)``.
      size: batch size in 1..N; ``None`` takes all N images in their given order.
      seed: selects the images: a seeded permutation (NumPy ``default_rng(seed)``), so the same
        seed gives the same batch and different seeds different subsets.
      mean, std: per-channel constants, each of length C.
      balanced: draw ``size // K`` images of each of the K classes present in ``labels``, plus one
        more for ``size % K`` randomly chosen classes (counts differ by at most one).

    Raises:
      ValueError: wrong dtypes, ranks or lengths, a size outside 1..N, a non-positive std, or a
        balanced batch that some class is too small for.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4:
        raise ValueError(f"images must be NHWC (N, H, W, C), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in 0..255, got {images.dtype}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    channels = images.shape[-1]
    mean = np.asarray(mean, np.float32).reshape(-1)
    std = np.asarray(std, np.float32).reshape(-1)
    if mean.shape != (channels,) or std.shape != (channels,):
        raise ValueError(f"mean and std need {channels} entries (one per channel), "
                         f"got {mean.shape[0]} and {std.shape[0]}")
    if np.any(std <= 0):
        raise ValueError(f"std must be positive, got {std.tolist()}")
    if images.shape[0] == 0:
        raise ValueError("no images to draw from")
    if size is None:
        idx = np.arange(images.shape[0])
    else:
        size = _check_size(size, maximum=images.shape[0])
        idx = _select(labels, size, np.random.default_rng(check_seed(seed)), bool(balanced))
    x = (images[idx].astype(np.float32) / np.float32(255.0) - mean) / std
    y = labels[idx].astype(np.int32)
    return Batch(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32))


# -- the bundled sample -----------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _bundled(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = importlib.resources.files("zcjax.resources") / f"cifar10_{split}_1000.npz"
    with path.open("rb") as f, np.load(f) as z:
        images, labels = z["images"], z["labels"].astype(np.int32)
    if images.shape != (BUNDLED_SIZE, 32, 32, 3) or images.dtype != np.uint8 \
            or labels.shape != (BUNDLED_SIZE,):
        raise RuntimeError(f"bundled cifar10_{split}_1000.npz is malformed: "
                           f"{images.shape} {images.dtype}, labels {labels.shape}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def bundled_arrays(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 bundled CIFAR-10 images of ``split`` (uint8 NHWC, int32 labels), read-only.

    Train images 0..999 and test images 0..999 of the official CIFAR-10 order.
    """
    return _bundled(_check_split(split))


def default_batch(size: int = 64, *, split: str = "train", seed: int = 0,
                  dataset: str = "cifar10", balanced: bool = False) -> Batch:
    """A deterministic, normalised CIFAR-10 batch from the images shipped with the package.

    Args:
      size: 1..1000.
      split: ``"train"`` (train images 0..999) or ``"test"`` (test images 0..999).
      seed: which images (a seeded permutation): same seed, same batch.
      dataset: only ``"cifar10"`` is bundled; read other data sets with :func:`load_cifar` or
        :func:`load_imagenet16` and :func:`batch_from_arrays`.
      balanced: equal numbers of images per class (within one); the bundled train split has at
        least 85 images of every class and the test split at least 86.

    Returns:
      A :class:`Batch`, images ``(size, 32, 32, 3)`` float32 normalised with
      :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`.
    """
    if canonical_dataset(dataset) != "cifar10":
        raise ValueError(
            f"only CIFAR-10 images are bundled, not {dataset!r}; use load_cifar() or "
            "load_imagenet16() with batch_from_arrays() for other data sets")
    size = _check_size(size, maximum=BUNDLED_SIZE)
    check_seed(seed)
    images, labels = bundled_arrays(split)
    mean, std = normalization("cifar10")
    return batch_from_arrays(images, labels, size, seed, mean, std, balanced=balanced)


# -- the user's own data sets -----------------------------------------------------------------

def _unpickle(path: str) -> dict[str, Any]:
    """Loads a data pickle holding a dict (no code runs, see :mod:`zcjax.safe_pickle`).

    Keys are returned as ``str``.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: (:class:`~zcjax.safe_pickle.UnsafePickleError` for a forbidden global,
        :class:`~zcjax.safe_pickle.MalformedPickleError` otherwise) naming the file.
    """
    entry = safe_pickle.load(path)
    if not isinstance(entry, dict):
        raise safe_pickle.MalformedPickleError(
            f"{cap(path, 300)}: expected a pickled dict, got {type(entry).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _integer_array(value: Any, path: str, key: str) -> np.ndarray:
    """``value`` (an array or a list of numbers) as an array; never an object array."""
    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{cap(path, 300)}: '{key}' must be an array or a list, "
                         f"got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as e:  # ragged, mixed or huge entries
        raise ValueError(f"{cap(path, 300)}: '{key}' is not a regular array of numbers "
                         f"({type(e).__name__})") from None
    if array.dtype == object:
        raise ValueError(f"{cap(path, 300)}: '{key}' holds non-numeric or out-of-range entries")
    return array


def _rows(entry: dict[str, Any], path: str, data_key: str, label_key: str, hw: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(data (N, 3*hw*hw) uint8, labels (N,) int64)`` of one pickle."""
    missing = [k for k in (data_key, label_key) if k not in entry]
    if missing:
        found = cap(repr(sorted(map(str, entry))), 200)
        raise ValueError(f"{cap(path, 300)}: missing key(s) {missing}; found {found}")
    data = _integer_array(entry[data_key], path, data_key)
    labels = _integer_array(entry[label_key], path, label_key)
    row = 3 * hw * hw
    if data.ndim != 2 or data.shape[1] != row:
        raise ValueError(f"{path}: '{data_key}' must have shape (N, {row}) "
                         f"(3x{hw}x{hw} channel-first), got {data.shape}")
    if not (np.issubdtype(data.dtype, np.integer) and (data.size == 0 or (
            data.min() >= 0 and data.max() <= 255))):
        raise ValueError(f"{path}: '{data_key}' must hold uint8 pixels in 0..255, "
                         f"got dtype {data.dtype}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: '{label_key}' must have {data.shape[0]} entries (one per "
                         f"image), got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: '{label_key}' must be integers, got {labels.dtype}")
    return data.astype(np.uint8), labels.astype(np.int64)


def _to_nhwc(data: np.ndarray, hw: int) -> np.ndarray:
    return np.ascontiguousarray(data.reshape(-1, 3, hw, hw).transpose(0, 2, 3, 1))


def _find_folder(root: str, subfolder: str, first_file: str) -> str:
    """``root/subfolder`` if it holds ``first_file``, else ``root`` if it does, else an error."""
    root = os.fspath(root)
    for folder in (os.path.join(root, subfolder), root):
        if os.path.isfile(os.path.join(folder, first_file)):
            return folder
    raise FileNotFoundError(
        f"expected data file not found: {os.path.join(root, subfolder, first_file)} "
        f"(nor {os.path.join(root, first_file)})")


_CIFAR_LAYOUT = {
    # dataset: (folder, train files, test files, label key)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                ("test_batch",), "labels"),
    "cifar100": ("cifar-100-python", ("train",), ("test",), "fine_labels"),
}


def load_cifar(root: "str | os.PathLike", dataset: str = "cifar10", split: str = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Reads CIFAR-10 / CIFAR-100 from the standard python pickles (Krizhevsky, 2009).

    Layout (as extracted from ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``)::

        <root>/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch
        <root>/cifar-100-python/train, test

    ``root`` may also be the ``cifar-10-batches-py`` / ``cifar-100-python`` folder itself. Each
    pickle is a dict with ``data``, ``(N, 3072)`` uint8 rows holding the R, G and B 32x32
    planes, and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100, 100 classes).

    Returns:
      ``(images, labels)``: uint8 ``(N, 32, 32, 3)`` NHWC and int32 ``(N,)``, in file order.

    Raises:
      FileNotFoundError: naming the expected file when one is missing.
      ValueError: an unknown dataset or split, or a malformed file (not a pickled dict, missing
        keys, wrong row length, label count or label range).
    """
    dataset = canonical_dataset(dataset)
    if dataset not in _CIFAR_LAYOUT:
        raise ValueError(f"load_cifar reads 'cifar10' or 'cifar100', not {dataset!r}; "
                         "use load_imagenet16 for ImageNet16-120")
    split = _check_split(split)
    sub, train_files, test_files, label_key = _CIFAR_LAYOUT[dataset]
    files = train_files if split == "train" else test_files
    folder = _find_folder(root, sub, files[0])
    num_classes = NUM_CLASSES[dataset]
    datas, labels = [], []
    for name in files:
        path = os.path.join(folder, name)
        data, lab = _rows(_unpickle(path), path, "data", label_key, 32)
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise ValueError(f"{path}: '{label_key}' must be in 0..{num_classes - 1}, "
                             f"got range {lab.min()}..{lab.max()}")
        datas.append(data)
        labels.append(lab)
    return _to_nhwc(np.concatenate(datas), 32), np.concatenate(labels).astype(np.int32)


def load_imagenet16(root: "str | os.PathLike", num_classes: int = 120, split: str = "train"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Reads NAS-Bench-201's ImageNet16 pickles (Chrabaszcz et al. 2017, 16x16 downsampled).

    Layout (as distributed with NAS-Bench-201; cf. ``foresight/imagenet16.py`` of
    zero-cost-nas)::

        <root>/ImageNet16/train_data_batch_1 .. train_data_batch_10, val_data

    ``root`` may also be the ``ImageNet16`` folder itself. Each pickle is a dict with ``data``,
    ``(N, 768)`` uint8 rows holding the three 16x16 channel planes, and ``labels``, 1-based
    ImageNet classes 1..1000. Only images with label ``<= num_classes`` are kept (120 gives
    ImageNet16-120) and labels are shifted to 0-based.

    Args:
      root: the data folder.
      num_classes: keep classes 1..num_classes (1..1000).
      split: ``"train"`` reads the ten train batches; ``"test"`` (or ``"val"``) reads
        ``val_data``, the ImageNet validation images, which NAS-Bench-201 splits into its
        ImageNet16-120 valid and test halves.

    Returns:
      ``(images, labels)``: uint8 ``(N, 16, 16, 3)`` NHWC and int32 ``(N,)`` in 0..num_classes-1.

    Raises:
      FileNotFoundError: naming the expected file when one is missing.
      ValueError: a bad ``num_classes`` or split, or a malformed file.
    """
    num_classes = _check_size(num_classes, maximum=1000, name="num_classes")
    if split in ("val", "valid"):
        split = "test"
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test' (alias 'val')")
    files = (tuple(f"train_data_batch_{i}" for i in range(1, 11)) if split == "train"
             else ("val_data",))
    folder = _find_folder(root, "ImageNet16", files[0])
    datas, labels = [], []
    for name in files:
        path = os.path.join(folder, name)
        data, lab = _rows(_unpickle(path), path, "data", "labels", 16)
        if lab.size and (lab.min() < 1 or lab.max() > 1000):
            raise ValueError(f"{path}: 'labels' must be 1-based ImageNet classes in 1..1000, "
                             f"got range {lab.min()}..{lab.max()}")
        keep = lab <= num_classes
        datas.append(data[keep])
        labels.append(lab[keep] - 1)
    return _to_nhwc(np.concatenate(datas), 16), np.concatenate(labels).astype(np.int32)


# -- synthetic batches ------------------------------------------------------------------------

def gaussian_batch(size: int = 64, shape: Sequence[int] = (32, 32, 3), seed: int = 0,
                   num_classes: int = 10) -> Batch:
    """Standard-normal images and uniform random labels, deterministic by ``seed``.

    For data-free proxies (e.g. Zen-NAS, Lin et al., ICCV 2021, scores on N(0, 1) inputs).
    Drawn with NumPy ``default_rng(seed)``, so the batch does not depend on JAX's PRNG settings.
    """
    size = _check_size(size)
    shape = _check_shape(shape)
    num_classes = _check_size(num_classes, name="num_classes")
    rng = np.random.default_rng(check_seed(seed))
    x = rng.standard_normal((size, *shape), dtype=np.float32)
    y = rng.integers(0, num_classes, size=size).astype(np.int32)
    return Batch(jnp.asarray(x), jnp.asarray(y))


def constant_batch(size: int = 64, value: float = 1.0, shape: Sequence[int] = (32, 32, 3),
                   num_classes: int = 10) -> Batch:
    """Images filled with ``value`` and labels ``0, 1, ..., num_classes-1, 0, ...``.

    SynFlow (Tanaka et al., NeurIPS 2020) feeds an all-ones input.
    """
    size = _check_size(size)
    shape = _check_shape(shape)
    num_classes = _check_size(num_classes, name="num_classes")
    value = float(value)
    x = jnp.full((size, *shape), value, jnp.float32)
    y = jnp.asarray(np.arange(size) % num_classes, jnp.int32)
    return Batch(x, y)
