"""``monotone``: each curve of ``metric`` against ``x`` (optionally at the best value of an
``optimize`` axis) moves only in ``direction``: a step the wrong way larger than
``max_abs_z`` combined sem, :math:`z_{\\max}\\sqrt{s_0^2 + s_1^2}` (default 3; plus
``rel_tol`` of the level), is a violation."""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import register, text_key
from rfsim.checks.curves import CurveCheck
from rfsim.engine.table import SummaryTable

DIRECTIONS = ("nonincreasing", "nondecreasing")


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Monotone(CurveCheck):
    direction: str = "nonincreasing"
    max_abs_z: float = 3.0
    rel_tol: float = 0.0

    kind = "monotone"

    def _validate(self, label: str) -> None:
        super()._validate(label)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{label}: direction must be 'nonincreasing' or 'nondecreasing', "
                             f"got {self.direction!r}")

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        sign = 1.0 if self.direction == "nonincreasing" else -1.0
        max_z, rel_tol = float(self.max_abs_z), float(self.rel_tol)
        passed, worst, where, n_steps = True, None, "", 0
        for key, pts in self.curves(table).items():
            key = text_key(key)
            for (x0, v0, s0), (x1, v1, s1) in zip(pts, pts[1:]):
                if not (math.isfinite(v0) and math.isfinite(v1)):
                    return False, f"non-finite value on the curve {key} at {self.x}={x1:g}"
                allowed = max_z * math.hypot(s0, s1) + rel_tol * max(abs(v0), abs(v1))
                step = sign * (v1 - v0)  # > 0 is the wrong direction
                n_steps += 1
                passed &= step <= allowed
                if worst is None or step > worst[0]:
                    worst = (step, allowed)
                    where = f"{self.x} {x0:g} -> {x1:g}" + (f" {key}" if key else "")
        if worst is None:  # refused before compute (engine.planned); kept for direct use
            return False, (f"{self.metric}{self.at_best()}: a monotone check needs >= 2 "
                           f"values of {self.x} on a curve; every curve has one")
        step, allowed = worst
        verdict = ("every step goes the right way" if step <= 0 else
                   f"largest wrong-way step {step:.3g} (allowed {allowed:.3g})")
        return passed, (f"{self.metric}{self.at_best()} {self.direction} in {self.x}: "
                        f"{verdict}; closest at {where}; {n_steps} steps")
