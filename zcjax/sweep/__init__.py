"""Crash-safe, resumable sweeps: result store, chunked runner, progress.

* :class:`ResultStore` — SQLite store of checksummed scores keyed by
  ``(space, arch, proxy, proxy_version, config_hash, seed, batch_hash)``;
  ``python -m zcjax.sweep.store_cli`` backs it up and checks it.
* :func:`run_resumable` — compute missing :class:`Task` s chunk by chunk,
  writing each chunk atomically; rerun after any crash to resume.
* :class:`Progress` — log-friendly items/s + ETA reporter.
"""

from zcjax.sweep.progress import Progress, format_duration, format_rate
from zcjax.sweep.runner import (
    ScoresSpilledError,
    SweepInterrupted,
    SweepSummary,
    Task,
    make_tasks,
    run_resumable,
)
from zcjax.sweep.store import (
    SCHEMA_VERSION,
    ConflictError,
    DamagedRowError,
    IntegrityReport,
    MergeResult,
    Record,
    ResultStore,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    array_hash,
    config_hash,
)

__all__ = [
    "SCHEMA_VERSION",
    "ConflictError",
    "DamagedRowError",
    "IntegrityReport",
    "MergeResult",
    "Progress",
    "Record",
    "ResultStore",
    "SchemaVersionError",
    "ScoresSpilledError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreReadOnlyError",
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
