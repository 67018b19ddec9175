"""Where a compiled proxy program spends its time: seconds per pass and per proxy, from one run.

Fused evaluation (:func:`zcjax.scoring.proxy_suite`) compiles many proxies into one XLA program,
so timing a proxy means either compiling it alone (minutes each on CPU) or looking inside the
fused program. This module does the latter:

1. every proxy is traced under ``jax.named_scope("proxy.<name>")`` and every shared pass of
   :class:`~zcjax.proxies.context.Context` (and a few passes shared by a proxy's variants) under
   ``"pass.<what>"``, so each HLO instruction's ``op_name`` metadata names the scope that made
   it (:data:`PROXY_SCOPE`, :data:`PASS_SCOPE`);
2. :func:`profile_compiled` runs the compiled program under JAX's profiler
   (``jax.profiler.trace``; part of jaxlib, nothing else to install), reads back the time of
   every executed HLO instruction (XLA:CPU's thunks, GPU kernels: the trace's ``hlo_op``), and
   sums it by scope (:func:`scope_of`): a shared pass is charged to the pass, whichever proxy
   asked for it first; the rest of a proxy's own work to the proxy.

The scopes are metadata only: they change neither the computation nor its results. Instructions
that only sequence others (``conditional``, ``while``, ``call``) are left out of the sums, since
the instructions they run are traced on their own; XLA may run independent instructions at the
same time, so the scope times can add up to more than the wall time (both are reported).
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import os
import re
import statistics
import tempfile
import time
from typing import Any, Iterable, Mapping, Sequence

import jax

#: Prefix of the named scope each proxy is traced under (``proxy.grad_norm``).
PROXY_SCOPE = "proxy."
#: Prefix of the named scope of a pass shared by several proxies (``pass.forward``).
PASS_SCOPE = "pass."
#: Where instructions outside every proxy go (e.g. the supernet's parameter masking).
OTHER = "other"

_NAME = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_MODULE = re.compile(r"^HloModule\s+([\w.\-]+)", re.MULTILINE)
#: Instructions whose time is the time of the instructions they run (traced on their own).
_CONTAINERS = re.compile(r"\s(conditional|while|call)\(")


def proxy_scope(name: str) -> str:
    return PROXY_SCOPE + name


def pass_scope(name: str) -> str:
    return PASS_SCOPE + name


def scope_of(op_name: str) -> str:
    """The scope an instruction's ``op_name`` is charged to: its outermost ``pass.*``
    component if it has one, else its outermost ``proxy.*`` component, else :data:`OTHER`."""
    parts = op_name.split("/")
    for prefix in (PASS_SCOPE, PROXY_SCOPE):
        for part in parts:
            if part.startswith(prefix):
                return part
    return OTHER


def instruction_scopes(hlo_text: str) -> dict[str, str | None]:
    """Instruction name -> scope (:func:`scope_of`) for every instruction of a compiled HLO
    module's text; ``None`` for containers (``conditional``, ``while``, ``call``), whose
    instructions are traced separately."""
    out: dict[str, str | None] = {}
    for line in hlo_text.splitlines():
        match = _NAME.match(line)
        if not match:
            continue
        op_name = _OP_NAME.search(line)
        out[match.group(1)] = (None if _CONTAINERS.search(line)
                               else scope_of(op_name.group(1) if op_name else ""))
    return out


def module_name(hlo_text: str) -> str:
    match = _MODULE.search(hlo_text)
    if not match:
        raise ValueError("not the text of an HLO module (no 'HloModule <name>' line)")
    return match.group(1)


def instruction_seconds(events: Iterable[Mapping[str, Any]], module: str) -> dict[str, float]:
    """Total seconds per HLO instruction of ``module`` in a Chrome trace's events (complete
    events, ``"ph": "X"``, durations in microseconds, the instruction in ``args["hlo_op"]``)."""
    out: dict[str, float] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("ph") != "X" or args.get("hlo_module") != module or "hlo_op" not in args:
            continue
        out[args["hlo_op"]] = out.get(args["hlo_op"], 0.0) + float(event["dur"]) * 1e-6
    return out


def seconds_by_scope(hlo_text: str, seconds: Mapping[str, float]) -> dict[str, float]:
    """Instruction seconds summed by scope (instructions the text lacks go to :data:`OTHER`)."""
    scopes = instruction_scopes(hlo_text)
    out: dict[str, float] = {}
    for instruction, s in seconds.items():
        scope = scopes.get(instruction, OTHER)
        if scope is not None:
            out[scope] = out.get(scope, 0.0) + s
    return out


@dataclasses.dataclass(frozen=True)
class Profile:
    """Per call of a compiled program: the wall time (median) and the time of its
    instructions by scope (mean over the profiled calls)."""

    wall_s: float
    by_scope: Mapping[str, float]

    @property
    def traced_s(self) -> float:
        return sum(self.by_scope.values())

    def rows(self) -> list[tuple[str, float, float]]:
        """``(scope, seconds, share of the traced time)``, slowest first."""
        total = self.traced_s or 1.0
        return [(k, v, v / total) for k, v in
                sorted(self.by_scope.items(), key=lambda kv: -kv[1])]

    def plus(self, other: "Profile") -> "Profile":
        """Two programs run one after the other (e.g. a compiled one and eager proxies)."""
        scopes = dict(self.by_scope)
        for k, v in other.by_scope.items():
            scopes[k] = scopes.get(k, 0.0) + v
        return Profile(self.wall_s + other.wall_s, scopes)

    def table(self, title: str = "") -> str:
        """A Markdown table: one row per scope, then the totals."""
        return table({"s per call": self}, title)


def table(profiles: Mapping[str, Profile], title: str = "") -> str:
    """A Markdown table with one column per profile (e.g. per architecture): seconds per call
    by scope with its share of the profile's instruction time, slowest first (by the first
    column), then the sum over scopes and the wall time."""
    if not profiles:
        raise ValueError("no profiles to tabulate")
    first = next(iter(profiles.values()))
    scopes = sorted({k for p in profiles.values() for k in p.by_scope},
                    key=lambda k: -first.by_scope.get(k, 0.0))
    heads = list(profiles)
    lines = ["| " + " | ".join([title or "scope", *heads]) + " |",
             "| --- |" + " ---: |" * len(heads)]
    for scope in scopes:
        cells = []
        for p in profiles.values():
            v = p.by_scope.get(scope)
            cells.append("" if v is None else f"{v:.3f} ({v / (p.traced_s or 1.0):.0%})")
        lines.append("| " + " | ".join([scope, *cells]) + " |")
    lines.append("| (sum of the above) | " + " | ".join(f"{p.traced_s:.3f}"
                                                       for p in profiles.values()) + " |")
    lines.append("| (wall time) | " + " | ".join(f"{p.wall_s:.3f}"
                                                for p in profiles.values()) + " |")
    return "\n".join(lines)


def _trace_events(directory: str) -> list[dict]:
    files = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True))
    if not files:
        raise RuntimeError(f"JAX's profiler wrote no trace under {directory}")
    events = []
    for path in files:
        with gzip.open(path, "rt") as f:
            events += json.load(f).get("traceEvents", [])
    return events


def profile_compiled(compiled: Any, args: Sequence[Any], repeats: int = 3) -> Profile:
    """Runs ``compiled(*args)`` (a ``jax.stages.Compiled``) once untraced, then ``repeats``
    times under JAX's profiler, and returns where the time went (module doc)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    text = compiled.as_text()
    module = module_name(text)
    jax.block_until_ready(compiled(*args))  # an executable's first run also sets up
    walls = []
    with tempfile.TemporaryDirectory(prefix="zcjax_profile_") as directory:
        with jax.profiler.trace(directory):
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                walls.append(time.perf_counter() - start)
        seconds = instruction_seconds(_trace_events(directory), module)
    if not seconds:
        raise RuntimeError(f"the trace holds no instruction of {module}: this backend's "
                           "profiler does not report HLO instructions")
    by_scope = {k: v / repeats for k, v in seconds_by_scope(text, seconds).items()}
    return Profile(wall_s=statistics.median(walls), by_scope=by_scope)
