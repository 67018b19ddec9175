"""What the experiment scripts share: flags, the scoring setting, reading the store, tables.

Every script in ``experiments/`` is an absl program (``python -m experiments.NAME --flag=...``
from the repository root). The flags defined here are shared by all of them, so one command line
names the same setting for scoring (``score``) and for the analyses that read the scores back
(``correlate``, ``robustness``, ``search``):

* the workspace (``--workspace``) and the store (``--store``);
* the data batch (``--dataset``, ``--data_dir``, ``--split``, ``--batch_size``, ``--batch_seed``);
* the network (``--channels``, ``--cells_per_stage``, ``--convention``);
* the proxies (``--proxies``) and the initialisation seeds (``--seeds``).

A score is stored under the hash of the network configuration and the hash of the batch, so the
analyses rebuild both from the same flags to find the scores (or take ``--config_hash`` /
``--batch_hash`` to pick a stored setting directly). When nothing matches, the error lists the
settings the store holds.

Scripts do the flag parsing and the file writing; the computations are zcjax's pure functions.
Each script's ``run(...)`` takes plain arguments and returns its results, so it can be called from
Python (tests, notebooks); its ``main`` only turns flags into those arguments.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import math
import os
import pathlib
import pkgutil
import re
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from absl import flags, logging

from zcjax import workspace as workspace_lib

FLAGS = flags.FLAGS

# -- shared flags ----------------------------------------------------------------------------

flags.DEFINE_string(
    "workspace", None,
    "Workspace root (data/, cache/, results/). Default: $ZCJAX_WORKSPACE, else ./zcjax_workspace.")
flags.DEFINE_string(
    "store", None, "Score store (SQLite). Default: <workspace>/results/scores.sqlite.")
flags.DEFINE_string(
    "dataset", "cifar10",
    "Data set of the scoring batch: cifar10 (bundled 1,000-image sample unless --data_dir is "
    "given), cifar100 or ImageNet16-120 (read from --data_dir, else <workspace>/data).")
flags.DEFINE_string(
    "data_dir", None,
    "Folder holding cifar-10-batches-py/, cifar-100-python/ or ImageNet16/ (or that folder "
    "itself). Not needed for cifar10, whose bundled sample is used by default.")
flags.DEFINE_enum("split", "train", ["train", "test"], "Split the batch is drawn from.")
flags.DEFINE_integer("batch_size", 64, "Images in the scoring batch (64 as in zero-cost-nas).")
flags.DEFINE_integer("batch_seed", 0, "Which images form the batch (a seeded permutation).")
flags.DEFINE_integer("channels", 16, "NB201 network: channels of the first stage (C).")
flags.DEFINE_integer("cells_per_stage", 5, "NB201 network: cells per stage (N).")
flags.DEFINE_string("convention", "zero_cost",
                    "Layer convention of the network (see zcjax.spaces.layers.CONVENTIONS).")
flags.DEFINE_string(
    "proxies", "all",
    "Comma-separated proxy names, or 'all' (score: every registered proxy; analyses: every "
    "proxy stored for the setting).")
flags.DEFINE_string(
    "seeds", "0",
    "Initialisation seeds, comma-separated (ranges as A-B, inclusive). Scoring uses them all; the "
    "analyses average each architecture's score over them when the flag is given, else over "
    "every stored seed.")
flags.DEFINE_string("config_hash", None,
                    "Analyses: read this stored network configuration instead of rebuilding it "
                    "from the network flags.")
flags.DEFINE_string("batch_hash", None,
                    "Analyses: read this stored batch instead of rebuilding it from the data "
                    "flags.")
flags.DEFINE_string(
    "out_prefix", None,
    "Analyses: file name prefix of the tables and plots under <workspace>/results/ (an absolute "
    "path or one with a folder is used as is). Default: chosen per script from its settings.")

flags.DEFINE_string("target", "test_accuracy",
                    "Analyses: ground-truth target spec (zcjax.evaluate.targets), e.g. "
                    "test_accuracy, clean, pgd@Linf:eps=1, corruption:all, hrs:pgd@Linf:eps=1.")
flags.DEFINE_string("target_dataset", None,
                    "Analyses: data set of the ground truth (cifar10, cifar100, ImageNet16-120). "
                    "Default: --dataset.")
flags.DEFINE_bool("per_class", None,
                  "Analyses: one entry per isomorphism class instead of per cell (default: off "
                  "for correlate and search, on for robustness, whose targets are per class).")
flags.DEFINE_string(
    "robust_target", "pgd@Linf:eps=1",
    "Analyses: the robust target (zcjax.evaluate.targets spec), e.g. pgd@Linf:eps=1, "
    "fgsm@Linf:eps=1, corruption:all.")

SPACE = "nb201"


class ExperimentError(ValueError):
    """A problem with the user's input or files, reported without a traceback."""


def fail(message: str) -> "NoReturn":  # noqa: F821
    raise ExperimentError(message)


def guarded(run_main: Callable[[], Any]) -> Any:
    """Runs a script body; an :class:`ExperimentError` exits with its message (status 1)."""
    try:
        return run_main()
    except ExperimentError as e:
        raise SystemExit(f"error: {e}") from None


def flag_given(name: str) -> bool:
    return bool(FLAGS[name].present)


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
        except ValueError:
            fail(f"bad {what} {part!r} in {text!r}: expected counts (20) or ratios (0.8)")
    if not out:
        fail(f"no {what} given in {text!r}")
    return out


def format_k(k: int | float) -> str:
    """``0.1`` -> ``"10%"``, ``64`` -> ``"64"``."""
    if isinstance(k, float):
        return f"{100 * k:g}%"
    return str(k)


def parse_list(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(",") if p.strip()]


# -- proxies ---------------------------------------------------------------------------------

def load_all_proxies() -> list[str]:
    """Imports every module of :mod:`zcjax.proxies` (registering its proxies); returns the
    registered names. A module that fails to import is reported and skipped."""
    import zcjax.proxies as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in ("base", "context") or info.name.startswith("_"):
            continue
        name = f"zcjax.proxies.{info.name}"
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # a proxy under construction must not break the others
            logging.warning("could not import %s (%s: %s); its proxies are unavailable",
                            name, type(e).__name__, e)
    return pkg.names()


def resolve_proxies(spec: str) -> list[str]:
    """Proxy names of ``spec`` (comma list or ``all``), checked against the registry."""
    from zcjax import proxies as proxies_lib

    available = load_all_proxies()
    if spec.strip() == "all":
        if not available:
            fail("no proxies are registered")
        return available
    names = parse_list(spec)
    if not names:
        fail("no proxies given")
    unknown = [n for n in names if _proxy_info(n) is None]
    if unknown:
        fail(f"unknown proxies {unknown}; registered: {', '.join(available)}")
    names = [proxies_lib.get(n).name for n in names]
    return list(dict.fromkeys(names))


def _proxy_info(name: str):
    from zcjax import proxies as proxies_lib

    load_all_proxies()
    try:
        return proxies_lib.get(name)
    except ValueError:
        return None


def higher_is_better(name: str) -> bool:
    """The registry's sign convention of a proxy (True for a proxy it does not know); the
    one-shot estimators stored like proxies (``zcjax.oneshot.ESTIMATORS``) have theirs."""
    from zcjax.oneshot.score import ESTIMATORS

    if name in ESTIMATORS:
        return ESTIMATORS[name]
    info = _proxy_info(name)
    if info is None:
        logging.warning("proxy %s is not registered; assuming higher scores are better", name)
        return True
    return bool(info.higher_is_better)


def oriented(name: str, values: np.ndarray) -> np.ndarray:
    """Scores turned so that higher = better (negated where the proxy says lower is better)."""
    values = np.asarray(values, dtype=np.float64)
    return values if higher_is_better(name) else -values


# -- architectures ---------------------------------------------------------------------------

def select_archs(spec: str, sample_seed: int = 0) -> list[int]:
    """NB201 indices named by ``spec``.

    * ``sample:N``: N distinct indices drawn uniformly from all 15,625 (seeded by
      ``sample_seed``), in increasing order;
    * ``sample_classes:N``: N drawn from the 6,466 isomorphism-class representatives;
    * ``range:A-B``: indices A, A+1, ..., B (inclusive);
    * ``indices:I,J,K``: exactly these;
    * ``all``: all 15,625;
    * ``classes``: the 6,466 class representatives (the smallest index of each class).
    """
    from zcjax.spaces import nb201

    spec = spec.strip()
    total = nb201.NUM_CELLS
    head, _, rest = spec.partition(":")
    if spec == "all":
        return list(range(total))
    if spec == "classes":
        return list(nb201.class_representatives())
    if head in ("sample", "sample_classes"):
        pool = np.arange(total) if head == "sample" else np.asarray(nb201.class_representatives())
        try:
            n = int(rest)
        except ValueError:
            fail(f"bad --archs {spec!r}: expected '{head}:N' with an integer N")
        if not 1 <= n <= pool.size:
            fail(f"bad --archs {spec!r}: N must be in 1..{pool.size}")
        rng = np.random.default_rng(sample_seed)
        return sorted(int(i) for i in rng.choice(pool, size=n, replace=False))
    if head == "range":
        parts = rest.split("-")
        try:
            lo, hi = int(parts[0]), int(parts[1])
            if len(parts) != 2:
                raise ValueError
        except (ValueError, IndexError):
            fail(f"bad --archs {spec!r}: expected 'range:A-B' (inclusive)")
        if not 0 <= lo <= hi < total:
            fail(f"bad --archs {spec!r}: need 0 <= A <= B <= {total - 1}")
        return list(range(lo, hi + 1))
    if head == "indices":
        idx = parse_int_list(rest, "index")
        bad = [i for i in idx if not 0 <= i < total]
        if bad:
            fail(f"bad --archs {spec!r}: indices {bad} outside 0..{total - 1}")
        return idx
    fail(f"bad --archs {spec!r}: expected 'sample:N', 'sample_classes:N', 'range:A-B', "
         "'indices:I,J,...', 'all' or 'classes'")


def arch_indices(arch_strings: Sequence[str]) -> np.ndarray:
    """NB201 indices of stored architecture strings; an error names any that is not a cell."""
    from zcjax.spaces import nb201

    out = np.empty(len(arch_strings), dtype=np.int64)
    bad = []
    for i, s in enumerate(arch_strings):
        try:
            out[i] = nb201.index_of(s)
        except (ValueError, KeyError) as e:
            bad.append((s, str(e)))
    if bad:
        fail(f"{len(bad)} stored architecture(s) are not NAS-Bench-201 cells, so they have no "
             f"ground truth, e.g. {bad[0][0]!r} ({bad[0][1]})")
    return out


# -- the scoring setting ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything besides architecture, proxy and seed that a stored score depends on."""

    dataset: str = "cifar10"
    data_dir: str | None = None
    split: str = "train"
    batch_size: int = 64
    batch_seed: int = 0
    channels: int = 16
    cells_per_stage: int = 5
    convention: str = "zero_cost"
    workspace: str | None = None

    @classmethod
    def from_flags(cls) -> "Setting":
        return cls(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, split=FLAGS.split,
                   batch_size=FLAGS.batch_size, batch_seed=FLAGS.batch_seed,
                   channels=FLAGS.channels, cells_per_stage=FLAGS.cells_per_stage,
                   convention=FLAGS.convention, workspace=FLAGS.workspace)

    @property
    def canonical_dataset(self) -> str:
        from zcjax.benchmarks.nb201 import canonical_dataset

        try:
            return canonical_dataset(self.dataset)
        except ValueError as e:
            fail(str(e))

    @property
    def num_classes(self) -> int:
        from zcjax import data

        return data.NUM_CLASSES[self.canonical_dataset]

    def config(self, proxies: Sequence[str] = (), strategy: str = "auto",
               compile: str = "auto"):
        """The engine's SweepConfig (``strategy`` and ``compile`` do not change the hash)."""
        from zcjax.sweep.engine import SweepConfig

        try:
            return SweepConfig(proxies=tuple(proxies), channels=self.channels,
                               cells_per_stage=self.cells_per_stage,
                               num_classes=self.num_classes, convention=self.convention,
                               strategy=strategy, compile=compile)
        except ValueError as e:
            fail(str(e))

    def batch(self):
        """The scoring batch: the bundled CIFAR-10 sample, or drawn from the user's data."""
        from zcjax import data

        dataset = self.canonical_dataset
        try:
            if dataset == "cifar10" and self.data_dir is None:
                return data.default_batch(self.batch_size, split=self.split,
                                          seed=self.batch_seed)
            root = self.data_dir or str(workspace_lib.data_dir(self.workspace))
            if dataset == "ImageNet16-120":
                images, labels = data.load_imagenet16(root, 120, split=self.split)
            else:
                images, labels = data.load_cifar(root, dataset, split=self.split)
            mean, std = data.normalization(dataset)
            return data.batch_from_arrays(images, labels, self.batch_size, self.batch_seed,
                                          mean, std)
        except FileNotFoundError as e:
            fail(f"{e}. Give --data_dir (the folder holding the data set), or put the data "
                 f"under {workspace_lib.data_dir(self.workspace)}")
        except ValueError as e:
            fail(str(e))

    def describe(self) -> str:
        source = "bundled sample" if (self.canonical_dataset == "cifar10"
                                      and self.data_dir is None) else self.data_dir or "workspace"
        return (f"NB201 C={self.channels} N={self.cells_per_stage} ({self.convention}), "
                f"{self.canonical_dataset} {self.split} batch of {self.batch_size} "
                f"(seed {self.batch_seed}, {source})")


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
    """Opens an existing store; a clear error if the file is missing or not a store."""
    from zcjax.sweep.store import ResultStore, StoreError

    path = pathlib.Path(path)
    if not path.is_file():
        fail(f"no score store at {path}: run `python -m experiments.score` first (same "
             "--workspace / --store), or point --store at an existing file")
    try:
        return ResultStore(path)
    except StoreError as e:
        fail(str(e))


def stored_settings(store) -> list[dict]:
    """Every (space, config_hash, batch_hash) in the store, with its proxies and counts."""
    summary: dict[tuple, dict] = {}
    for rec in store.records():
        key = (rec.space, rec.config_hash, rec.batch_hash)
        entry = summary.setdefault(key, {"space": rec.space, "config_hash": rec.config_hash,
                                         "batch_hash": rec.batch_hash, "proxies": set(),
                                         "archs": set(), "seeds": set(), "rows": 0})
        entry["proxies"].add(rec.proxy)
        entry["archs"].add(rec.arch)
        entry["seeds"].add(rec.seed)
        entry["rows"] += 1
    return list(summary.values())


def _guess_config(config_hash: str) -> str | None:
    """The network flags of a config hash, searched over common values (None if not found)."""
    from zcjax.spaces import layers
    from zcjax.sweep.engine import SweepConfig

    for conv in sorted(layers.CONVENTIONS):
        for classes in (10, 100, 120):
            for c in (16, 8, 4, 32, 2, 64):
                for n in (5, 1, 2, 3, 4):
                    cfg = SweepConfig(proxies=(), channels=c, cells_per_stage=n,
                                      num_classes=classes, convention=conv)
                    if cfg.hash() == config_hash:
                        return (f"--channels={c} --cells_per_stage={n} --convention={conv}, "
                                f"{classes} classes")
    return None


def _guess_batch(batch_hash: str) -> str | None:
    """The data flags of a bundled-CIFAR-10 batch hash, over common values (None if not)."""
    from zcjax import data
    from zcjax.sweep.engine import batch_hash as compute

    for split in ("train", "test"):
        for size in (64, 8, 16, 32, 128, 256, 4, 1, 2, 512):
            for seed in range(4):
                if compute(data.default_batch(size, split=split, seed=seed)) == batch_hash:
                    return (f"--batch_size={size} --batch_seed={seed} --split={split} "
                            "(bundled CIFAR-10)")
    return None


def describe_settings(settings: Sequence[dict]) -> str:
    if not settings:
        return "the store is empty"
    lines = []
    for s in settings:
        config = _guess_config(s["config_hash"]) or "network flags not recognised"
        batch = _guess_batch(s["batch_hash"]) or "batch not recognised (your own data?)"
        lines.append(f"  config_hash={s['config_hash']} ({config}), batch_hash="
                     f"{s['batch_hash']} ({batch}): {len(s['archs'])} archs, seeds "
                     f"{sorted(s['seeds'])}, proxies {', '.join(sorted(s['proxies']))}")
    return "the store holds:\n" + "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class StoredScores:
    """Per-architecture scores of one setting, mean over seeds, aligned on ``archs``.

    Attributes:
      archs: stored architecture strings (sorted by NB201 index).
      indices: their NB201 indices.
      scores: proxy -> (len(archs),) float64 mean over seeds (NaN where no finite seed, or
        where the proxy has no score for that architecture); raw values, as stored.
      seeds: proxy -> sorted seeds found for it.
      config_hash, batch_hash: the setting.
    """

    archs: tuple[str, ...]
    indices: np.ndarray
    scores: dict[str, np.ndarray]
    seeds: dict[str, list[int]]
    config_hash: str
    batch_hash: str

    def subset(self, keep: np.ndarray) -> "StoredScores":
        keep = np.asarray(keep)
        return dataclasses.replace(
            self, archs=tuple(np.asarray(self.archs, dtype=object)[keep]),
            indices=self.indices[keep], scores={p: v[keep] for p, v in self.scores.items()})


def load_scores(store, config_hash: str, batch_hash: str, proxies: str | Sequence[str] = "all",
                seeds: Sequence[int] | None = None, min_archs: int = 1) -> StoredScores:
    """Reads one setting's scores, averaged over seeds per architecture.

    Args:
      proxies: ``"all"`` (every proxy stored for the setting) or names.
      seeds: average over these seeds only (default: every stored seed).
      min_archs: fewer stored architectures than this is an error.

    Raises:
      ExperimentError: no scores for the setting (listing what the store holds), or requested
        proxies missing from it.
    """
    stored = store.stored_proxies(SPACE, config_hash, batch_hash)
    present = sorted({p for ps in stored.values() for p in ps})
    if not present:
        fail(f"the store {store.path} has no scores for config_hash={config_hash} "
             f"batch_hash={batch_hash} (the network / data flags you gave); "
             f"{describe_settings(stored_settings(store))}\nUse the same network and data flags "
             "as for scoring, or pass --config_hash / --batch_hash.")
    if isinstance(proxies, str):
        names = present if proxies.strip() == "all" else parse_list(proxies)
    else:
        names = list(proxies)
    missing = [p for p in names if p not in present]
    if missing:
        fail(f"no stored scores for proxies {missing} in this setting; stored: "
             f"{', '.join(present)}")
    per_proxy = {p: store.scores(SPACE, p, config_hash, batch_hash, seeds=seeds)
                 for p in names}
    arch_set = sorted({a for d in per_proxy.values() for a in d})
    if len(arch_set) < min_archs:
        fail(f"only {len(arch_set)} architectures stored for this setting; need at least "
             f"{min_archs}")
    idx = arch_indices(arch_set)
    order = np.argsort(idx, kind="stable")
    archs = tuple(arch_set[i] for i in order)
    idx = idx[order]
    means, seeds_found = {}, {}
    for p, d in per_proxy.items():
        col = np.full(len(archs), np.nan)
        for i, a in enumerate(archs):
            v = d.get(a)
            if v is not None and np.isfinite(v).any():
                col[i] = float(np.nanmean(v))
        means[p] = col
        if seeds is None:
            seeds_found[p] = sorted({s for (a, s), ps in stored.items() if p in ps})
        else:
            seeds_found[p] = list(seeds)
    return StoredScores(archs, idx, means, seeds_found, config_hash, batch_hash)


def load_target(spec: str, dataset: str) -> np.ndarray:
    """A (15625,) target array; unknown or malformed specs become a clear error."""
    from zcjax.benchmarks.nb201 import canonical_dataset
    from zcjax.evaluate import targets

    try:
        dataset = canonical_dataset(dataset)
        return targets.target(spec, dataset)
    except ValueError as e:
        fail(f"target {spec!r} on {dataset}: {e}")


def target_unit(spec: str) -> str:
    from zcjax.evaluate import targets

    return targets.parse_target(spec).unit


def check_ground_truth(values: np.ndarray, what: str) -> None:
    """An error when no scored architecture has a ground-truth value."""
    if values.size and not np.isfinite(values).any():
        fail(f"none of the {values.size} stored architectures has a value for {what}: the "
             "stored architectures and the ground truth do not match")


def default_prefix(*parts: Any) -> str:
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def output_prefix(ws: str | None, out_prefix: str | None, default: str) -> pathlib.Path:
    """``<workspace>/results/<prefix>``, or ``out_prefix`` itself when it names a folder."""
    prefix = out_prefix or default
    if os.sep in prefix or os.path.isabs(prefix):
        path = pathlib.Path(prefix).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    return results_dir(ws) / prefix


# -- tables ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: the row key, its headers and how its values are shown.

    ``fmt`` formats a value for Markdown / LaTeX (CSV keeps full precision);
    ``tex`` is the LaTeX header (default: ``header`` escaped).
    """

    key: str
    header: str
    fmt: Callable[[Any], str] = str
    tex: str | None = None


def fmt_float(digits: int = 3) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None:
            return "–"
        try:
            x = float(v)
        except (TypeError, ValueError):
            return str(v)
        if math.isnan(x):
            return "–"
        return f"{x:.{digits}f}"

    return f


def fmt_mean_std(digits: int = 3) -> Callable[[Any], str]:
    """Formats a ``(mean, std)`` pair as ``mean ± std``."""
    one = fmt_float(digits)

    def f(v: Any) -> str:
        if v is None:
            return "–"
        mean, std = v
        if mean is None or math.isnan(float(mean)):
            return "–"
        return f"{one(mean)} ± {one(std)}"

    return f


def _tex_escape(text: str) -> str:
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--", "↑": r"$\uparrow$",
            "↓": r"$\downarrow$", "τ": r"$\tau$", "ρ": r"$\rho$", "²": r"$^2$"}
    return "".join(repl.get(c, c) for c in text)


def _csv_value(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2:
        return None  # expanded by write_csv
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(float(v)) else repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: "str | os.PathLike", rows: Sequence[Mapping[str, Any]],
              columns: Sequence[Column]) -> None:
    """CSV with full precision; a ``(mean, std)`` cell becomes ``<key>_mean`` and ``<key>_std``."""
    header: list[str] = []
    for c in columns:
        pair = any(isinstance(r.get(c.key), tuple) for r in rows)
        header.extend([f"{c.key}_mean", f"{c.key}_std"] if pair else [c.key])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            out = []
            for c in columns:
                v = r.get(c.key)
                pair = f"{c.key}_mean" in header
                if pair:
                    m, s = v if isinstance(v, tuple) else (float("nan"), float("nan"))
                    out.extend([_csv_value(float(m)), _csv_value(float(s))])
                else:
                    out.append("" if v is None else _csv_value(v))
            w.writerow(out)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    head = "| " + " | ".join(c.header for c in columns) + " |"
    rule = "| " + " | ".join("---" if i == 0 else "---:" for i, _ in enumerate(columns)) + " |"
    body = ["| " + " | ".join(c.fmt(r.get(c.key)) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def latex_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], caption: str,
                label: str) -> str:
    """A booktabs table (``\\usepackage{booktabs}``)."""
    spec = "l" + "r" * (len(columns) - 1)
    head = " & ".join(c.tex if c.tex is not None else _tex_escape(c.header) for c in columns)
    lines = [
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{_tex_escape(caption)}}}", rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head + r" \\", r"\midrule",
    ]
    for r in rows:
        lines.append(" & ".join(_tex_escape(c.fmt(r.get(c.key))) for c in columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(prefix: pathlib.Path, rows: Sequence[Mapping[str, Any]],
                 columns: Sequence[Column], caption: str, notes: Iterable[str] = ()
                 ) -> dict[str, pathlib.Path]:
    """Writes ``<prefix>.csv``, ``.md`` (caption, table, notes) and ``.tex``; returns paths."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {"csv": prefix.with_name(prefix.name + ".csv"),
             "md": prefix.with_name(prefix.name + ".md"),
             "tex": prefix.with_name(prefix.name + ".tex")}
    write_csv(paths["csv"], rows, columns)
    md = markdown_table(rows, columns)
    notes = list(notes)
    text = f"{caption}\n\n{md}\n" + ("".join(f"\n{n}" for n in notes) + "\n" if notes else "")
    paths["md"].write_text(text, encoding="utf-8")
    label = "tab:" + default_prefix(prefix.name)
    paths["tex"].write_text(latex_table(rows, columns, caption, label), encoding="utf-8")
    return paths


def new_figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg canvas, without pyplot (no global state, no
    display backend: works headless, in tests and inside notebooks alike)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def print_block(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def read_scores(store_path, setting, config_hash, batch_hash, proxies, seeds):
    """(stored scores, config hash, batch hash) of one setting; the store is closed again."""
    store = open_store_for_reading(store_path)
    try:
        ch, bh = hashes(setting, config_hash, batch_hash)
        return load_scores(store, ch, bh, proxies, seeds), ch, bh
    finally:
        store.close()
