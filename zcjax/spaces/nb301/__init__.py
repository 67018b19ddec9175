"""The DARTS search space as NAS-Bench-301 trained it (Siems et al., 2020).

``zcjax.spaces.get("nb301")`` is :data:`SPACE`, the protocol object the engine uses.
"""

from zcjax.spaces.nb301.genotype import (
    CONCAT,
    DARTS_V1,
    DARTS_V2,
    OPS,
    DartsGenotype,
    as_genotype,
    sample,
)
from zcjax.spaces.nb301.ops import CONVENTIONS, DilConv, FactorizedReduce, OpConvention, SepConv
from zcjax.spaces.nb301.network import Cell, NB301Network, build, init, stage_layout
from zcjax.spaces.nb301.cost import flops, param_count
from zcjax.spaces.nb301.space import SPACE, NB301Config, NB301Space
