"""Figures from a run directory's summary.csv: theory as lines, simulation as markers ± sem.

The ``[plot]`` table of the experiment (kept in meta.json) chooses::

    x = "n"                 # the horizontal axis (default: the first grid axis)
    metric = "excess_risk"  # default: the first check's metric, else the model's first
    series = ["ridge"]      # one curve per combination (default: chosen, see below)
    where = { d = 10 }      # optional: draw only these rows (as a check's `where`)
    logx = true             # default: true when all x > 0 and they span > 1 decade
    logy = true             # default: same rule on the plotted values
    title = "..."

A line never joins points that differ in anything but x: every other column that varies
among the plotted rows -- grid axes, per-family values, a metric's axis coordinates
(``step``, ``layer``) and the family -- is either a series (one curve per value, in one
panel) or a panel of small multiples.  :func:`layout` decides which (the same rule runs
before compute, :func:`rfsim.engine.planned.validate_planned`): the family first, then the
listed ``series`` (by default the varying columns, most values first) while one panel holds at most
``MAX_CURVES`` curves; the first series may have more (it is one colour ramp).  Whatever
varies and is not a series makes panels.  Curves are coloured along the series column with
the most numeric values (viridis, in value order), the other series columns change the
marker and line style, and legend values are as short as keeps them distinct (1.41, not
1.4142135623730951).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rfsim.engine.io import read_meta, read_table
from rfsim.engine.table import SUMMARY_STATS, as_table, format_value, number, where_matches

MAX_CURVES = 6  # curves in one panel before further columns become panels
MAX_PANELS = 30  # more is not a figure: refused before compute
PANEL_COLUMNS = 3
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
_LINESTYLES = ("-", "--", ":", "-.")


def _auto_log(values) -> bool:
    v = np.asarray([x for x in values if math.isfinite(x)], float)
    return bool(len(v) and (v > 0).all() and v.max() / v.min() > 10)


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def value_order(cell: str):
    """Sort key: numbers by value, before strings (alphabetical), blanks last."""
    v = _number(cell)
    if v is not None:
        return (0, v, "")
    return (1 if cell != "" else 2, 0.0, cell)


def short_labels(cells: Iterable[str]) -> dict[str, str]:
    """Each cell -> the shortest form (>= 3 significant digits) that keeps the values of
    one column distinct: 1.41 for 1.4142135623730951, 0.001 for 0.001."""
    cells = sorted(set(cells), key=value_order)
    nums = {c: _number(c) for c in cells}

    def fmt(v: float, digits: int) -> str:
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))  # 1024, not 1.02e+03
        whole = len(str(int(abs(v)))) if abs(v) >= 1 else 0
        return f"{v:.{max(digits, whole)}g}"

    for digits in range(3, 18):
        out = {c: (fmt(v, digits) if v is not None and c != "" else c)
               for c, v in nums.items()}
        numeric = [out[c] for c in cells if nums[c] is not None]
        if len(set(numeric)) == len(numeric):
            return out
    return {c: c for c in cells}


def _count(combos: list[tuple], idx: dict[str, int], cols: list[str]) -> int:
    return len({tuple(c[idx[k]] for k in cols) for c in combos})


def layout(names: list[str], combos: Iterable[tuple], series: list[str] | None = None
           ) -> tuple[list[str], list[str]]:
    """(series columns, panel columns) for plotted rows whose columns ``names`` (x left out)
    take the distinct value tuples ``combos``.

    Only columns that vary get a role.  ``model`` is always a series; then the requested
    ``series`` in their order (default: every varying column, most values first) while a
    panel holds at most MAX_CURVES curves (the first series column may have more); every
    other varying column that is not determined by those becomes a panel column.
    """
    combos = list(set(combos))
    idx = {n: i for i, n in enumerate(names)}
    varying = [n for n in names if _count(combos, idx, [n]) > 1]
    if series is None:
        order = sorted(varying, key=lambda n: (n != "model", -_count(combos, idx, [n])))
    else:
        order = (["model"] if "model" in varying else []) + [s for s in series if s != "model"]
    chosen: list[str] = []
    for col in order:
        if col in chosen or col not in varying:
            continue
        if col == "model" or not chosen or _count(combos, idx, chosen + [col]) <= MAX_CURVES:
            chosen.append(col)
    panels: list[str] = []
    for col in varying:
        if col in chosen:
            continue
        if _count(combos, idx, chosen + panels + [col]) > _count(combos, idx, chosen + panels):
            panels.append(col)
    return chosen, panels


def _label(cols: list[str], values: tuple, short: dict[str, dict[str, str]]) -> str:
    return ", ".join(f"{c}={short[c][v]}" for c, v in zip(cols, values) if v != "")


def _styles(series: list[str], keys: list[tuple]) -> dict[tuple, dict]:
    """Colour along the series column with the most numeric values (viridis, in value
    order; else tab10 along the first series column), marker and line style along the
    others."""
    import matplotlib

    if not series:
        return {k: {"color": "C0", "marker": "o", "ls": "-"} for k in keys}
    distinct = {c: sorted({k[i] for k in keys}, key=value_order) for i, c in enumerate(series)}
    numeric = [c for c in series if all(_number(v) is not None for v in distinct[c] if v != "")]
    color_col = (max(numeric, key=lambda c: len(distinct[c])) if numeric else series[0])
    others = [c for c in series if c != color_col]
    ci = series.index(color_col)
    values = distinct[color_col]
    if color_col in numeric:
        cmap = matplotlib.colormaps["viridis"]
        span = max(len(values) - 1, 1)
        colors = {v: cmap(0.85 * j / span) for j, v in enumerate(values)}
    else:
        colors = {v: f"C{j % 10}" for j, v in enumerate(values)}
    out = {}
    for k in keys:
        style = {"color": colors[k[ci]], "marker": "o", "ls": "-"}
        for n, c in enumerate(others):  # the first: line style and marker; the second: marker
            j = distinct[c].index(k[series.index(c)])
            if n == 0:
                style["ls"] = _LINESTYLES[j % len(_LINESTYLES)]
            style["marker"] = _MARKERS[j % len(_MARKERS)]
        out[k] = style
    return out


def draw(rows, spec: dict, *, grid_axes: list[str] = (), default_metric=None,
         title: str = ""):
    """The figure (a matplotlib Figure) of summary ``rows`` (a
    :class:`~rfsim.engine.table.SummaryTable`, or dicts as summary.csv reads) for a
    ``[plot]`` table ``spec``.

    Each curve is one ``errorbar`` (its container labelled with the series values; the data
    line has gid "simulation") and, where the prediction is finite, one line with gid
    "theory"; panels are the figure's axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    rows = as_table(rows).rows
    if not rows:
        raise ValueError("plot: summary.csv has no rows")
    axes = list(grid_axes)
    x = spec.get("x", axes[0] if axes else None)
    if x is None or x not in rows[0]:
        raise ValueError(f"plot x must be a parameter column of summary.csv, got {x!r}")
    if x == "model":
        raise ValueError("plot x must be a numeric parameter or axis, got 'model' (families "
                         "are always series)")
    metric = spec.get("metric", default_metric or rows[0]["metric"])
    requested = spec.get("series")
    for s in requested or []:
        if s not in rows[0]:
            raise ValueError(f"plot series {s!r} is not a column of summary.csv")
    rows = [r for r in rows if r["metric"] == metric and where_matches(r, spec.get("where", {}))]
    if not rows:
        raise ValueError(f"plot metric {metric!r} has no rows in summary.csv"
                         + (" that match the plot's where" if spec.get("where") else ""))
    names = [k for k in rows[0] if k not in SUMMARY_STATS and k != x]
    text = [{k: format_value(r[k]) for k in names} for r in rows]  # legends, panel titles
    combos = {tuple(t[k] for k in names) for t in text}
    series, panels = layout(names, combos, requested)
    short = {c: short_labels(t[c] for t in text) for c in series + panels}

    grouped: dict[tuple, dict[tuple, list[dict]]] = {}
    for r, t in zip(rows, text):
        grouped.setdefault(tuple(t[p] for p in panels), {}).setdefault(
            tuple(t[s] for s in series), []).append(r)
    panel_keys = sorted(grouped, key=lambda k: [value_order(v) for v in k])
    curve_keys = sorted({c for g in grouped.values() for c in g},
                        key=lambda k: [value_order(v) for v in k])
    styles = _styles(series, curve_keys)
    n = len(panel_keys)
    ncols = min(n, PANEL_COLUMNS)
    nrows = -(-n // ncols)
    size = (5.2, 3.8) if n == 1 else (3.2 * ncols + 1.8, 2.6 * nrows + 0.5)
    fig, grid = plt.subplots(nrows, ncols, figsize=size, constrained_layout=True,
                             squeeze=False, sharex=True, sharey=True)  # one scale
    xs_all, ys_all, handles = [], [], {}
    for i, pk in enumerate(panel_keys):
        ax = grid[i // ncols][i % ncols]
        if panels:
            ax.set_title(_label(panels, pk, short), fontsize=7)
        for ck in curve_keys:
            pts = grouped[pk].get(ck)
            if not pts:
                continue
            xs = np.array([number(r[x], x) for r in pts])
            order = np.argsort(xs, kind="stable")
            pts = [pts[i] for i in order]
            xs = xs[order]
            mean = np.array([r["mean"] for r in pts])
            sem = np.nan_to_num(np.array([r["sem"] for r in pts]))
            theory = np.array([r["theory"] for r in pts])
            st = styles[ck]
            name = _label(series, ck, short) or metric
            finite = np.isfinite(theory)
            if finite.any():
                ax.plot(np.where(finite, xs, np.nan), np.where(finite, theory, np.nan),
                        ls=st["ls"], color=st["color"], lw=1.3, gid="theory")
            bars = ax.errorbar(xs, mean, yerr=sem, fmt=st["marker"], ms=3.5, color=st["color"],
                               capsize=2, label=name)
            bars.lines[0].set_gid("simulation")
            handles.setdefault(name, bars)
            xs_all += list(xs)
            ys_all += list(mean[np.isfinite(mean)]) + list(theory[finite])
        ax.tick_params(labelsize=7)
    for j in range(n, nrows * ncols):
        grid[j // ncols][j % ncols].set_visible(False)
    logx = spec.get("logx", _auto_log(xs_all))
    logy = spec.get("logy", _auto_log(ys_all))
    for ax in fig.axes[:n]:
        for axis, values, log in ((ax.xaxis, xs_all, logx), (ax.yaxis, ys_all, logy)):
            if log:
                (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
                if _auto_log(values):  # over a decade: label the decades only
                    axis.set_minor_formatter(NullFormatter())
    for i in range(n):
        ax = grid[i // ncols][i % ncols]
        if i // ncols == nrows - 1 or i + ncols >= n:
            ax.set_xlabel(spec.get("xlabel", x), fontsize=8)
        if i % ncols == 0:
            ax.set_ylabel(spec.get("ylabel", metric), fontsize=8)
    title = spec.get("title", title)
    legend_title = "lines: theory; markers: simulation ± sem"
    if n == 1:
        ax = grid[0][0]
        ax.set_title(textwrap.fill(title, 60), fontsize=8)
        ax.legend(fontsize=6, title=legend_title, title_fontsize=6, framealpha=0.7,
                  loc=spec.get("legend", "best"))
    else:
        fig.suptitle(textwrap.fill(title, 90), fontsize=8)
        fig.legend(list(handles.values()), list(handles), fontsize=6, title=legend_title,
                   title_fontsize=6, framealpha=0.7, loc="outside right upper")
    return fig


def plot_run(run_dir: str | Path, *, formats=("png", "pdf")) -> Path:
    """Draw ``figure.png``/``figure.pdf`` in ``run_dir`` from summary.csv; return the PNG path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a run directory")
    meta = read_meta(run_dir)
    rows = read_table(run_dir / "summary.csv")
    exp = meta["experiment"]
    spec = exp.get("plot") or {}
    grid = exp.get("grid")
    if not isinstance(spec, dict) or not isinstance(grid, dict):
        raise ValueError(f"{run_dir / 'meta.json'} is not as rfsim wrote it (its experiment "
                         "has no [plot]/[grid] tables): rerun the same `rfsim run` to rewrite it")
    checks = exp.get("checks") or []
    try:
        fig = draw(rows, spec, grid_axes=list(grid),
                   default_metric=checks[0]["metric"] if checks else None,
                   title=exp.get("description") or exp.get("name", ""))
    except ValueError as e:
        raise ValueError(f"{run_dir / 'summary.csv'}: {e}") from None
    out = None
    for fmt in formats:
        path = run_dir / f"figure.{fmt}"
        tmp = run_dir / f".figure.tmp.{fmt}"
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
        out = out or path
    plt.close(fig)
    return out
