"""Agreement verdicts: claims that can fail.

Each check kind is a function ``(rows, spec) -> Verdict`` over summary rows
(dicts as read from summary.csv).  Kinds:

* ``statistical``: every selected row has ``|mean - theory| <= max_abs_z * sem
  + rel_tol * |theory| + abs_tol`` (stated finite-size and round-off allowances;
  both 0 by default).  The verdict also reports the check's resolution: the smallest
  relative error of the prediction it would detect (min over rows of allowance/|theory|).
* ``exact``: ``|mean - theory| <= rel_tol * |theory|`` (default 1e-8), for
  deterministic quantities.
* ``monotone``: each curve of ``metric`` against ``x`` (optionally at the best value of
  an ``optimize`` axis, e.g. the optimal ridge) moves only in ``direction``, up to
  ``max_abs_z`` combined sem.
* ``threshold``: at the largest ``x`` the value is ``below``/``above`` a level.

Spec keys common to all kinds: ``metric`` (required), ``where`` (a table
``{param = value or [values]}`` selecting rows), ``name`` (a label).
Rows whose theory is missing or infinite are left out and counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from rfsim.activations import closest
from rfsim.io import SUMMARY_STATS, to_float


@dataclasses.dataclass(frozen=True)
class Verdict:
    name: str
    kind: str
    passed: bool
    figure: str  # the number that decided it, in words

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}  [{self.kind}]  {self.figure}"


def _matches(row: dict, where: dict) -> bool:
    for k, want in where.items():
        wants = want if isinstance(want, list) else [want]
        cell = row.get(k)
        if cell is None:
            raise ValueError(f"check `where` names {k!r}, which is not a column of summary.csv")
        if not any(_same(cell, w) for w in wants):
            return False
    return True


def _same(cell: str, want) -> bool:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return math.isclose(float(cell), float(want), rel_tol=1e-12, abs_tol=0.0)
        except ValueError:
            return False
    return cell == str(want)


def select(rows: list[dict], spec: dict) -> tuple[list[dict], int]:
    """Rows of ``spec['metric']`` passing ``where`` with finite theory; and how many had none."""
    metric = spec.get("metric")
    metrics = sorted({r["metric"] for r in rows})
    if metric not in metrics:
        raise ValueError(f"check metric must be one of {metrics}, got {metric!r}"
                         + closest(metric, metrics))
    chosen = [r for r in rows if r["metric"] == metric and _matches(r, spec.get("where", {}))]
    finite = [r for r in chosen if math.isfinite(to_float(r["theory"]))]
    return finite, len(chosen) - len(finite)


def _label(row: dict, skip=SUMMARY_STATS, keys=None) -> str:
    keys = keys or [k for k in row if k not in skip]
    return ", ".join(f"{k}={row[k]}" for k in keys)


def _varying(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    return [k for k in rows[0] if k not in SUMMARY_STATS and len({r[k] for r in rows}) > 1]


def statistical(rows: list[dict], spec: dict) -> tuple[bool, str]:
    max_z = float(spec.get("max_abs_z", 4.0))
    rel_tol = float(spec.get("rel_tol", 0.0))
    abs_tol = float(spec.get("abs_tol", 0.0))
    chosen, dropped = select(rows, spec)
    if not chosen:
        return False, "no rows with a finite prediction to compare"
    worst, worst_ratio, max_abs_z, resolution = None, -1.0, 0.0, math.inf
    for r in chosen:
        mean, theory, sem = (to_float(r[k]) for k in ("mean", "theory", "sem"))
        if not math.isfinite(mean):
            return False, f"non-finite simulation mean at {_label(r, keys=_varying(chosen))}"
        allowed = max_z * (sem if math.isfinite(sem) else 0.0) + rel_tol * abs(theory) + abs_tol
        if theory != 0:
            resolution = min(resolution, allowed / abs(theory))
        gap = abs(mean - theory)
        ratio = gap / allowed if allowed > 0 else (0.0 if gap == 0 else math.inf)
        z = gap / sem if sem > 0 else (0.0 if gap == 0 else math.inf)
        if gap > abs_tol:  # a gap inside the round-off allowance says nothing about z
            max_abs_z = max(max_abs_z, z)
        if ratio > worst_ratio:
            worst, worst_ratio = r, ratio
    allowance = (f"{max_z:g} sem" + (f" + {rel_tol:.0%}" if rel_tol else "")
                 + (f" + {abs_tol:g}" if abs_tol else ""))
    figure = (
        f"{spec['metric']}: max |z| = {max_abs_z:.2f}; worst gap = {worst_ratio:.2f} x allowance "
        f"({allowance}) at {_label(worst, keys=_varying(chosen)) or 'the only point'}; "
        f"{len(chosen)} points"
        + (f", {dropped} with infinite/missing theory left out" if dropped else "")
        + f"; detects a prediction off by > {resolution:.1%}"
    )
    return worst_ratio <= 1.0, figure


def exact(rows: list[dict], spec: dict) -> tuple[bool, str]:
    rel_tol = float(spec.get("rel_tol", 1e-8))
    chosen, dropped = select(rows, spec)
    if not chosen:
        return False, "no rows with a finite prediction to compare"
    errs = [abs(to_float(r["mean"]) - to_float(r["theory"])) / max(abs(to_float(r["theory"])),
            1e-300) for r in chosen]
    worst = max(errs)
    return worst <= rel_tol, (
        f"{spec['metric']}: max relative error = {worst:.2e} (tolerance {rel_tol:.0e}); "
        f"{len(chosen)} points"
    )


def _curves(rows: list[dict], spec: dict) -> dict[tuple, list[tuple[float, float, float]]]:
    """Curves ``{other params: [(x, value, sem)]}`` sorted by x.

    With ``optimize = "ridge"`` each x keeps one value of that axis: the one minimizing
    ``argmin_of`` (a metric, default ``metric`` itself), e.g. the fitting ratio read at the
    ridge that minimizes the test error.  ``value`` is ``"mean"`` (with its sem) or
    ``"theory"``.
    """
    metric, x, opt = spec.get("metric"), spec.get("x"), spec.get("optimize")
    use = spec.get("value", "mean")
    if use not in ("mean", "theory"):
        raise ValueError(f"check value must be 'mean' or 'theory', got {use!r}")
    where = spec.get("where", {})
    picked = [r for r in rows if r["metric"] == metric and _matches(r, where)]
    if not picked:
        raise ValueError(f"check selects no rows of metric {metric!r}")
    if x not in picked[0]:
        raise ValueError(f"check x must be a parameter column, got {x!r}")
    params = [k for k in picked[0] if k not in SUMMARY_STATS]
    others = [k for k in _varying(picked) if k not in (x, opt)]
    by_params = {(r["metric"], *(r[k] for k in params)): r for r in rows}
    judge = spec.get("argmin_of", metric)
    best: dict[tuple, dict[float, tuple[float, float, float]]] = {}
    for r in picked:
        ref = by_params.get((judge, *(r[k] for k in params)))
        if ref is None:
            raise ValueError(f"check argmin_of must be a metric of summary.csv, got {judge!r}")
        score = to_float(ref[use])
        key, xv = tuple(r[k] for k in others), to_float(r[x])
        sem = to_float(r["sem"]) if use == "mean" else 0.0
        cur = best.setdefault(key, {}).get(xv)
        if opt is None or cur is None or score < cur[0]:
            best[key][xv] = (score, to_float(r[use]), sem if math.isfinite(sem) else 0.0)
    return {k: sorted((xv, v, s) for xv, (_, v, s) in c.items()) for k, c in best.items()}


def _at_best(spec: dict) -> str:
    if not spec.get("optimize"):
        return ""
    judge = spec.get("argmin_of", spec.get("metric"))
    return f" at the {spec['optimize']} minimizing {judge}"


def monotone(rows: list[dict], spec: dict) -> tuple[bool, str]:
    """Each curve is non-increasing (``direction = "nonincreasing"``, default) or
    non-decreasing in ``x``: a step the wrong way larger than ``max_abs_z`` combined sem
    (default 3; plus ``rel_tol`` of the level) is a violation."""
    direction = spec.get("direction", "nonincreasing")
    if direction not in ("nonincreasing", "nondecreasing"):
        raise ValueError(f"check direction must be nonincreasing or nondecreasing, got "
                         f"{direction!r}")
    sign = 1.0 if direction == "nonincreasing" else -1.0
    max_z, rel_tol = float(spec.get("max_abs_z", 3.0)), float(spec.get("rel_tol", 0.0))
    passed, worst, where, n_steps = True, None, "", 0
    for key, pts in _curves(rows, spec).items():
        for (x0, v0, s0), (x1, v1, s1) in zip(pts, pts[1:]):
            if not (math.isfinite(v0) and math.isfinite(v1)):
                return False, f"non-finite value on the curve {key} at {spec['x']}={x1:g}"
            allowed = max_z * math.hypot(s0, s1) + rel_tol * max(abs(v0), abs(v1))
            step = sign * (v1 - v0)  # > 0 is the wrong direction
            n_steps += 1
            passed &= step <= allowed
            if worst is None or step > worst[0]:
                worst = (step, allowed)
                where = f"{spec['x']} {x0:g} -> {x1:g}" + (f" {key}" if key else "")
    step, allowed = worst
    verdict = ("every step goes the right way" if step <= 0 else
               f"largest wrong-way step {step:.3g} (allowed {allowed:.3g})")
    return passed, (f"{spec['metric']}{_at_best(spec)} {direction} in {spec['x']}: "
                    f"{verdict}; closest at {where}; {n_steps} steps")


def threshold(rows: list[dict], spec: dict) -> tuple[bool, str]:
    """At the largest ``x`` of each curve the value is below ``below`` (and/or above
    ``above``), by ``max_abs_z`` sem (default 3) — e.g. a ratio that tends to 0."""
    below, above = spec.get("below"), spec.get("above")
    if below is None and above is None:
        raise ValueError("threshold check needs `below` or `above`")
    max_z = float(spec.get("max_abs_z", 3.0))
    ok, parts = True, []
    for key, pts in _curves(rows, spec).items():
        x, v, s = pts[-1]
        if below is not None:
            ok &= v + max_z * s <= below
        if above is not None:
            ok &= v - max_z * s >= above
        parts.append(f"{v:.3g} ± {s:.1g} at {spec['x']}={x:g}" + (f" ({key})" if key else ""))
    bound = " and ".join(b for b in (f"< {below}" if below is not None else "",
                                     f"> {above}" if above is not None else "") if b)
    return ok, f"{spec['metric']}{_at_best(spec)} {bound} required: " + "; ".join(parts)


CHECKS: dict[str, Callable[[list[dict], dict], tuple[bool, str]]] = {
    "statistical": statistical,
    "exact": exact,
    "monotone": monotone,
    "threshold": threshold,
}


def register_check(kind: str, fn: Callable[[list[dict], dict], tuple[bool, str]]) -> None:
    CHECKS[kind] = fn


COMMON_KEYS = ("kind", "name", "metric", "where")
CURVE_KEYS = ("x", "optimize", "argmin_of", "value")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "statistical": ("max_abs_z", "rel_tol", "abs_tol"),
    "exact": ("rel_tol",),
    "monotone": (*CURVE_KEYS, "direction", "max_abs_z", "rel_tol"),
    "threshold": (*CURVE_KEYS, "below", "above", "max_abs_z"),
}
SPEC_KEYS = tuple(dict.fromkeys(COMMON_KEYS + sum(KIND_KEYS.values(), ())))
NUMBER_KEYS = ("max_abs_z", "rel_tol", "abs_tol", "below", "above")
NONNEGATIVE_KEYS = ("max_abs_z", "rel_tol", "abs_tol")


def _where_value_ok(v) -> bool:
    return isinstance(v, (str, int, float)) or (
        isinstance(v, list) and v and all(isinstance(x, (str, int, float, list)) for x in v))


def validate_spec(spec: dict, *, metrics=None, columns=None, values=None,
                  axes=None) -> None:
    """A [[check]] table is complete and well-typed, before any compute.

    With the experiment's ``metrics``, ``columns`` (parameter names), ``values`` (column ->
    the values it takes) and grid ``axes``, also that it names real metrics and columns and
    selects at least one grid point.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"each [[check]] must be a table, got {spec!r}")
    kind = spec.get("kind", "statistical")
    if not isinstance(kind, str) or kind not in CHECKS:
        raise ValueError(f"check kind must be one of {sorted(CHECKS)}, got {kind!r}"
                         + (closest(kind, CHECKS) if isinstance(kind, str) else ""))
    allowed = COMMON_KEYS + KIND_KEYS.get(kind, tuple(k for k in SPEC_KEYS
                                                      if k not in COMMON_KEYS))
    label = f"check {spec.get('name')!r}" if isinstance(spec.get("name"), str) else "check"
    for key in spec:
        if key not in allowed:
            hint = closest(key, allowed)
            if key in SPEC_KEYS:
                raise ValueError(f"{label}: key {key!r} does not apply to kind {kind!r}; "
                                 f"allowed: {', '.join(allowed)}")
            raise ValueError(f"unknown check key {key!r}{hint}; allowed: {', '.join(allowed)}")
    if "metric" not in spec:
        raise ValueError("each [[check]] needs a `metric = \"...\"` line")
    for key in ("name", "metric", "x", "optimize", "argmin_of"):
        if key in spec and not isinstance(spec[key], str):
            raise ValueError(f"{label}: {key} must be a string, got {spec[key]!r}")
    for key in NUMBER_KEYS:
        if key in spec:
            v = spec[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{label}: {key} must be a finite number, got {v!r}")
            if key in NONNEGATIVE_KEYS and v < 0:
                raise ValueError(f"{label}: {key} must be >= 0, got {v!r}")
    if spec.get("value", "mean") not in ("mean", "theory"):
        raise ValueError(f"{label}: value must be 'mean' or 'theory', got {spec['value']!r}")
    if spec.get("direction", "nonincreasing") not in ("nonincreasing", "nondecreasing"):
        raise ValueError(f"{label}: direction must be 'nonincreasing' or 'nondecreasing', "
                         f"got {spec['direction']!r}")
    if kind in ("monotone", "threshold") and "x" not in spec:
        raise ValueError(f"{label}: a {kind} check needs `x = \"<grid axis>\"`")
    if kind == "threshold" and "below" not in spec and "above" not in spec:
        raise ValueError(f"{label}: a threshold check needs `below` or `above`")
    where = spec.get("where", {})
    if not isinstance(where, dict):
        raise ValueError(f"{label}: where must be a table {{param = value or [values]}}, "
                         f"got {where!r}")
    for k, v in where.items():
        if not _where_value_ok(v):
            raise ValueError(f"{label}: where {k} must be a value or a non-empty list of "
                             f"values, got {v!r}")
    if metrics is not None:
        _validate_against(spec, label, metrics, columns or [], values or {}, axes or [])


def _validate_against(spec, label, metrics, columns, values, axes) -> None:
    for key in ("metric", "argmin_of"):
        if key in spec and spec[key] not in metrics:
            raise ValueError(f"check {key} must be one of {list(metrics)}, got {spec[key]!r}"
                             + closest(spec[key], metrics))
    for key in ("x", "optimize"):
        if key in spec and spec[key] not in axes:
            raise ValueError(f"{label}: {key} must be a grid axis ({', '.join(axes) or 'none'}),"
                             f" got {spec[key]!r}" + closest(spec[key], axes))
    for k, want in spec.get("where", {}).items():
        if k not in columns:
            raise ValueError(f"{label}: where names {k!r}, which is not a parameter"
                             + closest(k, columns) + f"; parameters: {', '.join(columns)}")
        have = values.get(k, [])
        wants = want if isinstance(want, list) else [want]
        if have and not any(_same(_cell(h), w) for h in have for w in wants):
            raise ValueError(f"{label}: where {k} = {want!r} matches no grid point ({k} takes "
                             f"{', '.join(_cell(h) for h in have)})")


def _cell(v) -> str:
    """A value as summary.csv writes it (the form `where` is matched against)."""
    from rfsim.io import format_value

    return format_value(v)


def evaluate(rows: list[dict], spec: dict, *, default_name: str = "check") -> Verdict:
    """Run one claim ``spec`` (a [check] table) on summary rows."""
    validate_spec(spec)
    kind = spec.get("kind", "statistical")
    passed, figure = CHECKS[kind](rows, spec)
    return Verdict(spec.get("name", default_name), kind, bool(passed), figure)


def perturb_theory(rows: list[dict], factor: float) -> list[dict]:
    """Rows with every finite prediction multiplied by ``factor`` (the check's twin test)."""
    out = []
    for r in rows:
        r = dict(r)
        t = to_float(r["theory"])
        if math.isfinite(t):
            r["theory"] = repr(t * factor)
        out.append(r)
    return out
