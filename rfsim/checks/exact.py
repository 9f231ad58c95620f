"""``exact``: a deterministic quantity equals its closed form,
:math:`|\\bar x - t| \\le r\\,|t|` with ``rel_tol`` = 1e-8 by default."""

from __future__ import annotations

import dataclasses

from rfsim.checks.base import Check, register, select
from rfsim.engine.table import SummaryTable


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Exact(Check):
    rel_tol: float = 1e-8

    kind = "exact"

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        rel_tol = float(self.rel_tol)
        chosen, _ = select(table, self)
        if not chosen:
            return False, "no rows with a finite prediction to compare"
        worst = max(abs(r["mean"] - r["theory"]) / max(abs(r["theory"]), 1e-300)
                    for r in chosen)
        return worst <= rel_tol, (
            f"{self.metric}: max relative error = {worst:.2e} (tolerance {rel_tol:.0e}); "
            f"{len(chosen)} points"
        )
