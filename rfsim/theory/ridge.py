r"""Deterministic equivalent of linear (and kernel) ridge regression.

Implements theory/ridge.md, Eqs. (R-1)–(R-8).  Conventions:

* features ``x ~ N(0, diag(s))``, target ``y = <beta, x> + eps`` with ``Var eps = noise``;
  ``target_coeffs`` are beta's components in the eigenbasis of the covariance;
* ``beta_hat = argmin_w (1/n)||y - X w||^2 + ridge * ||w||^2``; ``ridge = 0`` is the
  minimum-norm least-squares solution;
* ``excess_risk = E <x, beta_hat - beta>^2``, ``test_mse = excess_risk + noise``,
  ``train_mse = (1/n)||y - X beta_hat||^2``.

The effective ridge kappa solves (R-1)

.. math:: \kappa = \lambda + \frac{\kappa}{n}\sum_i \frac{s_i}{s_i + \kappa}.

Kernel ridge regression is the same formula with ``eigenvalues`` the kernel's
Mercer eigenvalues and ``ridge = delta / n`` for the kernel-form ridge delta
(scikit-learn's ``alpha``), see theory/ridge.md §4.

Example::

    >>> import jax.numpy as jnp
    >>> from rfsim.theory.ridge import ridge_risk
    >>> r = ridge_risk(jnp.ones(200), jnp.full(200, 200 ** -0.5), n=100, ridge=0.0, noise=0.5)
    >>> float(r.excess_risk)  # (1 - n/d) + noise * n / (d - n)
    1.0
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rfsim.validation import require, require_finite, require_nonnegative

_BISECTION_STEPS = 120


class RidgeRisk(NamedTuple):
    """Asymptotic risk decomposition of ridge regression (theory/ridge.md §2).

    kappa: effective ridge (R-1); bias, variance: (R-4), (R-5);
    excess_risk = bias + variance; test_mse = excess_risk + noise;
    train_mse: (R-7).
    """

    kappa: jax.Array
    bias: jax.Array
    variance: jax.Array
    excess_risk: jax.Array
    test_mse: jax.Array
    train_mse: jax.Array


def _degrees_of_freedom(s, kappa):
    """df1 = sum s/(s+kappa) and the gap 1 - df2/n written without cancellation (R-2), (R-6).

    With kappa > 0 the fixed point (R-1) gives n - df1 = n ridge / kappa, hence
    n - df2 = n ridge/kappa + sum s kappa/(s+kappa)^2: a sum of non-negative terms.
    ``kappa`` may be 0 (ridgeless, n >= rank), where the gap is 1 - rank/n.
    """
    pos = s > 0
    denom = jnp.where(pos, s + kappa, 1.0)
    r1 = jnp.where(pos, s / denom, 0.0)
    return r1.sum(-1), denom, pos


def _gap(s, kappa, n, ridge):
    """1 - df2/n >= 0 (R-6); zero exactly at the ridgeless interpolation threshold."""
    _, denom, pos = _degrees_of_freedom(s, kappa[..., None])
    safe = jnp.where(kappa > 0, kappa, 1.0)
    spread = jnp.where(pos, (s / denom) * (kappa[..., None] / denom), 0.0).sum(-1) / n
    df2 = jnp.where(pos, (s / denom) ** 2, 0.0).sum(-1)
    # kappa = 0: 1 - df2/n = 1 - rank/n, written through df2 so that d/d kappa flows
    return jnp.where(kappa > 0, ridge / safe + spread, 1.0 - df2 / n)


def _solve_kappa(s, n, ridge):
    """Root of (R-1), by bisection in log kappa between the bounds (R-3), then one Newton
    step so that derivatives follow the implicit-function theorem."""
    rank = (s > 0).sum(-1)
    inv_sum = jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0).sum(-1)
    lo = jnp.maximum(ridge, (rank - n) / inv_sum)
    hi = ridge + s.sum(-1) / n
    solvable = lo > 0  # otherwise ridge == 0 and n >= rank: kappa = 0
    log_lo = jnp.log(jnp.where(solvable, lo, 1.0))
    log_hi = jnp.log(jnp.where(solvable, hi, 2.0))

    def shortfall(k):  # n - df1(k) = n - rank + sum_{s>0} k/(s+k), free of cancellation
        kb = k[..., None]
        return n - rank + jnp.where(s > 0, kb / jnp.where(s > 0, s + kb, 1.0), 0.0).sum(-1)

    def excess(log_k):  # (df1 - n)/n + ridge/k, decreasing in k; root = kappa
        k = jnp.exp(log_k)
        return ridge / k - shortfall(k) / n

    def step(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        positive = excess(mid) > 0
        return jnp.where(positive, mid, a), jnp.where(positive, b, mid)

    a, b = jax.lax.fori_loop(0, _BISECTION_STEPS, step, (log_lo, log_hi))
    k0 = jax.lax.stop_gradient(jnp.where(solvable, jnp.exp(0.5 * (a + b)), 0.0))
    # Newton on h(k) = k (1 - df1/n) - ridge, h'(k) = 1 - df2/n > 0  (R-1), (R-6)
    slope = _gap(s, k0, n, ridge)
    ok = solvable & (slope > 0)
    h = k0 * shortfall(k0) / n - ridge
    k1 = k0 - h / jnp.where(ok, slope, 1.0)
    # kappa = 0 (ridgeless, n > rank): kappa ~ ridge / (1 - rank/n) to first order, which
    # carries the derivative d kappa / d ridge = 1 / (1 - rank/n)
    below = (rank < n) & ~solvable
    k_zero = jnp.where(below, ridge / jnp.where(below, 1.0 - rank / n, 1.0), 0.0)
    return jnp.where(ok & (k1 > 0), k1, jnp.where(solvable, k0, k_zero))


def _ridge_risk(s, beta, n, ridge, noise):
    kappa = _solve_kappa(s, n, ridge)
    _, denom, pos = _degrees_of_freedom(s, kappa[..., None])
    rank = pos.sum(-1)
    gap = _gap(s, kappa, n, ridge)
    at_threshold = gap <= 0  # ridgeless interpolation threshold n == rank
    safe_gap = jnp.where(at_threshold, 1.0, gap)
    signal_left = jnp.where(pos, s * beta**2 * (kappa[..., None] / denom) ** 2, 0.0).sum(-1)
    bias = jnp.where(at_threshold, 0.0, signal_left / safe_gap)
    df2 = jnp.where(pos, (s / denom) ** 2, 0.0).sum(-1)
    var_factor = jnp.where(at_threshold, jnp.inf, (df2 / n) / safe_gap)  # no cancellation
    variance = jnp.where(noise > 0, noise * var_factor, 0.0)
    excess = bias + variance
    test = excess + noise
    # train = (ridge/kappa)^2 test = (1 - df1/n)^2 test; 0 whenever the fit interpolates
    shrink = jnp.where(kappa > 0, ridge / jnp.where(kappa > 0, kappa, 1.0), 1.0 - rank / n)
    interpolates = (ridge == 0) & (rank >= n)
    train = jnp.where(interpolates, 0.0, shrink**2 * jnp.where(interpolates, 0.0, test))
    return RidgeRisk(kappa, bias, variance, excess, test, train)


def spectrum_arrays(eigenvalues, target_coeffs) -> tuple[jax.Array, jax.Array]:
    """1-d float arrays of equal length (integer eigenvalues are computed in floats)."""
    s = jnp.asarray(eigenvalues)
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.result_type(float))
    coeffs = jnp.asarray(target_coeffs, dtype=s.dtype)
    if s.ndim != 1 or coeffs.shape != s.shape:
        raise ValueError(
            f"eigenvalues and target_coeffs must be 1-d of equal length, got shapes "
            f"{s.shape} and {coeffs.shape}"
        )
    return s, coeffs


def ridge_risk(eigenvalues, target_coeffs, *, n, ridge, noise=0.0) -> RidgeRisk:
    r"""Deterministic-equivalent risk of ridge regression (theory/ridge.md (R-1)–(R-7)).

    Args:
      eigenvalues: covariance eigenvalues ``s_i >= 0`` (shape ``(p,)``), at least one > 0.
      target_coeffs: ``beta_i`` in the same eigenbasis (shape ``(p,)``); the signal power
        of mode i is ``s_i beta_i^2``.
      n: number of training samples (> 0).
      ridge: ``lambda >= 0`` in the (1/n)-loss convention; kernel-form ``delta = n lambda``.
      noise: label-noise variance ``>= 0``.

    ``ridge`` and ``noise`` may be arrays (they broadcast together); the function is
    jittable, vmappable and differentiable in both.  At ``ridge = 0`` and ``n == rank``
    the variance is ``+inf`` (when ``noise > 0``), never NaN.
    """
    require("eigenvalues", eigenvalues, lambda a: (a >= 0).all() and (a > 0).any(),
            ">= 0 with at least one > 0")
    require_finite("target_coeffs", target_coeffs)
    require("n", n, lambda a: a > 0, "> 0")
    require_nonnegative("ridge", ridge)
    require_nonnegative("noise", noise)
    s, beta = spectrum_arrays(eigenvalues, target_coeffs)
    ridge = jnp.asarray(ridge, dtype=s.dtype)
    noise = jnp.asarray(noise, dtype=s.dtype)
    ridge, noise = jnp.broadcast_arrays(ridge, noise)
    return _ridge_risk(s, beta, n, ridge, noise)
