"""A check against the experiment it belongs to, before any grid point is planned: the
metrics, columns, grid axes and grid values it names exist, a compare names two of the
experiment's families, and a rate has enough values of x.  (What needs the planned grid
-- coordinates, predictions, blank cells -- is :mod:`rfsim.engine.planned`.)"""

from __future__ import annotations

import math

from rfsim.checks.base import Check
from rfsim.engine.expressions import parse as parse_expression
from rfsim.engine.table import format_value, matches, parse_cell
from rfsim.validation import closest


def grid_matches(value, want) -> bool:
    """Does a grid value (as the config holds it) match a ``where`` value?  As its
    summary.csv cell would (:func:`rfsim.engine.table.matches`)."""
    return matches(parse_cell(format_value(value), strict=True), want)


def _numbers(vs) -> list[float] | None:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
        return [float(v) for v in vs]
    return None


def validate_against(check: Check, metrics, columns, values, axes) -> None:
    """``values``: column -> the values it takes; ``axes``: the grid axes (and the metrics'
    axes, and ``model`` for several families)."""
    label = check.label()
    if check.kind == "compare":
        models = values.get("model", [])
        for key in ("numerator", "denominator"):
            if getattr(check, key) not in models:
                raise ValueError(f"{label}: {key} must be one of the experiment's models "
                                 f"{models or '(it names only one: use models = [...])'}, "
                                 f"got {getattr(check, key)!r}")
        if check.below is None and check.above is None:
            raise ValueError(f"{label}: a compare check needs `below` or `above`")
    for key in ("metric", "argmin_of"):
        v = getattr(check, key, None)
        if v is not None and v not in metrics:
            raise ValueError(f"check {key} must be one of {list(metrics)}, got {v!r}"
                             + closest(v, metrics))
    for key in ("x", "optimize"):
        v = getattr(check, key, None)
        if v is not None and v not in axes:
            raise ValueError(f"{label}: {key} must be a grid axis ({', '.join(axes) or 'none'}),"
                             f" got {v!r}" + closest(v, axes))
    for k, want in check.where.items():
        if k not in columns:
            raise ValueError(f"{label}: where names {k!r}, which is not a parameter"
                             + closest(k, columns) + f"; parameters: {', '.join(columns)}")
        have = values.get(k, [])
        for w in (want if isinstance(want, list) else [want]):
            if have and not any(grid_matches(h, w) for h in have):
                raise ValueError(f"{label}: where {k} = {w!r} matches no grid point ({k} "
                                 f"takes {', '.join(format_value(h) for h in have)})")
    bound = getattr(check, "bound", None)
    if isinstance(bound, str) and bound != "theory":
        for k in parse_expression(bound).names:
            if k not in columns:
                raise ValueError(f"{label}: bound `{bound}` names {k!r}, which is not a "
                                 "parameter" + closest(k, columns)
                                 + f"; parameters: {', '.join(columns)}")
            if values.get(k) and _numbers(values[k]) is None:
                raise ValueError(f"{label}: bound `{bound}` names {k!r}, which is not "
                                 f"numeric ({k} takes "
                                 f"{', '.join(format_value(h) for h in values[k])})")
    if check.kind == "rate" and values.get(check.x):
        _validate_rate_range(check, label, values[check.x])


def _validate_rate_range(check, label, have) -> None:
    """Enough grid values of x inside [x_min, x_max] (and ``where``) for a slope."""
    x = check.x
    xs = _numbers(have)
    if xs is None:
        raise ValueError(f"{label}: x = {x!r} must be numeric for a rate")
    lo, hi = check.span
    if x in check.where:
        want = check.where[x]
        wants = want if isinstance(want, list) else [want]
        xs = [v for v in xs if any(grid_matches(v, w) for w in wants)]
    inside = sorted(v for v in xs if lo <= v <= hi)
    if any(v <= 0 for v in inside):
        raise ValueError(f"{label}: {x} = {min(inside):g} cannot be on a log axis; set x_min > 0")
    if len(inside) < 3:
        span = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
        raise ValueError(f"{label}: a rate needs >= 3 values of {x}{span}; the grid has "
                         f"{len(inside)}" + (f" ({', '.join(f'{v:g}' for v in inside)})"
                                             if inside else ""))
