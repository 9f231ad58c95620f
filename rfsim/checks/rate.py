"""``rate``: each curve's fitted log-log slope of ``metric`` against ``x`` is within
``tolerance`` (+ ``max_abs_z`` standard errors of the fit, default 0) of ``expected``.

``value = "mean"`` (default): weighted least squares of log(mean) with weights
``(mean/sem)^2``; ``"theory"``: unweighted fit of log(theory).  ``x_min``/``x_max``
restrict the fit; ``where``/``optimize`` select rows as for ``monotone``.  A curve with
fewer than 3 points, or a non-positive value or x, is a FAIL.
"""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import register, text_key
from rfsim.checks.curves import CurveCheck
from rfsim.engine.table import SummaryTable


def loglog_fit(pts: list[tuple[float, float, float]], weighted: bool
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


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Rate(CurveCheck):
    expected: float
    tolerance: float
    max_abs_z: float = 0.0
    x_min: float | None = None  # None: no lower end
    x_max: float | None = None

    kind = "rate"
    REQUIRED = ("x", "expected", "tolerance")

    def _validate(self, label: str) -> None:
        super()._validate(label)
        if self.x_min is not None and self.x_max is not None and not self.x_min < self.x_max:
            raise ValueError(f"{label}: x_min must be < x_max, got {self.x_min!r} and "
                             f"{self.x_max!r}")

    @property
    def span(self) -> tuple[float, float]:
        """``[x_min, x_max]`` of the fit (infinite where not given)."""
        return (-math.inf if self.x_min is None else float(self.x_min),
                math.inf if self.x_max is None else float(self.x_max))

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        expected, tol = float(self.expected), float(self.tolerance)
        max_z = float(self.max_abs_z)
        lo, hi = self.span
        use, x = self.value, self.x
        weighted = use == "mean"
        _, others = self.curve_rows(table)
        what = f"{self.metric}{'' if weighted else ' (theory)'}{self.at_best()} vs {x}"
        fits = []
        for key, pts in self.curves(table).items():
            where = ", ".join(f"{k}={v}" for k, v in zip(others, text_key(key)))
            on = f" ({where})" if where else ""
            pts = [p for p in pts if lo <= p[0] <= hi]
            span = ("" if (lo, hi) == (-math.inf, math.inf) else
                    f" in [{lo:g}, {hi:g}]")
            if len(pts) < 3:
                return False, (f"{what}: a slope needs >= 3 points per curve; {len(pts)} with "
                               f"{x}{span}{on}")
            for xv, v, s in pts:
                if not (math.isfinite(v) and v > 0 and xv > 0):
                    return False, (f"{what}: a log-log fit needs positive values; {use} = "
                                   f"{v:g} at {x}={xv:g}{on}")
                if weighted and not s > 0:
                    return False, (f"{what}: no standard error at {x}={xv:g}{on} to weight "
                                   f"the fit (use value = \"theory\" for a deterministic "
                                   f"curve)")
            slope, se, chi2 = loglog_fit(pts, weighted)
            allowed = tol + max_z * se
            gap = abs(slope - expected)
            ratio = gap / allowed if allowed > 0 else (0.0 if gap == 0 else math.inf)
            fits.append((ratio, slope, se, chi2, allowed, where, pts))
        ratio, slope, se, chi2, allowed, where, pts = max(fits, key=lambda f: f[0])
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
