#!/usr/bin/env python3
"""Checks that zcjax works with the oldest versions ``pyproject.toml`` allows.

Makes a fresh virtual environment in a temporary folder, installs the package with every
direct dependency (and the ``test`` extra) pinned to exactly its floor, the ``>=`` version in
``pyproject.toml`` (transitive dependencies resolve as pip chooses), checks that the pins took,
and runs a fast subset of the tests that exercises the version-sensitive code: the sharded
sweep (``jax.shard_map``, ``jax.lax.pcast``), the float64 scopes (``jax.enable_x64``), Flax's
method interception and perturbations, SciPy statistics, the scikit-learn forests, the
matplotlib figures, the absl scripts, and the optax / orbax usage of ``tests/test_dependencies.py``.

    python tools/check_floors.py              # 4 to 5 minutes on 2 CPU cores
    python tools/check_floors.py --keep       # keep the environment, print its path
    python tools/check_floors.py --venv DIR   # reuse (or create) DIR instead of a temporary one
    python tools/check_floors.py -- -k epsilon  # extra pytest arguments after --

Run it with the Python of ``requires-python``'s floor to check that floor too (it warns when
the interpreter is another version). Exit status 0 and ``FLOORS PASS`` when every test passed.
Needs network access to the package index.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The fast subset (pytest arguments, run from the repository root). What each part covers:
#: test_dependencies: the import-time version check, optax and orbax usage, and score_sharded on
#: two host devices (shard_map + pcast); test_data / spaces / benchmarks / sweep store: NumPy,
#: the Flax network (init, apply, sow, intercept_methods); proxies: jax.enable_x64 scopes
#: (synflow, epsilon, croze), perturbations (fisher), RNG streams (zen, meco), chex;
#: evaluate: SciPy statistics, scikit-learn forests; experiments: absl flags and apps,
#: matplotlib figures; test_engine (cheap part): the supernet.
FAST_TESTS = [
    "tests/test_dependencies.py",
    "tests/test_data.py",
    "tests/spaces",
    "tests/benchmarks",
    "tests/evaluate",
    "tests/sweep/test_store.py",
    "tests/proxies",
    "tests/experiments/test_experiments.py",
    "tests/sweep/test_engine.py",
    "-k",
    "not four_device and not fifty_cells and not scores_equal_static and not grasp_equals_static"
    " and not compute_chunk",
]


def requirement_floor(spec: str) -> tuple[str, str]:
    """``"jax>=0.8.2"`` -> ``("jax", "0.8.2")``; a requirement without ``>=`` is an error."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*",
                         spec)
    if not match:
        raise SystemExit(f"check_floors: cannot read a '>=' floor from {spec!r} in pyproject.toml")
    return match.group(1), match.group(3)


def floors(pyproject: pathlib.Path) -> tuple[dict[str, str], str]:
    """(distribution -> floor for the dependencies and the test extra, requires-python floor)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    pins = dict(requirement_floor(s) for s in specs)
    python = re.fullmatch(r"\s*>=\s*([0-9.]+)\s*", project["requires-python"])
    if not python:
        raise SystemExit("check_floors: requires-python is not of the form '>=X.Y'")
    return pins, python.group(1)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def same_version(a: str | None, b: str) -> bool:
    """``8`` == ``8.0.0``; anything that is not a plain release compares as text."""
    if a is None:
        return False
    plain = re.compile(r"\d+(\.\d+)*")
    if plain.fullmatch(a) and plain.fullmatch(b):
        x, y = [int(p) for p in a.split(".")], [int(p) for p in b.split(".")]
        n = max(len(x), len(y))
        return x + [0] * (n - len(x)) == y + [0] * (n - len(y))
    return a == b


def run(cmd: list[str], log: pathlib.Path | None = None) -> None:
    """Runs ``cmd``; with ``log``, its output goes there and is shown only if it fails."""
    print("+", " ".join(cmd), flush=True)
    if log is None:
        subprocess.run(cmd, check=True)
        return
    with open(log, "w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        print(log.read_text()[-6000:])
        raise SystemExit(f"FLOORS FAIL: {cmd[3:5]} exited {done.returncode} (log: {log})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=pathlib.Path, help="environment folder (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary environment")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the environment")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    pins, python_floor = floors(ROOT / "pyproject.toml")
    print("floors:", ", ".join(f"{k}=={v}" for k, v in pins.items()), f"| python>={python_floor}")
    start = time.monotonic()
    venv = args.venv or pathlib.Path(tempfile.mkdtemp(prefix="zcjax-floors-"))
    try:
        if not (venv / "bin" / "python").exists():
            run([args.python, "-m", "venv", str(venv)])
        py = str(venv / "bin" / "python")
        version = subprocess.run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        if version != python_floor:
            print(f"note: the environment's Python is {version}, requires-python's floor is "
                  f"{python_floor}; run with --python=python{python_floor} to check that floor")
        pip = [py, "-m", "pip", "--disable-pip-version-check"]
        log = venv / "pip.log"
        run(pip + ["install", "--upgrade", "pip"], log)
        run(pip + ["install", "-e", f"{ROOT}[test]"] + [f"{k}=={v}" for k, v in pins.items()],
            log)
        listed = json.loads(subprocess.run(pip + ["list", "--format=json"], check=True,
                                           capture_output=True, text=True).stdout)
        have = {canonical(d["name"]): d["version"] for d in listed}
        wrong = {k: have.get(canonical(k)) for k, v in pins.items()
                 if not same_version(have.get(canonical(k)), v)}
        if wrong:
            print(f"FLOORS FAIL: installed versions differ from the floors: {wrong}")
            return 1
        installed = time.monotonic()
        print(f"installed in {installed - start:.0f} s:",
              ", ".join(f"{k} {have[canonical(k)]}" for k in pins), flush=True)
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.pop("PYTHONPATH", None)
        tests = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAST_TESTS,
                                *args.pytest_args], cwd=ROOT, env=env)
        elapsed = time.monotonic() - start
        verdict = "PASS" if tests.returncode == 0 else f"FAIL (pytest exit {tests.returncode})"
        print(f"FLOORS {verdict}: python {version}, "
              + ", ".join(f"{k} {v}" for k, v in pins.items())
              + f"; {elapsed:.0f} s in all ({elapsed - (installed - start):.0f} s of tests)")
        return tests.returncode
    finally:
        if args.venv is None and not args.keep:
            shutil.rmtree(venv, ignore_errors=True)
        elif args.venv is None:
            print(f"environment kept at {venv}")


if __name__ == "__main__":
    sys.exit(main())
