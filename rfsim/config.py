"""Frozen, self-validating model configs that are JAX pytrees.

A config class is a frozen dataclass decorated with :func:`model_config`.
Fields declared with :func:`static` (sizes, names: ``n``, ``d``, ``activation``)
are pytree *metadata*: changing one recompiles.  Fields declared with
:func:`param` (ridge, noise, scales) are array *leaves*: a grid over them is
vmapped without recompiling.

Fields that define the *data* (sample sizes, input dimension, input distribution, target,
label noise) are marked ``data=True``: the engine derives each seed's data key from the
data-marked static fields only and its model key from the other statics
(:mod:`rfsim.engine.keys`), so families that share their data fields draw the same data
whatever their model sizes.  A config that marks no field has every static data-defining.

Validation runs in ``__post_init__`` (write a ``validate(self)`` method) when
a user constructs a config; pytree unflattening (inside jit/vmap, where the
leaves are tracers) bypasses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

from rfsim.validation import closest
from rfsim.validation import require_scalar

_KIND = "rfsim_kind"


def static(default=dataclasses.MISSING, *, doc: str = "", data: bool = False):
    """A shape-defining field (int, str, tuple): part of the compiled program.

    ``data=True``: it defines the data (n, d, the input distribution, the target): it enters
    the data key, and the model key does not see it.
    """
    return dataclasses.field(default=default, metadata={_KIND: "static", "doc": doc,
                                                        "data": _flag("data", data)})


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def param(default=dataclasses.MISSING, *, doc: str = "", batch: bool = True,
          data: bool = False):
    """A continuous parameter: an array leaf, swept without recompilation.

    ``batch=True`` (default): the sweep engine vmaps it across grid points.  ``batch=False``
    for a parameter that shapes the *data* (e.g. a covariance spectrum): each of its values
    runs as a scalar, so whatever depends only on the data (a factorization) stays unbatched
    and is shared by every batched value (ridge, noise, ...).

    ``data=True`` declares that it shapes the data (label noise, a spectrum's decay); keys
    never hash parameters (points differing only in parameters share their draws), so the
    mark documents the family's data fields (:func:`data_fields`) for its readers and tools.
    """
    return dataclasses.field(default=default,
                             metadata={_KIND: "param", "doc": doc, "batch": batch,
                                       "data": _flag("data", data)})


def static_fields(cls_or_cfg) -> tuple[str, ...]:
    fields = dataclasses.fields(cls_or_cfg)
    return tuple(f.name for f in fields if f.metadata.get(_KIND) == "static")


def param_fields(cls_or_cfg) -> tuple[str, ...]:
    fields = dataclasses.fields(cls_or_cfg)
    return tuple(f.name for f in fields if f.metadata.get(_KIND) != "static")


def unbatched_fields(cls_or_cfg) -> tuple[str, ...]:
    """Parameters declared ``param(..., batch=False)``: scalar per compiled block."""
    fields = dataclasses.fields(cls_or_cfg)
    return tuple(f.name for f in fields
                 if f.metadata.get(_KIND) != "static" and not f.metadata.get("batch", True))


def data_fields(cls_or_cfg) -> tuple[str, ...]:
    """Every field declared ``data=True`` (statics and parameters), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls_or_cfg) if f.metadata.get("data"))


def data_static_fields(cls_or_cfg) -> tuple[str, ...]:
    """The statics that enter the data key: those marked ``data=True``, or every static
    when the config marks no field at all (a family written before the marks existed)."""
    statics = static_fields(cls_or_cfg)
    if not data_fields(cls_or_cfg):
        return statics
    marked = set(data_fields(cls_or_cfg))
    return tuple(k for k in statics if k in marked)


def model_static_fields(cls_or_cfg) -> tuple[str, ...]:
    """The statics that enter the model key: every static not in :func:`data_static_fields`."""
    data = set(data_static_fields(cls_or_cfg))
    return tuple(k for k in static_fields(cls_or_cfg) if k not in data)


def field_names(cls_or_cfg) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls_or_cfg))


def model_config(cls):
    """Make ``cls`` a frozen dataclass, a registered pytree, and self-validating."""
    def __post_init__(self):
        for name in param_fields(self):
            require_scalar(name, getattr(self, name))
        validate = getattr(self, "validate", None)
        if validate is not None:
            validate()

    cls.__post_init__ = __post_init__  # before @dataclass, so __init__ calls it
    cls = dataclasses.dataclass(frozen=True)(cls)
    statics = static_fields(cls)
    params = param_fields(cls)

    def flatten(cfg):
        return tuple(getattr(cfg, k) for k in params), tuple(getattr(cfg, k) for k in statics)

    def unflatten(aux, children):
        cfg = object.__new__(cls)
        for k, v in zip(statics, aux):
            object.__setattr__(cfg, k, v)
        for k, v in zip(params, children):
            object.__setattr__(cfg, k, v)
        return cfg

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


def build_config(cls, values: Mapping[str, Any], *, model: str = "") -> Any:
    """Construct ``cls(**values)`` with errors that name the field and suggest the closest one."""
    names = field_names(cls)
    for key in values:
        if key not in names:
            where = f" for model {model!r}" if model else ""
            raise ValueError(
                f"unknown parameter {key!r}{where}{closest(key, names)}; "
                f"valid parameters: {', '.join(names)}"
            )
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
    return cls(**values)


def as_dict(cfg) -> dict[str, Any]:
    """All fields of a config, in declaration order."""
    return {k: getattr(cfg, k) for k in field_names(cfg)}


def float_fields(cls_or_cfg) -> tuple[str, ...]:
    """Fields that hold a real number: every parameter, and statics declared ``float``."""
    params = set(param_fields(cls_or_cfg))
    return tuple(f.name for f in dataclasses.fields(cls_or_cfg)
                 if f.name in params or f.type in ("float", float))


def make_config(model, values: Mapping[str, Any]):
    """Build (and so validate) ``model``'s config from ``values``; integer values of
    real-valued fields (parameters, and statics declared ``float``) become floats, so
    ``w_std = 2`` and ``w_std = 2.0`` are one value: one point id, the same draws."""
    floats = set(float_fields(model.config))
    coerced = {k: _as_float(k, v) if k in floats and isinstance(v, int)
               and not isinstance(v, bool) else v for k, v in values.items()}
    return build_config(model.config, coerced, model=model.name)


def _as_float(field: str, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{field} must be a finite number below 1.8e308, got an integer of "
                         f"{len(str(abs(value)))} digits") from None
