"""``bound``: every selected row has :math:`\\bar x + z_{\\max}\\,\\mathrm{sem} \\le b`
(``max_abs_z`` = 3), the bound ``b`` being ``"theory"`` (the row's prediction; rows without
a finite one are left out and counted), a number, or an expression over parameter columns
(``"2 * noise / n"``, :mod:`rfsim.engine.expressions`).  Reports the tightest row (smallest
margin relative to the bound) and, with ``max_ratio``, FAILs a vacuous bound:
``bound/mean > max_ratio`` at every row."""

from __future__ import annotations

import dataclasses
import math

from rfsim.checks.base import Check, chosen_rows, label_row, register, varying
from rfsim.engine.expressions import parse as parse_expression
from rfsim.engine.table import SUMMARY_STATS, SummaryTable, is_number


def validate_bound(given, label: str) -> None:
    """``bound`` is "theory", a finite number, or an expression naming parameters only."""
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


def _row_params(row: dict, names: tuple[str, ...], text: str) -> dict[str, float]:
    out = {}
    for k in names:
        if k not in row or k in SUMMARY_STATS:
            raise ValueError(f"check bound `{text}` names {k!r}, which is not a parameter "
                             "column of summary.csv")
        if not is_number(row[k]):
            raise ValueError(f"check bound `{text}` names {k!r}, whose value {row[k]!r} is "
                             "not a number")
        out[k] = float(row[k])
    return out


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Bound(Check):
    bound: str | float
    max_abs_z: float = 3.0
    max_ratio: float | None = None

    kind = "bound"
    REQUIRED = ("bound",)

    def _validate(self, label: str) -> None:
        if self.max_ratio is not None and self.max_ratio < 1:
            raise ValueError(f"{label}: max_ratio must be >= 1 (a bound that holds is >= the "
                             f"mean), got {self.max_ratio!r}")
        validate_bound(self.bound, label)

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        given, metric = self.bound, self.metric
        max_z = float(self.max_abs_z)
        chosen = chosen_rows(table, self)
        dropped = 0
        if given == "theory":
            kept = [r for r in chosen if math.isfinite(r["theory"])]
            chosen, dropped = kept, len(chosen) - len(kept)
            text = "theory"
        elif isinstance(given, str):
            expr = parse_expression(given)
            text = expr.text
        else:
            text = f"{float(given):g}"
        if not chosen:
            return False, f"{metric}: no rows to compare with the bound {text}"
        keys = varying(chosen)
        tight, n_bad, ratio = None, 0, (math.inf, None)
        for r in chosen:
            at = label_row(r, keys) or "the only point"
            if given == "theory":
                b = r["theory"]
            elif isinstance(given, str):
                params = _row_params(r, expr.names, text)  # a wrong name is a bad spec
                try:
                    b = expr(params)
                except ValueError as e:  # e.g. 1/n at n = 0: this row has no bound
                    return False, f"{metric}: the bound {e} at {at}"
            else:
                b = float(given)
            mean, sem = r["mean"], r["sem"]
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
        if self.max_ratio is not None:
            max_ratio = float(self.max_ratio)
            vacuous = ratio[0] > max_ratio
            passed &= not vacuous
            figure += (f"; smallest bound/mean = {ratio[0]:.3g}"
                       + (f" at {ratio[1]}" if ratio[1] else "")
                       + (f" > max_ratio {max_ratio:g}: vacuous" if vacuous else
                          f" (max_ratio {max_ratio:g})"))
        figure += (f"; {len(chosen)} points"
                   + (f", {dropped} with infinite/missing theory left out" if dropped else ""))
        return passed, figure
