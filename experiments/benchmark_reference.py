r"""Times the PyTorch references and zcjax side by side, on the same NB201 cells and batch.

The yardstick of issue #12: the code NAS researchers run today, on the same machine, cells,
network size and batch as zcjax. It needs PyTorch and checkouts of the references (only their
Python packages are imported; no file of them is part of zcjax)::

  pip install torch
  git clone https://github.com/SamsungLabs/zero-cost-nas /tmp/zero-cost-nas
  git clone https://github.com/automl/NASLib /tmp/NASLib
  # the 13 NAS-Bench-Suite-Zero proxies: NASLib's code, then zcjax's, back to back
  python -m experiments.benchmark_reference --zero_cost_nas=/tmp/zero-cost-nas \
      --naslib=/tmp/NASLib --cells=1462,9930,10760,5000 --json_out=/tmp/ref.json
  python -m experiments.benchmark_reference --noreference --naslib=/tmp/NASLib \
      --cells=1462,9930,10760,5000 --zcjax_sets=measures,suite --json_out=/tmp/zcjax.json
  # zero-cost-nas's own entry point, its seven measures in one call
  python -m experiments.benchmark_reference --zero_cost_nas=/tmp/zero-cost-nas

Run the two sides in separate processes, one after the other. In one process, interleaved,
the reference ran about twice as slow once zcjax had run (measured here: NASLib's grad_norm
1.6 s before zcjax's first call, 3.3 s after it; fisher 1.4 s and 3.8 s); the likely cause,
not verified, is each framework's worker threads spinning after its calls on the two cores. (``--zcjax_sets`` with the reference in the same process still works, for a
quick look.)

References:

- ``--zero_cost_nas`` (always): the network, ``foresight.models.nasbench2`` (N=5, C from
  ``--network=channels=C``, default 16, PyTorch's default initialisation, seed 0). Without
  ``--naslib`` the measures are its ``find_measures`` -- the entry point of its own NB201
  script -- called once with the whole set, and with ``--singles`` once per measure.
- ``--naslib``: the measures of NAS-Bench-Suite-Zero (``naslib/predictors/utils/pruners/
  measures``), one call per measure on the same network, as NASLib's ``ZeroCost`` predictor
  makes them (``calc_measure``, then its ``find_measures``' sum over layers). NASLib counts
  ``params`` and ``flops`` with ``tensorwatch``, which no longer installs; here they are
  PyTorch's own counts (the parameters' sizes; ``torch.utils.flop_counter`` on a batch of one,
  NASLib's batch for them). Zen-NAS calls ``forward_before_global_avg_pool``, which NASLib's
  NB201 graph has and zero-cost-nas's network lacks: the script adds it (the network up to the
  global pooling). Zen-NAS also reads every batch norm's ``running_var``, which NB201's cell
  batch norms do not keep (``track_running_stats=False`` in both codes, so the reference raises
  there): Zen's copy of the network gets PyTorch's default running statistics, as zcjax's
  ``zen`` assumes (:mod:`zcjax.proxies.zen`). The reference's time for a measure set is the sum
  of its measures' times.

zcjax (``--zcjax_sets``, empty for the reference alone): the sweep engine on each cell exactly as
a sweep runs it (``SweepConfig(compile="auto")``: the compile-once supernet, the eager route,
counted params / flops; initialisation included). Sets: ``measures`` (the reference's measures,
fused into one program), ``suite`` (zcjax's 17, :data:`zcjax.proxies.SUITE`), or a
``+``-joined list of proxies. The first call of each set compiles its program (reported as
``compile s``: first call minus a steady call). Times are medians over ``--repeats`` calls after
that first call; building the reference's network is not timed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import types
from typing import Callable, Sequence

import numpy as np
from absl import app, flags

from experiments import benchmark, common
from zcjax import proxies as proxies_lib
from zcjax.spaces import nb201

#: The measures of zero-cost-nas's ``foresight/pruners/measures``.
MEASURES = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow")
#: NASLib's name of a measure where it differs from zcjax's.
NASLIB_NAMES = {"jacob_cov": "jacov"}
#: NASLib's measures whose result is one number (the others are per-layer arrays it sums).
NASLIB_SCALAR = ("jacov", "epe_nas", "nwot", "zen")

FLAGS = flags.FLAGS
# experiments.benchmark's cells, timing and output flags, and its network and batch flags
for _name in ("cells", "repeats", "singles", "json_out", "seed", *benchmark.setting.flags_read):
    flags.declare_key_flag(_name)
flags.DEFINE_string("zero_cost_nas", None, "path of a SamsungLabs/zero-cost-nas checkout")
flags.DEFINE_string("naslib", None, "path of an automl/NASLib checkout: time its measures "
                    "(NAS-Bench-Suite-Zero's code) instead of zero-cost-nas's find_measures")
flags.DEFINE_list("measures", None, "measures (zcjax names); default: zero-cost-nas's seven, "
                  "or with --naslib the 13 of NAS-Bench-Suite-Zero")
flags.DEFINE_list("zcjax_sets", [], "zcjax proxy sets timed beside the reference: measures "
                  "(the same), suite (zcjax's 17), or proxies joined with '+'")
flags.DEFINE_integer("threads", 0, "torch.set_num_threads (0: PyTorch's default)")
flags.DEFINE_bool("reference", True, "time the reference (--noreference: only the zcjax sets, "
                  "in a process of their own; see the module docstring)")


def load_reference(path: str | None):
    """Imports torch and the reference's ``foresight`` package, or says what is missing."""
    torch = _torch()
    if not path or not os.path.isdir(os.path.join(path, "foresight")):
        raise SystemExit(f"--zero_cost_nas={path!r} is not a zero-cost-nas checkout (no "
                         f"'foresight' folder); clone https://github.com/SamsungLabs/zero-cost-nas")
    sys.path.insert(0, os.path.abspath(path))
    from foresight.models import nasbench2
    from foresight.pruners import predictive
    return torch, nasbench2, predictive


def load_naslib(path: str | None):
    """NASLib's measure registry (``naslib.predictors.utils.pruners.measures``), imported without
    the rest of NASLib (whose ``__init__`` pulls in its whole dependency tree)."""
    package = os.path.join(path or "", "naslib", "predictors", "utils", "pruners", "measures")
    if not os.path.isdir(package):
        raise SystemExit(f"--naslib={path!r} is not a NASLib checkout (no {package}); clone "
                         f"https://github.com/automl/NASLib")
    import importlib.util

    # Empty stand-ins for the parent packages, so that only the pruners' own files run.
    root = os.path.abspath(path)
    for name in ("naslib", "naslib.predictors", "naslib.predictors.utils"):
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules.setdefault(name, module)
    spec = importlib.util.find_spec("naslib.predictors.utils.pruners.measures")
    measures = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = measures
    spec.loader.exec_module(measures)
    return measures


def _torch():
    try:
        import torch
    except ImportError as e:
        raise SystemExit("benchmark_reference needs PyTorch: pip install torch") from e
    return torch


def torch_batch(torch, batch):
    """A zcjax batch as NCHW float32 / int64 tensors."""
    images = torch.tensor(np.asarray(batch.images).transpose(0, 3, 1, 2).copy())
    return images, torch.tensor(np.asarray(batch.labels), dtype=torch.int64)


def _before_global_pool(net, x):
    """zero-cost-nas's NB201 network up to its global pooling (Zen-NAS's feature map)."""
    x = net.stack_cell1(net.stem(x))
    x = net.stack_cell2(net.reduction1(x))
    return net.top.lastact(net.stack_cell3(net.reduction2(x)))


def _tracking_running_stats(torch, net):
    """``net`` whose prunable copies keep batch-norm running statistics.

    NASLib's Zen-NAS reads every batch norm's ``running_var``; NB201's cell batch norms have
    ``track_running_stats=False`` (it is ``None``), so they get PyTorch's defaults here.
    """
    def copy(bn):
        model = net.get_prunable_copy(bn=bn)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m.running_var is None:
                m.track_running_stats = True
                m.register_buffer("running_mean", torch.zeros(m.num_features))
                m.register_buffer("running_var", torch.ones(m.num_features))
                m.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        return model

    return types.SimpleNamespace(get_prunable_copy=copy)


def naslib_calls(torch, measures, names: Sequence[str], images, labels
                 ) -> dict[str, Callable[[object], float]]:
    """One reference call per measure: ``call(net) -> score``, as NASLib's predictor makes it."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    def naslib_measure(name):
        def call(net):
            if name == "zen":
                net = _tracking_running_stats(torch, net)
            value = measures.calc_measure(name, net, torch.device("cpu"), images, labels,
                                          loss_fn=F.cross_entropy, split_data=1)
            if name in NASLIB_SCALAR:
                return float(value)
            return float(sum(torch.sum(v) for v in value).item())
        return call

    def params(net):
        return sum(p.numel() for p in net.parameters()) / 1e6

    def flops(net):
        with FlopCounterMode(display=False) as counter:
            net(images[:1])
        return counter.get_total_flops() / 2 / 1e6  # multiply-adds, in millions

    calls = {"params": params, "flops": flops}
    known = set(measures.available_measures)
    out = {}
    for name in names:
        ref = NASLIB_NAMES.get(name, name)
        if name in calls:
            out[name] = calls[name]
        elif ref in known:
            out[name] = naslib_measure(ref)
        else:
            raise SystemExit(f"NASLib has no measure {ref!r}; it has {sorted(known)}")
    return out


def reference_calls(torch, nasbench2, predictive, measures, batch, num_classes):
    """The reference's timed items, ``label -> (call(net),)`` (module docstring)."""
    images, labels = torch_batch(torch, batch)
    if FLAGS.naslib:
        calls = naslib_calls(torch, load_naslib(FLAGS.naslib), measures, images, labels)
        nasbench2.NAS201Model.forward_before_global_avg_pool = _before_global_pool
        return {f"NASLib: {m}": (calls[m],) for m in measures}

    def find_measures(names):
        loader = [(images, labels)]  # find_measures takes next(iter(loader))
        return lambda net: predictive.find_measures(
            net, loader, ("random", 1, num_classes), torch.device("cpu"),
            measure_names=list(names))

    sets = ([(m,) for m in measures] if FLAGS.singles else []) + [measures]
    return {f"zero-cost-nas find_measures: {'+'.join(s)}": (find_measures(s),) for s in sets}


@dataclasses.dataclass
class Timings:
    """Call times of one item (a reference measure or set, a zcjax set) on one cell."""

    first: float
    runs: list[float] = dataclasses.field(default_factory=list)

    @property
    def run(self) -> float:
        return float(np.median(self.runs)) if self.runs else self.first


def zcjax_sets(specs: Sequence[str], measures: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``--zcjax_sets`` resolved to proxy tuples, keyed by a printable label."""
    out = {}
    for spec in specs:
        if spec == "measures":
            out[f"zcjax, the {len(measures)} measures"] = tuple(measures)
        elif spec == "suite":
            out[f"zcjax, its suite of {len(proxies_lib.SUITE)}"] = tuple(proxies_lib.SUITE)
        else:
            names = tuple(common.resolve_proxies(spec.replace("+", ",")))
            out["zcjax, " + "+".join(names)] = names
    return out


def main(argv):
    del argv
    common.guarded(_main)


def _main():
    setting = benchmark.setting()
    if setting.space != "nb201":
        raise app.UsageError("the reference is timed on NB201 (--space=nb201)")
    config = setting.network_config()
    if (config.cells_per_stage, config.convention) != (5, "zero_cost"):
        raise app.UsageError("the reference's network has N=5 cells per stage and its own "
                             "layers (zcjax's zero_cost convention): --network may set only "
                             "channels")
    default = proxies_lib.SUITE_ZERO if FLAGS.naslib else MEASURES
    measures = tuple(FLAGS.measures or default)
    if not FLAGS.naslib and set(measures) - set(MEASURES):
        raise app.UsageError(f"zero-cost-nas has no measures {sorted(set(measures) - set(MEASURES))}"
                             f"; it has {MEASURES} (--naslib has the 13 of NAS-Bench-Suite-Zero)")
    batch = setting.batch()
    reference, torch, nasbench2 = {}, None, None
    if FLAGS.reference:
        torch, nasbench2, predictive = load_reference(FLAGS.zero_cost_nas)
        if FLAGS.threads:
            torch.set_num_threads(FLAGS.threads)
        reference = reference_calls(torch, nasbench2, predictive, measures, batch,
                                    config.num_classes)
    zc_sets = zcjax_sets(FLAGS.zcjax_sets, measures)
    net_kwargs = config.fields()
    runners = {label: benchmark.Runner("engine", names, batch, net_kwargs, FLAGS.seed)
               for label, names in zc_sets.items()}
    archs = benchmark.benchmark_archs()
    rows = []
    for arch in archs:
        net = None
        if reference:
            torch.manual_seed(0)
            net = nasbench2.get_model_from_arch_str(nb201.as_genotype(arch).to_string(),
                                                    config.num_classes,
                                                    init_channels=config.channels)
        items: dict[str, Callable[[], float]] = {
            label: (lambda f=f: _time(lambda: f(net))) for label, (f,) in reference.items()}
        items.update({label: (lambda r=r: r.call(arch)) for label, r in runners.items()})
        timings = {label: Timings(first=call()) for label, call in items.items()}
        for _ in range(FLAGS.repeats):
            for label, call in items.items():
                timings[label].runs.append(call())
        for label, t in timings.items():
            side = "zcjax" if label in runners else "reference"
            rows.append(dict(arch=arch, side=side, item=label, first_call_s=t.first,
                             run_s=t.run, runs=t.runs))
            print(f"{arch:6d} {label:60s} first {t.first:8.3f} s  run {t.run:8.3f} s", flush=True)
    summary = summarise(rows, measures, zc_sets, naslib=bool(FLAGS.naslib))
    common.print_block(summary)
    versions = dict(torch=torch.__version__, threads=torch.get_num_threads()) if torch else {}
    print(f"{versions}, load average {os.getloadavg()}")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(dict(rows=rows, measures=measures, zcjax_sets=zc_sets,
                           batch_size=FLAGS.batch_size, archs=archs, channels=config.channels,
                           naslib=bool(FLAGS.naslib), load=os.getloadavg(), **versions), f,
                      indent=1)


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summarise(rows: list[dict], measures: Sequence[str], zc_sets: dict, naslib: bool) -> str:
    """A Markdown table per cell: the reference's time for the measures (NASLib: the sum of its
    single calls), each zcjax set's time and compilation, and the speed-up on the measures."""
    from zcjax.evaluate import tables

    out = []
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch]
        ref_rows = [r for r in mine if r["side"] == "reference"]
        if not ref_rows:
            ref = float("nan")
        elif naslib:
            ref = sum(r["run_s"] for r in ref_rows)
        else:
            whole = [r for r in ref_rows if r["item"].endswith(": " + "+".join(measures))]
            ref = whole[0]["run_s"] if whole else float("nan")
        row = {"arch": arch, "reference": ref}
        for label in zc_sets:
            r = next(r for r in mine if r["item"] == label)
            row[label] = r["run_s"]
            row[label + " compile"] = max(0.0, r["first_call_s"] - r["run_s"])
        out.append(row)
    cols = [tables.Column("arch", "NB201 cell"),
            tables.Column("reference", f"reference, the {len(measures)} measures (s)",
                          tables.fmt_float(2))]
    for label, names in zc_sets.items():
        cols.append(tables.Column(label, f"{label} (s)", tables.fmt_float(2)))
        if tuple(names) == tuple(measures):
            for row in out:
                row[label + " x"] = row["reference"] / row[label]
            cols.append(tables.Column(label + " x", "speed-up", tables.fmt_float(1)))
    for label in zc_sets:
        cols.append(tables.Column(label + " compile", f"compile, {label} (s, once)",
                                  tables.fmt_float(0)))
    return tables.markdown_table(out, cols)


if __name__ == "__main__":
    app.run(main)
