r"""Activations are objects: the function, its derivative and its Gaussian facts in one place.

Implements theory/activations.md, Eqs. (A-1)–(A-9).  An :class:`Activation` is callable
(``act(z)``), so every model that calls ``get_activation(name)(z)`` works unchanged, and it
answers every question the closed forms ask (in the spirit of neural-tangents' ``stax``
elementwise layers, which carry their own kernel transform):

* ``act.derivative(z)``: ``sigma'(z)``, by autodiff unless a closed form is given;
* ``act.mean(q)`` = ``E sigma(sqrt(q) G)`` and ``act.moments(mean, var)`` =
  ``(E sigma(U), E sigma'(U), E sigma(U)^2)``, ``U ~ N(mean, var)`` (A-3);
* ``act.two_point(qx, qy, c)`` = ``E sigma(u) sigma(v)`` and ``act.derivative_two_point``
  = ``E sigma'(u) sigma'(v)``, ``(u, v) ~ N(0, [[qx, c], [c, qy]])`` (A-5);
* ``act.correlation(rho)``: both at unit variances, for positively homogeneous ones (A-7);
* ``act.hermite()`` = ``(mu0, mu1, mu_star)``, the Mei–Montanari constants (A-8);
* ``act.odd``, ``act.even``, ``act.degree`` (homogeneity degree, None if not homogeneous).

Each fact is a closed form where one was supplied (relu, leaky relu of any slope, erf,
linear, sin, cos; gelu's mean) and one-point (A-4) or polar (A-6) quadrature otherwise.
:meth:`Activation.verify` checks every supplied closed form against quadrature (A-9).

Names: :func:`get_activation` resolves a name (``ACTIVATIONS``, the process-wide registry)
or wraps any jax-differentiable callable (quadrature facts).  :func:`register` adds a new
activation under its name, so that experiment configs (which hold names) can use it::

    >>> import jax.numpy as jnp
    >>> from rfsim.activations import Activation, get_activation
    >>> cube = Activation("cube_doc", lambda z: z**3, odd=True, degree=3,
    ...                   two_point=lambda qx, qy, c: 9 * qx * qy * c + 6 * c**3)
    >>> round(float(cube.two_point(1.0, 1.0, 0.5)), 10)
    5.25
    >>> get_activation("relu").degree, get_activation("erf").odd
    (1.0, True)
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf
from jax.scipy.stats import norm

from rfsim.theory.gaussian import (
    QUADRATURE_ORDER,
    arccos_expectation,
    as_floating,
    erf_derivative_two_point,
    erf_two_point,
    one_point_moments,
    piecewise_linear_two_point,
    polar_two_point,
    relu_correlation,
)
from rfsim.validation import closest  # noqa: F401  (re-exported: its old home)

__all__ = [
    "ACTIVATIONS",
    "FACTS",
    "Activation",
    "check_facts",
    "get_activation",
    "is_homogeneous",
    "leaky_relu",
    "register",
]

#: the facts an :class:`Activation` may be given in closed form (constructor keywords)
FACTS = ("derivative", "mean", "moments", "two_point", "derivative_two_point", "correlation")

# Mei–Montanari constants by quadrature: the one-point rule at two orders must
# agree to max(1e-11, 1e4 eps), else adaptive quadrature (a callable with a kink off 0).
_LOW, _HIGH, _RTOL = 64, 96, 1e-11
# mu*^2 below this fraction of E sigma(G)^2 counts as "the activation is linear"
_MUSTAR_REL_TOL = 1e-12


def _host(fn, *args):
    """``fn(*args)`` evaluated now (also while a caller is traced), as float64 numpy."""
    with jax.ensure_compile_time_eval():
        out = fn(*args)
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), out)


class Activation:
    r"""One activation and its Gaussian facts (theory/activations.md, A-1–A-9).

    Args:
        name: the name configs use (:func:`register` makes it resolvable).
        fn: elementwise, jax-differentiable ``sigma``.
        derivative: closed-form ``sigma'`` (default: ``jax.grad`` vectorized, A-2).
        odd, even: ``sigma(-z) = -sigma(z)`` / ``sigma(-z) = sigma(z)`` (A-1).
        degree: ``k`` with ``sigma(a z) = a^k sigma(z)`` for every ``a > 0`` (A-1), or None.
        mean: closed form of ``q -> E sigma(sqrt(q) G)`` (A-3).
        moments: closed form of ``(mean, var) -> (E sigma(U), E sigma'(U), E sigma(U)^2)``.
        two_point, derivative_two_point: closed forms of ``(qx, qy, c) -> E sigma(u)
            sigma(v)`` and ``E sigma'(u) sigma'(v)`` (A-5).
        correlation: for ``degree == 1``, a closed form of ``rho -> (E sigma(u) sigma(v),
            E sigma'(u) sigma'(v))`` at unit variances and correlation ``rho`` (A-7).
        params: the parameters a factory built it from (``leaky_relu(slope)``: slope).

    Every closed form receives float arrays broadcast to one shape and must return arrays
    of that shape and dtype.  Objects compare equal when built from the same pieces; they
    are hashable, so one may be a static argument of ``jax.jit``.
    """

    def __init__(self, name: str, fn: Callable, *, derivative: Callable | None = None,
                 odd: bool = False, even: bool = False, degree: float | None = None,
                 mean: Callable | None = None, moments: Callable | None = None,
                 two_point: Callable | None = None,
                 derivative_two_point: Callable | None = None,
                 correlation: Callable | None = None, params: dict | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not callable(fn):
            raise ValueError(f"fn must be callable (an elementwise jax function), got {fn!r}")
        given = dict(derivative=derivative, mean=mean, moments=moments, two_point=two_point,
                     derivative_two_point=derivative_two_point, correlation=correlation)
        for fact, value in given.items():
            if value is not None and not callable(value):
                raise ValueError(f"{fact} must be a callable closed form or None, got "
                                 f"{value!r}")
        for flag, value in (("odd", odd), ("even", even)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        if odd and even:
            raise ValueError(f"odd and even cannot both be True (activation {name!r}: only "
                             "the zero function is both)")
        if degree is not None:
            if isinstance(degree, bool) or not isinstance(degree, (int, float, np.number)) \
                    or not math.isfinite(degree) or degree <= 0:
                raise ValueError(f"degree must be a positive number (sigma(a z) = a^degree "
                                 f"sigma(z) for a > 0) or None, got {degree!r}")
            degree = float(degree)
        if correlation is not None and degree != 1.0:
            raise ValueError(f"correlation is the unit-variance form of a degree-1 "
                             f"homogeneous activation: it needs degree=1, got {degree!r}")
        self.name = name
        self.fn = fn
        self.odd, self.even, self.degree = bool(odd), bool(even), degree
        self.params = dict(params or {})
        self._closed = {k: v for k, v in given.items() if v is not None}
        self._cache: dict = {}
        self._hash = hash(self._key())  # the pieces never change: hashed once (a jit key)

    # ------------------------------------------------------------------ identity

    def _key(self):
        return (self.name, self.fn, self.odd, self.even, self.degree,
                tuple(sorted(self.params.items())),
                tuple(sorted(self._closed.items(), key=lambda kv: kv[0])))

    def __eq__(self, other):
        return isinstance(other, Activation) and self._key() == other._key()

    def __hash__(self):
        return self._hash

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name!r}{extra})"

    @property
    def closed_forms(self) -> tuple[str, ...]:
        """The facts given in closed form (the others are quadrature)."""
        return tuple(f for f in FACTS if f in self._closed)

    def has_closed_form(self, fact: str) -> bool:
        """Whether ``fact`` (one of :data:`FACTS`) is a closed form."""
        if fact not in FACTS:
            raise ValueError(f"fact must be one of {list(FACTS)}, got {fact!r}")
        return fact in self._closed

    # ------------------------------------------------------------------ the function

    def __call__(self, z):
        """``sigma(z)``, elementwise."""
        return self.fn(z)

    def derivative(self, z):
        """``sigma'(z)``, elementwise (A-2): the closed form, else autodiff of ``fn``."""
        if "derivative" in self._closed:
            return self._closed["derivative"](z)
        return self._autodiff(z)

    def _autodiff(self, z):
        return jnp.vectorize(jax.grad(self.fn))(as_floating(z))

    # ------------------------------------------------------------------ one point

    def mean(self, q) -> jax.Array:
        """``E sigma(sqrt(q) G)``, ``G ~ N(0, 1)``, elementwise in ``q >= 0`` (A-3): closed
        form, else 0 for an odd activation, else quadrature (A-4)."""
        q = as_floating(q)
        if "mean" in self._closed:
            return self._closed["mean"](q)
        if self.odd:
            return jnp.zeros_like(q)
        return one_point_moments(self.fn, jnp.zeros_like(q), q)[0]

    def moments(self, mean, var):
        """``(E sigma(U), E sigma'(U), E sigma(U)^2)``, ``U ~ N(mean, var)``, elementwise
        (A-3; K-1): closed form, else quadrature (A-4), ``E sigma'(U)`` by Stein's lemma
        ``E[(U - mean) sigma(U)] / var`` (defined at kinks too).  ``var`` must be > 0."""
        b, q = jnp.broadcast_arrays(as_floating(mean), as_floating(var))
        if "moments" in self._closed:
            return tuple(self._closed["moments"](b, q))
        return one_point_moments(self.fn, b, q)

    # ------------------------------------------------------------------ two points

    def two_point(self, qx, qy, c, *, order: int = QUADRATURE_ORDER) -> jax.Array:
        """``E sigma(u) sigma(v)``, ``(u, v) ~ N(0, [[qx, c], [c, qy]])``, elementwise (A-5):
        the closed form, else the polar quadrature (A-6) with ``order`` nodes per arc."""
        qx, qy, c = jnp.broadcast_arrays(as_floating(qx), as_floating(qy), as_floating(c))
        if "two_point" in self._closed:
            return self._closed["two_point"](qx, qy, c)
        return polar_two_point(self.fn, qx, qy, c, order)

    def derivative_two_point(self, qx, qy, c, *, order: int = QUADRATURE_ORDER) -> jax.Array:
        """``E sigma'(u) sigma'(v)`` (the NTK's derivative kernel), as :meth:`two_point`;
        the quadrature integrates :meth:`derivative`."""
        qx, qy, c = jnp.broadcast_arrays(as_floating(qx), as_floating(qy), as_floating(c))
        if "derivative_two_point" in self._closed:
            return self._closed["derivative_two_point"](qx, qy, c)
        return polar_two_point(self.derivative, qx, qy, c, order)

    def correlation(self, rho, *, order: int = QUADRATURE_ORDER):
        """``(E sigma(u) sigma(v), E sigma'(u) sigma'(v))`` at unit variances and correlation
        ``rho`` (A-7).  For ``degree == 1`` they give every variance: ``E sigma sigma =
        sqrt(qx qy) g(rho)``, ``E sigma' sigma' = h(rho)`` (the kernel recursion's fast
        path); ValueError for other activations."""
        if self.degree != 1.0:
            raise ValueError(f"correlation needs a degree-1 homogeneous activation, got "
                             f"{self.name!r} with degree {self.degree!r}")
        rho = as_floating(rho)
        if "correlation" in self._closed:
            return tuple(self._closed["correlation"](rho))
        one = jnp.ones_like(rho)
        return (self.two_point(one, one, rho, order=order),
                self.derivative_two_point(one, one, rho, order=order))

    # ------------------------------------------------------------------ constants

    def hermite(self) -> tuple[float, float, float]:
        """``(mu0, mu1, mu_star)`` of (A-8): ``mu0 = E sigma(G)``, ``mu1 = E G sigma(G) =
        E sigma'(G)``, ``mu_star = sqrt(E sigma(G)^2 - mu0^2 - mu1^2)``, ``G ~ N(0, 1)``
        (Mei & Montanari 2019's constants).  Python floats, in the default float precision,
        cached.  From :meth:`moments` when it is a closed form; otherwise the quadrature
        (A-4) at 96 nodes checked against 64 (round-off for sigma smooth away from 0), and
        adaptive quadrature when they disagree (a kink off 0).  ``mu_star`` is 0 when
        ``mu_star^2 <= max(1e-12, 100 eps) E sigma(G)^2`` (a linear activation)."""
        key = ("hermite", bool(jax.config.jax_enable_x64))
        if key not in self._cache:
            self._cache[key] = self._hermite()
        return self._cache[key]

    def _hermite(self):
        if "moments" in self._closed:
            m = _host(self.moments, 0.0, 1.0)
            mu0, mu1, second = (float(v) for v in m)
            eps = float(jnp.finfo(jnp.result_type(float)).eps)
        else:
            mu0, mu1, second, eps = _hermite_by_quadrature(self.fn)
        if not all(math.isfinite(v) for v in (mu0, mu1, second)):
            raise ValueError(f"activation {self.name!r} has non-finite Gaussian moments "
                             f"(E sigma = {mu0}, E G sigma = {mu1}, E sigma^2 = {second})")
        mustar_sq = second - mu0 * mu0 - mu1 * mu1
        if mustar_sq <= max(_MUSTAR_REL_TOL, 100.0 * eps) * max(second, 1e-300):
            mustar_sq = 0.0
        return float(mu0), float(mu1), float(math.sqrt(mustar_sq))

    # ------------------------------------------------------------------ checking

    def verify(self, *, rtol: float | None = None) -> Activation:
        """Check every closed-form fact and every declared property against quadrature
        (A-9); return ``self``.  See :func:`check_facts`."""
        check_facts(self, rtol=rtol)
        return self


# --------------------------------------------------------------------------- quadrature


def _hermite_by_quadrature(fn):
    """(mu0, mu1, E sigma(G)^2, eps) by the one-point rule (A-4) at two orders, adaptive on
    disagreement; ``eps`` is that of the precision ``fn`` was evaluated in."""
    eps = float(jnp.finfo(jnp.result_type(float)).eps)
    low, high = (tuple(float(v) for v in _host(one_point_moments, fn, 0.0, 1.0, order))
                 for order in (_LOW, _HIGH))
    rtol = max(_RTOL, 1e4 * eps)
    scale = math.sqrt(max(abs(high[2]), 1e-300))
    if all(abs(a - b) <= rtol * max(scale, abs(b)) for a, b in zip(low, high)):
        return (*high, eps)
    return (*_adaptive_moments(lambda z: _host(fn, jnp.asarray(z))), eps)


def _adaptive_moments(np_fn):
    """(E f(G), E G f(G), E f(G)^2) by scipy's adaptive quadrature on [-40, 0] and [0, 40]."""
    from scipy.integrate import IntegrationWarning, quad

    def f(z):
        return float(np_fn(np.asarray([z], dtype=np.float64))[0])

    def moment(g):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IntegrationWarning)
            return sum(quad(lambda z: g(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                            lo, hi, epsabs=1e-14, epsrel=1e-12, limit=400)[0]
                       for lo, hi in ((-40.0, 0.0), (0.0, 40.0)))

    return moment(f), moment(lambda z: z * f(z)), moment(lambda z: f(z) ** 2)


# --------------------------------------------------------------------------- checking

# (qx, qy, rho) where two-point closed forms are compared with quadrature, and one-point
# (mean, var) for the moments: moderate variances, both signs of the correlation
_PAIRS = ((1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (2.5, 0.4, 0.9), (1.5, 1.5, 1.0), (0.8, 1.2, 0.0))
_POINTS = ((0.0, 1.0), (0.0, 0.3), (0.4, 1.7), (-1.1, 0.6))
_Z = (-2.3, -1.1, -0.35, 0.2, 0.7, 1.6, 2.9)


def _default_rtol() -> float:
    """1e-8 in float64, 1e-4 in float32: the quadratures reach ~1e-10 (A-6) and ~1e-13."""
    return 1e-8 if jnp.result_type(float) == jnp.float64 else 1e-4


def _disagree(act, fact, where, got, want, tol, scale):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    bad = ~(np.abs(got - want) <= tol * (np.abs(want) + scale))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"activation {act.name!r}: {fact} disagrees with quadrature at {where[i]}: "
            f"closed form {got.ravel()[i]:.12g}, quadrature {want.ravel()[i]:.12g} "
            f"(allowed: relative {tol:g}, theory/activations.md A-9)")


def check_facts(act: Activation, *, rtol: float | None = None) -> None:
    """Compare every closed-form fact of ``act``, and its declared oddness, evenness and
    homogeneity degree, with an independent evaluation (A-9): two-point facts with the polar
    quadrature (A-6) at five ``(qx, qy, rho)``, one-point facts with the split rule (A-4) at
    four ``(mean, var)``, the derivative with autodiff and the properties with ``fn`` at
    seven points.  Raises ValueError naming the fact, the point and both values when
    ``|closed - quadrature| > rtol (|quadrature| + scale)`` (``scale``: the Cauchy–Schwarz
    size ``sqrt(E sigma(u)^2 E sigma(v)^2)`` for two-point facts, 1e-3 otherwise).  The
    quadratures are accurate for activations smooth away from 0: a closed form for one
    with a kink elsewhere cannot be checked this way.  ``rtol`` default: 1e-8 in float64,
    1e-4 in float32."""
    if not isinstance(act, Activation):
        raise ValueError(f"check_facts needs an Activation, got {act!r}")
    tol = _default_rtol() if rtol is None else float(rtol)
    fn = act.fn
    z = np.asarray(_Z)
    sz = _host(fn, jnp.asarray(z))
    for flag, sign in (("odd", -1.0), ("even", 1.0)):
        if getattr(act, flag):
            _disagree(act, f"{flag} = True (sigma(-z) = {sign:+g} sigma(z))",
                      [f"z = {v}" for v in z], _host(fn, jnp.asarray(-z)), sign * sz, tol,
                      1e-3)
    if act.degree is not None:
        _disagree(act, f"degree = {act.degree:g} (sigma(2 z) = 2^degree sigma(z))",
                  [f"z = {v}" for v in z], _host(fn, jnp.asarray(2 * z)),
                  2.0 ** act.degree * sz, tol, 1e-3)
    if "derivative" in act._closed:
        _disagree(act, "derivative", [f"z = {v}" for v in z],
                  _host(act.derivative, jnp.asarray(z)), _host(act._autodiff, jnp.asarray(z)),
                  tol, 1e-3)
    qs = np.asarray([p[0] for p in _PAIRS]), np.asarray([p[1] for p in _PAIRS])
    c = np.asarray([p[2] for p in _PAIRS]) * np.sqrt(qs[0] * qs[1])
    where = [f"(qx, qy, c) = ({a:g}, {b:g}, {v:.4g})" for a, b, v in zip(*qs, c)]
    diag = [_host(polar_two_point, fn, q, q, q) for q in qs]
    scale = np.sqrt(np.abs(diag[0] * diag[1]))
    if "two_point" in act._closed:
        _disagree(act, "two_point", where, _host(act.two_point, *qs, c),
                  _host(polar_two_point, fn, *qs, c), tol, scale)
    if "derivative_two_point" in act._closed:
        dd = [_host(polar_two_point, act.derivative, q, q, q) for q in qs]
        _disagree(act, "derivative_two_point", where,
                  _host(act.derivative_two_point, *qs, c),
                  _host(polar_two_point, act.derivative, *qs, c), tol,
                  np.sqrt(np.abs(dd[0] * dd[1])))
    if "correlation" in act._closed:
        rho = np.asarray([p[2] for p in _PAIRS])
        got = _host(act.correlation, rho)
        one = np.ones_like(rho)
        wrho = [f"rho = {r:g}" for r in rho]
        _disagree(act, "correlation (E sigma sigma)", wrho, got[0],
                  _host(polar_two_point, fn, one, one, rho), tol, 1e-3)
        _disagree(act, "correlation (E sigma' sigma')", wrho, got[1],
                  _host(polar_two_point, act.derivative, one, one, rho), tol, 1e-3)
    b = np.asarray([p[0] for p in _POINTS])
    v = np.asarray([p[1] for p in _POINTS])
    wpt = [f"(mean, var) = ({x:g}, {y:g})" for x, y in zip(b, v)]
    ref = _host(one_point_moments, fn, b, v)
    if "moments" in act._closed:
        got = _host(act.moments, b, v)
        for i, what in enumerate(("E sigma(U)", "E sigma'(U)", "E sigma(U)^2")):
            _disagree(act, f"moments ({what})", wpt, got[i], ref[i], tol, 1e-3)
    if "mean" in act._closed or act.odd:
        qm = v
        _disagree(act, "mean" if "mean" in act._closed else "mean (0 for odd = True)",
                  [f"q = {x:g}" for x in qm], _host(act.mean, qm),
                  _host(one_point_moments, fn, 0.0 * qm, qm)[0], tol, 1e-3)


# --------------------------------------------------------------------------- the built-ins


def _relu(z):
    return jnp.maximum(z, 0.0)


def _relu_moments(b, q):
    """(K-1) relu, any mean: t = b/sqrt(q), m = b Phi(t) + sqrt(q) phi(t), kappa1 = Phi(t),
    second = (b^2 + q) Phi(t) + b sqrt(q) phi(t)."""
    s = jnp.sqrt(q)
    t = b / s
    cdf, pdf = norm.cdf(t), norm.pdf(t)
    return b * cdf + s * pdf, cdf, (b * b + q) * cdf + b * s * pdf


def _relu_mean(q):
    return jnp.sqrt(q / (2.0 * math.pi))


def _relu_correlation(rho):
    k0, k1 = relu_correlation(rho)
    return k1, k0


def _gelu(z):
    # exact (erf) GELU: z * Phi(z)
    return 0.5 * z * (1.0 + erf(z / jnp.sqrt(2.0).astype(jnp.result_type(z))))


def _gelu_mean(q):
    """(A-3) E[z Phi(z)], z ~ N(0, q) = q E phi(z) = q / sqrt(2 pi (1 + q)) (Stein)."""
    return q / jnp.sqrt(2.0 * math.pi * (1.0 + q))


def _linear(z):
    return z


def _linear_moments(b, q):
    return b, jnp.ones_like(q), b * b + q


def _erf_derivative(z):
    return (2.0 / math.sqrt(math.pi)) * jnp.exp(-z * z)


def _erf_moments(b, q):
    """(K-1) erf: m = erf(b/sqrt(1+2q)), kappa1 = 2 exp(-b^2/(1+2q)) / sqrt(pi (1+2q)),
    second = (2/pi) arcsin(2q/(1+2q)) at b = 0 (quadrature A-4 otherwise)."""
    g = 1.0 + 2.0 * q
    _, _, second = one_point_moments(erf, b, q)
    return (erf(b / jnp.sqrt(g)),
            2.0 / math.sqrt(math.pi) * jnp.exp(-b * b / g) / jnp.sqrt(g),
            jnp.where(b == 0, 2.0 / math.pi * jnp.arcsin(2.0 * q / g), second))


def _softplus(z):
    return jnp.logaddexp(z, 0.0)


def _trig_two_point(sign):
    """(A-5) sin: E sin u sin v = e^{-(qx+qy)/2} sinh c; cos: e^{-(qx+qy)/2} cosh c (from
    sin u sin v = [cos(u-v) - cos(u+v)]/2 and E cos W = e^{-Var W / 2})."""
    def two_point(qx, qy, c):
        e = jnp.exp(-0.5 * (qx + qy))
        return e * (jnp.sinh(c) if sign < 0 else jnp.cosh(c))
    return two_point


def _sin_moments(b, q):
    e = jnp.exp(-0.5 * q)
    return jnp.sin(b) * e, jnp.cos(b) * e, 0.5 * (1.0 - jnp.cos(2.0 * b) * jnp.exp(-2.0 * q))


def _cos_moments(b, q):
    e = jnp.exp(-0.5 * q)
    return jnp.cos(b) * e, -jnp.sin(b) * e, 0.5 * (1.0 + jnp.cos(2.0 * b) * jnp.exp(-2.0 * q))


def leaky_relu(slope: float = 0.01) -> Activation:
    """``sigma(z) = max(z, 0) + slope min(z, 0)`` (jax.nn.leaky_relu's convention), with the
    closed forms of (K-4) and (A-3) for any slope: one object per slope (cached).

    The one-point facts: ``sigma = (1 - a) relu + a z`` (``a = slope``), so ``m = (1 - a)
    m_relu + a b``, ``kappa1 = (1 - a) Phi(t) + a``, ``second = (1 - a^2) second_relu + a^2
    (b^2 + q)`` (since ``relu(U) U = relu(U)^2``).  ``slope = 1`` is linear (odd),
    ``slope = -1`` is ``|z|`` (even).  Named ``leaky_relu`` for the registered slope 0.01."""
    if isinstance(slope, bool) or not isinstance(slope, (int, float, np.number)) \
            or not math.isfinite(slope):
        raise ValueError(f"slope must be a finite number, got {slope!r}")
    return _leaky_relu(float(slope))


@functools.lru_cache(maxsize=None)
def _leaky_relu(a: float) -> Activation:
    def fn(z):
        return jnp.where(z >= 0, z, a * z)

    def moments(b, q):
        m, k1, second = _relu_moments(b, q)
        return (1.0 - a) * m + a * b, (1.0 - a) * k1 + a, (1.0 - a * a) * second + a * a * (
            b * b + q)

    return Activation(
        "leaky_relu" if a == 0.01 else f"leaky_relu({a:g})", fn, degree=1,
        odd=a == 1.0, even=a == -1.0,
        derivative=lambda z: jnp.where(z >= 0, jnp.ones_like(z), a * jnp.ones_like(z)),
        mean=lambda q: (1.0 - a) * _relu_mean(q), moments=moments,
        two_point=functools.partial(piecewise_linear_two_point, a, 1.0, 1),
        derivative_two_point=functools.partial(piecewise_linear_two_point, a, 1.0, 0),
        params={"slope": a})


_BUILTINS = (
    Activation("relu", _relu, degree=1, mean=_relu_mean, moments=_relu_moments,
               two_point=functools.partial(arccos_expectation, 1),
               derivative_two_point=functools.partial(arccos_expectation, 0),
               correlation=_relu_correlation),
    Activation("erf", erf, odd=True, derivative=_erf_derivative, moments=_erf_moments,
               two_point=erf_two_point, derivative_two_point=erf_derivative_two_point),
    Activation("tanh", jnp.tanh, odd=True),
    Activation("gelu", _gelu, mean=_gelu_mean),
    Activation("linear", _linear, odd=True, degree=1, moments=_linear_moments,
               derivative=jnp.ones_like, two_point=lambda qx, qy, c: c,
               derivative_two_point=lambda qx, qy, c: jnp.ones_like(c),
               correlation=lambda rho: (rho, jnp.ones_like(rho))),
    leaky_relu(0.01),
    Activation("softplus", _softplus),
    Activation("sin", jnp.sin, odd=True, derivative=jnp.cos, moments=_sin_moments,
               two_point=_trig_two_point(-1), derivative_two_point=_trig_two_point(+1)),
    Activation("cos", jnp.cos, even=True, derivative=lambda z: -jnp.sin(z),
               moments=_cos_moments, two_point=_trig_two_point(+1),
               derivative_two_point=_trig_two_point(-1)),
)

#: the process-wide registry, name -> :class:`Activation` (built-ins and :func:`register`)
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _BUILTINS}
_BUILTIN_NAMES = frozenset(ACTIVATIONS)


def register(act: Activation, *, replace: bool = False, verify: bool = True) -> Activation:
    """Make ``act`` resolvable by its name everywhere (``get_activation(act.name)``,
    experiment configs' ``activation = "<name>"``) and return it.

    The registry is process-wide (a module-level dict): register before the configs that
    name it are built, in every process that runs them.  A taken name is refused unless
    the object is equal to the registered one (registering twice is harmless) or
    ``replace=True`` (never for the built-ins).  ``verify`` (default) first runs
    :func:`check_facts`, so a wrong closed form is refused here (A-9)."""
    if not isinstance(act, Activation):
        raise ValueError(f"register needs an Activation (e.g. Activation('cube', lambda z: "
                         f"z**3)), got {act!r}")
    old = ACTIVATIONS.get(act.name)
    if old is not None and old != act:
        if not replace or act.name in _BUILTIN_NAMES:
            raise ValueError(
                f"activation name {act.name!r} is taken by {old!r}"
                + (" (a built-in)" if act.name in _BUILTIN_NAMES else
                   "; pass replace=True to replace it in this process")
                + "; choose another name")
    if verify:
        check_facts(act)
    ACTIVATIONS[act.name] = act
    return act


def get_activation(activation, *, field: str = "activation") -> Activation:
    """The :class:`Activation` of a registered name (relu, erf, tanh, gelu, linear,
    leaky_relu (slope 0.01), softplus, sin, cos and every :func:`register`-ed one), or of
    any jax-differentiable callable (wrapped with quadrature facts; an Activation passes
    through).  ValueError naming ``field`` otherwise."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    if callable(activation):
        return _wrap(activation)
    raise ValueError(
        f"{field} must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}"
        + closest(activation, ACTIVATIONS)
    )


def _wrap(fn) -> Activation:
    """A plain callable as an Activation with quadrature facts (equal wraps compare equal,
    so jit caches keyed on it hit)."""
    return Activation(getattr(fn, "__name__", None) or repr(fn), fn)


def is_homogeneous(sigma) -> bool:
    """Positively homogeneous of degree 1, ``sigma(a z) = a sigma(z)`` for ``a > 0`` (relu,
    linear, every leaky relu): ``get_activation(sigma).degree == 1``.  Kept for earlier
    callers; new code asks the object."""
    return get_activation(sigma).degree == 1.0


def name_of(sigma) -> str | None:
    """Deprecated: the registered name of an activation, or None.  Ask ``act.name``."""
    act = get_activation(sigma)
    return act.name if ACTIVATIONS.get(act.name) == act else None


def leaky_slope(sigma) -> float | None:
    """Deprecated: the slope of a :func:`leaky_relu` activation, else None.  Ask
    ``act.params``."""
    return get_activation(sigma).params.get("slope")
