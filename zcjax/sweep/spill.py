"""Side files for computed scores that the store could not take (locked, read-only, failing).

When a chunk has been computed but cannot be written to the store (another process holds the
lock past the timeout and a retry, or the write fails otherwise), the runner writes its records
here instead of dropping them, and the next run merges them into the store first
(:meth:`ResultStore.merge_spills`).

Layout: ``<store path>-spill/<time>-<pid>-<n>.jsonl``, one JSON object per record with every
column and the record's checksum. What survives a crash: a spill file is written to a temporary
name, ``fsync``\\ ed and renamed into place, so it is either complete or absent; it is deleted
only after its records are committed to the store.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["SpillError", "read_spill", "spill_dir", "spill_files", "write_spill"]

_FIELDS = ("space", "arch", "proxy", "proxy_version", "config_hash", "seed", "batch_hash",
           "value", "reason", "seconds", "created", "checksum")
_counter = 0


class SpillError(ValueError):
    """A spill file that cannot be read back as it was written (names the file)."""


def spill_dir(store_path: "str | os.PathLike[str]") -> str:
    """The folder that holds a store's spill files."""
    return os.fspath(store_path) + "-spill"


def spill_files(store_path: "str | os.PathLike[str]") -> list[str]:
    """The store's pending spill files, oldest first (empty if none)."""
    folder = spill_dir(store_path)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".jsonl"))
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in names]


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_spill(store_path: "str | os.PathLike[str]", rows: Iterable[Sequence[Any]]) -> str:
    """Writes store rows (tuples in the store's column order, checksum last); returns the path.

    The file appears complete or not at all (temporary name, ``fsync``, rename).
    """
    global _counter
    folder = spill_dir(store_path)
    os.makedirs(folder, exist_ok=True)
    _counter += 1
    name = f"{time.time():.6f}-{os.getpid()}-{_counter}.jsonl"
    final = os.path.join(folder, name)
    tmp = os.path.join(folder, "." + name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            if len(row) != len(_FIELDS):
                raise ValueError(f"spill rows need {len(_FIELDS)} columns, got {len(row)}")
            f.write(json.dumps(dict(zip(_FIELDS, row)), allow_nan=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def read_spill(path: str) -> list[tuple]:
    """The rows of one spill file, in the store's column order (checksum last).

    Raises:
      SpillError: a line that is not a complete record (the file is left in place).
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
                row = tuple(obj[k] for k in _FIELDS)
            except (ValueError, KeyError, TypeError) as e:
                raise SpillError(f"{path}, line {number}: not a spilled record ({e}); the file "
                                 "is kept, fix or remove it to continue") from None
            value = row[7]
            if value is not None and not isinstance(value, (int, float)) or (
                    isinstance(value, float) and math.isnan(value)):
                raise SpillError(f"{path}, line {number}: bad value {value!r}")
            rows.append(row)
    return rows
