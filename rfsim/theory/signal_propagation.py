r"""Signal propagation in deep random networks: length and correlation maps, fixed points,
chi_1, depth scales and the order-to-chaos boundary.

Implements theory/signal_propagation.md, Eqs. (SP-1)–(SP-9) (Poole, Lahiri, Raghu,
Sohl-Dickstein, Ganguli 2016, arXiv:1606.05340; Schoenholz, Gilmer, Ganguli, Sohl-Dickstein
2017, arXiv:1611.01232).  Network conventions are those of theory/kernels.md (K-7):

.. math:: h^1 = \frac{\sigma_w}{\sqrt d} W^1 x + \sigma_b b^1,\qquad
          h^{l+1} = \frac{\sigma_w}{\sqrt n} W^{l+1}\phi(h^l) + \sigma_b b^{l+1},
          \quad W, b \sim N(0, 1).

Length map (SP-1) ``q' = w^2 E phi(sqrt(q) z)^2 + b^2``; correlation map (SP-2)
``c' = (w^2 E phi(u) phi(v) + b^2) / q'`` with ``(u, v)`` of variance ``q`` and correlation
``c`` (at ``q = q*`` the denominator is ``q*``: Poole et al.'s map); ``chi_1 = w^2 E
phi'(sqrt(q*) z)^2`` (SP-3), the slope of (SP-2) at ``c = 1``.  Every Gaussian expectation is
:meth:`Activation.two_point <rfsim.activations.Activation.two_point>` /
:meth:`~rfsim.activations.Activation.derivative_two_point` (theory/activations.md A-5: closed
forms for relu, leaky relu, erf, linear, sin, cos; the polar quadrature (A-6) otherwise), so
:func:`iterate_maps` is the NNGP recursion (K-8) for two inputs of equal norm, evaluated by
the same code as :func:`rfsim.theory.kernels.nngp`.

``activation`` is a name, an :class:`~rfsim.activations.Activation` or a callable; it is static
under jit.  ``w_std``, ``b_std``, ``q``, ``c`` may be traced (and broadcast elementwise).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import math

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import get_activation
from rfsim.theory.gaussian import as_floating
from rfsim.validation import (
    as_real_array,
    float64_hint,
    float_dtype,
    is_concrete,
    require,
    require_int,
    require_nonnegative,
)

__all__ = [
    "SignalPropagation",
    "analyze",
    "chi_1",
    "correlation_map",
    "correlation_slope",
    "critical_line",
    "depth_scales",
    "fixed_point_c",
    "fixed_point_q",
    "iterate_maps",
    "length_map",
    "length_slope",
]







# --------------------------------------------------------------------------- validation
# Concrete arguments only (inside jit/vmap they are tracers and are skipped, as everywhere in
# rfsim.validation): every public function checks each argument before any compute.


def _scales(w_std, b_std, *others) -> np.dtype:
    """``w_std, b_std >= 0`` whose squares (formed by SP-1, SP-2) are 0 or normal numbers of
    the dtype the maps run in; returns that dtype."""
    dtype = float_dtype(w_std, b_std, *others)
    fi = jnp.finfo(dtype)
    for name, v in (("w_std", w_std), ("b_std", b_std)):
        require_nonnegative(name, v, dtype)
        if not is_concrete(v):
            continue
        a = np.abs(as_real_array(name, v))
        with np.errstate(over="ignore", under="ignore"):
            sq = a * a
        big = sq > float(fi.max)
        if big.any():
            raise ValueError(f"{name} must be <= {math.sqrt(float(fi.max)):.4g} (its square, "
                             f"formed by the length map SP-1, must not exceed the "
                             f"{np.dtype(dtype).name} maximum), got {a[big].flat[0]:g}"
                             + float64_hint(dtype, lead="; or "))
        small = (a > 0) & (sq < float(fi.tiny))
        if small.any():
            raise ValueError(f"{name} must be 0 or >= {math.sqrt(float(fi.tiny)):.4g} (its "
                             f"square must be a normal {np.dtype(dtype).name} number), got "
                             f"{a[small].flat[0]:g}")
    return dtype


def _variance(name, q, dtype, *, positive=False) -> None:
    """A variance ``q``: finite, ``>= 0`` (``> 0`` when ``positive``), in the dtype's range."""
    if positive:
        require(name, q, lambda a: a > 0, "> 0 (a variance)", dtype)
    else:
        require(name, q, lambda a: a >= 0, ">= 0 (a variance)", dtype)


def _correlation(name, c, dtype) -> None:
    require(name, c, lambda a: (a >= -1) & (a <= 1), "in [-1, 1] (a correlation)", dtype)


def _defined(name, q, w_std, b_std) -> None:
    """The correlation map (SP-2) divides by the next variance ``w^2 E phi^2 + b^2``: it is
    defined where ``q > 0`` and ``w > 0``, or ``b > 0``."""
    if not is_concrete((q, w_std, b_std)):
        return
    qa, wa, ba = np.broadcast_arrays(*(as_real_array(n, v) for n, v in
                                       ((name, q), ("w_std", w_std), ("b_std", b_std))))
    ok = ((qa > 0) & (wa > 0)) | (ba > 0)
    if not ok.all():
        i = np.nonzero(~ok.ravel())[0][0]
        raise ValueError(f"{name} must be > 0 with w_std > 0 when b_std = 0 (the correlation "
                         f"map SP-2 divides by the next layer's variance w_std^2 E phi^2 + "
                         f"b_std^2, which is then 0), got {name} = {qa.ravel()[i]:g}, w_std = "
                         f"{wa.ravel()[i]:g}, b_std = {ba.ravel()[i]:g}")


def _finite(what: str, out, hint: str) -> None:
    """Never return NaN or inf silently (concrete results only)."""
    if not is_concrete(out):
        return
    bad = ~np.isfinite(np.asarray(out))
    if bad.any():
        raise ValueError(f"{what} is not finite ({int(bad.sum())} NaN or infinite "
                         f"entr{'y' if bad.sum() == 1 else 'ies'}): {hint}")


# --------------------------------------------------------------------------- the maps


def length_map(q, *, activation="tanh", w_std=1.0, b_std=0.0) -> jax.Array:
    """(SP-1) ``q^{l+1} = w_std^2 E phi(sqrt(q^l) z)^2 + b_std^2``, ``z ~ N(0, 1)``.

    ``q >= 0``, ``w_std, b_std >= 0`` (ValueError otherwise)."""
    dtype = _scales(w_std, b_std, q)
    _variance("q", q, dtype)
    q = as_floating(q)
    sigma = get_activation(activation)
    return as_floating(w_std) ** 2 * sigma.two_point(q, q, q) + as_floating(b_std) ** 2


def correlation_map(c, q, *, activation="tanh", w_std=1.0, b_std=0.0) -> jax.Array:
    """(SP-2) ``c^{l+1} = (w^2 E phi(u) phi(v) + b^2) / (w^2 E phi(u)^2 + b^2)``,
    ``(u, v) ~ N(0, q [[1, c], [c, 1]])``.  At ``q = q*`` the denominator is ``q*``
    (Poole et al. 2016, Eq. (3)); at any other ``q`` it is the next layer's length, so the
    pair ``(length_map, correlation_map)`` is the exact infinite-width recursion (K-8) for
    two inputs of equal norm.  ``c`` in [-1, 1]; ``q >= 0`` and ``w_std > 0`` or ``b_std > 0``
    so that the denominator is positive (ValueError otherwise).  Positively homogeneous
    activations with ``b = 0`` use the q-free form ``E phi(u) phi(v) / E phi(u)^2`` (no
    overflow or underflow of ``q`` can reach the correlation)."""
    dtype = _scales(w_std, b_std, c, q)
    _correlation("c", c, dtype)
    _variance("q", q, dtype)
    _defined("q", q, w_std, b_std)
    c, q, w_std, b_std = (as_floating(v) for v in (c, q, w_std, b_std))
    return _correlation_map(get_activation(activation), c, q, w_std, b_std)


def _correlation_map(sigma, c, q, w_std, b_std):
    return _maps(sigma, c, q, w_std, b_std)[1]


def _maps(sigma, c, q, w_std, b_std):
    """(SP-1) and (SP-2) from one two-point call: ``(q', c')``."""
    c, q, w, b = jnp.broadcast_arrays(c, q, w_std, b_std)
    w2, b2 = w * w, b * b
    both = sigma.two_point(jnp.stack([q, q]), jnp.stack([q, q]), jnp.stack([c * q, q]))
    q_new = w2 * both[1] + b2
    out = (w2 * both[0] + b2) / q_new
    if sigma.degree == 1:  # E phi(u) phi(v) = q g(c): scale-free when b = 0
        one = jnp.ones_like(c)
        g = sigma.two_point(jnp.stack([one, one]), jnp.stack([one, one]),
                            jnp.stack([c, one]))
        out = jnp.where(b2 == 0, g[0] / g[1], out)
    return q_new, out


def correlation_slope(c, q, *, activation="tanh", w_std=1.0, b_std=0.0) -> jax.Array:
    """(SP-3) ``chi_c = d c^{l+1} / d c^l = w^2 E phi'(u) phi'(v)`` at ``q = q*`` (Price's
    theorem: the covariance derivative of ``E phi(u) phi(v)`` is ``E phi' phi'``, and the
    factor ``q*`` of the covariance cancels the ``1/q*`` of (SP-2)).  ``b_std`` is unused,
    accepted for a uniform signature."""
    dtype = _scales(w_std, b_std, c, q)
    _correlation("c", c, dtype)
    _variance("q", q, dtype)
    c, q = jnp.broadcast_arrays(as_floating(c), as_floating(q))
    return as_floating(w_std) ** 2 * get_activation(activation).derivative_two_point(q, q, c * q)


def chi_1(q, *, activation="tanh", w_std=1.0, b_std=0.0) -> jax.Array:
    """(SP-3) ``chi_1 = w^2 E phi'(sqrt(q) z)^2``: the slope of the correlation map at
    ``c = 1`` (evaluate at ``q = q*``; :func:`analyze` does).  relu: ``w^2/2``; erf:
    ``w^2 (4/pi) / sqrt(1 + 4 q)``."""
    return correlation_slope(1.0, q, activation=activation, w_std=w_std, b_std=b_std)


def _length_and_slope(sigma, q, w2, b2):
    """(SP-1) and (SP-6) at once: one two-point call on five points (a fourth-order central
    difference with step ``1e-3 q``)."""
    h = 1e-3 * q
    pts = jnp.stack([q, q + h, q - h, q + 2 * h, q - 2 * h])
    L = sigma.two_point(pts, pts, pts)
    return w2 * L[0] + b2, w2 * (8.0 * (L[1] - L[2]) - (L[3] - L[4])) / (12.0 * h)


def length_slope(q, *, activation="tanh", w_std=1.0, b_std=0.0) -> jax.Array:
    """(SP-6) ``d q^{l+1} / d q^l = chi_1 + w^2 E phi(sqrt q z) phi''(sqrt q z)``.

    Positively homogeneous activations (relu, leaky relu, linear): exactly
    ``w^2 E phi(z)^2``.  Otherwise a fourth-order central difference of (SP-1) with step
    ``1e-3 q`` (truncation ~1e-12, round-off ~1e-13 relative): autodiff of the two-point
    quadrature is singular on its diagonal (the angle's derivative at ``theta = 0``).
    Needs ``q > 0`` (``q >= 0`` for the homogeneous ones)."""
    sigma = get_activation(activation)
    dtype = _scales(w_std, b_std, q)
    _variance("q", q, dtype, positive=sigma.degree != 1)
    q = as_floating(q)
    w2 = as_floating(w_std) ** 2
    if sigma.degree == 1:
        one = jnp.ones_like(q)
        return w2 * sigma.two_point(one, one, one)
    return _length_and_slope(sigma, q, w2, as_floating(b_std) ** 2)[1]


# --------------------------------------------------------------------------- iterates




@partial(jax.jit, static_argnames=("depth", "activation"))
def _iterate(q0, c0, w_std, b_std, *, depth, activation):
    w2, b2 = w_std**2, b_std**2
    q1 = w2 * q0 + b2  # the input layer is linear (K-8: K^1 = w^2 x.x'/d + b^2)
    c1 = jnp.where(b2 == 0, c0, (w2 * c0 * q0 + b2) / q1)  # b = 0: c^1 = c0, any q0

    def step(carry, _):
        q, c = carry
        q_new, c_new = _maps(activation, c, q, w_std, b_std)
        return (q_new, c_new), (q_new, c_new)

    _, (qs, cs) = jax.lax.scan(step, (q1, c1), None, length=depth - 1)
    return jnp.concatenate([q1[None], qs]), jnp.concatenate([c1[None], cs])


def iterate_maps(q0, c0, depth: int, *, activation="tanh", w_std=1.0, b_std=0.0):
    """(SP-8) ``(q^l, c^l)`` for the pre-activations ``h^1 ... h^depth`` of two inputs with
    ``||x||^2/d = ||x'||^2/d = q0`` and correlation ``x.x' / ||x|| ||x'|| = c0``.

    Layer 1 is linear in the input, ``q^1 = w^2 q0 + b^2``, ``c^1 = (w^2 c0 q0 + b^2)/q^1``;
    then (SP-1) and (SP-2) at the current ``q^l`` (not at ``q*``: this is the exact
    infinite-width recursion, equal to the NNGP (K-8) normalized by its diagonal).
    Returns two arrays of shape ``(depth,)``; scalar ``q0, c0, w_std, b_std`` (vmap for more).
    ``q0 >= 0``, ``c0`` in [-1, 1], ``w_std, b_std >= 0`` with ``w_std^2 q0 + b_std^2 > 0``
    (ValueError otherwise); a variance that leaves the float range on the way (a
    non-homogeneous activation whose ``q^l`` underflows to 0, say) is a ValueError, never a
    NaN.  Homogeneous activations without bias carry ``c`` in q-free form (SP-2).
    """
    require_int("depth", depth, minimum=1)
    sigma = get_activation(activation)
    for name, v in (("q0", q0), ("c0", c0), ("w_std", w_std), ("b_std", b_std)):
        if jnp.ndim(v) != 0:
            raise ValueError(f"{name} must be a single number, got shape {jnp.shape(v)} "
                             "(vmap over iterate_maps for several values)")
    dtype = _scales(w_std, b_std, q0, c0)
    _variance("q0", q0, dtype)
    _correlation("c0", c0, dtype)
    _defined("q0", q0, w_std, b_std)
    q0, c0, w, b = (as_floating(v) for v in (q0, c0, w_std, b_std))
    dtype = jnp.result_type(q0, c0, w, b)
    out = _iterate(q0.astype(dtype), c0.astype(dtype), w.astype(dtype), b.astype(dtype),
                   depth=int(depth), activation=sigma)
    if is_concrete((out, w_std, b_std)):
        for what, v in (("q", out[0]), ("c", out[1])):
            _finite(f"iterate_maps' {what}", v,
                    f"a layer's variance q^l left the {np.dtype(dtype).name} range at "
                    f"w_std = {float(w_std):g}, b_std = {float(b_std):g}, depth = {depth} "
                    "(it grows or decays geometrically): use fewer layers or scales nearer "
                    "the critical line")
    return out


# --------------------------------------------------------------------------- fixed points


@partial(jax.jit, static_argnames=("activation", "iterations", "newton"))
def _fixed_q(w_std, b_std, q0, *, activation, iterations, newton):
    kw = dict(activation=activation, w_std=w_std, b_std=b_std)
    L = partial(length_map, **kw)
    q = jax.lax.fori_loop(0, iterations, lambda i, q: L(q), q0)

    def polish(i, q):  # safeguarded Newton on g(q) = L(q) - q
        Lq, dL = _length_and_slope(activation, jnp.maximum(q, 1e-300), w_std**2, b_std**2)
        new = q - (Lq - q) / (dL - 1.0)
        return jnp.where((dL < 1.0) & (new > 0) & jnp.isfinite(new), new, Lq)

    return jax.lax.fori_loop(0, newton, polish, q)


def fixed_point_q(*, activation="tanh", w_std=1.0, b_std=0.0, q0=1.0, iterations: int = 20,
                  newton: int = 4) -> jax.Array:
    """(SP-4) ``q*``: the fixed point of the length map reached from ``q0``.

    Positively homogeneous activations (relu, leaky relu, linear): (SP-1) is affine,
    ``q' = a q + b^2`` with ``a = w^2 E phi(z)^2``, so ``q* = b^2/(1 - a)`` for ``a < 1``,
    ``q0`` for ``a = 1, b = 0`` (every ``q`` is fixed), ``inf`` otherwise (the length
    grows without bound).  Any other activation: ``iterations`` steps of (SP-1) from ``q0``
    then ``newton`` safeguarded Newton steps (the length map of a bounded activation
    converges in a few layers, Poole et al. 2016 Fig. 1; the Newton steps take it to
    round-off).  With ``b = 0`` and ``chi_1(0) = w^2 phi'(0)^2 <= 1`` the fixed point is 0
    and is approached slowly; the result is then only near 0.
    """
    sigma = get_activation(activation)
    dtype = _scales(w_std, b_std, q0)
    _variance("q0", q0, dtype)
    require_int("iterations", iterations, minimum=0)
    require_int("newton", newton, minimum=0)
    w, b, q0 = as_floating(w_std), as_floating(b_std), as_floating(q0)
    if sigma.degree == 1:
        a = w * w * sigma.two_point(1.0, 1.0, 1.0)
        b2 = b * b
        critical = jnp.abs(a - 1.0) <= 1e-12  # w^2 = 2 for relu, up to the rounding of w
        return jnp.where((a < 1) & ~critical, b2 / jnp.where(a < 1, 1 - a, 1.0),
                         jnp.where(critical & (b2 == 0), q0, jnp.inf))
    w, b, q0 = jnp.broadcast_arrays(w, b, q0)
    return _fixed_q(w, b, q0, activation=sigma, iterations=int(iterations),
                    newton=int(newton))


_GRID = 255  # correlations per refinement round: one 256-entry block of the quadrature


@partial(jax.jit, static_argnames=("activation", "rounds"))
def _fixed_c(q_star, w_std, b_std, *, activation, rounds):
    """Smallest root of M(c) = c in [0, 1] for one point: each round evaluates M on 255
    points of the current bracket (one quadrature block) and keeps the cell where
    M(c) - c changes sign; the bracket shrinks 254-fold per round."""
    t = jnp.linspace(0.0, 1.0, _GRID, dtype=q_star.dtype)

    def refine(i, bounds):
        lo, hi = bounds
        c = lo + (hi - lo) * t
        above = _correlation_map(activation, c, jnp.full_like(c, q_star), w_std,
                                 b_std) > c  # M(c) > c below c*
        k = jnp.clip(jnp.sum(jnp.cumprod(above)) - 1, 0, _GRID - 2)  # last cell still above
        return c[k], c[k + 1]

    lo, hi = jax.lax.fori_loop(0, rounds, refine, (jnp.zeros_like(q_star),
                                                   jnp.ones_like(q_star)))
    return 0.5 * (lo + hi)


def fixed_point_c(q_star, *, activation="tanh", w_std=1.0, b_std=0.0,
                  rounds: int = 7) -> jax.Array:
    """(SP-5) ``c*``: the stable fixed point of the correlation map at ``q*`` in [0, 1].

    ``c = 1`` is always fixed; it is stable iff ``chi_1 <= 1`` (ordered phase), and then
    ``c* = 1``.  Otherwise (chaotic phase) ``c*`` is the root of ``M(c) = c`` below 1:
    ``M`` is increasing (its slope ``chi_c`` is an expectation of ``phi' phi'``, positive
    for a monotone phi), ``M(0) = (w^2 (E phi)^2 + b^2)/q* >= 0`` and ``M(c) < c`` just
    below 1, so the first sign change of ``M(c) - c`` on [0, 1] is the stable root.  Found
    by ``rounds`` grid refinements (254^-7 ~ 1e-17).  Elementwise over broadcast inputs."""
    sigma = get_activation(activation)
    dtype = _scales(w_std, b_std, q_star)
    _variance("q_star", q_star, dtype)
    _defined("q_star", q_star, w_std, b_std)
    require_int("rounds", rounds, minimum=1)
    q, w, b = jnp.broadcast_arrays(as_floating(q_star), as_floating(w_std), as_floating(b_std))
    ordered = chi_1(q, activation=sigma, w_std=w) <= 1.0 + 1e-12  # c = 1 stable
    one = partial(_fixed_c, activation=sigma, rounds=int(rounds))
    # one point at a time: a vmap would batch the 255-point quadrature over every point
    c = jax.lax.map(lambda a: one(*a), (q.ravel(), w.ravel(), b.ravel())).reshape(q.shape)
    return jnp.where(ordered, jnp.ones_like(c), c)


def depth_scales(q_star, c_star, *, activation="tanh", w_std=1.0, b_std=0.0):
    """(SP-6), (SP-7) ``(xi_q, xi_c)``: ``xi_q = -1/log(dq'/dq at q*)`` (Schoenholz et al.
    2017, Eq. (5)), ``xi_c = -1/log(chi_c)`` with ``chi_c = w^2 E phi'(u) phi'(v)`` at
    ``(q*, c*)`` (their Eq. (9); ``chi_c = chi_1`` in the ordered phase, ``c* = 1``).
    Both diverge at the boundary ``chi_1 = 1`` (SP-9): ``xi_c = inf`` there."""
    sigma = get_activation(activation)
    dtype = _scales(w_std, b_std, q_star, c_star)
    _variance("q_star", q_star, dtype, positive=sigma.degree != 1)
    _correlation("c_star", c_star, dtype)
    kw = dict(activation=sigma, w_std=w_std, b_std=b_std)
    slope_q = length_slope(q_star, **kw)
    slope_c = correlation_slope(c_star, q_star, **kw)
    xi = lambda s: jnp.where(s < 1, -1.0 / jnp.log(jnp.where(s < 1, s, 0.5)), jnp.inf)  # noqa: E731
    return xi(slope_q), xi(slope_c)


class SignalPropagation(NamedTuple):
    """What :func:`analyze` returns (elementwise over broadcast ``w_std``, ``b_std``)."""

    q_star: jax.Array
    c_star: jax.Array
    chi_1: jax.Array
    chi_c: jax.Array
    xi_q: jax.Array
    xi_c: jax.Array


def analyze(*, activation="tanh", w_std=1.0, b_std=0.0, q0=1.0) -> SignalPropagation:
    """Fixed points (SP-4, SP-5), slopes (SP-3) and depth scales (SP-6, SP-7) at
    ``(w_std, b_std)`` (elementwise over broadcast arrays; one compiled program per
    activation).  Where the length diverges (relu with ``w^2 > 2``, or ``w^2 = 2`` and
    ``b > 0``) ``q* = inf`` and everything else is NaN."""
    sigma = get_activation(activation)
    dtype = _scales(w_std, b_std, q0)
    _variance("q0", q0, dtype)
    w, b, q0 = jnp.broadcast_arrays(as_floating(w_std), as_floating(b_std), as_floating(q0))
    return _analyze(w, b, q0, activation=sigma)


@partial(jax.jit, static_argnames=("activation",))
def _analyze(w_std, b_std, q0, *, activation):
    sigma = activation
    kw = dict(activation=sigma, w_std=w_std, b_std=b_std)
    q = fixed_point_q(q0=q0, **kw)
    finite = jnp.isfinite(q)
    qf = jnp.where(finite, q, 1.0)
    c = fixed_point_c(qf, **kw)
    x1 = chi_1(qf, **kw)
    xc = correlation_slope(c, qf, **kw)
    xi_q, xi_c = depth_scales(jnp.maximum(qf, 1e-300), c, **kw)
    nan = lambda v: jnp.where(finite, v, jnp.nan)  # noqa: E731
    return SignalPropagation(q, nan(c), nan(x1), nan(xc), nan(xi_q), nan(xi_c))


def critical_line(q_star, *, activation="tanh"):
    """(SP-9) The order-to-chaos boundary ``chi_1 = 1`` in the ``(w_std^2, b_std^2)`` plane,
    parametrized by the fixed point ``q*`` on it (Poole et al. 2016, Fig. 2): ``chi_1 = 1``
    gives ``w^2 = 1 / E phi'(sqrt(q*) z)^2`` and ``q* = L(q*)`` then gives
    ``b^2 = q* - w^2 E phi(sqrt(q*) z)^2``.  Returns ``(w2, b2)``, elementwise in
    ``q_star``; points with ``b2 < 0`` are off the physical boundary (NaN).  relu: the
    single point ``(2, 0)`` for every ``q*`` (``w^2 = 2`` and ``b^2 = q* - 2 q*/2 = 0``)."""
    sigma = get_activation(activation)
    _variance("q_star", q_star, float_dtype(q_star), positive=True)
    q = as_floating(q_star)
    w2 = 1.0 / sigma.derivative_two_point(q, q, q)
    b2 = q - w2 * sigma.two_point(q, q, q)
    b2 = jnp.where(jnp.abs(b2) <= 1e-12 * q, 0.0, b2)
    ok = b2 >= 0
    return jnp.where(ok, w2, jnp.nan), jnp.where(ok, b2, jnp.nan)
