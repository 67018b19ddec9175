"""Eager networks with their building blocks compiled once: the ``"blocks"`` route.

A network run eagerly (op by op, no ``jax.jit``) compiles nothing per architecture, but pays
JAX's dispatch for every primitive of every pass, and one small compilation per primitive and
shape: grasp's forward-over-reverse Hessian-vector product takes 15-17 s eagerly on NAS-Bench-201
cell 1462 (C=16 N=5, batch 64, 2-core CPU) where the per-cell compiled program takes 7.7 s (plus
24 s of compilation per cell). Inside :func:`compiled_blocks`, every call of a module class
marked :func:`compiled_block` runs as one ``flax.linen.jit``-compiled function instead: compiled
once per (class, field values, input shapes, transformation), and reused by every block with the
same fields and shapes, in every architecture. Grasp on cell 1462 then takes 8 s, and the next
cell compiles almost nothing.

What may be marked: a module whose computation is fixed by its fields and its inputs' shapes,
independent of the architecture being scored (an operation such as ReLU-Conv-BN, a residual
block), whose positional arguments are arrays and whose keyword arguments are arrays or hashable
flags (``use_bn``; those are compile-time constants). A cell that holds a genotype must not be:
it would compile once per architecture. Its fields must compare equal across architectures:
an initialiser built anew for each layer (a fresh closure) makes every instance a new program
(``tests/spaces/test_blocks.py`` checks that a rebuilt network compiles nothing).

Blocks may nest: inside a compiled block, inner blocks are traced into it. Initialisation
(``model.init``) always runs the plain modules: lifted transformations draw their random numbers
in another order, so parameters initialised under them would differ from the other routes'.

Scores agree with the op-by-op route to float32 rounding, not bit for bit: XLA fuses the ops of a
block (tested per proxy kind in ``tests/spaces/test_blocks.py``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Iterator, TypeVar

import flax.linen as nn
import jax

ModuleType = TypeVar("ModuleType", bound=type)

_BLOCKS: set[type] = set()
#: Set while a compiled block is being traced: blocks inside it are traced into it.
_TRACING_BLOCK = contextvars.ContextVar("zcjax_tracing_block", default=False)


def compiled_block(cls: ModuleType) -> ModuleType:
    """Marks a Flax module class as a block compiled once under :func:`compiled_blocks`
    (module doc: what may be marked)."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"compiled_block marks Flax module classes, got {cls!r}")
    _BLOCKS.add(cls)
    return cls


def _call_block(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    token = _TRACING_BLOCK.set(True)
    try:
        return module(*args, **kwargs)
    finally:
        _TRACING_BLOCK.reset(token)


@functools.cache
def _compiled(static_argnames: tuple[str, ...]):
    # One lifted jit per set of static keyword names; its cache is keyed by the module's
    # fingerprint (class and field values, not its name or parent), the input shapes and the
    # static values.
    return nn.jit(_call_block, static_argnames=static_argnames)


def _route_blocks(next_fun, args, kwargs, context):
    module = context.module
    if (context.method_name != "__call__" or type(module) not in _BLOCKS
            or _TRACING_BLOCK.get() or module.is_initializing()
            or not all(isinstance(a, jax.Array) for a in args)):
        return next_fun(*args, **kwargs)
    static = tuple(sorted(k for k, v in kwargs.items() if not isinstance(v, jax.Array)))
    return _compiled(static)(module, *args, **kwargs)


@contextlib.contextmanager
def compiled_blocks() -> Iterator[None]:
    """Within this context, marked blocks run compiled (module doc). Meant for eager
    execution; under an enclosing ``jax.jit`` the blocks are inlined into its program."""
    with nn.intercept_methods(_route_blocks):
        yield
