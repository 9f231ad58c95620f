"""A check kind is a frozen spec: its keys, their defaults and their validation, and how it
judges a summary table.

``parse(table)`` turns a ``[[check]]`` table into the spec of its kind (kind and keys
checked; the spec validates its own values on construction: types, required keys and the
kind's rules), and ``spec.evaluate(summary)`` gives the :class:`Verdict`.  A kind is a
subclass of :class:`Check` registered in :data:`KINDS` (``@register``): its dataclass fields
are the keys it accepts, their defaults the defaults (``None``: not given), ``_validate``
its own rules and ``judge`` the claim -- in the spirit of optax's gradient transformations,
a small frozen object per kind (``Statistical(metric="risk", max_abs_z=3)`` works as well as
its TOML table).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from rfsim.engine.table import (SUMMARY_STATS, SummaryTable, as_table, format_value,
                                where_matches)
from rfsim.validation import closest

COMMON_KEYS = ("kind", "name", "metric", "where")
STRING_KEYS = ("name", "metric", "x", "optimize", "argmin_of", "numerator", "denominator")
NUMBER_KEYS = ("max_abs_z", "rel_tol", "abs_tol", "below", "above", "expected", "tolerance",
               "x_min", "x_max", "max_ratio")
NONNEGATIVE_KEYS = ("max_abs_z", "rel_tol", "abs_tol", "tolerance")
REQUIRED_HINTS = {"numerator": 'numerator = "<model>"', "denominator": 'denominator = "<model>"',
                  "x": 'x = "<grid axis>"', "expected": "expected = <the exponent>",
                  "tolerance": "tolerance = <allowed |slope - expected|>",
                  "bound": 'bound = "theory", a number or an expression such as "2 * noise / n"'}


@dataclasses.dataclass(frozen=True)
class Verdict:
    name: str
    kind: str
    passed: bool
    figure: str  # the number that decided it, in words

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}  [{self.kind}]  {self.figure}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Check:
    """What every kind has: the ``metric`` it reads, the rows it selects (``where``:
    ``{column = value or [values]}``) and a ``name`` for its verdict."""

    metric: str
    where: dict = dataclasses.field(default_factory=dict)
    name: str | None = None

    kind: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()  # keys without a default

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a [[check]] table of this kind may have."""
        own = tuple(f.name for f in dataclasses.fields(cls) if f.name not in COMMON_KEYS)
        return COMMON_KEYS + own

    def __post_init__(self):
        label = self.label()
        for key in STRING_KEYS:
            v = getattr(self, key, None)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{label}: {key} must be a string, got {v!r}")
        for key in NUMBER_KEYS:
            v = getattr(self, key, None)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{label}: {key} must be a finite number, got {v!r}")
            if key in NONNEGATIVE_KEYS and v < 0:
                raise ValueError(f"{label}: {key} must be >= 0, got {v!r}")
        self._validate(label)
        if not isinstance(self.where, dict):
            raise ValueError(f"{label}: where must be a table {{param = value or [values]}}, "
                             f"got {self.where!r}")
        for k, v in self.where.items():
            if not where_value_ok(v):
                raise ValueError(f"{label}: where {k} must be a value or a non-empty list of "
                                 f"values, got {v!r}")

    def _validate(self, label: str) -> None:
        """The kind's own rules, after the types (default: none)."""

    def judge(self, table: SummaryTable) -> tuple[bool, str]:
        raise NotImplementedError

    def evaluate(self, rows, *, default_name: str = "check") -> Verdict:
        """The verdict on summary rows (a SummaryTable, or dicts as summary.csv reads)."""
        passed, figure = self.judge(as_table(rows))
        return Verdict(self.name or default_name, self.kind, bool(passed), figure)

    def label(self) -> str:
        return f"check {self.name!r}" if isinstance(self.name, str) else "check"


KINDS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    """Register a kind (a class decorator); its ``kind`` names it in [[check]] tables."""
    KINDS[cls.kind] = cls
    return cls


def _label(spec: dict) -> str:
    return f"check {spec.get('name')!r}" if isinstance(spec.get("name"), str) else "check"


def parse(spec: dict) -> Check:
    """The frozen spec of a [[check]] table, validated (one line naming the key, the value
    and what is allowed)."""
    if not isinstance(spec, dict):
        raise ValueError(f"each [[check]] must be a table, got {spec!r}")
    kind = spec.get("kind", "statistical")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"check kind must be one of {sorted(KINDS)}, got {kind!r}"
                         + (closest(kind, KINDS) if isinstance(kind, str) else ""))
    cls = KINDS[kind]
    allowed = cls.keys()
    every = tuple(dict.fromkeys(k for c in KINDS.values() for k in c.keys()))
    label = _label(spec)
    for key in spec:
        if key not in allowed:
            hint = closest(key, allowed)
            if key in every:
                raise ValueError(f"{label}: key {key!r} does not apply to kind {kind!r}; "
                                 f"allowed: {', '.join(allowed)}")
            raise ValueError(f"unknown check key {key!r}{hint}; allowed: {', '.join(allowed)}")
    if "metric" not in spec:
        raise ValueError("each [[check]] needs a `metric = \"...\"` line")
    for key in cls.REQUIRED:
        if key not in spec:
            raise ValueError(f"{label}: a {kind} check needs `{REQUIRED_HINTS[key]}`")
    return cls(**{k: v for k, v in spec.items() if k != "kind"})  # validates its values


def where_value_ok(v) -> bool:
    return isinstance(v, (str, int, float)) or (
        isinstance(v, list) and v and all(isinstance(x, (str, int, float, list)) for x in v))


# --- reading the table: shared by the kinds ---------------------------------------------------

def chosen_rows(table, spec_or_check) -> list[dict]:
    """Rows of the check's metric (which must be in the table) passing its ``where``."""
    metric, where = _metric_where(spec_or_check)
    rows = as_table(table).rows
    metrics = sorted({r["metric"] for r in rows})
    if metric not in metrics:
        raise ValueError(f"check metric must be one of {metrics}, got {metric!r}"
                         + closest(metric, metrics))
    return [r for r in rows if r["metric"] == metric and where_matches(r, where)]


def select(table, spec_or_check) -> tuple[list[dict], int]:
    """Rows of the metric passing ``where`` with finite theory; and how many had none."""
    chosen = chosen_rows(table, spec_or_check)
    finite = [r for r in chosen if math.isfinite(r["theory"])]
    return finite, len(chosen) - len(finite)


def _metric_where(spec_or_check) -> tuple[Any, dict]:
    if isinstance(spec_or_check, Check):
        return spec_or_check.metric, spec_or_check.where
    return spec_or_check.get("metric"), spec_or_check.get("where", {})


def label_row(row: dict, keys: list[str]) -> str:
    """``k=v, ...`` of a row's cells as summary.csv writes them (no ``keys``: every
    parameter column)."""
    keys = keys or [k for k in row if k not in SUMMARY_STATS]
    return ", ".join(f"{k}={format_value(row[k])}" for k in keys)


def varying(rows: list[dict]) -> list[str]:
    """The parameter columns that take more than one value among ``rows``."""
    if not rows:
        return []
    return [k for k in rows[0] if k not in SUMMARY_STATS and len({r[k] for r in rows}) > 1]


def text_key(key: tuple) -> tuple[str, ...]:
    """A curve's key as summary.csv writes its cells (how figures print it)."""
    return tuple(format_value(c) for c in key)
