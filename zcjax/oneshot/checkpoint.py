"""Supernet checkpoints with orbax-checkpoint: atomic, checked, refusing what is not theirs.

Layout: one folder per run; orbax writes step ``s`` into ``<folder>/<s>/`` with two items,
``state`` (the pytree: parameters, optimiser state, step, RNG key; OCDBT/zarr files) and
``meta`` (JSON: the run's fingerprint and configuration, the data's hash, the parameters'
hash, the training history). A save is written to a temporary folder and renamed into place
when complete (orbax's atomic commit), so a process killed at any moment leaves complete
checkpoints and at most a temporary folder, which the next run removes.

Checks, before anything is written:

* the latest checkpoint's ``meta`` must carry the run's fingerprint
  (:meth:`~zcjax.oneshot.config.TrainConfig.fingerprint`: every setting and the training
  data's hash); a checkpoint of another configuration (another space, width, data set, seed,
  optimiser, ...) is a :class:`CheckpointMismatchError` naming the settings that differ;
* a checkpoint that orbax cannot read, or whose restored parameters do not hash to the value
  its ``meta`` recorded (files changed on disk), is a :class:`CheckpointCorruptError` naming
  the step folder. Nothing is deleted or overwritten: move the damaged step aside to resume
  from an earlier one.

Kept: the last ``keep_last`` checkpoints and those at ``keep_steps`` (e.g. the epochs an
analysis scores), by orbax's preservation policies.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Any, Iterable, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from zcjax import validation
from zcjax.contract import path_names

__all__ = ["FORMAT", "CheckpointError", "CheckpointMismatchError", "CheckpointCorruptError",
           "Checkpoints", "params_hash"]

#: ``meta["format"]`` of the checkpoints this module writes.
FORMAT = "zcjax.oneshot.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be used."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The folder holds checkpoints of another run (configuration or data)."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint that cannot be read, or whose contents changed on disk."""


def params_hash(params: Any) -> str:
    """16 hex digits of a parameter tree: every leaf's path, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        array = np.ascontiguousarray(np.asarray(leaf))
        h.update("/".join(path_names(path)).encode())
        h.update(array.dtype.str.encode())
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    return h.hexdigest()[:16]


class Checkpoints:
    """The checkpoints of one training run in ``directory`` (module doc).

    Args:
      directory: the run's folder (created on the first save).
      keep_last: how many of the latest checkpoints to keep.
      keep_steps: steps whose checkpoints are kept besides (e.g. epoch ends to analyse).
    """

    def __init__(self, directory: "str | os.PathLike", *, keep_last: int = 2,
                 keep_steps: Iterable[int] = ()):
        self.directory = pathlib.Path(directory).expanduser().resolve()
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(f"{self.directory} is a file, not a checkpoint folder")
        keep_last = validation.check_int(keep_last, "keep_last", 1)
        policy = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep_last),
            checkpoint_managers.CustomSteps(sorted({int(s) for s in keep_steps}))])
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=False, preservation_policy=policy, create=True,
            cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=("state", "meta"))

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------

    def steps(self) -> list[int]:
        """The steps with a complete checkpoint, ascending."""
        self._manager.reload()
        return sorted(int(s) for s in self._manager.all_steps())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def step_dir(self, step: int) -> pathlib.Path:
        return self.directory / str(step)

    def meta(self, step: int) -> dict:
        """The JSON ``meta`` of a checkpoint; :class:`CheckpointCorruptError` if unreadable."""
        try:
            meta = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        except Exception as e:  # orbax / tensorstore / json errors alike
            raise self._corrupt(step, "its meta data cannot be read", e) from e
        if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
            raise CheckpointMismatchError(
                f"{self.step_dir(step)} is not a zcjax one-shot checkpoint (meta format "
                f"{validation.cap(repr(meta.get('format') if isinstance(meta, Mapping) else meta))}"
                f", expected {FORMAT!r}); refusing to use or overwrite it")
        return dict(meta)

    def check(self, fingerprint: str, fields: Mapping[str, Any]) -> None:
        """The latest checkpoint here (the one a run resumes from) belongs to the run with
        ``fingerprint`` (whose settings are ``fields``); else
        :class:`CheckpointMismatchError` naming what differs.

        Only the latest is read: a process killed while orbax deleted an old checkpoint leaves
        that step's folder half-removed, which must not stop the run from resuming.
        """
        step = self.latest()
        if step is None:
            return
        meta = self.meta(step)
        if meta.get("fingerprint") != fingerprint:
            diff = _differences(meta.get("fields", {}), fields)
            raise CheckpointMismatchError(
                f"{self.directory} holds checkpoints of another run (step {step}: fingerprint "
                f"{validation.cap(str(meta.get('fingerprint')))}, this run {fingerprint}); "
                f"differences: {diff or 'none in the settings (the data differ?)'}. Use another "
                "folder, or move this one aside; nothing was written")

    def restore(self, step: int, template: Mapping[str, Any]) -> tuple[dict, dict]:
        """``(state, meta)`` of a checkpoint; ``template`` gives the tree structure (arrays or
        ``jax.ShapeDtypeStruct``). The parameters must hash to ``meta["params_hash"]``."""
        meta = self.meta(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, dict(template))
        try:
            state = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))).state
        except Exception as e:
            raise self._corrupt(step, "its arrays cannot be read", e) from e
        state = dict(state)
        if params_hash(state["params"]) != meta.get("params_hash"):
            raise self._corrupt(step, "its parameters do not match the hash saved with them "
                                      "(files changed on disk)")
        return state, meta

    # -- writing -------------------------------------------------------------------------

    def save(self, step: int, state: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Writes checkpoint ``step`` atomically; ``meta`` gets ``format`` and
        ``params_hash``."""
        meta = {**meta, "format": FORMAT, "params_hash": params_hash(state["params"])}
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(dict(state)), meta=ocp.args.JsonSave(meta)))
        self._manager.wait_until_finished()

    def _corrupt(self, step: int, what: str, cause: Exception | None = None
                 ) -> CheckpointCorruptError:
        others = [s for s in self.steps() if s != step]
        why = f" ({type(cause).__name__}: {validation.cap(str(cause), 300)})" if cause else ""
        hint = (f"; move it aside to resume from step {max(others)}" if others
                else "; move it aside to start afresh")
        return CheckpointCorruptError(f"checkpoint {self.step_dir(step)} is damaged: {what}"
                                      f"{why}{hint}. Nothing was overwritten")


def _differences(stored: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
                 ) -> str:
    """``"a.b: stored -> current; ..."`` for the settings that differ (nested dicts walked)."""
    out = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            inner = _differences(a, b, f"{prefix}{key}.")
            if inner:
                out.append(inner)
        elif a != b:
            out.append(f"{prefix}{key}: {validation.cap(repr(a), 60)} here, "
                       f"{validation.cap(repr(b), 60)} in this run")
    return "; ".join(out)
