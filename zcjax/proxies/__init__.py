"""Zero-cost proxies: pure functions ``proxy(apply_fn, variables, batch, key) -> scalar``.

Importing this package registers every proxy; :func:`get` and :func:`names` query the registry.
The conventions of each proxy (layers counted, BN, dtype, the reference's quirks) are tabulated
in ``docs/proxies.md``.
"""

from zcjax.proxies.base import ProxyInfo, REGISTRY, get, names, register
from zcjax.proxies.context import Context

# Each import registers its proxies (NAS-Bench-Suite-Zero's 13, then ZiCo, MeCo, epsilon, CRoZe).
from zcjax.proxies import (  # noqa: E402,F401  (isort: skip)
    grad_norm, snip, grasp, fisher, synflow, jacob_cov, plain, nwot, epe_nas, zen, l2_norm,
    params, flops, zico, meco, epsilon, croze,
)

#: The suite of the issue: NAS-Bench-Suite-Zero's 13 proxies, ZiCo, MeCo, epsilon and CRoZe.
SUITE = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "plain", "nwot",
         "epe_nas", "zen", "l2_norm", "params", "flops", "zico", "meco", "epsilon", "croze")
#: NAS-Bench-Suite-Zero's 13 proxies (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks).
SUITE_ZERO = SUITE[:13]
