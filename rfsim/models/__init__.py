"""Model registry: each family is a config + ``simulate(key, cfg)`` + ``predict(cfg)``.

``get_model("linear-ridge")`` returns the :class:`Model`; the sweep engine, the
checks, the CLI and the plots know only this contract (see ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from rfsim.validation import closest


@dataclasses.dataclass(frozen=True)
class Model:
    """A registered model family.

    simulate(key, cfg[, state]) -> dict[str, scalar Array]: one seed, pure, jit/vmap-able.
    predict(cfg[, state]) -> dict[str, scalar Array]: the closed form for (some of) the
    metrics; jitted unless ``predict_jit=False`` (scipy-based theory: then it runs per point
    on the host with a concrete config and state).
    axes: metric -> axis name for metrics that are curves (e.g. ``{"loss": "step"}``);
    ``coords(cfg) -> {axis: 1-D array}`` gives each axis's coordinates from the config's
    static fields.  simulate/predict return such a metric with shape ``(len(coords),)``;
    the tables get one row per coordinate with the axis as a column.
    init(key, cfg) -> state: optional; what simulate and predict share for one static group
    (frozen weights, a teacher), computed once per group from the group's state key
    (:func:`rfsim.engine.keys.state_key`) and passed to both as jit arguments, never baked into a
    compiled program as constants.
    metrics: the names simulate returns, in column order.
    memory(cfg) -> int: optional; floats of one seed's peak working set (checked against
    available memory before any compute and printed by ``--dry-run``, see rfsim.engine.resources;
    tests/test_memory_estimates.py holds each family's estimate to the measured peak).
    predicts: the metrics ``predict`` returns, declared (default: traced from a jitted
    predict with ``jax.eval_shape``; a host predict should declare them, so that a claim
    on a metric without a prediction is refused before compute).  The engine checks the
    declaration against what predict returns.
    """

    name: str
    config: type
    simulate: Callable
    predict: Callable | None
    metrics: tuple[str, ...]
    description: str = ""
    memory: Callable | None = None
    init: Callable | None = None
    predict_jit: bool = True
    axes: dict = dataclasses.field(default_factory=dict, hash=False)
    coords: Callable | None = None
    predicts: tuple[str, ...] | None = None

    def __post_init__(self):
        for m, a in self.axes.items():
            if m not in self.metrics:
                raise ValueError(f"model {self.name!r}: axes names metric {m!r}, which is not "
                                 f"one of its metrics {list(self.metrics)}")
            if not isinstance(a, str) or not a:
                raise ValueError(f"model {self.name!r}: the axis of {m!r} must be a name")
        if self.axes and self.coords is None:
            raise ValueError(f"model {self.name!r}: metrics along axes need coords(cfg)")
        if self.predicts is not None:
            unknown = [m for m in self.predicts if m not in self.metrics]
            if unknown:
                raise ValueError(f"model {self.name!r}: predicts names {unknown}, which are "
                                 f"not among its metrics {list(self.metrics)}")
            if self.predict is None and self.predicts:
                raise ValueError(f"model {self.name!r}: predicts names metrics but it has no "
                                 "predict")

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.axes.values()))


_REGISTRY: dict[str, Model] = {}



def _builtin_modules() -> list[str]:
    """Every module in this package registers its family on import: a new family is a new
    file here, with no list to edit."""
    import pkgutil

    return [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)
            if not m.name.startswith("_")]


def register(name, config, simulate, predict=None, *, metrics, description="",
             memory=None, init=None, predict_jit=True, axes=None, coords=None,
             predicts=None) -> Model:
    model = Model(name, config, simulate, predict, tuple(metrics), description, memory, init,
                  bool(predict_jit), dict(axes or {}), coords,
                  None if predicts is None else tuple(predicts))
    _REGISTRY[name] = model
    return model


def _load_builtins() -> None:
    for module in _builtin_modules():
        importlib.import_module(module)


def unregister(name: str) -> None:
    """Remove a registered family (tests register toy families and clean up after)."""
    _REGISTRY.pop(name, None)


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_model(name: str) -> Model:
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(
            f"model must be one of {sorted(_REGISTRY)}, got {name!r}{closest(name, _REGISTRY)}"
        )
    return _REGISTRY[name]
