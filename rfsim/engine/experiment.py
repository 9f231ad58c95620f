"""Experiment files: one TOML per figure or claim.

::

    model = "linear-ridge"     # a registered family
    seeds = 32                 # seeds per grid point
    root_seed = 0              # optional
    description = "..."        # optional
    [params]                   # fixed values
    d = 200
    [grid]                     # swept axes (cartesian product, in file order)
    n = [100, 200, 400]
    ridge = [0.0, 0.1]
    [[check]]                  # optional claims (a single [check] table also works)
    kind = "statistical"
    metric = "excess_risk"
    max_abs_z = 4.0
    rel_tol = 0.03
    [plot]                     # optional figure: x axis, series, metric, where, log axes
    x = "n"
    [quick]                    # optional overrides for --quick and `rfsim check`
    seeds = 8

Every error names the field, the value and what is allowed.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any

from rfsim.validation import closest
from rfsim.config import field_names, make_config  # noqa: F401  (make_config: re-export)
from rfsim.engine.keys import MAX_SEEDS, check_root_seed
from rfsim.models import Model, available, get_model, is_external
from rfsim.engine.resources import MAX_GRID_POINTS, MAX_TABLE_ROWS

TOP_LEVEL = ("model", "models", "seeds", "root_seed", "description", "params", "per_model",
             "grid", "check", "plot", "quick")
QUICK_KEYS = ("seeds", "params", "grid", "check")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment; ``model`` is its (first) family, ``models`` all of them when it names
    several (``models = ["a", "b"]``: one shared grid, a ``model`` column in every table),
    ``per_model`` fixed values that only one family has."""

    model: str
    params: dict[str, Any]
    grid: dict[str, list]
    seeds: int
    root_seed: int = 0
    description: str = ""
    checks: tuple[dict, ...] = ()
    plot: dict | None = None
    quick: dict | None = None
    name: str = "experiment"
    source: str = ""  # the TOML text, verbatim
    models: tuple[str, ...] = ()
    per_model: dict[str, dict] = dataclasses.field(default_factory=dict)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.models) or (self.model,)

    def to_dict(self) -> dict:
        """The resolved experiment (after overrides), JSON-serializable."""
        d = dataclasses.asdict(self)
        d.pop("source")
        d["checks"] = list(self.checks)
        d["models"] = list(self.models)
        if not self.models:  # single-family experiments keep their old form
            d.pop("models")
            d.pop("per_model")
        return d


class ExperimentError(ValueError):
    """A malformed or invalid experiment; the message is meant for the user verbatim."""


def _parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{origin}: malformed TOML: {e}") from None


def load_experiment(path: str | Path | None = None, *, text: str | None = None,
                    name: str | None = None, validate: bool = True) -> Experiment:
    """Read an experiment from a TOML file (or ``text``) and validate it (``validate=False``:
    its structure only, the configs being constructed once, in planning)."""
    if text is None:
        path = Path(path)
        if path.is_dir():
            raise ExperimentError(f"{str(path)!r} is a directory, not an experiment file")
        if path.exists() and not path.is_file():
            raise ExperimentError(f"{str(path)!r} is not a regular file (an experiment TOML)")
        if not path.is_file():
            raise ExperimentError(f"experiment file {str(path)!r} does not exist")
        text = path.read_text()
        name = name or path.stem
    raw = _parse_toml(text, str(path) if path else "experiment")
    return from_dict(raw, name=name or "experiment", source=text, validate=validate,
                     base=path.parent if path else None)


def _table(where: str, value) -> dict:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be a table, got {value!r}")
    return value


def _checks(where: str, value) -> list[dict]:
    checks = [value] if isinstance(value, dict) else value
    if not isinstance(checks, list):
        raise ExperimentError(f"{where} must be a table or a list of tables ([[check]]), "
                              f"got {value!r}")
    for c in checks:
        if not isinstance(c, dict):
            raise ExperimentError(f"each [[check]] must be a table, got {c!r}")
    return [dict(c) for c in checks]


def from_dict(raw: dict, *, name: str = "experiment", source: str = "",
              validate: bool = True, base: Path | None = None) -> Experiment:
    """An experiment from its table; ``base``: where a family named by a relative file path
    (``model = "family.py:toy"``) is looked up (the experiment file's directory; default:
    the current directory)."""
    if not isinstance(raw, dict):
        raise ExperimentError(f"an experiment must be a table, got {raw!r}")
    for key in raw:
        if key not in TOP_LEVEL:
            raise ExperimentError(
                f"unknown top-level key {key!r}{closest(key, TOP_LEVEL)}; allowed: "
                + ", ".join(TOP_LEVEL)
            )
    if ("model" in raw) == ("models" in raw):
        raise ExperimentError("experiment needs a `model = \"...\"` line, or `models = "
                              "[\"...\", ...]` for several families (not both)")
    models = raw.get("models", [raw.get("model")])
    if not isinstance(models, list) or not models or not all(
            isinstance(m, str) for m in models):
        raise ExperimentError(f"models must be a non-empty list of model names, got {models!r}")
    if "model" in raw and not isinstance(raw["model"], str):
        raise ExperimentError(f"model must be a string, got {raw['model']!r}")
    if len(set(models)) != len(models):
        raise ExperimentError(f"models lists a family twice: {models!r}")
    model = models[0]
    known = available()
    for m in models:  # before [per_model]: a typo in models must not be echoed as the fix
        key = "models" if "models" in raw else "model"
        if is_external(m):  # "module:attribute" or "file.py:attribute": loaded, registered
            try:
                get_model(m, base=base)
            except ValueError as e:
                raise ExperimentError(f"{key}: {e}") from None
            continue
        if m not in known:
            raise ExperimentError(f"{key} names an unknown family {m!r}{closest(m, known)}; "
                                  f"families: {', '.join(known)}")
    per_model = _table("[per_model]", raw.get("per_model", {}))
    for family, table in per_model.items():  # not `name`: that is the experiment's name
        if family not in models:
            raise ExperimentError(f"[per_model.{family}] names a family that is not in models "
                                  f"{models}" + closest(family, models))
        _table(f"[per_model.{family}]", table)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ExperimentError(f"description must be a string, got {description!r}")
    params = _table("[params]", raw.get("params", {}))
    grid = _table("[grid]", raw.get("grid", {}))
    plot = _table("[plot]", raw["plot"]) if "plot" in raw else None
    quick_table = _table("[quick]", raw["quick"]) if "quick" in raw else None
    if quick_table is not None:
        _validate_quick_structure(quick_table)
    exp = Experiment(
        model=model,
        params=dict(params),
        grid=dict(grid),  # axes checked in validate_experiment
        seeds=raw.get("seeds", 16),
        root_seed=raw.get("root_seed", 0),
        description=description,
        checks=tuple(_checks("check", raw.get("check", []))),
        plot=dict(plot) if plot is not None else None,
        quick=dict(quick_table) if quick_table is not None else None,
        name=name,
        source=source,
        models=tuple(models) if "models" in raw else (),
        per_model={k: dict(v) for k, v in per_model.items()},
    )
    (validate_experiment if validate else check_structure)(exp)
    if exp.quick is not None:  # a broken [quick] table is an error now, not with --quick
        quick(exp, validate=validate)
    return exp


def _validate_quick_structure(q: dict) -> None:
    for key, value in q.items():
        if key not in QUICK_KEYS:
            raise ExperimentError(f"unknown key {key!r} in [quick]{closest(key, QUICK_KEYS)}; "
                                  f"allowed: {', '.join(QUICK_KEYS)}")
        if key in ("params", "grid"):
            _table(f"[quick] {key}", value)
        if key == "check":
            _checks("[quick] check", value)


def _check_count(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExperimentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ExperimentError(f"{name} must be an integer <= {maximum}, got {value!r}")


def _grid_size(exp: Experiment) -> int:
    size = 1
    for values in exp.grid.values():
        size *= len(values)
    return size


def _same_value(v):
    """Numbers compared as numbers (1 == 1.0, -0.0 == 0.0); lists element by element."""
    if isinstance(v, bool) or not isinstance(v, (int, float, list)):
        return v
    if isinstance(v, list):
        return tuple(_same_value(x) for x in v)
    return float(v) + 0.0


def _column_values(exp: Experiment, models: list[Model]) -> dict[str, list]:
    """Each parameter -> the values it takes in the grid (fixed, swept or default)."""
    out: dict[str, list] = {}
    for model in models:
        fixed = {**exp.params, **exp.per_model.get(model.name, {})}
        for f in dataclasses.fields(model.config):
            if f.name in exp.grid:
                vals = list(exp.grid[f.name])
            elif f.name in fixed:
                vals = [fixed[f.name]]
            elif f.default is not dataclasses.MISSING:
                vals = [f.default]
            else:
                continue
            out.setdefault(f.name, [])
            out[f.name] += [v for v in vals if v not in out[f.name]]
    if exp.models:
        out["model"] = list(exp.models)
    return out


def experiment_columns(exp: Experiment) -> tuple[list[str], list[str], tuple[str, ...]]:
    """(parameter columns, axis columns, metrics) of the experiment's tables: the union over
    its families, with a leading ``model`` column when it has several."""
    models = [get_model(m) for m in exp.model_names]
    columns = (["model"] if exp.models else []) + list(dict.fromkeys(
        n for m in models for n in field_names(m.config)))
    axes = list(dict.fromkeys(a for m in models for a in m.axis_names))
    metrics = tuple(dict.fromkeys(k for m in models for k in m.metrics))
    return columns, axes, metrics


def validate_experiment(exp: Experiment) -> Model:
    """Everything before compute: the structure (:func:`check_structure`) and every grid
    point's config constructed (:func:`planned_points`).  Returns the (first) family.

    Done once per experiment: the results are kept by content (the same experiment after
    a no-op ``--set``, or its quick variant met again in planning, is not validated
    again)."""
    models = check_structure(exp)
    planned_points(exp)
    return models[0]


_MEMO_SIZE = 8
_structures: collections.OrderedDict = collections.OrderedDict()
_plans: collections.OrderedDict = collections.OrderedDict()
_parsed: collections.OrderedDict = collections.OrderedDict()  # [[check]] text -> its spec


def _memo(cache: collections.OrderedDict, key, make, size: int = _MEMO_SIZE):
    """``make()``, kept by ``key`` (the last ``size``)."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = make()
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def _content_key(exp: Experiment, *fields: str) -> tuple:
    """What the validation depends on: the named fields' content, the families (by
    identity: a test may register another family under a name) and the float width."""
    import jax

    models = tuple(get_model(m) for m in exp.model_names)
    text = json.dumps({f: getattr(exp, f) for f in fields}, sort_keys=True, default=repr)
    return text, tuple(id(m) for m in models), bool(jax.config.jax_enable_x64)


STRUCTURE_FIELDS = ("model", "models", "params", "grid", "per_model", "seeds", "root_seed",
                    "checks", "plot")
PLAN_FIELDS = ("model", "models", "params", "grid", "per_model")


def check_structure(exp: Experiment) -> list[Model]:
    """Seeds, families, parameter names, grid axes and sizes, the [plot] table and every
    [[check]] (its kind's keys and types, the metrics, columns and grid values it names),
    without constructing a config.  Returns the families."""
    key = _content_key(exp, *STRUCTURE_FIELDS)
    return list(_memo(_structures, key, lambda: _check_structure(exp))[0])


def experiment_checks(exp: Experiment) -> tuple:
    """The experiment's [[check]] tables as validated check specs (:mod:`rfsim.checks`)."""
    key = _content_key(exp, *STRUCTURE_FIELDS)
    return _memo(_structures, key, lambda: _check_structure(exp))[1]


def _check_structure(exp: Experiment):
    models = [get_model(m) for m in exp.model_names]
    _check_count("seeds", exp.seeds, 1, MAX_SEEDS)
    try:
        check_root_seed(exp.root_seed)
    except ValueError as e:
        raise ExperimentError(str(e)) from None
    for model in models:
        names = field_names(model.config)
        for key in list(exp.params) + list(exp.grid):
            if key not in names:
                where = ("; a value for one family only goes in [per_model.<family>]"
                         if exp.models else "")
                raise ExperimentError(
                    f"unknown parameter {key!r} for model {model.name!r}{closest(key, names)}; "
                    f"valid parameters: {', '.join(names)}{where}")
        for key in exp.per_model.get(model.name, {}):
            if key not in names:
                raise ExperimentError(
                    f"[per_model.{model.name}]: unknown parameter {key!r}{closest(key, names)}; "
                    f"valid parameters: {', '.join(names)}")
            if key in exp.grid or key in exp.params:
                raise ExperimentError(f"parameter {key!r} appears in [per_model.{model.name}] "
                                      "and in [params] or [grid]")
    for axis, values in exp.grid.items():
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"grid axis {axis} must be a non-empty list, got {values!r}")
        seen = set()
        for v in values:
            text = repr(_same_value(v))
            if text in seen:
                raise ExperimentError(f"grid axis {axis} lists {v!r} twice")
            seen.add(text)
    size = _grid_size(exp) * len(models)
    if size > MAX_GRID_POINTS:
        shape = " x ".join(f"{len(v)} {k}" for k, v in exp.grid.items())
        raise ExperimentError(f"the grid has {size:,} points ({shape}); at most "
                              f"{MAX_GRID_POINTS:,} are allowed: split it into several "
                              "experiments")
    if size * exp.seeds > MAX_TABLE_ROWS:
        raise ExperimentError(f"{size:,} grid points x {exp.seeds:,} seeds = "
                              f"{size * exp.seeds:,} rows of sim.csv; at most "
                              f"{MAX_TABLE_ROWS:,} are allowed: use fewer seeds or points")
    columns, axis_cols, metrics = experiment_columns(exp)
    _validate_plot(exp, columns + axis_cols, metrics)
    both = set(exp.params) & set(exp.grid)
    if both:
        raise ExperimentError(f"parameter(s) {sorted(both)} appear in both [params] and [grid]")
    from rfsim.checks import parse, validate_against

    values = _column_values(exp, models)
    axes = list(exp.grid) + axis_cols + (["model"] if exp.models else [])
    checks = []
    for spec in exp.checks:
        text = json.dumps(spec, sort_keys=True, default=repr) if isinstance(spec, dict) else ""
        check = _memo(_parsed, text, lambda spec=spec: parse(spec), 64) if text else parse(spec)
        validate_against(check, metrics, columns + axis_cols, values, axes)
        checks.append(check)
    return tuple(models), tuple(checks)


def planned_points(exp: Experiment) -> list[tuple[Model, list]]:
    """Every family's full grid as validated :class:`rfsim.engine.sweep.Point`\\ s (each
    config constructed once per experiment: :func:`rfsim.engine.sweep.plan`)."""
    from rfsim.engine.sweep import plan

    def make():
        models = check_structure(exp)
        return [(m, plan(m, grid_points(exp, m.name))) for m in models]

    return _memo(_plans, _content_key(exp, *PLAN_FIELDS), make)


PLOT_KEYS = ("x", "metric", "series", "where", "logx", "logy", "title", "xlabel", "ylabel",
             "legend")
LEGEND_LOCATIONS = ("best", "upper right", "upper left", "lower left", "lower right", "right",
                    "center left", "center right", "lower center", "upper center", "center")


def _validate_plot(exp: Experiment, names: list[str], metrics: tuple[str, ...]) -> None:
    if exp.plot is None:
        return
    for key, value in exp.plot.items():
        if key not in PLOT_KEYS:
            raise ExperimentError(f"unknown [plot] key {key!r}{closest(key, PLOT_KEYS)}; "
                                  f"allowed: {', '.join(PLOT_KEYS)}")
        if key in ("logx", "logy") and not isinstance(value, bool):
            raise ExperimentError(f"plot {key} must be true or false, got {value!r}")
        if key in ("x", "metric", "title", "xlabel", "ylabel", "legend") \
                and not isinstance(value, str):
            raise ExperimentError(f"plot {key} must be a string, got {value!r}")
    legend = exp.plot.get("legend", "best")
    if legend not in LEGEND_LOCATIONS:
        raise ExperimentError(f"plot legend must be one of {list(LEGEND_LOCATIONS)}, got "
                              f"{legend!r}" + closest(legend, LEGEND_LOCATIONS))
    x = exp.plot.get("x", next(iter(exp.grid), None))
    if x not in names:
        raise ExperimentError(f"plot x must be a parameter or axis of "
                              f"{' / '.join(exp.model_names)}, got {x!r}"
                              + closest(str(x), names))
    metric = exp.plot.get("metric")
    if metric is not None and metric not in metrics:
        raise ExperimentError(f"plot metric must be one of {list(metrics)}, got "
                              f"{metric!r}" + closest(str(metric), metrics))
    series = exp.plot.get("series", [])
    if not isinstance(series, list) or not all(isinstance(s, str) for s in series):
        raise ExperimentError(f"plot series must be a list of parameter names, got {series!r}")
    for s in series:
        if s not in names:
            raise ExperimentError(f"plot series must name parameters, got {s!r}"
                                  + closest(str(s), names))
        if s == x:
            raise ExperimentError(f"plot series {s!r} is the x axis: each curve would be one "
                                  "point; list the other columns")
    if x == "model":
        raise ExperimentError("plot x must be a numeric parameter or axis, got 'model' (the "
                              f"families {', '.join(exp.model_names)} are always series)")
    where = exp.plot.get("where", {})
    if not isinstance(where, dict):
        raise ExperimentError(f"plot where must be a table {{param = value or [values]}}, got "
                              f"{where!r}")
    from rfsim.check import _where_value_ok

    for k, v in where.items():
        if k not in names:
            raise ExperimentError(f"plot where names {k!r}, which is not a parameter"
                                  + closest(k, names) + f"; parameters: {', '.join(names)}")
        if not _where_value_ok(v):
            raise ExperimentError(f"plot where {k} must be a value or a non-empty list of "
                                  f"values, got {v!r}")


def grid_points(exp: Experiment, model: str | None = None) -> list[dict[str, Any]]:
    """Fixed params (and ``model``'s per-model values) merged with each point of the
    cartesian product, in file order."""
    axes = list(exp.grid)
    combos = itertools.product(*(exp.grid[a] for a in axes)) if axes else [()]
    fixed = {**exp.params, **exp.per_model.get(model or exp.model, {})}
    return [{**fixed, **dict(zip(axes, combo))} for combo in combos]


def parse_value(text: str):
    """A --set value: TOML syntax (1e-3, [1, 2], "relu"), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(exp: Experiment, sets: list[str] = (), *, seeds: int | None = None,
                    root_seed: int | None = None, validate: bool = True) -> Experiment:
    """``--set k=v``: a list value makes k a grid axis, a scalar fixes it.  For list-valued
    parameters (``widths``) a list of numbers fixes it and a list of lists sweeps it."""
    params, grid = dict(exp.params), dict(exp.grid)
    list_valued = {f.name for m in exp.model_names for f in dataclasses.fields(
        get_model(m).config) if "tuple" in str(f.type)}
    for item in sets:
        if "=" not in item:
            raise ExperimentError(f"--set expects key=value, got {item!r}")
        key, text = (s.strip() for s in item.split("=", 1))
        value = parse_value(text)
        params.pop(key, None)
        grid.pop(key, None)
        sweep = isinstance(value, list) and (
            key not in list_valued or all(isinstance(v, list) for v in value))
        if sweep:
            grid[key] = value
        else:
            params[key] = value
    new = dataclasses.replace(
        exp, params=params, grid=grid,
        seeds=exp.seeds if seeds is None else seeds,
        root_seed=exp.root_seed if root_seed is None else root_seed,
    )
    (validate_experiment if validate else check_structure)(new)
    return new


def quick(exp: Experiment, *, validate: bool = True) -> Experiment:
    """Apply the [quick] table (fewer seeds, a smaller grid); default: at most 8 seeds."""
    q = exp.quick or {}
    _validate_quick_structure(q)
    params = {**exp.params, **q.get("params", {})}
    grid = {**exp.grid, **q.get("grid", {})}
    for k in q.get("params", {}):
        grid.pop(k, None)
    for k in q.get("grid", {}):
        params.pop(k, None)
    checks = _checks("[quick] check", q["check"]) if "check" in q else exp.checks
    new = dataclasses.replace(
        exp, params=params, grid=grid, seeds=q.get("seeds", min(exp.seeds, 8)),
        checks=tuple(checks),
    )
    try:
        (validate_experiment if validate else check_structure)(new)
    except ValueError as e:
        raise ExperimentError(f"[quick]: {e}") from None
    return new


def validate_planned(exp, planned) -> None:
    """Checks and the plot against the planned grid: rfsim.engine.planned.validate_planned."""
    from rfsim.engine.planned import validate_planned as validate

    validate(exp, planned)
