"""Input validation that names the field, the value and what is allowed.

Checks run only on concrete values: inside ``jit``/``vmap`` the leaves are
tracers and are skipped, so validated functions stay traceable.  Every
public entry point (configs, closed forms) validates before any compute.

Range: a number is accepted only if JAX can hold it faithfully in the float
dtype it will be computed in (:func:`float_dtype`; float32 unless
``jax_enable_x64``): finite, real, and every nonzero magnitude a *normal*
number of that dtype, ``[finfo.tiny, finfo.max]``.  Larger values overflow to
inf; smaller ones are subnormal, and XLA flushes subnormals to zero on CPU and
GPU, so they would silently act as 0.
"""

from __future__ import annotations

import difflib
import math
import reprlib

import jax
import jax.numpy as jnp
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
    """``value`` as a float64 NumPy array; complex numbers, bools, strings, None, ragged lists
    and integers beyond the float range raise ``ValueError`` naming the field."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if _is_complex(value):
        raise ValueError(f"{name} must be real, got {_fmt(value)} (complex numbers are not "
                         "accepted; pass the real part explicitly if that is what you mean)")
    try:
        arr = np.asarray(value, dtype=float)
    except OverflowError:
        digits = len(str(abs(int(value)))) if isinstance(value, (int, np.integer)) else None
        got = f"an integer of {digits} digits" if digits else reprlib.repr(value)
        raise ValueError(f"{name} must be a real number of magnitude at most "
                         f"{np.finfo(np.float64).max:.4g}, got {got}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if np.asarray(value).dtype == bool:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return arr


def _is_complex(value) -> bool:
    try:
        return bool(np.iscomplexobj(value))
    except (TypeError, ValueError):  # ragged: the float conversion below names the field
        return False


def float_dtype(*values) -> np.dtype:
    """The float dtype JAX computes ``values`` in.

    The widest floating dtype among values that carry one (NumPy/JAX arrays and scalars),
    canonicalized for the x64 setting (float64 is float32 unless ``jax_enable_x64``); if none
    does (Python numbers, lists, integer arrays), the active default ``jnp.result_type(float)``.
    """
    dtypes = [jax.dtypes.canonicalize_dtype(v.dtype) for v in values
              if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating)]
    return np.dtype(jnp.result_type(*dtypes) if dtypes else jnp.result_type(float))


def _widen_hint(dtype, wide: str = "") -> str:
    if jnp.finfo(dtype).bits >= 64:
        return ""
    if not wide:
        f64 = np.finfo(np.float64)
        wide = f"[{f64.tiny:.3g}, {f64.max:.3g}]"
    if jax.config.jax_enable_x64:
        return f"; pass float64 arrays to allow {wide}"
    return (f"; enable float64 with jax.config.update(\"jax_enable_x64\", True) to allow "
            f"{wide}")


def range_error(where: str, value: float, dtype, why: str = "") -> ValueError:
    """The ValueError for a number outside ``dtype``'s normal range (shared wording)."""
    fi = jnp.finfo(dtype)
    mag = abs(value)
    what = why or ("it would overflow to inf" if mag > float(fi.max) else
                   "it is subnormal there, and XLA flushes subnormals to zero")
    return ValueError(
        f"{where} = {value:g} is outside the {np.dtype(dtype).name} range: a nonzero value "
        f"must have magnitude in [{float(fi.tiny):.3g}, {float(fi.max):.3g}] ({what})"
        f"{_widen_hint(dtype)}"
    )


def require_in_range(name: str, value, dtype=None) -> None:
    """Every nonzero entry of a concrete ``value`` must be a normal number of ``dtype``.

    ``dtype`` defaults to the active float dtype (:func:`float_dtype`).  NaN and inf are left
    to :func:`require_finite`.
    """
    if not is_concrete(value):
        return
    dtype = float_dtype() if dtype is None else np.dtype(dtype)
    arr = as_real_array(name, value)
    fi = jnp.finfo(dtype)
    mag = np.abs(arr)
    bad = np.isfinite(arr) & (mag > 0) & ((mag > float(fi.max)) | (mag < float(fi.tiny)))
    if bad.any():
        idx = tuple(int(i[0]) for i in np.nonzero(np.atleast_1d(bad)))[: arr.ndim]
        where = name if arr.ndim == 0 else f"{name}[{', '.join(map(str, idx))}]"
        raise range_error(where, float(arr[idx]), dtype)


def require_exact(name: str, value, dtype=None) -> None:
    """An integer-valued concrete ``value`` (a count such as ``n``) must survive the cast to
    ``dtype`` exactly: float32 holds the integers up to 2**24 only."""
    if not is_concrete(value):
        return
    dtype = float_dtype() if dtype is None else np.dtype(dtype)
    arr = as_real_array(name, value)
    whole = np.isfinite(arr) & (arr == np.round(arr))
    cast = np.asarray(np.asarray(arr, dtype=dtype), dtype=float)
    bad = whole & (cast != arr)
    if bad.any():
        v = arr[bad].flat[0]
        limit = 2 ** (jnp.finfo(dtype).nmant + 1)
        raise ValueError(f"{name} = {v:.0f} is not exactly representable in "
                         f"{np.dtype(dtype).name} (integers up to {limit} are)"
                         f"{_widen_hint(dtype, 'integers up to 2**53')}")


def require_finite(name: str, value) -> None:
    """Raise ``ValueError`` if any entry of a concrete ``value`` is NaN or infinite."""
    if not is_concrete(value):
        return
    arr = as_real_array(name, value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {_fmt(value)}")


def require_scalar(name: str, value, dtype=None) -> None:
    """A concrete config parameter must be one real number (not a list or array) that the
    active float dtype holds (:func:`require_in_range`)."""
    if not is_concrete(value):
        return
    if as_real_array(name, value).ndim != 0:
        raise ValueError(f"{name} must be a single number, got {value!r} (to sweep it, put it "
                         "in [grid])")
    require_in_range(name, value, dtype)


def require(name: str, value, ok, allowed: str, dtype=None) -> None:
    """Raise ``ValueError(f"{name} must be {allowed}, got {value}")`` unless ``ok(array)`` holds.

    ``value`` is checked first for being real and finite, then for fitting ``dtype`` (default:
    the active float dtype, :func:`require_in_range`); tracers are skipped.
    """
    if not is_concrete(value):
        return
    require_finite(name, value)
    arr = as_real_array(name, value)
    if not bool(np.all(ok(arr))):
        raise ValueError(f"{name} must be {allowed}, got {_fmt(value)}")
    require_in_range(name, value, dtype)


def require_nonnegative(name: str, value, dtype=None) -> None:
    require(name, value, lambda a: a >= 0, ">= 0", dtype)


def require_positive(name: str, value, dtype=None) -> None:
    require(name, value, lambda a: a > 0, "> 0", dtype)


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


def closest(name: str, options) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def float64_hint(dtype, *, lead: str = " or ", what: str = "arrays", tail: str = "") -> str:
    """The end of an out-of-range message: how to get float64 ('' when ``dtype`` is it)."""
    if jnp.finfo(dtype).bits >= 64:
        return ""
    if jax.config.jax_enable_x64:
        return f"{lead}pass float64 {what}{tail}"
    return f'{lead}enable float64 with jax.config.update("jax_enable_x64", True){tail}'


def require_batch(name: str, x, d: int | None = None, *, finite: bool = False,
                  other: str = "the weights"):
    """A batch of inputs: shape (n, d) or (d,) with n, d >= 1, real, the last dimension
    matching ``d`` (the dimension ``other`` expects) when given, and every entry finite when
    ``finite``.  Returns ``jnp.asarray(x)``."""
    if _is_complex(x):
        raise ValueError(f"{name} must be real, got a complex array")
    x = jnp.asarray(x)
    if x.ndim not in (1, 2) or 0 in x.shape:
        raise ValueError(f"{name} must have shape (n, d) or (d,) with n, d >= 1, got shape "
                         f"{x.shape}")
    if d is not None and x.shape[-1] != d:
        raise ValueError(f"{name} has last dimension {x.shape[-1]}, but {other} expect d={d}")
    if finite and is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        bad = int(jnp.sum(~jnp.isfinite(x)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entr"
                         f"{'y' if bad == 1 else 'ies'}")
    return x


def require_choice(name: str, value, options, *, listed=None) -> None:
    """``value`` must be one of ``options``: ``ValueError`` naming the field, the value, the
    allowed ones (``listed``, default ``options`` as given) and the closest name."""
    if not isinstance(value, str) or value not in options:
        shown = list(options) if listed is None else listed
        raise ValueError(f"{name} must be one of {shown}, got {value!r}"
                         + closest(str(value), options))


def requested_dtype(dtype=None):
    """A ``dtype=`` argument (None -> jax's default float, float64 under x64) as the float
    dtype jax will compute in; a non-floating dtype is a ValueError naming it."""
    if dtype is None:
        return jnp.result_type(float)
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}")
    return jax.dtypes.canonicalize_dtype(dt)
