"""Mei–Montanari asymptotic test error of random-features ridge regression.

Implements Section 1 of ``theory/random_features.md`` (equations (RF-1) to
(RF-13); the limits (RF-14) are checked in the tests), i.e. Definition 1 and
Theorem 1 of Mei & Montanari (2019), "The generalization error of random
features regression: precise asymptotics and double descent curve",
arXiv:1908.05355, together with their ridgeless limit.

Conventions (exactly those of the paper; see (RF-1)-(RF-3)):

* inputs ``x`` and weights ``theta_j`` (j = 1..N) i.i.d. uniform on the sphere
  of radius ``sqrt(d)`` in R^d; features ``sigma(<theta_j, x> / sqrt(d))``;
  ``N/d -> psi1`` and ``n/d -> psi2``;
* ridge objective ``(1/n) sum_i (y_i - sum_j a_j sigma(.))^2 + (N*ridge/d) ||a||^2``,
  so ``ridge`` is the paper's lambda (NOT a kernel-form ridge; see (RF-13));
* target ``f(x) = beta0 + <beta1, x> + f_NL(x)`` with ``||beta1||^2 = f1_sq``
  (F_1^2), ``E f_NL^2 = fstar_sq`` (F_*^2), label-noise variance ``noise`` (tau^2);
* activation constants ``mu0 = E sigma(G)``, ``mu1 = E G sigma(G)``,
  ``mu*^2 = E sigma(G)^2 - mu0^2 - mu1^2``, ``G ~ N(0, 1)``, ``zeta = mu1/mu*``.

The fixed point (RF-4) is reduced to one scalar equation for
``chi = nu1 * nu2 < 0`` (RF-6), whose physical root (the branch continued from
large ridge) is the unique root in an explicit bracket (RF-7); it is found by
bisection in ``log(-chi)`` with a fixed iteration count, then one Newton step
that makes first derivatives exact (implicit-function theorem).  Everything is
elementwise, jit-able and vmap-able; the activation is static.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import get_activation
from rfsim.validation import float64_hint, require_in_range

__all__ = ["MeiMontanariRisk", "activation_coefficients", "mei_montanari", "psi_range"]

# Bisection steps in log(-chi); the bracket is at most log(3 + 2 zeta^2) wide
# (RF-7), so 96 halvings reach machine precision for any realistic zeta.
_N_BISECT = 96


class MeiMontanariRisk(NamedTuple):
    """Asymptotic risks of random-features ridge regression ((RF-10), (RF-11)).

    Attributes:
        excess_risk: ``lim E_x (f(x) - f_hat(x))^2`` (the paper's R_RF, label
            noise NOT included):
            ``f1_sq * bias + (noise + fstar_sq) * variance + fstar_sq`` (RF-10).
        test_mse: ``excess_risk + noise``: the expected squared error on a fresh
            noisy label (RF-11).
        bias: the paper's ``B(zeta, psi1, psi2, ridge / mu*^2) = E1/E0`` (RF-9):
            the risk per unit ``||beta1||^2`` of the linear part of the target,
            noise-free.  Tends to 1 as ridge -> inf.
        variance: the paper's ``V(zeta, psi1, psi2, ridge / mu*^2) = E2/E0``
            (RF-9): the risk per unit of effective noise variance
            ``noise + fstar_sq`` (the nonlinear part of the target acts as
            noise).  Tends to 0 as ridge -> inf.
        chi: the fixed-point value ``chi = nu1 * nu2 <= 0`` ((RF-5)-(RF-8)).

    ``bias``, ``variance`` (and hence the risks, when their coefficient is
    positive) are ``+inf`` at the interpolation threshold ``psi1 == psi2``
    with ``ridge == 0``.
    """

    excess_risk: jax.Array
    test_mse: jax.Array
    bias: jax.Array
    variance: jax.Array
    chi: jax.Array


# --------------------------------------------------------------------------
# activation coefficients (RF-3)
# --------------------------------------------------------------------------

def activation_coefficients(activation="relu") -> tuple[float, float, float]:
    """Hermite coefficients ``(mu0, mu1, mustar)`` of an activation, Eq. (RF-3).

    ``mu0 = E sigma(G)``, ``mu1 = E G sigma(G)`` and
    ``mustar = sqrt(E sigma(G)^2 - mu0^2 - mu1^2)`` with ``G ~ N(0, 1)``: the activation's
    :meth:`~rfsim.activations.Activation.hermite` (theory/activations.md A-8; closed forms
    for relu, erf, linear, leaky relu, sin, cos, quadrature otherwise), cached per object.

    Returns:
        Python floats ``(mu0, mu1, mustar)``; ``mustar`` may be 0 (linear
        activation), which :func:`mei_montanari` rejects.

    Raises:
        ValueError: unknown activation name, or non-finite moments.
    """
    return get_activation(activation).hermite()


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------


def _concrete(x):
    """A numpy view of ``x`` if it is concrete, else None (tracer under jit/vmap/grad)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _validate(name: str, value, *, strict: bool) -> None:
    arr = _concrete(value)
    if arr is None:
        return
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got {value!r}")
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a real number or array, got {value!r}")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = float(arr[~finite].flat[0])
        raise ValueError(f"{name} must be finite, got {bad!r}")
    ok = arr > 0 if strict else arr >= 0
    if not ok.all():
        bad = float(arr[~ok].flat[0])
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {bad!r}")


def _float_dtype(*values):
    dtype = jnp.result_type(*values)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError("mei_montanari inputs must be real")
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def psi_range(dtype) -> tuple[float, float]:
    """``[sqrt(tiny)/eps, sqrt(max) eps]``: where (RF-6)-(RF-9) are resolved in ``dtype``.

    chi ~ -min(psi1, psi2, mu*^2/ridge) enters E0..E2 squared and beyond, and the bracket
    (RF-7) squares ``psi1 psi2 ridge/mu*^2``; outside this range they underflow or overflow
    (float64 at psi = 1e-155 returned variance 0 instead of 1.25e-155, at psi1 = 1e155 with a
    ridge bias 1 instead of 0.395).  [6.7e-139, 3e138] in float64, [9e-13, 2.2e12] in float32.
    """
    fi = jnp.finfo(dtype)
    return math.sqrt(float(fi.tiny)) / float(fi.eps), math.sqrt(float(fi.max)) * float(fi.eps)


def _check_domain(psi1, psi2, ridge, mustar_sq: float, dtype) -> None:
    """Concrete inputs inside :func:`psi_range` (theory/random_features.md (RF-15))."""
    values = (psi1, psi2, ridge)
    if any(_concrete(v) is None for v in values):
        return
    lo, hi = psi_range(dtype)
    p1, p2, lam = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    name = np.dtype(dtype).name
    hint = float64_hint(dtype, lead='; ', tail=' to widen it')
    for field, psi in (("psi1", p1), ("psi2", p2)):
        bad = (psi < lo) | (psi > hi)
        if bad.any():
            raise ValueError(
                f"{field} = {float(psi[bad].flat[0]):g} is outside [{lo:.3g}, {hi:.3g}], the "
                f"range where {name} resolves the Mei-Montanari fixed point (RF-15){hint}"
            )
    load = lam / mustar_sq * np.maximum(1.0, p1 * p2)
    bad = load > hi
    if bad.any():
        raise ValueError(
            f"ridge = {float(lam[bad].flat[0]):g} is too large for {name} here: "
            f"ridge/mu*^2 * max(1, psi1 psi2) = {float(load[bad].flat[0]):.3g} must be at most "
            f"{hi:.3g} (RF-15); the risk is then within {name} round-off of its ridge -> inf "
            f"limit (bias 1, variance 0){hint}"
        )


# --------------------------------------------------------------------------
# the fixed point (RF-4)-(RF-8)
# --------------------------------------------------------------------------


def _q(psi, w, z2):
    """(psi + g(chi)) (1 + zeta^2 w) at chi = -w, Eq. (RF-6)."""
    return psi + (psi * z2 - 1.0 - z2) * w - z2 * w * w


def _dq(psi, w, z2):
    return (psi * z2 - 1.0 - z2) - 2.0 * z2 * w


def _poly(w, p1, p2, lb, z2):
    """P(w) of Eq. (RF-6): sign(P) = sign of (RF-6)'s residual; physical root P = 0."""
    t = 1.0 + z2 * w
    return _q(p1, w, z2) * _q(p2, w, z2) - p1 * p2 * lb * w * t * t


def _dpoly(w, p1, p2, lb, z2):
    t = 1.0 + z2 * w
    return (
        _dq(p1, w, z2) * _q(p2, w, z2)
        + _q(p1, w, z2) * _dq(p2, w, z2)
        - p1 * p2 * lb * (t * t + 2.0 * z2 * w * t)
    )


def _ridgeless_w(psi, z2):
    """-chi at ridge = 0 with psi = min(psi1, psi2), Eq. (RF-12).

    The positive root of ``zeta^2 w^2 - b w - psi = 0``, ``b = psi zeta^2 - zeta^2 - 1``,
    evaluated without cancellation for either sign of ``b`` (and for zeta = 0).
    """
    if z2 == 0.0:
        return psi
    b = psi * z2 - z2 - 1.0
    sd = jnp.sqrt(b * b + 4.0 * z2 * psi)
    pos = b >= 0
    w_pos = (jnp.where(pos, b, 0.0) + sd) / (2.0 * z2)
    w_neg = 2.0 * psi / jnp.where(pos, 1.0, sd - b)
    return jnp.where(pos, w_pos, w_neg)


def _solve_w(p1, p2, lb, z2):
    """-chi on the physical branch, Eqs. (RF-6)-(RF-8), elementwise."""
    c = 1.0 + z2
    w0 = _ridgeless_w(jnp.minimum(p1, p2), z2)
    lb_pos = lb > 0
    w_hi = jnp.where(lb_pos, jnp.minimum(w0, 1.0 / jnp.where(lb_pos, lb, 1.0)), w0)
    beta = c * (p1 + p2) + p1 * p2 * lb
    disc = jnp.sqrt(jnp.maximum(beta * beta - 4.0 * c * c * p1 * p2, 0.0))
    w_lo = jnp.minimum(2.0 * p1 * p2 / (beta + disc), w_hi)

    def body(_, carry):
        lo, hi = carry
        mid = 0.5 * (lo + hi)
        above = _poly(jnp.exp(mid), p1, p2, lb, z2) > 0  # root lies above mid
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _N_BISECT, body, (jnp.log(w_lo), jnp.log(w_hi)))
    w = jnp.where(lb_pos, jnp.exp(0.5 * (lo + hi)), w0)

    # One Newton step from the (gradient-stopped) root: value unchanged to
    # rounding, first derivatives = implicit-function derivatives -P_p / P_w.
    ws = jax.lax.stop_gradient(w)
    pv = _poly(ws, p1, p2, lb, z2)
    dpv = _dpoly(ws, p1, p2, lb, z2)
    ok = (jnp.abs(dpv) > 0) & (jnp.abs(pv) <= 1e-6 * jnp.abs(dpv) * ws)
    step = jnp.where(ok, pv / jnp.where(ok, dpv, 1.0), 0.0)
    return ws - step


def _e_polys(chi, p1, p2, z2):
    """E0, E1, E2 of Eq. (RF-9) (paper's Definition 1)."""
    z4, z6 = z2 * z2, z2 * z2 * z2
    pp = p1 * p2
    c2 = chi * chi
    c3 = c2 * chi
    c4 = c2 * c2
    c5 = c4 * chi
    e0 = (
        -z6 * c5
        + 3.0 * z4 * c4
        + ((p1 - 1.0) * (p2 - 1.0) * z6 - 2.0 * z4 - 3.0 * z2) * c3
        + ((p1 + p2 - 3.0 * pp + 1.0) * z4 + 2.0 * z2 + 1.0) * c2
        + 3.0 * pp * z2 * chi
        - pp
    )
    e1 = p2 * z4 * c3 - p2 * z2 * c2 + pp * z2 * chi - pp
    e2 = (
        z6 * c5
        - 3.0 * z4 * c4
        + ((p1 - 1.0) * z6 + 2.0 * z4 + 3.0 * z2) * c3
        - ((p1 + 1.0) * z4 + 2.0 * z2 + 1.0) * c2
    )
    return e0, e1, e2


def _weighted(coef, x):
    """coef * x with 0 * inf := 0 (a zero-weight term never contributes)."""
    return jnp.where(coef == 0, jnp.zeros_like(x), coef * x)


def mei_montanari(
    psi1,
    psi2,
    ridge,
    *,
    activation="relu",
    f1_sq=1.0,
    fstar_sq=0.0,
    noise=0.0,
) -> MeiMontanariRisk:
    """Asymptotic test error of random-features ridge regression (Mei & Montanari 2019).

    Setting (theory/random_features.md, (RF-1)-(RF-2)): x, theta_j i.i.d.
    uniform on the sphere of radius sqrt(d); features
    ``sigma(<theta_j, x>/sqrt(d))``; ``psi1 = N/d``, ``psi2 = n/d``; the
    coefficients minimise
    ``(1/n) sum_i (y_i - sum_j a_j sigma(<theta_j, x_i>/sqrt d))^2 + (N ridge/d) ||a||^2``
    (``ridge`` is the paper's lambda; a kernel-form ridge ``lam_K`` in
    ``K(x, X) (K + lam_K I)^{-1} y`` with ``K = Z Z^T / N`` is ``psi2 * ridge``,
    (RF-13)).  Target ``beta0 + <beta1, x> + f_NL(x)`` with
    ``||beta1||^2 = f1_sq``, ``E f_NL^2 = fstar_sq`` and label-noise variance
    ``noise``.

    Computes, with ``zeta = mu1/mu*`` and ``lambda_bar = ridge/mu*^2`` (RF-3):
    ``chi = nu1 nu2`` at ``xi = i sqrt(psi1 psi2 lambda_bar)`` on the branch
    continued from large ridge ((RF-4)-(RF-8), ridgeless closed form (RF-12)),
    ``bias = E1/E0``, ``variance = E2/E0`` (RF-9) and
    ``excess_risk = f1_sq bias + (noise + fstar_sq) variance + fstar_sq``
    (RF-10), ``test_mse = excess_risk + noise`` (RF-11).

    Args:
        psi1: N/d, > 0.  psi2: n/d, > 0.  ridge: the paper's lambda, >= 0
            (0 = ridgeless/min-norm limit).  All three broadcast together.
        activation: name (relu, erf, tanh, gelu) or jax callable; static.
            Must have mu* > 0 ("linear" raises ValueError).
        f1_sq: F_1^2 = ||beta1||^2 >= 0.  fstar_sq: F_*^2 >= 0.
        noise: tau^2 >= 0.  These broadcast with the above too.

    Returns:
        :class:`MeiMontanariRisk` of arrays of the broadcast shape, in the
        inputs' floating dtype (float64 under ``jax_enable_x64``).  At
        ``psi1 == psi2`` with ``ridge == 0`` bias/variance are ``+inf`` (never
        NaN).  Jit-able, vmap-able and differentiable (first derivatives exact
        via the implicit-function theorem) in psi1, psi2, ridge, f1_sq,
        fstar_sq, noise.

    Raises:
        ValueError: for concrete inputs out of range (``psi1 must be > 0, got
            -1.0``), complex or non-finite inputs, psi or ridge outside the range the
            dtype resolves (:func:`psi_range`, (RF-15)), or an activation with mu* = 0.
    """
    _, mu1, mustar = activation_coefficients(activation)  # mu0 drops out (RF-10)
    if mustar == 0.0:
        raise ValueError(
            f"activation {activation!r} has mu_star = 0 (linear in the Gaussian-chaos "
            f"sense, mu1 = {mu1!r}); the Mei-Montanari formula needs mu_star > 0 "
            "since zeta = mu1/mu_star and ridge/mu_star^2 would be infinite"
        )

    # lists/tuples -> arrays (scalars and arrays keep their (weak) dtype)
    psi1, psi2, ridge, f1_sq, fstar_sq, noise = (
        np.asarray(v) if isinstance(v, (list, tuple)) else v
        for v in (psi1, psi2, ridge, f1_sq, fstar_sq, noise)
    )
    for name, value, strict in (
        ("psi1", psi1, True),
        ("psi2", psi2, True),
        ("ridge", ridge, False),
        ("f1_sq", f1_sq, False),
        ("fstar_sq", fstar_sq, False),
        ("noise", noise, False),
    ):
        _validate(name, value, strict=strict)

    dtype = _float_dtype(psi1, psi2, ridge, f1_sq, fstar_sq, noise)
    for name, value in (("f1_sq", f1_sq), ("fstar_sq", fstar_sq), ("noise", noise)):
        require_in_range(name, value, dtype)
    _check_domain(psi1, psi2, ridge, mustar * mustar, dtype)
    p1, p2, lam = jnp.broadcast_arrays(*(jnp.asarray(v, dtype=dtype) for v in (psi1, psi2, ridge)))
    f1 = jnp.asarray(f1_sq, dtype=dtype)
    fs = jnp.asarray(fstar_sq, dtype=dtype)
    tau2 = jnp.asarray(noise, dtype=dtype)

    return _risk(p1, p2, lam, f1, fs, tau2, z2=(mu1 / mustar) ** 2, mustar_sq=mustar * mustar)


@partial(jax.jit, static_argnames=("z2", "mustar_sq"))
def _risk(p1, p2, lam, f1, fs, tau2, *, z2, mustar_sq):
    """(RF-5)-(RF-11) for validated, broadcast arrays; zeta^2 and mu*^2 static."""
    lb = lam / mustar_sq
    w = _solve_w(p1, p2, lb, z2)
    chi = -w
    e0, e1, e2 = _e_polys(chi, p1, p2, z2)
    # E0 < 0 on the whole physical branch; it vanishes only at the
    # interpolation threshold psi1 == psi2, ridge == 0 (RF-12).
    singular = (e0 >= 0) | ((lam == 0) & (p1 == p2))
    e0_safe = jnp.where(singular, -1.0, e0)
    inf = jnp.asarray(jnp.inf, dtype=e0.dtype)
    bias = jnp.where(singular, inf, e1 / e0_safe)
    variance = jnp.where(singular, inf, e2 / e0_safe)

    excess = _weighted(f1, bias) + _weighted(tau2 + fs, variance) + fs
    test_mse = excess + tau2
    chi = jnp.broadcast_to(chi, bias.shape)
    return MeiMontanariRisk(
        excess_risk=excess, test_mse=test_mse, bias=bias, variance=variance, chi=chi
    )
