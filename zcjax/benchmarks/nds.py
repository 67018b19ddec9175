"""NDS ground truth: test accuracies of the published ResNet / ResNeXt-A CIFAR-10 sweeps.

Radosavovic et al., "On Network Design Spaces for Visual Recognition", ICCV 2019, released the
training results of every model they sampled (``facebookresearch/nds``; ``ResNet.json``,
``ResNeXt-A.json`` in its data archive). No NDS data ships with zcjax:
:meth:`NDSBenchmark.from_file` reads the user's copy (``SearchSpace.benchmark()`` looks in
``<workspace>/data/nds/``, see WORKSPACE.md).

File format
-----------
Plain JSON (read with :mod:`json`, never pickle): a list of job records, or an object
``{"top": [...], "mid": [...]}`` (the re-run files; read as ``top + mid``, as NASWOT and NNI do).
Each record has at least::

    {"net": {"block_type": ..., "ds": [...], "ws": [...], "ss": [...],
             "bot_muls": [...], "num_gs": [...]},     # see zcjax.spaces.nds.genotype
     "test_ep_top1": [e_1, ..., e_T],                  # test top-1 error (%) after each epoch
     "params": ..., "flops": ...}                      # optional here

and more (``optim``, ``rng_seed``, ``train_ep_top1``, ``min_test_top1``, ...), which are not
read. Metrics, both in percent and higher-is-better:

* ``test_accuracy``: ``100 - test_ep_top1[-1]``, the accuracy after the last epoch (NASWOT's
  ``get_final_accuracy``; NNI's ``final_test_acc``);
* ``best_test_accuracy``: ``100 - min(test_ep_top1)`` over the epochs with a number (NNI's
  ``best_test_acc``; the NDS notebooks' ``min_test_top1``).

A NaN error (a diverged run) gives a NaN accuracy, never a made-up number.

An architecture the file holds several times (the NDS sampler drew with replacement) gets the
mean over its records, as the NDS notebooks combine re-runs of one network. Every record must
lie in the design space (:meth:`zcjax.spaces.nds.genotype.DesignSpace.check_member`): a
ResNeXt-B or ImageNet file given as ResNeXt-A is refused, naming the first record outside it.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from zcjax.spaces.base import Benchmark
from zcjax.validation import cap

# zcjax.spaces.nds.genotype is imported inside the functions: importing it loads the space
# package, which pulls in Flax.

#: Files larger than this are refused unless ``max_bytes`` says otherwise (the whole file is
#: parsed in memory, which takes several times its size).
DEFAULT_MAX_BYTES = 2 * 2**30

#: The published file name of each design space (used when ``design_space`` is not given).
FILE_NAMES: Mapping[str, str] = {"ResNet.json": "ResNet", "ResNeXt-A.json": "ResNeXt-A"}


class NDSBenchmark(Benchmark):
    """Test accuracies of one NDS sweep file, looked up by architecture string.

    Build it with :meth:`from_file` (or :meth:`from_records`); the instance is of the design
    space's subclass (:class:`NDSResNetBenchmark`, :class:`NDSResNeXtABenchmark`).
    """

    #: The design space whose file this reads (set by the subclasses).
    design_space: ClassVar[str]
    datasets = ("cifar10",)
    metrics = ("test_accuracy", "best_test_accuracy")
    higher_is_better = {"test_accuracy": True, "best_test_accuracy": True}
    source = ("NDS sweep results (Radosavovic et al., ICCV 2019; facebookresearch/nds), "
              "the user's copy of the published file")

    def __init__(self, archs: Sequence[str], values: Mapping[str, np.ndarray],
                 records: np.ndarray, params: np.ndarray, flops: np.ndarray, origin: str):
        if type(self) is NDSBenchmark:
            raise TypeError("build an NDSBenchmark with from_file or from_records")
        self._archs = tuple(archs)
        self._index = {a: i for i, a in enumerate(self._archs)}
        self._values = {m: _frozen(v) for m, v in values.items()}
        self._records = _frozen(records)
        self._params = _frozen(params)
        self._flops = _frozen(flops)
        self.origin = origin

    # -- construction ---------------------------------------------------------------------

    @staticmethod
    def from_file(path: "str | os.PathLike", design_space: str | None = None, *,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> "NDSBenchmark":
        """Reads a published NDS sweep file.

        Args:
          path: the JSON file.
          design_space: ``"ResNet"`` or ``"ResNeXt-A"``; by default taken from the file name
            (``ResNet.json``, ``ResNeXt-A.json``).
          max_bytes: the largest file accepted.

        Raises:
          FileNotFoundError: no file at ``path``.
          ValueError: a file too large, not JSON, or not in the format above (the message names
            the record and what is wrong), or a design space that cannot be told.
        """
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no NDS result file at {cap(str(path))}")
        if design_space is None:
            design_space = FILE_NAMES.get(path.name)
            if design_space is None:
                raise ValueError(f"{cap(path.name)}: cannot tell the design space from the file "
                                 f"name (expected one of {', '.join(FILE_NAMES)}); pass "
                                 "design_space='ResNet' or 'ResNeXt-A'")
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{cap(str(path))} has {size:,} bytes, more than max_bytes="
                             f"{max_bytes:,}; pass a larger max_bytes to read it")
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ValueError(f"{cap(str(path))} grew past max_bytes={max_bytes:,} while read")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ValueError(f"{cap(str(path))} is not a JSON file: {cap(str(e), 120)}") from None
        return NDSBenchmark.from_records(data, design_space, origin=str(path))

    @staticmethod
    def from_records(data: Any, design_space: str, *, origin: str = "<records>"
                     ) -> "NDSBenchmark":
        """The benchmark of already-parsed file content (a list of records, or top / mid)."""
        from zcjax.spaces.nds.genotype import NDSArch, get_design_space

        space = get_design_space(design_space)
        cls = _SUBCLASSES[space.name]
        records = _record_list(data, origin)
        final: dict[str, list[float]] = {}
        best: dict[str, list[float]] = {}
        params: dict[str, float] = {}
        flops: dict[str, float] = {}
        for i, record in enumerate(records):
            where = f"{origin}: record {i}"
            if not isinstance(record, Mapping):
                raise ValueError(f"{where} is not an object (got {type(record).__name__})")
            if "net" not in record:
                raise ValueError(f"{where} has no 'net'")
            try:
                arch = NDSArch.from_record(record["net"], space)
                space.check_member(arch)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            errors = _errors(record.get("test_ep_top1"), where)
            key = arch.to_string()
            final.setdefault(key, []).append(100.0 - errors[-1])
            finite = [e for e in errors if not math.isnan(e)]
            best.setdefault(key, []).append(100.0 - min(finite) if finite else math.nan)
            params.setdefault(key, _optional_count(record, "params", where))
            flops.setdefault(key, _optional_count(record, "flops", where))
        archs = list(final)
        return cls(archs,
                   {"test_accuracy": np.array([np.mean(final[a]) for a in archs]),
                    "best_test_accuracy": np.array([np.mean(best[a]) for a in archs])},
                   np.array([len(final[a]) for a in archs], np.int64),
                   np.array([params[a] for a in archs]), np.array([flops[a] for a in archs]),
                   origin)

    # -- the Benchmark protocol -----------------------------------------------------------

    def archs(self, dataset: str | None = None) -> tuple[str, ...]:
        """Every architecture string in the file, once, in the order of first appearance."""
        self.check(None, dataset)
        return self._archs

    def lookup(self, archs: Iterable[Any], metric: str | None = None,
               dataset: str | None = None) -> np.ndarray:
        metric, dataset = self.check(metric, dataset)
        return self._column(self._values[metric], archs)

    # -- more of the file -----------------------------------------------------------------

    def num_records(self, archs: Iterable[Any]) -> np.ndarray:
        """How many records of the file each architecture has (0 if none)."""
        idx = self._indices(archs)
        return np.array([self._records[i] if i >= 0 else 0 for i in idx], np.int64)

    def published_params(self, archs: Iterable[Any]) -> np.ndarray:
        """The records' ``params`` (NaN where absent or not in the file)."""
        return self._column(self._params, archs)

    def published_flops(self, archs: Iterable[Any]) -> np.ndarray:
        """The records' ``flops`` (see :func:`zcjax.spaces.nds.cost.record_flops`)."""
        return self._column(self._flops, archs)

    def __len__(self) -> int:
        return len(self._archs)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: {len(self)} architectures, "
                f"{int(self._records.sum())} records, from {cap(self.origin, 80)}>")

    def _indices(self, archs: Iterable[Any]) -> list[int]:
        from zcjax.spaces.nds.genotype import NDSArch

        if isinstance(archs, (str, NDSArch)):
            raise TypeError("pass a sequence of architectures, not a single one")
        out = []
        for a in archs:
            arch = a if isinstance(a, NDSArch) else NDSArch.from_string(a)
            if arch.design_space != self.design_space:
                raise ValueError(f"{cap(arch.to_string())!r} is not a {self.design_space} "
                                 "architecture")
            out.append(self._index.get(arch.to_string(), -1))
        return out

    def _column(self, column: np.ndarray, archs: Iterable[Any]) -> np.ndarray:
        return np.array([column[i] if i >= 0 else np.nan for i in self._indices(archs)],
                        np.float64)


class NDSResNetBenchmark(NDSBenchmark):
    """Ground truth of ``ResNet.json`` (the ``nds_resnet`` space)."""

    space = "nds_resnet"
    design_space = "ResNet"


class NDSResNeXtABenchmark(NDSBenchmark):
    """Ground truth of ``ResNeXt-A.json`` (the ``nds_resnext_a`` space)."""

    space = "nds_resnext_a"
    design_space = "ResNeXt-A"


_SUBCLASSES: dict[str, type[NDSBenchmark]] = {
    c.design_space: c for c in (NDSResNetBenchmark, NDSResNeXtABenchmark)}


def _record_list(data: Any, origin: str) -> list:
    if isinstance(data, Mapping):
        if set(data) != {"top", "mid"} or not all(isinstance(data[k], list) for k in data):
            raise ValueError(f"{origin}: expected a list of records or an object with the lists "
                             f"'top' and 'mid', got an object with keys "
                             f"{cap(sorted(map(str, data)), 80)}")
        data = data["top"] + data["mid"]
    if not isinstance(data, list):
        raise ValueError(f"{origin}: expected a list of records, got {type(data).__name__}")
    if not data:
        raise ValueError(f"{origin}: the file has no records")
    return data


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _errors(errors: Any, where: str) -> list[float]:
    """The per-epoch test errors (%): a non-empty list of numbers in 0..100 (NaN allowed)."""
    if not isinstance(errors, list) or not errors:
        raise ValueError(f"{where}: 'test_ep_top1' must be a non-empty list of per-epoch test "
                         f"errors (%), got {cap(repr(errors), 80)}")
    for epoch, e in enumerate(errors, start=1):
        if not _number(e) or not (math.isnan(e) or 0 <= e <= 100):
            raise ValueError(f"{where}: test error {cap(repr(e), 40)} of epoch {epoch} is not a "
                             "percentage")
    return [float(e) for e in errors]


def _optional_count(record: Mapping, key: str, where: str) -> float:
    value = record.get(key)
    if value is None:
        return math.nan
    if not _number(value) or not value >= 0:
        raise ValueError(f"{where}: {key!r} must be a non-negative number, got "
                         f"{cap(repr(value), 40)}")
    return float(value)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.setflags(write=False)
    return array
