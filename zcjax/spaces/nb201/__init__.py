"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020)."""

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
