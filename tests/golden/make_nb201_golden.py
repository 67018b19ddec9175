"""Writes ``nb201_golden.json``: today's NB201 scores, pinned before the search-space redesign.

Run from the repository root (it overwrites the file; do so only when a score is meant to
change, and say why in the commit and in ``test_nb201_golden.REPINNED``)::

    JAX_PLATFORMS=cpu python tests/golden/make_nb201_golden.py            # every proxy
    JAX_PLATFORMS=cpu python tests/golden/make_nb201_golden.py meco,zen   # only these

Two routes are pinned on tiny networks (C=4, N=2, ``zero_cost``), the bundled CIFAR-10 batch of 8
(seed 0), three cells that together hold every operation:

- ``eager``: ``zcjax.score(..., jit=False)``, every registered proxy, seed 0 (what a sweep runs
  eagerly for proxies without a compile-once route, and a route without XLA fusion choices);
- ``engine``: ``compute_chunk`` with ``SweepConfig(compile="auto")``, every proxy, seeds 0 and 1
  (what ``experiments.score`` stores: the supernet for its proxies, eager for the rest).

XLA's heavier optimisations are off (as in the test suite's ``fast_compiles`` fixture): the
values are those of that mode, and the test runs in it too.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax

CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|skip_connect~2|",
)
NETWORK = dict(channels=4, cells_per_stage=2, num_classes=10, convention="zero_cost")
BATCH = dict(size=8, seed=0)
PATH = pathlib.Path(__file__).with_name("nb201_golden.json")


def eager_scores(proxies: list[str]) -> dict[str, dict[str, float]]:
    from zcjax import data, score
    from zcjax.spaces import nb201

    batch = data.default_batch(BATCH["size"], seed=BATCH["seed"])
    out = {}
    for cell in CELLS:
        result = score(nb201.build(cell, **NETWORK), batch, proxies, seeds=[0], jit=False)
        out[cell] = {p: float(result.scores[p][0]) for p in proxies}
    return out


def engine_scores(proxies: list[str]) -> dict[str, dict[str, float]]:
    from zcjax import data
    from zcjax.spaces.nb201 import NB201Config
    from zcjax.sweep.engine import SweepConfig, batch_hash, compute_chunk
    from zcjax.sweep.runner import make_tasks

    batch = data.default_batch(BATCH["size"], seed=BATCH["seed"])
    config = SweepConfig(proxies=tuple(proxies), compile="auto", network=NB201Config(**NETWORK))
    tasks = make_tasks("nb201", list(CELLS), [0, 1], config.proxies, config.hash(),
                       batch_hash(batch))
    out: dict[str, dict[str, float]] = {}
    for rec in compute_chunk(tasks, batch, config):
        out.setdefault(f"{rec.arch} seed={rec.seed}", {})[rec.proxy] = float(rec.value)
    return out


def main(argv: list[str]) -> None:
    from zcjax import proxies as proxies_lib

    jax.config.update("jax_disable_most_optimizations", True)
    if len(argv) > 1:  # rewrite only the named proxies' values, keep every other one
        names = [n for n in argv[1].split(",") if n]
        golden = json.loads(PATH.read_text())
        golden["proxies"] = sorted(set(golden["proxies"]) | set(names))
    else:
        names = proxies_lib.names()
        golden = {"network": NETWORK, "batch": BATCH, "proxies": names, "eager": {},
                  "engine": {}}
    for route, scores in (("eager", eager_scores(names)), ("engine", engine_scores(names))):
        for key, values in scores.items():
            golden[route].setdefault(key, {}).update(values)
    PATH.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {', '.join(names)} to {PATH}")


if __name__ == "__main__":
    main(sys.argv)
