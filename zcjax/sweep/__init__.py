"""Crash-safe, resumable sweeps: result store, chunked runner, progress.

* :class:`ResultStore` — SQLite (WAL) store of scores keyed by
  ``(space, arch, proxy, config_hash, seed, batch_hash)``.
* :func:`run_resumable` — compute missing :class:`Task` s chunk by chunk,
  writing each chunk atomically; rerun after any crash to resume.
* :class:`Progress` — log-friendly items/s + ETA reporter.
"""

from zcjax.sweep.progress import Progress, format_duration, format_rate
from zcjax.sweep.runner import SweepInterrupted, SweepSummary, Task, make_tasks, run_resumable
from zcjax.sweep.store import (
    SCHEMA_VERSION,
    ConflictError,
    MergeResult,
    Record,
    ResultStore,
    SchemaVersionError,
    StoreError,
    array_hash,
    config_hash,
)

__all__ = [
    "SCHEMA_VERSION",
    "ConflictError",
    "MergeResult",
    "Progress",
    "Record",
    "ResultStore",
    "SchemaVersionError",
    "StoreError",
    "SweepInterrupted",
    "SweepSummary",
    "Task",
    "array_hash",
    "config_hash",
    "format_duration",
    "format_rate",
    "make_tasks",
    "run_resumable",
]
