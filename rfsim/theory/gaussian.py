r"""Gaussian expectations of activations: the one home for them in rfsim.

Implements theory/kernels.md, Eqs. (K-1)–(K-6).  Every Gauss–Hermite rule, one-point
moment and two-point expectation used by a feature map, a deterministic equivalent or a
kernel recursion lives here; nothing else in the package integrates against a Gaussian.

One point, ``U ~ N(mean, var)``:
  * :func:`gaussian_mean` ``E sigma(sqrt(q) G)`` (centring deep random features);
  * :func:`gaussian_moments` ``(E sigma(U), E sigma'(U), E sigma(U)^2)`` (K-1).

Two points, ``(u, v) ~ N(0, [[qx, c], [c, qy]])`` elementwise over arrays:
  * :func:`arccos_expectation` ``E[Theta(u) Theta(v) u^n v^n]`` (K-2; Cho & Saul 2009);
  * :func:`two_point` ``E sigma(u) sigma(v)`` and :func:`derivative_two_point`
    ``E sigma'(u) sigma'(v)``: closed forms for relu (K-3), leaky relu and every
    ``a min(z, 0) + b max(z, 0)`` (K-4), erf (K-5, Williams 1997) and linear; any other
    jax-differentiable activation by a polar Gauss–Legendre rule split at the sign changes,
    with the derivative from autodiff (K-6).

The angle comes from a polynomial arcsine with half-angle range reduction (:func:`_angle`):
the clipped ``arccos`` of the pitfall list loses half the digits near ``theta = 0`` (where
``arccos(1 - e) ~ sqrt(2 e)``), this none; it is exactly 0 on a diagonal, never NaN, and
fuses into the surrounding arithmetic (XLA's float64 ``arccos`` is a scalar call, 6x slower).

This module imports only leaves (activations, validation): feature maps and theory may both
use it (tests/test_imports.py puts it with the leaves).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf
from jax.scipy.stats import norm

from rfsim.activations import get_activation, leaky_slope, name_of

__all__ = [
    "QUADRATURE_ORDER",
    "arccos_expectation",
    "relu_correlation",
    "derivative_two_point",
    "gaussian_mean",
    "gaussian_moments",
    "hermite_rule",
    "two_point",
]

#: default order of the two-point quadrature (K-6) for activations without a closed form:
#: Gauss–Legendre nodes per angular arc (the radius gets twice as many); 1e-10 or better
#: for relu, erf, tanh, gelu, softplus, sin at variances up to ~10 (tests).
QUADRATURE_ORDER = 32

_ODD_ZERO_MEAN = ("erf", "tanh", "linear", "sin")


@functools.lru_cache(maxsize=None)
def hermite_rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights, weights summing to 1:
    ``E f(G) ~ sum_i w_i f(z_i)``, ``G ~ N(0, 1)``, exact for polynomials of degree
    ``< 2 order``.  Float64 numpy arrays (read-only), cached per order."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    z, w = np.polynomial.hermite_e.hermegauss(int(order))
    w = w / w.sum()
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def _floating(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


# --------------------------------------------------------------------------- one point


def gaussian_mean(activation, q) -> jax.Array:
    """m(q) = E sigma(sqrt(q) G), G ~ N(0, 1), elementwise in q >= 0.

    Closed forms: relu sqrt(q / (2 pi)); gelu q / sqrt(2 pi (1 + q)) (Stein's lemma);
    erf, tanh, sin, linear 0 (odd).  Any other callable: 96-point Gauss–Hermite quadrature
    (accurate for smooth sigma; slow to converge at kinks).
    """
    sigma = get_activation(activation)
    name = name_of(sigma)
    q = _floating(q)
    if name == "relu":
        return jnp.sqrt(q / (2.0 * math.pi))
    if name == "gelu":
        return q / jnp.sqrt(2.0 * math.pi * (1.0 + q))
    if name in _ODD_ZERO_MEAN:
        return jnp.zeros_like(q)
    z, w = hermite_rule(96)
    return sigma(jnp.sqrt(q)[..., None] * jnp.asarray(z, q.dtype)) @ jnp.asarray(w, q.dtype)


def gaussian_moments(activation, mean, var):
    r"""``(m, kappa1, second)`` of ``sigma(U)``, ``U ~ N(mean, var)``, elementwise (K-1).

    ``m = E sigma(U)``; ``kappa1 = E sigma'(U) = E[(U - mean) sigma(U)] / var`` (Stein's
    lemma, so it is defined for relu's kink too); ``second = E sigma(U)^2``.

    Closed forms: relu (any mean, ``t = mean/sqrt(var)``: ``m = mean Phi(t) + sqrt(var)
    phi(t)``, ``kappa1 = Phi(t)``, ``second = (mean^2 + var) Phi(t) + mean sqrt(var) phi(t)``);
    linear; erf (``m = erf(mean/sqrt(1+2 var))``, ``kappa1 = 2 exp(-mean^2/(1+2var)) /
    sqrt(pi (1+2var))``, and at zero mean ``second = (2/pi) arcsin(2var/(1+2var))``).
    Anything else: 120-point Gauss–Hermite quadrature.  ``var`` must be > 0.
    """
    sigma = get_activation(activation)
    name = name_of(sigma)
    b, q = jnp.broadcast_arrays(_floating(mean), _floating(var))
    s = jnp.sqrt(q)
    if name == "relu":
        t = b / s
        cdf, pdf = norm.cdf(t), norm.pdf(t)
        return b * cdf + s * pdf, cdf, (b * b + q) * cdf + b * s * pdf
    if name == "linear":
        return b, jnp.ones_like(q), b * b + q
    z, w = hermite_rule(120)
    nodes, weights = jnp.asarray(z, q.dtype), jnp.asarray(w, q.dtype)
    vals = sigma(b[..., None] + s[..., None] * nodes)
    m = vals @ weights
    second = (vals * vals) @ weights
    kappa1 = (vals * nodes) @ weights / s
    if name == "erf":
        g = 1.0 + 2.0 * q
        m = erf(b / jnp.sqrt(g))
        kappa1 = 2.0 / math.sqrt(math.pi) * jnp.exp(-b * b / g) / jnp.sqrt(g)
        second = jnp.where(b == 0, 2.0 / math.pi * jnp.arcsin(2.0 * q / g), second)
    return m, kappa1, second


# --------------------------------------------------------------------------- two points


@functools.lru_cache(maxsize=None)
def _asin_coefficients() -> tuple[float, ...]:
    """g(t) = (asin(sqrt t)/sqrt t - 1)/t on [0, 1/4] as a degree-12 polynomial (Chebyshev
    interpolant, converted; highest power first): asin(x) = x + x t g(t), t = x^2, |x| <= 1/2,
    within 1.2e-16 of numpy's arcsin.  XLA's float64 arccos/atan2 are scalar library calls
    (~90 ns each on CPU); this is 13 fused multiply-adds."""

    def g(t):
        t = np.asarray(t, dtype=np.float64)
        small = t < 1e-4  # the series, where (asin(x)/x - 1)/t cancels
        ts = np.where(small, t, 0.0)
        series = 1 / 6 + ts * (3 / 40 + ts * (5 / 112 + ts * (35 / 1152 + ts * 63 / 2816)))
        x = np.sqrt(np.where(small, 1.0, t))
        return np.where(small, series, (np.arcsin(x) / x - 1.0) / np.where(small, 1.0, t))

    cheb = np.polynomial.chebyshev.Chebyshev.interpolate(g, 12, domain=[0.0, 0.25])
    return tuple(float(c) for c in cheb.convert(kind=np.polynomial.Polynomial).coef[::-1])


def _asin_half(x):
    """asin(x) for |x| <= 1/2 by the polynomial of :func:`_asin_coefficients`."""
    t = x * x
    p = jnp.zeros_like(t)
    for coef in _asin_coefficients():
        p = p * t + coef
    return x + x * t * p


def arcsin(z):
    """asin(z), z in [-1, 1], from :func:`_asin_half` with asin z = pi/2 - 2 asin(sqrt((1 -
    z)/2)) for |z| > 1/2: ~2e-16 absolute, and elementwise arithmetic that XLA fuses."""
    a = jnp.abs(z)
    big = a > 0.5
    u = jnp.where(big, jnp.sqrt(jnp.maximum(0.5 * (1.0 - a), 0.0)), a)
    r = _asin_half(u)
    return jnp.sign(z) * jnp.where(big, 0.5 * math.pi - 2.0 * r, r)


def _geometric_mean(qx, qy):
    """``sqrt(qx qy)``: from the product where it is a normal number (exact on a diagonal,
    ``sqrt(q q) = q``), else ``sqrt(qx) sqrt(qy)`` (the product over- or underflows for
    variances beyond ~1e154 or below ~1e-154 in float64, which gave inf or 0)."""
    p = qx * qy
    fi = jnp.finfo(p.dtype)
    normal = (p <= fi.max) & ((p >= fi.tiny) | (qx == 0) | (qy == 0))
    return jnp.where(normal, jnp.sqrt(jnp.where(normal, p, 1.0)), jnp.sqrt(qx) * jnp.sqrt(qy))


def _angle(qx, qy, c):
    """``(theta, s sin theta, s)``, ``s = sqrt(qx qy)``, ``cos theta = c / s`` (0 where s = 0).

    theta = pi/2 - asin(rho) for |rho| <= 1/2, else 2 asin(u) (or pi - 2 asin(u)) with
    u^2 = (1 - |rho|)/2 formed as (s - |c|)/(2s): exact 0 on a diagonal (c = s), and no
    sqrt(eps) loss near theta = 0 as in the clipped arccos of the pitfall list;
    sin theta = 2 u sqrt(1 - u^2) there, sqrt((1 - rho)(1 + rho)) otherwise."""
    s = _geometric_mean(qx, qy)
    pos = s > 0
    inv = 1.0 / jnp.where(pos, s, 1.0)
    rho = jnp.where(pos, jnp.clip(c * inv, -1.0, 1.0), 0.0)
    big = jnp.abs(rho) > 0.5
    h = jnp.where(pos, (s - jnp.minimum(jnp.abs(c), s)) * (0.5 * inv), 0.5)  # (1 - |rho|)/2
    # one square root each for u and for sin theta, whichever branch
    u = jnp.where(big, jnp.sqrt(jnp.where(big, h, 0.0)), rho)
    root = jnp.sqrt(jnp.where(big, 1.0 - h, (1.0 - rho) * (1.0 + rho)))
    r = _asin_half(u)
    theta = jnp.where(big, jnp.where(rho > 0, 2.0 * r, math.pi - 2.0 * r), 0.5 * math.pi - r)
    sin = jnp.where(big, 2.0 * u * root, root)
    return theta, s * sin, s


def relu_correlation(rho):
    """``(k0, k1) = ((pi - theta)/(2 pi), (sin theta + (pi - theta) rho)/(2 pi))``,
    ``rho = cos theta`` in [-1, 1]: relu's two-point functions (K-3) per unit variance,
    ``E relu'(u) relu'(v) = k0`` and ``E relu(u) relu(v) = sqrt(qx qy) k1``.  The kernel
    recursion's fast path: with 1/sqrt(q) per row and column precomputed, a layer costs two
    square roots and a polynomial per entry, no division and no library call."""
    a = jnp.abs(rho)
    big = a > 0.5
    h = 0.5 * (1.0 - a)
    u = jnp.where(big, jnp.sqrt(jnp.where(big, h, 0.0)), rho)
    r = _asin_half(u)
    theta = jnp.where(big, jnp.where(rho > 0, 2.0 * r, math.pi - 2.0 * r), 0.5 * math.pi - r)
    root = jnp.sqrt(jnp.where(big, 1.0 - h, (1.0 - rho) * (1.0 + rho)))
    sin = jnp.where(big, 2.0 * u * root, root)
    k0 = (math.pi - theta) * (0.5 / math.pi)
    return k0, (sin + (math.pi - theta) * rho) * (0.5 / math.pi)


def arccos_expectation(order: int, qx, qy, c) -> jax.Array:
    r"""``E[Theta(u) Theta(v) u^n v^n]`` for ``(u, v) ~ N(0, [[qx, c], [c, qy]])`` (K-2).

    ``= (qx qy)^{n/2} J_n(theta) / (2 pi)``, ``cos theta = c / sqrt(qx qy)``, with
    ``J_0 = pi - theta``, ``J_1 = sin theta + (pi - theta) cos theta``,
    ``J_2 = 3 sin theta cos theta + (pi - theta)(1 + 2 cos^2 theta)`` (Cho & Saul 2009).
    Order 1 is the relu two-point function, order 0 that of its derivative (a step).
    Where a variance vanishes, ``theta = pi/2`` (order 0) and the value is 0 (orders 1, 2).
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"order must be one of [0, 1, 2], got {order!r}")
    qx, qy, c = jnp.broadcast_arrays(_floating(qx), _floating(qy), _floating(c))
    theta, sin_n, norm_ = _angle(qx, qy, c)  # norm * sin theta, norm = sqrt(qx qy)
    if order == 0:
        return (math.pi - theta) / (2.0 * math.pi)
    if order == 1:
        return (sin_n + (math.pi - theta) * c) / (2.0 * math.pi)
    return (3.0 * sin_n * c + (math.pi - theta) * (norm_ * norm_ + 2.0 * c * c)) / (2.0 * math.pi)


def _ab_relu(a: float, b: float, order: int, qx, qy, c):
    """(K-4): for sigma = a min(z, 0) + b max(z, 0), E sigma sigma (order 1) or
    E sigma' sigma' (order 0) from the arc-cosine functions at c and -c."""
    same = arccos_expectation(order, qx, qy, c)
    cross = arccos_expectation(order, qx, qy, -c)
    sign = -1.0 if order == 1 else 1.0  # min(z,0) = -max(-z,0); its derivative is +step(-z)
    return (a * a + b * b) * same + sign * 2.0 * a * b * cross


def _erf_scaled(qx, qy, c):
    """``(R, D, a, inv)`` for (K-5) with nothing formed that can overflow: ``inv = 1/m``,
    ``m = max(1, qx, qy)``; ``R = ((1 + 2qx)(1 + 2qy) - 4c^2)/m^2`` as
    ``1/m^2 + 2qx/m^2 + 2qy/m^2 + 4 ((s - a)/m)((s + a)/m)`` with ``s = sqrt(qx qy)``,
    ``a = min(|c|, s)`` (exactly ``(1 + 4q)/m^2`` on a diagonal, where the difference of two
    ~4q^2 terms lost ``log10 q`` digits); ``D = sqrt((1 + 2qx)(1 + 2qy))/m``."""
    s = _geometric_mean(qx, qy)
    a = jnp.minimum(jnp.abs(c), s)
    inv = 1.0 / jnp.maximum(1.0, jnp.maximum(qx, qy))
    R = inv * inv + 2.0 * (qx * inv) * inv + 2.0 * (qy * inv) * inv \
        + 4.0 * ((s - a) * inv) * ((s + a) * inv)
    D = _geometric_mean((1.0 + 2.0 * qx) * inv, (1.0 + 2.0 * qy) * inv)
    return R, D, a, inv


def _erf_two_point(qx, qy, c):
    """(K-5): E erf(u) erf(v) = (2/pi) arcsin(z), z = 2c / sqrt((1 + 2qx)(1 + 2qy)).

    For |z| > 1/2, ``arcsin z = sign(z) (pi/2 - 2 asin(sqrt(h)))`` with
    ``h = (1 - |z|)/2 = R / (2 D (D + 2a/m))`` (:func:`_erf_scaled`) formed without the
    cancellation of ``1 - |z|``: accurate at any variance (q = 1e300 included)."""
    R, D, a, inv = _erf_scaled(qx, qy, c)
    z = jnp.clip(2.0 * c * inv / D, -1.0, 1.0)
    big = jnp.abs(z) > 0.5
    h = R / (2.0 * D * (D + 2.0 * a * inv))
    r = _asin_half(jnp.where(big, jnp.sqrt(jnp.where(big, h, 0.0)), z))
    return (2.0 / math.pi) * jnp.where(big, jnp.sign(c) * (0.5 * math.pi - 2.0 * r), r)


def _erf_derivative_two_point(qx, qy, c):
    """(K-5): E erf'(u) erf'(v) = (4/pi) / sqrt((1 + 2qx)(1 + 2qy) - 4 c^2), the radicand
    from :func:`_erf_scaled` (no overflow, no cancellation on a diagonal)."""
    R, _, _, inv = _erf_scaled(qx, qy, c)
    return (4.0 / math.pi) * inv / jnp.sqrt(R)


_RADIUS = 10.0  # radial cut-off: the weight r exp(-r^2/2) beyond it is below 1e-20
_CHUNK = 256  # entries per step of the quadrature loop (bounds memory at ~64 MB)


@functools.lru_cache(maxsize=None)
def _polar_rule(order: int):
    """Gauss–Legendre nodes on [-1, 1] for the angle (``order``) and, mapped to [0, R] with
    the weight r exp(-r^2/2) folded in, for the radius (``2 order``)."""
    t, wt = np.polynomial.legendre.leggauss(order)
    tr, wr = np.polynomial.legendre.leggauss(2 * order)
    r = (tr + 1.0) * (_RADIUS / 2.0)
    wr = wr * (_RADIUS / 2.0) * r * np.exp(-0.5 * r * r)
    return t, wt, r, wr


def _quadrature(fn, qx, qy, c, order):
    """(K-6): E fn(u) fn(v) in polar coordinates of the standard pair (z1, z2):
    u = r sqrt(qx) cos psi, v = r sqrt(qy) cos(psi - theta), density r exp(-r^2/2) dr dpsi
    / (2 pi).  The angle is split where cos psi or cos(psi - theta) changes sign, so an
    activation smooth away from 0 (relu, leaky relu, abs, and their autodiff derivatives
    included) is integrated to round-off; Gauss–Legendre on each of the four arcs
    (``order`` nodes) and on r in [0, 10] (``2 order`` nodes)."""
    shape = qx.shape
    dt = qx.dtype
    t, wt, r, wr = (jnp.asarray(a, dt) for a in _polar_rule(order))
    theta, _, _ = _angle(qx, qy, c)
    size = int(np.prod(shape)) if shape else 1
    pad = (-size) % _CHUNK
    flat = [jnp.pad(a.reshape(-1), (0, pad), constant_values=1.0)
            for a in (jnp.sqrt(qx), jnp.sqrt(qy), theta)]
    half_pi = 0.5 * math.pi

    def chunk(args):
        a, b, th = args
        cuts = jnp.sort(jnp.stack([jnp.full_like(th, half_pi), jnp.full_like(th, 3 * half_pi),
                                   th + half_pi, (th + 3 * half_pi) % (2 * math.pi)], -1), -1)
        ends = jnp.concatenate([cuts[:, 1:], cuts[:, :1] + 2 * math.pi], -1)
        mid, half = 0.5 * (cuts + ends), 0.5 * (ends - cuts)  # (chunk, 4)
        psi = mid[..., None] + half[..., None] * t  # (chunk, 4, order)
        w_psi = half[..., None] * wt / (2.0 * math.pi)
        cu = a[:, None, None] * jnp.cos(psi)
        cv = b[:, None, None] * jnp.cos(psi - th[:, None, None])
        radial = (fn(cu[..., None] * r) * fn(cv[..., None] * r)) @ wr
        return jnp.sum(radial * w_psi, (-1, -2))

    blocks = [x.reshape(-1, _CHUNK) for x in flat]
    out = jax.lax.map(chunk, tuple(blocks)).reshape(-1)[:size]
    return out.reshape(shape)


def _derivative(sigma):
    return jnp.vectorize(jax.grad(sigma))


def _closed_form(sigma, derivative: bool):
    """The closed-form two-point function of ``sigma`` (or of its derivative), or None."""
    name = name_of(sigma)
    order = 0 if derivative else 1
    if name == "relu":
        return lambda qx, qy, c: arccos_expectation(order, qx, qy, c)
    slope = leaky_slope(sigma)
    if slope is not None:
        return lambda qx, qy, c: _ab_relu(slope, 1.0, order, qx, qy, c)
    if name == "erf":
        return _erf_derivative_two_point if derivative else _erf_two_point
    if name == "linear":
        return (lambda qx, qy, c: jnp.ones_like(c)) if derivative else (lambda qx, qy, c: c)
    return None


def two_point(activation, qx, qy, c, *, order: int = QUADRATURE_ORDER) -> jax.Array:
    """``E sigma(u) sigma(v)``, ``(u, v) ~ N(0, [[qx, c], [c, qy]])``, elementwise (K-3..K-6).

    Closed form for relu, leaky_relu, erf and linear; otherwise the polar quadrature (K-6)
    with ``order`` angular nodes per arc: round-off accuracy for activations smooth away
    from 0 (kinks at 0 included); a kink elsewhere converges slowly.
    """
    sigma = get_activation(activation)
    qx, qy, c = jnp.broadcast_arrays(_floating(qx), _floating(qy), _floating(c))
    exact = _closed_form(sigma, derivative=False)
    if exact is not None:
        return exact(qx, qy, c)
    return _quadrature(sigma, qx, qy, c, order)


def derivative_two_point(activation, qx, qy, c, *, order: int = QUADRATURE_ORDER):
    """``E sigma'(u) sigma'(v)`` (the NTK's derivative kernel), as :func:`two_point`;
    the quadrature path takes sigma' from autodiff."""
    sigma = get_activation(activation)
    qx, qy, c = jnp.broadcast_arrays(_floating(qx), _floating(qy), _floating(c))
    exact = _closed_form(sigma, derivative=True)
    if exact is not None:
        return exact(qx, qy, c)
    return _quadrature(_derivative(sigma), qx, qy, c, order)
