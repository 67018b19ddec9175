"""NAS-Bench-101 as a :class:`~zcjax.spaces.base.SearchSpace` (the object the engine uses)."""

from __future__ import annotations

import dataclasses
from typing import Any

from zcjax import validation
from zcjax.spaces import base
from zcjax.spaces.nb101 import cost, genotype, isomorphism, network
from zcjax.spaces.nb101.genotype import NB101Cell

#: The epsilon reference's constant pair for NAS-Bench-101 (``egracheva/epsinas``,
#: ``NAS-Bench-101/Reproduce.ipynb``: ``weights = [1e-4, 10]``), the value of
#: ``zcjax.proxies.epsilon.EPSILON_WEIGHTS["nb101"]`` (a space does not import proxies; the
#: tests check that the two agree).
EPSILON_WEIGHTS = (1e-4, 10.0)


@dataclasses.dataclass(frozen=True)
class NB101Config(base.NetworkConfig):
    """The NAS-Bench-101 network (``nasbench/lib/config.py``).

    Attributes:
      num_classes: classifier outputs (10, CIFAR-10).
      stem_channels: channels of the stem and the first stack (128).
      stacks: stacks of cells, separated by 2x2 max pools that double the channels (3).
      cells_per_stack: cells per stack (3).
    """

    stem_channels: int = 128
    stacks: int = 3
    cells_per_stack: int = 3


class NB101Space(base.SearchSpace):
    """NAS-Bench-101 (Ying et al., ICML 2019): cells of at most 7 vertices and 9 edges.

    Architectures are :class:`~zcjax.spaces.nb101.genotype.NB101Cell` objects or their strings
    (rows of the adjacency matrix, then the labels; see :mod:`zcjax.spaces.nb101.genotype`).
    The canonical form is the benchmark's graph hash.
    """

    name = "nb101"
    description = ("NAS-Bench-101 (Ying et al., ICML 2019): a DAG of up to 7 vertices and 9 "
                   "edges, ops conv3x3 / conv1x1 / maxpool3x3, 423,624 cells")
    Config = NB101Config
    proxy_options = {"epsilon": {"weights": EPSILON_WEIGHTS},
                     "epsilon_f64": {"weights": EPSILON_WEIGHTS}}
    unsupported_proxies = {
        "croze": "its reference (HyeonjeongHa/CRoZe, zero_cost_methods/pruners/p_utils.py "
                 "get_layer_metric_array_adv_feats) defines stage features for NAS-Bench-201 "
                 "and DARTS networks only; use croze_paper (per-layer features)",
    }

    nan_proxies = {
        "epsilon": "float32, as the reference: the w = 1e-4 forward of a deep cell falls to "
                   "subnormal values, which XLA flushes to zero, so the output is constant and "
                   "the score NaN where PyTorch (keeping subnormals) still scores it; "
                   "epsilon_f64 scores it (1 of the first 6 benchmark cells: PyTorch float32 "
                   "0.7929, float64 0.7929, zcjax epsilon_f64 0.7929)",
    }

    @property
    def arch_type(self) -> type:
        return NB101Cell

    def parse(self, text: str) -> NB101Cell:
        return NB101Cell.from_string(text)

    def format(self, arch: Any) -> str:
        return self.as_arch(arch).to_string()

    def canonical(self, arch: Any) -> str:
        """The benchmark's graph hash (:mod:`zcjax.spaces.nb101.isomorphism`)."""
        return isomorphism.graph_hash(self.as_arch(arch))

    def sample(self, n: int, seed: int = 0) -> list[NB101Cell]:
        """``n`` cells drawn as the benchmark's random search draws them (with replacement;
        :func:`zcjax.spaces.nb101.genotype.sample`)."""
        return genotype.sample(n, seed)

    def check_config(self, config: NB101Config) -> NB101Config:
        super().check_config(config)
        for field in ("stem_channels", "stacks", "cells_per_stack", "num_classes"):
            validation.check_int(getattr(config, field), field, 1)
        return config

    def tiny_config(self) -> NB101Config:
        # Two stacks keep the down-sampling max pool; 8 channels still give each of up to
        # five vertices feeding the output a channel.
        return NB101Config(stem_channels=8, stacks=2, cells_per_stack=1)

    def input_spec(self, config: NB101Config) -> base.InputSpec:
        return base.InputSpec("images", (32, 32, 3), "float32")

    def build(self, arch: Any, config: NB101Config) -> network.NB101Network:
        return network.build(self.as_arch(arch), **self._sizes(config))

    def param_count(self, arch: Any, config: NB101Config) -> int:
        return cost.param_count(self.as_arch(arch), **self._sizes(config))

    def flops(self, arch: Any, config: NB101Config) -> int:
        return cost.flops(self.as_arch(arch), **self._sizes(config),
                          image_size=self.input_spec(config).shape[0])

    def benchmark(self) -> base.Benchmark:
        from zcjax.benchmarks.nb101 import BENCHMARK

        return BENCHMARK

    @staticmethod
    def _sizes(config: NB101Config) -> dict[str, int]:
        return {"stem_channels": config.stem_channels, "stacks": config.stacks,
                "cells_per_stack": config.cells_per_stack, "num_classes": config.num_classes}


SPACE = base.register(NB101Space())
