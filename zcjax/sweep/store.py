"""Crash-safe result store for zero-cost-proxy sweeps.

A sweep scores many architectures x initialisation seeds x proxies. Every
score is one row of an embedded SQLite database (stdlib :mod:`sqlite3`, one
file in the workspace) keyed by::

    (space, arch, proxy, proxy_version, config_hash, seed, batch_hash)

with the score ``value`` (``NULL`` in the database, ``nan`` in Python, when
the proxy produced no finite score), a ``reason`` explaining a NaN, the
wall-clock ``seconds`` spent, the ``created`` UNIX timestamp of the write and
a ``checksum`` of all of these.

``proxy_version`` is the registered proxy's
:attr:`~zcjax.proxies.base.ProxyInfo.version` (1 for names the registry does
not know): when a proxy's definition is fixed and its version bumped, rows of
the old version stay stored but are never reused for the new one.

Durability
----------
A chunk of records is written with :meth:`ResultStore.put_many` in a single
transaction, so after any crash a chunk is either entirely present or
entirely absent, and the file is never left half-written.

Journal mode (``journal_mode``, or the ``ZCJAX_STORE_JOURNAL`` environment
variable): ``"auto"`` (default) uses WAL on a local disk and the rollback
journal (``"delete"``) on network and FUSE file systems (NFS, SMB, Google
Drive on Colab, gcsfuse, ...; see :mod:`zcjax.sweep.filesystem`), where WAL's
shared memory and locks are not reliable. With ``"delete"`` every committed
row is in the main file at all times, and concurrent writers are serialised
by file locks (which such file systems may not honour: run one writer there).

In WAL mode committed rows first go to ``<store>-wal``. The store checkpoints
(copies them into the main file) after every chunk the runner writes (PASSIVE),
at the end of a sweep and on :meth:`ResultStore.close` (TRUNCATE), so the main
file alone is a valid store that is normally at most one chunk behind, even
after a ``SIGKILL`` (a checkpoint cannot pass the snapshot of a process that
is reading the store at that moment, so readers can hold it back further). To copy a
store, use :meth:`ResultStore.backup` (or ``python -m zcjax.sweep.store_cli
backup``), which writes a self-contained, consistent file at any moment; a
plain copy of the main file while a sweep runs may miss its latest chunk, and
an empty or header-only file (what copying a fresh WAL store without its
``-wal`` gives) is refused, never treated as a new store.

``synchronous`` chooses how hard a commit is pushed to disk:

* ``"NORMAL"``: in WAL mode a commit ``write()``s the WAL frames and returns
  without ``fsync``. Those bytes live in the operating system's page cache,
  which belongs to the kernel, not to the process, so a process killed with
  ``SIGKILL`` loses **nothing** that was committed. Only an OS crash or power
  loss can drop the most recent commits (never corrupting the file).
* ``"FULL"`` (default): additionally ``fsync``\\ s on every commit, so
  committed chunks also survive power loss / a hard VM reset.

Integrity
---------
SQLite has no checksums of its own. Every row carries a checksum of all its
columns, verified on every read: :meth:`records`, :meth:`scores`,
:meth:`get` and :meth:`export_csv` raise :class:`DamagedRowError` on a row
that changed on disk; :meth:`stored_proxies` (what a resumed sweep skips)
leaves damaged rows out, so a rerun recomputes exactly those and
:meth:`put_many` replaces them (the damaged row is kept in the ``damaged``
table). :meth:`verify` (``store_cli integrity``) reports damaged rows and
SQLite-level damage, and with ``repair=True`` moves damaged rows aside.
SQLite errors come out as :class:`StoreError` s that say what to do:
:class:`StoreLockedError`, :class:`StoreReadOnlyError`,
:class:`StoreCorruptError`.

A store can be opened for analysis without write access:
``ResultStore(path, readonly=True)``. Opening a read-only file without it
fails at once (not after the first computed chunk).

Conflicts
---------
Scores of one key computed by different routes (supernet, eager, static;
different hosts) agree only to float rounding. Two values of a key are the
same score if ``|a - b| <= atol + rtol * max(|a|, |b|)`` with the proxy's
``(rtol, atol)`` in :data:`CONFLICT_TOLERANCE` (measured agreement between
the engine's compile routes; :data:`DEFAULT_TOLERANCE` for the rest). The
stored value is kept; anything further apart is a :class:`ConflictError`.

Concurrency
-----------
Several *processes* may open the same file (SQLite locks it; a writer waits
up to ``timeout`` seconds for another writer). A :class:`ResultStore` object
is **not** thread-safe: use it from the thread that created it.

Schema history: version 1 had no ``proxy_version`` and no checksums. Opening
a version-1 store writable upgrades it in place in one transaction (every row
gets version 1 and its checksum), after saving a copy as
``<store>.schema1.bak``; :meth:`merge_from` reads version-1 sources as they
are.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from zcjax.sweep import filesystem, spill
from zcjax.validation import cap, check_int, check_seed

__all__ = [
    "CONFLICT_TOLERANCE",
    "DEFAULT_TOLERANCE",
    "SCHEMA_VERSION",
    "ConflictError",
    "DamagedRowError",
    "DamagedRowsWarning",
    "IntegrityReport",
    "MergeResult",
    "Record",
    "ResultStore",
    "SchemaVersionError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "array_hash",
    "config_hash",
    "proxy_version",
]

#: Version of the on-disk layout. Bump it whenever the schema changes.
#: 2: ``proxy_version`` in the key, a per-row ``checksum``, the ``damaged`` table.
SCHEMA_VERSION = 2

#: ``(rtol, atol)`` within which two values of one key are the same score, per proxy: the
#: agreement measured between the engine's compile routes (``tests/sweep/test_engine.py``):
#: ZiCo amplifies float32 rounding of nearly equal gradients (up to 5.4e-4 relative between
#: routes), GraSP sums nearly cancelling signed terms (up to 2e-5 absolute).
CONFLICT_TOLERANCE: dict[str, tuple[float, float]] = {"zico": (1e-3, 1e-6),
                                                      "grasp": (5e-4, 1e-4)}
#: ``(rtol, atol)`` for proxies not in :data:`CONFLICT_TOLERANCE`.
DEFAULT_TOLERANCE: tuple[float, float] = (2e-5, 1e-6)

_FORMAT = "zcjax.sweep.ResultStore"
_KEY_COLUMNS = ("space", "arch", "proxy", "proxy_version", "config_hash", "seed", "batch_hash")
_COLUMNS = _KEY_COLUMNS + ("value", "reason", "seconds", "created")
_ROW_COLUMNS = _COLUMNS + ("checksum",)
_PK = ("space", "config_hash", "batch_hash", "proxy", "proxy_version", "arch", "seed")
_V1_COLUMNS = ("space", "arch", "proxy", "config_hash", "seed", "batch_hash", "value", "reason",
               "seconds", "created")
_VALUE, _REASON = _COLUMNS.index("value"), _COLUMNS.index("reason")
_PROXY = _COLUMNS.index("proxy")
# SQLite's default limit on bound parameters is 32766 (>= 3.32); stay far below.
_MAX_IN_PARAMS = 500
_JOURNAL_MODES = ("auto", "wal", "delete", "truncate")

OnConflict = Literal["raise", "ignore", "replace"]
JournalMode = Literal["auto", "wal", "delete", "truncate"]


class StoreError(Exception):
    """Base class of result-store errors."""


class SchemaVersionError(StoreError):
    """The file is not a result store, or was written with another schema."""


class ConflictError(StoreError, ValueError):
    """A record's key already holds a different value (or NaN reason)."""


class StoreLockedError(StoreError):
    """Another process held the store's lock for longer than the timeout."""


class StoreReadOnlyError(StoreError):
    """A write to a store that cannot be written (file, folder or ``readonly=True``)."""


class StoreCorruptError(StoreError):
    """SQLite reports the file as damaged (or it is empty / has no tables)."""


class DamagedRowError(StoreCorruptError):
    """A row whose checksum does not match its columns: it changed on disk."""


class DamagedRowsWarning(UserWarning):
    """Damaged rows were left out of what a sweep counts as stored (they will be recomputed)."""


def proxy_version(name: str) -> int:
    """The current version of proxy ``name``: its registry entry's, or 1 if not registered."""
    try:
        from zcjax import proxies
        return int(getattr(proxies.get(name), "version", 1))
    except (ImportError, ValueError):  # not a registered proxy (e.g. a user's own)
        return 1


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


def _checksum(row: Sequence[Any]) -> str:
    """Checksum of a row's :data:`_COLUMNS` values: 16 hex digits of BLAKE2b.

    Hashes ``ascii()`` of the values: exact and typed (``1`` and ``1.0`` differ, floats are
    their shortest round-trip ``repr``), and the same on every Python version (every non-ASCII
    character is escaped, whatever the Unicode database calls printable). Any type is accepted:
    damage on disk may turn a REAL into TEXT or a BLOB. Part of the on-disk format (pinned by a
    test): changing it makes every stored row "damaged".
    """
    text = ascii(tuple(row[:len(_COLUMNS)]))
    return hashlib.blake2b(text.encode("ascii"), digest_size=8).hexdigest()


def _row_ok(row: Sequence[Any]) -> bool:
    return len(row) == len(_ROW_COLUMNS) and row[-1] == _checksum(row)


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
      seed: initialisation seed, an integer in ``0..2**31-1``.
      batch_hash: :func:`array_hash` of the data batch.
      value: the score; ``nan`` when the proxy produced none.
      reason: why ``value`` is NaN (``None`` for finite/inf values).
      seconds: wall-clock seconds spent computing this score, if known.
      created: UNIX time of the write; filled in by the store.
      proxy_version: the proxy's definition version; ``None`` (default) takes
        the registered proxy's current :func:`proxy_version`.
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
    proxy_version: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "value", float(self.value))
        if self.seconds is not None:
            object.__setattr__(self, "seconds", float(self.seconds))
        version = (proxy_version(self.proxy) if self.proxy_version is None
                   else check_int(self.proxy_version, "proxy_version", 1))
        object.__setattr__(self, "proxy_version", version)
        if self.reason is not None and not math.isnan(self.value):
            raise ValueError(
                f"Record {self.key}: reason {cap(repr(self.reason))} given for a non-NaN value "
                f"{self.value!r}; reasons only explain NaN scores"
            )

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        """``(space, arch, proxy, config_hash, seed, batch_hash)`` (without the version)."""
        return (self.space, self.arch, self.proxy, self.config_hash, self.seed,
                self.batch_hash)

    @property
    def store_key(self) -> tuple:
        """The stored key, with the version after the proxy:
        ``(space, arch, proxy, proxy_version, config_hash, seed, batch_hash)``."""
        return (self.space, self.arch, self.proxy, self.proxy_version, self.config_hash,
                self.seed, self.batch_hash)

    @property
    def is_nan(self) -> bool:
        """Whether the score is NaN."""
        return math.isnan(self.value)

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict (column name -> value)."""
        return {c: getattr(self, c) for c in _COLUMNS}


def _to_row(rec: Record, created: float) -> tuple:
    """The stored row of a record: :data:`_COLUMNS` values, then the checksum."""
    value = None if math.isnan(rec.value) else rec.value
    row = (rec.space, rec.arch, rec.proxy, rec.proxy_version, rec.config_hash, rec.seed,
           rec.batch_hash, value, rec.reason, rec.seconds,
           float(created if rec.created is None else rec.created))
    return row + (_checksum(row),)


def _from_row(row: Sequence[Any]) -> Record:
    """A Record of a verified stored row (skips the checks: the row was checked on write)."""
    rec = object.__new__(Record)
    for name, v in zip(_COLUMNS, row):
        object.__setattr__(rec, name, math.nan if name == "value" and v is None else v)
    return rec


class MergeResult(NamedTuple):
    """Outcome of :meth:`ResultStore.merge_from`."""

    inserted: int  #: rows new to this store
    duplicates: int  #: rows already present with an identical value (or one within tolerance)
    within_tolerance: int = 0  #: of the duplicates, those that differed within tolerance


class IntegrityReport(NamedTuple):
    """Outcome of :meth:`ResultStore.verify`."""

    rows: int  #: rows read
    damaged: list[dict]  #: the damaged rows (as read), at most ``limit`` of them
    damaged_count: int  #: how many rows failed their checksum
    sqlite_problems: list[str]  #: what ``PRAGMA integrity_check`` reported (empty: fine)
    repaired: int  #: damaged rows moved to the ``damaged`` table by this call
    spill_files: list[str]  #: computed scores waiting in side files (merged by the next run)

    @property
    def ok(self) -> bool:
        return not self.damaged_count and not self.sqlite_problems

    def __str__(self) -> str:
        lines = [f"{self.rows} rows checked: "
                 + ("no damage found" if self.ok else
                    f"{self.damaged_count} damaged rows, {len(self.sqlite_problems)} SQLite "
                    "problems")]
        for d in self.damaged[:20]:
            lines.append("  damaged: " + cap(", ".join(f"{k}={d[k]!r}" for k in _COLUMNS
                                                       if k in d), 300))
        for p in self.sqlite_problems[:20]:
            lines.append("  sqlite: " + cap(p, 300))
        if self.repaired:
            lines.append(f"{self.repaired} damaged rows moved to the 'damaged' table; rerun the "
                         "sweep to recompute exactly those scores")
        elif self.damaged_count:
            lines.append("repair with `python -m zcjax.sweep.store_cli integrity --repair "
                         "STORE`, then rerun the sweep to recompute exactly those scores")
        if self.spill_files:
            lines.append(f"{len(self.spill_files)} spill files of computed scores wait to be "
                         "merged: rerun the sweep (or ResultStore(path).merge_spills())")
        return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Store
# --------------------------------------------------------------------------- #
_SCORES_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    space         TEXT    NOT NULL,
    arch          TEXT    NOT NULL,
    proxy         TEXT    NOT NULL,
    proxy_version INTEGER NOT NULL,
    config_hash   TEXT    NOT NULL,
    seed          INTEGER NOT NULL,
    batch_hash    TEXT    NOT NULL,
    value         REAL,
    reason        TEXT,
    seconds       REAL,
    created       REAL    NOT NULL,
    checksum      TEXT    NOT NULL,
    CHECK (value IS NULL OR reason IS NULL),
    PRIMARY KEY (space, config_hash, batch_hash, proxy, proxy_version, arch, seed)
) WITHOUT ROWID
"""
# Rows that failed their checksum, kept for inspection (no key: damage may have changed it).
_DAMAGED_TABLE = """
CREATE TABLE IF NOT EXISTS damaged (
    space, arch, proxy, proxy_version, config_hash, seed, batch_hash, value, reason, seconds,
    created, checksum, found REAL NOT NULL, note TEXT
)
"""
_META_TABLE = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
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


def _resolve_journal_mode(path: str, journal_mode: str) -> str:
    mode = os.environ.get("ZCJAX_STORE_JOURNAL", "") if journal_mode == "auto" else journal_mode
    mode = (mode or "auto").lower()
    if mode not in _JOURNAL_MODES:
        raise ValueError(f"journal_mode must be one of {_JOURNAL_MODES}, got {cap(repr(mode))}")
    if mode == "auto":
        mode = "delete" if filesystem.is_network_filesystem(path) else "wal"
    return mode


def _csv_text(text: str) -> str:
    """A text cell that spreadsheets do not run as a formula (OWASP: prefix with ``'``)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
      readonly: open an existing store for reading only (works on read-only
        files and folders); writes raise :class:`StoreReadOnlyError`.
      journal_mode: ``"auto"`` (WAL on local disks, ``"delete"`` on network /
        FUSE file systems; ``ZCJAX_STORE_JOURNAL`` overrides it), ``"wal"``,
        ``"delete"`` or ``"truncate"``.
      tolerance: ``{proxy: (rtol, atol)}`` overriding :data:`CONFLICT_TOLERANCE`
        (key ``"*"``: every other proxy; ``(0, 0)`` demands equal values).

    Raises:
      SchemaVersionError: if the file is not a zcjax result store (including
        an empty or header-only file) or has an unknown schema version.
      StoreReadOnlyError: a read-only file or folder without ``readonly=True``.
      StoreLockedError, StoreCorruptError: see their docs.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 synchronous: Literal["FULL", "NORMAL"] = "FULL",
                 timeout: float = 60.0, readonly: bool = False,
                 journal_mode: JournalMode = "auto",
                 tolerance: Mapping[str, tuple[float, float]] | None = None) -> None:
        sync = str(synchronous).upper()
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self.readonly = bool(readonly)
        self._tolerance = dict(CONFLICT_TOLERANCE)
        self._tolerance.update(tolerance or {})
        self._conn: sqlite3.Connection | None = None
        memory = self.path == ":memory:"
        self.journal_mode = "memory" if memory else _resolve_journal_mode(self.path, journal_mode)
        if self.readonly and memory:
            raise ValueError("an in-memory store cannot be read-only")
        if not memory:
            self._check_file()
        try:
            self._conn = self._connect()
            if not self.readonly:
                self._conn.execute(f"PRAGMA synchronous={sync}")
            self._init_schema()
        except BaseException as e:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
                if "not a database" in str(e).lower():  # e.g. a text file
                    raise SchemaVersionError(
                        f"{self.path!r} is not a zcjax result store (SQLite error: {e})") from e
            if isinstance(e, sqlite3.Error):
                raise self._translate(e, "cannot open the result store") from e
            raise
        if not memory and not self.readonly and spill.spill_files(self.path):
            warnings.warn(f"{self.path}: {len(spill.spill_files(self.path))} spill files of "
                          "computed scores wait in " + spill.spill_dir(self.path) + "; they are "
                          "merged by the next sweep (or merge_spills())", stacklevel=2)

    # ---------------------------------------------------------------- setup
    def _check_file(self) -> None:
        """Checks done before SQLite touches the file (which would create or mask problems)."""
        path = self.path
        exists = os.path.exists(path)
        if exists and os.path.isdir(path):
            raise StoreError(f"{path!r} is a folder, not a result store file")
        if exists and os.path.getsize(path) == 0:
            raise SchemaVersionError(
                f"{path!r} is an empty file (0 bytes), not a zcjax result store. zcjax never "
                "leaves a store empty: if it is a copy, the copy failed (copy stores with "
                "`python -m zcjax.sweep.store_cli backup SRC DST`); to start a new store, delete "
                "it or choose another path")
        if self.readonly:
            if not exists:
                raise FileNotFoundError(f"no result store at {path!r}")
            return
        folder = os.path.dirname(os.path.abspath(path))
        if exists and not os.access(path, os.W_OK):
            raise StoreReadOnlyError(
                f"{path!r} is read-only: open it with ResultStore(path, readonly=True) to analyse "
                "it, or make it writable (or copy it somewhere writable) to add scores")
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreReadOnlyError(
                f"the folder of {path!r} is read-only, and SQLite needs to create its journal "
                "there: open the store with readonly=True to analyse it, or move it to a "
                "writable folder to add scores")
        if not exists:
            self._create()

    def _create(self) -> None:
        """Creates a new store atomically: built under a temporary name, then linked in place.

        Nobody ever sees an empty or half-made store file, so an empty or table-less file at
        the path is always an error, never a store being created. Two processes creating the
        same store at once both end up with the one that was linked first.
        """
        tmp = f"{self.path}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("BEGIN")
                self._create_tables(conn)
                conn.execute("COMMIT")
                if self.journal_mode == "wal":
                    conn.execute("PRAGMA journal_mode=WAL")  # recorded in the file header
            finally:
                conn.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)  # atomic, and never replaces an existing file
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError:  # no hard links here (some FUSE file systems): exclusive create
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
                        out.write(src.read())
                        out.flush()
                        os.fsync(out.fileno())
        finally:
            for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    @staticmethod
    def _create_tables(conn: sqlite3.Connection) -> None:
        conn.execute(_META_TABLE)
        conn.execute(_SCORES_TABLE.format(name="scores"))
        conn.execute(_DAMAGED_TABLE)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))

    def _connect(self) -> sqlite3.Connection:
        conn = self._open()
        # Text whose bytes are no longer UTF-8 (damage on disk) is read, not refused, so that the
        # row's checksum can fail and the row be handled like any damaged row.
        conn.text_factory = _decode_text
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            return sqlite3.connect(":memory:", timeout=self.timeout, isolation_level=None)
        if not self.readonly:
            return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=self.timeout,
                               isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            # A WAL store in a read-only folder: SQLite cannot create its -shm file. Without a
            # -wal file every row is in the main file, which can then be read as immutable.
            if os.path.exists(self.path + "-wal"):
                raise StoreReadOnlyError(
                    f"{self.path!r} cannot be read here: its -wal file holds rows and SQLite "
                    "needs write access to the folder to read them; copy the store together "
                    "with its -wal file to a writable folder (or run store_cli backup where it "
                    "is writable)") from None
            return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True,
                                   timeout=self.timeout, isolation_level=None)

    def _init_schema(self) -> None:
        c = self._conn
        # Reading sqlite_master fails with DatabaseError for non-SQLite files.
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if self.path == ":memory:":
            self._create_tables(c)
            return
        if not tables:
            raise SchemaVersionError(
                f"{self.path!r} is an SQLite file without tables, not a zcjax result store "
                "(zcjax never writes such a file). It is probably a copy of a store made "
                "without its -wal file: copy the -wal file too, or copy the store with "
                "`python -m zcjax.sweep.store_cli backup SRC DST`. To start a new store, "
                "delete it or choose another path")
        if "meta" not in tables:
            raise SchemaVersionError(
                f"{self.path!r} is an SQLite database but not a zcjax result store "
                f"(tables: {cap(repr(sorted(tables)))})")
        version = _check_meta(c, self.path)
        if version == 1:
            if self.readonly:
                raise SchemaVersionError(
                    f"{self.path!r} has result-store schema version 1 (no proxy versions or "
                    "checksums). Open it once without readonly=True to upgrade it in place (a "
                    "copy of the old file is kept as <store>.schema1.bak), or copy its rows into "
                    "a new store with ResultStore(new_path).merge_from([path])")
            self._migrate_from_v1()
        if not self.readonly:
            self._set_journal_mode()

    def _set_journal_mode(self) -> None:
        want = self.journal_mode
        got = str(self._conn.execute(f"PRAGMA journal_mode={want}").fetchone()[0]).lower()
        if got != want:
            raise StoreError(
                f"{self.path!r}: cannot switch the journal to {want!r} (it stays {got!r}), "
                "probably because another process has the store open; close it and retry")

    def _migrate_from_v1(self) -> None:
        """Schema 1 -> 2 in one transaction, after saving a copy of the file."""
        backup_path = self.path + ".schema1.bak"
        if not os.path.exists(backup_path):
            self._backup_to(backup_path, journal="delete")
        c = self._conn
        with self._transaction():
            c.execute(_SCORES_TABLE.format(name="scores_v2"))
            c.execute(_DAMAGED_TABLE)
            cur = c.execute(f"SELECT {', '.join(_V1_COLUMNS)} FROM scores")
            insert = f"INSERT INTO scores_v2 VALUES ({','.join('?' * len(_ROW_COLUMNS))})"
            while True:
                batch = cur.fetchmany(10_000)
                if not batch:
                    break
                c.executemany(insert, [_upgrade_v1_row(r) for r in batch])
            c.execute("DROP TABLE scores")
            c.execute("ALTER TABLE scores_v2 RENAME TO scores")
            c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------ errors
    def _translate(self, e: sqlite3.Error, action: str) -> StoreError:
        """A StoreError that says what happened and what to do, for an sqlite3 error."""
        text = str(e)
        low = text.lower()
        code = str(getattr(e, "sqlite_errorname", "") or "")
        where = f"{action}: {self.path!r}"
        if "locked" in low or "busy" in low or code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StoreLockedError(
                f"{where} is locked by another process ({text}) and stayed locked for the "
                f"{self.timeout:g} s timeout: another sweep, a notebook or an SQLite browser "
                "holds a write transaction. Close it, or pass a longer timeout=. Nothing was "
                "written by this call")
        if "readonly" in low or "read-only" in low or code.startswith("SQLITE_READONLY"):
            return StoreReadOnlyError(
                f"{where} cannot be written ({text}): the file or its folder is read-only (or "
                "the store was opened with readonly=True). Open it with readonly=True to "
                "analyse it, or copy it somewhere writable to add scores")
        if "could not decode" in low:  # a text column whose bytes changed on disk
            return DamagedRowError(
                f"{where}: a stored row is damaged ({cap(text, 200)}). Run `python -m "
                f"zcjax.sweep.store_cli integrity --repair {self.path}`, then rerun the sweep "
                "to recompute exactly the damaged scores")
        if ("malformed" in low or "not a database" in low or "corrupt" in low
                or code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))):
            return StoreCorruptError(
                f"{where} is damaged ({text}). See what is affected with `python -m "
                f"zcjax.sweep.store_cli integrity {self.path}`; restore a backup, or salvage "
                f"the readable rows with `sqlite3 {self.path} .recover | sqlite3 NEW.sqlite` "
                "and merge NEW.sqlite into a fresh store")
        if "disk i/o" in low or "full" in low or code.startswith(("SQLITE_IOERR", "SQLITE_FULL")):
            return StoreError(
                f"{where}: {text}: the disk is full or failing, or a network / FUSE file "
                "system lost the file (use journal_mode='delete' there, or keep the store on a "
                "local disk and back it up with store_cli backup)")
        return StoreError(f"{where}: {text}")

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turns sqlite3 errors into StoreErrors that say what to do."""
        if self._conn is None:
            raise StoreError(f"{action}: the store {self.path!r} is closed")
        try:
            yield
        except sqlite3.Error as e:
            raise self._translate(e, action) from e

    def _writable(self, action: str) -> None:
        if self.readonly:
            raise StoreReadOnlyError(f"{action}: {self.path!r} was opened with readonly=True")

    # --------------------------------------------------------- transactions
    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except BaseException:  # e.g. disk full: leave no transaction open
                    if self.conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self.conn.execute("ROLLBACK")
                    raise
            else:
                # Also on KeyboardInterrupt: leave nothing half-written.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")

    def _transaction(self) -> "ResultStore._Tx":
        return ResultStore._Tx(self._conn)

    # ------------------------------------------------------------ lifecycle
    def checkpoint(self, mode: Literal["PASSIVE", "FULL", "TRUNCATE"] = "TRUNCATE") -> bool:
        """Copies the WAL's committed rows into the main file; whether all of them made it.

        A no-op (``True``) outside WAL mode and for read-only stores. ``PASSIVE`` never waits
        for other connections; ``TRUNCATE`` also empties the ``-wal`` file when it can.
        """
        if self.readonly or self.journal_mode != "wal" or self._conn is None:
            return True
        if mode not in ("PASSIVE", "FULL", "TRUNCATE"):
            raise ValueError(f"checkpoint mode must be PASSIVE, FULL or TRUNCATE, got {mode!r}")
        with self._guard("checkpoint"):
            busy, log, done = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return not busy and (log == done or log == -1)

    def close(self) -> None:
        """Checkpoint (WAL mode) and close the database connection (idempotent).

        After a clean close the main file holds every row, so it can be copied alone.
        """
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                if not self.readonly and self.journal_mode == "wal" and not conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # e.g. locked: rows stay in the WAL
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
                self._conn = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({self.path!r})"

    def __len__(self) -> int:
        with self._guard("count rows"):
            return int(self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def _tol(self, proxy: str) -> tuple[float, float]:
        if proxy in self._tolerance:
            return self._tolerance[proxy]
        return self._tolerance.get("*", DEFAULT_TOLERANCE)

    def _same(self, proxy: str, old: tuple, new: tuple) -> tuple[bool, bool]:
        """(same score, only within tolerance) for stored ``(value, reason)`` pairs."""
        (a, ra), (b, rb) = old, new
        if ra != rb:
            return False, False
        if a == b:  # also None == None (NaN)
            return True, False
        if a is None or b is None or not isinstance(a, float) or not isinstance(b, float):
            return False, False
        if math.isinf(a) or math.isinf(b):
            return False, False
        rtol, atol = self._tol(proxy)
        close = abs(a - b) <= atol + rtol * max(abs(a), abs(b))
        return close, close

    # --------------------------------------------------------------- writes
    def put(self, record: Record, *, on_conflict: OnConflict = "raise") -> bool:
        """Store one record; returns whether a new row was inserted.

        See :meth:`put_many` for ``on_conflict``.
        """
        return self.put_many([record], on_conflict=on_conflict) == 1

    def put_many(self, records: Iterable[Record], *,
                 on_conflict: OnConflict = "raise") -> int:
        """Store records atomically: all of them, or (on error) none.

        Writing a record whose key is already stored with the same value (within the proxy's
        tolerance, see the module docstring) and reason is a no-op (puts are idempotent). A key
        stored with a *different* value or reason is a conflict, handled per ``on_conflict``:
        ``"raise"`` (default) raises :class:`ConflictError` and rolls back the whole call,
        ``"ignore"`` keeps the stored row, ``"replace"`` overwrites it. A stored row that fails
        its checksum is always replaced (and kept in the ``damaged`` table).

        Returns:
          The number of rows inserted or replaced.

        Raises:
          ConflictError, StoreLockedError, StoreReadOnlyError, StoreCorruptError.
        """
        if on_conflict not in ("raise", "ignore", "replace"):
            raise ValueError(f"on_conflict must be 'raise', 'ignore' or 'replace', got {on_conflict!r}")
        self._writable("put_many")
        now = time.time()
        rows = [_to_row(r, now) for r in records]
        with self._guard("write scores"), self._transaction():
            inserted, _, _ = self._insert_rows(rows, on_conflict, source=None)
        return inserted

    def _insert_rows(self, rows: Iterable[tuple], on_conflict: OnConflict,
                     source: str | None) -> tuple[int, int, int]:
        """Insert checked rows in the current transaction; (inserted, duplicates, tolerated)."""
        c = self._conn
        cols = ", ".join(_ROW_COLUMNS)
        insert = (f"INSERT INTO scores ({cols}) VALUES ({','.join('?' * len(_ROW_COLUMNS))}) "
                  "ON CONFLICT DO NOTHING")
        key_where = " AND ".join(f"{k}=?" for k in _KEY_COLUMNS)
        lookup = f"SELECT {cols} FROM scores WHERE {key_where}"
        replace = (f"UPDATE scores SET value=?, reason=?, seconds=?, created=?, checksum=? "
                   f"WHERE {key_where}")
        rows = list(rows)
        if not rows:
            return 0, 0, 0
        nkey = len(_KEY_COLUMNS)
        # Fast path: bulk insert; rows whose key exists are skipped by SQLite.
        new = c.executemany(insert, rows).rowcount
        if new == len(rows):
            return new, 0, 0
        # Some keys existed: compare every row with what is stored now (rows
        # inserted just above compare equal to themselves).
        same = replaced = tolerated = 0
        for row in rows:
            old = c.execute(lookup, row[:nkey]).fetchone()
            if old is None:  # pragma: no cover - the insert above only skips existing keys
                c.execute(insert, row)
                replaced += 1
                continue
            if not _row_ok(old):
                self._move_damaged(old, "replaced by a recomputed score")
                c.execute(insert, row)
                replaced += 1
                continue
            equal, close = self._same(row[_PROXY], (old[_VALUE], old[_REASON]),
                                      (row[_VALUE], row[_REASON]))
            if equal:
                same += 1
                tolerated += close
                continue
            if on_conflict == "ignore":
                continue
            if on_conflict == "replace":
                c.execute(replace, row[_VALUE:] + row[:nkey])
                replaced += 1
                continue
            where = f" (from {source!r})" if source else ""
            key = cap(repr(dict(zip(_KEY_COLUMNS, row[:nkey]))), 400)
            rtol, atol = self._tol(row[_PROXY])
            raise ConflictError(
                f"conflicting score for key {key}{where}: "
                f"stored value={_fmt(old[_VALUE])} reason={cap(repr(old[_REASON]))}, "
                f"new value={_fmt(row[_VALUE])} reason={cap(repr(row[_REASON]))} "
                f"(tolerance for {cap(row[_PROXY], 60)}: rtol={rtol:g}, atol={atol:g})")
        return new + replaced, same - new, tolerated

    def _move_damaged(self, row: Sequence[Any], note: str) -> None:
        """Copies a damaged row to the ``damaged`` table and deletes it (in a transaction)."""
        c = self._conn
        c.execute(f"INSERT INTO damaged VALUES ({','.join('?' * (len(_ROW_COLUMNS) + 2))})",
                  _storable(row) + (time.time(), note))
        c.execute(f"DELETE FROM scores WHERE {' AND '.join(f'{k} IS ?' for k in _KEY_COLUMNS)}",
                  tuple(row[:len(_KEY_COLUMNS)]))

    def _source_rows(self, src_path: str, batch_size: int) -> Iterator[list[tuple]]:
        """Checked rows of another store file (schema 1 or 2), opened read-only."""
        src = ResultStore.__new__(ResultStore)
        src.path, src.timeout, src.readonly, src.journal_mode = src_path, self.timeout, True, "wal"
        src._conn = None
        src._check_file()
        src._conn = src._connect()
        try:
            with src._guard("read a store to merge"):
                tables = {r[0] for r in src._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
                if "meta" not in tables:
                    raise SchemaVersionError(f"{src_path!r} is not a zcjax result store")
                version = _check_meta(src._conn, src_path)
                cols = _V1_COLUMNS if version == 1 else _ROW_COLUMNS
                cur = src._conn.execute(f"SELECT {', '.join(cols)} FROM scores")
                while True:
                    batch = cur.fetchmany(batch_size)
                    if not batch:
                        break
                    if version == 1:
                        yield [_upgrade_v1_row(r) for r in batch]
                        continue
                    bad = [r for r in batch if not _row_ok(r)]
                    if bad:
                        raise DamagedRowError(
                            f"{src_path!r} has damaged rows (e.g. "
                            f"{cap(repr(dict(zip(_COLUMNS, bad[0]))), 300)}); run `python -m "
                            f"zcjax.sweep.store_cli integrity --repair {src_path}` before "
                            "merging it")
                    yield batch
        finally:
            src._conn.close()

    def merge_from(self, other_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                   *, on_conflict: OnConflict = "raise",
                   batch_size: int = 10_000) -> MergeResult:
        """Copy every score of other store files into this one.

        Intended for multi-host sweeps, where each process writes its own
        file. Rows already present with the same value (within tolerance) and
        reason are skipped; conflicting rows raise :class:`ConflictError`
        (default) or follow ``on_conflict`` as in :meth:`put_many`. The whole
        merge is one transaction: on error nothing is merged. Source rows keep
        their ``seconds`` and ``created`` columns. Sources are opened
        read-only and never modified; schema-1 sources are read as they are
        (their rows get proxy version 1), so this also upgrades a copy of an
        old store. A source with damaged rows is refused.

        Returns:
          A :class:`MergeResult` with counts of inserted and duplicate rows.
        """
        self._writable("merge_from")
        if isinstance(other_paths, (str, os.PathLike)):
            other_paths = [other_paths]
        sources = [os.fspath(p) for p in other_paths]
        for src in sources:
            if not os.path.exists(src):
                raise FileNotFoundError(src)
            if self.path != ":memory:" and os.path.exists(self.path) and os.path.samefile(src, self.path):
                raise ValueError(f"cannot merge {src!r} into itself")
        total_ins = total_dup = total_tol = 0
        with self._guard("merge stores"), self._transaction():
            for src_path in sources:
                for batch in self._source_rows(src_path, batch_size):
                    ins, dup, tol = self._insert_rows(batch, on_conflict, source=src_path)
                    total_ins += ins
                    total_dup += dup
                    total_tol += tol
        for src_path in sources:  # their setting notes too (schema-1 stores have none)
            try:
                with ResultStore(src_path, readonly=True) as src:
                    notes = src.setting_notes()
            except StoreError:
                notes = {}
            for (kind, key), fields in notes.items():
                self.note_setting(kind, key, fields)
        return MergeResult(total_ins, total_dup, total_tol)

    # ------------------------------------------------------------ setting notes
    def note_setting(self, kind: str, key: str, fields: Mapping[str, Any]) -> None:
        """Records what a stored hash stands for (``kind``: ``"config"`` or ``"batch"``).

        The scores are keyed by hashes; a note keeps the settings behind them (the space and
        network fields of a config hash, the data set, split, size and seed of a batch hash),
        so that an analysis can list what a store holds without guessing. The first note of a
        hash wins; notes are descriptions only (no score depends on them).
        """
        if kind not in ("config", "batch"):
            raise ValueError(f"kind must be 'config' or 'batch', got {cap(repr(kind))}")
        text = json.dumps(dict(fields), sort_keys=True, default=_json_default)
        with self._guard("record a setting"), self._transaction():
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                               (f"note:{kind}:{key}", text))

    def setting_notes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(kind, hash): fields}`` of every :meth:`note_setting` in the store."""
        rows = self._conn.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'note:%'").fetchall()
        out = {}
        for key, value in rows:
            _, kind, hash_ = key.split(":", 2)
            try:
                out[(kind, hash_)] = json.loads(value)
            except ValueError:  # a damaged note: descriptions only, never fatal
                out[(kind, hash_)] = {"note": "unreadable"}
        return out

    def spill(self, records: Iterable[Record]) -> str:
        """Writes records to a side file next to the store (see :mod:`zcjax.sweep.spill`).

        For records that were computed but could not be stored; the next :meth:`merge_spills`
        (every sweep starts with one) moves them into the store. Returns the file's path.
        """
        if self.path == ":memory:":
            raise StoreError("an in-memory store has no side files to spill to")
        now = time.time()
        return spill.write_spill(self.path, [_to_row(r, now) for r in records])

    def pending_spills(self) -> list[str]:
        """Spill files of computed scores not yet merged into the store."""
        return [] if self.path == ":memory:" else spill.spill_files(self.path)

    def merge_spills(self) -> int:
        """Moves the scores of every pending spill file into the store; rows inserted.

        Each file is merged in one transaction and deleted only after its commit, so a crash
        or a lock at any point loses nothing (a file merged twice only finds duplicates).

        Raises:
          StoreLockedError: the store is still locked (the files stay for the next try).
          spill.SpillError, DamagedRowError, ConflictError: a file that cannot be merged (kept).
        """
        self._writable("merge_spills")
        inserted = 0
        for path in self.pending_spills():
            rows = spill.read_spill(path)
            bad = [r for r in rows if not _row_ok(r)]
            if bad:
                raise DamagedRowError(f"{path}: {len(bad)} spilled rows fail their checksum; "
                                      "the file is kept, inspect or delete it")
            with self._guard("merge spilled scores"), self._transaction():
                ins, _, _ = self._insert_rows(rows, "raise", source=path)
            inserted += ins
            os.unlink(path)
        return inserted

    # --------------------------------------------------------------- backup
    def _backup_to(self, dest: str, journal: str) -> int:
        """Online-backup API copy to ``dest`` (atomically renamed in place); its row count."""
        folder = os.path.dirname(os.path.abspath(dest))
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            out = sqlite3.connect(tmp, isolation_level=None)
            try:
                self._conn.backup(out)
                out.execute(f"PRAGMA journal_mode={journal}")
                problems = [r[0] for r in out.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise StoreCorruptError(f"the backup of {self.path!r} fails SQLite's check: "
                                            f"{cap('; '.join(problems))}")
                rows = int(out.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
            finally:
                out.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        finally:
            for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        return rows

    def backup(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> int:
        """Writes a self-contained, consistent copy of the store to ``path``; its row count.

        Uses SQLite's online backup API, so it is safe while sweeps write to the store, and
        the copy holds every committed row (also those still in the ``-wal`` file) in one file
        (rollback journal, no ``-wal`` to carry along). The copy is written under a temporary
        name and renamed, so ``path`` is never a half-written file. Spill files (scores waiting
        to be merged) are not part of the store: merge them first (:meth:`merge_spills`).

        Raises:
          FileExistsError: ``path`` exists and ``overwrite`` is false.
          ValueError: ``path`` is the store itself.
        """
        dest = os.fspath(path)
        if os.path.exists(dest):
            if self.path != ":memory:" and os.path.samefile(dest, self.path):
                raise ValueError(f"cannot back up {self.path!r} onto itself")
            if not overwrite:
                raise FileExistsError(f"{dest!r} exists; pass overwrite=True to replace it")
        with self._guard("back up the store"):
            return self._backup_to(dest, journal="delete")

    # ------------------------------------------------------------ integrity
    def verify(self, *, repair: bool = False, limit: int = 1000) -> IntegrityReport:
        """Checks every row's checksum and SQLite's own structure (``PRAGMA integrity_check``).

        Args:
          repair: move damaged rows to the ``damaged`` table (one transaction; the table is
            rebuilt from the rows that pass, so a damaged key cannot hide in the index), so
            that a rerun of the sweep recomputes exactly those scores.
          limit: how many damaged rows the report lists (all are counted).

        Raises:
          StoreCorruptError: SQLite cannot read the rows at all (the message says how to
            salvage them).
        """
        if repair:
            self._writable("repair")
        damaged: list[dict] = []
        damaged_rows: list[tuple] = []
        n = bad = 0
        with self._guard("check the store"):
            problems = [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check")]
            problems = [] if problems == ["ok"] else problems
            cur = self._conn.execute(f"SELECT {', '.join(_ROW_COLUMNS)} FROM scores")
            for row in cur:
                n += 1
                if _row_ok(row):
                    continue
                bad += 1
                if len(damaged) < limit:
                    damaged.append(dict(zip(_ROW_COLUMNS, row)))
                if repair:
                    damaged_rows.append(tuple(row))
        repaired = 0
        if repair and (damaged_rows or problems):
            with self._guard("repair the store"), self._transaction():
                c = self._conn
                c.execute(_SCORES_TABLE.format(name="scores_rebuilt"))
                c.execute(_DAMAGED_TABLE)
                insert = (f"INSERT INTO scores_rebuilt VALUES "
                          f"({','.join('?' * len(_ROW_COLUMNS))}) ON CONFLICT DO NOTHING")
                cur = c.execute(f"SELECT {', '.join(_ROW_COLUMNS)} FROM scores")
                now = time.time()
                while True:
                    batch = cur.fetchmany(10_000)
                    if not batch:
                        break
                    good = [r for r in batch if _row_ok(r)]
                    c.executemany(insert, good)
                    for r in batch:
                        if not _row_ok(r):
                            c.execute("INSERT INTO damaged VALUES "
                                      f"({','.join('?' * (len(_ROW_COLUMNS) + 2))})",
                                      _storable(r) + (now, "checksum mismatch (verify)"))
                            repaired += 1
                c.execute("DROP TABLE scores")
                c.execute("ALTER TABLE scores_rebuilt RENAME TO scores")
            problems = [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check")]
            problems = [] if problems == ["ok"] else problems
        return IntegrityReport(rows=n, damaged=damaged, damaged_count=bad,
                               sqlite_problems=problems, repaired=repaired,
                               spill_files=self.pending_spills())

    # ---------------------------------------------------------------- reads
    def _current(self, proxy: str, version: int | None) -> int:
        return proxy_version(proxy) if version is None else check_int(version, "proxy_version", 1)

    def get(self, space: str, arch: str, proxy: str, config_hash: str, seed: int,
            batch_hash: str, *, proxy_version: int | None = None) -> Record | None:
        """The stored record for a key (the proxy's current version by default), or ``None``.

        Raises:
          DamagedRowError: the row fails its checksum.
        """
        version = self._current(proxy, proxy_version)
        with self._guard("read a score"):
            row = self._conn.execute(
                f"SELECT {', '.join(_ROW_COLUMNS)} FROM scores WHERE "
                + " AND ".join(f"{k}=?" for k in _KEY_COLUMNS),
                (space, arch, proxy, version, config_hash, int(seed), batch_hash)).fetchone()
        return None if row is None else _from_row(self._checked(row))

    def has(self, space: str, arch: str, proxy: str, config_hash: str, seed: int,
            batch_hash: str, *, proxy_version: int | None = None) -> bool:
        """Whether a score (possibly NaN) is stored for the key (current proxy version)."""
        version = self._current(proxy, proxy_version)
        with self._guard("read a score"):
            return self._conn.execute(
                "SELECT 1 FROM scores WHERE " + " AND ".join(f"{k}=?" for k in _KEY_COLUMNS),
                (space, arch, proxy, version, config_hash, int(seed), batch_hash)
            ).fetchone() is not None

    def _checked(self, row: Sequence[Any]) -> Sequence[Any]:
        if not _row_ok(row):
            raise DamagedRowError(
                f"{self.path!r}: a stored row fails its checksum (it changed on disk): "
                f"{cap(repr(dict(zip(_COLUMNS, row))), 300)}. Run `python -m "
                f"zcjax.sweep.store_cli integrity --repair {self.path}`, then rerun the sweep "
                "to recompute exactly the damaged scores")
        return row

    def stored_proxies(self, space: str, config_hash: str, batch_hash: str,
                       proxies: Iterable[str] | None = None, *,
                       versions: Mapping[str, int] | None = None
                       ) -> dict[tuple[str, int], set[str]]:
        """Which proxies are stored for each ``(arch, seed)`` of one sweep setting.

        One indexed query (the primary key starts with ``space, config_hash,
        batch_hash``), optionally restricted to ``proxies``. Only rows of each
        proxy's current version count (``versions`` overrides it per proxy),
        and damaged rows (failed checksum) do not count: a resumed sweep
        recomputes them (a :class:`DamagedRowsWarning` says how many).

        Returns:
          ``{(arch, seed): {proxy, ...}}`` for every pair with at least one
          stored score (NaN scores count as stored).
        """
        sql = (f"SELECT {', '.join(_ROW_COLUMNS)} FROM scores "
               "WHERE space=? AND config_hash=? AND batch_hash=?")
        params: list[Any] = [space, config_hash, batch_hash]
        wanted: dict[str, str] | None = None
        if proxies is not None:
            wanted = {p: p for p in proxies}  # also canonicalises the strings
            if len(wanted) <= _MAX_IN_PARAMS:
                sql += f" AND proxy IN ({','.join('?' * len(wanted))})"
                params += list(wanted)
        current: dict[str, int] = dict(versions or {})
        out: dict[tuple[str, int], set[str]] = {}
        damaged = 0
        arch_i, seed_i, ver_i = (_COLUMNS.index(c) for c in ("arch", "seed", "proxy_version"))
        with self._guard("read stored scores"):
            for row in self._conn.execute(sql, params):
                proxy = row[_PROXY]
                if wanted is not None:
                    proxy = wanted.get(proxy)
                    if proxy is None:
                        continue
                if proxy not in current:
                    current[proxy] = proxy_version(proxy)
                if row[ver_i] != current[proxy]:
                    continue
                if not _row_ok(row):
                    damaged += 1
                    continue
                out.setdefault((row[arch_i], row[seed_i]), set()).add(proxy)
        if damaged:
            warnings.warn(DamagedRowsWarning(
                f"{self.path}: {damaged} stored rows fail their checksum and count as missing: "
                "the sweep recomputes them (the damaged rows are kept in the 'damaged' table); "
                "`python -m zcjax.sweep.store_cli integrity` lists them"), stacklevel=2)
        return out

    def missing(self, space: str, config_hash: str, batch_hash: str,
                archs: Iterable[str], proxies: Sequence[str],
                seeds: Iterable[int]) -> list[tuple[str, int, tuple[str, ...]]]:
        """Which ``archs x seeds x proxies`` scores are not stored yet (current versions).

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

    def _select(self, filters: Mapping[str, Any], columns: Sequence[str] = _ROW_COLUMNS,
                order: bool = True, verify: bool = True) -> Iterator[tuple]:
        unknown = set(filters) - set(_KEY_COLUMNS)
        if unknown:
            raise TypeError(f"unknown filter(s) {sorted(unknown)}; allowed: {list(_KEY_COLUMNS)}")
        if verify:
            columns = tuple(columns) + tuple(c for c in _ROW_COLUMNS if c not in columns)
            positions = [columns.index(c) for c in _ROW_COLUMNS]
        where, params, post = [], [], []
        for col in _KEY_COLUMNS:
            vals = _as_tuple(filters.get(col))
            if vals is None:
                continue
            if col in ("seed", "proxy_version"):
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
            sql += " ORDER BY space, config_hash, batch_hash, proxy, proxy_version, arch, seed"
        with self._guard("read scores"):
            for row in self._conn.execute(sql, params):
                if verify:
                    self._checked([row[i] for i in positions])
                if all(row[i] in s for i, s in post):
                    yield row

    def records(self, **filters: Any) -> Iterator[Record]:
        """Iterate over stored :class:`Record` s matching the filters (checksums verified).

        Filters are key columns (``space, arch, proxy, proxy_version,
        config_hash, seed, batch_hash``), each a single value or a collection
        of values. Every proxy version is returned unless ``proxy_version`` is
        given.

        Raises:
          DamagedRowError: on a row that fails its checksum.
        """
        for row in self._select(filters):
            yield _from_row(row)

    def to_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Stored rows matching the filters as plain dicts (pandas-free).

        Each dict has the keys ``space, arch, proxy, proxy_version,
        config_hash, seed, batch_hash, value, reason, seconds, created``; NaN
        scores have ``value=float('nan')``. ``pandas.DataFrame(store.to_records())``
        gives a data frame. See :meth:`records` for the filters.
        """
        return [r.as_dict() for r in self.records(**filters)]

    def count(self, **filters: Any) -> int:
        """Number of stored rows matching the filters (not verified; see :meth:`verify`)."""
        return sum(1 for _ in self._select(filters, columns=_KEY_COLUMNS, order=False,
                                           verify=False))

    def export_csv(self, path: str | os.PathLike[str], **filters: Any) -> int:
        """Write matching rows to a CSV file (header + one row per score).

        Columns: ``space, arch, seed, proxy, value, reason, config_hash,
        batch_hash, seconds, created, proxy_version``. NaN values are written
        as ``nan`` (read back as NaN by ``float()``, numpy and pandas). Floats
        use Python's shortest round-trip representation, so no precision is
        lost. Text cells that a spreadsheet would run as a formula (starting
        with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are written
        with a leading ``'``. Checksums are verified (:class:`DamagedRowError`).

        Returns:
          The number of data rows written.
        """
        cols = ("space", "arch", "seed", "proxy", "value", "reason", "config_hash",
                "batch_hash", "seconds", "created", "proxy_version")
        text = {cols.index(c) for c in ("space", "arch", "proxy", "reason", "config_hash",
                                        "batch_hash")}
        idx = [_ROW_COLUMNS.index(c) for c in cols]
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
                for i in text:
                    if isinstance(out[i], str):
                        out[i] = _csv_text(out[i])
                w.writerow(out)
                n += 1
        return n

    def scores(self, space: str, proxy: str, config_hash: str | None = None,
               batch_hash: str | None = None, *, archs: Iterable[str] | None = None,
               seeds: Sequence[int] | None = None,
               proxy_version: int | None = None) -> dict[str, np.ndarray]:
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
          proxy_version: which version of the proxy (default: its current
            one, so scores of an outdated definition are never mixed in).

        Returns:
          ``{arch: float64 array}`` in sorted ``arch`` order.

        Raises:
          ValueError: if ``config_hash``/``batch_hash`` is ``None`` and the
            matching rows span several values of it.
          DamagedRowError: a matching row fails its checksum.
        """
        filters: dict[str, Any] = {"space": space, "proxy": proxy,
                                   "proxy_version": self._current(proxy, proxy_version)}
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
        rows = [r[:len(cols)] for r in self._select(filters, columns=cols, order=False)]
        for arch, seed, value, ch, bh in sorted(rows, key=lambda r: (r[0], r[1])):
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


def _decode_text(raw: bytes) -> str:
    """SQLite TEXT as str; bytes that are not UTF-8 (damage) survive as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


def _storable(row: Sequence[Any]) -> tuple:
    """A damaged row as SQLite can store it: text that is no longer UTF-8 becomes a BLOB."""
    out = []
    for v in row:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                v = v.encode("utf-8", "surrogateescape")
        out.append(v)
    return tuple(out)


def _upgrade_v1_row(row: Sequence[Any]) -> tuple:
    """A schema-1 row (no version, no checksum) as a schema-2 row of proxy version 1."""
    d = dict(zip(_V1_COLUMNS, row))
    d["proxy_version"] = 1
    new = tuple(d[c] for c in _COLUMNS)
    return new + (_checksum(new),)


def _check_meta(conn: sqlite3.Connection, path: str) -> int:
    """The schema version of a store (1 or 2); raises for anything else."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != _FORMAT:
        raise SchemaVersionError(f"{path!r} is not a zcjax result store "
                                 f"(format={cap(repr(meta.get('format')))})")
    version = meta.get("schema_version")
    if version not in ("1", str(SCHEMA_VERSION)):
        raise SchemaVersionError(
            f"{path!r} has result-store schema version {cap(str(version))}, but this zcjax "
            f"reads versions 1 and {SCHEMA_VERSION}; use the zcjax version that wrote it, or "
            "export it to CSV there and re-import")
    return int(version)


def _fmt(v: float | None) -> str:
    return "nan" if v is None else repr(v)
