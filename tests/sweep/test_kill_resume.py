"""A sweep killed with SIGKILL at a random moment resumes losing and repeating nothing.

A real child process runs :func:`run_resumable` with a fake compute function
(deterministic hash-based scores, some NaN, ~10 ms per task) that appends
every task it computes to a log file. The test SIGKILLs the child at a random
moment after the first records reached the store, reruns the sweep to
completion, and checks the store against an uninterrupted reference run and
the rerun's log against what was missing after the kill.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zcjax.sweep.store import ResultStore

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
N_ARCHS, SEEDS, PROXIES, CHUNK = 50, (0, 1, 2, 3), ("synflow", "snip", "naswot"), 5
N_TASKS = N_ARCHS * len(SEEDS)

SCRIPT = r"""
import hashlib, math, os, sys, time
from zcjax.sweep import ResultStore, make_tasks, run_resumable

store_path, log_path, sleep_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
N_ARCHS, SEEDS, PROXIES, CHUNK = {n_archs}, {seeds}, {proxies}, {chunk}
log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

def score(arch, seed, proxy):
    d = hashlib.sha256(f"{{arch}}|{{seed}}|{{proxy}}".encode()).digest()
    if d[0] < 20:  # ~8% NaN
        return math.nan, f"fake failure {{d[1]}}"
    return int.from_bytes(d[:8], "little") / 2**64 - 0.5, None

def compute(chunk):
    out = []
    for t in chunk:
        time.sleep(sleep_s)
        # Unbuffered append: survives SIGKILL of this process.
        os.write(log_fd, f"{{t.arch}}\t{{t.seed}}\t{{','.join(t.proxies)}}\n".encode())
        for p in t.proxies:
            v, why = score(t.arch, t.seed, p)
            out.append(t.record(p, v, reason=why, seconds=sleep_s))
    return out

archs = [f"arch{{i:03d}}" for i in range(N_ARCHS)]
tasks = make_tasks("fake", archs, SEEDS, PROXIES, "c" * 16, "b" * 16)
with ResultStore(store_path) as store:
    s = run_resumable(tasks, compute, store, chunk_size=CHUNK, progress=False)
print(s.tasks_computed, s.tasks_skipped, flush=True)
""".format(n_archs=N_ARCHS, seeds=SEEDS, proxies=PROXIES, chunk=CHUNK)


def start(store: Path, log: Path, sleep_s: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(store), str(log), str(sleep_s)],
                            env=env, cwd=store.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_to_end(store: Path, log: Path, sleep_s: float = 0.0) -> tuple[int, int]:
    proc = start(store, log, sleep_s)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    computed, skipped = map(int, out.split())
    return computed, skipped


def stored_count(path: Path) -> int:
    """Rows in the store, read with a separate plain connection (0 if not created yet)."""
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # table not created yet
        return 0


def read_log(path: Path) -> list[tuple[str, int, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        arch, seed, proxies = line.split("\t")
        out.append((arch, int(seed), proxies))
    return out


def snapshot(path: Path) -> dict[tuple, tuple]:
    with ResultStore(path) as s:
        rows = s.to_records()
    snap = {(r["arch"], r["seed"], r["proxy"]): (r["value"], r["reason"]) for r in rows}
    assert len(snap) == len(rows)  # every key at most once
    return snap


def same(a: tuple, b: tuple) -> bool:
    (va, ra), (vb, rb) = a, b
    return ra == rb and ((math.isnan(va) and math.isnan(vb)) or va == vb)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[tuple, tuple]:
    d = tmp_path_factory.mktemp("reference")
    computed, skipped = run_to_end(d / "ref.sqlite", d / "ref.log")
    assert (computed, skipped) == (N_TASKS, 0)
    ref = snapshot(d / "ref.sqlite")
    assert len(ref) == N_TASKS * len(PROXIES)
    assert any(math.isnan(v) for v, _ in ref.values())  # NaN path exercised
    return ref


@pytest.mark.parametrize("trial", [0, 1, 2])
def test_sigkill_then_resume(tmp_path: Path, reference: dict, trial: int) -> None:
    rng = random.Random(1234 + trial)
    # Trial 0 kills right after the first chunk lands; others at random later moments.
    delay = 0.0 if trial == 0 else rng.uniform(0.05, 1.0)
    store, log1, log2 = tmp_path / "ws" / "r.sqlite", tmp_path / "run1.log", tmp_path / "run2.log"
    store.parent.mkdir()

    proc = start(store, log1, sleep_s=0.01)
    deadline = time.monotonic() + 30
    while stored_count(store) == 0:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "sweep finished before it could be killed"

    # After the kill: what is stored is correct, chunk-atomic, and was computed by run 1.
    after_kill = snapshot(store)
    assert after_kill, "nothing stored before the kill"
    for key, val in after_kill.items():
        assert same(val, reference[key]), key
    stored_tasks = {(a, s) for a, s, _ in after_kill}
    for a, s in stored_tasks:  # no task half-written
        assert all((a, s, p) in after_kill for p in PROXIES)
    assert len(stored_tasks) % CHUNK == 0  # whole chunks only
    run1 = read_log(log1)
    assert stored_tasks <= {(a, s) for a, s, _ in run1}
    missing = {(a, s) for a, s, _ in reference} - stored_tasks
    assert missing, "sweep was already complete at the kill"

    # Resume: computes exactly the missing tasks, each once, with all proxies.
    computed, skipped = run_to_end(store, log2)
    assert (computed, skipped) == (len(missing), len(stored_tasks))
    run2 = read_log(log2)
    assert len(run2) == len(missing)
    assert {(a, s) for a, s, _ in run2} == missing
    assert all(p == ",".join(PROXIES) for _, _, p in run2)
    # At most the one chunk in flight at the kill was computed twice overall.
    assert len(run1) + len(run2) - N_TASKS <= CHUNK

    final = snapshot(store)
    assert final.keys() == reference.keys()
    for key, val in final.items():
        assert same(val, reference[key]), key
    with ResultStore(store) as s:
        assert len(s) == N_TASKS * len(PROXIES)
