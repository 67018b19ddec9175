"""Checks for the integers that enter zcjax from outside, and a cap for echoed input.

Indices and seeds are *integers only*: ``3.7``, ``"5"``, ``True`` or ``-0.5`` are refused, not
rounded, because a silently coerced index is another architecture and a silently coerced seed is
another initialisation (or, worse, the same one as a different stored seed).

Seed range: ``0 <= seed < 2**31`` (:data:`SEED_MAX` is the largest). JAX turns a seed into a key
through 32-bit integers, so outside this range distinct Python integers collide: ``0`` and
``2**32`` give the same key, and so do ``-1`` and ``2**32 - 1``. Every seed in the range fits a
signed 32-bit integer, so it maps to one key on every backend and with or without
``jax_enable_x64``, and two different stored seeds are always two different initialisations.

Accepted integer types: Python ``int`` and NumPy / JAX integer scalars (anything with
``__index__``), except ``bool`` and ``numpy.bool_``.

:func:`cap` shortens text that is echoed in an error message (a cell string, a file name, a
proxy name) so that a 10 MB input does not come back as a 10 MB message.
"""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["SEED_MAX", "NotAnIntegerError", "cap", "check_index", "check_int", "check_seed"]

#: The largest accepted seed (seeds are ``0 <= seed <= SEED_MAX``, i.e. ``< 2**31``).
SEED_MAX = 2**31 - 1

_DEFAULT_CAP = 200


class NotAnIntegerError(TypeError, ValueError):
    """A non-integer where an integer is required.

    Both a ``TypeError`` (what it is) and a ``ValueError`` (what zcjax raised for bad input
    before), so either ``except`` clause catches it.
    """


def cap(text: Any, limit: int = _DEFAULT_CAP) -> str:
    """``repr``-free shortening for messages: ``str(text)``, cut to about ``limit`` characters.

    Longer text keeps its start and end and says how much was left out, e.g.
    ``'|nor_conv_3x3~0|...[9,999,800 more characters]...|skip_connect~2|'``.
    """
    text = text if isinstance(text, str) else str(text)
    limit = max(int(limit), 20)
    if len(text) <= limit:
        return text
    head = (limit * 2) // 3
    tail = limit - head
    return f"{text[:head]}...[{len(text) - head - tail:,} more characters]...{text[-tail:]}"


def _describe(value: Any) -> str:
    """``repr(value)``, capped: what a message may say about a bad value."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return cap(text, 80)


def check_int(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as a Python ``int`` if it is an integer in ``lo..hi`` (inclusive bounds).

    Raises:
      NotAnIntegerError: (a ``TypeError`` and ``ValueError``) not an integer (float, str, bool,
        None, ...): nothing is rounded or parsed.
      ValueError: an integer outside ``lo..hi``.
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise NotAnIntegerError(f"{name} must be an integer, got a bool ({value!r})")
    try:
        number = operator.index(value)
    except TypeError:
        raise NotAnIntegerError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{_describe(value)}") from None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be in {lo_s}..{hi_s}, got {cap(str(number), 80)}")
    return int(number)


def check_index(index: Any, size: int, name: str = "index") -> int:
    """An index into ``size`` items: an integer in ``0..size-1`` (no negative indexing)."""
    return check_int(index, name, 0, size - 1)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed: an integer in ``0..2**31-1`` (see the module docstring for why this range)."""
    return check_int(seed, name, 0, SEED_MAX)
