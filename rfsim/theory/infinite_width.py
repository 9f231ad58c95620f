r"""Infinite-width predictions: the NNGP posterior and the NTK gradient-flow ensemble.

Implements theory/kernels.md, Eqs. (K-13)–(K-15).  Inputs are kernel blocks (from
:func:`rfsim.theory.kernels.kernels` or any other source): ``dd`` train x train (n, n),
``td`` test x train (m, n), ``tt`` test x test (m, m) or its diagonal (m,).

* NNGP posterior (K-13), Gaussian likelihood with variance ``noise``:
  ``mean = K_td (K_dd + noise I)^{-1} y``, ``cov = K_tt - K_td (K_dd + noise I)^{-1} K_dt``.
* NTK gradient flow (K-14), loss ``(1/2n) sum_i (f(x_i) - y_i)^2`` and time ``t =
  learning_rate * steps`` (gradient descent's continuous limit): on the training set
  ``f_t - y = exp(-Theta_dd t / n)(f_0 - y)``; the ensemble over initializations
  (``f_0 ~ GP(0, K)``, the NNGP) has mean ``Theta_td Theta_dd^{-1} (I - e^{-Theta_dd t/n}) y``
  and covariance (K-15) [Lee et al. 2019, arXiv:1902.06720, Eq. (16)]
  ``K_tt + A K_dd A^T - (A K_dt + K_td A^T)`` with ``A = Theta_td Theta_dd^{-1}
  (I - e^{-Theta_dd t/n})``.  ``t = inf`` gives kernel regression with the NTK.

Everything goes through one eigendecomposition of the (symmetrized) train block, with
``(1 - e^{-lambda t/n}) / lambda`` formed by ``-expm1`` so that small eigenvalues and small
times lose no digits.  A train block that is not positive definite (to round-off) is
reported, never inverted silently.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rfsim.validation import as_real_array, require_finite, require_nonnegative

__all__ = ["Posterior", "nngp_posterior", "ntk_flow"]


class Posterior(NamedTuple):
    """Mean (m,) and covariance (m, m), or variance (m,) when the test block was a diagonal."""

    mean: np.ndarray
    cov: np.ndarray


def _real(name: str, value) -> np.ndarray:
    """A float64 array; complex, boolean, string or ragged input is a ValueError naming the
    argument (``np.asarray(.., float)`` dropped an imaginary part with only a warning)."""
    if value is None:
        raise ValueError(f"{name} must be a real array, got None")
    return as_real_array(name, value)


def _blocks(dd, td, tt, y, names=("dd", "td", "tt")):
    dd = _real(names[0], dd)
    td = np.atleast_2d(_real(names[1], td))
    y = _real("y", y)
    for name, v in ((names[0], dd), (names[1], td), ("y", y)):
        require_finite(name, v)
    if dd.ndim != 2 or dd.shape[0] != dd.shape[1] or dd.shape[0] < 1:
        raise ValueError(f"{names[0]} (the train x train kernel) must be square (n, n), got "
                         f"{dd.shape}")
    n = dd.shape[0]
    if td.shape[1] != n:
        raise ValueError(f"{names[1]} (test x train) must have {n} columns to match "
                         f"{names[0]}, got {td.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y must have n = {n} rows to match {names[0]}, got shape {y.shape}")
    if tt is not None:
        tt = _real(names[2], tt)
        require_finite(names[2], tt)
        m = td.shape[0]
        if tt.shape not in ((m,), (m, m)):
            raise ValueError(f"{names[2]} must be (m, m) or its diagonal (m,) with m = {m}, got "
                             f"{tt.shape}")
    return 0.5 * (dd + dd.T), td, tt, y


def _eigh(dd, field: str):
    lam, V = np.linalg.eigh(dd)
    scale = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
    if lam[0] <= -1e-10 * scale:
        raise ValueError(f"{field} is not positive semi-definite (smallest eigenvalue "
                         f"{lam[0]:.3g}, largest {lam[-1]:.3g}): is it a kernel matrix?")
    return lam, V


def _quad(td, M, diag):
    """td M td^T, or only its diagonal."""
    return np.einsum("ij,jk,ik->i", td, M, td) if diag else td @ M @ td.T


def nngp_posterior(dd, td, y, tt=None, *, noise=0.0) -> Posterior:
    """Gaussian-process posterior with the NNGP as prior covariance (K-13).

    ``noise`` is the observation-noise variance (0: noiseless interpolation, needs ``dd``
    positive definite).  ``tt=None`` returns ``cov=None``.
    """
    require_nonnegative("noise", noise)
    dd, td, tt, y = _blocks(dd, td, tt, y)
    lam, V = _eigh(dd, "dd")
    lam = lam + float(noise)
    if lam[0] <= 1e-13 * lam[-1]:
        raise ValueError(f"dd + noise I is singular to round-off (smallest eigenvalue "
                         f"{lam[0]:.3g}): add noise > 0 or remove duplicated inputs")
    inv = (V / lam) @ V.T
    mean = td @ (inv @ y)
    if tt is None:
        return Posterior(mean, None)
    diag = tt.ndim == 1
    return Posterior(mean, tt - _quad(td, inv, diag))


def ntk_flow(ntk_dd, ntk_td, y, t, *, nngp_dd=None, nngp_td=None, nngp_tt=None) -> Posterior:
    """Mean and covariance over initializations of a network trained by gradient flow on
    the loss (1/2n) sum (f - y)^2 for time ``t`` (= learning rate x steps), in the NTK limit
    (K-14, K-15).  ``t`` may be ``math.inf``.  The covariance needs all three NNGP blocks
    (``nngp_dd`` (n, n), ``nngp_td`` (m, n), ``nngp_tt`` (m, m) or (m,)); without them ``cov``
    is None, and only some of them is a ValueError (never a silently missing covariance).
    Every block must be real (complex input is a ValueError).
    """
    if not (isinstance(t, (int, float, np.floating, np.integer)) and t == math.inf):
        require_nonnegative("t", t)
    given = {k: v is not None for k, v in
             (("nngp_dd", nngp_dd), ("nngp_td", nngp_td), ("nngp_tt", nngp_tt))}
    if any(given.values()) and not all(given.values()):
        have = [k for k, g in given.items() if g]
        missing = [k for k, g in given.items() if not g]
        raise ValueError(f"nngp_dd, nngp_td and nngp_tt must be given together (the covariance"
                         f" K-15 needs all three) or not at all, got {', '.join(have)} without "
                         f"{', '.join(missing)}")
    dd, td, _, y = _blocks(ntk_dd, ntk_td, None, y, names=("ntk_dd", "ntk_td", "tt"))
    n = dd.shape[0]
    lam, V = _eigh(dd, "ntk_dd")
    if math.isinf(float(t)):
        if lam[0] <= 1e-13 * lam[-1]:
            raise ValueError(f"ntk_dd is singular to round-off (smallest eigenvalue "
                             f"{lam[0]:.3g}): t = inf needs distinct training inputs")
        g = 1.0 / lam
    else:
        rate = lam / n
        safe = np.where(lam > 0, lam, 1.0)
        g = np.where(lam > 0, -np.expm1(-rate * float(t)) / safe, float(t) / n)
    A = td @ ((V * g) @ V.T)  # Theta_td Theta_dd^{-1} (I - e^{-Theta t/n})
    mean = A @ y
    if nngp_dd is None:
        return Posterior(mean, None)
    Kdd, Ktd, Ktt, _ = _blocks(nngp_dd, nngp_td, nngp_tt, y,
                               names=("nngp_dd", "nngp_td", "nngp_tt"))
    diag = Ktt.ndim == 1
    if diag:
        cov = Ktt + np.einsum("ij,jk,ik->i", A, Kdd, A) - 2.0 * np.einsum("ij,ij->i", A, Ktd)
    else:
        cross = A @ Ktd.T
        cov = Ktt + A @ Kdd @ A.T - (cross + cross.T)
    return Posterior(mean, cov)

