"""Loading data-set pickles without running code: a restricted, bounded unpickler.

The CIFAR and ImageNet16 data sets are distributed as python pickles, and users download them
from mirrors. A plain ``pickle.load`` runs whatever callable a pickle names (``os.system`` via
``__reduce__``), so :func:`load` admits only what the real files contain:

* dicts, lists, tuples, sets, strings, bytes, ints, floats, bools and ``None`` (pickle opcodes
  that call nothing);
* ``_codecs.encode(text, "latin1")``, which Python 3 writes for ``bytes`` under protocol 2;
* NumPy arrays of booleans, integers or floats and their dtypes and scalars, through the globals
  NumPy's own pickles use (``numpy.core.multiarray._reconstruct`` / ``numpy._core...``,
  ``numpy.ndarray``, ``numpy.dtype``, ``...multiarray.scalar``, ``...numeric._frombuffer``).
  None of these is handed to the pickle: each is replaced by a small builder here that checks
  its arguments (only the empty placeholder shape NumPy writes, only numeric dtypes, data whose
  length matches the declared shape) and then builds the array with ``numpy.frombuffer``. NumPy's
  own ``__setstate__`` never sees the file's bytes. Arrays come back read-only (views of the
  file's bytes; ``.copy()`` one to write to it).

Anything else (any other global, persistent ids) raises :class:`UnsafePickleError` naming the
file and the forbidden global, before the global is imported or called.

Bounded work on damaged files: the file's size is capped (``max_bytes``), and before anything is
built the opcode stream is checked with :func:`pickletools.genops` (no object is created there):
every length field must fit in the file (a mutated length cannot make the unpickler allocate
gigabytes), memo indices must be ones a pickler could have written (a mutated ``LONG_BINPUT``
cannot make it grow its memo to billions of slots) and every memo read must refer to an earlier
write. Every failure, whatever the exception inside (``KeyError``, ``OverflowError``,
``MemoryError``, ``RecursionError``, ...), becomes a :class:`MalformedPickleError` (a
``ValueError``) that names the file.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import pickletools
import warnings
from typing import Any

import numpy as np

from zcjax.validation import cap

__all__ = ["DEFAULT_MAX_BYTES", "MalformedPickleError", "UnsafePickleError", "load", "loads"]

#: Largest pickle :func:`load` reads (1 GiB; the largest real file, CIFAR-100 ``train``, is
#: about 150 MB, an ImageNet16 train batch about 100 MB).
DEFAULT_MAX_BYTES = 1 << 30

#: dtype kinds an array in a data file may have: bool, signed / unsigned int, float.
_ARRAY_KINDS = "biuf"


class MalformedPickleError(ValueError):
    """A data file that is not a readable pickle of the expected kind."""


class UnsafePickleError(MalformedPickleError):
    """A pickle that names a global a data file never contains (it would run code)."""


# -- builders that stand in for NumPy's unpickling functions ------------------------------------

class _Refused(Exception):
    """Raised inside a builder; turned into MalformedPickleError with the file name."""


class _NdarrayToken:
    """Stands in for ``numpy.ndarray`` in a pickle: only a marker for :func:`_reconstruct`."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayToken()


def _dtype_of(spec: Any) -> np.dtype:
    """A plain numeric dtype from ``spec`` (a dtype or its short string), else _Refused."""
    if isinstance(spec, _DtypeBuilder):
        spec = spec.dtype
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if isinstance(spec, str):
        if len(spec) > 8:
            raise _Refused(f"dtype {cap(repr(spec), 40)} is not a numeric dtype")
        try:
            spec = np.dtype(spec)
        except (TypeError, ValueError) as e:
            raise _Refused(f"bad dtype {spec!r} ({e})") from None
    if not isinstance(spec, np.dtype):
        raise _Refused(f"expected a dtype, got {type(spec).__name__}")
    if spec.kind not in _ARRAY_KINDS or spec.hasobject or spec.fields is not None \
            or spec.subdtype is not None or spec.itemsize > 16:
        raise _Refused(f"dtype {spec} is not a plain bool / integer / float dtype")
    return spec


class _DtypeBuilder:
    """``numpy.dtype(spec, align, copy)`` then ``__setstate__(state)``, checked."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        self.dtype = _dtype_of(spec)

    def __setstate__(self, state: Any) -> None:
        # NumPy writes (3, byteorder, None, None, None, -1, -1, flags) for plain dtypes.
        if not (isinstance(state, tuple) and 5 <= len(state) <= 9):
            raise _Refused(f"unexpected dtype state {cap(repr(state), 80)}")
        order = state[1]
        if isinstance(order, bytes):
            order = order.decode("latin1")
        if order not in ("<", ">", "|", "="):
            raise _Refused(f"unexpected dtype byte order {cap(repr(order), 20)}")
        if any(x is not None for x in state[2:5]):
            raise _Refused("structured or sub-array dtypes are not allowed")
        if order in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)


def _as_raw(data: Any) -> bytes:
    if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, pickle.PickleBuffer):
        return bytes(data.raw())
    raise _Refused(f"array data must be bytes, got {type(data).__name__}")


def _shape_of(shape: Any) -> tuple[int, ...]:
    if not (isinstance(shape, tuple) and len(shape) <= 8
            and all(type(n) is int and 0 <= n for n in shape)):
        raise _Refused(f"bad array shape {cap(repr(shape), 80)}")
    return shape


def _build_array(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(raw):
        raise _Refused(f"array of shape {shape} and dtype {dtype} needs "
                       f"{count * dtype.itemsize:,} bytes, the file holds {len(raw):,}")
    # A read-only view of the file's bytes (no copy: a CIFAR-100 train file is 150 MB).
    flat = np.frombuffer(raw, dtype=dtype) if raw else np.zeros(0, dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


class _ArrayBuilder:
    """``_reconstruct(ndarray, (0,), b'b')`` then ``__setstate__((1, shape, dtype, f, data))``."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _Refused(f"unexpected array state of {type(state).__name__}")
        _, shape, dtype, fortran, data = state
        if not isinstance(fortran, (bool, int)):
            raise _Refused("bad array order flag")
        self.array = _build_array(_as_raw(data), _dtype_of(dtype), _shape_of(shape),
                                  bool(fortran))


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _ArrayBuilder:
    if subtype is not _NDARRAY or shape != (0,):
        raise _Refused(f"_reconstruct({cap(repr(subtype), 40)}, {cap(repr(shape), 40)}, ...) "
                       "is not how NumPy pickles an array")
    return _ArrayBuilder()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise _Refused(f"bad array order {cap(repr(order), 20)}")
    return _build_array(_as_raw(buf), _dtype_of(dtype), _shape_of(shape), order == "F")


def _scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _dtype_of(dtype)
    raw = _as_raw(data)
    if len(raw) != dtype.itemsize:
        raise _Refused(f"scalar of dtype {dtype} needs {dtype.itemsize} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype)[0]


def _codecs_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1" \
            or errors != "strict":
        raise _Refused(f"_codecs.encode is only allowed as Python writes bytes "
                       f"(a str and 'latin1'), got encoding {cap(repr(encoding), 40)}")
    try:
        return text.encode("latin1")
    except UnicodeEncodeError as e:
        raise _Refused(f"bytes not encodable as latin1 ({e.reason})") from None


def _bytes(*args: Any) -> bytes:
    """``bytes()``: how protocol 2 writes an empty ``bytes`` (``bytes(n)`` would allocate)."""
    if args:
        raise _Refused("bytes(...) with arguments is not how Python pickles bytes")
    return b""


def _set_of(kind: type) -> Any:
    def build(items: Any = ()) -> Any:
        if not isinstance(items, list):
            raise _Refused(f"{kind.__name__}(...) of {type(items).__name__}")
        return kind(items)
    return build


_ALLOWED: dict[tuple[str, str], Any] = {("_codecs", "encode"): _codecs_encode,
                                        ("builtins", "bytes"): _bytes,
                                        ("builtins", "set"): _set_of(set),
                                        ("builtins", "frozenset"): _set_of(frozenset),
                                        ("numpy", "ndarray"): _NDARRAY,
                                        ("numpy", "dtype"): _DtypeBuilder}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer
del _core


def _resolve(module: Any, name: Any) -> Any:
    """The stand-in for ``module.name`` (also under its Python 2 name), or None if forbidden."""
    key = (module, name)
    if key in _ALLOWED:
        return _ALLOWED[key]
    if key in _compat_pickle.NAME_MAPPING:  # as pickle's own find_class maps Python 2 names
        return _ALLOWED.get(_compat_pickle.NAME_MAPPING[key])
    if isinstance(module, str) and module in _compat_pickle.IMPORT_MAPPING:
        return _ALLOWED.get((_compat_pickle.IMPORT_MAPPING[module], name))
    return None


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _resolve(module, name)
        if found is None:
            raise UnsafePickleError(
                f"the forbidden global {cap(str(module), 60)}.{cap(str(name), 60)}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("a persistent id, i.e. an object from outside the file")


# -- the opcode pre-scan ------------------------------------------------------------------------

_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_IN_PLACE_OPS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_UNCHANGED_OPS = {"MEMOIZE", "READONLY_BUFFER"}  # leave the stack as it is

#: Deepest nesting of containers a data file may have (the real ones have 4: dict, tuple of
#: the array's state, its shape tuple, an int). Deeply nested tuples crash CPython itself
#: (``hash`` of a tuple nested ~10**6 deep overflows the C stack), so depth is checked before
#: anything is built.
MAX_DEPTH = 32


def _prescan(data: bytes) -> None:
    """Walks the opcodes without building anything; raises _Refused / UnsafePickleError.

    Checks that the stream is well-formed up to its STOP (``genops`` reads every length field
    against the bytes that remain), that every text-form global (``GLOBAL`` / ``INST``) is
    allowed, that memo writes use indices a pickler would write (at most the number of opcodes
    so far) and memo reads refer to earlier writes, and, by following the stack the opcodes
    describe (:mod:`pickletools` metadata), that nothing is nested deeper than
    :data:`MAX_DEPTH` and the stack never runs empty.
    """
    memo: dict[int, int] = {}  # memo index -> nesting depth of the object stored there
    stack: list[int] = []      # nesting depth of each object on the stack
    marks: list[int] = []      # stack heights at each MARK
    count = 0
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        count += 1
        name = op.name
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            if _resolve(module, attr) is None:
                raise UnsafePickleError(
                    f"the forbidden global {cap(module, 60)}.{cap(attr, 60)}")
        elif name in ("PERSID", "BINPERSID", "NEXT_BUFFER"):
            raise UnsafePickleError(f"a persistent id or out-of-band buffer ({name}), i.e. an "
                                    "object from outside the file")
        if name in _PUT_OPS or name == "MEMOIZE":
            index = len(memo) if name == "MEMOIZE" else arg
            if not (isinstance(index, int) and 0 <= index <= count) or not stack:
                raise _Refused(f"memo write {cap(repr(index), 30)} at opcode {count}")
            memo[index] = stack[-1]
            continue
        if name in _GET_OPS:
            if arg not in memo:
                raise _Refused(f"memo index {cap(repr(arg), 30)} read before it was written")
            stack.append(memo[arg])
            continue
        if name in _UNCHANGED_OPS or name in ("PROTO", "FRAME"):
            continue
        if name == "MARK":
            marks.append(len(stack))
            continue
        before = [x.name for x in op.stack_before]
        popped: list[int] = []
        if "mark" in before:
            if not marks:
                raise _Refused(f"{name} without a MARK")
            top = marks.pop()
            popped = stack[top:]
            del stack[top:]
            below = before.index("mark")
        else:
            below = len(before)
        if below > len(stack):
            raise _Refused(f"{name} on a stack with {len(stack)} objects")
        if below:
            popped = stack[-below:] + popped
            del stack[-below:]
        pushed = len(op.stack_after)
        if name == "DUP":
            stack += popped * 2
            continue
        if name in _IN_PLACE_OPS:
            depth = max([popped[0]] + [d + 1 for d in popped[1:]])
        else:
            depth = 1 + max(popped) if popped else 0
        if depth > MAX_DEPTH:
            raise _Refused(f"objects nested deeper than {MAX_DEPTH} levels")
        stack += [depth] * pushed
        if name == "STOP":
            return
    raise _Refused("no STOP opcode")


# -- the public entry points --------------------------------------------------------------------

def _unwrap(obj: Any, depth: int = 0) -> Any:
    """The loaded object with every array builder replaced by its array (checked depth)."""
    if depth > 100:
        raise _Refused("nesting deeper than 100 levels")
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise _Refused("array without its data")
        return obj.array
    if isinstance(obj, (_DtypeBuilder, _NdarrayToken)):
        return obj.dtype if isinstance(obj, _DtypeBuilder) else np.ndarray
    if isinstance(obj, dict):
        return {_unwrap(k, depth + 1): _unwrap(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_unwrap(v, depth + 1) for v in obj)
    return obj


def loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1") -> Any:
    """Unpickles ``data`` with the restrictions of the module docstring.

    Args:
      data: the pickle.
      source: named in error messages (a file path).
      encoding: how Python 2 ``str`` objects are decoded (``latin1`` keeps their bytes).

    Raises:
      UnsafePickleError: the pickle names a global other than the allowed ones.
      MalformedPickleError: anything else wrong with it (both are ``ValueError`` s).
    """
    where = cap(source, 300)
    try:
        with warnings.catch_warnings():  # damaged protocol-0 strings warn about bad escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            _prescan(data)
            obj = _Unpickler(io.BytesIO(data), encoding=encoding).load()
        return _unwrap(obj)
    except UnsafePickleError as e:
        raise UnsafePickleError(
            f"{where}: refused to load: the pickle asks for {e}, which a CIFAR / ImageNet16 "
            "data file never contains (they hold only dicts, lists, strings, numbers and numpy "
            "arrays); the file may be malicious: do not open it with pickle") from None
    except (_Refused, MalformedPickleError) as e:
        raise MalformedPickleError(f"{where}: not a readable python pickle ({e})") from None
    except Exception as e:  # noqa: BLE001 - a damaged file; includes MemoryError, RecursionError
        # Inside the unpickler any exception can come out of damaged bytes (KeyError, IndexError,
        # OverflowError, UnicodeDecodeError, struct.error, ...): all mean "malformed".
        raise MalformedPickleError(f"{where}: not a readable python pickle "
                                   f"({type(e).__name__}: {cap(str(e), 200)})") from None


def load(path: "str | os.PathLike[str]", *, max_bytes: int = DEFAULT_MAX_BYTES,
         encoding: str = "latin1") -> Any:
    """Reads the pickle at ``path`` with :func:`loads`'s restrictions; at most ``max_bytes``.

    Raises:
      FileNotFoundError: no such file.
      MalformedPickleError: larger than ``max_bytes``, or malformed (see :func:`loads`).
      UnsafePickleError: names a forbidden global.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expected data file not found: {cap(path, 300)}")
    size = os.path.getsize(path)
    if size > max_bytes:
        raise MalformedPickleError(
            f"{cap(path, 300)}: {size:,} bytes, more than the {max_bytes:,} a data pickle may "
            "have (raise max_bytes if the file is genuine)")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    return loads(data, source=path, encoding=encoding)
