r"""Scores zero-cost proxies over the architectures of a search space into the score store.

Examples (from the repository root)::

    # 100 random NB201 cells, every proxy that applies, seeds 0..2, the benchmark's network
    python -m experiments.score --archs=sample:100 --seeds=0-2

    # all 500 NAS-Bench-101 cells with ground truth, four proxies
    python -m experiments.score --space=nb101 --archs=all --proxies=synflow,snip,nwot,epsilon

    # one cell per isomorphism class (6,466), three proxies, on CIFAR-100 read from disk
    python -m experiments.score --archs=classes --proxies=synflow,nwot,jacov \
        --dataset=cifar100 --data_dir=/data

    # the whole NB201 space with a small network
    python -m experiments.score --archs=all --network=channels=8,cells_per_stage=1

Architectures (``--archs``, :mod:`zcjax.spaces.selection`): ``all`` (the architectures with
ground truth), ``classes``, ``sample:N``, ``sample_classes:N``, ``space_sample:N``,
``range:A-B``, ``indices:I,J,...`` or ``file:PATH``.

Every (architecture, seed, proxy) lands in the store (default
``<workspace>/results/scores.sqlite``) keyed by the space, the network configuration and the
batch, chunk by chunk: a rerun of the same command skips what is stored, and an interrupted run
resumes. The store is exported to CSV beside it (``scores.csv``).

Compilation (``--compile``, :mod:`zcjax.sweep.engine`): by default the proxies the space's
compile-once network scores exactly and fast (on NB201, every proxy but grasp, params, flops
and the MeCo and CRoZe variants) share one compiled program for every architecture; the others
run eagerly, which compiles nothing per architecture. That program is compiled before the first
architecture is scored, as a phase of the progress display (``compiling the nb201 program for
... done in ...``); it takes minutes on a CPU at the benchmark's network size and is cached
(``--compilation_cache``, under ``<workspace>/cache/jax``) for later runs. Progress lines come
at most once a second, after each chunk of ``--chunk_size`` tasks; their rate and ETA count
scoring time only, not the compilation.

Several hosts (JAX's multi-process runtime): each process scores its share of the architectures
into its own file, ``scores.<process_index>.sqlite`` by default; merge them afterwards with
``python -m zcjax.sweep.store_cli merge``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Sequence

from absl import app, flags

from experiments import common

for _name in common.define("workspace", "store", "space", "dataset", "batch", "proxies",
                           "seeds", "compile", "compilation_cache", "archs"):
    flags.declare_key_flag(_name)
flags.DEFINE_enum("strategy", "auto", ["auto", "vmap", "map", "loop"],
                  "How the seeds of one architecture run (see zcjax.score); scores do not "
                  "depend on it.")
flags.DEFINE_integer("chunk_size", None,
                     "(architecture, seed) tasks per store write (default: 4 architectures).")
flags.DEFINE_bool("export_csv", True, "Export the store to CSV beside it after scoring.")

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class ScoreRun:
    """What :func:`run` did."""

    summary: object  # zcjax.sweep.SweepSummary
    store_path: pathlib.Path
    csv_path: pathlib.Path | None
    config_hash: str
    batch_hash: str
    num_archs: int
    proxies: tuple[str, ...]
    seeds: tuple[int, ...]
    seconds: float


def run(archs: Sequence[str], proxies: Sequence[str], seeds: Sequence[int],
        setting: common.Setting, store_path: "str | pathlib.Path", *, strategy: str = "auto",
        compile: str = "auto", chunk_size: int | None = None, export_csv: bool = True,
        progress: bool = True) -> ScoreRun:
    """Scores ``archs x seeds x proxies`` into the store (resumable); exports it to CSV.

    Args:
      archs: architecture strings of ``setting.space`` (NB201 also takes indices).
      proxies: registered proxy names.
      seeds: initialisation seeds.
      setting: space, network and batch.
      strategy, compile: how the engine runs seeds and networks (same scores).
      store_path: the SQLite store (created if missing).
      export_csv: write ``<store>.csv`` (every row of the store) afterwards.
    """
    from zcjax.sweep.engine import batch_hash, sweep
    from zcjax.sweep.store import ResultStore

    start = time.perf_counter()
    if not archs:
        common.fail("no architectures to score")
    config = setting.config(proxies, strategy=strategy, compile=compile)
    batch = setting.batch()
    store_path = pathlib.Path(store_path)
    with ResultStore(store_path) as store:
        store.note_setting("config", config.hash(), {"space": config.space,
                                                     **config.network.fields()})
        store.note_setting("batch", batch_hash(batch), setting.batch_note())
        summary = sweep(list(archs), [int(s) for s in seeds], batch, config, store,
                        chunk_size=chunk_size, progress=progress)
        csv_path = None
        if export_csv:
            csv_path = store_path.with_suffix(".csv")
            store.export_csv(csv_path)
    return ScoreRun(summary=summary, store_path=store_path, csv_path=csv_path,
                    config_hash=config.hash(), batch_hash=batch_hash(batch),
                    num_archs=len(set(archs)), proxies=tuple(config.proxies),
                    seeds=tuple(int(s) for s in seeds), seconds=time.perf_counter() - start)


def select(setting: common.Setting, spec: str, seed: int) -> list[str]:
    """The architectures ``--archs`` names (a clear error for a bad spec)."""
    from zcjax.spaces import selection

    try:
        return selection.select(setting.search_space, spec, seed)
    except ValueError as e:
        common.fail(str(e))


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def body():
        from zcjax import workspace

        setting = common.Setting.from_flags()
        archs = select(setting, FLAGS.archs, FLAGS.sample_seed)
        proxies = common.resolve_proxies(FLAGS.proxies, setting.space)
        seeds = common.parse_int_list(FLAGS.seeds, "seed")
        if FLAGS.compilation_cache:
            workspace.enable_compilation_cache(FLAGS.workspace)
        path = common.store_path(FLAGS.workspace, FLAGS.store)
        import jax

        if jax.process_count() > 1:
            path = path.with_name(f"{path.stem}.{jax.process_index()}{path.suffix}")
        common.print_block(
            f"scoring {len(archs)} architectures x {len(seeds)} seeds x {len(proxies)} proxies "
            f"({', '.join(proxies)})",
            f"setting: {setting.describe()}",
            f"store: {path}")
        result = run(archs, proxies, seeds, setting, path, strategy=FLAGS.strategy,
                     compile=FLAGS.compile, chunk_size=FLAGS.chunk_size,
                     export_csv=FLAGS.export_csv)
        common.print_block(
            f"{result.summary}",
            f"config_hash={result.config_hash} batch_hash={result.batch_hash}",
            f"store: {result.store_path}" + (f"\nCSV:   {result.csv_path}"
                                               if result.csv_path else ""),
            f"total {result.seconds:.1f} s")
        return result

    common.guarded(body)


if __name__ == "__main__":
    app.run(main)
