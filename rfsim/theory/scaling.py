r"""Exact power-of-two rescaling and extended-range arithmetic for the closed forms.

The deterministic equivalents are homogeneous: scaling every eigenvalue and the ridge by
``c`` scales the effective ridge by ``c`` and leaves the learned fractions ``s/(s+kappa)``
unchanged (theory/ridge.md (R-8)).  Solving the problem rescaled by a power of two
``2^-e`` is therefore exact (no rounding) and keeps every intermediate far from overflow and
underflow; :func:`scale_exponent` picks ``e``.

A non-negative quantity whose factors are each representable while their product is not
(``s beta^2 r^2`` with ``r ~ 1e-30`` in float32) is carried as a pair ``(m, k)`` meaning
``m 2^k``: products multiply mantissas in ``[1/2, 1)`` and add integer exponents, sums align
exponents on the largest term, and only :func:`xval` rounds to the dtype (overflow to inf,
underflow to 0, nowhere else).  All of it is jittable and differentiable in the mantissas.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["headroom", "ldexp", "scale_exponent", "split", "xadd", "xdiv", "xmul", "xsum",
           "xval"]

def _pow2(h, dtype):
    """Exactly ``2^h`` for int32 ``h`` in ``[minexp, maxexp - 1]`` (built from its bits)."""
    fi = jnp.finfo(dtype)
    int_type = jnp.dtype(f"int{fi.bits}")
    h = lax.convert_element_type(h, int_type)
    bits = lax.shift_left(h + jnp.asarray(int(fi.maxexp) - 1, int_type),
                          jnp.asarray(int(fi.nmant), int_type))
    return lax.bitcast_convert_type(bits, dtype)


def _times_pow2(x, k):
    """``x 2^k`` in two exact factors, for int32 ``|k|`` up to twice the exponent range; an
    intermediate lies between ``x`` and the result, so only the result can round."""
    fi = jnp.finfo(x.dtype)
    k = lax.clamp(jnp.int32(2 * int(fi.minexp)), k, jnp.int32(2 * (int(fi.maxexp) - 1)))
    half = lax.shift_right_arithmetic(k, jnp.int32(1))  # floor(k / 2)
    return x * _pow2(half, x.dtype) * _pow2(k - half, x.dtype)


def ldexp(x, k):
    """``x 2^k`` rounded once, differentiable in ``x`` (also at 0, where ``jnp.ldexp``
    returns ``x`` itself and so a wrong derivative), in a handful of primitive ops.

    ``|k|`` beyond twice the exponent range is clipped: a normal ``x`` times such a power
    of two is 0 or inf anyway.
    """
    x = jnp.asarray(x)
    k = lax.convert_element_type(jnp.asarray(k), jnp.int32)
    x, k = jnp.broadcast_arrays(x, k)
    return _times_pow2(x, k)


def split(x, exp=0):
    """``x = m 2^k`` with ``|m|`` in [1/2, 1) and int32 ``k`` (``m = x``, ``k = 0`` for 0
    and for subnormals, which XLA flushes to 0); ``exp`` is added to ``k``.  The exponent is
    read from the bits, the mantissa is ``x 2^-k``: exact, and differentiable in ``x``."""
    x = jnp.asarray(x)
    fi = jnp.finfo(x.dtype)
    int_type = jnp.dtype(f"int{fi.bits}")
    bits = lax.bitcast_convert_type(x, int_type)
    field = lax.shift_right_logical(bits, jnp.full(bits.shape, int(fi.nmant), int_type))
    field = lax.bitwise_and(field, jnp.full(bits.shape, (1 << (fi.bits - 1 - int(fi.nmant))) - 1,
                                            int_type))
    field = lax.convert_element_type(field, jnp.int32)
    k = lax.select(field == 0, jnp.zeros_like(field), field - (int(fi.maxexp) - 2))
    k = lax.stop_gradient(k)
    return _times_pow2(x, -k), k + exp


def xmul(*factors):
    m = factors[0][0]
    k = factors[0][1]
    for fm, fk in factors[1:]:
        m, k = m * fm, k + fk
    return m, k


def xdiv(a, b):
    """a / b for b != 0."""
    return a[0] / b[0], a[1] - b[1]


def xadd(a, b):
    """a + b, exponent-aligned on the larger."""
    top = jnp.maximum(jnp.where(a[0] != 0, a[1], b[1]), jnp.where(b[0] != 0, b[1], a[1]))
    m = ldexp(a[0], a[1] - top) + ldexp(b[0], b[1] - top)
    return m, top


def xsum(x, mask):
    """Sum over the last axis of the masked terms, exponent-aligned on the largest."""
    m, k = x
    live = mask & (m != 0)
    low = jnp.iinfo(k.dtype).min // 2
    top = jnp.max(jnp.where(live, k, low), axis=-1)
    top = jnp.where(top == low, 0, top)
    return jnp.where(live, ldexp(m, k - top[..., None]), 0.0).sum(-1), top


def xval(x):
    """Round ``m 2^k`` to the dtype (overflow to inf, underflow to 0: only here)."""
    m, k = x
    return ldexp(m, k)


def headroom(dtype) -> int:
    """Binary exponent at which the rescaled problem's largest scale sits (R-8): a quarter of
    the dtype's exponent range (32 for float32, 256 for float64)."""
    return int(jnp.finfo(dtype).maxexp) // 4


def scale_exponent(scales, dtype):
    """Integer ``e`` with ``max(scales) 2^-e`` near ``2^H``, ``H = headroom`` (R-8).

    ``scales`` are ``(value, extra binary exponent)`` pairs of non-negative numbers; zeros
    are ignored (all zero: e = 0).  For a representable largest scale, ``e`` is kept in
    ``[minexp + 1, maxexp - 2]`` so that ``2^+-e`` -- the factor every derivative picks up
    between the caller's units and the rescaled ones -- is itself a normal number (a tiny
    spectrum then sits between 1/2 and ``2^H``).
    """
    fi = jnp.finfo(dtype)
    low = jnp.iinfo(jnp.int32).min // 2
    tops = []
    for value, extra in scales:
        _, k = split(value)
        tops.append(jnp.where(value > 0, k + extra, low))
    top = tops[0]
    for t in tops[1:]:
        top = jnp.maximum(top, t)
    e = top - headroom(dtype)
    inside = (top >= int(fi.minexp)) & (top <= int(fi.maxexp))
    e = jnp.where(inside, jnp.clip(e, int(fi.minexp) + 1, int(fi.maxexp) - 2), e)
    return jax.lax.stop_gradient(jnp.where(top == low, 0, e))
