r"""Deterministic equivalent of random-feature ridge regression for a given kernel spectrum.

Implements theory/random_features.md §2, Eqs. (RFE-1)–(RFE-11): the "RF eigenframework"
of Simon, Karkada, Ghosh & Belkin (arXiv:2311.14646, §4), equivalently the two-level
renormalized ridge of Bach (arXiv:2303.01372) and Atanasov, Zavatone-Veth & Pehlevan
(arXiv:2405.00592).  Conventions (RFE-1):

* the expected feature kernel has Mercer eigenvalues ``lambda_i >= 0`` with orthonormal
  eigenfunctions ``e_i``; ``n_features = N`` i.i.d. random features, ``K_hat = Phi Phi^T / N``;
* target ``y = sum_i v_i e_i(x) + eps``, ``Var eps = noise``; ``target_coeffs`` are the
  ``v_i`` (mode i carries power ``v_i^2``, NOT ``lambda_i v_i^2``);
* ``a_hat = argmin (1/n)||y - Phi a / sqrt(N)||^2 + ridge ||a||^2``, i.e. the predictor
  ``K_hat(x, X)(K_hat(X, X) + n ridge I)^{-1} y``; ``ridge = 0`` is the min-norm interpolant;
* ``excess_risk = E_x (f - f_hat)^2``, ``test_mse = excess_risk + noise``,
  ``train_mse = (1/n)||y - f_hat(X)||^2``, all averaged over data and features.

The returned ``kappa`` is gamma of (RFE-3): the effective ridge of the *equivalent kernel
problem* — random-feature ridge regression learns mode i with the same fraction
``lambda_i / (lambda_i + gamma)`` as kernel ridge regression with the expected kernel at
effective ridge gamma, plus the extra feature-variance term theta (RFE-6), (RFE-7).  It solves

.. math:: \gamma\,\Big(1 - \frac{a(\gamma)}{n}\Big)\Big(1 - \frac{a(\gamma)}{N}\Big) = \lambda,
   \qquad a(\gamma) = \sum_i \frac{\lambda_i}{\lambda_i + \gamma} < \min(n, N).

As ``n_features -> inf`` the result tends to
``ridge_risk(eigenvalues, target_coeffs / sqrt(eigenvalues), n=n, ridge=ridge, noise=noise)``
(RFE-10): ridge_risk's ``beta_i`` carries power ``s_i beta_i^2``, so
``beta_i = v_i / sqrt(lambda_i)``.

Example::

    >>> import jax.numpy as jnp
    >>> from rfsim.theory.rf_eigen import rf_eigen_risk
    >>> lam = jnp.arange(1.0, 501.0) ** -1.5
    >>> v = jnp.arange(1.0, 501.0) ** -1.0; v = v / jnp.linalg.norm(v)
    >>> r = rf_eigen_risk(lam, v, n=200, n_features=100, ridge=0.0, noise=0.1)
    >>> bool(r.test_mse > r.excess_risk)
    True
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.theory.ridge import (
    RidgeRisk,
    check_power,
    check_ridge,
    check_spectrum,
    learned,
    log_lower_bound,
    log_power,
    pad_modes,
    spectrum_arrays,
)
from rfsim.theory.scaling import (
    headroom,
    ldexp,
    scale_exponent,
    split,
    xadd,
    xdiv,
    xmul,
    xsum,
    xval,
)
from rfsim.validation import (
    float_dtype,
    is_concrete,
    require,
    require_exact,
    require_finite,
    require_in_range,
    require_nonnegative,
)

__all__ = ["rf_eigen_risk"]

_BISECTION_STEPS = 120  # the bracket (RFE-4) is < ~1500 wide in log gamma: ample


def _spectral_sums(lam, pos, gamma):
    """(RFE-2): r_i = gamma/(lambda_i+gamma) (1 on null modes), q_i = 1 - r_i on the rest,
    a = sum q, b = sum q^2, a - b = sum q r (formed without cancellation)."""
    g = gamma[..., None]
    denom = jnp.where(pos, lam + g, 1.0)
    q = jnp.where(pos, lam / denom, 0.0)
    r = jnp.where(pos, g / denom, 1.0)
    return q, r, q.sum(-1), (q * q).sum(-1), (q * r).sum(-1)


def _solve_gamma(lam, pos, n, N, ridge):
    """gamma of (RFE-3): bisection in log gamma inside the bracket (RFE-4), then one Newton
    step so that derivatives follow the implicit-function theorem.  ``lam`` and ``ridge``
    are the rescaled ones of (R-8); ``1 - a/n = ((n - count) + tail)/n`` with ``a = count -
    tail`` (:func:`rfsim.theory.ridge.learned`), free of cancellation across spectral gaps."""
    inv_N = 1.0 / N
    m = jnp.minimum(n, N)
    rank = pos.sum(-1).astype(lam.dtype)
    hi = ridge + jnp.where(pos, lam, 0.0).sum(-1) * (1.0 / n + inv_N)
    solvable = (ridge > 0) | (rank > m)  # otherwise gamma = 0 (RFE-5)
    # bisect t = log(g / 2^H), near 0 for gamma near the rescaled spectrum (ridge.py)
    H, shift = headroom(lam.dtype), headroom(lam.dtype) * math.log(2.0)
    log_lo = jnp.where(solvable, log_lower_bound(lam, pos, rank - m, ridge), 0.0) - shift
    log_hi = jnp.log(jnp.where(solvable, hi, 2.0)) - shift

    def above_root(t):  # a < min(n, N) and gamma (1 - a/n)(1 - a/N) > ridge
        g = ldexp(jnp.exp(t), H)
        count, tail = learned(lam, pos, g)
        fn = ((n - count) + tail) / n
        fN = ((N - count) + tail) * inv_N
        ok = (fn > 0) & (fN > 0)
        return ok & ((ridge == 0) | (g * fn * fN > ridge))

    def step(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        up = above_root(mid)
        return jnp.where(up, a, mid), jnp.where(up, mid, b)

    a, b = jax.lax.fori_loop(0, _BISECTION_STEPS, step, (log_lo, log_hi))
    g0 = jax.lax.stop_gradient(jnp.where(solvable, ldexp(jnp.exp(0.5 * (a + b)), H), 1.0))
    # Newton on h(g) = g (1 - a/n)(1 - a/N) - ridge; with -g a'(g) = a - b:
    # h'(g) = (1 - a/n)(1 - a/N) + (a - b)/n (1 - a/N) + (1 - a/n)(a - b)/N     (RFE-3)
    _, _, _, _, amb0 = _spectral_sums(lam, pos, g0)
    count, tail = learned(lam, pos, g0)
    fn, fN = ((n - count) + tail) / n, ((N - count) + tail) * inv_N
    h = g0 * fn * fN - ridge
    slope = fn * fN + amb0 / n * fN + fn * amb0 * inv_N
    slope = jnp.where(solvable & (slope > 0), slope, 1.0)  # 0 only at ridgeless n == N
    return jnp.where(solvable, g0 - h / slope, 0.0)


def _rf_eigen_risk(lam, v, n, N, ridge, noise):
    """(RFE-2)-(RFE-11), solved for the problem rescaled by ``2^-e`` (R-8): gamma is
    homogeneous in (lambda, ridge) and every other quantity depends on lambda/gamma only.
    The bias numerator and the variance are carried in extended range and rounded once."""
    e = scale_exponent([(jnp.max(lam), 0), (ridge, 0)], lam.dtype)
    lam_p = ldexp(lam, -e[..., None])
    ridge_p = ldexp(ridge, -e)
    pos = lam_p > 0  # a mode 2^-H below a dominant ridge flushes to 0: a null mode there
    rank = (lam > 0).sum(-1).astype(lam.dtype)
    inv_N = 1.0 / N
    gamma_p = _solve_gamma(lam_p, pos, n, N, ridge_p)
    q, r, a, _b, amb = _spectral_sums(lam_p, pos, gamma_p)
    live = gamma_p > 0
    # The two factors of (RFE-3), f_n = 1 - a/n and f_N = 1 - a/N, with f_n f_N = ridge/gamma.
    # The smaller one (the side with fewer of n, N) vanishes at interpolation; it is
    # recovered from the product, exactly 0 at ridge = 0.
    n_small = n <= N
    count, tail = learned(lam_p, pos, gamma_p)
    d_n, d_N = ((n - count) + tail) / n, ((N - count) + tail) * inv_N
    ratio = ridge_p / jnp.where(live, gamma_p, 1.0)
    safe = lambda x: jnp.where(x > 0, x, 1.0)
    f_n = jnp.where(live & n_small, ratio / safe(d_N), d_n)
    f_N = jnp.where(live & ~n_small, ratio / safe(d_n), d_N)
    # theta = (a - b)/(N - b) (RFE-6), written with 1/N; 0 when gamma = 0 (where a = b = rank)
    t_den = jnp.where(live, safe(f_N + amb * inv_N), 1.0)  # 1 - b/N
    n_theta = jnp.where(live, f_N * amb / t_den, 0.0)  # (N - a) theta
    gap = f_n + n_theta / n  # 1 - d2/n (RFE-8)
    at_threshold = (ridge == 0) & jnp.where(live, n == N, n == rank)  # (RFE-11)
    gap = jnp.where(at_threshold, 1.0, gap)
    # (RFE-7): B = sum v^2 r^2 + theta sum v^2 r q, theta = (a - b)/N / (1 - b/N)
    g = jnp.broadcast_to(gamma_p[..., None], lam_p.shape)
    denom = jnp.where(pos, lam_p + g, 1.0)
    xr = xdiv(split(jnp.where(pos, g, 1.0)), split(denom))  # r (1 on null modes)
    xq = xdiv(split(jnp.where(pos, lam_p, 0.0)), split(denom))
    xv = split(v)
    vv = xmul(xv, xv)
    theta = xdiv(xmul(split(amb), split(inv_N)), split(t_den))
    spill = xmul(theta, xsum(xmul(vv, xr, xq), pos))
    signal_left = xadd(xsum(xmul(vv, xr, xr), jnp.ones_like(pos)), spill)
    big_bias = jnp.where(xval(signal_left) > 0, jnp.inf, 0.0)
    bias = jnp.where(at_threshold, big_bias, xval(xdiv(signal_left, split(gap))))
    # (RFE-6), (RFE-8): d2 = a - (N - a) theta = (b f_N + a (a - b)/N) / (1 - b/N), a sum of
    # non-negative terms; variance = noise (d2/n) / gap
    d2_live = xdiv(xadd(xmul(xsum(xmul(xq, xq), pos), split(f_N)),
                        xmul(split(a), split(amb), split(inv_N))), split(t_den))
    d2 = tuple(jnp.where(live, x, y) for x, y in zip(d2_live, split(a)))  # gamma = 0: d2 = a
    var = xval(xmul(split(noise), xdiv(d2, split(n * gap))))
    variance = jnp.where(noise > 0, jnp.where(at_threshold, jnp.inf, var), 0.0)
    excess = bias + variance
    test = excess + noise
    # (RFE-9): train = (ridge / kappa_1)^2 test = f_n^2 test, exactly 0 when RF interpolates
    interpolates = (ridge == 0) & (n <= N) & (n <= rank)
    train = jnp.where(interpolates, 0.0, f_n * (f_n * jnp.where(interpolates, 0.0, test)))
    return RidgeRisk(ldexp(gamma_p, e), bias, variance, excess, test, train)


_rf_eigen_risk_jit = jax.jit(_rf_eigen_risk)


def rf_eigen_risk(eigenvalues, target_coeffs, *, n, n_features, ridge, noise=0.0) -> RidgeRisk:
    r"""Deterministic-equivalent risk of random-feature ridge regression
    (theory/random_features.md §2 (RFE-1)–(RFE-11)).

    Args:
      eigenvalues: Mercer eigenvalues ``lambda_i >= 0`` of the expected feature kernel
        (shape ``(p,)``), at least one > 0.
      target_coeffs: ``v_i``, the target's coefficients on the orthonormal eigenfunctions
        (shape ``(p,)``); the power of mode i is ``v_i^2``.  A ``v_i`` on a mode with
        ``lambda_i = 0`` is unlearnable and stays in the bias.
      n: number of training samples (>= 1; may be a float or traced array).
      n_features: number of random features N (>= 1; may be a float or traced array).
      ridge: ``lambda >= 0`` in ``(1/n)||y - Phi a/sqrt(N)||^2 + lambda ||a||^2``; the
        kernel-form ridge on ``K_hat(X, X)`` is ``n * ridge``.
      noise: label-noise variance ``>= 0``.

    Returns:
      :class:`rfsim.theory.ridge.RidgeRisk` with ``kappa`` = gamma of (RFE-3) (effective
      ridge of the equivalent kernel problem; the data-level effective ridge of the feature
      regression is ``kappa * (1 - a/N)``), ``bias`` (noise-free part of the excess risk,
      including the feature-sampling variance, (RFE-7), (RFE-8)), ``variance`` (part
      proportional to ``noise``), ``excess_risk``, ``test_mse = excess_risk + noise`` and
      ``train_mse = (1 - a/n)^2 test_mse`` (RFE-9).

    ``n``, ``n_features``, ``ridge`` and ``noise`` broadcast together; the function is
    jittable, vmappable and differentiable in all four.  With ``ridge = 0`` the risk is
    ``+inf`` (never NaN) exactly at the interpolation thresholds ``n == n_features <
    rank`` and ``n == rank <= n_features`` (RFE-11), unless the numerator vanishes.

    Computed in the eigenvalues' float dtype, rescaled by a power of two like
    :func:`rfsim.theory.ridge.ridge_risk` (theory/ridge.md (R-8)); concrete inputs are
    validated against the dtype's range as there (§3c), with ``n_features`` checked like
    ``n`` and the target power ``sum v_i^2``.
    """
    dtype = float_dtype(eigenvalues)
    check_spectrum(eigenvalues, dtype)
    require_finite("target_coeffs", target_coeffs)
    require_in_range("target_coeffs", target_coeffs, dtype)
    for name, value in (("n", n), ("n_features", n_features)):
        require(name, value, lambda a: a >= 1, ">= 1", dtype)
        require_exact(name, value, dtype)
    if is_concrete((eigenvalues, n, n_features)):  # the ridgeless thresholds (RFE-11)
        lam_arr = np.asarray(eigenvalues, dtype=float)
        rank = (lam_arr > 0).sum()
        nn, NN = np.asarray(n, dtype=float), np.asarray(n_features, dtype=float)
        threshold = ((nn == NN) & (NN < rank)) | ((nn == rank) & (rank <= NN))
        check_ridge(ridge, dtype, s_max=float(lam_arr.max()), threshold=threshold)
    else:
        check_ridge(ridge, dtype)
    require_nonnegative("noise", noise, dtype)
    if is_concrete(target_coeffs) and np.ndim(target_coeffs) == 1:
        check_power("target_coeffs", log_power(np.ones(np.shape(target_coeffs)), target_coeffs),
                    dtype)
    lam, v = spectrum_arrays(eigenvalues, target_coeffs)
    n, N, ridge, noise = jnp.broadcast_arrays(
        *(jnp.asarray(x, dtype=lam.dtype) for x in (n, n_features, ridge, noise))
    )
    lam, v = pad_modes(lam, v)
    return _rf_eigen_risk_jit(lam, v, n, N, ridge, noise)
