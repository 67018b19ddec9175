"""Published rank correlations of zero-cost proxies, to print beside reproduced ones.

``SPEARMAN[space][proxy] = (value, source)``: Spearman's rho between the proxy and the
benchmark's accuracy as a paper reports it (CIFAR-10). Each paper's population, batch size and
accuracy column differ from a reproduction's (often every cell of the space against the mean
test accuracy; see each source), so the numbers are context, not targets to the third decimal.
"""

from __future__ import annotations

_ABDELFATTAH = "Abdelfattah et al., ICLR 2021 (Table 2: |rho| over all cells)"

SPEARMAN: dict[str, dict[str, tuple[float, str]]] = {
    "nb201": {
        "grad_norm": (0.59, _ABDELFATTAH),
        "snip": (0.60, _ABDELFATTAH),
        "grasp": (0.51, _ABDELFATTAH),
        "fisher": (0.36, _ABDELFATTAH),
        "synflow": (0.74, _ABDELFATTAH),
        "jacob_cov": (0.73, _ABDELFATTAH),
        "nwot": (0.79, "Mellor et al., ICML 2021 (approximate, from its figure)"),
        "zico": (0.80, "Li et al., ICLR 2023"),
        "meco": (0.89, "Jiang et al., NeurIPS 2023 (batch of 1)"),
        "epsilon": (0.87, "Gracheva 2021 (batch 256, float32: NaN cells dropped)"),
    },
    "nb101": {
        "grad_norm": (0.20, _ABDELFATTAH),
        "snip": (0.16, _ABDELFATTAH),
        "grasp": (0.45, _ABDELFATTAH),
        "fisher": (0.26, _ABDELFATTAH),
        "synflow": (0.37, _ABDELFATTAH),
        "jacob_cov": (0.38, _ABDELFATTAH),
        "epsilon": (0.62, "Gracheva 2021 (batch 256, weights 1e-4 and 10)"),
    },
}


def spearman(space: str, proxy: str) -> float | None:
    """The published Spearman's rho of ``proxy`` on ``space``, or ``None``."""
    entry = SPEARMAN.get(space, {}).get(proxy)
    return None if entry is None else entry[0]


def sources(space: str) -> list[str]:
    """The papers behind :data:`SPEARMAN` of ``space``, each once."""
    return list(dict.fromkeys(src for _, src in SPEARMAN.get(space, {}).values()))
