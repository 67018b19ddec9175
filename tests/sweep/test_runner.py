"""Tests of zcjax.sweep.runner.run_resumable and zcjax.sweep.progress.Progress."""

from __future__ import annotations

import math

import pytest

from zcjax.sweep.progress import Progress, format_duration, format_rate, format_seconds
from zcjax.sweep.runner import SweepInterrupted, Task, make_tasks, run_resumable
from zcjax.sweep.store import ResultStore

CH, BH = "c" * 16, "b" * 16
PROXIES = ("synflow", "snip", "naswot")


def value_of(t: Task, proxy: str) -> float:
    return float(len(t.arch) * 100 + t.seed * 10 + PROXIES.index(proxy))


class FakeCompute:
    """Records calls; returns deterministic scores; NaN for arch 'bad'."""

    def __init__(self, fail_on_call: int | None = None, exc: type = KeyboardInterrupt):
        self.calls: list[list[Task]] = []
        self.fail_on_call = fail_on_call
        self.exc = exc

    def __call__(self, chunk):
        self.calls.append(list(chunk))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise self.exc()
        out = []
        for t in chunk:
            for p in t.proxies:
                if t.arch == "bad":
                    out.append(t.record(p, math.nan, reason="diverged"))
                else:
                    out.append(t.record(p, value_of(t, p)))
        return out

    @property
    def computed(self) -> list[tuple[str, int, tuple[str, ...]]]:
        return [(t.arch, t.seed, t.proxies) for c in self.calls for t in c]


ARCHS = ["a", "bb", "ccc", "dddd", "bad"]


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "r.sqlite", synchronous="NORMAL") as s:
        yield s


def test_make_tasks_and_task_validation():
    ts = make_tasks("nb201", ["x", "y"], [0, 1], PROXIES, CH, BH)
    assert [(t.arch, t.seed) for t in ts] == [("x", 0), ("x", 1), ("y", 0), ("y", 1)]
    ts = make_tasks("nb201", ["x", "y"], [0, 1], PROXIES, CH, BH, order="seed")
    assert [(t.arch, t.seed) for t in ts] == [("x", 0), ("y", 0), ("x", 1), ("y", 1)]
    assert ts[0].proxies == PROXIES and ts[0].setting == ("nb201", CH, BH)
    with pytest.raises(ValueError, match="no proxies"):
        Task("s", "a", 0, (), CH, BH)
    with pytest.raises(ValueError, match="duplicate proxies"):
        Task("s", "a", 0, ("p", "p"), CH, BH)
    assert Task("s", "a", 0, "p", CH, BH).proxies == ("p",)
    with pytest.raises(Exception):
        ts[0].arch = "z"  # frozen


def test_runs_all_then_skips_everything(store):
    tasks = make_tasks("nb201", ARCHS, [0, 1, 2], PROXIES, CH, BH)
    comp = FakeCompute()
    s = run_resumable(tasks, comp, store, chunk_size=4, progress=False)
    assert (s.tasks_total, s.tasks_skipped, s.tasks_computed, s.tasks_remaining) == (15, 0, 15, 0)
    assert s.scores_written == 45 and s.nan_count == 9 and s.chunks == 4
    assert s.done == 15 and s.complete and not s.interrupted
    assert [len(c) for c in comp.calls] == [4, 4, 4, 3]
    assert len(store) == 45
    assert store.get("nb201", "bad", "snip", CH, 2, BH).reason == "diverged"
    rec = store.get("nb201", "ccc", "snip", CH, 1, BH)
    assert rec.value == 311.0 and rec.seconds is not None and rec.seconds >= 0

    comp2 = FakeCompute()
    s2 = run_resumable(tasks, comp2, store, chunk_size=4, progress=False)
    assert comp2.calls == []
    assert (s2.tasks_skipped, s2.tasks_computed, s2.scores_skipped, s2.scores_written) == (15, 0, 45, 0)


def test_computes_only_missing_proxies(store):
    tasks = make_tasks("nb201", ARCHS, [0, 1], PROXIES, CH, BH)
    # Pre-store: all of 'a', and synflow of 'bb' seed 1.
    pre = [t.record(p, value_of(t, p)) for t in tasks if t.arch == "a" for p in PROXIES]
    pre.append(tasks[3].record("synflow", value_of(tasks[3], "synflow")))
    store.put_many(pre)
    comp = FakeCompute()
    s = run_resumable(tasks, comp, store, chunk_size=3, progress=False)
    assert ("bb", 1, ("snip", "naswot")) in comp.computed
    assert not any(a == "a" for a, _, _ in comp.computed)
    assert len(comp.computed) == 8  # 10 tasks - 2 complete 'a' tasks
    assert (s.tasks_skipped, s.tasks_computed, s.scores_skipped, s.scores_written) == (2, 8, 7, 23)
    assert len(store) == 30


def test_other_settings_do_not_count_as_done(store):
    tasks = make_tasks("nb201", ["a"], [0], PROXIES, CH, BH)
    other = make_tasks("nb201", ["a"], [0], PROXIES, "other", BH)
    run_resumable(other, FakeCompute(), store, chunk_size=8, progress=False)
    comp = FakeCompute()
    s = run_resumable(tasks + make_tasks("nb201", ["a"], [0], PROXIES, CH, "b2"), comp, store,
                      chunk_size=8, progress=False)
    assert s.tasks_computed == 2 and len(store) == 9


def test_keyboard_interrupt_keeps_finished_chunks(store):
    tasks = make_tasks("nb201", ARCHS, [0, 1], PROXIES, CH, BH)
    comp = FakeCompute(fail_on_call=3)
    with pytest.raises(SweepInterrupted) as ei:
        run_resumable(tasks, comp, store, chunk_size=3, progress=False)
    assert isinstance(ei.value, KeyboardInterrupt)
    s = ei.value.summary
    assert s.interrupted and s.tasks_computed == 6 and s.tasks_remaining == 4 and s.chunks == 2
    assert len(store) == 18
    comp2 = FakeCompute()
    s2 = run_resumable(tasks, comp2, store, chunk_size=3, progress=False)
    assert s2.tasks_skipped == 6 and s2.tasks_computed == 4 and len(store) == 30
    assert [(a, sd) for a, sd, _ in comp2.computed] == [(t.arch, t.seed) for t in tasks[6:]]


def test_compute_error_propagates_after_storing_earlier_chunks(store):
    tasks = make_tasks("nb201", ARCHS, [0], PROXIES, CH, BH)
    with pytest.raises(RuntimeError):
        run_resumable(tasks, FakeCompute(fail_on_call=2, exc=RuntimeError), store,
                      chunk_size=2, progress=False)
    assert len(store) == 6


def test_rejects_bad_compute_output_and_duplicate_tasks(store):
    tasks = make_tasks("nb201", ["a", "bb"], [0], PROXIES, CH, BH)
    short = lambda chunk: FakeCompute()(chunk)[:-1]  # noqa: E731
    with pytest.raises(ValueError, match="no record"):
        run_resumable(tasks, short, store, chunk_size=2, progress=False)
    extra = lambda chunk: FakeCompute()(chunk) + [chunk[0].record("zzz", 1.0)]  # noqa: E731
    with pytest.raises(ValueError, match="unrequested"):
        run_resumable(tasks, extra, store, chunk_size=2, progress=False)
    twice = lambda chunk: FakeCompute()(chunk) * 2  # noqa: E731
    with pytest.raises(ValueError, match="twice"):
        run_resumable(tasks, twice, store, chunk_size=2, progress=False)
    assert len(store) == 0  # nothing of a rejected chunk is written
    with pytest.raises(ValueError, match="duplicate task"):
        run_resumable(tasks + tasks[:1], FakeCompute(), store, chunk_size=2, progress=False)
    with pytest.raises(ValueError, match="chunk_size"):
        run_resumable(tasks, FakeCompute(), store, chunk_size=0, progress=False)
    # Stored scores are trusted: a complete task is skipped, never recomputed.
    store.put_many([tasks[0].record(p, -1.0) for p in PROXIES])
    assert run_resumable(tasks, FakeCompute(), store, chunk_size=2, progress=False).tasks_skipped == 1


def test_progress_output_via_runner(store):
    lines: list[str] = []
    bar = Progress(desc="nb201", unit="task", write=lines.append, interval=0.0)
    tasks = make_tasks("nb201", ARCHS, [0], PROXIES, CH, BH)
    run_resumable(tasks, FakeCompute(), store, chunk_size=2, progress=bar)
    assert lines[0].startswith("nb201: 5 tasks: 0 already stored, 5 to compute in 3 chunks")
    assert any("5/5 (100.0%)" in ln for ln in lines)
    assert "sweep complete" in lines[-1]


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_prepare_runs_once_before_the_first_chunk_and_only_with_work(store):
    tasks = make_tasks("nb201", ARCHS, [0], PROXIES, CH, BH)
    store.put_many([tasks[0].record(p, value_of(tasks[0], p)) for p in PROXIES])
    events: list = []
    comp = FakeCompute()

    def compute(chunk):
        events.append(("compute", len(chunk)))
        return comp(chunk)

    def prepare(pending, bar):
        assert isinstance(bar, Progress) and bar.total == 4
        events.append(("prepare", [t.arch for t in pending]))

    run_resumable(tasks, compute, store, chunk_size=2, progress=False, prepare=prepare)
    assert events == [("prepare", ARCHS[1:]), ("compute", 2), ("compute", 2)]
    events.clear()
    run_resumable(tasks, compute, store, chunk_size=2, progress=False, prepare=prepare)
    assert events == []  # everything stored: nothing to prepare for


def test_ctrl_c_while_preparing_stops_cleanly(store):
    tasks = make_tasks("nb201", ARCHS, [0], PROXIES, CH, BH)

    def prepare(pending, bar):
        with bar.phase("compiling", label="compiling"):
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as ei:
        run_resumable(tasks, FakeCompute(), store, chunk_size=2, progress=False, prepare=prepare)
    assert ei.value.summary.tasks_computed == 0 and ei.value.summary.tasks_remaining == 5


def test_eta_after_the_first_chunk_leaves_out_compilation(store):
    """The issue's sweep: 8 tasks in 2 chunks, 3 min 14 s of compiling, then about 3 s per task
    (the first chunk a little slower: eager primitives compile on first use). The ETA after the
    first chunk used to be 3 min 14 s for 11 s of work left."""
    clock, lines = FakeClock(), []
    bar = Progress(desc="nb201 sweep", unit="task", write=lines.append, clock=clock)
    chunk_seconds = iter([14.0, 11.0])
    comp = FakeCompute()

    def compute(chunk):
        clock.t += next(chunk_seconds)
        return comp(chunk)

    def prepare(pending, progress):
        with progress.phase("compiling the nb201 program for synflow", label="compiling"):
            clock.t += 194.0

    tasks = make_tasks("nb201", ["a", "bb", "ccc", "dddd", "e", "f", "g", "h"], [0], PROXIES,
                       CH, BH)
    run_resumable(tasks, compute, store, chunk_size=4, progress=bar, prepare=prepare)
    assert lines[1:3] == ["nb201 sweep: compiling the nb201 program for synflow ...",
                          "nb201 sweep: compiling done in 3 min 14 s"]
    assert lines[3] == ("nb201 sweep: 4/8 (50.0%) 3.50 s/task elapsed 0:03:28 "
                        "(compiling 0:03:14) ETA 0:00:14")  # 11 s were left
    # the second chunk's rate, then the final line's average over the work time
    assert " 8/8 (100.0%) 2.75 s/task elapsed 0:03:39 (compiling 0:03:14) ETA 0:00:00" in lines[4]
    assert lines[5] == "nb201 sweep: 8/8 (100.0%) 3.12 s/task elapsed 0:03:39 (compiling 0:03:14)"


def test_progress_rate_limit_and_eta():
    clock, lines = FakeClock(), []
    p = Progress(100, desc="d", unit="it", write=lines.append, clock=clock)
    for _ in range(10):  # 10 updates within 0.9 s: no line yet
        clock.t += 0.09
        p.update()
    assert lines == []
    clock.t += 0.2
    p.update(10)  # 20 items in 1.1 s
    assert len(lines) == 1
    assert lines[0].startswith("d: 20/100 (20.0%) 18.2 it/s elapsed 0:00:01 ETA 0:00:04")
    p.update(5)  # too soon
    assert len(lines) == 1
    clock.t += 10
    p.update(5)
    assert len(lines) == 2 and "30/100" in lines[1]
    p.close()
    p.close()  # idempotent
    assert len(lines) == 3 and "ETA" not in lines[2] and "30/100" in lines[2]


def test_progress_first_sample_stands_only_until_a_second():
    clock, lines = FakeClock(), []
    p = Progress(12, unit="task", write=lines.append, clock=clock, smoothing=0.3)
    clock.t += 20.0  # first chunk: 4 tasks, one-time costs included
    p.update(4)
    assert p.rate == pytest.approx(0.2) and lines[-1].endswith("ETA 0:00:40")
    clock.t += 8.0  # second chunk: the steady rate replaces the first sample
    p.update(4)
    assert p.rate == pytest.approx(0.5) and lines[-1].endswith("ETA 0:00:08")
    clock.t += 4.0  # from the third on: an exponential moving average
    p.update(2)
    assert p.rate == pytest.approx(0.3 * 0.5 + 0.7 * 0.5)


def test_progress_phase_is_reported_and_left_out_of_the_rate():
    clock, lines = FakeClock(), []
    p = Progress(10, desc="d", unit="task", write=lines.append, clock=clock)
    with p.phase("compiling the program (first run only)", label="compiling"):
        clock.t += 42.25
    assert lines == ["d: compiling the program (first run only) ...",
                     "d: compiling done in 42.2 s"]
    clock.t += 5.0
    assert p.rate == pytest.approx(0.0)
    p.update(5)
    assert lines[-1] == "d: 5/10 (50.0%) 1.0 task/s elapsed 0:00:47 (compiling 0:00:42) ETA 0:00:05"
    with pytest.raises(RuntimeError):  # a failed phase: no "done" line, its time still left out
        with p.phase("loading", label="loading"):
            clock.t += 100.0
            raise RuntimeError
    assert lines[-1] == "d: loading ..."
    clock.t += 5.0
    p.update(5)
    p.close()
    assert lines[-1] == ("d: 10/10 (100.0%) 1.0 task/s elapsed 0:02:32 "
                         "(compiling 0:00:42, loading 0:01:40)")


def test_progress_unknown_total_and_disabled():
    clock, lines = FakeClock(), []
    with Progress(None, unit="arch", write=lines.append, clock=clock) as p:
        clock.t += 2.0
        p.update(3)
    assert lines[0] == "3 arch 1.5 arch/s elapsed 0:00:02"
    assert "ETA" not in "".join(lines)
    quiet: list[str] = []
    with Progress(5, write=quiet.append, enabled=False, clock=clock) as q:
        clock.t += 5
        q.update(5)
        q.write("hello")
    assert quiet == [] and q.n == 5
    nothing: list[str] = []
    with Progress(0, write=nothing.append, clock=clock):
        pass  # a rerun with everything stored: no "0/0 (100.0%) ? task/s" line
    assert nothing == []


def test_progress_default_writes_stderr(capsys):
    with Progress(2, desc="x", interval=0.0) as p:
        p.update(2)
    err = capsys.readouterr().err
    assert "x: 2/2 (100.0%)" in err


def test_formatters():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.inf) == "?"
    assert format_rate(0.5, "it") == "2.00 s/it"
    assert format_rate(12.34, "it") == "12.3 it/s"
    assert format_rate(0.0, "it") == "? it/s"
    assert [format_seconds(s) for s in (3.04, 59.9, 59.96, 194.4, 3599.4, 3725)] == [
        "3.0 s", "59.9 s", "1 min 0 s", "3 min 14 s", "59 min 59 s", "1:02:05"]
