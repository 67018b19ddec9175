"""What every search space offers: the protocol the engine, the experiments and the tests use.

A search space is a small package under ``zcjax/spaces/<name>/`` (genotype, network, cost,
optionally a compile-once scorer) whose ``__init__`` registers one :class:`SearchSpace`
object. Everything above ``spaces/`` (the sweep engine, the one-shot trainer, the
experiments, the registry-driven tests) talks to a space only through this object, so adding a
space adds no code anywhere else.

Architectures are identified everywhere by their canonical **string** (what
:meth:`SearchSpace.format` returns and :meth:`SearchSpace.parse` reads back): it is the key of
the result store and of the ground truth, as NAS-Bench users query their benchmarks by
architecture string. Inside the library an architecture is the space's own immutable, hashable
genotype object.

The network of an architecture follows the network-proxy contract (:mod:`zcjax.contract`), so
every proxy scores it; :attr:`SearchSpace.proxy_options` passes the space's reference constants
to the proxies that have them (epsilon's constant-weight pair, ...).
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib
import importlib.util
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import flax.linen as nn
import numpy as np

from zcjax import validation

Arch = Any  # a space's genotype object (immutable, hashable)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a space's networks take as input (one example; batches add a leading axis).

    Attributes:
      kind: ``"images"`` (float32 ``(H, W, C)``, NHWC) or ``"tokens"`` (int32 ``(T,)``).
      shape: the shape of one example.
      dtype: ``"float32"`` or ``"int32"``.
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        if self.kind not in ("images", "tokens"):
            raise ValueError(f"unknown input kind {self.kind!r}; expected 'images' or 'tokens'")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Base of a space's network configuration: a frozen, hashable dataclass.

    A space subclasses it with its hyper-parameters (channels, depth, classes, layer
    convention, ...), every field with the benchmark's value as default. ``num_classes`` is
    common to all (the classifier's outputs; the vocabulary for language models).
    """

    num_classes: int = 10

    def fields(self) -> dict[str, Any]:
        """The fields as a plain dict (the store's config hash reads it)."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "NetworkConfig":
        return dataclasses.replace(self, **changes)


class SearchSpace(abc.ABC):
    """A search space: genotypes, their networks, and what else the engine needs.

    Subclasses set the class attributes and implement the abstract methods; the defaults of
    the others fit most spaces.
    """

    #: Registry name, also the store's ``space`` column (``"nb201"``, ``"nb101"``, ...).
    name: ClassVar[str]
    #: One line for humans (with the paper).
    description: ClassVar[str]
    #: The space's :class:`NetworkConfig` subclass; its defaults are the benchmark's network.
    Config: ClassVar[type]
    #: Per proxy, keyword options with this space's reference constants, e.g.
    #: ``{"epsilon": {"weights": (1e-4, 10.0)}}``.
    proxy_options: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: Proxies that do not apply to this space's networks, with the reason (the engine refuses
    #: them with that reason; e.g. a proxy that needs declared stage features).
    unsupported_proxies: ClassVar[Mapping[str, str]] = {}
    #: Proxies whose score is NaN on some of this space's networks by design, with the reason
    #: (e.g. the reference's float32 underflow); the contract test accepts NaN only for these.
    nan_proxies: ClassVar[Mapping[str, str]] = {}
    #: The data sets :meth:`scoring_batch` reads (the first is the default).
    datasets: ClassVar[tuple[str, ...]] = ("cifar10", "cifar100", "ImageNet16-120")

    def uninformative_proxies(self, config: NetworkConfig) -> Mapping[str, str]:
        """Proxies that score but carry no information about the architecture on networks of
        ``config``, with the reason (e.g. a quantity that is zero in exact arithmetic, leaving
        float rounding). They are scored as the reference scores them; the tests do not compare
        them between routes (two roundings of nothing need not agree)."""
        return {}

    # -- genotypes ------------------------------------------------------------------------

    @abc.abstractmethod
    def parse(self, text: str) -> Arch:
        """The genotype of an architecture string; ``ValueError`` naming what is wrong."""

    @abc.abstractmethod
    def format(self, arch: Arch) -> str:
        """The architecture's string; ``parse(format(a)) == a``."""

    @abc.abstractmethod
    def canonical(self, arch: Arch) -> str:
        """A string shared exactly by isomorphic architectures (same network function)."""

    @abc.abstractmethod
    def sample(self, n: int, seed: int = 0) -> list[Arch]:
        """``n`` architectures drawn as the benchmark drew them (seeded, reproducible)."""

    @property
    @abc.abstractmethod
    def arch_type(self) -> type:
        """The class of the space's genotypes."""

    def as_arch(self, arch: "Arch | str") -> Arch:
        """A genotype from a genotype or an architecture string; a clear error otherwise."""
        if isinstance(arch, self.arch_type):
            return arch
        if isinstance(arch, str):
            return self.parse(arch)
        raise TypeError(f"{self.name}: expected a {self.arch_type.__name__} or an architecture "
                        f"string, got {validation.cap(repr(arch))}")

    def key(self, arch: "Arch | str") -> str:
        """The architecture's string key (store, ground truth): ``format(as_arch(arch))``."""
        return self.format(self.as_arch(arch))

    def arch_hash(self, arch: "Arch | str") -> str:
        """A 32-hex-digit hash of :meth:`canonical` (one per isomorphism class)."""
        return hashlib.md5(self.canonical(self.as_arch(arch)).encode()).hexdigest()

    def enumerate(self) -> Sequence[Arch] | None:
        """Every architecture, for spaces small enough to list (else ``None``)."""
        return None

    # -- networks -------------------------------------------------------------------------

    def config(self, **overrides) -> NetworkConfig:
        """The benchmark's network configuration, with fields overridden; unknown fields and
        bad values are a clear error."""
        known = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"{self.name}: unknown network settings {unknown}; "
                             f"known: {sorted(known)}")
        return self.check_config(self.Config(**overrides))

    def check_config(self, config: NetworkConfig) -> NetworkConfig:
        """Validates a configuration (positive sizes, known conventions, ...); returns it."""
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name}: expected a {self.Config.__name__}, got "
                            f"{type(config).__name__}")
        return config

    @abc.abstractmethod
    def tiny_config(self) -> NetworkConfig:
        """The smallest network that still has every kind of layer (for tests)."""

    @abc.abstractmethod
    def input_spec(self, config: NetworkConfig) -> InputSpec:
        """What the networks of ``config`` take as input."""

    @abc.abstractmethod
    def build(self, arch: "Arch | str", config: NetworkConfig) -> nn.Module:
        """The Flax network of ``arch`` (honouring :mod:`zcjax.contract`)."""

    def example_batch(self, config: NetworkConfig, size: int = 8, seed: int = 0) -> Any:
        """A small real batch the networks of ``config`` take (tests, demos, quickstart).

        Images: the bundled CIFAR-10 images when they fit the input shape, else standard-normal
        images of that shape; labels in ``0..num_classes-1``. Spaces with other inputs
        override it.
        """
        from zcjax import data

        spec = self.input_spec(config)
        if spec.kind != "images":
            raise NotImplementedError(f"{self.name}: no example batch for {spec.kind} inputs")
        if spec.shape == (32, 32, 3) and config.num_classes == 10:
            return data.default_batch(size, seed=seed)
        return data.gaussian_batch(size, spec.shape, seed=seed, num_classes=config.num_classes)

    def num_classes(self, dataset: str) -> int:
        """The classifier outputs a network needs for ``dataset`` (its ``num_classes``)."""
        from zcjax import data

        return data.NUM_CLASSES[data.canonical_dataset(dataset)]

    def scoring_batch(self, config: NetworkConfig, *, dataset: str = "cifar10",
                      data_dir: str | None = None, split: str = "train", size: int = 64,
                      seed: int = 0) -> Any:
        """The batch proxies score on: the bundled CIFAR-10 images for ``cifar10`` without
        ``data_dir``, else drawn from the user's copy of ``dataset`` under ``data_dir``
        (CIFAR-10 / CIFAR-100 python pickles, NAS-Bench-201's ImageNet16-120), normalised as
        the zero-cost references do. Spaces with other inputs override it.

        Raises:
          FileNotFoundError: naming the file expected under ``data_dir``.
          ValueError: an unknown data set, a bad split, size or seed.
        """
        from zcjax import data

        dataset = data.canonical_dataset(dataset)
        if dataset == "cifar10" and data_dir is None:
            return data.default_batch(size, split=split, seed=seed)
        if data_dir is None:
            raise FileNotFoundError(f"{dataset} is not bundled: give the folder that holds it")
        if dataset == "ImageNet16-120":
            images, labels = data.load_imagenet16(data_dir, 120, split=split)
        else:
            images, labels = data.load_cifar(data_dir, dataset, split=split)
        mean, std = data.normalization(dataset)
        return data.batch_from_arrays(images, labels, size, seed, mean, std)

    def scorer(self, config: NetworkConfig) -> "CompileOnceNetwork | None":
        """The space's compile-once network for ``config``, or ``None`` (see
        :class:`CompileOnceNetwork`)."""
        return None

    # -- cost without running a network ---------------------------------------------------

    def param_count(self, arch: "Arch | str", config: NetworkConfig) -> int | None:
        """Parameters of the network, counted without running it (``None``: not offered)."""
        return None

    def flops(self, arch: "Arch | str", config: NetworkConfig) -> int | None:
        """Multiply-accumulates of one forward pass of one example, without running it."""
        return None

    # -- ground truth ---------------------------------------------------------------------

    def benchmark(self) -> "Benchmark | None":
        """The ground truth shipped for this space (``None`` if there is none)."""
        return None

    def __repr__(self) -> str:
        return f"<search space {self.name}: {self.description}>"


class CompileOnceNetwork(abc.ABC):
    """A network with the architecture as data: one compiled program for every architecture.

    The engine routes the proxies listed in :attr:`exact_proxies` (scores tested equal to the
    static network's) and preferred by :attr:`preferred_proxies` to it; every other proxy runs
    on the static network, eagerly.
    """

    #: Proxies whose scores on this network are tested equal to the static network's.
    exact_proxies: frozenset[str] = frozenset()
    #: The exact proxies that are also faster here than eagerly on the static network.
    preferred_proxies: frozenset[str] = frozenset()

    @abc.abstractmethod
    def module(self) -> nn.Module:
        """The Flax module (its ``apply`` is the proxies' ``apply_fn``)."""

    @abc.abstractmethod
    def init_params(self, key, input_shape: tuple[int, ...]) -> Any:
        """Parameters equal, layer by layer, to the static network's for the same key."""

    @abc.abstractmethod
    def arch_data(self, arch: "Arch | str") -> np.ndarray:
        """The architecture as the array the compiled program reads."""

    @abc.abstractmethod
    def variables_for(self, params: Any, data: Any) -> Mapping[str, Any]:
        """Variables that make the module compute the architecture whose
        :meth:`arch_data` is ``data`` (possibly traced)."""

    # -- what one-shot training needs (zcjax.oneshot); optional for scoring-only spaces ------

    def arch_choices(self) -> tuple[int, ...] | None:
        """Values each entry of :meth:`arch_data` takes, if the architectures are exactly every
        combination of independent choices (entry ``i`` in ``0..choices[i]-1``); else ``None``.

        One-shot samplers draw such architectures as independent integers (and fair sampling
        needs it); spaces with constraints between entries return ``None`` and are sampled
        from :meth:`SearchSpace.enumerate`.
        """
        return None

    def presence(self, params: Any, arch_data: Any) -> Any:
        """A tree like ``params`` of float32 scalars, 1 where the architecture ``arch_data``
        (possibly traced) uses the parameter and 0 where it does not (traceable)."""
        raise NotImplementedError(f"{type(self).__name__} does not say which parameters an "
                                  "architecture uses (presence), which one-shot training needs")

    def train_apply(self, variables: Mapping[str, Any], inputs: Any, *,
                    dropout_rate: float = 0.0, key: Any = None) -> Any:
        """Logits in training mode: the module's output with dropout at ``dropout_rate`` drawn
        from ``key``, where the space's reference supernet has dropout. Batch norm normalises
        with the batch's statistics, as always in zcjax. Spaces without dropout refuse a
        non-zero rate."""
        if dropout_rate:
            raise NotImplementedError(f"{type(self).__name__} has no dropout; train it with "
                                      "dropout_rate=0")
        return self.module().apply(variables, inputs)


class Benchmark(abc.ABC):
    """Ground truth of a space, looked up by architecture string (never by position).

    Class attributes:
      space: the space's name.
      datasets: the data sets it has numbers for (canonical spelling, first = default).
      metrics: the quantities, e.g. ``("test_accuracy",)`` (first = default).
      higher_is_better: per metric (accuracies: True; perplexities, errors: False).
      source: where the numbers come from (paper, file; see ``zcjax/resources/PROVENANCE.md``).
    """

    space: ClassVar[str]
    datasets: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[Mapping[str, bool]] = {}
    source: ClassVar[str]

    @abc.abstractmethod
    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        """Every architecture string with ground truth, in the benchmark's own order."""

    @abc.abstractmethod
    def lookup(self, archs: Iterable[str], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        """float64 values of ``metric`` on ``dataset`` for ``archs`` (NaN where the benchmark
        has no value; a string that is not an architecture of the space is an error)."""

    def check(self, metric: str | None, dataset: str | None) -> tuple[str, str]:
        """``(metric, dataset)`` with defaults filled in; a clear error for unknown ones."""
        metric = self.metrics[0] if metric is None else metric
        dataset = self.datasets[0] if dataset is None else dataset
        if metric not in self.metrics:
            raise ValueError(f"{self.space} ground truth has no {validation.cap(metric)!r}; "
                             f"it has {', '.join(self.metrics)}")
        if dataset not in self.datasets:
            raise ValueError(f"{self.space} ground truth has no data set "
                             f"{validation.cap(dataset)!r}; it has {', '.join(self.datasets)}")
        return metric, dataset

    def is_higher_better(self, metric: str | None = None) -> bool:
        return bool(self.higher_is_better.get(self.check(metric, None)[0], True))


# -- the registry ----------------------------------------------------------------------------

_SPACES: dict[str, SearchSpace] = {}
_LOADERS: dict[str, Callable[[], None]] = {}


def register(space: SearchSpace) -> SearchSpace:
    """Adds a space to the registry (each space's ``__init__`` calls it once)."""
    if space.name in _SPACES and _SPACES[space.name] is not space:
        raise ValueError(f"search space {space.name!r} registered twice")
    _SPACES[space.name] = space
    return space


def declare(name: str, package: str) -> None:
    """Names a space whose package (``zcjax.spaces.<package>``) is imported on first use,
    which keeps ``import zcjax`` light. A package that is not installed is not declared."""
    module = f"zcjax.spaces.{package}"
    if importlib.util.find_spec(module) is not None:
        _LOADERS[name] = lambda: importlib.import_module(module)


def get(name: "str | SearchSpace") -> SearchSpace:
    """The registered space called ``name``."""
    if isinstance(name, SearchSpace):
        return name
    if name not in _SPACES and name in _LOADERS:
        _LOADERS[name]()
    try:
        return _SPACES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown search space {validation.cap(repr(name))}; known: "
                         f"{', '.join(names())}") from None


def names() -> list[str]:
    """Every known space's name."""
    return sorted(set(_SPACES) | set(_LOADERS))
