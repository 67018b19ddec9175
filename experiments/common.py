"""What the experiment scripts share: flag groups, the scoring setting, and error reporting.

Every script in ``experiments/`` is an absl program (``python -m experiments.NAME --flag=...``
from the repository root) and a thin shell over library functions: it turns flags into
arguments, calls ``zcjax``, and writes files for people. A script lists exactly the flags it
honours: it defines its own, asks :func:`define` for the shared groups it uses and declares
them as its key flags, so ``python -m experiments.NAME --helpshort`` lists them all.
``--helpfull`` adds absl's own flags and those of the other scripts a script imports (e.g.
``experiments.score``'s under ``quickstart``), which it does not read.
``tests/experiments/test_flags.py`` checks that each script reads every flag it lists and no
other; a function that reads flags for its callers (:meth:`Setting.from_flags`) says which with
:func:`reads_flags`.

A score is stored under the hash of the network configuration and the hash of the batch, so an
analysis rebuilds both from the same space, network and data flags to find the scores (or takes
``--config_hash`` / ``--batch_hash``). The store keeps a note of what each hash stands for, so
when nothing matches, the error lists the settings it holds.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import typing
from typing import Any, Callable, Sequence

from absl import flags

from zcjax import workspace as workspace_lib

FLAGS = flags.FLAGS


class ExperimentError(ValueError):
    """A problem with the user's input or files, reported without a traceback."""


def fail(message: str) -> "typing.NoReturn":
    raise ExperimentError(message)


def guarded(run_main: Callable[[], Any]) -> Any:
    """Runs a script body; a user error (:class:`ExperimentError`, or a ``ValueError`` /
    ``LookupError`` / ``FileNotFoundError`` from the library, which name the problem) exits with
    its message and status 1 instead of a traceback."""
    from zcjax.sweep.store import StoreError

    try:
        return run_main()
    except (ExperimentError, LookupError, FileNotFoundError, StoreError) as e:
        raise SystemExit(f"error: {e}") from None
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None


# -- flag groups -----------------------------------------------------------------------------

def _define_workspace():
    flags.DEFINE_string("workspace", None, "Workspace root (data/, cache/, results/). Default: "
                        "$ZCJAX_WORKSPACE, else ./zcjax_workspace.")


def _define_store():
    flags.DEFINE_string("store", None,
                        "Score store (SQLite). Default: <workspace>/results/scores.sqlite.")


def _define_space():
    flags.DEFINE_string("space", "nb201", "Search space: nb201, nb101, nb301, nds_resnet, "
                        "nds_resnext_a or nb_nlp (zcjax.spaces.names()).")
    flags.DEFINE_list("network", [], "Network settings overriding the benchmark's network, "
                      "e.g. channels=4,cells_per_stage=1 for nb201 (the fields of the space's "
                      "Config; an unknown name lists them).")


def _define_dataset():
    flags.DEFINE_string("dataset", None, "Data set of the scoring batch (default: the space's "
                        "first): cifar10 (the bundled 1,000-image sample unless --data_dir is "
                        "given), cifar100 or ImageNet16-120 (read from --data_dir, else "
                        "<workspace>/data) for the image spaces; the space's own for others.")
    flags.DEFINE_string("data_dir", None, "Folder holding the data set (e.g. "
                        "cifar-10-batches-py/); not needed for the bundled data.")


def _define_batch():
    flags.DEFINE_enum("split", "train", ["train", "test"], "Split the batch is drawn from.")
    flags.DEFINE_integer("batch_size", 64, "Examples in the scoring batch (64 as in "
                         "zero-cost-nas).")
    flags.DEFINE_integer("batch_seed", 0, "Which examples form the batch (a seeded "
                         "permutation).")


def _define_proxies():
    flags.DEFINE_string("proxies", "all", "Comma-separated proxy names, or 'all' (scoring: "
                        "every registered proxy that applies to the space; analyses: every "
                        "proxy stored for the setting), or 'suite' (zcjax's 17) or 'suite_zero' "
                        "(NAS-Bench-Suite-Zero's 13). quickstart's default: five fast ones.")


def _define_seeds():
    flags.DEFINE_string("seeds", "0", "Initialisation seeds, comma-separated (ranges A-B, "
                        "inclusive). Scoring uses them all; analyses reduce each "
                        "architecture's seeds to one score (--nonfinite), over these seeds when "
                        "the flag is given, else over every stored seed.")


def _define_stored():
    flags.DEFINE_string("config_hash", None, "Read this stored network configuration instead "
                        "of rebuilding it from the space and network flags.")
    flags.DEFINE_string("batch_hash", None, "Read this stored batch instead of rebuilding it "
                        "from the data flags.")
    flags.DEFINE_enum("nonfinite", "strict", ["strict", "finite_seeds"],
                      "Seeds with a NaN / inf score: 'strict' drops the architecture from that "
                      "proxy's analysis, 'finite_seeds' averages its finite seeds "
                      "(zcjax.evaluate.stored).")


def _define_eval_cells():
    flags.DEFINE_enum("eval_cells", "pairwise", ["pairwise", "common"],
                      "Which architectures each proxy is evaluated on: every one with a finite "
                      "score and target ('pairwise'; N per row in the tables), or those where "
                      "every proxy of the table is finite ('common').")


def _define_target():
    flags.DEFINE_string("target", None, "Ground truth: a metric of the space's benchmark "
                        "(default: its first, e.g. test_accuracy on nb201, val_accuracy on "
                        "nb101 / nb301) or, on nb201, a robustness spec (clean, "
                        "pgd@Linf:eps=1, corruption:all, hrs:pgd@Linf:eps=1; "
                        "zcjax.evaluate.targets).")


def _define_target_dataset():
    flags.DEFINE_string("target_dataset", None,
                        "Data set of the ground truth. Default: --dataset.")


def _define_output():
    flags.DEFINE_string("out_prefix", None, "File name prefix of the tables and plots under "
                        "<workspace>/results/ (an absolute path or one with a folder is used "
                        "as is). Default: chosen per script from its settings.")


def _define_per_class():
    flags.DEFINE_bool("per_class", None, "One entry per isomorphism class instead of per "
                      "architecture (default: off for correlate, on for robustness, whose "
                      "targets are per class).")


def _define_robust():
    flags.DEFINE_string("robust_target", "pgd@Linf:eps=1", "NB201 only: the robust target "
                        "(zcjax.evaluate.targets spec), e.g. pgd@Linf:eps=1, corruption:all.")


def _define_compile():
    from zcjax.sweep.engine import COMPILE

    flags.DEFINE_enum("compile", "auto", list(COMPILE),
                      "How networks run (zcjax.sweep.engine): the space's compile-once network "
                      "for the proxies it scores exactly and fast, the rest eagerly with each "
                      "block compiled once (auto); one program per architecture (static); op by "
                      "op (eager); eagerly with compiled blocks (blocks); compile-once, static "
                      "for the rest (supernet). Scores do not depend on it beyond float "
                      "rounding.")


def _define_compilation_cache():
    flags.DEFINE_bool("compilation_cache", True,
                      "Use JAX's persistent compilation cache under <workspace>/cache/jax.")


def _define_archs():
    flags.DEFINE_string("archs", "sample:100", "Architectures (zcjax.spaces.selection): all | "
                        "classes | sample:N | sample_classes:N | space_sample:N | range:A-B | "
                        "indices:I,J,... | file:PATH.")
    flags.DEFINE_integer("sample_seed", 0, "Seed of the sample forms of --archs.")


def _define_supernet():
    flags.DEFINE_integer("channels", None, "Supernet: channels of the first stage (C).")
    flags.DEFINE_integer("cells_per_stage", None, "Supernet: cells per stage (N).")
    flags.DEFINE_string("convention", None, "Supernet layer convention (zcjax.spaces.layers).")


def _define_json_out():
    flags.DEFINE_string("json_out", None, "Write the measurements here (JSON).")


GROUPS: dict[str, tuple[Callable[[], None], tuple[str, ...]]] = {
    "workspace": (_define_workspace, ("workspace",)),
    "store": (_define_store, ("store",)),
    "space": (_define_space, ("space", "network")),
    "dataset": (_define_dataset, ("dataset", "data_dir")),
    "batch": (_define_batch, ("split", "batch_size", "batch_seed")),
    "proxies": (_define_proxies, ("proxies",)),
    "seeds": (_define_seeds, ("seeds",)),
    "stored": (_define_stored, ("config_hash", "batch_hash", "nonfinite")),
    "eval_cells": (_define_eval_cells, ("eval_cells",)),
    "target": (_define_target, ("target",)),
    "target_dataset": (_define_target_dataset, ("target_dataset",)),
    "output": (_define_output, ("out_prefix",)),
    "per_class": (_define_per_class, ("per_class",)),
    "robust": (_define_robust, ("robust_target",)),
    "compile": (_define_compile, ("compile",)),
    "compilation_cache": (_define_compilation_cache, ("compilation_cache",)),
    "archs": (_define_archs, ("archs", "sample_seed")),
    "json_out": (_define_json_out, ("json_out",)),
    "supernet": (_define_supernet, ("channels", "cells_per_stage", "convention")),
}


def define(*groups: str) -> list[str]:
    """Defines the flags of the named groups (once per process) and returns their names.

    A script passes them to ``flags.declare_key_flag`` so that ``--helpshort`` lists them as its
    own: ``for name in common.define("workspace", "space"): flags.declare_key_flag(name)``.
    Groups: ``workspace``, ``store``, ``space``, ``dataset``, ``batch``, ``proxies``,
    ``seeds``, ``stored``, ``target``, ``target_dataset``, ``output``, ``per_class``, ``robust``,
    ``compile``, ``compilation_cache``, ``archs``, ``json_out``, ``supernet`` (see :data:`GROUPS`).
    """
    names = []
    for group in groups:
        make, members = GROUPS[group]
        if members[0] not in FLAGS:
            make()
        names.extend(members)
    return names


def flag_given(name: str) -> bool:
    return bool(FLAGS[name].present)


def reads_flags(*names: str) -> Callable[[Callable], Callable]:
    """Marks a shared reader: a function that reads these flags on behalf of the script that
    calls it. ``tests/experiments/test_flags.py`` counts them as read by every script that
    calls the function (each must declare them), and checks that it reads exactly these."""
    def mark(function: Callable) -> Callable:
        function.flags_read = names
        return function
    return mark


@reads_flags("seeds")
def analysis_seeds() -> list[int] | None:
    """The --seeds an analysis restricts to, or None (every stored seed) when not given."""
    return parse_int_list(FLAGS.seeds, "seed") if flag_given("seeds") else None


# -- parsing ---------------------------------------------------------------------------------

def parse_int_list(text: str, what: str = "value") -> list[int]:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]`` (ranges inclusive, order kept, duplicates dropped)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(-?[0-9]+)(?:-(-?[0-9]+))?", part)
        if not m:
            fail(f"bad {what} {part!r} in {text!r}: expected integers or ranges A-B, "
                 "comma-separated")
        lo = int(m.group(1))
        hi = lo if m.group(2) is None else int(m.group(2))
        if hi < lo:
            fail(f"bad {what} range {part!r}: the end is below the start")
        out.extend(range(lo, hi + 1))
    if not out:
        fail(f"no {what} given in {text!r}")
    return list(dict.fromkeys(out))


def parse_sizes(text: str, what: str = "size") -> list[int | float]:
    """``"20,100,0.8"`` -> ``[20, 100, 0.8]``: integers are counts, decimals are ratios."""
    out: list[int | float] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if any(c in part for c in ".eE"):
                value = float(part)
                if not 0.0 < value <= 1.0:
                    fail(f"bad {what} {part!r}: a ratio must lie in (0, 1]")
                out.append(value)
            else:
                value = int(part)
                if value < 1:
                    fail(f"bad {what} {part!r}: a count must be >= 1")
                out.append(value)
        except ValueError as e:
            if isinstance(e, ExperimentError):
                raise
            fail(f"bad {what} {part!r} in {text!r}: expected counts (20) or ratios (0.8)")
    if not out:
        fail(f"no {what} given in {text!r}")
    return out


def parse_list(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


def parse_network(items: Sequence[str], config_type: type) -> dict[str, Any]:
    """``["channels=4", "convention=naslib"]`` -> typed overrides of ``config_type``'s fields."""
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    hints = typing.get_type_hints(config_type)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"bad --network entry {item!r}: expected name=value")
        if name not in fields:
            fail(f"unknown network setting {name!r}; {config_type.__name__} has "
                 f"{', '.join(sorted(fields))}")
        kind = hints.get(name, str)
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[name] = text.lower() in ("true", "1")
            elif kind in (int, float):
                out[name] = kind(text)
            elif typing.get_origin(kind) is tuple:
                out[name] = tuple(int(v) for v in text.split(":") if v)
            else:
                out[name] = text
        except ValueError:
            fail(f"bad --network entry {item!r}: {name} takes {getattr(kind, '__name__', kind)}")
    return out


# -- proxies ---------------------------------------------------------------------------------

def resolve_proxies(spec: str, space: str | None = None) -> list[str]:
    """Proxy names of ``spec`` (comma list, or ``all``: every registered proxy that applies to
    ``space``, or ``suite`` / ``suite_zero``: :data:`zcjax.proxies.SUITE` /
    :data:`~zcjax.proxies.SUITE_ZERO`), checked against the registry."""
    from zcjax import proxies as proxies_lib
    from zcjax import spaces

    named = {"suite": proxies_lib.SUITE, "suite_zero": proxies_lib.SUITE_ZERO}
    if spec.strip() in named:
        return list(named[spec.strip()])

    if spec.strip() == "all":
        names = proxies_lib.names()
        if space is not None:
            sp = spaces.get(space)
            kind = sp.input_spec(sp.config()).kind
            names = [n for n in names if kind in proxies_lib.get(n).inputs
                     and n not in sp.unsupported_proxies]
        return names
    names = parse_list(spec)
    if not names:
        fail("no proxies given")
    try:
        return list(dict.fromkeys(proxies_lib.get(n).name for n in names))
    except ValueError as e:
        fail(str(e))


def higher_is_better(name: str) -> bool:
    """The sign convention of a stored estimator: a proxy's registry entry, a one-shot
    estimator's (``zcjax.oneshot.ESTIMATORS``), else True (a name neither knows)."""
    from zcjax import proxies as proxies_lib
    from zcjax.oneshot.score import ESTIMATORS

    if name in ESTIMATORS:
        return ESTIMATORS[name]
    try:
        return bool(proxies_lib.get(name).higher_is_better)
    except ValueError:
        return True


def oriented(name: str, values):
    """Scores turned so that higher = better (negated where the proxy says lower is better)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    return values if higher_is_better(name) else -values


# -- the scoring setting ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything besides architecture, proxy and seed that a stored score depends on."""

    space: str = "nb201"
    network: tuple[str, ...] = ()
    dataset: str | None = None
    data_dir: str | None = None
    split: str = "train"
    batch_size: int = 64
    batch_seed: int = 0
    workspace: str | None = None

    @classmethod
    @reads_flags("space", "network", "dataset", "data_dir", "split", "batch_size", "batch_seed",
                 "workspace")
    def from_flags(cls) -> "Setting":
        return cls(space=FLAGS.space, network=tuple(FLAGS.network), dataset=FLAGS.dataset,
                   data_dir=FLAGS.data_dir, split=FLAGS.split, batch_size=FLAGS.batch_size,
                   batch_seed=FLAGS.batch_seed, workspace=FLAGS.workspace)

    @property
    def search_space(self):
        from zcjax import spaces

        try:
            return spaces.get(self.space)
        except ValueError as e:
            fail(str(e))

    @property
    def dataset_name(self) -> str:
        """``dataset``, or the space's default data set."""
        return self.dataset or self.search_space.datasets[0]

    def network_config(self):
        """The space's benchmark network with ``--network`` overrides and the data set's
        number of classes."""
        space = self.search_space
        overrides = parse_network(self.network, space.Config)
        if "num_classes" not in overrides and space.input_spec(space.config()).kind == "images":
            try:
                overrides["num_classes"] = space.num_classes(self.dataset_name)
            except (KeyError, ValueError) as e:
                fail(f"--dataset: {e}")
        try:
            return space.config(**overrides)
        except (TypeError, ValueError) as e:
            fail(str(e))

    def config(self, proxies: Sequence[str] = (), strategy: str = "auto",
               compile: str = "auto"):
        """The engine's SweepConfig (``strategy`` and ``compile`` do not change the hash)."""
        from zcjax.sweep.engine import SweepConfig

        try:
            return SweepConfig(proxies=tuple(proxies), space=self.space,
                               network=self.network_config(), strategy=strategy,
                               compile=compile)
        except ValueError as e:
            fail(str(e))

    def batch(self):
        """The scoring batch (bundled data unless ``data_dir`` or the workspace has the data
        set; see :meth:`zcjax.spaces.base.SearchSpace.scoring_batch`)."""
        space = self.search_space
        data_dir = self.data_dir
        if data_dir is None and self.dataset_name != space.datasets[0]:
            data_dir = str(workspace_lib.data_dir(self.workspace))
        try:
            return space.scoring_batch(self.network_config(), dataset=self.dataset_name,
                                       data_dir=data_dir, split=self.split,
                                       size=self.batch_size, seed=self.batch_seed)
        except FileNotFoundError as e:
            fail(f"{e}. Give --data_dir (the folder that holds the data set), or put the data "
                 f"under {workspace_lib.data_dir(self.workspace)}")
        except ValueError as e:
            fail(str(e))

    def batch_note(self) -> dict[str, Any]:
        """What the batch hash stands for (written beside the scores)."""
        return {"space": self.space, "dataset": self.dataset_name,
                "source": self.data_dir or "bundled", "split": self.split,
                "batch_size": self.batch_size, "batch_seed": self.batch_seed}

    def describe(self) -> str:
        fields = self.network_config().fields()
        net = ", ".join(f"{k}={v}" for k, v in fields.items())
        source = self.data_dir or "bundled sample"
        return (f"{self.space} ({net}), {self.dataset_name} {self.split} batch of "
                f"{self.batch_size} "
                f"(seed {self.batch_seed}, {source})")

    def short(self) -> str:
        """A few words for file names."""
        overrides = "-".join(i.replace("=", "") for i in self.network)
        return "_".join(p for p in (self.space, overrides) if p)


def hashes(setting: Setting, config_hash: str | None = None,
           batch_hash: str | None = None) -> tuple[str, str]:
    """``(config_hash, batch_hash)`` of a setting; given hashes take precedence."""
    from zcjax.sweep.engine import batch_hash as compute_batch_hash

    ch = config_hash or setting.config().hash()
    bh = batch_hash or compute_batch_hash(setting.batch())
    return ch, bh


# -- workspace and store ---------------------------------------------------------------------

def results_dir(ws: str | None) -> pathlib.Path:
    return workspace_lib.results_dir(ws)


def store_path(ws: str | None, store: str | None) -> pathlib.Path:
    if store:
        return pathlib.Path(store).expanduser().resolve()
    return results_dir(ws) / "scores.sqlite"


def open_store_for_reading(path: "str | os.PathLike"):
    """Opens an existing store read-only; a clear error if it is missing or not a store."""
    from zcjax.sweep.store import ResultStore, StoreError

    path = pathlib.Path(path)
    if not path.is_file():
        fail(f"no score store at {path}: run `python -m experiments.score` first (same "
             "--workspace / --store), or point --store at an existing file")
    try:
        return ResultStore(path, readonly=True)
    except StoreError as e:
        fail(str(e))


def describe_store(store) -> str:
    """Every (space, config, batch) the store holds, with what its notes say of the hashes."""
    notes = store.setting_notes()
    summary: dict[tuple, dict] = {}
    for rec in store.records():
        entry = summary.setdefault((rec.space, rec.config_hash, rec.batch_hash),
                                   {"proxies": set(), "archs": set(), "seeds": set()})
        entry["proxies"].add(rec.proxy)
        entry["archs"].add(rec.arch)
        entry["seeds"].add(rec.seed)
    if not summary:
        return "the store is empty"
    lines = []
    for (space, ch, bh), e in sorted(summary.items()):
        config = notes.get(("config", ch))
        batch = notes.get(("batch", bh))
        config_text = (", ".join(f"{k}={v}" for k, v in sorted(config.items()))
                       if config else "no note")
        batch_text = (", ".join(f"{k}={v}" for k, v in sorted(batch.items()))
                      if batch else "no note")
        lines.append(f"  {space}: config_hash={ch} ({config_text}), batch_hash={bh} "
                     f"({batch_text}): {len(e['archs'])} architectures, seeds "
                     f"{sorted(e['seeds'])}, proxies {', '.join(sorted(e['proxies']))}")
    return "the store holds:\n" + "\n".join(lines)


def read_scores(store_path, setting: Setting, config_hash: str | None = None,
                batch_hash: str | None = None, proxies: "str | Sequence[str]" = "all",
                seeds: Sequence[int] | None = None, policy: str = "strict"):
    """(stored scores, config hash, batch hash) of one setting; the store is closed again.

    Architectures come in the space's benchmark order where it has one (NB201: index order).

    Raises:
      ExperimentError: no scores for the setting (listing what the store holds), or requested
        proxies missing from it.
    """
    from zcjax.evaluate.stored import load_scores

    bench = setting.search_space.benchmark()
    order = bench.archs() if bench is not None else None
    store = open_store_for_reading(store_path)
    try:
        ch, bh = hashes(setting, config_hash, batch_hash)
        try:
            return (load_scores(store, setting.space, ch, bh, proxies, seeds, policy,
                                order=order), ch, bh)
        except LookupError as e:
            fail(f"{store.path}: {e}; {describe_store(store)}\nUse the same space, network and "
                 "data flags as for scoring, or pass --config_hash / --batch_hash.")
    finally:
        store.close()


def output_prefix(ws: str | None, out_prefix: str | None, default: str) -> pathlib.Path:
    """``<workspace>/results/<prefix>``, or ``out_prefix`` itself when it names a folder."""
    prefix = out_prefix or default
    if os.sep in prefix or os.path.isabs(prefix):
        path = pathlib.Path(prefix).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    return results_dir(ws) / prefix


def print_block(*lines: str) -> None:
    print("\n".join(lines), flush=True)
