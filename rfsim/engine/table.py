"""The summary table, typed: one row per (grid point, metric), numbers as numbers.

Built once per run from the point records (:func:`rfsim.engine.io.write_tables`) and read
by everything downstream: summary.csv is its text (:meth:`SummaryTable.text_rows`), the
checks (:mod:`rfsim.checks`) and the figure (:mod:`rfsim.plot`) read its numbers, and
``tests/helpers.agree`` builds one from arrays.  A cell is ``int``, ``float``, ``str`` or
``None`` (blank); the statistics ``mean, std, sem, theory, rel_err, z`` are floats (NaN
when blank), ``n_seeds`` an int.

Text and numbers convert both ways without loss: summary.csv writes a float as its
``repr`` (:func:`format_value`), which reads back to the same float64, so
``format_value(parse_cell(t, strict=True)) == t`` for every cell rfsim writes; a grid
value in a check's ``where`` is matched by number (:func:`matches`), exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

SUMMARY_STATS = ("metric", "mean", "std", "sem", "n_seeds", "theory", "rel_err", "z")
FLOAT_STATS = ("mean", "std", "sem", "theory", "rel_err", "z")

Cell = int | float | str | None


def format_value(v) -> str:
    """CSV cell: exact round-trip floats, blank for missing/NaN, ``inf`` kept for theory."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return ""
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


def to_float(cell) -> float:
    """A statistic's cell as a float (blank: NaN); ValueError for text that is no number."""
    if cell is None or cell == "":
        return math.nan
    if isinstance(cell, str):
        return float(cell)
    return float(cell)


def parse_cell(text, *, strict: bool = False) -> Cell:
    """A cell's value: ``None`` (blank), ``int``, ``float`` or the text itself.

    ``strict``: a number only if it writes back to the same text (what summary.csv holds
    always does); otherwise any text ``float()`` reads is a number.  Non-text values
    (already typed) are returned as they are.
    """
    if not isinstance(text, str):
        return None if text is None or (isinstance(text, float) and math.isnan(text)) \
            else text
    if text == "":
        return None
    for kind in (int, float):
        try:
            v = kind(text)
        except ValueError:
            continue
        if not strict or format_value(v) == text:
            return v
    return text


def is_number(cell) -> bool:
    return isinstance(cell, (int, float)) and not isinstance(cell, bool)


def number(cell, column: str = "value") -> float:
    """A parameter cell as a float (blank: NaN); ValueError naming the column otherwise."""
    if cell is None:
        return math.nan
    if is_number(cell):
        return float(cell)
    raise ValueError(f"{column} = {cell!r} is not a number")


def matches(cell: Cell, want) -> bool:
    """Does a table cell equal a ``where`` value?  Numbers by value (1 == 1.0; exact: the
    CSV round trip keeps every float64), anything else by its summary.csv text."""
    if is_number(want):
        return is_number(cell) and float(cell) == float(want)
    return format_value(cell) == str(want)


def text_matches(text: str, want) -> bool:
    """:func:`matches` for a cell as summary.csv writes it."""
    return matches(parse_cell(text, strict=True), want)


def where_matches(row: Mapping, where: Mapping) -> bool:
    """A row passes ``where`` (``{column: value or [values]}``); a column the row lacks is
    blank."""
    for k, want in where.items():
        wants = want if isinstance(want, list) else [want]
        cell = row.get(k)
        if not any(matches(cell, w) for w in wants):
            return False
    return True


def _typed_row(row: Mapping, strict: bool) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in FLOAT_STATS:
            out[k] = to_float(v)
        elif k == "n_seeds":
            out[k] = None if v in ("", None) else int(v)
        elif k == "metric":
            out[k] = v
        else:
            out[k] = parse_cell(v, strict=strict)
    for k in FLOAT_STATS:
        out.setdefault(k, math.nan)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class SummaryTable:
    """Rows of summary.csv, typed.  ``header``: the parameter and axis columns, then
    :data:`SUMMARY_STATS` (the order of summary.csv)."""

    header: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping], *, strict: bool = False) -> SummaryTable:
        """From dicts of text (as summary.csv reads) or of numbers; missing statistics are
        blank.  ``strict``: text is a number only if it writes back unchanged."""
        typed = tuple(_typed_row(r, strict) for r in rows)
        header: dict[str, None] = {}
        for r in typed:
            header.update(dict.fromkeys(r))
        params = [k for k in header if k not in SUMMARY_STATS]
        return cls(tuple(params) + SUMMARY_STATS, typed)

    @classmethod
    def from_values(cls, header: list[str], values: Iterable[list]) -> SummaryTable:
        """From rows of raw values (numbers, strings, lists, None) in ``header`` order, each
        typed as summary.csv writes and reads it back."""
        rows = tuple(_typed_row(dict(zip(header, (format_value(v) for v in row))), True)
                     for row in values)
        return cls(tuple(header), rows)

    @property
    def params(self) -> list[str]:
        """The parameter and axis columns."""
        return [k for k in self.header if k not in SUMMARY_STATS]

    def text_rows(self) -> list[dict[str, str]]:
        """The rows as summary.csv holds them (strings)."""
        return [{k: format_value(r.get(k)) for k in self.header} for r in self.rows]

    def cells(self) -> list[list[Cell]]:
        """Rows as lists in header order (what summary.csv writes)."""
        return [[r.get(k) for k in self.header] for r in self.rows]

    def map_theory(self, factor: float) -> SummaryTable:
        """Every finite prediction multiplied by ``factor`` (the checks' twin)."""
        rows = tuple({**r, "theory": r["theory"] * factor} if math.isfinite(r["theory"])
                     else r for r in self.rows)
        return SummaryTable(self.header, rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)


def as_table(rows) -> SummaryTable:
    """``rows`` as a SummaryTable: a table as it is, dicts (text or numbers) typed."""
    if isinstance(rows, SummaryTable):
        return rows
    return SummaryTable.from_rows(rows)
