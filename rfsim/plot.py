"""Figures from a run directory's summary.csv: theory as lines, simulation as markers ± sem.

The ``[plot]`` table of the experiment (kept in meta.json) chooses::

    x = "n"                 # the horizontal axis (default: the first grid axis)
    metric = "excess_risk"  # default: the first check's metric, else the model's first
    series = ["ridge"]      # one curve per combination (default: the other grid axes)
    logx = true             # default: true when all x > 0 and they span > 1 decade
    logy = true             # default: same rule on the plotted values
    title = "..."
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from rfsim.io import read_meta, read_summary, to_float


def _auto_log(values) -> bool:
    v = np.asarray([x for x in values if math.isfinite(x)], float)
    return bool(len(v) and (v > 0).all() and v.max() / v.min() > 10)


def plot_run(run_dir: str | Path, *, formats=("png", "pdf")) -> Path:
    """Draw ``figure.png``/``figure.pdf`` in ``run_dir`` from summary.csv; return the PNG path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a run directory")
    meta = read_meta(run_dir)
    rows = read_summary(run_dir / "summary.csv")
    exp = meta["experiment"]
    spec = exp.get("plot") or {}
    grid = exp.get("grid")
    if not isinstance(spec, dict) or not isinstance(grid, dict):
        raise ValueError(f"{run_dir / 'meta.json'} is not as rfsim wrote it (its experiment "
                         "has no [plot]/[grid] tables): rerun the same `rfsim run` to rewrite it")
    spec = dict(spec)
    axes = list(grid)
    x = spec.get("x", axes[0] if axes else None)
    if x is None or x not in rows[0]:
        raise ValueError(f"plot x must be a parameter column of {run_dir / 'summary.csv'}, "
                         f"got {x!r}")
    checks = exp.get("checks") or []
    metric = spec.get("metric", checks[0]["metric"] if checks else rows[0]["metric"])
    series = list(spec.get("series", [a for a in axes if a != x]))
    if "model" in rows[0] and "model" not in series and x != "model":
        series = ["model", *series]  # several families: always one series per family
    missing = [s for s in series if s not in rows[0]]
    if missing:
        raise ValueError(f"plot series {missing[0]!r} is not a column of "
                         f"{run_dir / 'summary.csv'}")
    rows = [r for r in rows if r["metric"] == metric]
    if not rows:
        raise ValueError(f"plot metric {metric!r} is not in summary.csv")

    curves: dict[tuple, list[dict]] = {}
    for r in rows:
        curves.setdefault(tuple(r[s] for s in series), []).append(r)
    fig, ax = plt.subplots(figsize=(5.2, 3.8), constrained_layout=True)
    xs_all, ys_all = [], []
    for i, (label, pts) in enumerate(curves.items()):
        pts.sort(key=lambda r: to_float(r[x]))
        xs = np.array([to_float(r[x]) for r in pts])
        mean = np.array([to_float(r["mean"]) for r in pts])
        sem = np.nan_to_num(np.array([to_float(r["sem"]) for r in pts]))
        theory = np.array([to_float(r["theory"]) for r in pts])
        color = f"C{i % 10}"
        name = ", ".join(f"{s}={v}" for s, v in zip(series, label)) or metric
        finite = np.isfinite(theory)
        if finite.any():
            ax.plot(np.where(finite, xs, np.nan), np.where(finite, theory, np.nan), "-",
                    color=color, lw=1.5)
        ax.errorbar(xs, mean, yerr=sem, fmt="o", ms=4, color=color, capsize=2, label=name)
        xs_all += list(xs)
        ys_all += list(mean[np.isfinite(mean)]) + list(theory[finite])
    from matplotlib.ticker import NullFormatter

    for axis, values, key in ((ax.xaxis, xs_all, "logx"), (ax.yaxis, ys_all, "logy")):
        if spec.get(key, _auto_log(values)):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            if _auto_log(values):  # over a decade: label the decades only
                axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(spec.get("xlabel", x))
    ax.set_ylabel(spec.get("ylabel", metric))
    title = spec.get("title", exp.get("description") or exp.get("name", ""))
    ax.set_title(textwrap.fill(title, 60), fontsize=8)
    ax.legend(fontsize=6, title="lines: theory; markers: simulation ± sem", title_fontsize=6,
              framealpha=0.7, loc=spec.get("legend", "best"))
    out = None
    for fmt in formats:
        path = run_dir / f"figure.{fmt}"
        tmp = run_dir / f".figure.tmp.{fmt}"
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
        out = out or path
    plt.close(fig)
    return out
