"""Tests of zcjax.sweep.store.ResultStore and the hash helpers."""

from __future__ import annotations

import csv
import math
import sqlite3

import numpy as np
import pytest

from zcjax.sweep.store import (
    ConflictError,
    Record,
    ResultStore,
    SchemaVersionError,
    array_hash,
    config_hash,
)

CH = "c" * 16
BH = "b" * 16


def rec(arch: str, seed: int, proxy: str, value: float, reason: str | None = None,
        ch: str = CH, bh: str = BH, space: str = "nb201") -> Record:
    return Record(space, arch, proxy, ch, seed, bh, value, reason, seconds=0.5)


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "ws" / "results.sqlite") as s:
        yield s


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as s:
        assert s.put(rec("a1", 0, "synflow", 1.25))
        assert len(s) == 1
        got = s.get("nb201", "a1", "synflow", CH, 0, BH)
        assert got is not None and got.value == 1.25 and got.reason is None
        assert got.seconds == 0.5 and got.created is not None
        assert s.has("nb201", "a1", "synflow", CH, 0, BH)
        assert not s.has("nb201", "a1", "synflow", CH, 1, BH)
        assert s.get("nb201", "a1", "snip", CH, 0, BH) is None
    with ResultStore(path) as s:  # persisted
        assert s.get("nb201", "a1", "synflow", CH, 0, BH).value == 1.25
        mode = s._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_numpy_inputs_and_inf(store):
    store.put(Record("s", "a", "p", CH, np.int64(3), BH, np.float32(0.5)))
    store.put(Record("s", "a", "q", CH, 3, BH, -math.inf))
    assert store.get("s", "a", "p", CH, 3, BH).value == 0.5
    assert store.get("s", "a", "q", CH, 3, BH).value == -math.inf


def test_nan_with_reason(store):
    store.put(rec("a1", 0, "grad_norm", math.nan, "overflow in backward"))
    got = store.get("nb201", "a1", "grad_norm", CH, 0, BH)
    assert math.isnan(got.value) and got.is_nan
    assert got.reason == "overflow in backward"
    # Stored as SQL NULL.
    assert store._conn.execute("SELECT value FROM scores").fetchone()[0] is None
    with pytest.raises(ValueError, match="reason"):
        rec("a1", 0, "p", 1.0, "not a NaN")


def test_put_idempotent_and_conflicts(store):
    recs = [rec("a1", 0, "p", 1.0), rec("a1", 1, "p", math.nan, "r")]
    assert store.put_many(recs) == 2
    assert store.put_many(recs) == 0  # identical: ignored
    assert len(store) == 2
    with pytest.raises(ConflictError, match="conflicting"):
        store.put_many([rec("a2", 0, "p", 7.0), rec("a1", 0, "p", 2.0)])
    # Atomic: the non-conflicting a2 of the failed call was rolled back too.
    assert not store.has("nb201", "a2", "p", CH, 0, BH)
    with pytest.raises(ConflictError):  # NaN reason differs
        store.put(rec("a1", 1, "p", math.nan, "other"))
    with pytest.raises(ConflictError):  # same key twice within one call
        store.put_many([rec("a3", 0, "p", 1.0), rec("a3", 0, "p", 2.0)])
    assert store.put_many([rec("a3", 0, "p", 1.0), rec("a3", 0, "p", 1.0)]) == 1
    store._conn.execute("DELETE FROM scores WHERE arch='a3'")
    assert store.put(rec("a1", 0, "p", 2.0), on_conflict="ignore") is False
    assert store.get("nb201", "a1", "p", CH, 0, BH).value == 1.0
    assert store.put(rec("a1", 0, "p", 2.0), on_conflict="replace") is True
    assert store.get("nb201", "a1", "p", CH, 0, BH).value == 2.0


def test_missing(store):
    archs, seeds, proxies = ["a1", "a2", "a3"], [0, 1], ["p", "q"]
    assert store.missing("nb201", CH, BH, archs, proxies, seeds) == [
        (a, s, ("p", "q")) for a in archs for s in seeds]
    store.put_many([
        rec("a1", 0, "p", 1.0), rec("a1", 0, "q", 2.0),   # a1/0 complete
        rec("a2", 1, "q", math.nan, "x"),                   # a2/1 partial (NaN counts as done)
        rec("a3", 0, "p", 1.0, ch="other"),                 # other config: irrelevant
        rec("a3", 1, "p", 1.0, bh="other"),                 # other batch: irrelevant
        rec("a3", 1, "r", 1.0),                             # other proxy: irrelevant
    ])
    got = store.missing("nb201", CH, BH, archs, proxies, seeds)
    assert got == [("a1", 1, ("p", "q")), ("a2", 0, ("p", "q")), ("a2", 1, ("p",)),
                   ("a3", 0, ("p", "q")), ("a3", 1, ("p", "q"))]
    assert store.missing("other", CH, BH, ["a1"], ["p"], [0]) == [("a1", 0, ("p",))]
    assert store.stored_proxies("nb201", CH, BH, ["q"]) == {("a1", 0): {"q"}, ("a2", 1): {"q"}}
    assert store.stored_proxies("nb201", CH, BH) == {
        ("a1", 0): {"p", "q"}, ("a2", 1): {"q"}, ("a3", 1): {"r"}}


def test_scores_and_filters(store):
    store.put_many([rec("a1", s, "p", float(s)) for s in (2, 0, 1)]
                   + [rec("a2", 0, "p", math.nan, "r"), rec("a2", 1, "q", 5.0)])
    sc = store.scores("nb201", "p")
    assert list(sc) == ["a1", "a2"]
    np.testing.assert_array_equal(sc["a1"], [0.0, 1.0, 2.0])
    assert np.isnan(sc["a2"]).all() and sc["a2"].shape == (1,)
    aligned = store.scores("nb201", "p", CH, BH, seeds=[1, 0], archs=["a2"])
    assert list(aligned) == ["a2"]
    assert np.isnan(aligned["a2"]).all() and aligned["a2"].shape == (2,)
    store.put(rec("a1", 0, "p", 9.0, ch="c2"))
    with pytest.raises(ValueError, match="config hashes"):
        store.scores("nb201", "p")
    assert store.scores("nb201", "p", config_hash="c2")["a1"].tolist() == [9.0]

    rows = store.to_records(proxy="p", config_hash=CH)
    assert [(r["arch"], r["seed"]) for r in rows] == [("a1", 0), ("a1", 1), ("a1", 2), ("a2", 0)]
    assert set(rows[0]) == {"space", "arch", "proxy", "proxy_version", "config_hash", "seed",
                            "batch_hash", "value", "reason", "seconds", "created"}
    assert math.isnan(rows[3]["value"]) and rows[3]["reason"] == "r"
    assert store.count(arch=["a1", "a2"], seed=0) == 3
    big = [f"x{i}" for i in range(2000)] + ["a2"]  # > SQL parameter cap: filtered in Python
    assert store.count(arch=big) == 2
    with pytest.raises(TypeError, match="unknown filter"):
        store.to_records(value=1.0)


def test_export_csv(store, tmp_path):
    store.put_many([rec("a1", 0, "p", 0.1 + 0.2), rec("a1", 1, "p", math.nan, "boom, \"quoted\""),
                    rec("a2", 0, "q", 3.0)])
    out = tmp_path / "out.csv"
    assert store.export_csv(out, proxy="p") == 2
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["space", "arch", "seed", "proxy", "value", "reason", "config_hash",
                             "batch_hash", "seconds", "created", "proxy_version"]
    assert float(rows[0]["value"]) == 0.1 + 0.2  # exact round trip
    assert rows[0]["reason"] == ""
    assert math.isnan(float(rows[1]["value"])) and rows[1]["reason"] == 'boom, "quoted"'
    assert store.export_csv(tmp_path / "all.csv") == 3


def test_merge(tmp_path):
    paths = [tmp_path / f"host{i}.sqlite" for i in range(3)]
    with ResultStore(paths[0]) as a, ResultStore(paths[1]) as b:
        a.put_many([rec("a1", 0, "p", 1.0), rec("a2", 0, "p", math.nan, "r")])
        b.put_many([rec("a2", 0, "p", math.nan, "r"), rec("a3", 0, "p", 3.0)])  # a2 duplicate
    with ResultStore(tmp_path / "merged.sqlite") as m:
        res = m.merge_from(paths[:2])
        assert (res.inserted, res.duplicates) == (3, 1)
        assert m.merge_from(paths[:2]).inserted == 0  # idempotent
        assert len(m) == 3
        # Merged rows keep their timings.
        assert m.get("nb201", "a3", "p", CH, 0, BH).seconds == 0.5
        with ResultStore(paths[2]) as c:
            c.put_many([rec("a9", 0, "p", 9.0), rec("a1", 0, "p", 1.5)])  # a1 conflicts
        with pytest.raises(ConflictError, match="host2"):
            m.merge_from([paths[2]])
        assert not m.has("nb201", "a9", "p", CH, 0, BH)  # merge is atomic
        assert m.merge_from(paths[2], on_conflict="ignore").inserted == 1
        with pytest.raises(ValueError, match="itself"):
            m.merge_from([tmp_path / "merged.sqlite"])
        with pytest.raises(FileNotFoundError):
            m.merge_from([tmp_path / "nope.sqlite"])


def test_schema_version_check(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        ResultStore(path)
    # A foreign SQLite database and a non-database file.
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="not a zcjax result store"):
        ResultStore(other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(SchemaVersionError, match="not a zcjax result store"):
        ResultStore(junk)


def test_memory_store():
    with ResultStore(":memory:") as s:
        s.put(rec("a", 0, "p", 1.0))
        assert len(s) == 1


def test_config_hash_stable():
    h = config_hash({"b": 1, "a": [1, 2], "c": {"y": 0.5, "x": "s"}})
    assert h == config_hash({"c": {"x": "s", "y": 0.5}, "a": (1, 2), "b": 1})
    assert len(h) == 16 and int(h, 16) >= 0
    assert h != config_hash({"b": 2, "a": [1, 2], "c": {"y": 0.5, "x": "s"}})
    assert config_hash({"n": np.int32(3)}) == config_hash({"n": 3})
    # Pinned: the hash must never change between versions/machines.
    assert config_hash({"a": 1}) == "015abd7f5cc57a2d"
    with pytest.raises(TypeError):
        config_hash({"f": object()})


def test_array_hash():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert array_hash(x) == array_hash(x.copy())
    assert array_hash(x) != array_hash(x.reshape(4, 3))
    assert array_hash(x) != array_hash(x.astype(np.float64))
    assert array_hash(x.T) == array_hash(np.ascontiguousarray(x.T))
    assert array_hash(x.T) != array_hash(x)
    assert len(array_hash(x)) == 16
