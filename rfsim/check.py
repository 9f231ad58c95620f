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
* ``rate``: the log–log slope of each curve of ``metric`` against ``x`` (weighted least
  squares of log mean, or a plain fit of log theory) is within ``tolerance`` (+
  ``max_abs_z`` standard errors, default 0) of ``expected``.
* ``bound``: every selected row has ``mean + max_abs_z * sem <= bound`` (default 3 sem),
  ``bound`` being ``"theory"``, a number or an expression over parameter columns
  (:mod:`rfsim.engine.expressions`); with ``max_ratio`` the bound must also not be vacuous
  (``bound/mean <= max_ratio`` at some row).

Spec keys common to all kinds: ``metric`` (required), ``where`` (a table
``{param = value or [values]}`` selecting rows), ``name`` (a label).
Rows whose theory is missing or infinite are left out and counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from rfsim.validation import closest
from rfsim.engine.expressions import parse as parse_expression
from rfsim.engine.io import SUMMARY_STATS, to_float


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


def chosen_rows(rows: list[dict], spec: dict) -> list[dict]:
    """Rows of ``spec['metric']`` (which must be in the table) passing ``where``."""
    metric = spec.get("metric")
    metrics = sorted({r["metric"] for r in rows})
    if metric not in metrics:
        raise ValueError(f"check metric must be one of {metrics}, got {metric!r}"
                         + closest(metric, metrics))
    return [r for r in rows if r["metric"] == metric and _matches(r, spec.get("where", {}))]


def select(rows: list[dict], spec: dict) -> tuple[list[dict], int]:
    """Rows of ``spec['metric']`` passing ``where`` with finite theory; and how many had none."""
    chosen = chosen_rows(rows, spec)
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
    picked, others = _curve_rows(rows, spec)
    params = [k for k in picked[0] if k not in SUMMARY_STATS]
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


def _curve_rows(rows: list[dict], spec: dict) -> tuple[list[dict], list[str]]:
    """The rows a curve check reads, and the columns that tell its curves apart."""
    metric, x, opt = spec.get("metric"), spec.get("x"), spec.get("optimize")
    picked = [r for r in rows if r["metric"] == metric and _matches(r, spec.get("where", {}))]
    if not picked:
        raise ValueError(f"check selects no rows of metric {metric!r}")
    if x not in picked[0]:
        raise ValueError(f"check x must be a parameter column, got {x!r}")
    return picked, [k for k in _varying(picked) if k not in (x, opt)]


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
    if worst is None:  # refused before compute (planned.validate_planned); kept for direct use
        return False, (f"{spec['metric']}{_at_best(spec)}: a monotone check needs >= 2 values "
                       f"of {spec['x']} on a curve; every curve has one")
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


def _loglog_fit(pts: list[tuple[float, float, float]], weighted: bool
                ) -> tuple[float, float, float]:
    """Slope, its standard error and chi^2/dof of ``log v = c + slope log x``.

    Weighted: weights ``1/var(log v) = (v/sem)^2`` (the delta method), standard error from
    the weights (known variances).  Unweighted: ordinary least squares, standard error from
    the residuals (for a deterministic curve it measures its curvature).
    """
    xs = [math.log(x) for x, _, _ in pts]
    ys = [math.log(v) for _, v, _ in pts]
    ws = [(v / s) ** 2 for _, v, s in pts] if weighted else [1.0] * len(pts)
    total = sum(ws)
    xb = sum(w * x for w, x in zip(ws, xs)) / total
    yb = sum(w * y for w, y in zip(ws, ys)) / total
    sxx = sum(w * (x - xb) ** 2 for w, x in zip(ws, xs))
    slope = sum(w * (x - xb) * (y - yb) for w, x, y in zip(ws, xs, ys)) / sxx
    chi2 = sum(w * (y - yb - slope * (x - xb)) ** 2 for w, x, y in zip(ws, xs, ys))
    dof = len(pts) - 2
    se = math.sqrt(1.0 / sxx) if weighted else math.sqrt(chi2 / dof / sxx)
    return slope, se, chi2 / dof


def _curve_label(names: list[str], key: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(names, key))


def rate(rows: list[dict], spec: dict) -> tuple[bool, str]:
    """Each curve's fitted log–log slope of ``metric`` against ``x`` is within ``tolerance``
    (+ ``max_abs_z`` standard errors of the fit, default 0) of ``expected``.

    ``value = "mean"`` (default): weighted least squares of log(mean) with weights
    ``(mean/sem)^2``; ``"theory"``: unweighted fit of log(theory).  ``x_min``/``x_max``
    restrict the fit; ``where``/``optimize`` select rows as for ``monotone``.  A curve with
    fewer than 3 points, or a non-positive value or x, is a FAIL.
    """
    expected, tol = float(spec["expected"]), float(spec["tolerance"])
    max_z = float(spec.get("max_abs_z", 0.0))
    lo, hi = float(spec.get("x_min", -math.inf)), float(spec.get("x_max", math.inf))
    use, x, metric = spec.get("value", "mean"), spec["x"], spec["metric"]
    weighted = use == "mean"
    _, others = _curve_rows(rows, spec)
    what = f"{metric}{'' if weighted else ' (theory)'}{_at_best(spec)} vs {x}"
    fits = []
    for key, pts in _curves(rows, spec).items():
        where = _curve_label(others, key)
        on = f" ({where})" if where else ""
        pts = [p for p in pts if lo <= p[0] <= hi]
        span = ("" if (lo, hi) == (-math.inf, math.inf) else
                f" in [{lo:g}, {hi:g}]")
        if len(pts) < 3:
            return False, (f"{what}: a slope needs >= 3 points per curve; {len(pts)} with "
                           f"{x}{span}{on}")
        for xv, v, s in pts:
            if not (math.isfinite(v) and v > 0 and xv > 0):
                return False, (f"{what}: a log-log fit needs positive values; {use} = {v:g} "
                               f"at {x}={xv:g}{on}")
            if weighted and not s > 0:
                return False, (f"{what}: no standard error at {x}={xv:g}{on} to weight the "
                               f"fit (use value = \"theory\" for a deterministic curve)")
        slope, se, chi2 = _loglog_fit(pts, weighted)
        allowed = tol + max_z * se
        gap = abs(slope - expected)
        ratio = gap / allowed if allowed > 0 else (0.0 if gap == 0 else math.inf)
        fits.append((ratio, slope, se, chi2, allowed, where, pts))
    worst = max(fits, key=lambda f: f[0])
    ratio, slope, se, chi2, allowed, where, pts = worst
    passed = all(f[0] <= 1.0 for f in fits)
    allowance = " + ".join(a for a in (f"{tol:g}" if tol or not max_z else "",
                                       f"{max_z:g} se" if max_z else "") if a)
    figure = (
        f"{what}: slope {slope:+.3f} ± {se:.3f} (expected {expected:+g} ± {allowance}; "
        f"|diff| = {abs(slope - expected):.3f} = {ratio:.2f} x allowance)"
        + (f" at {where}" if where else "")
        + f"; {len(pts)} points, {x} {pts[0][0]:g}..{pts[-1][0]:g}"
        + (f", chi2/dof {chi2:.2f}" if weighted else "")
    )
    if len(fits) > 1:
        shown = sorted(fits, key=lambda f: -f[0])[:6]
        figure += (f"; {len(fits)} curves: "
                   + ", ".join(f"{f[1]:+.3f}±{f[2]:.3f} ({f[5]})" for f in shown)
                   + (" ..." if len(fits) > len(shown) else ""))
    figure += f"; detects an exponent off by > {max(f[4] for f in fits):.3g}"
    return passed, figure


def _row_params(row: dict, names: tuple[str, ...], text: str) -> dict[str, float]:
    out = {}
    for k in names:
        if k not in row or k in SUMMARY_STATS:
            raise ValueError(f"check bound `{text}` names {k!r}, which is not a parameter "
                             "column of summary.csv")
        try:
            out[k] = float(row[k])
        except ValueError:
            raise ValueError(f"check bound `{text}` names {k!r}, whose value {row[k]!r} is "
                             "not a number") from None
    return out


def bound(rows: list[dict], spec: dict) -> tuple[bool, str]:
    """Every selected row has ``mean + max_abs_z * sem <= bound`` (default 3 sem).

    ``bound`` is ``"theory"`` (the row's prediction; rows without a finite one are left out
    and counted), a number, or an expression over parameter columns (``"2 * noise / n"``).
    Reports the tightest row (smallest margin relative to the bound) and, with
    ``max_ratio``, FAILs a vacuous bound: ``bound/mean > max_ratio`` at every row.
    """
    given, metric = spec["bound"], spec["metric"]
    max_z = float(spec.get("max_abs_z", 3.0))
    max_ratio = spec.get("max_ratio")
    chosen = chosen_rows(rows, spec)
    dropped = 0
    if given == "theory":
        kept = [r for r in chosen if math.isfinite(to_float(r["theory"]))]
        chosen, dropped = kept, len(chosen) - len(kept)
        text = "theory"
    elif isinstance(given, str):
        expr = parse_expression(given)
        text = expr.text
    else:
        text = f"{float(given):g}"
    if not chosen:
        return False, f"{metric}: no rows to compare with the bound {text}"
    keys = _varying(chosen)
    tight, n_bad, ratio = None, 0, (math.inf, None)
    for r in chosen:
        at = _label(r, keys=keys) or "the only point"
        if given == "theory":
            b = to_float(r["theory"])
        elif isinstance(given, str):
            params = _row_params(r, expr.names, text)  # a wrong name is a bad spec
            try:
                b = expr(params)
            except ValueError as e:  # e.g. 1/n at n = 0: this row has no bound
                return False, f"{metric}: the bound {e} at {at}"
        else:
            b = float(given)
        mean, sem = to_float(r["mean"]), to_float(r["sem"])
        if not math.isfinite(mean):
            return False, f"{metric}: non-finite simulation mean at {at}"
        upper = mean + max_z * (sem if math.isfinite(sem) else 0.0)
        margin = b - upper
        rel = margin / abs(b) if b != 0 else margin
        n_bad += margin < 0
        if tight is None or rel < tight[0]:
            tight = (rel, margin, b, upper, at)
        q = b / mean if mean > 0 else math.inf
        if q < ratio[0]:
            ratio = (q, at)
    rel, margin, b, upper, at = tight
    passed = n_bad == 0
    held = ("every row holds" if passed else
            f"{n_bad} of {len(chosen)} rows violate it")
    figure = (f"{metric} + {max_z:g} sem <= {text}: {held}; tightest at {at}: "
              f"{upper:.4g} vs bound {b:.4g}, margin {margin:.3g} ({rel:+.1%} of the bound)")
    if max_ratio is not None:
        vacuous = ratio[0] > float(max_ratio)
        passed &= not vacuous
        figure += (f"; smallest bound/mean = {ratio[0]:.3g}"
                   + (f" at {ratio[1]}" if ratio[1] else "")
                   + (f" > max_ratio {float(max_ratio):g}: vacuous" if vacuous else
                      f" (max_ratio {float(max_ratio):g})"))
    figure += (f"; {len(chosen)} points"
               + (f", {dropped} with infinite/missing theory left out" if dropped else ""))
    return passed, figure


def compare(rows: list[dict], spec: dict) -> tuple[bool, str]:
    """A claim across two families of one experiment: at every shared grid point the ratio
    ``mean(numerator) / mean(denominator)`` of ``metric`` is below ``below`` (and/or above
    ``above``) by ``max_abs_z`` (default 3) standard errors.  The ratio's se is the delta
    method with the two means independent (conservative under common random numbers, which
    correlate them positively)."""
    num, den = spec["numerator"], spec["denominator"]
    below, above = spec.get("below"), spec.get("above")
    max_z = float(spec.get("max_abs_z", 3.0))
    where = spec.get("where", {})
    picked = [r for r in rows if r["metric"] == spec["metric"] and _matches(r, where)]
    sides = {m: [r for r in picked if r.get("model") == m] for m in (num, den)}
    if not sides[num] or not sides[den]:
        empty = num if not sides[num] else den
        return False, f"{spec['metric']}: no rows of model {empty!r} to compare"
    params = [k for k in picked[0] if k not in SUMMARY_STATS and k != "model"]
    shared = [k for k in params if all(r[k] != "" for r in sides[num] + sides[den])]
    denominators = {tuple(r[k] for k in shared): r for r in sides[den]}
    ok, n_pairs, worst = True, 0, None
    for r in sides[num]:
        d = denominators.get(tuple(r[k] for k in shared))
        if d is None:
            continue
        mn, md = to_float(r["mean"]), to_float(d["mean"])
        sn, sd = (to_float(x["sem"]) for x in (r, d))
        if not all(math.isfinite(v) for v in (mn, md)) or md == 0:
            return False, f"{spec['metric']}: a mean is not finite or zero at " \
                          f"{_label(r, keys=shared)}"
        ratio = mn / md
        se = abs(ratio) * math.hypot(sn / mn if mn and math.isfinite(sn) else 0.0,
                                     sd / md if math.isfinite(sd) else 0.0)
        slack = min(below - (ratio + max_z * se) if below is not None else math.inf,
                    (ratio - max_z * se) - above if above is not None else math.inf)
        ok &= slack >= 0
        n_pairs += 1
        if worst is None or slack < worst[0]:
            worst = (slack, ratio, se, _label(r, keys=[k for k in shared if k in
                                                        _varying(sides[num])]))
    if not n_pairs:
        return False, f"{spec['metric']}: no grid point shared by {num!r} and {den!r}"
    claim = " and ".join(b for b in (f"< {below}" if below is not None else "",
                                     f"> {above}" if above is not None else "") if b)
    _, ratio, se, at = worst
    return ok, (f"{spec['metric']} {num}/{den} {claim} (by {max_z:g} se) at {n_pairs} shared "
                f"points; closest: {ratio:.3g} ± {se:.2g} at {at or 'the only point'}")


CHECKS: dict[str, Callable[[list[dict], dict], tuple[bool, str]]] = {
    "statistical": statistical,
    "exact": exact,
    "monotone": monotone,
    "threshold": threshold,
    "rate": rate,
    "bound": bound,
    "compare": compare,
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
    "rate": (*CURVE_KEYS, "expected", "tolerance", "max_abs_z", "x_min", "x_max"),
    "bound": ("bound", "max_abs_z", "max_ratio"),
    "compare": ("numerator", "denominator", "below", "above", "max_abs_z"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "monotone": ("x",),
    "threshold": ("x",),
    "rate": ("x", "expected", "tolerance"),
    "bound": ("bound",),
    "compare": ("numerator", "denominator"),
}
SPEC_KEYS = tuple(dict.fromkeys(COMMON_KEYS + sum(KIND_KEYS.values(), ())))
NUMBER_KEYS = ("max_abs_z", "rel_tol", "abs_tol", "below", "above", "expected", "tolerance",
               "x_min", "x_max", "max_ratio")
NONNEGATIVE_KEYS = ("max_abs_z", "rel_tol", "abs_tol", "tolerance")
REQUIRED_HINTS = {"numerator": 'numerator = "<model>"', "denominator": 'denominator = "<model>"',
                  "x": 'x = "<grid axis>"', "expected": "expected = <the exponent>",
                  "tolerance": "tolerance = <allowed |slope - expected|>",
                  "bound": 'bound = "theory", a number or an expression such as "2 * noise / n"'}


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
    for key in ("name", "metric", "x", "optimize", "argmin_of", "numerator", "denominator"):
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
    for key in REQUIRED_KEYS.get(kind, ()):
        if key not in spec:
            raise ValueError(f"{label}: a {kind} check needs `{REQUIRED_HINTS[key]}`")
    if "x_min" in spec and "x_max" in spec and not spec["x_min"] < spec["x_max"]:
        raise ValueError(f"{label}: x_min must be < x_max, got {spec['x_min']!r} and "
                         f"{spec['x_max']!r}")
    if "max_ratio" in spec and spec["max_ratio"] < 1:
        raise ValueError(f"{label}: max_ratio must be >= 1 (a bound that holds is >= the mean),"
                         f" got {spec['max_ratio']!r}")
    if "bound" in spec:
        _validate_bound(spec["bound"], label)
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


def _validate_bound(given, label: str) -> None:
    if isinstance(given, bool) or not isinstance(given, (str, int, float)):
        raise ValueError(f"{label}: bound must be \"theory\", a number or an expression string, "
                         f"got {given!r}")
    if isinstance(given, str):
        if given == "theory":
            return
        try:
            expr = parse_expression(given)
        except ValueError as e:
            raise ValueError(f"{label}: bound {e}") from None
        stats = [k for k in expr.names if k in SUMMARY_STATS]
        if stats:
            raise ValueError(f"{label}: bound `{given}` may name parameters only, not "
                             f"{stats[0]!r}" + (" (bound = \"theory\" is the prediction)"
                                                if stats[0] == "theory" else ""))
    elif not math.isfinite(given):
        raise ValueError(f"{label}: bound must be a finite number, got {given!r}")


def _numbers(vs) -> list[float] | None:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
        return [float(v) for v in vs]
    return None


def _validate_against(spec, label, metrics, columns, values, axes) -> None:
    if spec.get("kind") == "compare":
        models = values.get("model", [])
        for key in ("numerator", "denominator"):
            if spec[key] not in models:
                raise ValueError(f"{label}: {key} must be one of the experiment's models "
                                 f"{models or '(it names only one: use models = [...])'}, got "
                                 f"{spec[key]!r}")
        if "below" not in spec and "above" not in spec:
            raise ValueError(f"{label}: a compare check needs `below` or `above`")
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
        for w in wants:
            if have and not any(_same(_cell(h), w) for h in have):
                raise ValueError(f"{label}: where {k} = {w!r} matches no grid point ({k} "
                                 f"takes {', '.join(_cell(h) for h in have)})")
    if isinstance(spec.get("bound"), str) and spec["bound"] != "theory":
        for k in parse_expression(spec["bound"]).names:
            if k not in columns:
                raise ValueError(f"{label}: bound `{spec['bound']}` names {k!r}, which is not a "
                                 "parameter" + closest(k, columns)
                                 + f"; parameters: {', '.join(columns)}")
            if values.get(k) and _numbers(values[k]) is None:
                raise ValueError(f"{label}: bound `{spec['bound']}` names {k!r}, which is not "
                                 f"numeric ({k} takes {', '.join(_cell(h) for h in values[k])})")
    if spec.get("kind") == "rate" and values.get(spec["x"]):
        _validate_rate_range(spec, label, values[spec["x"]])


def _validate_rate_range(spec, label, have) -> None:
    """Enough grid values of x inside [x_min, x_max] (and ``where``) for a slope."""
    x = spec["x"]
    xs = _numbers(have)
    if xs is None:
        raise ValueError(f"{label}: x = {x!r} must be numeric for a rate")
    lo, hi = spec.get("x_min", -math.inf), spec.get("x_max", math.inf)
    if x in spec.get("where", {}):
        want = spec["where"][x]
        wants = want if isinstance(want, list) else [want]
        xs = [v for v in xs if any(_same(_cell(v), w) for w in wants)]
    inside = sorted(v for v in xs if lo <= v <= hi)
    if any(v <= 0 for v in inside):
        raise ValueError(f"{label}: {x} = {min(inside):g} cannot be on a log axis; set x_min > 0")
    if len(inside) < 3:
        span = "" if (lo, hi) == (-math.inf, math.inf) else f" in [{lo:g}, {hi:g}]"
        raise ValueError(f"{label}: a rate needs >= 3 values of {x}{span}; the grid has "
                         f"{len(inside)}" + (f" ({', '.join(f'{v:g}' for v in inside)})"
                                             if inside else ""))


def _cell(v) -> str:
    """A value as summary.csv writes it (the form `where` is matched against)."""
    from rfsim.engine.io import format_value

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
