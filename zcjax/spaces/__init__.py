"""Search spaces: genotypes, validation, canonical forms, their Flax networks and ground truth.

Each space is a package under ``zcjax/spaces/<name>/`` that registers one
:class:`~zcjax.spaces.base.SearchSpace` (the protocol everything above ``spaces/`` uses);
:func:`get` returns it by name, importing its package on first use, and :func:`names` lists them.

=================  ======================================================================
name               space
=================  ======================================================================
``nb201``          NAS-Bench-201 (Dong & Yang, ICLR 2020)
``nb101``          NAS-Bench-101 (Ying et al., ICML 2019)
``nb301``          the DARTS space as NAS-Bench-301 trained it (Siems et al., 2020)
``nds_resnet``     NDS ResNet (Radosavovic et al., ICCV 2019)
``nds_resnext_a``  NDS ResNeXt-A (Radosavovic et al., ICCV 2019)
``nb_nlp``         NAS-Bench-NLP recurrent cells (Klyuchnikov et al., 2020)
=================  ======================================================================
"""

from __future__ import annotations

from zcjax.spaces.base import (Benchmark, CompileOnceNetwork, InputSpec, NetworkConfig,
                               SearchSpace, declare, get, names, register)

__all__ = ["Benchmark", "CompileOnceNetwork", "InputSpec", "NetworkConfig", "SearchSpace",
           "get", "names", "register"]

for _name, _package in (("nb201", "nb201"), ("nb101", "nb101"), ("nb301", "nb301"),
                        ("nds_resnet", "nds"), ("nds_resnext_a", "nds"), ("nb_nlp", "nb_nlp")):
    declare(_name, _package)
