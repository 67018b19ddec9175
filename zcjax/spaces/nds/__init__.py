"""The NDS ResNet and ResNeXt-A design spaces (Radosavovic et al., ICCV 2019) on CIFAR-10.

``zcjax.spaces.get("nds_resnet")`` and ``zcjax.spaces.get("nds_resnext_a")`` are
:data:`RESNET_SPACE` and :data:`RESNEXT_A_SPACE`, the protocol objects the engine uses.
"""

from zcjax.spaces.nds.genotype import (
    DESIGN_SPACES,
    NUM_STAGES,
    RESNET,
    RESNEXT_A,
    STRIDES,
    BlockSpec,
    DesignSpace,
    NDSArch,
    get_design_space,
)
from zcjax.spaces.nds.network import NDSNetwork, build, init
from zcjax.spaces.nds.cost import flops, param_count, param_count_traced
from zcjax.spaces.nds.space import (
    RESNET_SPACE,
    RESNEXT_A_SPACE,
    NDSConfig,
    NDSResNetSpace,
    NDSResNeXtASpace,
    NDSSpace,
)

__all__ = ["BlockSpec", "DESIGN_SPACES", "DesignSpace", "NDSArch", "NDSConfig", "NDSNetwork",
           "NDSResNeXtASpace", "NDSResNetSpace", "NDSSpace", "NUM_STAGES", "RESNET",
           "RESNET_SPACE", "RESNEXT_A", "RESNEXT_A_SPACE", "STRIDES", "build", "flops",
           "get_design_space", "init", "param_count", "param_count_traced"]
