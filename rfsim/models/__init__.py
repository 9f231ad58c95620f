"""Model registry: each family is a config + ``init(keys, cfg) -> state`` +
``simulate(keys, cfg, state)`` + ``predict(cfg, state)``, always these shapes.

``get_model("linear-ridge")`` returns the :class:`Model`; the sweep engine, the
checks, the CLI and the plots know only this contract (see ARCHITECTURE.md and README's
"model contract").  ``keys`` is a :class:`~rfsim.engine.keys.SeedKeys` ``(data, model)``.
Families registered with the earlier shapes (``simulate(key, cfg)``, ``predict(cfg)``,
``init(key, cfg)`` with ``simulate(key, cfg, state)``) are adapted here: their one key is
``keys.data``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping

from rfsim.engine.keys import SeedKeys
from rfsim.models import _external
from rfsim.validation import closest

__all__ = ["Model", "SeedKeys", "register", "unregister", "available", "get_model",
           "is_external"]
is_external = _external.is_external  # "module:attribute" / "file.py:attribute" names


@dataclasses.dataclass(frozen=True)
class Model:
    """A registered model family.

    The three callables always have these shapes (:func:`register` adapts earlier ones):

    init(keys, cfg) -> state: what simulate and predict share for one static group (frozen
    weights, a teacher, a fixed training set), computed once per group from the group's
    :class:`SeedKeys` (:func:`rfsim.engine.keys.state_keys`) and passed to both as jit
    arguments, never baked into a compiled program as constants; default: state ``None``.
    simulate(keys, cfg, state) -> dict[str, Array]: one seed, pure, jit/vmap-able.
    predict(cfg, state) -> dict[str, Array]: the closed form for (some of) the metrics;
    jitted unless ``predict_jit=False`` (scipy-based theory: then it runs per point on the
    host with a concrete config and state); ``None`` when the family has no theory.
    axes: metric -> axis name for metrics that are curves (e.g. ``{"loss": "step"}``);
    ``coords(cfg) -> {axis: 1-D array}`` gives each axis's coordinates from the config's
    static fields.  simulate/predict return such a metric with shape ``(len(coords),)``;
    the tables get one row per coordinate with the axis as a column.
    metrics: the names simulate returns, in column order.
    legacy: the family was registered with the earlier shapes (its one key is ``keys.data``).
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
    legacy: bool = False

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

    @property
    def stateful(self) -> bool:
        """Does the family have an ``init`` of its own (else the default: state ``None``)?"""
        return self.init is not _no_state


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
    """Register a family and return its :class:`Model` (callables in the fixed shapes).

    ``metrics``: the metric names, each declared once: a mapping ``{name: axis or None}``
    (``{"loss": "step", "final": None}``) or a sequence of names, with ``axes={name: axis}``
    for the curves (the earlier form).  ``simulate``/``predict``/``init`` may have the
    earlier shapes; see :func:`adapt`.
    """
    names, axes = _metrics_and_axes(name, metrics, axes)
    legacy = _is_legacy(simulate)
    sim, pred, ini = adapt(simulate, predict, init, legacy=legacy)
    model = Model(name, config, sim, pred, names, description, memory, ini,
                  bool(predict_jit), axes, coords,
                  None if predicts is None else tuple(predicts), legacy)
    _REGISTRY[name] = model
    return model


def _metrics_and_axes(name, metrics, axes) -> tuple[tuple[str, ...], dict]:
    if isinstance(metrics, Mapping):
        if axes:
            raise ValueError(f"model {name!r}: metrics is a mapping {{name: axis}}, which "
                             "already declares the axes; drop axes=")
        return tuple(metrics), {m: a for m, a in metrics.items() if a is not None}
    if isinstance(metrics, str):
        raise ValueError(f"model {name!r}: metrics must be a sequence of names or a mapping "
                         f"{{name: axis or None}}, got the string {metrics!r}")
    return tuple(metrics), dict(axes or {})


def _positional(fn: Callable) -> list[inspect.Parameter]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: take it as new-shaped
        return []
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _is_legacy(simulate: Callable) -> bool:
    """The earlier shapes: ``simulate(key, cfg)`` (two positional parameters), or a
    ``simulate(key, cfg, state)`` whose first parameter is named ``key`` (the new shape names
    it ``keys``)."""
    params = _positional(simulate)
    return len(params) == 2 or (len(params) >= 1 and params[0].name == "key")


def _data_key(keys):
    """``keys.data`` for :class:`SeedKeys`; a plain key passes through (direct calls)."""
    return keys.data if isinstance(keys, SeedKeys) else keys


def _no_state(keys, cfg):
    """The default ``init``: no state."""
    return None


def adapt(simulate, predict=None, init=None, *, legacy: bool):
    """``(simulate, predict, init)`` in the fixed shapes.

    A legacy family's callables receive ``keys.data`` as their one key (a plain key passed
    directly still works), its ``simulate``/``predict`` get the state only if it has an
    ``init``; ``predict(cfg)`` with one positional parameter never gets it.
    """
    ini = _no_state if init is None else init
    if legacy:
        ini = _no_state if init is None else _legacy_init(init)
        simulate = _legacy_simulate(simulate, stateful=init is not None)
    if predict is not None and len(_positional(predict)) == 1:
        predict = _stateless_predict(predict)
    return simulate, predict, ini


def _legacy_simulate(fn, *, stateful: bool):
    def simulate(keys, cfg, state=None):
        return fn(_data_key(keys), cfg, state) if stateful else fn(_data_key(keys), cfg)
    return simulate


def _legacy_init(fn):
    def init(keys, cfg):
        return fn(_data_key(keys), cfg)
    return init


def _stateless_predict(fn):
    def predict(cfg, state=None):
        return fn(cfg)
    return predict


def unregister(name: str) -> None:
    """Remove a registered family (tests register toy families and clean up after)."""
    _REGISTRY.pop(name, None)


def _load_builtins() -> None:
    for module in _builtin_modules():
        importlib.import_module(module)
    _load_entry_points()


ENTRY_POINT_GROUP = "rfsim.models"
_entry_points_loaded = False


def _load_entry_points() -> None:
    """Families installed by other packages: entry points of the group ``rfsim.models``
    (``[project.entry-points."rfsim.models"] my-family = "my_pkg.family:MODEL"``), each a
    :class:`Model` or an object with the contract, registered under the entry point's name.
    Loaded once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    from rfsim.models._external import as_model

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            as_model(ep.name, ep.load())
        except Exception as e:  # noqa: BLE001  (another package's bug must not stop rfsim)
            import warnings

            warnings.warn(f"entry point {ep.name!r} = {ep.value!r} of group "
                          f"{ENTRY_POINT_GROUP!r} is not a family, skipped: "
                          f"{type(e).__name__}: {e}", stacklevel=2)


def available() -> list[str]:
    """The registered family names (built-in, installed by entry point, registered by the
    caller); families from outside named ``"module:attribute"`` or ``"file.py:attribute"``
    need not be listed: :func:`get_model` loads them."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_model(name: str, *, base=None) -> Model:
    """The family called ``name``: a registered name, or a family from outside the package,
    ``"module:attribute"`` or ``"path/to/file.py:attribute"`` (a relative path from ``base``,
    the experiment file's directory, else from the current directory; see
    :mod:`rfsim.models._external`), loaded and registered under ``name``."""
    _load_builtins()
    if name in _REGISTRY and not (base is not None and _external.is_external(name)):
        return _REGISTRY[name]
    if _external.is_external(name):
        return _external.as_model(name, _external.load(name, base=base))
    raise ValueError(
        f"model must be one of {sorted(_REGISTRY)}, got {name!r}{closest(name, _REGISTRY)}; "
        f"{_external.SYNTAX}")
