"""The NAS-Bench-101 search space (Ying et al., ICML 2019).

``zcjax.spaces.get("nb101")`` is :data:`SPACE`, the protocol object the engine uses.

- :mod:`~zcjax.spaces.nb101.genotype`: :class:`NB101Cell` (validation, pruning, the
  architecture string, NASLib's tuple) and the benchmark's random sampler;
- :mod:`~zcjax.spaces.nb101.isomorphism`: the benchmark's graph hash (the canonical form);
- :mod:`~zcjax.spaces.nb101.network`: the Flax network of zero-cost-nas / the original;
- :mod:`~zcjax.spaces.nb101.cost`: parameters and FLOPs without tracing;
- :mod:`~zcjax.spaces.nb101.space`: the :class:`~zcjax.spaces.base.SearchSpace`.
"""

from zcjax.spaces.nb101.genotype import (MAX_EDGES, MAX_VERTICES, OPS, NB101Cell, as_cell,
                                         sample)
from zcjax.spaces.nb101.isomorphism import graph_hash
from zcjax.spaces.nb101.network import Cell, NB101Network, build, init, vertex_channels
from zcjax.spaces.nb101.cost import flops, param_count, param_count_traced
from zcjax.spaces.nb101.space import SPACE, NB101Config, NB101Space
