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
    [plot]                     # optional figure: x axis, series, metric, log axes
    x = "n"
    [quick]                    # optional overrides for --quick and `rfsim check`
    seeds = 8

Every error names the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

from rfsim.activations import closest
from rfsim.config import build_config, field_names, param_fields
from rfsim.models import Model, get_model

TOP_LEVEL = ("model", "seeds", "root_seed", "description", "params", "grid", "check", "plot",
             "quick")
QUICK_KEYS = ("seeds", "params", "grid", "check")


@dataclasses.dataclass(frozen=True)
class Experiment:
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

    def to_dict(self) -> dict:
        """The resolved experiment (after overrides), JSON-serializable."""
        d = dataclasses.asdict(self)
        d.pop("source")
        d["checks"] = list(self.checks)
        return d


class ExperimentError(ValueError):
    """A malformed or invalid experiment; the message is meant for the user verbatim."""


def _parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{origin}: malformed TOML: {e}") from None


def load_experiment(path: str | Path | None = None, *, text: str | None = None,
                    name: str | None = None) -> Experiment:
    """Read an experiment from a TOML file (or ``text``) and validate its structure."""
    if text is None:
        path = Path(path)
        if not path.is_file():
            raise ExperimentError(f"experiment file {str(path)!r} does not exist")
        text = path.read_text()
        name = name or path.stem
    raw = _parse_toml(text, str(path) if path else "experiment")
    return from_dict(raw, name=name or "experiment", source=text)


def from_dict(raw: dict, *, name: str = "experiment", source: str = "") -> Experiment:
    for key in raw:
        if key not in TOP_LEVEL:
            raise ExperimentError(
                f"unknown top-level key {key!r}{closest(key, TOP_LEVEL)}; allowed: "
                + ", ".join(TOP_LEVEL)
            )
    if "model" not in raw:
        raise ExperimentError("experiment needs a `model = \"...\"` line")
    model = raw["model"]
    if not isinstance(model, str):
        raise ExperimentError(f"model must be a string, got {model!r}")
    seeds = raw.get("seeds", 16)
    root_seed = raw.get("root_seed", 0)
    checks = raw.get("check", [])
    if isinstance(checks, dict):
        checks = [checks]
    grid = raw.get("grid", {})
    for section, value in (("params", raw.get("params", {})), ("grid", grid),
                           ("plot", raw.get("plot", {})), ("quick", raw.get("quick", {}))):
        if not isinstance(value, dict):
            raise ExperimentError(f"[{section}] must be a table, got {value!r}")
    exp = Experiment(
        model=model,
        params=dict(raw.get("params", {})),
        grid=dict(grid),  # axes checked in validate_experiment
        seeds=seeds,
        root_seed=root_seed,
        description=str(raw.get("description", "")),
        checks=tuple(dict(c) for c in checks),
        plot=dict(raw["plot"]) if "plot" in raw else None,
        quick=dict(raw["quick"]) if "quick" in raw else None,
        name=name,
        source=source,
    )
    validate_experiment(exp)
    return exp


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExperimentError(f"{name} must be an integer >= {minimum}, got {value!r}")


def validate_experiment(exp: Experiment) -> Model:
    """Structural checks + every grid point's config constructed (validated) before compute."""
    _check_count("seeds", exp.seeds, 1)
    _check_count("root_seed", exp.root_seed, 0)
    model = get_model(exp.model)
    names = field_names(model.config)
    for key in list(exp.params) + list(exp.grid):
        if key not in names:
            raise ExperimentError(
                f"unknown parameter {key!r} for model {exp.model!r}{closest(key, names)}; "
                f"valid parameters: {', '.join(names)}"
            )
    for axis, values in exp.grid.items():
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"grid axis {axis} must be a non-empty list, got {values!r}")
    _validate_plot(exp, model)
    both = set(exp.params) & set(exp.grid)
    if both:
        raise ExperimentError(f"parameter(s) {sorted(both)} appear in both [params] and [grid]")
    from rfsim.check import validate_spec

    for spec in exp.checks:
        validate_spec(spec)
        if spec["metric"] not in model.metrics:
            raise ExperimentError(f"check metric must be one of {list(model.metrics)}, got "
                                  f"{spec['metric']!r}" + closest(spec["metric"], model.metrics))
    for point in grid_points(exp):
        make_config(model, point)
    return model


PLOT_KEYS = ("x", "metric", "series", "logx", "logy", "title", "xlabel", "ylabel", "legend")


def _validate_plot(exp: Experiment, model: Model) -> None:
    if exp.plot is None:
        return
    names = field_names(model.config)
    for key, value in exp.plot.items():
        if key not in PLOT_KEYS:
            raise ExperimentError(f"unknown [plot] key {key!r}{closest(key, PLOT_KEYS)}; "
                                  f"allowed: {', '.join(PLOT_KEYS)}")
    x = exp.plot.get("x", next(iter(exp.grid), None))
    if x not in names:
        raise ExperimentError(f"plot x must be a parameter of {exp.model!r}, got {x!r}"
                              + closest(str(x), names))
    metric = exp.plot.get("metric")
    if metric is not None and metric not in model.metrics:
        raise ExperimentError(f"plot metric must be one of {list(model.metrics)}, got "
                              f"{metric!r}" + closest(str(metric), model.metrics))
    for s in exp.plot.get("series", []):
        if s not in names:
            raise ExperimentError(f"plot series must name parameters, got {s!r}"
                                  + closest(str(s), names))


def grid_points(exp: Experiment) -> list[dict[str, Any]]:
    """Fixed params merged with each point of the cartesian product, in file order."""
    axes = list(exp.grid)
    combos = itertools.product(*(exp.grid[a] for a in axes)) if axes else [()]
    return [{**exp.params, **dict(zip(axes, combo))} for combo in combos]


def make_config(model: Model, values: dict[str, Any]):
    """Build (and so validate) a config; dynamic params become floats."""
    floats = set(param_fields(model.config))
    coerced = {}
    for k, v in values.items():
        if k in floats and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        coerced[k] = v
    return build_config(model.config, coerced, model=model.name)


def parse_value(text: str):
    """A --set value: TOML syntax (1e-3, [1, 2], "relu"), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(exp: Experiment, sets: list[str] = (), *, seeds: int | None = None,
                    root_seed: int | None = None) -> Experiment:
    """``--set k=v``: a list value makes k a grid axis, a scalar fixes it.  For list-valued
    parameters (``widths``) a list of numbers fixes it and a list of lists sweeps it."""
    params, grid = dict(exp.params), dict(exp.grid)
    model = get_model(exp.model)
    list_valued = {f.name for f in dataclasses.fields(model.config) if "tuple" in str(f.type)}
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
    validate_experiment(new)
    return new


def quick(exp: Experiment) -> Experiment:
    """Apply the [quick] table (fewer seeds, a smaller grid); default: at most 8 seeds."""
    q = exp.quick or {}
    for key in q:
        if key not in QUICK_KEYS:
            raise ExperimentError(f"unknown key {key!r} in [quick]{closest(key, QUICK_KEYS)}")
    params = {**exp.params, **q.get("params", {})}
    grid = {**exp.grid, **q.get("grid", {})}
    for k in q.get("params", {}):
        grid.pop(k, None)
    for k in q.get("grid", {}):
        params.pop(k, None)
    checks = q.get("check", exp.checks)
    new = dataclasses.replace(
        exp, params=params, grid=grid, seeds=q.get("seeds", min(exp.seeds, 8)),
        checks=tuple([checks] if isinstance(checks, dict) else checks),
    )
    validate_experiment(new)
    return new
