"""Input validation that names the field, the value and what is allowed.

Checks run only on concrete values: inside ``jit``/``vmap`` the leaves are
tracers and are skipped, so validated functions stay traceable.  Every
public entry point (configs, closed forms) validates before any compute.
"""

from __future__ import annotations

import math

import jax
import numpy as np


def is_concrete(value) -> bool:
    """True unless ``value`` (or a leaf of it) is a JAX tracer."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def _fmt(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        v = arr.item()
        return repr(v) if not isinstance(v, float) else f"{v:g}"
    return np.array2string(arr, threshold=6, precision=4)


def as_real_array(name: str, value) -> np.ndarray:
    """``value`` as a float array; bools, strings, None and ragged lists name the field."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if np.asarray(value).dtype == bool:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return arr


def require_finite(name: str, value) -> None:
    """Raise ``ValueError`` if any entry of a concrete ``value`` is NaN or infinite."""
    if not is_concrete(value):
        return
    arr = as_real_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {_fmt(value)}")


def require_scalar(name: str, value) -> None:
    """A concrete config parameter must be one real number (not a list or array)."""
    if is_concrete(value) and as_real_array(name, value).ndim != 0:
        raise ValueError(f"{name} must be a single number, got {value!r} (to sweep it, put it "
                         "in [grid])")


def require(name: str, value, ok, allowed: str) -> None:
    """Raise ``ValueError(f"{name} must be {allowed}, got {value}")`` unless ``ok(array)`` holds.

    ``value`` is checked for finiteness first; tracers are skipped.
    """
    if not is_concrete(value):
        return
    require_finite(name, value)
    arr = as_real_array(name, value)
    if not bool(np.all(ok(arr))):
        raise ValueError(f"{name} must be {allowed}, got {_fmt(value)}")


def require_nonnegative(name: str, value) -> None:
    require(name, value, lambda a: a >= 0, ">= 0")


def require_positive(name: str, value) -> None:
    require(name, value, lambda a: a > 0, "> 0")


MAX_SIZE = 2**31 - 1  # sizes index int32 shapes; larger values overflow inside XLA


def require_int(name: str, value, minimum: int = 1, maximum: int = MAX_SIZE) -> None:
    """A static size: a Python/NumPy integer in ``[minimum, maximum]`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r} (a float)")
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
