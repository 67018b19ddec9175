"""Minimal, log-friendly progress reporting for long sweeps.

Why not tqdm? tqdm is not a declared dependency of zcjax, and its
carriage-return redraws turn into thousands of garbage lines in the log files
of batch jobs (SLURM, cloud TPU VMs), which is where long sweeps run. This
reporter instead emits one complete line at most every ``interval`` seconds,
through any ``write(str)`` callable: the default prints to ``sys.stderr``;
pass ``absl.logging.info`` (or ``logging.getLogger(...).info``) to route the
lines through a logger. Example line::

    sweep: 1200/15625 (7.7%) 41.3 task/s elapsed 0:00:29 ETA 0:05:49

With an unknown total the count, rate and elapsed time are shown without
percentage or ETA. :attr:`Progress.status`, when set, is appended to every line
(a training loop puts its running loss and accuracy there)::

    supernet seed 0: 120/2000 (6.0%) 2.41 step/s elapsed 0:00:50 ETA 0:13:00 loss 2.087 acc 0.231
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "format_duration", "format_rate"]


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours may exceed 24); ``?`` for unknown/infinite."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{(s // 60) % 60:02d}:{s % 60:02d}"


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
        small = close to the overall average).
      initial: items already done before this reporter started (a resumed
        run): counted in the total, not in the rate.

    Use as a context manager, or call :meth:`close` at the end.
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
            self._rate = inst if self._rate is None else (
                self._alpha * inst + (1.0 - self._alpha) * self._rate)
        self._last_t = now
        self._last_n = self.n

    @property
    def elapsed(self) -> float:
        """Seconds since creation."""
        return self._clock() - self.start

    @property
    def rate(self) -> float:
        """Smoothed items per second (overall average before the first sample)."""
        if self._rate is not None:
            return self._rate
        el = self.elapsed
        return (self.n - self.initial) / el if el > 0 else math.nan

    def format(self, now: float | None = None, *, final: bool = False) -> str:
        """The status line for the current state."""
        now = self._clock() if now is None else now
        elapsed = now - self.start
        prefix = f"{self.desc}: " if self.desc else ""
        done = self.n - self.initial
        rate = (done / elapsed if elapsed > 0 else math.nan) if final else self.rate
        if self.total is None:
            count = f"{self.n} {self.unit}"
        else:
            pct = 100.0 * self.n / self.total if self.total else 100.0
            count = f"{self.n}/{self.total} ({pct:.1f}%)"
        line = f"{prefix}{count} {format_rate(rate, self.unit)} elapsed {format_duration(elapsed)}"
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
        """Print the final line (count, overall average rate, elapsed); idempotent."""
        if self.closed:
            return
        self.closed = True
        self._emit(self._clock(), final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
