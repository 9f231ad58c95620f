"""Model registry: each family is a config + ``simulate(key, cfg)`` + ``predict(cfg)``.

``get_model("linear-ridge")`` returns the :class:`Model`; the sweep engine, the
checks, the CLI and the plots know only this contract (see ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from rfsim.activations import closest


@dataclasses.dataclass(frozen=True)
class Model:
    """A registered model family.

    simulate(key, cfg) -> dict[str, scalar Array]: one seed, pure, jit/vmap-able.
    predict(cfg) -> dict[str, scalar Array]: the closed form for (some of) the metrics.
    metrics: the names simulate returns, in column order.
    memory(cfg) -> int: optional; floats in the largest array one seed allocates (checked
    against available memory before any compute, see rfsim.resources).
    """

    name: str
    config: type
    simulate: Callable
    predict: Callable | None
    metrics: tuple[str, ...]
    description: str = ""
    memory: Callable | None = None


_REGISTRY: dict[str, Model] = {}

# Families that register themselves on import; imported lazily by get_model/available.
_BUILTIN = (
    "rfsim.models.linear_ridge",
    "rfsim.models.rf_ridge",
    "rfsim.models.rf_gaussian",
    "rfsim.models.deep_rf",
)


def register(name, config, simulate, predict=None, *, metrics, description="",
             memory=None) -> Model:
    model = Model(name, config, simulate, predict, tuple(metrics), description, memory)
    _REGISTRY[name] = model
    return model


def _load_builtins() -> None:
    for module in _BUILTIN:
        importlib.import_module(module)


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
