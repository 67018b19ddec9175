"""Images for supernet training and one-shot scoring: the split, the order, the augmentation.

Protocol (aw_nas, Ning et al. NeurIPS 2021; ``data_portion: [0.0, 0.8, 0.2]`` without shuffling
before the split): the supernet trains on the first 80% of a data set's training split, in file
order, and architectures are scored on the last 20% with the test-time transform (no
augmentation). :func:`load` applies it to

* ``cifar10`` without a folder: the 1,000 CIFAR-10 training images bundled with zcjax (800 to
  train, 200 to score; a demonstration, far too few to train a useful supernet);
* the user's CIFAR-10 / CIFAR-100 (:func:`zcjax.data.load_cifar`) or ImageNet16-120
  (:func:`zcjax.data.load_imagenet16`), e.g. from ``zcjax.workspace.data_dir()``.

NAS-Bench-201's own validation splits (CIFAR-10 train halves, halves of the CIFAR-100 and
ImageNet16-120 test sets) are defined by split files it ships; zcjax does not ship them and,
like the paper, keeps the test images out of one-shot estimation altogether.

Images stay ``uint8`` on the host; each step moves one batch of indices' images to the device,
where :func:`augment` and :func:`normalize` run inside the compiled step. Normalisation
constants are aw_nas's per data set (:data:`NORMALIZATION`), so a checkpoint trained here sees
the inputs the reference supernet saw.

Order: epoch ``e`` visits the training images in ``numpy.random.default_rng((seed, e, 0))``'s
permutation, a function of the seed and the epoch alone, so a resumed run reads exactly the
batches an uninterrupted run reads.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zcjax import data as data_lib
from zcjax import validation
from zcjax.benchmarks.nb201 import canonical_dataset
from zcjax.sweep.store import array_hash

__all__ = ["NORMALIZATION", "PADDING", "ImageSet", "load", "split", "augment", "normalize",
           "epoch_order"]

#: ``(mean, std)`` per RGB channel on [0, 1] pixels, as aw_nas normalises each data set
#: (``aw_nas/dataset/cifar10.py``, ``cifar100.py``, ``imagenet_downsample.py``).
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
    "cifar100": ((0.5070751592371322, 0.4865488733149497, 0.44091784336703466),
                 (0.26733428587924063, 0.25643846291708833, 0.27615047132568393)),
    "ImageNet16-120": ((0.48110767, 0.45748286, 0.40787092), (0.229, 0.224, 0.225)),
}

#: Zero padding of the random crop: 4 pixels at 32x32, 2 at 16x16 (aw_nas, after NB201).
PADDING = {32: 4, 16: 2}


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """Labelled ``uint8`` NHWC images with their normalisation.

    Attributes:
      images: ``uint8`` ``(N, H, W, C)``, read-only.
      labels: ``int32`` ``(N,)``.
      mean, std: per-channel constants on [0, 1] pixels.
      name: what the images are, for messages and tables (e.g. ``"cifar10 train[0:800]"``).
    """

    images: np.ndarray
    labels: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"{self.name}: images must be uint8 NHWC, got {images.dtype} "
                             f"{images.shape}")
        if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{self.name}: labels must be {images.shape[0]} integers, got "
                             f"{labels.dtype} {labels.shape}")
        if len(self.mean) != images.shape[-1] or len(self.std) != images.shape[-1]:
            raise ValueError(f"{self.name}: mean and std need one entry per channel")
        images = np.ascontiguousarray(images)
        labels = np.ascontiguousarray(labels, np.int32)
        images.setflags(write=False)
        labels.setflags(write=False)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    @functools.cached_property
    def hash(self) -> str:
        """16 hex digits of the images, labels and normalisation (what a score depends on)."""
        parts = (array_hash(self.images), array_hash(self.labels),
                 array_hash(np.asarray(self.mean + self.std, np.float64)))
        return hashlib.sha256("|".join(parts).encode("ascii")).hexdigest()[:16]

    def subset(self, start: int, stop: int, name: str | None = None) -> "ImageSet":
        return ImageSet(self.images[start:stop], self.labels[start:stop], self.mean, self.std,
                        name or f"{self.name}[{start}:{stop}]")


def split(images: ImageSet, holdout: float) -> tuple[ImageSet, ImageSet]:
    """``(train, held out)``: the first ``1 - holdout`` of the images and the rest, in order."""
    n = len(images)
    n_train = n - int(round(holdout * n))
    if not 0 < n_train < n:
        raise ValueError(f"holdout={holdout} of {n} images leaves {n_train} to train and "
                         f"{n - n_train} to score; both must be at least 1")
    return (images.subset(0, n_train, f"{images.name}[0:{n_train}]"),
            images.subset(n_train, n, f"{images.name}[{n_train}:{n}]"))


def load(dataset: str = "cifar10", data_dir: "str | os.PathLike | None" = None,
         holdout: float = 0.2) -> tuple[ImageSet, ImageSet]:
    """``(train, held out)`` images of a data set's training split (module doc).

    Args:
      dataset: ``cifar10``, ``cifar100`` or ``ImageNet16-120`` (aliases accepted).
      data_dir: the folder holding ``cifar-10-batches-py/``, ``cifar-100-python/`` or
        ``ImageNet16/`` (see :mod:`zcjax.data`); ``None`` for CIFAR-10 takes the bundled
        1,000 images.
      holdout: the fraction scored on, the last images of the split.

    Raises:
      ValueError: an unknown data set, no ``data_dir`` for one that is not bundled, a bad
        holdout; ``FileNotFoundError`` / ``ValueError`` from the readers for missing or
        malformed files.
    """
    dataset = canonical_dataset(dataset)
    mean, std = NORMALIZATION[dataset]
    if data_dir is None:
        if dataset != "cifar10":
            raise ValueError(f"only CIFAR-10 images are bundled; give the folder holding "
                             f"{dataset} (data_dir)")
        images, labels = data_lib.bundled_arrays("train")
        name = "cifar10 bundled train"
    elif dataset == "ImageNet16-120":
        images, labels = data_lib.load_imagenet16(data_dir, 120, "train")
        name = "ImageNet16-120 train"
    else:
        images, labels = data_lib.load_cifar(data_dir, dataset, "train")
        name = f"{dataset} train"
    return split(ImageSet(images, labels, mean, std, name), holdout)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` of run ``seed`` visits ``n`` images."""
    seed = validation.check_seed(seed)
    epoch = validation.check_int(epoch, "epoch", 0)
    return np.random.default_rng((seed, epoch, 0)).permutation(n)


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """``uint8`` images to float32 ``(x / 255 - mean) / std`` (torchvision's ``ToTensor`` and
    ``Normalize``)."""
    x = images.astype(jnp.float32) / jnp.float32(255.0)
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def augment(key: jax.Array, images: jax.Array, pad: int) -> jax.Array:
    """torchvision's ``RandomCrop(size, padding=pad)`` then ``RandomHorizontalFlip()``, per
    image: zero-pad by ``pad`` pixels (black, before normalisation), cut a window of the
    original size at a uniformly random offset in ``0..2 pad``, mirror it with probability 1/2.
    """
    n, h, w, _ = images.shape
    k_y, k_x, k_flip = jax.random.split(key, 3)
    dy = jax.random.randint(k_y, (n,), 0, 2 * pad + 1)
    dx = jax.random.randint(k_x, (n,), 0, 2 * pad + 1)
    flip = jax.random.bernoulli(k_flip, 0.5, (n,))
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(image, y, x, f):
        crop = jax.lax.dynamic_slice(image, (y, x, 0), (h, w, image.shape[-1]))
        return jnp.where(f, crop[:, ::-1], crop)

    return jax.vmap(one)(padded, dy, dx, flip)
