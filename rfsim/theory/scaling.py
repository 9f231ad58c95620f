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

__all__ = ["headroom", "ldexp", "scale_exponent", "split", "xadd", "xdiv", "xmul", "xsum",
           "xval"]

_EXP_CLIP = 1 << 20  # binary exponents are clipped here (any |k| > ~1100 is already 0 or inf)


def _pow2(h, dtype):
    """Exactly ``2^h`` for integer ``h`` in the dtype's normal exponent range (built from bits)."""
    fi = jnp.finfo(dtype)
    int_type = jnp.dtype(f"int{fi.bits}")
    h = jnp.clip(h, int(fi.minexp), int(fi.maxexp) - 1).astype(int_type)
    bits = (h + (int(fi.maxexp) - 1)) << int(fi.nmant)
    return jax.lax.bitcast_convert_type(bits, dtype)


def ldexp(x, k):
    """``x 2^k`` rounded once, for integer ``k`` of any size, differentiable in ``x`` (also at
    0, where ``jnp.ldexp`` returns ``x`` and so a wrong derivative).

    ``k`` is applied in three exact power-of-two factors of the same sign, so an
    intermediate lies between ``x`` and the result and cannot overflow or underflow first.
    """
    x = jnp.asarray(x)
    fi = jnp.finfo(x.dtype)
    lo, hi = int(fi.minexp), int(fi.maxexp) - 1
    k = jnp.clip(jnp.asarray(k), -_EXP_CLIP, _EXP_CLIP)
    for _ in range(3):
        part = jnp.clip(k, lo, hi)
        x = x * _pow2(part, x.dtype)
        k = k - part
    return x


def split(x, exp=0):
    """``x = m 2^k`` with ``m`` in [1/2, 1) (0 for x = 0); ``exp`` is added to ``k``."""
    m, k = jnp.frexp(x)
    return m, k + exp


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
    m = ldexp(a[0], jnp.maximum(a[1] - top, -_EXP_CLIP)) + ldexp(b[0], jnp.maximum(b[1] - top,
                                                                                  -_EXP_CLIP))
    return m, top


def xsum(x, mask):
    """Sum over the last axis of the masked terms, exponent-aligned on the largest."""
    m, k = x
    live = mask & (m != 0)
    low = jnp.iinfo(k.dtype).min // 2
    top = jnp.max(jnp.where(live, k, low), axis=-1)
    top = jnp.where(top == low, 0, top)
    shift = jnp.maximum(k - top[..., None], -_EXP_CLIP)
    return jnp.where(live, ldexp(m, shift), 0.0).sum(-1), top


def xval(x):
    """Round ``m 2^k`` to the dtype (overflow to inf, underflow to 0: only here)."""
    m, k = x
    return ldexp(m, k)


def headroom(dtype) -> int:
    """Binary exponent at which the rescaled problem's largest scale sits (R-8): a quarter of
    the dtype's exponent range (32 for float32, 256 for float64)."""
    return int(jnp.finfo(dtype).maxexp) // 4


def scale_exponent(scales, dtype):
    """Integer ``e`` with ``max(scales) 2^-e`` in ``[2^(H-1), 2^H)``, ``H = headroom`` (R-8).

    ``scales`` are ``(mantissa-or-value, extra binary exponent)`` pairs of non-negative
    numbers; zeros are ignored (all zero: e = 0).
    """
    low = jnp.iinfo(jnp.int32).min // 2
    tops = []
    for value, extra in scales:
        _, k = jnp.frexp(value)
        tops.append(jnp.where(value > 0, k + extra, low))
    top = tops[0]
    for t in tops[1:]:
        top = jnp.maximum(top, t)
    return jax.lax.stop_gradient(jnp.where(top == low, 0, top - headroom(dtype)))
