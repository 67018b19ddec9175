"""The oldest JAX and Flax zcjax works with, checked when zcjax is imported.

With a JAX older than the floor (a cluster module that pip cannot replace, an install with
``--no-deps``, a Colab runtime not restarted after an upgrade) the code would fail much later,
with an AttributeError deep in a sweep (``jax.lax.pcast``, ``jax.enable_x64``, ...). This
check turns that into one ImportError that names the fix. It runs before zcjax imports JAX or
Flax, and reads the installed versions from the package metadata, so an old Flax that cannot
even be imported with this JAX is reported the same way.

``MINIMUM`` must equal the floors in ``pyproject.toml`` (``tests/test_dependencies.py`` checks
it). What sets each floor, found by installing older releases and running the tests
(``tools/check_floors.py`` installs exactly these floors and runs a fast subset):

* jax 0.8.2: ``jax.lax.pcast`` (``zcjax/sweep/engine.py``, ``score_sharded``) first appears in
  0.8.2 (0.8.1 and older: AttributeError); ``jax.enable_x64`` as a context manager (synflow,
  epsilon, croze) in 0.8.0; top-level ``jax.shard_map`` is in 0.6.2 already.
* flax 0.10.0: older releases import with this JAX but fail in ``Module.init`` (flax 0.8.3 to
  0.9.0: ``'DynamicJaxprTrace' object has no attribute 'level'``); 0.8.2 and older do not
  import at all (``jax.experimental.maps``).
"""

from __future__ import annotations

import re
from importlib import metadata

#: distribution name -> oldest supported version (the floors of pyproject.toml).
MINIMUM = {"jax": "0.8.2", "flax": "0.10.0"}


def parse(version: str) -> tuple[int, ...] | None:
    """The leading numeric release parts of a version string, or None if it has none.

    ``"0.8.2"`` -> ``(0, 8, 2)``; ``"0.9.0.1"`` -> ``(0, 9, 0, 1)``; ``"0.8.2.dev20251201+cuda"``
    -> ``(0, 8, 2)``; ``"0.10rc1"`` -> ``(0, 10)``. Pre-releases and local builds of a release
    count as that release.
    """
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def at_least(found: str, floor: str) -> bool:
    """``found >= floor`` on the numeric parts; True if either cannot be parsed (no false alarm)."""
    have, need = parse(found), parse(floor)
    if have is None or need is None:
        return True
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``; None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check(minimum: dict[str, str] = MINIMUM) -> None:
    """Raises ImportError naming the first package in ``minimum`` that is installed but too old.

    A package that is not installed at all is left to the import that needs it (its own
    ModuleNotFoundError is clearer than anything said here).
    """
    for name, floor in minimum.items():
        found = installed_version(name)
        if found is not None and not at_least(found, floor):
            raise ImportError(
                f"zcjax needs {name} >= {floor}, found {found}; pip install -U '{name}>={floor}'"
                + (" (for GPU/TPU builds see the README's Accelerators section)"
                   if name == "jax" else ""))
