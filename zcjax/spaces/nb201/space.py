"""NAS-Bench-201 as a :class:`~zcjax.spaces.base.SearchSpace` (the object the engine uses)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from zcjax import validation
from zcjax.spaces import base, layers
from zcjax.spaces.nb201 import cost, isomorphism, network, supernet
from zcjax.spaces.nb201.genotype import EDGES, NUM_CELLS, OPS, Genotype, all_genotypes, as_genotype


@dataclasses.dataclass(frozen=True)
class NB201Config(base.NetworkConfig):
    """The NAS-Bench-201 network: ``C`` channels in the first of three stages of ``N`` cells.

    Attributes:
      num_classes: 10 (CIFAR-10), 100 (CIFAR-100) or 120 (ImageNet16-120, 16x16 images).
      channels: ``C`` (16 in the benchmark).
      cells_per_stage: ``N`` (5 in the benchmark).
      convention: the layer convention (:data:`zcjax.spaces.layers.CONVENTIONS`); ``zero_cost``
        by default, the one behind the published zero-cost correlations.
    """

    channels: int = 16
    cells_per_stage: int = 5
    convention: str = "zero_cost"


class NB201Scorer(base.CompileOnceNetwork):
    """The NB201 supernet (:mod:`zcjax.spaces.nb201.supernet`) behind the protocol."""

    exact_proxies = supernet.EXACT_PROXIES
    preferred_proxies = supernet.PREFERRED_PROXIES

    def __init__(self, config: NB201Config):
        self.config = config
        self._module = supernet.build_supernet(
            channels=config.channels, cells_per_stage=config.cells_per_stage,
            num_classes=config.num_classes, convention=config.convention)

    def module(self) -> nn.Module:
        return self._module

    def init_params(self, key, input_shape: tuple[int, ...]) -> Any:
        return supernet.init_params(self._module, key, tuple(input_shape))

    def variables_for(self, params: Any, data: Any) -> Mapping[str, Any]:
        return supernet.variables_for(params, data)

    def arch_data(self, arch: Any) -> np.ndarray:
        return supernet.genotype_array(arch)

    def arch_choices(self) -> tuple[int, ...]:
        return (len(OPS),) * len(EDGES)  # every edge takes any of the five operations

    def presence(self, params: Any, arch_data: Any) -> Any:
        return supernet.presence(params, jnp.asarray(arch_data, jnp.int32))

    def train_apply(self, variables: Mapping[str, Any], inputs: Any, *,
                    dropout_rate: float = 0.0, key: Any = None) -> Any:
        if not dropout_rate:
            return self._module.apply(variables, inputs)
        if key is None:
            raise ValueError("dropout_rate > 0 needs a key")
        return self._module.apply(variables, inputs, dropout_rate=dropout_rate,
                                  rngs={"dropout": key})


class NB201Space(base.SearchSpace):
    """NAS-Bench-201 (Dong & Yang, ICLR 2020): 15,625 cells of 6 edges, 5 operations each.

    Architectures are :class:`~zcjax.spaces.nb201.genotype.Genotype` objects, official cell
    strings, or (here only) official indices 0..15624.
    """

    name = "nb201"
    description = ("NAS-Bench-201 (Dong & Yang, ICLR 2020): a 4-node cell of 6 edges x 5 "
                   "operations, 15,625 cells")
    Config = NB201Config

    @property
    def arch_type(self) -> type:
        return Genotype

    def parse(self, text: str) -> Genotype:
        return Genotype.from_string(text)

    def format(self, arch: Any) -> str:
        return self.as_arch(arch).to_string()

    def as_arch(self, arch: Any) -> Genotype:
        if isinstance(arch, (Genotype, str)):
            return as_genotype(arch)
        return as_genotype(validation.check_index(arch, NUM_CELLS, "NAS-Bench-201 index"))

    def canonical(self, arch: Any) -> str:
        return isomorphism.canonical(self.as_arch(arch))

    def sample(self, n: int, seed: int = 0) -> list[Genotype]:
        """``n`` distinct cells drawn uniformly (seeded), in official index order."""
        n = validation.check_int(n, "n", 1, NUM_CELLS)
        rng = np.random.default_rng(validation.check_seed(seed))
        return [all_genotypes()[int(i)]
                for i in sorted(rng.choice(NUM_CELLS, size=n, replace=False))]

    def enumerate(self) -> tuple[Genotype, ...]:
        return all_genotypes()

    def check_config(self, config: NB201Config) -> NB201Config:
        super().check_config(config)
        for field in ("channels", "cells_per_stage", "num_classes"):
            validation.check_int(getattr(config, field), field, 1)
        layers.get_convention(config.convention)
        return config

    def tiny_config(self) -> NB201Config:
        return NB201Config(channels=4, cells_per_stage=1)

    def input_spec(self, config: NB201Config) -> base.InputSpec:
        size = 16 if config.num_classes == 120 else 32  # ImageNet16-120, else CIFAR
        return base.InputSpec("images", (size, size, 3), "float32")

    def build(self, arch: Any, config: NB201Config) -> network.NB201Network:
        return network.build(self.as_arch(arch), channels=config.channels,
                             cells_per_stage=config.cells_per_stage,
                             num_classes=config.num_classes, convention=config.convention)

    def scorer(self, config: NB201Config) -> NB201Scorer:
        return NB201Scorer(config)

    def param_count(self, arch: Any, config: NB201Config) -> int:
        return cost.param_count(self.as_arch(arch), channels=config.channels,
                                cells_per_stage=config.cells_per_stage,
                                num_classes=config.num_classes, convention=config.convention)

    def flops(self, arch: Any, config: NB201Config) -> int:
        return cost.flops(self.as_arch(arch), channels=config.channels,
                          cells_per_stage=config.cells_per_stage,
                          num_classes=config.num_classes,
                          image_size=self.input_spec(config).shape[0])

    def benchmark(self) -> base.Benchmark:
        from zcjax.benchmarks.nb201 import BENCHMARK

        return BENCHMARK


SPACE = base.register(NB201Space())

