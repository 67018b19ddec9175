"""Resumable, chunked execution of a sweep against a :class:`ResultStore`.

:func:`run_resumable` turns a list of :class:`Task` s into stored
:class:`~zcjax.sweep.store.Record` s:

1. one :meth:`ResultStore.stored_proxies` query per sweep setting (normally one in
   total) finds what is stored already; tasks whose proxies are all stored
   are skipped, partially stored tasks are reduced to their missing proxies;
2. if anything is left to compute, ``prepare`` (optional) does the sweep's one-time work
   (the engine compiles its programs there), as a :meth:`Progress.phase`, so that it is
   reported and not counted as per-task time;
3. the remaining tasks are cut into chunks of ``chunk_size`` and handed to
   ``compute``;
4. each chunk's records are validated and written in one transaction right
   after the chunk is computed, then dropped, so memory is bounded by one
   chunk, and a crash (even ``SIGKILL``) loses at most the chunk in flight.
   Rerunning the same call resumes exactly where the store left off.

A computed chunk is never thrown away because of the store: if it is locked
by another process past its timeout, the write is retried, and then the
chunk goes to a side file (:mod:`zcjax.sweep.spill`) and the sweep goes on;
if the write fails otherwise (read-only, damaged, disk full), the chunk goes
to a side file and the error says where. Every run starts by merging pending
side files into the store. A read-only store is refused before anything is
computed. After each chunk the WAL is checkpointed into the main file, and
fully at the end of the run.

Nothing here depends on JAX: ``compute`` and ``prepare`` are any callables.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from zcjax.sweep.progress import Progress
from zcjax.sweep.spill import spill_dir
from zcjax.sweep.store import (
    ConflictError,
    Record,
    ResultStore,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    proxy_version,
)
from zcjax.validation import check_seed

__all__ = ["ScoresSpilledError", "SweepInterrupted", "SweepSummary", "Task", "make_tasks",
           "run_resumable"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One architecture at one seed, to be scored with some proxies.

    Besides ``(arch, seed, proxies)`` a task carries the sweep setting it
    belongs to (``space``, ``config_hash``, ``batch_hash``), so a task list
    is self-describing: it can be sharded across hosts, and ``compute`` can
    build records with :meth:`record` without extra context.

    Attributes:
      space: search-space name.
      arch: architecture string.
      seed: initialisation seed, an integer in ``0..2**31-1``
        (:func:`zcjax.validation.check_seed`).
      proxies: proxy names to compute (non-empty, no duplicates).
      config_hash: :func:`~zcjax.sweep.store.config_hash` of the setup.
      batch_hash: :func:`~zcjax.sweep.store.array_hash` of the data batch.
    """

    space: str
    arch: str
    seed: int
    proxies: tuple[str, ...]
    config_hash: str
    batch_hash: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        proxies = (self.proxies,) if isinstance(self.proxies, str) else tuple(self.proxies)
        if not proxies:
            raise ValueError(f"Task {self.arch!r} seed {self.seed}: no proxies")
        if len(set(proxies)) != len(proxies):
            raise ValueError(f"Task {self.arch!r} seed {self.seed}: duplicate proxies {proxies}")
        object.__setattr__(self, "proxies", proxies)

    @property
    def setting(self) -> tuple[str, str, str]:
        """``(space, config_hash, batch_hash)``: the sweep setting."""
        return (self.space, self.config_hash, self.batch_hash)

    def record(self, proxy: str, value: float, reason: str | None = None,
               seconds: float | None = None) -> Record:
        """A :class:`Record` of this task's score for ``proxy`` (at its current version)."""
        return Record(space=self.space, arch=self.arch, proxy=proxy,
                      config_hash=self.config_hash, seed=self.seed,
                      batch_hash=self.batch_hash, value=value, reason=reason,
                      seconds=seconds)


def make_tasks(space: str, archs: Iterable[str], seeds: Iterable[int],
               proxies: Sequence[str], config_hash: str, batch_hash: str,
               *, order: str = "arch") -> list[Task]:
    """The ``archs x seeds`` grid of tasks, each with all ``proxies``.

    Args:
      seeds: integers in ``0..2**31-1`` (:func:`zcjax.validation.check_seed`); ``1.7``,
        ``"3"`` or ``True`` are refused, not coerced, as are seeds outside the range, where
        JAX maps different integers to the same key.
      order: ``"arch"`` (default): all seeds of an architecture are adjacent
        (arch-major); ``"seed"``: all architectures of a seed are adjacent.
    """
    archs, seeds, proxies = list(archs), [check_seed(s) for s in seeds], tuple(proxies)
    if order == "arch":
        pairs = [(a, s) for a in archs for s in seeds]
    elif order == "seed":
        pairs = [(a, s) for s in seeds for a in archs]
    else:
        raise ValueError(f"order must be 'arch' or 'seed', got {order!r}")
    return [Task(space, a, s, proxies, config_hash, batch_hash) for a, s in pairs]


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_resumable` did.

    Attributes:
      tasks_total: tasks requested.
      tasks_skipped: tasks whose scores were all stored before the call.
      tasks_computed: tasks computed and stored by this call (including
        partially stored tasks, for which only the missing proxies ran).
      tasks_remaining: tasks still (partly) missing; non-zero only when
        interrupted.
      scores_skipped: (task, proxy) scores already stored before the call.
      scores_written: scores computed and written by this call.
      nan_count: how many of ``scores_written`` are NaN.
      chunks: chunks computed and written.
      elapsed_s: wall-clock seconds of the call.
      interrupted: whether a KeyboardInterrupt stopped the run.
      spilled: of ``scores_written``, those in side files at the end of the call
        (the store could not take them; the next run merges them).
    """

    tasks_total: int
    tasks_skipped: int
    tasks_computed: int
    tasks_remaining: int
    scores_skipped: int
    scores_written: int
    nan_count: int
    chunks: int
    elapsed_s: float
    interrupted: bool = False
    spilled: int = 0

    @property
    def done(self) -> int:
        """Tasks completely stored after the call (skipped + computed)."""
        return self.tasks_skipped + self.tasks_computed

    @property
    def complete(self) -> bool:
        """Whether every requested score is now stored (not in a side file)."""
        return self.tasks_remaining == 0 and self.spilled == 0

    def __str__(self) -> str:
        state = "INTERRUPTED" if self.interrupted else "complete" if self.complete else "incomplete"
        return (f"sweep {state}: {self.done}/{self.tasks_total} tasks done "
                f"({self.tasks_skipped} skipped, {self.tasks_computed} computed, "
                f"{self.tasks_remaining} remaining); {self.scores_written} scores written "
                f"({self.nan_count} NaN) in {self.chunks} chunks, {self.elapsed_s:.1f} s"
                + (f"; {self.spilled} of them in side files (store locked)"
                   if self.spilled else ""))


class SweepInterrupted(KeyboardInterrupt):
    """KeyboardInterrupt raised by :func:`run_resumable` after a clean stop.

    Every chunk finished before the interrupt is stored; the chunk in flight
    is discarded (it will be recomputed on resume). Being a
    ``KeyboardInterrupt``, it still stops a script by default; catch it to
    inspect :attr:`summary`.
    """

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__(str(summary))
        self.summary = summary


class ScoresSpilledError(StoreLockedError):
    """The store stayed locked: some computed scores are in side files, not in the store.

    Nothing is lost: rerun the same sweep (or ``ResultStore(path).merge_spills()``) once the
    lock is released and they are merged. Carries the :attr:`summary` and the :attr:`files`.
    """

    def __init__(self, message: str, summary: SweepSummary, files: list[str]) -> None:
        super().__init__(message)
        self.summary = summary
        self.files = files


def _validate(chunk: Sequence[Task], records: Sequence[Any]) -> None:
    """Check that ``records`` are exactly the scores ``chunk`` asked for."""
    expected = {(t.space, t.arch, p, t.config_hash, t.seed, t.batch_hash)
                for t in chunk for p in t.proxies}
    seen: set[tuple] = set()
    for r in records:
        if not isinstance(r, Record):
            raise TypeError(f"compute returned {type(r).__name__}, expected Record")
        if r.key not in expected:
            raise ValueError(f"compute returned an unrequested score {r.key}")
        if r.key in seen:
            raise ValueError(f"compute returned score {r.key} twice")
        if r.proxy_version != proxy_version(r.proxy):
            raise ValueError(f"compute returned score {r.key} of proxy version "
                             f"{r.proxy_version}, but the current version is "
                             f"{proxy_version(r.proxy)}")
        seen.add(r.key)
    if len(seen) != len(expected):
        lost = sorted(expected - seen)
        raise ValueError(f"compute returned no record for {len(lost)} requested score(s), "
                         f"e.g. {lost[:3]}")


def _spill_or_raise(store: ResultStore, records: list[Record], error: BaseException) -> str:
    """Writes a computed chunk to a side file; if even that fails, raises ``error``."""
    try:
        return store.spill(records)
    except (OSError, StoreError, ValueError) as spill_error:
        raise StoreError(f"{error}; the chunk's {len(records)} computed scores could not be "
                         f"saved to a side file either ({spill_error})") from error


def _write_chunk(store: ResultStore, records: list[Record], retries: int,
                 retry_wait_s: float) -> str | None:
    """Stores a computed chunk; None when stored, else the side file it went to.

    A lock is retried ``retries`` times (each try waits up to the store's timeout), then the
    chunk is spilled and the sweep goes on. Any other store failure spills the chunk and
    raises, naming the side file. Ctrl-C during the write spills the chunk too (a chunk that
    was committed just before is only found again as duplicates).
    """
    for attempt in range(retries + 1):
        try:
            store.put_many(records)
            return None
        except StoreLockedError as e:
            if attempt < retries:
                time.sleep(retry_wait_s * (attempt + 1))
                continue
            path = _spill_or_raise(store, records, e)
            warnings.warn(f"{e} -- after {retries + 1} tries the chunk's {len(records)} "
                          f"computed scores went to {path}; the next run merges them",
                          stacklevel=3)
            return path
        except KeyboardInterrupt as e:
            if store.path != ":memory:":
                _spill_or_raise(store, records, e)
            raise
        except StoreError as e:
            if store.path == ":memory:" or isinstance(e, ConflictError):
                raise
            path = _spill_or_raise(store, records, e)
            raise type(e)(f"{e} -- the chunk's {len(records)} computed scores were saved to "
                          f"{path}; the next run merges them") from e
    raise AssertionError("unreachable")  # pragma: no cover


def run_resumable(tasks: Sequence[Task], compute: Callable[[list[Task]], Iterable[Record]],
                  store: ResultStore, *, chunk_size: int,
                  progress: bool | Progress = True, desc: str = "sweep",
                  write_retries: int = 2, retry_wait_s: float = 1.0,
                  prepare: Callable[[list[Task], Progress], Any] | None = None
                  ) -> SweepSummary:
    """Compute and store every task's missing scores; resumable after any crash.

    Args:
      tasks: the sweep. Each (setting, arch, seed) may appear only once.
      compute: called with a chunk (list of at most ``chunk_size`` tasks,
        each reduced to its missing proxies); must return exactly one
        :class:`Record` per (task, proxy) of the chunk, e.g. built with
        :meth:`Task.record`. Records without ``seconds`` get the chunk's
        wall time divided evenly among them.
      store: where results go (and what is skipped).
      chunk_size: tasks per ``compute`` call and per write transaction; the
        unit of memory use and of work lost on a crash.
      progress: ``True`` prints progress lines to stderr (see
        :class:`Progress`), ``False`` is silent, or pass your own
        :class:`Progress` (its ``total`` is set here).
      desc: progress label.
      write_retries: how often a write that found the store locked (after
        waiting the store's timeout) is retried before the chunk is spilled.
      retry_wait_s: pause before the first retry (doubled for the second, ...).
      prepare: called once, before the first chunk and only if there is something to
        compute, with the tasks to compute (reduced to their missing proxies) and the
        :class:`Progress`: one-time work goes there (e.g. compiling), wrapped in
        ``progress.phase(message, label)`` so that it is announced, timed, and left out
        of the per-task rate and the ETA. A Ctrl-C in it stops the run like one in a chunk.

    Returns:
      A :class:`SweepSummary`.

    Raises:
      SweepInterrupted: (a ``KeyboardInterrupt``) on Ctrl-C, after the
        finished chunks were stored; carries the summary. We re-raise rather
        than return so that code after the sweep (analysis, plots) never runs
        silently on partial results.
      ValueError: on duplicate tasks or if ``compute`` returns a wrong set of
        records (nothing of that chunk is written).
      ConflictError: if a record conflicts with a stored score.
      StoreReadOnlyError: a read-only store (before anything is computed).
      ScoresSpilledError: the store stayed locked, so some computed scores
        are in side files (nothing is lost: rerun to merge them).
      StoreError: the store failed otherwise; the computed chunk is in a side
        file named in the message.
      Any exception of ``compute`` propagates; earlier chunks stay stored.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if getattr(store, "readonly", False):
        raise StoreReadOnlyError(f"{store.path!r} was opened read-only: a sweep cannot store "
                                 "its scores there (nothing was computed)")
    t_start = time.monotonic()
    tasks = list(tasks)
    if store.pending_spills():  # scores computed by an earlier run that the store could not take
        try:
            store.merge_spills()
        except StoreLockedError as e:
            warnings.warn(f"could not merge earlier spill files yet: {e}", stacklevel=2)

    # Index tasks per setting and reject duplicates.
    by_setting: dict[tuple[str, str, str], set[str]] = {}
    seen: set[tuple] = set()
    for t in tasks:
        ident = t.setting + (t.arch, t.seed)
        if ident in seen:
            raise ValueError(f"duplicate task: arch {t.arch!r} seed {t.seed} in setting {t.setting}")
        seen.add(ident)
        by_setting.setdefault(t.setting, set()).update(t.proxies)
    del seen

    # One query per setting (normally one) for what is stored already.
    pending: list[Task] = []
    scores_skipped = 0
    for setting, proxies in by_setting.items():
        have = store.stored_proxies(*setting, proxies=proxies)
        none: set[str] = set()
        for t in tasks:
            if t.setting != setting:
                continue
            got = have.get((t.arch, t.seed), none)
            miss = tuple(p for p in t.proxies if p not in got)
            scores_skipped += len(t.proxies) - len(miss)
            if miss:
                pending.append(t if len(miss) == len(t.proxies) else
                               dataclasses.replace(t, proxies=miss))
        del have
    if len(by_setting) > 1:  # restore the caller's task order across settings
        order = {t.setting + (t.arch, t.seed): i for i, t in enumerate(tasks)}
        pending.sort(key=lambda t: order[t.setting + (t.arch, t.seed)])
    tasks_skipped = len(tasks) - len(pending)

    if isinstance(progress, Progress):
        bar = progress
        bar.total = len(pending)
    else:
        bar = Progress(len(pending), desc=desc, unit="task", enabled=bool(progress))
    bar.write(f"{len(tasks)} tasks: {tasks_skipped} already stored, {len(pending)} to compute "
              f"in {math.ceil(len(pending) / chunk_size)} chunks of <= {chunk_size}")

    computed = written = nan_count = chunks = spilled = 0
    interrupted = False

    def summary() -> SweepSummary:
        return SweepSummary(
            tasks_total=len(tasks), tasks_skipped=tasks_skipped, tasks_computed=computed,
            tasks_remaining=len(pending) - computed, scores_skipped=scores_skipped,
            scores_written=written, nan_count=nan_count, chunks=chunks,
            elapsed_s=time.monotonic() - t_start, interrupted=interrupted, spilled=spilled)

    try:
        if prepare is not None and pending:
            prepare(list(pending), bar)
        for lo in range(0, len(pending), chunk_size):
            chunk = pending[lo:lo + chunk_size]
            t0 = time.monotonic()
            records = list(compute(chunk))
            dt = time.monotonic() - t0
            _validate(chunk, records)
            if records and any(r.seconds is None for r in records):
                share = dt / len(records)
                records = [r if r.seconds is not None else dataclasses.replace(r, seconds=share)
                           for r in records]
            # One transaction: the chunk is durable now (or in a side file, if the store was
            # locked past its timeout and the retries).
            if _write_chunk(store, records, write_retries, retry_wait_s) is not None:
                spilled += len(records)
            else:
                _quiet_checkpoint(store, "PASSIVE")  # the main file alone is now up to date
            computed += len(chunk)
            written += len(records)
            nan_count += sum(1 for r in records if r.is_nan)
            chunks += 1
            del records, chunk
            bar.update(min(chunk_size, len(pending) - lo))
    except KeyboardInterrupt:
        interrupted = True
        _quiet_checkpoint(store, "TRUNCATE")
        result = summary()
        bar.close()
        bar.write(str(result))
        raise SweepInterrupted(result) from None
    if spilled:  # the lock may be gone by now
        try:
            store.merge_spills()
            spilled = 0
        except StoreLockedError:
            pass
    _quiet_checkpoint(store, "TRUNCATE")
    bar.close()
    result = summary()
    bar.write(str(result))
    if spilled:
        files = store.pending_spills()
        raise ScoresSpilledError(
            f"{store.path!r} stayed locked: {spilled} computed scores are safe in "
            f"{len(files)} side files in {spill_dir(store.path)}; "
            "rerun the same sweep once the lock is released (or call "
            "ResultStore(path).merge_spills()) to merge them. " + str(result), result, files)
    return result


def _quiet_checkpoint(store: ResultStore, mode: str) -> None:
    """Checkpoint the WAL if the store supports it; a failure only delays it to the next one."""
    checkpoint = getattr(store, "checkpoint", None)
    if checkpoint is not None:
        try:
            checkpoint(mode)
        except StoreError:
            pass
