"""Tables people paste into papers, and figures, from rows of results.

:func:`write_tables` writes one table three ways: CSV (full precision; a ``(mean, std)`` cell
becomes two columns; text cells that a spreadsheet would run as a formula are neutralised),
Markdown (caption, table, notes) and LaTeX (booktabs). :func:`new_figure` gives a matplotlib
figure without pyplot's global state (headless, in tests and notebooks alike).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import pathlib
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

#: Leading characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection
#: list); such text cells are written with a leading ``'``.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def default_prefix(*parts: Any) -> str:
    """A file-name-safe prefix joined from ``parts`` (empty parts left out)."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-")


def format_k(k: "int | float") -> str:
    """``0.1`` -> ``"10%"``, ``64`` -> ``"64"``."""
    if isinstance(k, float):
        return f"{100 * k:g}%"
    return str(k)


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
    if isinstance(v, str) and v.startswith(FORMULA_PREFIXES):
        return "'" + v
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
