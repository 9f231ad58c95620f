"""Range checks on the quantities a family's computation actually forms from its scales
(``w_std^2 ||x||^2/d``, a kernel's diagonal, ``d / bandwidth^2``), run in ``validate()``
before any compute and naming the user's field.

A value such as ``w_std = 1e300`` passes the per-field check (it is a float64 number) but
its square is not; a network's kernel diagonal grows like ``w_std^(2 depth)``.  Without these
checks the failure came late (after the simulation ran) and named an internal quantity
("kfun must be finite", "learning_rate must be in (0, nan)").  Private: not a family
(``rfsim.models`` skips modules whose name starts with ``_``).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.networks import check_architecture
from rfsim.validation import MAX_SIZE, float64_hint, float_dtype


def _show(v: float) -> str:
    return f"{v:g}"


def square_range(dtype) -> tuple[float, float]:
    """``[sqrt(tiny), sqrt(max)]`` of ``dtype``: the magnitudes whose square is a normal
    number of ``dtype``."""
    fi = np.finfo(dtype)
    return math.sqrt(float(fi.tiny)), math.sqrt(float(fi.max))


def require_square(name: str, value, *, zero_ok: bool, dtype=None, what: str = "") -> None:
    """``value**2`` (formed by the computation) must be a normal number of ``dtype`` (or 0
    when ``zero_ok``): ``<name> must be ... , got <value>``."""
    dtype = float_dtype() if dtype is None else np.dtype(dtype)
    lo, hi = square_range(dtype)
    v = abs(float(value))
    if (v == 0 and zero_ok) or lo <= v <= hi:
        return
    zero = "0 or " if zero_ok else ""
    why = what or f"{name}^2"
    raise ValueError(f"{name} must be {zero}in [{lo:.3g}, {hi:.3g}] ({why} must be a normal "
                     f"{dtype.name} number), got {_show(float(value))}"
                     + float64_hint(dtype, lead="; or "))


@functools.lru_cache(maxsize=256)
def _diagonal(get: str, depth: int, activation: str, w_std: float, b_std: float,
              parameterization: str, width) -> float:
    """k(x, x) for ||x||^2/d = 1 of the depth-``depth`` network's NNGP or NTK, in float64
    (NaN when the closed form refuses or overflows)."""
    from rfsim.theory.kernels import kernels

    try:
        with jax.enable_x64(True):
            out = kernels(np.ones((1, 1)), depth=depth, activation=activation, w_std=w_std,
                          b_std=b_std, parameterization=parameterization, width=width,
                          diagonal=True, get=get)
            value = float(np.asarray(getattr(out, get))[0])
    except (ValueError, OverflowError, ZeroDivisionError, FloatingPointError):
        return math.nan
    return value


def kernel_diagonal(get: str, *, depth: int, activation: str, w_std, b_std,
                    parameterization: str = "ntk", width=None) -> float:
    return _diagonal(get, int(depth), str(activation), float(w_std), float(b_std),
                     str(parameterization), None if width is None else int(width))


def require_network_scales(*, w_std, b_std, depth: int, activation: str, gets=("nngp", "ntk"),
                           parameterization: str = "ntk", width=None, dtype=None,
                           family: str = "the network") -> None:
    """Refuse ``w_std`` / ``b_std`` whose square, or whose kernel diagonal ``k(x, x)`` (inputs
    with ||x||^2/d = 1, K-8 / K-9), leaves ``[sqrt(tiny), sqrt(max)]`` of ``dtype`` (so that
    the kernel, its square and the products the simulation forms stay normal numbers).

    The message names ``b_std`` when its square alone is too large, ``w_std`` otherwise."""
    dtype = float_dtype() if dtype is None else np.dtype(dtype)
    require_square("w_std", w_std, zero_ok=False, dtype=dtype,
                   what="w_std^2 ||x||^2/d, the layer-1 variance (K-8),")
    require_square("b_std", b_std, zero_ok=True, dtype=dtype,
                   what="b_std^2, added to every layer's variance (K-8),")
    lo, hi = square_range(dtype)
    for get in gets:
        k = kernel_diagonal(get, depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                            parameterization=parameterization, width=width)
        if math.isfinite(k) and lo <= k <= hi:
            continue
        b = float(b_std)
        name, value = ("b_std", b) if b * b > hi else ("w_std", float(w_std))
        raise ValueError(
            f"{name} must keep {family}'s {get.upper()} diagonal k(x, x) in [{lo:.3g}, "
            f"{hi:.3g}] (where its square is a normal {dtype.name} number), got {name} = "
            f"{_show(value)}: k(x, x) = {_show(k)} for depth = {depth}, activation = "
            f"{activation}, w_std = {_show(float(w_std))}, b_std = {_show(b)}"
            + float64_hint(dtype, lead="; or "))


def check_network(cfg, *, min_depth: int = 0, max_depth: int = MAX_SIZE, why: str = "",
                  gets=("nngp", "ntk")) -> None:
    """A network family's architecture fields, validated once: the fields themselves
    (:func:`rfsim.networks.check_architecture`), then the scales the network and its closed
    forms form from them (:func:`require_network_scales`)."""
    check_architecture(cfg, min_depth=min_depth, max_depth=max_depth, why=why)
    standard = getattr(cfg, "parameterization", "ntk") == "standard"
    require_network_scales(w_std=cfg.w_std, b_std=cfg.b_std, depth=cfg.depth,
                           activation=cfg.activation, gets=gets,
                           parameterization=getattr(cfg, "parameterization", "ntk"),
                           width=cfg.width if standard else None, family="the network")


def working_set(peak_floats: float) -> int:
    """``memory(cfg)`` from a family's peak working set: every array live at its peak
    (inputs, features, Gram matrix, the eigendecomposition's output and LAPACK workspace,
    XLA temporaries: measured in tests/test_memory_estimates.py), rounded up."""
    return max(1, math.ceil(peak_floats))


def relative_frobenius(a, b):
    """||a - b||_F / ||b||_F, both scaled by max |b| first (the squares of a large kernel's
    entries would overflow the sums; the ratio does not change)."""
    s = jnp.max(jnp.abs(b))
    s = jnp.where((s > 0) & jnp.isfinite(s), s, jnp.ones_like(s))
    return jnp.linalg.norm((a - b) / s) / jnp.linalg.norm(b / s)
