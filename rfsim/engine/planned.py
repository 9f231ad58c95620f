"""Checks and the plot validated against the planned grid, before anything is computed.

:func:`rfsim.checks.parse` and :func:`rfsim.engine.experiment.validate_experiment` see the
experiment file; validate_planned sees what the run will produce: every family's full grid of
configs (:func:`rfsim.engine.sweep.plan`), the axis coordinates of each static group
(computed once per static group by the plan, ``Point.coords``), which metrics each family
predicts (``jax.eval_shape`` of its jitted ``predict``: shapes only, nothing is computed).  From
those it knows the rows of summary.csv (which cells are blank, which values each column
takes) and refuses, with one line naming the field, the value and what exists:

* a ``where`` (a check's or the plot's) whose value is not in the grid or the axis
  coordinates, names an axis that the metric does not have, or that together selects no row;
* a claim about the prediction (``statistical``, ``exact``, ``bound = "theory"``,
  ``value = "theory"``) on a metric that no selected family predicts;
* a ``bound`` expression that is not finite at some row the check selects (``1 / ridge``
  with ridge 0 on the grid), or names a column that is blank or not a number there;
* a ``compare`` whose two families share no grid point (after ``where``);
* curve checks that cannot be evaluated: a non-numeric or blank ``x``, an ``argmin_of``
  metric that is not along the same axis, a ``monotone`` curve with one point, a ``rate``
  curve with fewer than 3 positive ``x`` values in ``[x_min, x_max]``, or a ``rate`` on
  the mean with one seed (no standard error to weight the fit);
* a plot whose ``x`` is not numeric (``x = "model"``) or is blank for the plotted metric,
  whose ``logx = true`` meets an ``x`` <= 0, or that needs more than ``MAX_PANELS`` panels.

Cost: one pass over the points per check (a few dict look-ups each), coordinates once per
static group, one ``eval_shape`` per family and only for a claim about the prediction.
"""

from __future__ import annotations

import math
from typing import Any

from rfsim.checks import CurveCheck
from rfsim.engine.experiment import experiment_columns
from rfsim.engine.expressions import parse as parse_expression
from rfsim.engine.table import format_value, text_matches
from rfsim.engine.sweep import coordinates


BLANK = ""
THEORY_KINDS = ("statistical", "exact")


def _cell(v, cache: dict) -> str:
    """``v`` as summary.csv writes it (memoized: called once per point and column)."""
    try:
        key = (type(v), v)
        out = cache.get(key)
    except TypeError:  # unhashable (a list-valued parameter)
        return format_value(v)
    if out is None:
        out = cache[key] = format_value(v)
    return out


def _order(cell: str):
    try:
        return (0, float(cell), "")
    except ValueError:
        return (1, 0.0, cell)


def _takes(cells) -> str:
    """The values a column takes, sorted, abbreviated when there are many."""
    vals = sorted(set(cells), key=_order)
    if not vals:
        return "no value"
    if len(vals) <= 12:
        return ", ".join(vals)
    return f"{', '.join(vals[:6])}, ..., {', '.join(vals[-3:])} ({len(vals)} values)"


class _Family:
    """One family's planned points, as rows of summary.csv would see them."""

    def __init__(self, model, points, several: bool):
        from rfsim.config import field_names

        self.model, self.name, self.several = model, model.name, several
        self.fields = set(field_names(model.config))
        self.points = []  # (values, group)
        self.first: dict[Any, Any] = {}  # group -> a point of it (for coords/cfg)
        for p in points:
            values = p if isinstance(p, dict) else p.values
            group = None if isinstance(p, dict) else p.group
            if group is None:  # plain value dicts: group by the static values
                from rfsim.config import static_fields

                group = repr([values.get(k) for k in static_fields(model.config)])
            self.points.append((values, group))
            self.first.setdefault(group, p)
        self._coords: dict[Any, dict[str, list[str]]] = {}
        self._distinct: dict[str, set[str]] = {}
        self._predicted: Any = ...
        self.cache: dict = {}

    def cfg(self, group):
        p = self.first[group]
        if not isinstance(p, dict):
            return p.cfg
        from rfsim.config import make_config

        return make_config(self.model, p)

    def coords(self, group, axis: str) -> list[str]:
        """The cells of ``axis``'s coordinates in ``group`` (coords(cfg) once per group)."""
        if group not in self._coords:
            import numpy as np

            first = self.first[group]
            got = first.coords if not isinstance(first, dict) else \
                coordinates(self.model, self.cfg(group))
            self._coords[group] = {a: [format_value(c) for c in np.asarray(v).tolist()]
                                   for a, v in got.items()}
        return self._coords[group].get(axis, [])

    def axis(self, metric: str) -> str | None:
        return self.model.axes.get(metric)

    def cell(self, values: dict, column: str) -> str:
        if column == "model":
            return self.name if self.several else BLANK
        if column in self.fields:
            return _cell(values.get(column), self.cache)
        return BLANK

    def has(self, column: str, metric: str) -> bool:
        """Is ``column`` non-blank on the rows of ``metric``?"""
        if column == "model":
            return self.several
        return column in self.fields or column == self.axis(metric)

    def distinct(self, column: str, metric: str) -> set[str]:
        """Every value ``column`` takes on the rows of ``metric``."""
        if column == self.axis(metric):
            return {c for g in self.first for c in self.coords(g, column)}
        if column not in self._distinct:
            self._distinct[column] = {self.cell(v, column) for v, _ in self.points}
        return self._distinct[column]

    def predicted(self) -> set[str] | None:
        """The metrics ``predict`` returns (None: cannot tell without computing).

        The Model's declared ``predicts`` is taken as is; no ``predict`` predicts
        nothing; a jitted ``predict`` is traced with
        ``jax.eval_shape`` on the first static group (shapes only).  A host ``predict``
        (``predict_jit=False``) would have to run: unknown.
        """
        if self._predicted is not ...:
            return self._predicted
        model = self.model
        declared = model.predicts
        if declared is not None:
            out = set(declared)
        elif model.predict is None:
            out = set()
        elif not model.predict_jit:
            out = None
        else:
            import jax

            cfg = self.cfg(next(iter(self.first)))
            try:
                from rfsim.engine.keys import SeedKeys

                keys = SeedKeys(jax.random.key(0), jax.random.key(0))
                state = jax.eval_shape(model.init, keys, cfg)
                shapes = jax.eval_shape(model.predict, cfg, state)
                out = set(shapes)
            except Exception:  # noqa: BLE001  (a predict that cannot be traced: unknown)
                out = None
        self._predicted = out
        return out


class _Selection:
    """The rows of ``metric`` in one family that pass ``where``: matching points, and per
    static group the selected coordinates when the metric runs along an axis."""

    def __init__(self, fam: _Family, metric: str, where: dict):
        self.fam, self.metric = fam, metric
        self.axis = fam.axis(metric)
        self.points: list[tuple[dict, Any]] = []
        self.coords: dict[Any, list[str]] = {}
        if metric not in fam.model.metrics:
            return
        allowed: dict[str, set[str]] = {}
        axis_wants = None
        for k, want in where.items():
            wants = want if isinstance(want, list) else [want]
            if k == self.axis:
                axis_wants = wants
                continue
            if k == "model" or k in fam.fields:
                have = fam.distinct(k, metric)
            else:
                have = {BLANK}
            allowed[k] = {c for c in have if any(text_matches(c, w) for w in wants)}
            if not allowed[k]:
                return
        checks = list(allowed.items())
        if checks:
            self.points = [(v, g) for v, g in fam.points
                           if all(fam.cell(v, k) in ok for k, ok in checks)]
        else:
            self.points = list(fam.points)
        if self.axis is not None:
            for group in {g for _, g in self.points}:
                cs = fam.coords(group, self.axis)
                if axis_wants is not None:
                    cs = [c for c in cs if any(text_matches(c, w) for w in axis_wants)]
                self.coords[group] = cs
        if self.axis is not None:
            self.points = [(v, g) for v, g in self.points if self.coords[g]]

    def __len__(self) -> int:
        if self.axis is None:
            return len(self.points)
        return sum(len(self.coords[g]) for _, g in self.points)

    def rows(self, columns: list[str]):
        """Distinct tuples of ``columns`` over the selected rows (axis coordinates
        expanded), without building one dict per row."""
        fam = self.fam
        point_cols = [c for c in columns if c != self.axis]
        seen: dict[tuple, set] = {}
        for values, group in self.points:
            seen.setdefault(tuple(fam.cell(values, c) for c in point_cols), set()).add(group)
        out = set()
        for key, groups in seen.items():
            if self.axis is None or self.axis not in columns:
                out.add(tuple(_merge(columns, point_cols, key, None, self.axis)))
                continue
            for g in groups:
                for c in self.coords[g]:
                    out.add(tuple(_merge(columns, point_cols, key, c, self.axis)))
        return out


def _merge(columns, point_cols, key, coord, axis):
    it = iter(key)
    return [coord if c == axis else next(it) for c in columns]


def _label(check, i: int) -> str:
    if check.name is not None:
        return f"check {check.name!r}"
    return f"check #{i + 1} ({check.kind}, {check.metric})"


def _where_text(where: dict) -> str:
    return "{ " + ", ".join(f"{k} = {v!r}" for k, v in where.items()) + " }"


def _select(fams: list[_Family], metric: str, where: dict, label: str
            ) -> list[_Selection]:
    """Each family's selection; refuses a where value that exists nowhere (naming what
    exists), an axis the metric lacks, and a where that selects no row."""
    having = [f for f in fams if metric in f.model.metrics]
    for k, want in where.items():
        wants = want if isinstance(want, list) else [want]
        owners = [f for f in having if f.has(k, metric)]
        if not owners:
            axes = {f.axis(metric) for f in having} - {None}
            what = (f"metric {metric!r} runs along {', '.join(sorted(axes))}" if axes else
                    f"metric {metric!r} is a scalar (one row per grid point)")
            along = sorted({m for f in fams for m, a in f.model.axes.items() if a == k})
            raise ValueError(
                f"{label}: where names {k!r}, which is blank on the rows of {metric!r}: {what}"
                + (f"; the metrics along {k} are {', '.join(along)}" if along else ""))
        have = set().union(*(f.distinct(k, metric) for f in owners))
        for w in wants:
            if not any(text_matches(c, w) for c in have):
                axis = any(k == f.axis(metric) for f in owners)
                what = f"{k}, the axis of {metric!r}," if axis else k
                raise ValueError(f"{label}: where {k} = {w!r} matches no grid point ({what} "
                                 f"takes {_takes(have)})")
    sels = [_Selection(f, metric, where) for f in having]
    if not any(len(s) for s in sels):
        raise ValueError(f"{label}: where {_where_text(where)} selects no row of {metric!r}: "
                         "each value exists, but no planned point has them together")
    return [s for s in sels if len(s)]


def _require_prediction(fams: list[_Family], metric: str, label: str, why: str) -> None:
    known = [(f, f.predicted()) for f in fams if metric in f.model.metrics]
    if not known or any(p is None or metric in p for _, p in known):
        return
    fam, pred = known[0]
    has = (f"its predict returns {', '.join(sorted(pred))}" if pred else "it has no predict")
    who = f"family {fam.name!r}" if len(known) == 1 else \
        "none of " + ", ".join(repr(f.name) for f, _ in known)
    raise ValueError(f"{label}: {why}, but {who} has no prediction of {metric!r} ({has}); "
                     "a rate, monotone or threshold check reads the simulation alone")


def _numeric(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v


def _check_bound(sels: list[_Selection], text: str, label: str) -> None:
    expr = parse_expression(text)
    names = list(expr.names)
    for s in sels:
        for k in names:
            if not s.fam.has(k, s.metric):
                raise ValueError(f"{label}: bound `{text}` names {k!r}, which is blank on the "
                                 f"rows of {s.metric!r}"
                                 + (f" of family {s.fam.name!r}" if s.fam.several else ""))
        for row in sorted(s.rows(names), key=lambda r: [_order(c) for c in r]):
            values = {}
            for k, c in zip(names, row):
                v = _numeric(c)
                if v is None:
                    raise ValueError(f"{label}: bound `{text}` names {k!r}, which is not a "
                                     f"number ({k} = {c!r})")
                values[k] = v
            try:
                expr(values)
            except ValueError as e:
                at = ", ".join(f"{k} = {c}" for k, c in zip(names, row))
                reason = str(e).replace(f"`{expr.text}` ", "", 1)
                if " here: " in reason:  # "is undefined here: float division by zero"
                    head, why = reason.split(" here: ", 1)
                    reason = f"{head} at {at} ({why})"
                else:
                    reason = reason.replace(" here", f" at {at}")
                raise ValueError(f"{label}: bound `{text}` {reason}; every row the "
                                 "check selects needs a finite bound: leave those points out "
                                 "with `where`") from None


def _check_compare(check, fams: list[_Family], columns: list[str], label: str) -> None:
    metric, where = check.metric, check.where
    sides = {}
    for key in ("numerator", "denominator"):
        name = getattr(check, key)
        fam = next((f for f in fams if f.name == name), None)
        if fam is None:
            return  # refused by validate_spec (not one of the experiment's models)
        if metric not in fam.model.metrics:
            raise ValueError(f"{label}: {key} {name!r} has no metric {metric!r} (its metrics: "
                             f"{', '.join(fam.model.metrics)})")
        sel = _Selection(fam, metric, where)
        if not len(sel):
            raise ValueError(f"{label}: where {_where_text(where)} selects no row of model "
                             f"{name!r} to compare")
        sides[key] = sel
    num, den = sides["numerator"], sides["denominator"]
    shared = [c for c in columns if c != "model" and num.fam.has(c, metric)
              and den.fam.has(c, metric)]
    if not num.rows(shared) & den.rows(shared):
        raise ValueError(f"{label}: {num.fam.name!r} and {den.fam.name!r} share no grid point "
                         f"of {metric!r} (compared on {', '.join(shared) or 'no column'})"
                         + (f" within where {_where_text(where)}" if where else ""))


def _check_curves(check, kind: str, sels: list[_Selection], grid: list[str],
                  seeds: int, label: str) -> None:
    metric, x, opt = check.metric, check.x, check.optimize
    judge = check.argmin_of
    for s in sels:
        fam = s.fam
        who = f" of family {fam.name!r}" if fam.several else ""
        if not fam.has(x, metric):
            raise ValueError(f"{label}: x = {x!r} is blank on the rows of {metric!r}{who}"
                             + (f" (it runs along {s.axis})" if s.axis else
                                " (a scalar metric)"))
        if judge is not None and judge in fam.model.metrics and fam.axis(judge) != s.axis:
            def along(m):
                a = fam.axis(m)
                return f"along {a}" if a else "a scalar"
            raise ValueError(f"{label}: argmin_of {judge!r} is {along(judge)} but {metric!r} "
                             f"is {along(metric)}{who}: the minimizer is read at the same row")
        if judge is not None and judge not in fam.model.metrics:
            raise ValueError(f"{label}: argmin_of {judge!r} is not a metric of family "
                             f"{fam.name!r} (its metrics: {', '.join(fam.model.metrics)})")
    lo, hi = check.span if hasattr(check, "span") else (-math.inf, math.inf)
    curves: dict[tuple, set[float]] = {}
    others = [k for k in grid if k not in (x, opt)]
    parsed: dict[str, float] = {}

    def number(c: str) -> float:
        v = parsed.get(c)
        if v is None:
            v = _numeric(c)
            if v is None or not math.isfinite(v):
                raise ValueError(f"{label}: x = {x!r} must be numeric, but {x} takes {c!r}")
            parsed[c] = v
        return v

    for s in sels:
        fam = s.fam
        by_group = {g: frozenset(number(c) for c in cs) for g, cs in s.coords.items()}
        if x == s.axis:  # a curve per point: its x values are its group's coordinates
            groups: dict[tuple, set] = {}
            for values, group in s.points:
                groups.setdefault((fam.name, *(fam.cell(values, k) for k in others)),
                                  set()).add(group)
            for base, gs in groups.items():
                curves[base, None] = set().union(*(by_group[g] for g in gs))
            continue
        for values, group in s.points:
            base = (fam.name, *(fam.cell(values, k) for k in others))
            v = number(fam.cell(values, x))
            for c in (s.coords[group] if s.axis else [None]):
                curves.setdefault((base, c), set()).add(v)
    if kind == "monotone":
        short = min(curves.items(), key=lambda kv: len(kv[1]))
        if len(short[1]) < 2:
            raise ValueError(f"{label}: a monotone check needs >= 2 values of {x} on every "
                             f"curve; {_curve_at(short[0], others)} has "
                             f"{len(short[1])}")
    if kind == "rate":
        if check.value == "mean" and seeds < 2:
            raise ValueError(f"{label}: a rate on the mean weights its fit by the standard "
                             f"error, which needs seeds >= 2, got seeds = {seeds} (or use "
                             "value = \"theory\")")
        span = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
        for key, xs in curves.items():
            inside = sorted(v for v in xs if lo <= v <= hi)
            if any(v <= 0 for v in inside):
                raise ValueError(f"{label}: {x} = {min(inside):g} cannot be on a log axis; "
                                 "set x_min > 0")
            if len(inside) < 3:
                raise ValueError(f"{label}: a rate needs >= 3 values of {x}{span} on every "
                                 f"curve; {_curve_at(key, others)} has {len(inside)}"
                                 + (f" ({', '.join(f'{v:g}' for v in inside)})"
                                    if inside else ""))


def _curve_at(key: tuple, others: list[str]) -> str:
    (fam, *cells), coord = key
    parts = [f"{k}={c}" for k, c in zip(others, cells)]
    if coord is not None:
        parts.append(f"axis={coord}")
    return "the curve at " + (", ".join(parts) or f"model {fam}")


def _validate_planned_check(check, i: int, fams: list[_Family], exp,
                            columns: list[str]) -> None:
    label = _label(check, i)
    kind, metric = check.kind, check.metric
    if kind == "compare":
        _check_compare(check, fams, columns, label)
        return
    sels = _select(fams, metric, check.where, label)
    selected = [s.fam for s in sels]
    if kind in THEORY_KINDS:
        _require_prediction(selected, metric, label,
                            f"a {kind} check compares the simulation with the prediction")
    if kind == "bound":
        if check.bound == "theory":
            _require_prediction(selected, metric, label, 'bound = "theory" is the prediction')
        elif isinstance(check.bound, str):
            _check_bound(sels, check.bound, label)
    if isinstance(check, CurveCheck):
        if check.value == "theory":
            for m in dict.fromkeys([metric, check.argmin_of or metric]):
                _require_prediction(selected, m, label, 'value = "theory" reads the prediction')
        grid = (["model"] if exp.models else []) + list(exp.grid)
        _check_curves(check, kind, sels, grid, exp.seeds, label)


def _validate_planned_plot(exp, fams: list[_Family], columns: list[str]) -> None:
    from rfsim.plot import MAX_PANELS, layout

    spec = exp.plot
    x = spec.get("x", next(iter(exp.grid), None))
    metric = spec.get("metric", exp.checks[0]["metric"] if exp.checks else
                      fams[0].model.metrics[0])
    label = "plot"
    sels = _select(fams, metric, spec.get("where", {}), label)
    for s in sels:
        if not s.fam.has(x, metric):
            raise ValueError(f"plot x = {x!r} is blank on the rows of {metric!r}"
                             + (f" of family {s.fam.name!r}" if s.fam.several else "")
                             + (f" (it runs along {s.axis})" if s.axis else
                                " (a scalar metric)"))
    xs = set().union(*(s.rows([x]) for s in sels))
    values = [_numeric(c) for (c,) in xs]
    if any(v is None for v in values):
        raise ValueError(f"plot x must be a numeric parameter or axis; {x} takes "
                         f"{_takes(c for (c,) in xs)}")
    if spec.get("logx") is True and min(values) <= 0:
        raise ValueError(f"plot logx = true, but {x} takes {min(values):g}, which a log axis "
                         "cannot show: set logx = false, or leave it out")
    names = [c for c in columns if c != x]
    combos = set().union(*(s.rows(names) for s in sels))
    series, panels = layout(names, combos, spec.get("series"))
    if panels:
        n = len({tuple(r[names.index(p)] for p in panels) for r in combos})
        if n > MAX_PANELS:
            raise ValueError(f"plot needs {n} panels (one per {', '.join(panels)}, with series "
                             f"{', '.join(series) or 'none'}); at most {MAX_PANELS}: choose "
                             "series or select rows with [plot] where")


def validate_planned(exp, planned) -> None:
    """Refuse, before compute, a [[check]] or [plot] that cannot be evaluated on what the
    run will produce.  ``planned``: ``[(Model, [Point, ...]), ...]``, every family's full
    grid (a Point's ``.values``, ``.group`` and ``.cfg``; plain value dicts also work).
    Raises ValueError with one line naming the field, the value and what exists."""
    several = bool(exp.models)
    fams = [_Family(model, points, several) for model, points in planned]
    if not any(f.points for f in fams):
        return
    columns, axis_cols, _ = experiment_columns(exp)
    from rfsim.engine.experiment import experiment_checks

    for i, check in enumerate(experiment_checks(exp)):  # parsed and validated once
        _validate_planned_check(check, i, fams, exp, columns + axis_cols)
    if exp.plot is not None:
        _validate_planned_plot(exp, fams, columns + axis_cols)
