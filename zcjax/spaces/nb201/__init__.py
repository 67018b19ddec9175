"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020).

``zcjax.spaces.get("nb201")`` is :data:`SPACE`, the protocol object the engine uses.
"""

from zcjax.spaces.nb201.genotype import (
    EDGES,
    NUM_CELLS,
    OPS,
    Genotype,
    all_genotypes,
    as_genotype,
    from_index,
    index_of,
    iter_genotypes,
)
from zcjax.spaces.nb201.network import Cell, NB201Network, ResidualReduction, build, init
from zcjax.spaces.nb201.cost import flops, param_count, param_count_traced
from zcjax.spaces.nb201.isomorphism import canonical, class_representatives, isomorphism_class
from zcjax.spaces.nb201.space import SPACE, NB201Config, NB201Space
