"""Agreement verdicts: claims that can fail, one small module per kind.

A ``[[check]]`` table becomes the frozen spec of its kind (:func:`parse`: keys, defaults and
validation owned by the kind), which judges the typed summary table
(:class:`rfsim.engine.table.SummaryTable`) and returns a :class:`Verdict`.  Kinds:

* ``statistical`` (:mod:`~rfsim.checks.statistical`): simulation mean vs prediction within
  ``max_abs_z`` sem + ``rel_tol`` |theory| + ``abs_tol``;
* ``exact`` (:mod:`~rfsim.checks.exact`): relative error <= ``rel_tol`` (1e-8);
* ``monotone``, ``threshold``, ``rate`` (curves against a grid axis ``x``,
  :mod:`~rfsim.checks.curves`): direction, level at the largest x, log-log slope;
* ``bound`` (:mod:`~rfsim.checks.bound`): mean + ``max_abs_z`` sem below a bound that is
  not vacuous;
* ``compare`` (:mod:`~rfsim.checks.compare`): a ratio of two families on shared points.

Common keys: ``metric`` (required), ``where`` (``{param = value or [values]}``, matched by
number), ``name``.  Rows whose theory is missing or infinite are left out and counted.
The functions ``statistical(rows, spec)``, ... and :data:`CHECKS` keep the earlier
``(rows, spec) -> (passed, figure)`` form; ``rows`` may be dicts of text, as summary.csv
reads.
"""

from __future__ import annotations

from collections.abc import Callable

from rfsim.checks.base import (COMMON_KEYS, KINDS, NONNEGATIVE_KEYS, NUMBER_KEYS,
                               REQUIRED_HINTS, Check, Verdict, chosen_rows, parse, register,
                               select, where_value_ok)
from rfsim.checks.bound import Bound
from rfsim.checks.compare import Compare
from rfsim.checks.context import validate_against
from rfsim.checks.curves import CurveCheck
from rfsim.checks.exact import Exact
from rfsim.checks.monotone import Monotone
from rfsim.checks.rate import Rate
from rfsim.checks.statistical import Statistical
from rfsim.checks.threshold import Threshold
from rfsim.engine.table import SummaryTable, as_table, matches

__all__ = ["Bound", "CHECKS", "COMMON_KEYS", "NONNEGATIVE_KEYS", "NUMBER_KEYS",
           "REQUIRED_HINTS", "Check", "Compare", "CurveCheck", "Exact", "KINDS", "Monotone",
           "Rate", "Statistical", "SummaryTable", "Threshold", "Verdict", "bound",
           "chosen_rows", "compare", "evaluate", "exact", "monotone", "parse",
           "perturb_theory", "rate", "register", "register_check", "select", "statistical",
           "threshold", "validate_spec"]


def validate_spec(spec: dict, *, metrics=None, columns=None, values=None,
                  axes=None) -> Check:
    """A [[check]] table is complete and well-typed, before any compute; returns its spec.

    With the experiment's ``metrics``, ``columns`` (parameter names), ``values`` (column ->
    the values it takes) and grid ``axes``, also that it names real metrics and columns and
    selects at least one grid point.
    """
    check = parse(spec)
    if metrics is not None:
        validate_against(check, metrics, columns or [], values or {}, axes or [])
    return check


def evaluate(rows, spec, *, default_name: str = "check") -> Verdict:
    """Run one claim ``spec`` (a [check] table, or a parsed :class:`Check`) on summary rows
    (a SummaryTable, or dicts as summary.csv reads)."""
    check = spec if isinstance(spec, Check) else parse(spec)
    return check.evaluate(rows, default_name=default_name)


def perturb_theory(rows, factor: float):
    """Rows with every finite prediction multiplied by ``factor`` (the check's twin test):
    a SummaryTable for a table, text rows for text rows."""
    if isinstance(rows, SummaryTable):
        return rows.map_theory(factor)
    return as_table(rows).map_theory(factor).text_rows()


def _judge(kind: str) -> Callable[[list[dict], dict], tuple[bool, str]]:
    def judge(rows, spec: dict) -> tuple[bool, str]:
        return parse({**spec, "kind": kind}).judge(as_table(rows))
    judge.__name__ = kind
    judge.__doc__ = f"The {kind} kind as ``(rows, spec) -> (passed, figure)``."
    return judge


CHECKS: dict[str, Callable[[list[dict], dict], tuple[bool, str]]] = {
    kind: _judge(kind) for kind in KINDS}
statistical, exact, monotone, threshold, rate, bound, compare = (
    CHECKS[k] for k in ("statistical", "exact", "monotone", "threshold", "rate", "bound",
                        "compare"))


def register_check(kind: str, fn) -> None:
    """Add a kind: a :class:`Check` subclass, or a function ``(rows, spec) -> (passed,
    figure)`` reading text rows (it accepts every known key)."""
    if isinstance(fn, type) and issubclass(fn, Check):
        fn.kind = kind
        register(fn)
    else:
        register(_function_kind(kind, fn))
    CHECKS[kind] = fn if not isinstance(fn, type) else _judge(kind)


def _function_kind(kind: str, fn) -> type[Check]:
    import dataclasses

    every = [k for k in dict.fromkeys(k for c in KINDS.values() for k in c.keys())
             if k not in ("kind", "name", "metric", "where")]
    cls = dataclasses.make_dataclass(
        f"Function_{kind}", [(k, object, dataclasses.field(default=None)) for k in every],
        bases=(Check,), frozen=True, kw_only=True)
    cls.kind = kind

    def judge(self, table):
        spec = {k: v for k, v in self.__dict__.items() if v is not None or k == "metric"}
        return fn(table.text_rows(), {**spec, "kind": kind})

    cls.judge = judge
    return cls


# names of the earlier single module (rfsim.check)
SPEC_KEYS = tuple(dict.fromkeys(k for c in KINDS.values() for k in c.keys()))
_where_value_ok = where_value_ok
_same = matches
