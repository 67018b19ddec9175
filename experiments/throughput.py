r"""Sweep throughput: architectures per second and per hour on this machine, and the whole space.

Scores a fixed subset of a space's architectures with the sweep engine, exactly as
``experiments.score`` would (the same routes, the same batch), into an in-memory store, and
reports the one-time cost (compilation, the first architecture), the steady rate after it, and
the time the whole space would take at that rate::

    # on a GPU or TPU: the 13 NAS-Bench-Suite-Zero proxies, 4 seeds vmapped, 256 cells
    python -m experiments.throughput --archs=sample:256 --seeds=0-3 --proxies=suite_zero

    # on a CPU: a small subset
    python -m experiments.throughput --archs=sample:8 --proxies=grad_norm,snip,synflow

On accelerators the seeds of each architecture run as one ``vmap``-ped program
(``zcjax.scoring.resolve_strategy``); on CPU a loop over them. ``--json_out`` writes every
number with the backend, the device and the load average.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Sequence

from absl import app, flags

from experiments import common
from experiments import score as score_script
from zcjax import proxies as proxies_lib

for _name in common.define("workspace", "space", "dataset", "batch", "proxies", "seeds",
                           "compile", "compilation_cache", "archs", "json_out"):
    flags.declare_key_flag(_name)

FLAGS = flags.FLAGS

#: The 13 proxies of NAS-Bench-Suite-Zero (``--proxies=suite_zero``).
SUITE_ZERO = proxies_lib.SUITE_ZERO


@dataclasses.dataclass(frozen=True)
class Throughput:
    """What :func:`run` measured (seconds are wall-clock)."""

    space: str
    num_archs: int
    seeds: tuple[int, ...]
    proxies: tuple[str, ...]
    first_seconds: float  # the first architecture: compilation and one-time costs included
    steady_seconds: float  # the others
    space_size: int | None

    @property
    def archs_per_second(self) -> float:
        n = self.num_archs - 1
        return n / self.steady_seconds if n > 0 and self.steady_seconds > 0 else float("nan")

    @property
    def archs_per_hour(self) -> float:
        return 3600.0 * self.archs_per_second

    @property
    def whole_space_hours(self) -> float | None:
        if self.space_size is None:
            return None
        return (self.first_seconds + self.space_size / self.archs_per_second) / 3600.0


def run(archs: Sequence[str], proxies: Sequence[str], seeds: Sequence[int],
        setting: common.Setting, compile: str = "auto") -> Throughput:
    """Scores the first architecture (timed apart: one-time costs), then the rest."""
    from zcjax.spaces import selection
    from zcjax.sweep.engine import sweep
    from zcjax.sweep.store import ResultStore

    if len(archs) < 2:
        common.fail("throughput needs at least 2 architectures (the first pays one-time costs)")
    config = setting.config(proxies, compile=compile)
    batch = setting.batch()
    times = []
    with ResultStore(":memory:") as store:
        for part in (archs[:1], archs[1:]):
            start = time.perf_counter()
            sweep(part, seeds, batch, config, store, progress=False)
            times.append(time.perf_counter() - start)
    try:
        size = len(selection.pool(setting.search_space))
    except ValueError:
        size = None
    return Throughput(setting.space, len(archs), tuple(seeds), tuple(config.proxies), times[0],
                      times[1], size)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        import jax

        setting = common.Setting.from_flags()
        spec = FLAGS.proxies
        proxies = (list(SUITE_ZERO) if spec == "suite_zero"
                   else common.resolve_proxies(spec, setting.space))
        archs = score_script.select(setting, FLAGS.archs, FLAGS.sample_seed)
        seeds = common.parse_int_list(FLAGS.seeds, "seed")
        if FLAGS.compilation_cache:
            from zcjax import workspace

            workspace.enable_compilation_cache(FLAGS.workspace)
        result = run(archs, proxies, seeds, setting, FLAGS.compile)
        device = jax.devices()[0]
        lines = [
            f"{result.space}: {result.num_archs} architectures x {len(result.seeds)} seeds x "
            f"{len(result.proxies)} proxies on {device.platform} ({device.device_kind})",
            f"first architecture (compilation and one-time costs): {result.first_seconds:.1f} s",
            f"then {result.archs_per_second:.3g} architectures/s "
            f"({result.archs_per_hour:,.0f} per hour)",
        ]
        if result.whole_space_hours is not None:
            lines.append(f"the whole pool ({result.space_size:,} architectures) at this rate: "
                         f"{result.whole_space_hours:.2f} h")
        common.print_block(*lines)
        if FLAGS.json_out:
            record = dataclasses.asdict(result) | {
                "archs_per_second": result.archs_per_second,
                "whole_space_hours": result.whole_space_hours,
                "backend": jax.default_backend(), "device": device.device_kind,
                "load_average": os.getloadavg(), "batch_size": setting.batch_size}
            with open(FLAGS.json_out, "w") as f:
                json.dump(record, f, indent=1)
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
