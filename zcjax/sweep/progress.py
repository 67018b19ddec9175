"""Minimal, log-friendly progress reporting for long sweeps.

Why not tqdm? tqdm is not a declared dependency of zcjax, and its
carriage-return redraws turn into thousands of garbage lines in the log files
of batch jobs (SLURM, cloud TPU VMs), which is where long sweeps run. This
reporter instead emits one complete line at most every ``interval`` seconds,
through any ``write(str)`` callable: the default prints to ``sys.stderr``;
pass ``absl.logging.info`` (or ``logging.getLogger(...).info``) to route the
lines through a logger. Example lines::

    sweep: compiling the nb201 program for synflow, snip (cached in ...) ...
    sweep: compiling done in 3 min 14 s
    sweep: 1200/15625 (7.7%) 41.3 task/s elapsed 0:03:43 (compiling 0:03:14) ETA 0:05:49

Rates and ETAs count work only. One-time work that is not per item (compiling
a program before the first item) runs as a :meth:`Progress.phase`: it is
announced, timed and left out of the rate. The first rate sample still pays
the costs that come with the first items (JAX compiles each primitive of an
eager computation on its first use, caches fill), so it stands only until a
second sample exists; from then on the rate is an exponential moving average
of the later samples.

With an unknown total the count, rate and elapsed time are shown without
percentage or ETA. :attr:`Progress.status`, when set, is appended to every line
(a training loop puts its running loss and accuracy there)::

    supernet seed 0: 120/2000 (6.0%) 2.41 step/s elapsed 0:00:50 ETA 0:13:00 loss 2.087 acc 0.231
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Progress", "format_duration", "format_rate", "format_seconds"]


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours may exceed 24); ``?`` for unknown/infinite."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{(s // 60) % 60:02d}:{s % 60:02d}"


def format_seconds(seconds: float) -> str:
    """``12.3 s`` below a minute, ``3 min 14 s`` below an hour, else ``H:MM:SS``."""
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    if seconds < 3599.5:
        s = int(round(seconds))
        return f"{s // 60} min {s % 60} s"
    return format_duration(seconds)


def format_rate(rate: float, unit: str) -> str:
    """``12.3 it/s``, or ``4.56 s/it`` when slower than one item per second."""
    if not math.isfinite(rate) or rate <= 0:
        return f"? {unit}/s"
    if rate >= 1.0:
        return f"{rate:.1f} {unit}/s"
    return f"{1.0 / rate:.2f} s/{unit}"


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Progress:
    """Rate-limited progress reporter printing items/s and ETA.

    Args:
      total: number of items expected, or ``None`` if unknown.
      desc: label printed at the start of each line.
      unit: item unit name used in rates.
      interval: minimum seconds between two progress lines (the final line
        written by :meth:`close` is always printed).
      write: callable receiving each line (no trailing newline); default:
        print to stderr. ``absl.logging.info`` works.
      enabled: if False, nothing is ever written (but counts are kept).
      clock: monotonic time source (injectable for tests).
      smoothing: weight of the newest interval in the exponential moving
        average of the rate used for the ETA (1.0 = last interval only,
        small = close to the overall average). The first interval's rate is
        replaced, not averaged, by the second's (module doc).
      initial: items already done before this reporter started (a resumed
        run): counted in the total, not in the rate.

    Use as a context manager, or call :meth:`close` at the end. Wrap one-time
    work that should not count as per-item time in :meth:`phase`.
    """

    def __init__(self, total: int | None = None, *, desc: str = "", unit: str = "it",
                 interval: float = 1.0, write: Callable[[str], Any] | None = None,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic,
                 smoothing: float = 0.3, initial: int = 0) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total must be >= 0 or None, got {total}")
        self.total = total
        self.desc = desc
        self.unit = unit
        self.interval = float(interval)
        self.enabled = enabled
        self._write = write or _stderr_line
        self._clock = clock
        self._alpha = float(smoothing)
        self.initial = int(initial)
        self.n = self.initial
        self.start = clock()
        self._last_t = self.start  # time of the last rate sample / emitted line
        self._last_n = self.initial
        self._rate: float | None = None
        self._samples = 0
        self.phases: dict[str, float] = {}  # label -> seconds spent in phases of that label
        self.closed = False
        #: Free text appended to every progress line (e.g. ``"loss 2.09 acc 0.23"``).
        self.status = ""

    # -------------------------------------------------------------- updates
    def update(self, n: int = 1) -> None:
        """Record ``n`` more finished items; may print a line."""
        self.n += n
        now = self._clock()
        if now - self._last_t >= self.interval:
            self._sample(now)
            self._emit(now)

    def _sample(self, now: float) -> None:
        dt = now - self._last_t
        if dt > 0 and self.n > self._last_n:
            inst = (self.n - self._last_n) / dt
            # The first sample carries the first items' one-time costs: the second replaces it.
            self._rate = inst if self._samples < 2 else (
                self._alpha * inst + (1.0 - self._alpha) * self._rate)
            self._samples += 1
        self._last_t = now
        self._last_n = self.n

    @contextlib.contextmanager
    def phase(self, message: str, label: str = "preparing") -> Iterator[None]:
        """Announces, times and reports one-time work that is not per-item time.

        Writes ``message`` (with `` ...``) when the phase starts and ``<label> done in
        <time>`` when it ends; its time is left out of the rate and the ETA, and shown
        beside the elapsed time as ``(<label> H:MM:SS)``. A phase that raises writes
        nothing more, but its time is still left out.
        """
        self.write(f"{message} ...")
        t0 = self._clock()
        try:
            yield
        finally:
            dt = max(self._clock() - t0, 0.0)
            self.phases[label] = self.phases.get(label, 0.0) + dt
            self._last_t += dt  # the next rate sample covers work time only
        self.write(f"{label} done in {format_seconds(dt)}")

    @property
    def elapsed(self) -> float:
        """Seconds since creation (phases included)."""
        return self._clock() - self.start

    def _work_time(self, now: float) -> float:
        return now - self.start - sum(self.phases.values())

    @property
    def rate(self) -> float:
        """Smoothed items per second of work, phases left out (the overall average before
        the first sample)."""
        if self._rate is not None:
            return self._rate
        work = self._work_time(self._clock())
        return (self.n - self.initial) / work if work > 0 else math.nan

    def format(self, now: float | None = None, *, final: bool = False) -> str:
        """The status line for the current state."""
        now = self._clock() if now is None else now
        elapsed = now - self.start
        prefix = f"{self.desc}: " if self.desc else ""
        work = self._work_time(now)
        done = self.n - self.initial
        rate = (done / work if work > 0 else math.nan) if final else self.rate
        if self.total is None:
            count = f"{self.n} {self.unit}"
        else:
            pct = 100.0 * self.n / self.total if self.total else 100.0
            count = f"{self.n}/{self.total} ({pct:.1f}%)"
        line = f"{prefix}{count} {format_rate(rate, self.unit)} elapsed {format_duration(elapsed)}"
        if self.phases:
            line += " (" + ", ".join(f"{label} {format_duration(t)}"
                                     for label, t in self.phases.items()) + ")"
        if self.total is not None and not final:
            remaining = max(self.total - self.n, 0)
            eta = 0.0 if remaining == 0 else (remaining / rate if rate and rate > 0 else math.inf)
            line += f" ETA {format_duration(eta)}"
        return f"{line} {self.status}" if self.status else line

    def _emit(self, now: float, *, final: bool = False) -> None:
        if self.enabled:
            self._write(self.format(now, final=final))

    def write(self, message: str) -> None:
        """Print a free-form message through the same channel (if enabled)."""
        if self.enabled:
            self._write(f"{self.desc}: {message}" if self.desc else message)

    def close(self) -> None:
        """Print the final line (count, average rate over work time, elapsed); idempotent.

        Nothing is printed when there was nothing to do (a total of 0).
        """
        if self.closed:
            return
        self.closed = True
        if self.total == 0 and self.n == 0:
            return
        self._emit(self._clock(), final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
