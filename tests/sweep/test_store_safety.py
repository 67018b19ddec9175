"""What the result store does when copied, killed, damaged, locked, read-only or upgraded
(issue #11, items 2, 3, 6 and 8).

The corruption trials write random bytes into data pages of a store file; CI runs
``ZCJAX_CORRUPTION_TRIALS`` of them (default 40), the issue's full run is 300.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from zcjax import proxies as proxies_lib
from zcjax.sweep import filesystem, store_cli
from zcjax.sweep.runner import ScoresSpilledError, make_tasks, run_resumable
from zcjax.sweep.store import (
    ConflictError,
    DamagedRowError,
    DamagedRowsWarning,
    Record,
    ResultStore,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CH, BH = "c" * 16, "b" * 16
TRIALS = int(os.environ.get("ZCJAX_CORRUPTION_TRIALS", "40"))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def rec(arch: str, seed: int, proxy: str, value: float, reason: str | None = None,
        **kw) -> Record:
    return Record("nb201", arch, proxy, CH, seed, BH, value, reason, seconds=0.5, **kw)


def fill(store: ResultStore, n_archs: int = 20, seeds=(0, 1), proxies=("synflow", "snip")):
    store.put_many([rec(f"arch{a:03d}", s, p, a + s / 10 + len(p))
                    for a in range(n_archs) for s in seeds for p in proxies])


def value_of(t, proxy: str) -> float:
    return float(len(t.arch) * 100 + t.seed * 10 + len(proxy))


class Compute:
    def __init__(self):
        self.calls = []

    def __call__(self, chunk):
        self.calls.append([(t.arch, t.seed, t.proxies) for t in chunk])
        return [t.record(p, value_of(t, p)) for t in chunk for p in t.proxies]

    @property
    def computed(self):
        return [x for c in self.calls for x in c]


# -- item 2: copies, checkpoints, backups, empty files, journal modes ---------------------------

def test_close_checkpoints_so_the_main_file_alone_is_complete(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s)
        n = len(s)
    wal = tmp_path / "s.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy" / "s.sqlite"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)  # the main file only
    with ResultStore(copy, readonly=True) as c:
        assert len(c) == n == 80


def test_backup_is_self_contained_and_consistent_while_rows_are_in_the_wal(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        s._conn.execute("PRAGMA wal_autocheckpoint=0")  # keep every commit in the -wal file
        fill(s)
        assert (tmp_path / "s.sqlite-wal").stat().st_size > 0
        rows = s.backup(tmp_path / "b" / "copy.sqlite")
        assert rows == len(s) == 80
        with pytest.raises(FileExistsError):
            s.backup(tmp_path / "b" / "copy.sqlite")
        assert s.backup(tmp_path / "b" / "copy.sqlite", overwrite=True) == 80
        with pytest.raises(ValueError, match="onto itself"):
            s.backup(path, overwrite=True)
    copy = tmp_path / "b" / "copy.sqlite"
    assert sorted(os.listdir(copy.parent)) == ["copy.sqlite"]  # one file, nothing to carry along
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    with ResultStore(copy, readonly=True) as c:
        assert c.to_records() and len(c) == 80


def test_backup_cli(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s)
    assert store_cli.main(["backup", str(path), str(tmp_path / "c.sqlite")]) == 0
    assert "80 rows" in capsys.readouterr().out
    assert store_cli.main(["backup", str(path), str(tmp_path / "c.sqlite")]) == 2
    assert "overwrite" in capsys.readouterr().err
    with ResultStore(tmp_path / "c.sqlite", readonly=True) as c:
        assert len(c) == 80


def test_empty_or_header_only_files_are_reported_not_treated_as_new(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(SchemaVersionError, match="empty file"):
        ResultStore(empty)
    assert empty.stat().st_size == 0  # untouched
    header_only = tmp_path / "header.sqlite"  # what a fresh WAL store copied without -wal was
    conn = sqlite3.connect(header_only)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    assert header_only.stat().st_size == 4096
    with pytest.raises(SchemaVersionError, match="without tables.*-wal"):
        ResultStore(header_only)
    with pytest.raises(SchemaVersionError, match="without tables"):
        ResultStore(header_only, readonly=True)


def test_concurrent_creation_of_one_store(tmp_path):
    path = tmp_path / "new.sqlite"
    barrier, errors = threading.Barrier(8), []

    def worker(i):
        try:
            barrier.wait()
            with ResultStore(path, timeout=30) as s:
                s.put(rec(f"a{i}", 0, "synflow", float(i)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with ResultStore(path) as s:
        assert len(s) == 8
    assert sorted(os.listdir(tmp_path)) == ["new.sqlite"]  # no temporary files left


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 27 0:50 / /content/drive rw,nosuid - fuse.drive drive rw,user_id=0
91 27 0:51 / /mnt/my\\040share rw - nfs4 server:/export rw
92 90 0:52 / /content/drive/local rw - ext4 /dev/vdb rw
"""


def test_filesystem_detection(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    kind = lambda p: filesystem.filesystem_type(p, mountinfo=str(info))  # noqa: E731
    assert kind("/content/drive/MyDrive/zc/scores.sqlite") == "fuse.drive"
    assert kind("/mnt/my share/x") == "nfs4"
    assert kind("/content/drive/local/x") == "ext4"  # a mount inside a mount
    assert kind("/home/u") == "ext4"
    assert filesystem.is_network_filesystem("/content/drive/x", mountinfo=str(info))
    assert not filesystem.is_network_filesystem("/home/u", mountinfo=str(info))
    assert filesystem.filesystem_type("/x", mountinfo=str(tmp_path / "missing")) is None


def test_journal_mode_on_network_file_systems(tmp_path, monkeypatch):
    with ResultStore(tmp_path / "local.sqlite") as s:
        assert s.journal_mode == "wal"
    monkeypatch.setattr(filesystem, "is_network_filesystem", lambda path: True)
    path = tmp_path / "drive.sqlite"
    with ResultStore(path) as s:
        assert s.journal_mode == "delete"
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        fill(s)
        assert not (tmp_path / "drive.sqlite-wal").exists()  # every row in the main file
    with ResultStore(path, journal_mode="wal") as s:  # the user decides
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.setenv("ZCJAX_STORE_JOURNAL", "truncate")
    with ResultStore(path) as s:
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "truncate"
    with pytest.raises(ValueError, match="journal_mode"):
        ResultStore(path, journal_mode="off")


KILL_SCRIPT = r"""
import sys, time
from zcjax.sweep import ResultStore, make_tasks, run_resumable
def compute(chunk):
    time.sleep(0.01 * len(chunk))
    return [t.record(p, float(len(t.arch) + t.seed)) for t in chunk for p in t.proxies]
archs = [f"a{i:04d}" for i in range(2000)]
tasks = make_tasks("fake", archs, [0], ["synflow", "snip"], "c" * 16, "b" * 16)
with ResultStore(sys.argv[1]) as store:
    run_resumable(tasks, compute, store, chunk_size=10, progress=False)
"""


@pytest.mark.slow
def test_copy_of_the_main_file_after_sigkill_is_a_valid_store(tmp_path):
    # Before: every committed row sat in scores.sqlite-wal, and a copy of scores.sqlite alone
    # opened as a valid, empty store. Now the main file is checkpointed after every chunk.
    path = tmp_path / "scores.sqlite"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        if path.exists():
            try:
                conn = sqlite3.connect(path, timeout=5)
                n = conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
                conn.close()
                if n >= 200:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(path, copy)  # without scores.sqlite-wal
    with ResultStore(path, readonly=True) as s:
        full = {(r.arch, r.proxy) for r in s.records()}
    with ResultStore(copy) as c:
        main_only = {(r.arch, r.proxy) for r in c.records()}
    # A valid store with the rows of whole chunks. How far it is behind depends on timing: a
    # checkpoint cannot pass the snapshot of a reader (here the polling loop above).
    assert main_only and main_only <= full
    assert len(main_only) % (10 * 2) == 0


# -- item 3: checksums, integrity, clear errors, locks, read-only stores ------------------------

def test_checksum_is_pinned():
    # Part of the on-disk format: a change would make every stored row "damaged".
    from zcjax.sweep.store import _checksum, _to_row
    row = _to_row(Record("nb201", "|none~0|", "synflow", CH, 3, BH, -0.25, None, 1.5, 1e9), 0.0)
    assert row[-1] == _checksum(row[:-1]) == "788285c50297b355"
    nan = _to_row(Record("s", "a", "p", CH, 0, BH, math.nan, "r\u00e9", None, 2.0), 0.0)
    assert nan[-1] == "8643d45e802629ff"


def tamper(path: Path, sql: str) -> None:
    """Changes rows behind the store's back (a plain SQLite connection: no checksum update)."""
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_changed_value_is_caught_on_read_and_recomputed_by_a_rerun(tmp_path):
    path = tmp_path / "s.sqlite"
    tasks = make_tasks("nb201", [f"arch{a:03d}" for a in range(6)], [0, 1], ["synflow", "snip"],
                       CH, BH)
    with ResultStore(path) as s:
        run_resumable(tasks, Compute(), s, chunk_size=4, progress=False)
    tamper(path, "UPDATE scores SET value = value + 1e-9 WHERE arch='arch003' AND seed=1 "
                 "AND proxy='snip'")
    with ResultStore(path) as s:
        with pytest.raises(DamagedRowError, match="checksum.*integrity --repair"):
            s.scores("nb201", "snip")
        with pytest.raises(DamagedRowError):
            list(s.records())
        with pytest.raises(DamagedRowError):
            s.get("nb201", "arch003", "snip", CH, 1, BH)
        with pytest.raises(DamagedRowError):
            s.export_csv(tmp_path / "x.csv")
        report = s.verify()
        assert report.damaged_count == 1 and not report.ok and report.rows == 24
        assert report.damaged[0]["arch"] == "arch003" and "--repair" in str(report)
        # A rerun recomputes exactly the damaged score and replaces it.
        compute = Compute()
        with pytest.warns(DamagedRowsWarning, match="1 stored rows"):
            summary = run_resumable(tasks, compute, s, chunk_size=4, progress=False)
        assert compute.computed == [("arch003", 1, ("snip",))]
        assert summary.scores_written == 1
        assert s.verify().ok
        assert s.scores("nb201", "snip")["arch003"].tolist() == [704.0, 714.0]
        kept = s._conn.execute("SELECT arch, seed, proxy, note FROM damaged").fetchall()
        assert kept == [("arch003", 1, "snip", "replaced by a recomputed score")]


def test_integrity_cli_repair_then_rerun_recomputes_exactly_the_damaged_rows(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    tasks = make_tasks("nb201", [f"arch{a:03d}" for a in range(5)], [0], ["synflow"], CH, BH)
    with ResultStore(path) as s:
        run_resumable(tasks, Compute(), s, chunk_size=2, progress=False)
    tamper(path, "UPDATE scores SET arch='arch999' WHERE arch='arch001'")  # a damaged key
    tamper(path, "UPDATE scores SET seconds=7 WHERE arch='arch004'")
    assert store_cli.main(["integrity", str(path)]) == 1
    out = capsys.readouterr().out
    assert "2 damaged rows" in out and "arch999" in out
    assert store_cli.main(["integrity", "--repair", str(path)]) == 1
    assert "2 damaged rows moved" in capsys.readouterr().out
    assert store_cli.main(["integrity", str(path)]) == 0
    assert "no damage found" in capsys.readouterr().out
    compute = Compute()
    with ResultStore(path) as s:
        run_resumable(tasks, compute, s, chunk_size=2, progress=False)
        assert sorted(a for a, _, _ in compute.computed) == ["arch001", "arch004"]
        assert {r.arch for r in s.records()} == {f"arch{a:03d}" for a in range(5)}


def _trial_store(path: Path) -> dict:
    rng = random.Random(0)
    recs = [rec(f"|nor_conv_3x3~0|+|arch{a:03d}|", s, p,
                math.nan if rng.random() < 0.05 else rng.uniform(-10, 10))
            for a in range(60) for s in range(4) for p in ("synflow", "snip", "nwot")]
    recs = [dataclasses.replace(r, reason="fake") if r.is_nan else r for r in recs]
    with ResultStore(path) as s:
        s.put_many(recs)
        return {r.store_key: r for r in s.records()}


def _same_record(a: Record, b: Record) -> bool:
    return all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(dataclasses.astuple(a), dataclasses.astuple(b)))


def test_random_bytes_in_data_pages_never_read_back_silently(tmp_path):
    # Before: 83 of 300 trials read back different data with no error (14 with changed scores).
    base = tmp_path / "base.sqlite"
    ref = _trial_store(base)
    page = 4096
    pages = base.stat().st_size // page
    rng = random.Random(1)
    outcomes: dict[str, int] = {}
    for _ in range(TRIALS):
        path = tmp_path / "t.sqlite"
        shutil.copyfile(base, path)
        offset = rng.randrange(1, pages) * page + rng.randrange(0, page - 8)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(bytes(rng.randrange(256) for _ in range(8)))
        try:
            with ResultStore(path, readonly=True) as s:
                got = {r.store_key: r for r in s.records()}
            assert got.keys() == ref.keys(), "rows changed or vanished without an error"
            assert all(_same_record(got[k], ref[k]) for k in ref), "values changed silently"
            kind = "unchanged"
        except StoreError as e:  # DamagedRowError, StoreCorruptError: clear, with what to do
            assert "integrity" in str(e) or "restore" in str(e), str(e)
            kind = type(e).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(f"\n{TRIALS} corruption trials: {outcomes}")
    assert sum(v for k, v in outcomes.items() if k != "unchanged") > TRIALS // 3


def test_locked_store_gives_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s, 2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with ResultStore(path, timeout=0.05) as s:
            with pytest.raises(StoreLockedError, match="locked by another process.*timeout"):
                s.put(rec("x", 0, "synflow", 1.0))
            assert len(s) == 8  # reading still works
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_locked_store_never_loses_a_computed_chunk(tmp_path):
    path = tmp_path / "s.sqlite"
    tasks = make_tasks("nb201", [f"arch{a:03d}" for a in range(6)], [0, 1], ["synflow"], CH, BH)
    with ResultStore(path) as s:
        run_resumable(tasks[:4], Compute(), s, chunk_size=4, progress=False)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # e.g. an SQLite browser with a write open
    compute = Compute()
    try:
        with ResultStore(path, timeout=0.05) as s:
            with pytest.warns(UserWarning, match="went to"), \
                    pytest.raises(ScoresSpilledError, match="8 computed scores are safe") as info:
                run_resumable(tasks, compute, s, chunk_size=4, progress=False,
                              write_retries=1, retry_wait_s=0.01)
            assert info.value.summary.spilled == 8 and not info.value.summary.complete
            assert len(info.value.files) == 2 and len(s) == 4
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(compute.computed) == 8
    # The next run merges the side files first and computes nothing.
    again = Compute()
    with ResultStore(path) as s:
        summary = run_resumable(tasks, again, s, chunk_size=4, progress=False)
        assert again.calls == [] and summary.tasks_skipped == 12 and summary.complete
        assert len(s) == 12 and s.verify().ok and not s.pending_spills()


def test_lock_released_during_the_sweep_merges_spills_at_the_end(tmp_path):
    path = tmp_path / "s.sqlite"
    tasks = make_tasks("nb201", ["a", "b", "c"], [0], ["synflow"], CH, BH)
    with ResultStore(path) as s:
        s.put(rec("z", 0, "synflow", 0.0))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def compute(chunk):
        if chunk[0].arch == "b" and holder.in_transaction:
            holder.execute("ROLLBACK")  # the other program lets go
        return Compute()(chunk)

    with ResultStore(path, timeout=0.05) as s, pytest.warns(UserWarning, match="went to"):
        summary = run_resumable(tasks, compute, s, chunk_size=1, progress=False,
                                write_retries=0)
        assert summary.complete and len(s) == 4 and not s.pending_spills()
    holder.close()


def test_corrupt_page_gives_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s, 200)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # overwrite the interior pages of the table's b-tree
        f.seek(4096)
        f.write(b"\xff" * (size - 8192))
    with pytest.raises(StoreCorruptError, match="damaged.*store_cli integrity.*recover"):
        with ResultStore(path) as s:
            list(s.records())
    assert store_cli.main(["integrity", str(path)]) in (1, 2)


def test_readonly_store_opens_for_analysis_and_refuses_writes(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s, 3)
    compute = Compute()
    with ResultStore(path, readonly=True) as s:
        assert len(s) == 12 and s.scores("nb201", "snip")
        with pytest.raises(StoreReadOnlyError, match="readonly=True"):
            s.put(rec("x", 0, "synflow", 1.0))
        tasks = make_tasks("nb201", ["new"], [0], ["synflow"], CH, BH)
        with pytest.raises(StoreReadOnlyError, match="nothing was computed"):
            run_resumable(tasks, compute, s, chunk_size=1, progress=False)
    assert compute.calls == []
    with pytest.raises(FileNotFoundError):
        ResultStore(tmp_path / "missing.sqlite", readonly=True)


def test_readonly_file_is_refused_at_open_not_after_a_chunk(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as s:
        fill(s, 1)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(path)
                        and mode & os.W_OK else real_access(p, mode, **kw))
    with pytest.raises(StoreReadOnlyError, match="read-only.*readonly=True"):
        ResultStore(path)
    with ResultStore(path, readonly=True) as s:
        assert len(s) == 4


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_readonly_file_and_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "s.sqlite"
    with ResultStore(path) as s:
        fill(s, 1)
    path.chmod(0o444)
    with pytest.raises(StoreReadOnlyError):
        ResultStore(path)
    folder.chmod(0o555)
    try:
        with ResultStore(path, readonly=True) as s:
            assert len(s) == 4 and s.verify().ok
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


# -- item 6: conflict tolerance, proxy versions, schema upgrade ---------------------------------

def test_route_rounding_is_not_a_conflict(tmp_path):
    eager, supernet = 8.49417495727539, 8.494175910949707  # the two routes, same cell
    a, b = tmp_path / "eager.sqlite", tmp_path / "supernet.sqlite"
    with ResultStore(a) as s:
        s.put(rec("cell", 0, "synflow", eager))
    with ResultStore(b) as s:
        s.put(rec("cell", 0, "synflow", supernet))
        s.put(rec("other", 0, "zico", 100.0))
    with ResultStore(tmp_path / "m.sqlite") as m:
        m.merge_from([a])
        result = m.merge_from([b])  # before: ConflictError
        assert (result.inserted, result.duplicates, result.within_tolerance) == (1, 1, 1)
        assert m.get("nb201", "cell", "synflow", CH, 0, BH).value == eager  # stored value kept
        assert m.put(rec("other", 0, "zico", 100.05)) is False  # zico: rtol 1e-3
        with pytest.raises(ConflictError, match=r"rtol=2e-05"):
            m.put(rec("cell", 0, "synflow", eager * (1 + 1e-4)))
        with pytest.raises(ConflictError):
            m.put(rec("cell", 0, "synflow", math.inf))
    with ResultStore(tmp_path / "m.sqlite", tolerance={"*": (0.0, 0.0)}) as strict:
        with pytest.raises(ConflictError):
            strict.put(rec("cell", 0, "synflow", supernet))


def test_a_bumped_proxy_version_never_reuses_stale_rows(tmp_path, monkeypatch):
    assert proxies_lib.get("synflow").version == 1
    path = tmp_path / "s.sqlite"
    tasks = make_tasks("nb201", ["a", "b"], [0], ["synflow", "snip"], CH, BH)
    with ResultStore(path) as s:
        run_resumable(tasks, Compute(), s, chunk_size=2, progress=False)
        old = s.scores("nb201", "synflow")
    info = proxies_lib.get("synflow")
    monkeypatch.setitem(proxies_lib.REGISTRY, "synflow", dataclasses.replace(info, version=2))
    fixed = Compute()
    with ResultStore(path) as s:
        assert s.stored_proxies("nb201", CH, BH) == {("a", 0): {"snip"}, ("b", 0): {"snip"}}
        assert s.scores("nb201", "synflow") == {}
        run_resumable(tasks, fixed, s, chunk_size=2, progress=False)
        assert fixed.computed == [("a", 0, ("synflow",)), ("b", 0, ("synflow",))]
        assert {r.proxy_version for r in s.records(proxy="synflow")} == {1, 2}
        assert s.scores("nb201", "synflow", proxy_version=1).keys() == old.keys()  # kept
        assert s.get("nb201", "a", "synflow", CH, 0, BH).proxy_version == 2

    def stale(chunk):  # a compute function that still produces the old definition
        return [dataclasses.replace(t.record("synflow", 1.0), proxy_version=1) for t in chunk]

    with pytest.raises(ValueError, match="proxy version 1, but the current version is 2"), \
            ResultStore(":memory:") as s:
        run_resumable(make_tasks("nb201", ["c"], [0], ["synflow"], CH, BH), stale, s,
                      chunk_size=1, progress=False)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE scores (space TEXT NOT NULL, arch TEXT NOT NULL, proxy TEXT NOT NULL,
    config_hash TEXT NOT NULL, seed INTEGER NOT NULL, batch_hash TEXT NOT NULL, value REAL,
    reason TEXT, seconds REAL, created REAL NOT NULL, CHECK (value IS NULL OR reason IS NULL),
    PRIMARY KEY (space, config_hash, batch_hash, proxy, arch, seed)) WITHOUT ROWID;
INSERT INTO meta VALUES ('format', 'zcjax.sweep.ResultStore'), ('schema_version', '1');
"""


def make_v1_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)", [
        ("nb201", f"a{i}", "synflow", CH, 0, BH, float(i), None, 0.5, 1.0) for i in range(5)]
        + [("nb201", "a9", "snip", CH, 0, BH, None, "diverged", None, 2.0)])
    conn.commit()
    conn.close()


def test_schema1_store_is_upgraded_in_place_and_nothing_is_lost(tmp_path):
    path = tmp_path / "old.sqlite"
    make_v1_store(path)
    with pytest.raises(SchemaVersionError, match="schema version 1.*merge_from"):
        ResultStore(path, readonly=True)
    src = tmp_path / "old_copy.sqlite"
    shutil.copyfile(path, src)
    with ResultStore(tmp_path / "new.sqlite") as m:  # a schema-1 source is merged as it is
        assert m.merge_from([src]).inserted == 6
    assert sqlite3.connect(src).execute("SELECT value FROM meta WHERE key='schema_version'"
                                        ).fetchone()[0] == "1"  # source untouched
    with ResultStore(path) as s:  # writable: upgraded in place
        assert len(s) == 6 and s.verify().ok
        assert {r.proxy_version for r in s.records()} == {1}
        assert s.scores("nb201", "synflow")["a3"].tolist() == [3.0]
        assert s.get("nb201", "a9", "snip", CH, 0, BH).reason == "diverged"
    backup = tmp_path / "old.sqlite.schema1.bak"
    conn = sqlite3.connect(backup)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 6
    conn.close()


# -- item 8: CSV formulas, capped messages --------------------------------------------------------

def test_csv_export_neutralises_formulas(tmp_path):
    out = tmp_path / "x.csv"
    with ResultStore(tmp_path / "s.sqlite") as s:
        s.put_many([rec('=HYPERLINK("http://evil","x")', 0, "synflow", -0.5),
                    rec("+cmd", 1, "@snip", math.nan, "-1+1 overflow"),
                    rec("|nor_conv_3x3~0|", 2, "synflow", 1e-3)])
        assert s.export_csv(out) == 3
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    by_seed = {r["seed"]: r for r in rows}
    assert by_seed["0"]["arch"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert float(by_seed["0"]["value"]) == -0.5  # numbers stay numbers
    assert by_seed["1"]["arch"] == "'+cmd" and by_seed["1"]["proxy"] == "'@snip"
    assert by_seed["1"]["reason"] == "'-1+1 overflow"
    assert by_seed["2"]["arch"] == "|nor_conv_3x3~0|" and by_seed["2"]["proxy_version"] == "1"


def test_store_messages_are_capped(tmp_path):
    huge = "x" * 10_000_000
    with ResultStore(tmp_path / "s.sqlite") as s:
        s.put(rec(huge, 0, "synflow", 1.0))
        with pytest.raises(ConflictError) as info:
            s.put(rec(huge, 0, "synflow", 2.0))
        assert len(str(info.value)) < 2000
    with pytest.raises(ValueError) as info:
        rec("a", 0, "synflow", 1.0, huge)
    assert len(str(info.value)) < 1000
    with pytest.raises(ValueError, match="seed"):
        rec("a", 2**32, "synflow", 1.0)
