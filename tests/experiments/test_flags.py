"""Every script lists exactly the flags it honours.

A script's flags are its key flags (``FLAGS.get_key_flags_for_module``): the flags it defines
and the shared ones it declares (``flags.declare_key_flag``), which ``--helpshort`` lists. Each
must be read by the script, and the script may read no other flag. "Read" means, in the
script's source: ``FLAGS.<name>``, ``FLAGS["<name>"]``, ``common.flag_given("<name>")``,
``<holder>.value`` of a ``flags.DEFINE_*`` holder, or a call of a shared reader marked with
:func:`experiments.common.reads_flags` (``common.Setting.from_flags()``,
``common.analysis_seeds()``, ...), which counts as reading its flags. The readers themselves
are checked to read exactly the flags they name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import types

import pytest
from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `experiments` is not installed; plain `pytest` needs the root
    sys.path.insert(0, str(REPO))

from experiments import common  # noqa: E402

FLAGS = flags.FLAGS
SCRIPTS = sorted(p.stem for p in (REPO / "experiments").glob("*.py")
                 if p.stem not in ("__init__", "common"))
MODULES = {name: importlib.import_module(f"experiments.{name}") for name in SCRIPTS}


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a Name / Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _resolve(namespace: dict, dotted: str):
    head, *rest = dotted.split(".")
    obj = namespace.get(head)
    if obj is FLAGS:  # FLAGS.<name>...: a flag's value, not a reader
        return None
    for part in rest:
        obj = getattr(obj, part, None)
    return obj


def flags_read(source: str, namespace: dict) -> set[str]:
    """The flags a piece of code reads (module doc), resolving readers in ``namespace``."""
    tree = ast.parse(textwrap.dedent(source))
    holders = {}  # variable bound to a flags.DEFINE_* holder -> flag name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and (_dotted(node.value.func) or "").startswith("flags.DEFINE")
                and node.value.args and isinstance(node.value.args[0], ast.Constant)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    holders[target.id] = node.value.args[0].value
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "FLAGS" and not hasattr(flags.FlagValues, node.attr):
                read.add(node.attr)
            elif node.value.id in holders and node.attr == "value":
                read.add(holders[node.value.id])
        elif (isinstance(node, ast.Subscript) and _dotted(node.value) == "FLAGS"
              and isinstance(node.slice, ast.Constant)):
            read.add(node.slice.value)
        elif isinstance(node, ast.Call):
            name = _dotted(node.func) or ""
            if name.split(".")[-1] == "flag_given" and isinstance(node.args[0], ast.Constant):
                read.add(node.args[0].value)
            elif name:
                read.update(getattr(_resolve(namespace, name), "flags_read", ()))
    return read


def key_flags(module: types.ModuleType) -> set[str]:
    return {f.name for f in FLAGS.get_key_flags_for_module(module.__name__)}


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_lists_exactly_the_flags_it_reads(script):
    module = MODULES[script]
    listed = key_flags(module)
    read = flags_read(inspect.getsource(module), vars(module))
    assert listed, f"{script} lists no flags: is it still an absl script?"
    assert not listed - read, (f"experiments.{script} lists flags it never reads: "
                               f"{sorted(listed - read)}")
    assert not read - listed, (f"experiments.{script} reads flags it does not list (declare "
                               f"them with flags.declare_key_flag): {sorted(read - listed)}")


def _readers():
    seen = {}
    for module in (common, *MODULES.values()):
        for value in vars(module).values():
            members = vars(value).values() if isinstance(value, type) else (value,)
            for member in members:
                function = getattr(member, "__func__", member)
                if callable(function) and hasattr(function, "flags_read"):
                    seen[f"{function.__module__}.{function.__qualname__}"] = function
    return seen


READERS = _readers()


def test_the_shared_readers_are_found():
    assert {"experiments.common.Setting.from_flags",
            "experiments.common.analysis_seeds"} <= set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_shared_reader_reads_exactly_the_flags_it_names(name):
    function = READERS[name]
    namespace = vars(sys.modules[function.__module__])
    assert flags_read(inspect.getsource(function), namespace) == set(function.flags_read)


def test_the_checker_sees_every_way_of_reading_a_flag():
    source = textwrap.dedent("""
        _OUT = flags.DEFINE_string("out", None, "")
        def main():
            common.Setting.from_flags()
            if common.flag_given("given") and FLAGS["subscripted"].present:
                print(FLAGS.attribute, _OUT.value, FLAGS.is_parsed())
    """)
    assert flags_read(source, {"common": common}) == {
        "out", "given", "subscripted", "attribute",
        *common.Setting.from_flags.flags_read}


def test_helpfull_lists_no_test_framework_flags():
    """absl's --helpfull lists the flags of every module the script imports: zcjax imports
    neither absl.testing nor chex at run time, so only absl's own and the experiments' remain."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-m", "experiments.quickstart", "--helpfull"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    modules = re.findall(r"^(\S+):$", done.stdout.split("\nflags:\n", 1)[-1], re.MULTILINE)
    assert modules, done.stdout + done.stderr
    strangers = [m for m in modules if not (m in ("absl.app", "absl.flags", "absl.logging")
                                            or m.startswith("experiments.")
                                            or m.endswith(os.path.join("experiments",
                                                                       "quickstart.py")))]
    assert not strangers, f"--helpfull lists flags of {strangers}"
