"""``statistical``: the simulation mean agrees with the prediction within its noise.

Every selected row has :math:`|\\bar x - t| \\le z_{\\max}\\,\\mathrm{sem} + r\\,|t| + a`
(``max_abs_z`` = 4, stated finite-size and round-off allowances ``rel_tol``, ``abs_tol``:
0 by default).  The figure reports the check's resolution: the smallest relative error of
the prediction it would detect, :math:`\\min_{\\text{rows}}` allowance / :math:`|t|`.
Rows whose theory is missing or infinite are left out and counted.
"""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import Check, label_row, register, select, varying
from rfsim.engine.table import SummaryTable


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Statistical(Check):
    max_abs_z: float = 4.0
    rel_tol: float = 0.0
    abs_tol: float = 0.0

    kind = "statistical"

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        max_z, rel_tol, abs_tol = (float(v) for v in (self.max_abs_z, self.rel_tol,
                                                       self.abs_tol))
        chosen, dropped = select(table, self)
        if not chosen:
            return False, "no rows with a finite prediction to compare"
        keys = varying(chosen)
        worst, worst_ratio, max_abs_z, resolution = None, -1.0, 0.0, math.inf
        for r in chosen:
            mean, theory, sem = r["mean"], r["theory"], r["sem"]
            if not math.isfinite(mean):
                return False, f"non-finite simulation mean at {label_row(r, keys)}"
            allowed = max_z * (sem if math.isfinite(sem) else 0.0) + rel_tol * abs(theory) \
                + abs_tol
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
            f"{self.metric}: max |z| = {max_abs_z:.2f}; worst gap = {worst_ratio:.2f} x "
            f"allowance ({allowance}) at {label_row(worst, keys) or 'the only point'}; "
            f"{len(chosen)} points"
            + (f", {dropped} with infinite/missing theory left out" if dropped else "")
            + f"; detects a prediction off by > {resolution:.1%}"
        )
        return worst_ratio <= 1.0, figure
