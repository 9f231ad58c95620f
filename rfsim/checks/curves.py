"""Curve checks (monotone, threshold, rate) read a metric as curves against a grid axis ``x``.

Every other varying column tells curves apart.  With ``optimize = "ridge"`` each x keeps one
value of that axis: the one minimizing ``argmin_of`` (a metric, default the check's own),
e.g. the fitting ratio read at the ridge that minimizes the test error.  ``value`` is
``"mean"`` (with its sem) or ``"theory"``.
"""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import Check, varying
from rfsim.engine.table import SUMMARY_STATS, SummaryTable, number, where_matches

Curves = dict[tuple, list[tuple[float, float, float]]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurveCheck(Check):
    x: str
    optimize: str | None = None
    argmin_of: str | None = None
    value: str = "mean"

    REQUIRED = ("x",)

    def _validate(self, label: str) -> None:
        if self.value not in ("mean", "theory"):
            raise ValueError(f"{label}: value must be 'mean' or 'theory', got {self.value!r}")

    def curve_rows(self, table: SummaryTable) -> tuple[list[dict], list[str]]:
        """The rows the check reads, and the columns that tell its curves apart."""
        picked = [r for r in table.rows
                  if r["metric"] == self.metric and where_matches(r, self.where)]
        if not picked:
            raise ValueError(f"check selects no rows of metric {self.metric!r}")
        if self.x not in picked[0]:
            raise ValueError(f"check x must be a parameter column, got {self.x!r}")
        return picked, [k for k in varying(picked) if k not in (self.x, self.optimize)]

    def curves(self, table: SummaryTable) -> Curves:
        """Curves ``{other columns' cells: [(x, value, sem)]}`` sorted by x."""
        use, x = self.value, self.x
        picked, others = self.curve_rows(table)
        params = [k for k in picked[0] if k not in SUMMARY_STATS]
        by_params = {(r["metric"], *(r[k] for k in params)): r for r in table.rows}
        judge = self.argmin_of or self.metric
        best: dict[tuple, dict[float, tuple[float, float, float]]] = {}
        for r in picked:
            ref = by_params.get((judge, *(r[k] for k in params)))
            if ref is None:
                raise ValueError(f"check argmin_of must be a metric of summary.csv, got "
                                 f"{judge!r}")
            score = ref[use]
            key, xv = tuple(r[k] for k in others), number(r[x], x)
            sem = r["sem"] if use == "mean" else 0.0
            cur = best.setdefault(key, {}).get(xv)
            if self.optimize is None or cur is None or score < cur[0]:
                best[key][xv] = (score, r[use], sem if math.isfinite(sem) else 0.0)
        return {k: sorted((xv, v, s) for xv, (_, v, s) in c.items()) for k, c in best.items()}

    def at_best(self) -> str:
        if not self.optimize:
            return ""
        return f" at the {self.optimize} minimizing {self.argmin_of or self.metric}"
