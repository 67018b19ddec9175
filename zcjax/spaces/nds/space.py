"""NDS ResNet and ResNeXt-A as :class:`~zcjax.spaces.base.SearchSpace` objects.

Two registered spaces share this code: ``nds_resnet`` and ``nds_resnext_a``
(:data:`RESNET_SPACE`, :data:`RESNEXT_A_SPACE`). Architectures are
:class:`~zcjax.spaces.nds.genotype.NDSArch` objects or their strings.

Ground truth: the user's copy of the published sweep file, ``<workspace>/data/nds/ResNet.json``
or ``<workspace>/data/nds/ResNeXt-A.json`` (see WORKSPACE.md); :meth:`NDSSpace.benchmark`
returns ``None`` when it is not there (no NDS data ships with zcjax).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any, ClassVar

from zcjax import validation, workspace
from zcjax.spaces import base
from zcjax.spaces.nds import cost, network
from zcjax.spaces.nds.genotype import RESNET, RESNEXT_A, DesignSpace, NDSArch


@dataclasses.dataclass(frozen=True)
class NDSConfig(base.NetworkConfig):
    """The NDS CIFAR-10 network; the defaults build exactly the architecture's network.

    Attributes:
      num_classes: 10 (CIFAR-10, the data NDS trained on).
      weight_init: ``"pycls"`` (the reference's initialisation) or ``"torch"`` (PyTorch's
        defaults); see :mod:`zcjax.spaces.nds.network`.
      max_depth, max_width: if set, every stage depth / every width (stem included) is cut to
        at most this (:meth:`NDSArch.capped`): small networks for tests and quick looks, not
        the benchmark's networks.
    """

    weight_init: str = "pycls"
    max_depth: int | None = None
    max_width: int | None = None


class NDSSpace(base.SearchSpace):
    """One NDS design space (Radosavovic et al., ICCV 2019) on CIFAR-10."""

    Config = NDSConfig
    #: The design space (sampling grid and block type).
    design: ClassVar[DesignSpace]
    #: The published sweep file with this space's ground truth (in ``<workspace>/data/nds``).
    file_name: ClassVar[str]
    unsupported_proxies = {
        "croze": "CRoZe's reference compares features that its NAS-Bench-201 / DARTS models "
                 "return by stage; it defines none for pycls's AnyNet, so the NDS networks "
                 "declare no stages (croze_paper, per layer, applies)",
    }
    nan_proxies = {
        "epsilon": "its reference (epsinas) has no constants for NDS, so the NAS-Bench-201 pair "
                   "(1e-7, 1) applies; in float32, as in the reference, the w = 1e-7 pass of a "
                   "full-size NDS network underflows to a constant output (e.g. the published "
                   "ResNet d=12,12,12 w=24,24,40 and ResNeXt-A d=16,1,4 records): NaN. "
                   "epsilon_f64 is finite there",
    }

    # -- genotypes ------------------------------------------------------------------------

    @property
    def arch_type(self) -> type:
        return NDSArch

    def parse(self, text: str) -> NDSArch:
        arch = NDSArch.from_string(text)
        self._check_space(arch)
        return arch

    def as_arch(self, arch: Any) -> NDSArch:
        arch = super().as_arch(arch)
        self._check_space(arch)
        return arch

    def _check_space(self, arch: NDSArch) -> None:
        if arch.design_space != self.design.name:
            raise ValueError(f"{self.name}: {validation.cap(arch.to_string())!r} is a "
                             f"{arch.design_space} architecture, not {self.design.name}")

    def format(self, arch: Any) -> str:
        return self.as_arch(arch).to_string()

    def canonical(self, arch: Any) -> str:
        return self.as_arch(arch).canonical()

    def sample(self, n: int, seed: int = 0) -> list[NDSArch]:
        """``n`` distinct architectures, each stage's values uniform on the NDS grid."""
        return self.design.sample(n, seed)

    # -- networks -------------------------------------------------------------------------

    def check_config(self, config: NDSConfig) -> NDSConfig:
        super().check_config(config)
        validation.check_int(config.num_classes, "num_classes", 1)
        network.initializers(config.weight_init)
        for field in ("max_depth", "max_width"):
            if getattr(config, field) is not None:
                validation.check_int(getattr(config, field), field, 1)
        return config

    def tiny_config(self) -> NDSConfig:
        """One block per stage, widths cut to 16 (the design spaces' smallest width, at which
        every ResNeXt-A bottleneck width is still divisible by its groups)."""
        return NDSConfig(max_depth=1, max_width=16)

    def input_spec(self, config: NDSConfig) -> base.InputSpec:
        return base.InputSpec("images", (32, 32, 3), "float32")

    def network_arch(self, arch: Any, config: NDSConfig) -> NDSArch:
        """The architecture the network of ``config`` builds (``arch`` cut to the caps)."""
        self.check_config(config)
        return self.as_arch(arch).capped(config.max_depth, config.max_width)

    def build(self, arch: Any, config: NDSConfig) -> network.NDSNetwork:
        return network.build(self.network_arch(arch, config), num_classes=config.num_classes,
                             weight_init=config.weight_init)

    def param_count(self, arch: Any, config: NDSConfig) -> int:
        return cost.param_count(self.network_arch(arch, config), num_classes=config.num_classes)

    def flops(self, arch: Any, config: NDSConfig) -> int:
        return cost.flops(self.network_arch(arch, config), num_classes=config.num_classes,
                          image_size=self.input_spec(config).shape[0])

    # -- ground truth ---------------------------------------------------------------------

    def benchmark_path(self) -> pathlib.Path:
        """Where the user's copy of the published file is expected."""
        return workspace.data_dir() / "nds" / self.file_name

    def benchmark(self) -> "base.Benchmark | None":
        """The NDS ground truth from the user's file, or ``None`` if it is not there."""
        path = self.benchmark_path()
        if not path.is_file():
            return None
        stat = path.stat()
        return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size, self.design.name)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int, design_space: str) -> base.Benchmark:
    """Reads a sweep file once per (path, modification time, size)."""
    from zcjax.benchmarks.nds import NDSBenchmark

    return NDSBenchmark.from_file(path, design_space)


class NDSResNetSpace(NDSSpace):
    name = "nds_resnet"
    description = ("NDS ResNet (Radosavovic et al., ICCV 2019): 3 stages of basic residual "
                   "blocks, depth and width per stage, CIFAR-10")
    design = RESNET
    file_name = "ResNet.json"


class NDSResNeXtASpace(NDSSpace):
    name = "nds_resnext_a"
    description = ("NDS ResNeXt-A (Radosavovic et al., ICCV 2019): 3 stages of bottleneck "
                   "blocks, depth, width, bottleneck ratio and groups per stage, CIFAR-10")
    design = RESNEXT_A
    file_name = "ResNeXt-A.json"


RESNET_SPACE = base.register(NDSResNetSpace())
RESNEXT_A_SPACE = base.register(NDSResNeXtASpace())
