"""Crash-safe result store for zero-cost-proxy sweeps.

A sweep scores many architectures x initialisation seeds x proxies. Every
score is one row of an embedded SQLite database (stdlib :mod:`sqlite3`, one
file in the workspace) keyed by::

    (space, arch, proxy, config_hash, seed, batch_hash)

with the score ``value`` (``NULL`` in the database, ``nan`` in Python, when
the proxy produced no finite score), a ``reason`` explaining a NaN, the
wall-clock ``seconds`` spent and the ``created`` UNIX timestamp of the write.

Durability
----------
The database runs in WAL journal mode. A chunk of records is written with
:meth:`ResultStore.put_many` in a single transaction, so after any crash a
chunk is either entirely present or entirely absent, and the file is never
left half-written.

``synchronous`` (constructor argument) chooses how hard a commit is pushed
to disk:

* ``"NORMAL"``: in WAL mode a commit ``write()``s the WAL frames and returns
  without ``fsync``. Those bytes live in the operating system's page cache,
  which belongs to the kernel, not to the process, so a process killed with
  ``SIGKILL`` (or crashing, or OOM-killed) loses **nothing** that was
  committed: the next open replays the WAL. Only an OS crash or power loss
  can drop the most recent commits (never corrupting the file: the database
  rolls back to an older consistent state, and a resumed sweep recomputes
  the lost chunks).
* ``"FULL"`` (default): additionally ``fsync``\\ s the WAL on every commit,
  so committed chunks also survive power loss / a hard VM reset (e.g. a
  pre-empted cloud machine). It costs one ``fsync`` per chunk; a chunk is by
  design seconds of accelerator work, so this overhead is negligible, which
  is why it is the default.

Both settings are safe against ``SIGKILL`` of the writing process.

WAL needs shared memory between the processes that open a file, so keep the
store on a local file system (not NFS / FUSE bucket mounts). For multi-host
sweeps let every process write its own file and combine them afterwards with
:meth:`ResultStore.merge_from`.

Concurrency
-----------
Several *processes* may open the same file (SQLite locks it; a writer waits
up to ``timeout`` seconds for another writer). A :class:`ResultStore` object
is **not** thread-safe: use it from the thread that created it (sqlite3
enforces this and raises otherwise), and open one store per thread if needed.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "ConflictError",
    "MergeResult",
    "Record",
    "ResultStore",
    "SchemaVersionError",
    "StoreError",
    "array_hash",
    "config_hash",
]

#: Version of the on-disk layout. Bump it whenever the schema changes.
SCHEMA_VERSION = 1

_FORMAT = "zcjax.sweep.ResultStore"
_KEY_COLUMNS = ("space", "arch", "proxy", "config_hash", "seed", "batch_hash")
_COLUMNS = _KEY_COLUMNS + ("value", "reason", "seconds", "created")
# SQLite's default limit on bound parameters is 32766 (>= 3.32); stay far below.
_MAX_IN_PARAMS = 500

OnConflict = Literal["raise", "ignore", "replace"]


class StoreError(Exception):
    """Base class of result-store errors."""


class SchemaVersionError(StoreError):
    """The file is not a result store, or was written with another schema."""


class ConflictError(StoreError, ValueError):
    """A record's key already holds a different value (or NaN reason)."""


# --------------------------------------------------------------------------- #
# Hash helpers
# --------------------------------------------------------------------------- #
def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(
        f"config_hash: value of type {type(obj).__name__} is not JSON-serialisable; "
        "convert it to str/int/float/bool/list/dict first"
    )


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable configuration.

    The config is dumped as compact JSON with sorted keys (tuples become
    lists, numpy scalars/arrays become Python numbers/lists), hashed with
    SHA-256, and the first 16 hex digits are returned. Equal configurations
    give equal hashes across processes, machines and Python versions.

    Args:
      config: mapping of settings that influence the score (proxy
        hyper-parameters, batch size, dtype, loss, ...).

    Returns:
      A 16-character lowercase hex string.

    Raises:
      TypeError: if a value cannot be serialised deterministically.
    """
    text = json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
        default=_json_default,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def array_hash(array: Any) -> str:
    """Stable 16-hex-digit hash of an array's dtype, shape and bytes.

    Used to identify the data batch a score was computed on. Accepts anything
    :func:`numpy.asarray` accepts (including JAX arrays, which are copied to
    host memory). The hash covers the dtype (with byte order), the shape and
    the C-contiguous bytes, so a transposed or re-typed batch hashes
    differently.
    """
    arr = np.ascontiguousarray(np.asarray(array))
    h = hashlib.sha256()
    h.update(arr.dtype.str.encode("ascii"))
    h.update(repr(tuple(int(d) for d in arr.shape)).encode("ascii"))
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Record:
    """One proxy score of one architecture at one seed.

    Attributes:
      space: search-space name, e.g. ``"nb201"``.
      arch: architecture string in the space's canonical encoding.
      proxy: proxy name, e.g. ``"synflow"``.
      config_hash: :func:`config_hash` of the scoring configuration.
      seed: initialisation seed.
      batch_hash: :func:`array_hash` of the data batch.
      value: the score; ``nan`` when the proxy produced none.
      reason: why ``value`` is NaN (``None`` for finite/inf values).
      seconds: wall-clock seconds spent computing this score, if known.
      created: UNIX time of the write; filled in by the store.
    """

    space: str
    arch: str
    proxy: str
    config_hash: str
    seed: int
    batch_hash: str
    value: float
    reason: str | None = None
    seconds: float | None = None
    created: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "value", float(self.value))
        if self.seconds is not None:
            object.__setattr__(self, "seconds", float(self.seconds))
        if self.reason is not None and not math.isnan(self.value):
            raise ValueError(
                f"Record {self.key}: reason {self.reason!r} given for a non-NaN value "
                f"{self.value!r}; reasons only explain NaN scores"
            )

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        """``(space, arch, proxy, config_hash, seed, batch_hash)``."""
        return (self.space, self.arch, self.proxy, self.config_hash, self.seed,
                self.batch_hash)

    @property
    def is_nan(self) -> bool:
        """Whether the score is NaN."""
        return math.isnan(self.value)

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict (column name -> value)."""
        return {c: getattr(self, c) for c in _COLUMNS}


def _to_row(rec: Record, created: float) -> tuple:
    value = None if math.isnan(rec.value) else rec.value
    return (rec.space, rec.arch, rec.proxy, rec.config_hash, rec.seed, rec.batch_hash,
            value, rec.reason, rec.seconds,
            created if rec.created is None else rec.created)


def _from_row(row: Sequence[Any]) -> Record:
    d = dict(zip(_COLUMNS, row))
    if d["value"] is None:
        d["value"] = math.nan
    return Record(**d)


class MergeResult(NamedTuple):
    """Outcome of :meth:`ResultStore.merge_from`."""

    inserted: int  #: rows new to this store
    duplicates: int  #: rows already present with an identical value


# --------------------------------------------------------------------------- #
# Store
# --------------------------------------------------------------------------- #
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    space       TEXT    NOT NULL,
    arch        TEXT    NOT NULL,
    proxy       TEXT    NOT NULL,
    config_hash TEXT    NOT NULL,
    seed        INTEGER NOT NULL,
    batch_hash  TEXT    NOT NULL,
    value       REAL,
    reason      TEXT,
    seconds     REAL,
    created     REAL    NOT NULL,
    CHECK (value IS NULL OR reason IS NULL),
    PRIMARY KEY (space, config_hash, batch_hash, proxy, arch, seed)
) WITHOUT ROWID;
"""
# The primary-key order serves every hot query without a secondary index
# (which would store each key, long arch strings included, a second time):
# stored_proxies/missing filter on (space, config_hash, batch_hash[, proxy]),
# scores on (space, config_hash, batch_hash, proxy), get/has on the full key.


def _as_tuple(v: Any) -> tuple | None:
    """Normalise a filter value: None -> None, scalar -> 1-tuple, iterable -> tuple."""
    if v is None:
        return None
    if isinstance(v, (str, bytes, int, np.integer)):
        return (v.item() if isinstance(v, np.generic) else v,)
    return tuple(x.item() if isinstance(x, np.generic) else x for x in v)


class ResultStore:
    """SQLite-backed store of sweep scores (see the module docstring).

    Example::

        with ResultStore("workspace/nb201.sqlite") as store:
            store.put_many(records)          # one atomic transaction
            todo = store.missing("nb201", ch, bh, archs, ["synflow"], [0, 1, 2])
            s = store.scores("nb201", "synflow")   # {arch: array over seeds}

    Args:
      path: database file (parent directories are created); ``":memory:"``
        for a throw-away in-memory store.
      synchronous: ``"FULL"`` (default) or ``"NORMAL"``; see the module
        docstring. Both are safe against SIGKILL of the process.
      timeout: seconds to wait for a lock held by another process.

    Raises:
      SchemaVersionError: if the file is not a zcjax result store or has a
        different schema version.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 synchronous: Literal["FULL", "NORMAL"] = "FULL",
                 timeout: float = 60.0) -> None:
        sync = synchronous.upper()
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        try:
            # isolation_level=None: autocommit; transactions are explicit below.
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:  # pragma: no cover - e.g. unreadable directory
            raise StoreError(f"cannot open result store {self.path!r}: {e}") from e
        try:
            self._conn.execute(f"PRAGMA synchronous={sync}")
            self._init_schema()
        except sqlite3.OperationalError as e:  # e.g. locked by another writer too long
            self._conn.close()
            raise StoreError(f"cannot open result store {self.path!r}: {e}") from e
        except sqlite3.DatabaseError as e:  # e.g. "file is not a database"
            self._conn.close()
            raise SchemaVersionError(
                f"{self.path!r} is not a zcjax result store (SQLite error: {e})") from e
        except BaseException:
            self._conn.close()
            raise

    # ---------------------------------------------------------------- setup
    def _init_schema(self) -> None:
        c = self._conn
        # Reading sqlite_master fails with DatabaseError for non-SQLite files.
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise SchemaVersionError(
                f"{self.path!r} is an SQLite database but not a zcjax result store "
                f"(tables: {sorted(tables)})")
        if self.path != ":memory:":
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - exotic file systems
                raise StoreError(f"{self.path!r}: cannot enable WAL journal mode (got {mode!r})")
        if "meta" not in tables:
            # New file. BEGIN IMMEDIATE + IF NOT EXISTS / OR IGNORE make two
            # processes creating the same file at the same time safe.
            with self._transaction():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
                c.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                          (str(SCHEMA_VERSION),))
        _check_meta(c, self.path)

    # --------------------------------------------------------- transactions
    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                # Also on KeyboardInterrupt: leave nothing half-written.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")

    def _transaction(self) -> "ResultStore._Tx":
        return ResultStore._Tx(self._conn)

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the database connection (idempotent)."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({self.path!r})"

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    # --------------------------------------------------------------- writes
    def put(self, record: Record, *, on_conflict: OnConflict = "raise") -> bool:
        """Store one record; returns whether a new row was inserted.

        See :meth:`put_many` for ``on_conflict``.
        """
        return self.put_many([record], on_conflict=on_conflict) == 1

    def put_many(self, records: Iterable[Record], *,
                 on_conflict: OnConflict = "raise") -> int:
        """Store records atomically: all of them, or (on error) none.

        Writing a record whose key is already stored with the same value and
        reason is a no-op (puts are idempotent). A key stored with a
        *different* value or reason is a conflict, handled per
        ``on_conflict``: ``"raise"`` (default) raises :class:`ConflictError`
        and rolls back the whole call, ``"ignore"`` keeps the stored row,
        ``"replace"`` overwrites it.

        Returns:
          The number of rows inserted or replaced.
        """
        if on_conflict not in ("raise", "ignore", "replace"):
            raise ValueError(f"on_conflict must be 'raise', 'ignore' or 'replace', got {on_conflict!r}")
        now = time.time()
        rows = (_to_row(r, now) for r in records)
        with self._transaction():
            inserted, _ = self._insert_rows(rows, on_conflict, source=None)
        return inserted

    def _insert_rows(self, rows: Iterable[tuple], on_conflict: OnConflict,
                     source: str | None) -> tuple[int, int]:
        """Insert rows inside the current transaction; returns (inserted, duplicates)."""
        c = self._conn
        insert = ("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?) "
                  "ON CONFLICT DO NOTHING")
        lookup = ("SELECT value, reason FROM scores WHERE space=? AND arch=? AND proxy=? "
                  "AND config_hash=? AND seed=? AND batch_hash=?")
        replace = ("UPDATE scores SET value=?, reason=?, seconds=?, created=? WHERE space=? "
                   "AND arch=? AND proxy=? AND config_hash=? AND seed=? AND batch_hash=?")
        rows = list(rows)
        if not rows:
            return 0, 0
        # Fast path: bulk insert; rows whose key exists are skipped by SQLite.
        new = c.executemany(insert, rows).rowcount
        if new == len(rows):
            return new, 0
        # Some keys existed: compare every row with what is stored now (rows
        # inserted just above compare equal to themselves).
        same = replaced = 0
        for row in rows:
            old_value, old_reason = c.execute(lookup, row[:6]).fetchone()
            if old_value == row[6] and old_reason == row[7]:  # None == None for NaN
                same += 1
                continue
            if on_conflict == "ignore":
                continue
            if on_conflict == "replace":
                c.execute(replace, row[6:] + row[:6])
                replaced += 1
                continue
            where = f" (from {source!r})" if source else ""
            raise ConflictError(
                f"conflicting score for key {dict(zip(_KEY_COLUMNS, row[:6]))}{where}: "
                f"stored value={_fmt(old_value)} reason={old_reason!r}, "
                f"new value={_fmt(row[6])} reason={row[7]!r}")
        return new + replaced, same - new

    def merge_from(self, other_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                   *, on_conflict: OnConflict = "raise",
                   batch_size: int = 10_000) -> MergeResult:
        """Copy every score of other store files into this one.

        Intended for multi-host sweeps, where each process writes its own
        file. Rows already present with identical value and reason are
        skipped; conflicting rows raise :class:`ConflictError` (default) or
        follow ``on_conflict`` as in :meth:`put_many`. The whole merge is one
        transaction: on error nothing is merged. Source rows keep their
        ``seconds`` and ``created`` columns. Source rows are not modified
        (opening a source may recover its WAL after a crash of its writer).

        Returns:
          A :class:`MergeResult` with counts of inserted and duplicate rows.
        """
        if isinstance(other_paths, (str, os.PathLike)):
            other_paths = [other_paths]
        sources = [os.fspath(p) for p in other_paths]
        for src in sources:
            if not os.path.exists(src):
                raise FileNotFoundError(src)
            if self.path != ":memory:" and os.path.exists(self.path) and os.path.samefile(src, self.path):
                raise ValueError(f"cannot merge {src!r} into itself")
        opened = []
        try:
            for src in sources:  # open (and validate) all before writing anything
                opened.append(ResultStore(src))
            total_ins = total_dup = 0
            with self._transaction():
                for src_path, src in zip(sources, opened):
                    cur = src._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM scores")
                    while True:
                        batch = cur.fetchmany(batch_size)
                        if not batch:
                            break
                        ins, dup = self._insert_rows(batch, on_conflict, source=src_path)
                        total_ins += ins
                        total_dup += dup
            return MergeResult(total_ins, total_dup)
        finally:
            for s in opened:
                s.close()

    # ---------------------------------------------------------------- reads
    def get(self, space: str, arch: str, proxy: str, config_hash: str, seed: int,
            batch_hash: str) -> Record | None:
        """The stored record for a key, or ``None``."""
        row = self._conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM scores WHERE space=? AND arch=? AND proxy=? "
            "AND config_hash=? AND seed=? AND batch_hash=?",
            (space, arch, proxy, config_hash, int(seed), batch_hash)).fetchone()
        return None if row is None else _from_row(row)

    def has(self, space: str, arch: str, proxy: str, config_hash: str, seed: int,
            batch_hash: str) -> bool:
        """Whether a score (possibly NaN) is stored for the key."""
        return self._conn.execute(
            "SELECT 1 FROM scores WHERE space=? AND arch=? AND proxy=? AND config_hash=? "
            "AND seed=? AND batch_hash=?",
            (space, arch, proxy, config_hash, int(seed), batch_hash)).fetchone() is not None

    def stored_proxies(self, space: str, config_hash: str, batch_hash: str,
                       proxies: Iterable[str] | None = None) -> dict[tuple[str, int], set[str]]:
        """Which proxies are stored for each ``(arch, seed)`` of one sweep setting.

        One indexed query (the primary key starts with ``space, config_hash,
        batch_hash``), optionally restricted to ``proxies``. The result is
        compact (one entry per architecture and seed, proxy names shared), so
        it fits in memory even for whole search spaces.

        Returns:
          ``{(arch, seed): {proxy, ...}}`` for every pair with at least one
          stored score (NaN scores count as stored).
        """
        sql = "SELECT arch, seed, proxy FROM scores WHERE space=? AND config_hash=? AND batch_hash=?"
        params: list[Any] = [space, config_hash, batch_hash]
        wanted: dict[str, str] | None = None
        if proxies is not None:
            wanted = {p: p for p in proxies}  # also canonicalises the strings
            if len(wanted) <= _MAX_IN_PARAMS:
                sql += f" AND proxy IN ({','.join('?' * len(wanted))})"
                params += list(wanted)
        out: dict[tuple[str, int], set[str]] = {}
        for arch, seed, proxy in self._conn.execute(sql, params):
            if wanted is not None:
                proxy = wanted.get(proxy)
                if proxy is None:
                    continue
            out.setdefault((arch, seed), set()).add(proxy)
        return out

    def missing(self, space: str, config_hash: str, batch_hash: str,
                archs: Iterable[str], proxies: Sequence[str],
                seeds: Iterable[int]) -> list[tuple[str, int, tuple[str, ...]]]:
        """Which ``archs x seeds x proxies`` scores are not stored yet.

        Uses a single query (see :meth:`stored_proxies`) and set arithmetic
        in Python, not one query per score.

        Returns:
          ``(arch, seed, missing_proxies)`` for every (arch, seed) pair with at
          least one missing proxy, in ``archs``-major, then ``seeds`` order;
          ``missing_proxies`` keeps the order of ``proxies``.
        """
        proxies = tuple(dict.fromkeys(proxies))
        seeds = [int(s) for s in seeds]
        have = self.stored_proxies(space, config_hash, batch_hash, proxies)
        none: set[str] = set()
        out = []
        for arch in archs:
            for seed in seeds:
                got = have.get((arch, seed), none)
                miss = tuple(p for p in proxies if p not in got)
                if miss:
                    out.append((arch, seed, miss))
        return out

    def _select(self, filters: Mapping[str, Any], columns: Sequence[str] = _COLUMNS,
                order: bool = True) -> Iterator[tuple]:
        unknown = set(filters) - set(_KEY_COLUMNS)
        if unknown:
            raise TypeError(f"unknown filter(s) {sorted(unknown)}; allowed: {list(_KEY_COLUMNS)}")
        where, params, post = [], [], []
        for col in _KEY_COLUMNS:
            vals = _as_tuple(filters.get(col))
            if vals is None:
                continue
            if col == "seed":
                vals = tuple(int(v) for v in vals)
            if len(vals) <= _MAX_IN_PARAMS:
                where.append(f"{col} IN ({','.join('?' * len(vals))})")
                params.extend(vals)
            else:  # too many SQL parameters: filter in Python
                if col not in columns:
                    raise ValueError(f"cannot filter {len(vals)} values of {col!r} here")
                post.append((columns.index(col), set(vals)))
        sql = f"SELECT {', '.join(columns)} FROM scores"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if order:
            sql += " ORDER BY space, config_hash, batch_hash, proxy, arch, seed"
        for row in self._conn.execute(sql, params):
            if all(row[i] in s for i, s in post):
                yield row

    def records(self, **filters: Any) -> Iterator[Record]:
        """Iterate over stored :class:`Record` s matching the filters.

        Filters are key columns (``space, arch, proxy, config_hash, seed,
        batch_hash``), each a single value or a collection of values.
        """
        for row in self._select(filters):
            yield _from_row(row)

    def to_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Stored rows matching the filters as plain dicts (pandas-free).

        Each dict has the keys ``space, arch, proxy, config_hash, seed,
        batch_hash, value, reason, seconds, created``; NaN scores have
        ``value=float('nan')``. ``pandas.DataFrame(store.to_records())``
        gives a data frame. See :meth:`records` for the filters.
        """
        return [r.as_dict() for r in self.records(**filters)]

    def count(self, **filters: Any) -> int:
        """Number of stored rows matching the filters."""
        return sum(1 for _ in self._select(filters, columns=_KEY_COLUMNS, order=False))

    def export_csv(self, path: str | os.PathLike[str], **filters: Any) -> int:
        """Write matching rows to a CSV file (header + one row per score).

        Columns: ``space, arch, seed, proxy, value, reason, config_hash,
        batch_hash, seconds, created``. NaN values are written as ``nan``
        (read back as NaN by ``float()``, numpy and pandas). Floats use
        Python's shortest round-trip representation, so no precision is lost.

        Returns:
          The number of data rows written.
        """
        cols = ("space", "arch", "seed", "proxy", "value", "reason", "config_hash",
                "batch_hash", "seconds", "created")
        idx = [_COLUMNS.index(c) for c in cols]
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for row in self._select(filters):
                out = [row[i] for i in idx]
                out[4] = "nan" if out[4] is None else repr(float(out[4]))
                out[5] = "" if out[5] is None else out[5]
                out[8] = "" if out[8] is None else repr(float(out[8]))
                out[9] = repr(float(out[9]))
                w.writerow(out)
                n += 1
        return n

    def scores(self, space: str, proxy: str, config_hash: str | None = None,
               batch_hash: str | None = None, *, archs: Iterable[str] | None = None,
               seeds: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Per-architecture arrays of per-seed scores for one proxy.

        Args:
          space: search-space name.
          proxy: proxy name.
          config_hash: restrict to one configuration. If ``None`` the stored
            rows must all share one configuration, else this raises (mixing
            configurations silently would be a bug).
          batch_hash: likewise for the data batch.
          archs: only these architectures (default: all stored ones).
          seeds: if given, every array has ``len(seeds)`` entries aligned with
            ``seeds``, NaN where a seed is not stored. If ``None``, each array
            holds the stored seeds in increasing seed order.

        Returns:
          ``{arch: float64 array}`` in sorted ``arch`` order.

        Raises:
          ValueError: if ``config_hash``/``batch_hash`` is ``None`` and the
            matching rows span several values of it.
        """
        filters: dict[str, Any] = {"space": space, "proxy": proxy}
        if config_hash is not None:
            filters["config_hash"] = config_hash
        if batch_hash is not None:
            filters["batch_hash"] = batch_hash
        if archs is not None:
            filters["arch"] = list(archs)
        if seeds is not None:
            filters["seed"] = [int(s) for s in seeds]
        cols = ("arch", "seed", "value", "config_hash", "batch_hash")
        per_arch: dict[str, list[tuple[int, float]]] = {}
        configs: set[str] = set()
        batches: set[str] = set()
        for arch, seed, value, ch, bh in sorted(self._select(filters, columns=cols, order=False)):
            configs.add(ch)
            batches.add(bh)
            per_arch.setdefault(arch, []).append((seed, math.nan if value is None else value))
        if len(configs) > 1:
            raise ValueError(f"scores({space!r}, {proxy!r}): rows span several config hashes "
                             f"{sorted(configs)}; pass config_hash=")
        if len(batches) > 1:
            raise ValueError(f"scores({space!r}, {proxy!r}): rows span several batch hashes "
                             f"{sorted(batches)}; pass batch_hash=")
        out: dict[str, np.ndarray] = {}
        if seeds is None:
            for arch, sv in per_arch.items():
                out[arch] = np.array([v for _, v in sv], dtype=np.float64)
        else:
            pos = {int(s): i for i, s in enumerate(seeds)}
            for arch, sv in per_arch.items():
                arr = np.full(len(pos), np.nan)
                for s, v in sv:
                    arr[pos[s]] = v
                out[arch] = arr
        return out


def _check_meta(conn: sqlite3.Connection, path: str) -> None:
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != _FORMAT:
        raise SchemaVersionError(f"{path!r} is not a zcjax result store (format={meta.get('format')!r})")
    version = meta.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{path!r} has result-store schema version {version}, but this zcjax reads "
            f"version {SCHEMA_VERSION}; use the zcjax version that wrote it, or export "
            "it to CSV there and re-import")


def _fmt(v: float | None) -> str:
    return "nan" if v is None else repr(v)
