"""``compare``: a claim across two families of one experiment.  At every shared grid point
the ratio :math:`\\rho = \\bar x_{\\rm num} / \\bar x_{\\rm den}` of ``metric`` is below
``below`` (and/or above ``above``) by ``max_abs_z`` (default 3) standard errors.  The
ratio's se is the delta method with the two means independent,
:math:`|\\rho|\\sqrt{(s_n/\\bar x_n)^2 + (s_d/\\bar x_d)^2}` (conservative under common
random numbers, which correlate them positively)."""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import Check, label_row, register, varying
from rfsim.engine.table import SUMMARY_STATS, SummaryTable, where_matches


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Compare(Check):
    numerator: str
    denominator: str
    below: float | None = None
    above: float | None = None
    max_abs_z: float = 3.0

    kind = "compare"
    REQUIRED = ("numerator", "denominator")

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        num, den, metric = self.numerator, self.denominator, self.metric
        below, above = self.below, self.above
        max_z = float(self.max_abs_z)
        picked = [r for r in table.rows
                  if r["metric"] == metric and where_matches(r, self.where)]
        sides = {m: [r for r in picked if r.get("model") == m] for m in (num, den)}
        if not sides[num] or not sides[den]:
            empty = num if not sides[num] else den
            return False, f"{metric}: no rows of model {empty!r} to compare"
        params = [k for k in picked[0] if k not in SUMMARY_STATS and k != "model"]
        shared = [k for k in params if all(r[k] is not None for r in sides[num] + sides[den])]
        denominators = {tuple(r[k] for k in shared): r for r in sides[den]}
        on = [k for k in shared if k in varying(sides[num])]
        ok, n_pairs, worst = True, 0, None
        for r in sides[num]:
            d = denominators.get(tuple(r[k] for k in shared))
            if d is None:
                continue
            mn, md, sn, sd = r["mean"], d["mean"], r["sem"], d["sem"]
            if not all(math.isfinite(v) for v in (mn, md)) or md == 0:
                return False, (f"{metric}: a mean is not finite or zero at "
                               f"{label_row(r, shared)}")
            ratio = mn / md
            se = abs(ratio) * math.hypot(sn / mn if mn and math.isfinite(sn) else 0.0,
                                         sd / md if math.isfinite(sd) else 0.0)
            slack = min(below - (ratio + max_z * se) if below is not None else math.inf,
                        (ratio - max_z * se) - above if above is not None else math.inf)
            ok &= slack >= 0
            n_pairs += 1
            if worst is None or slack < worst[0]:
                worst = (slack, ratio, se, label_row(r, on))
        if not n_pairs:
            return False, f"{metric}: no grid point shared by {num!r} and {den!r}"
        claim = " and ".join(b for b in (f"< {below}" if below is not None else "",
                                         f"> {above}" if above is not None else "") if b)
        _, ratio, se, at = worst
        return ok, (f"{metric} {num}/{den} {claim} (by {max_z:g} se) at {n_pairs} shared "
                    f"points; closest: {ratio:.3g} ± {se:.2g} at {at or 'the only point'}")
