"""``threshold``: at the largest ``x`` of each curve the value is below ``below`` (and/or
above ``above``) by ``max_abs_z`` sem (default 3) -- e.g. a ratio that tends to 0."""

from __future__ import annotations

import dataclasses

from rfsim.checks.base import register, text_key
from rfsim.checks.curves import CurveCheck
from rfsim.engine.table import SummaryTable


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Threshold(CurveCheck):
    below: float | None = None
    above: float | None = None
    max_abs_z: float = 3.0

    kind = "threshold"

    def _validate(self, label: str) -> None:
        super()._validate(label)
        if self.below is None and self.above is None:
            raise ValueError(f"{label}: a threshold check needs `below` or `above`")

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        below, above = self.below, self.above
        max_z = float(self.max_abs_z)
        ok, parts = True, []
        for key, pts in self.curves(table).items():
            key = text_key(key)
            x, v, s = pts[-1]
            if below is not None:
                ok &= v + max_z * s <= below
            if above is not None:
                ok &= v - max_z * s >= above
            parts.append(f"{v:.3g} ± {s:.1g} at {self.x}={x:g}" + (f" ({key})" if key else ""))
        bound = " and ".join(b for b in (f"< {below}" if below is not None else "",
                                         f"> {above}" if above is not None else "") if b)
        return ok, f"{self.metric}{self.at_best()} {bound} required: " + "; ".join(parts)
