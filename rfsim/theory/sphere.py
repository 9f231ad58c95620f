r"""Kernel ridge regression on the sphere: Mercer spectra of dot-product kernels, harmonic
targets and the eigenlearning prediction with multiplicities and the spectrum's tail.

Implements theory/sphere.md, Eqs. (S-1)–(S-9); the risk itself is
:func:`rfsim.theory.ridge.krr_risk`, theory/ridge.md (R-9)–(R-12).  Conventions:

* inputs ``x`` uniform on the sphere of radius ``sqrt(d)`` in R^d (``||x||^2/d = 1``);
* a dot-product kernel ``k(x, x') = kfun(t)``, ``t = x.x'/d`` in [-1, 1], ``kfun`` a
  vectorized float64 NumPy callable;
* Mercer decomposition w.r.t. the uniform probability measure:
  ``k(x, x') = sum_l lambda_l sum_{m <= N(d, l)} Y_lm(x) Y_lm(x')``, ``Y_lm`` orthonormal;
* ``P_l`` the degree-l Gegenbauer polynomial for dimension d, normalized ``P_l(1) = 1``.

Example (the order-1 arc-cosine kernel: degree 3 is not in its span)::

    >>> lam = kernel_eigenvalues(arccos_profile(1), 3, 5)
    >>> bool(abs(lam[3]) < 1e-13 and abs(lam[1] - 1 / 12) < 1e-13)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.theory.gaussian import arccos_expectation
from rfsim.theory.ridge import RidgeRisk, krr_risk
from rfsim.validation import (
    require,
    require_finite,
    require_int,
    require_nonnegative,
)

__all__ = [
    "HarmonicTarget",
    "SpectrumError",
    "SphereSpectrum",
    "Truncation",
    "auto_degree",
    "certify",
    "arccos_profile",
    "degree_power",
    "exp_kernel_eigenvalues",
    "gegenbauer",
    "kernel_eigenvalues",
    "kernel_spectrum",
    "krr_risk",
    "log_multiplicities",
    "max_degree",
    "multiplicities",
    "multiplicity",
    "sphere_krr_risk",
    "roundoff",
    "t_quadrature",
    "trace_residual",
]

_PANEL_NODES = 40  # Gauss-Legendre nodes per panel in theta (numpy's nodes are exact here)


def _check_d(d) -> None:
    require_int("d", d, minimum=2)


def _check_degree(name, L) -> None:
    require_int(name, L, minimum=0)


# --------------------------------------------------------------------------- (S-1), (S-2)


def multiplicity(d: int, l: int) -> int:
    """``N(d, l)``, the dimension of the degree-l spherical harmonics on S^{d-1} (S-1):
    ``C(l+d-1, d-1) - C(l+d-3, d-1)`` = ``(2l+d-2)/l C(l+d-3, l-1)`` (``N(d, 0) = 1``), exact."""
    _check_d(d)
    _check_degree("l", l)
    return math.comb(l + d - 1, d - 1) - (math.comb(l + d - 3, d - 1) if l >= 2 else 0)


def log_multiplicities(d: int, L: int) -> np.ndarray:
    """``[log N(d, 0), ..., log N(d, L)]`` (S-1) in float64, for any ``d`` and ``L`` (no
    overflow): ``log N(d, l) = log(2l + d - 2) - log l + lgamma(l + d - 2) - lgamma(l)
    - lgamma(d - 1)`` for ``l >= 1`` (``N(2, l) = 2``); absolute error ~1e-11 at
    d = 1000 (lgamma's round-off on values ~1e4)."""
    from scipy.special import gammaln

    _check_d(d)
    _check_degree("L", L)
    out = np.zeros(L + 1)
    if L >= 1:
        l = np.arange(1, L + 1, dtype=float)
        out[1:] = (np.log(2 * l + d - 2) - np.log(l) + gammaln(l + d - 2) - gammaln(l)
                   - gammaln(d - 1.0))
    return out


_FLOAT_MAX = float(np.finfo(np.float64).max)
_DEGREE_CAP = 2**31 - 1  # degrees are sizes (rfsim.validation.MAX_SIZE)


@functools.lru_cache(maxsize=1024)
def max_degree(d: int) -> int:
    """The largest ``L`` for which every ``N(d, l)``, ``l <= L``, is a float64 number
    (``<= 1.8e308``; at most ``2**31 - 1``): :func:`multiplicities` and
    :func:`kernel_spectrum` refuse a larger ``L``.  d = 1000: 307; d = 10000: 134.

    A degree beyond it carries no representable eigenvalue either: a positive semi-definite
    kernel has ``N(d, l) lambda_l <= kfun(1)``, so ``lambda_l < kfun(1)/1.8e308`` is below
    float64's normal range for ``kfun(1)`` of order 1 and its trace belongs in the tail
    (S-7).  Exact: bisection on :func:`log_multiplicities`' formula, then the integers
    ``N(d, l)`` (``math.comb``) decide at the boundary."""
    _check_d(d)
    if d == 2:
        return _DEGREE_CAP  # N(2, l) = 2

    def log_n(l: int) -> float:
        return (math.log(2 * l + d - 2) - math.log(l) + math.lgamma(l + d - 2)
                - math.lgamma(l) - math.lgamma(d - 1))

    limit = math.log(_FLOAT_MAX)
    if log_n(_DEGREE_CAP) <= limit - 1e-6:
        return _DEGREE_CAP
    lo, hi = 0, _DEGREE_CAP  # log N(d, lo) below the limit, log N(d, hi) above (d >= 3: increasing)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid >= 1 and log_n(mid) > limit:
            hi = mid
        else:
            lo = mid
    # lgamma's round-off: settle the neighbours exactly
    L = max(lo - 2, 0)
    while multiplicity(d, L + 1) <= _FLOAT_MAX:
        L += 1
    return L


def multiplicities(d: int, L: int) -> np.ndarray:
    """``[N(d, 0), ..., N(d, L)]`` as float64 (S-1), each the exact integer correctly
    rounded.  ``L <= max_degree(d)`` (ValueError otherwise, naming the limit): a
    multiplicity beyond the float64 range has no float value, and its degree no
    representable eigenvalue (:func:`max_degree`); :func:`log_multiplicities` has them all."""
    _check_d(d)
    _check_degree("L", L)
    top = max_degree(d)
    if L > top:
        log10 = log_multiplicities(d, top + 1)[-1] / math.log(10.0)
        raise ValueError(f"L must be <= {top} for d = {d}, got {L}: the multiplicity "
                         f"N({d}, {top + 1}) ~ 1e{log10:.1f} exceeds the float64 maximum "
                         f"{_FLOAT_MAX:.3g} (S-1), and a degree that high has no eigenvalue "
                         "float64 can hold either (N lambda <= k(1)): put its trace in the tail "
                         "(S-7) by choosing a smaller L, or use log_multiplicities")
    return np.array([float(multiplicity(d, l)) for l in range(L + 1)])


def _gegenbauer_rows(L: int, d: int, t) -> list:
    """``[P_0(t), ..., P_L(t)]`` by the three-term recurrence (S-2); arithmetic only, so it
    serves NumPy and JAX arrays alike."""
    rows = [t * 0 + 1, t]
    for l in range(1, L):
        rows.append(((2 * l + d - 2) * t * rows[l] - l * rows[l - 1]) / (l + d - 2))
    return rows[: L + 1]


def gegenbauer(L: int, d: int, t) -> np.ndarray:
    """``P_l(t)`` for ``l = 0..L``, shape ``(L+1,) + t.shape`` (S-2): the Gegenbauer
    polynomials ``C_l^{(d-2)/2}`` normalized to ``P_l(1) = 1`` (Legendre at d = 3, Chebyshev
    at d = 2), from ``(l+d-2) P_{l+1} = (2l+d-2) t P_l - l P_{l-1}``, stable on [-1, 1]."""
    _check_d(d)
    _check_degree("L", L)
    return np.stack(_gegenbauer_rows(L, d, np.asarray(t, dtype=float)))


# --------------------------------------------------------------------------- (S-3), (S-4)


def t_quadrature(d: int, L: int, panels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t_i`` and probability weights ``w_i`` for ``E_t[g(t)]`` under the density of
    ``t = x.u/d``, ``∝ (1 - t^2)^((d-3)/2)`` (S-3).

    Integrated in ``theta = arccos t``, where the weight is ``sin^(d-2) theta`` on [0, pi] and
    the arc-cosine kernels are analytic (their ``arccos t`` and ``sqrt(1 - t^2)`` are
    ``theta`` and ``sin theta``): composite Gauss–Legendre, ``panels`` equal panels of 40
    nodes (default enough for ``P_l``, ``l <= L``, times a smooth kernel: one panel per 8
    degrees, at least 4).  The weights are normalized to sum to 1, so no Gamma functions.
    """
    _check_d(d)
    _check_degree("L", L)
    if panels is None:
        panels = max(4, -(-(L + d) // 8) + 2)
    require_int("panels", panels, minimum=1)
    x, gw = np.polynomial.legendre.leggauss(_PANEL_NODES)
    edges = np.linspace(0.0, math.pi, panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    theta = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    w = (half[:, None] * gw[None, :]).ravel() * np.sin(theta) ** (d - 2)
    return np.cos(theta), w / w.sum()


def _kernel_values(kfun: Callable, t: np.ndarray) -> np.ndarray:
    k = np.asarray(kfun(t), dtype=float)
    if k.shape != t.shape:
        raise ValueError(f"kfun must be vectorized: kfun(t) for t of shape {t.shape} returned "
                         f"shape {k.shape}")
    if not np.all(np.isfinite(k)):
        bad = t[~np.isfinite(k)][0]
        raise ValueError(f"kfun must be finite on [-1, 1], got kfun({bad:g}) = "
                         f"{k[~np.isfinite(k)][0]}")
    return k


def _funk_hecke(kfun: Callable, d: int, L: int, panels: int | None):
    """``(lambda_0..lambda_L, err_0..err_L, E k^2, k(1))`` by (S-4) on the rule of
    :func:`t_quadrature`; ``err_l = eps sum_i |w_i k(t_i) P_l(t_i)|`` is the scale of the
    round-off in ``lambda_l``."""
    t, w = t_quadrature(d, L, panels)
    k = _kernel_values(kfun, t)
    wk = w * k
    awk = np.abs(wk)
    lam = np.empty(L + 1)
    err = np.empty(L + 1)
    p_prev, p = np.ones_like(t), t
    lam[0], err[0] = wk.sum(), awk.sum()
    for l in range(1, L + 1):  # (S-2) inline: no (L+1) x nodes table
        lam[l], err[l] = wk @ p, awk @ np.abs(p)
        p_prev, p = p, ((2 * l + d - 2) * t * p - l * p_prev) / (l + d - 2)
    k1 = float(_kernel_values(kfun, np.ones(1))[0])
    return lam, err * np.finfo(float).eps, float(wk @ k), k1


def kernel_eigenvalues(kfun: Callable, d: int, L: int, *, panels: int | None = None
                       ) -> np.ndarray:
    """Mercer eigenvalues ``lambda_0..lambda_L`` of ``kfun(x.x'/d)`` on the sphere of radius
    ``sqrt(d)`` by Funk–Hecke (S-4), ``lambda_l = E_t[kfun(t) P_l(t)]``.

    Accurate to ~1e-15 ``max|kfun|`` absolute for kernels analytic in ``theta = arccos t``
    (polynomials, ``exp``, the arc-cosine kernels; checked against closed forms to 1e-12);
    eigenvalues below that are round-off, not relative accuracy.  Raw values: an exact 0
    comes back as ~1e-17 of either sign (:func:`kernel_spectrum` cleans them).
    """
    _check_d(d)
    _check_degree("L", L)
    return _funk_hecke(kfun, d, L, panels)[0]


def exp_kernel_eigenvalues(d: int, L: int, scale: float = 1.0) -> np.ndarray:
    """Closed form (S-5) for ``kfun(t) = exp(scale t)``:
    ``lambda_l = Gamma(d/2) (2/scale)^(d/2-1) I_{l+d/2-1}(scale)``."""
    from scipy.special import gammaln, ive

    _check_d(d)
    _check_degree("L", L)
    require("scale", scale, lambda a: a > 0, "> 0")
    a = 0.5 * d - 1.0
    l = np.arange(L + 1)
    log_pre = gammaln(0.5 * d) + a * math.log(2.0 / scale) + scale  # ive = iv e^-scale
    return np.exp(log_pre) * ive(l + a, scale)


def arccos_profile(order: int) -> Callable[[np.ndarray], np.ndarray]:
    """The dot-product profile ``kfun(t)`` of the arc-cosine kernel of Cho & Saul (2009), for
    ``order`` 0 or 1 (S-6; the kernel of two inputs is rfsim.theory.kernels.arccos_kernel):
    ``(pi - arccos t)/(2 pi)`` (``E[step(w.x) step(w.x')]``) and
    ``(sqrt(1 - t^2) + (pi - arccos t) t)/(2 pi)`` (``E[relu(w.x) relu(w.x')]``,
    ``w ~ N(0, I/d)``), ``t`` clipped to [-1, 1]."""
    if order not in (0, 1) or isinstance(order, bool):
        raise ValueError(f"order must be 0 or 1, got {order!r}")

    def kfun(t):  # the one home of the formula: rfsim.theory.gaussian (K-2), in float64
        with jax.enable_x64(True):
            t = jnp.clip(jnp.asarray(t, dtype=jnp.float64), -1.0, 1.0)
            one = jnp.ones_like(t)
            return np.asarray(arccos_expectation(order, one, one, t), dtype=float)

    return kfun


# --------------------------------------------------------------------------- (S-7)


class SpectrumError(ValueError):
    """:func:`kernel_spectrum`'s refusal of an eigenvalue below 0 beyond its round-off:
    ``degree`` is the first such degree (float64 cannot resolve the spectrum from there)."""

    def __init__(self, degree: int, message: str):
        super().__init__(message)
        self.degree = degree


class SphereSpectrum(NamedTuple):
    """The first ``L+1`` degrees of a dot-product kernel's spectrum and the rest's moments.

    eigenvalues: ``lambda_l``, ``l = 0..L`` (S-4), those within round-off of 0 set to 0;
    multiplicities: ``N(d, l)`` (S-1);
    tail: ``(T1, T2)`` (S-7), ``T1 = kfun(1) - sum N lambda``, ``T2 = E kfun^2 - sum N lambda^2``
    (``T1 = 0`` where below ``trace_error``, ``T2 = 0`` where below ``16 eps E kfun^2``);
    trace: ``kfun(1)``; second_moment: ``E_t[kfun(t)^2]``;
    trace_error: a bound on the round-off in ``T1`` (``sum_l N(d, l)`` times the round-off
    scale of ``lambda_l``), large only where the multiplicities are astronomical (high d and
    L): keep it well below ``n kappa``.
    """

    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    tail: tuple[float, float]
    trace: float
    second_moment: float
    trace_error: float


def kernel_spectrum(kfun: Callable, d: int, L: int, *, panels: int | None = None
                    ) -> SphereSpectrum:
    """Eigenvalues to degree L, multiplicities and the tail moments (S-7) of ``kfun``.

    An eigenvalue within its round-off ``tol_l = 4 (l+1) eps sum_i |w_i k(t_i) P_l(t_i)|``
    (the recurrence's error grows like l) of 0 is set to 0 -- the exact zeros, and eigenvalues
    too small to resolve in float64, whose trace then counts in the tail.  One below
    ``-tol_l`` means the kernel is not positive semi-definite (or not smooth in
    ``arccos t``, so the quadrature has not converged): ``ValueError``.
    """
    _check_d(d)
    _check_degree("L", L)
    N = multiplicities(d, L)  # refuses an L beyond max_degree(d) before any quadrature
    lam, err, second, k1 = _funk_hecke(kfun, d, L, panels)
    tol = 4.0 * np.arange(1, L + 2) * err
    if (lam < -tol).any():
        l = int(np.nonzero(lam < -tol)[0][0])
        raise SpectrumError(l, f"eigenvalues[{l}] = {lam[l]:g} < 0 beyond round-off "
                            f"({tol[l]:.2g}): kfun is not a positive semi-definite kernel on "
                            f"the sphere in d = {d} (or is not smooth in arccos t and needs "
                            "more panels)")
    lam = np.where(np.abs(lam) <= tol, 0.0, lam)
    eps = np.finfo(float).eps
    with np.errstate(over="ignore", invalid="ignore"):
        mass, slack = N * lam, N * tol  # N lambda <= k(1) for a PSD kernel: finite
        trace_error = float(np.sum(slack)) + 16 * eps * abs(k1)
        t1 = k1 - float(np.sum(mass))
    _check_trace(d, L, k1, mass, t1, trace_error)
    t1 = t1 if t1 > trace_error else 0.0  # below its own round-off: no tail to speak of
    t2 = second - float(N @ lam**2)
    t2 = t2 if t1 > 0 and t2 > 16 * eps * second else 0.0
    return SphereSpectrum(lam, N, (t1, t2), k1, second, trace_error)


def _check_trace(d, L, k1, mass, t1, trace_error) -> None:
    """The trace identity (S-7) ``sum_l N(d, l) lambda_l + T1 = kfun(1)`` with ``T1 >= 0``
    must hold to its round-off bound, and that bound must be below ``kfun(1)`` itself
    (otherwise the degrees' round-off, amplified by their multiplicities, is as large as the
    whole trace and the identity says nothing): ValueError otherwise, never a wrong tail."""
    where = f"d = {d}, L = {L}"
    if not np.all(np.isfinite(mass)) or not math.isfinite(trace_error):
        raise ValueError(f"N(d, l) lambda_l must be finite (S-7), got an overflow at {where}: "
                         "the eigenvalues are not those of a kernel bounded by kfun(1) = "
                         f"{k1:g}")
    if trace_error >= abs(k1) and k1 != 0:
        raise ValueError(f"L must be small enough for float64 to check the trace identity "
                         f"sum N(d, l) lambda_l = kfun(1) (S-7) at d = {d}: its round-off "
                         f"bound {trace_error:.3g} is not below kfun(1) = {k1:.3g}, got L = {L}")
    if t1 < -trace_error:
        raise ValueError(f"the eigenvalues must satisfy sum N(d, l) lambda_l <= kfun(1) (S-7),"
                         f" got {k1 - t1:.17g} > {k1:.17g} beyond the round-off bound "
                         f"{trace_error:.3g} at {where}: the Funk-Hecke quadrature has not "
                         "converged (pass more panels) or kfun is not a kernel")


def trace_residual(kfun: Callable, d: int, L: int, *, panels: int | None = None) -> float:
    """``kfun(1) - sum_{l<=L} N(d, l) lambda_l`` (S-7), the trace left beyond degree L: 0 to
    round-off for a polynomial of degree <= L, ``-> 0`` as ``L -> inf`` for any continuous
    positive-definite kernel (Mercer), at the rate of its spectrum's tail."""
    N = multiplicities(d, L)  # refuses an L beyond max_degree(d) up front
    lam, _, _, k1 = _funk_hecke(kfun, d, L, panels)
    return k1 - float(N @ lam)


# --------------------------------------------------------------------------- (S-8)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _harmonic_eval(x, centres, coeffs, d, degrees):
    """(S-8) at ``x`` (..., d): one compiled program per shape, dimension and degree list."""
    t = jnp.einsum("...i,gji->...gj", x, centres.astype(x.dtype)) / d
    rows = _gegenbauer_rows(max(degrees), d, t)
    out = jnp.zeros(x.shape[:-1], x.dtype)
    for g, l in enumerate(degrees):
        out = out + rows[l][..., g, :] @ coeffs[g].astype(x.dtype)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class HarmonicTarget:
    """``f*(x) = sum_g sum_j coeffs[g, j] P_{degrees[g]}(x.centres[g, j]/d)`` (S-8), with
    ``E_x f_g(x)^2 = powers[g]`` exactly.  Calling it on ``x`` of shape ``(..., d)`` returns
    shape ``(...)``; the call is pure and jittable (``jax.jit(target)``)."""

    d: int
    degrees: tuple[int, ...]
    powers: tuple[float, ...]
    centres: np.ndarray  # (len(degrees), n_centers, d), |u| = sqrt(d)
    coeffs: np.ndarray  # (len(degrees), n_centers)

    def __call__(self, x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        return _harmonic_eval(x, jnp.asarray(self.centres), jnp.asarray(self.coeffs), self.d,
                              self.degrees)

    @classmethod
    def from_draw(cls, d: int, degrees: Sequence[int], powers: Sequence[float],
                  draw) -> "HarmonicTarget":
        """The target of (S-8) from a draw of :func:`rfsim.data.harmonic_draw` (centres
        ``u_lj`` on the sphere of radius ``sqrt(d)``, raw coefficients ``a_l``): each
        ``a_l`` rescaled so that ``a_l^T G_l a_l = powers[l]``, ``G_l[j, k] =
        P_l(u_lj.u_lk/d)/N(d, l)`` (addition theorem; degrees are orthogonal), hence
        ``E f_l^2 = powers[l]`` exactly.  Deterministic: the randomness is the draw's."""
        _check_d(d)
        degrees, powers = _check_target(degrees, powers)
        u = np.asarray(draw.centres, dtype=float)
        a = np.array(draw.coeffs, dtype=float)
        if u.ndim != 3 or u.shape[0] != len(degrees) or u.shape[2] != d or a.shape != u.shape[:2]:
            raise ValueError(f"draw must hold centres of shape ({len(degrees)}, n_centers, {d}) "
                             f"and coeffs of shape ({len(degrees)}, n_centers), got "
                             f"{u.shape} and {a.shape}")
        for g, (l, p) in enumerate(zip(degrees, powers)):
            gram = gegenbauer(l, d, np.clip(u[g] @ u[g].T / d, -1.0, 1.0))[l] / multiplicity(d, l)
            norm2 = float(a[g] @ gram @ a[g])
            a[g] = a[g] * math.sqrt(p / norm2) if p > 0 else 0.0
        return cls(d, degrees, powers, u, a)

    def power(self, L: int) -> np.ndarray:
        """Per-degree target power ``P_l``, ``l = 0..L`` (S-9), for :func:`krr_risk`."""
        return degree_power(self.degrees, self.powers, L)


def degree_power(degrees: Sequence[int], powers: Sequence[float], L: int) -> np.ndarray:
    """``P_l`` for ``l = 0..L``: ``powers[i]`` at ``degrees[i]``, 0 elsewhere (S-9)."""
    _check_degree("L", L)
    degrees, powers = _check_target(degrees, powers)
    if max(degrees) > L:
        raise ValueError(f"degrees must be <= L = {L} (the theory's truncation), got "
                         f"{max(degrees)}; raise L")
    out = np.zeros(L + 1)
    out[list(degrees)] = powers
    return out


def _check_target(degrees, powers):
    degrees = tuple(degrees)
    for i, l in enumerate(degrees):
        require_int(f"degrees[{i}]", l, minimum=0)
    if not degrees:
        raise ValueError("degrees must list at least one degree, got ()")
    if len(set(degrees)) != len(degrees):
        raise ValueError(f"degrees must be distinct, got {degrees}")
    require_finite("powers", powers)
    require_nonnegative("powers", powers)
    powers = tuple(float(p) for p in np.atleast_1d(np.asarray(powers, dtype=float)))
    if len(powers) != len(degrees):
        raise ValueError(f"powers must have one entry per degree ({len(degrees)}), got "
                         f"{len(powers)}")
    return tuple(int(l) for l in degrees), powers


# --------------------------------------------------------------------------- convenience


def sphere_krr_risk(spectrum: SphereSpectrum, target_power, *, n, ridge, noise=0.0,
                    tail: bool = True) -> RidgeRisk:
    """:func:`krr_risk` for a :class:`SphereSpectrum` (degree groups weighted by ``N(d, l)``,
    its tail moments entered by (R-11) unless ``tail=False``); ``target_power`` per degree,
    length ``L+1`` (:meth:`HarmonicTarget.power`)."""
    lam, N = spectrum.eigenvalues, spectrum.multiplicities
    t = spectrum.tail if tail else (0.0, 0.0)
    power = np.asarray(target_power, dtype=float)
    if power.shape != lam.shape:
        raise ValueError(f"target_power must have one entry per degree 0..{len(lam) - 1} "
                         f"({len(lam)}), got shape {power.shape}")
    # degree groups padded with exact zeros (eigenvalue 0, power 0, weight 1: no term
    # changes) to a power of two, so krr_risk compiles once per size class, not per L
    pad = max(64, 1 << (len(lam) - 1).bit_length()) - len(lam)
    lam, N, power = (np.pad(np.asarray(a, dtype=float), (0, pad), constant_values=c)
                     for a, c in ((lam, 0.0), (N, 1.0), (power, 0.0)))
    return krr_risk(lam, N, power, n=n, ridge=ridge, noise=noise, tail=t)


# --------------------------------------------------------------------------- (S-10), (S-11)

TRUNCATION_RATIO = 1e-2  # (S-10): rho(L) = (largest left-out eigenvalue) / kappa must be <= it
ROUNDOFF_TOL = 1e-5  # (S-11): the relative round-off estimate of test_mse must be <= it
DEGREE_LIMIT = 2000  # no truncation beyond it (the quadrature's cost grows like L^2)


class Truncation(NamedTuple):
    """A truncation degree ``L`` and its certificates: ``ratio`` rho(L) of (S-10) (the
    largest computed eigenvalue of degree ``l > L`` over ``kappa``, the effective ridge (R-1)
    of the spectrum that reached beyond ``L``), and ``roundoff``, the relative error
    estimate of (S-11) (None until a target is given)."""

    L: int
    ratio: float
    kappa: float
    roundoff: float | None


def _kappa(spectrum: SphereSpectrum, n, ridge) -> float:
    zero = np.zeros(len(spectrum.eigenvalues))
    return float(sphere_krr_risk(spectrum, zero, n=n, ridge=ridge).kappa)


def certify(spectrum: SphereSpectrum, L: int, d: int, *, n, ridge) -> Truncation:
    """rho(L) of (S-10): the largest eigenvalue of ``spectrum`` beyond degree ``L`` over
    ``kappa`` (``spectrum``'s own effective ridge: the most accurate one at hand); a
    spectrum that ends at ``L`` (``L = max_degree(d)``: nothing beyond is representable)
    bounds them by ``T1 / N(d, L + 1)`` (positive semi-definiteness, S-7)."""
    _check_d(d)
    _check_degree("L", L)
    lam = spectrum.eigenvalues
    if len(lam) < L + 1:
        raise ValueError(f"spectrum must reach degree L = {L} to certify it (S-10), got "
                         f"degrees up to {len(lam) - 1}")
    kappa = _kappa(spectrum, n, ridge)
    if len(lam) > L + 1:
        top = float(np.max(lam[L + 1:]))
    else:
        top = spectrum.tail[0] * math.exp(-log_multiplicities(d, L + 1)[-1])
    return Truncation(L, top / kappa, kappa, None)


def roundoff(spectrum: SphereSpectrum, target_power, *, n, ridge, noise=0.0) -> float:
    """(S-11): ``|test_mse(T1 + e) - test_mse(T1)| / test_mse`` with ``e`` the spectrum's
    ``trace_error``, the bound on the round-off of ``T1 = kfun(1) - sum N lambda`` (and the
    scale of the degrees' own round-off summed with their multiplicities)."""
    t1, t2 = spectrum.tail
    base = float(sphere_krr_risk(spectrum, target_power, n=n, ridge=ridge, noise=noise).test_mse)
    moved = spectrum._replace(tail=(t1 + spectrum.trace_error, t2))
    other = float(sphere_krr_risk(moved, target_power, n=n, ridge=ridge, noise=noise).test_mse)
    return abs(other - base) / base if base > 0 else 0.0


def auto_degree(spectrum_at: Callable[[int], SphereSpectrum], d: int, *, n, ridge,
                floor: int = 0, ratio: float = TRUNCATION_RATIO) -> Truncation:
    """The smallest ``L >= floor`` with rho(L) <= ``ratio`` (S-10), searched in spectra to
    ``P = 16, 32, 64, ...`` degrees (``spectrum_at(P)``, e.g. a cached
    :func:`kernel_spectrum`) up to ``min(2000, max_degree(d))``; every rho is taken against
    the kappa of the probe's spectrum.  ValueError when none qualifies; the
    :class:`SpectrumError` of a spectrum float64 cannot resolve when even ``floor + 2``
    degrees are out of reach."""
    _check_d(d)
    _check_degree("floor", floor)
    cap = min(DEGREE_LIMIT, max_degree(d))
    if floor + 2 > cap:
        raise ValueError(f"floor must be <= {cap - 2} for d = {d} (S-10 looks 2 degrees "
                         f"beyond it), got {floor}")
    P, tried = max(16, 2 * floor + 2), None
    while True:
        P = min(P, cap)
        try:
            spec = spectrum_at(P)
        except ValueError as e:
            if tried is not None:
                raise ValueError(f"no truncation L <= {tried - 2} has its left-out eigenvalues "
                                 f"below {ratio:g} kappa (S-10) in d = {d}, and float64 cannot "
                                 f"resolve the spectrum to degree {P}: {e}") from None
            if P == floor + 2:
                raise
            P = floor + 2  # the least the certificate needs: if float64 cannot reach it, no L
            continue
        kappa = _kappa(spec, n, ridge)
        lam = spec.eigenvalues
        # rho must hold from L on: the suffix maximum of lambda_l, l > L, within the probe
        tail_max = np.maximum.accumulate(lam[::-1])[::-1]
        ok = [L for L in range(floor, P - 1) if tail_max[L + 1] <= ratio * kappa]
        if ok:
            return Truncation(ok[0], float(tail_max[ok[0] + 1]) / kappa, kappa, None)
        tried = P
        if P >= cap:
            raise ValueError(f"no truncation L <= {P - 2} has its left-out eigenvalues below "
                             f"{ratio:g} kappa (S-10) in d = {d}: kappa = {kappa:.3g} at n = {n},"
                             f" ridge = {ridge:g}, and lambda_{P - 1} = {lam[P - 1]:.3g}")
        P *= 2
