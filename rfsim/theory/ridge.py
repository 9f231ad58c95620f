r"""Deterministic equivalent of linear (and kernel) ridge regression.

Implements theory/ridge.md, Eqs. (R-1)–(R-12): (R-9)–(R-12) are :func:`krr_risk`, the
same fixed point with multiplicity weights, unlearnable target power and a spectral tail.
Conventions:

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

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.theory.scaling import (
    headroom,
    ldexp,
    scale_exponent,
    split,
    xdiv,
    xmul,
    xsum,
    xval,
)
from rfsim.validation import (
    float64_hint,
    float_dtype,
    is_concrete,
    range_error,
    require,
    require_exact,
    require_finite,
    require_in_range,
    require_nonnegative,
    require_positive,
)

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


# --------------------------------------------------------------------------- (R-1)-(R-6)


def _weigh(x, w):
    """``w x``, or ``x`` itself when there are no multiplicity weights (``w is None``)."""
    return x if w is None else w * x


def mode_count(pos, w, dtype):
    """``#{s > 0}``, or with multiplicity weights ``sum_{s>0} w`` (R-9)."""
    if w is None:
        return pos.sum(-1).astype(dtype)
    return jnp.where(pos, w, 0.0).sum(-1)


def learned(s, pos, k, w=None):
    """``(count, tail)`` with ``df1(k) = sum_{s>0} s/(s+k) = count - tail`` (R-2).

    A mode with ``s > k`` contributes ``1 - k/(s+k)``, any other ``s/(s+k) <= 1/2``: ``count =
    #{s > k}`` is exact and ``tail = sum_{s>k} k/(s+k) - sum_{s<=k} s/(s+k)`` is a difference
    of two sums of small terms, each accurate to round-off however wide the spectral gaps.
    With multiplicity weights ``w`` (R-9) every term is counted ``w_i`` times.
    """
    kb = k[..., None]
    denom = jnp.where(pos, s + kb, 1.0)
    big = pos & (s > kb)
    small = pos & ~big
    count = mode_count(big, w, s.dtype)
    tail = (jnp.where(big, _weigh(kb / denom, w), 0.0).sum(-1)
            - jnp.where(small, _weigh(s / denom, w), 0.0).sum(-1))
    return count, tail


def deficit(s, pos, k, m, w=None):
    """``m - df1(k)`` without cancellation: ``(m - count) + tail`` (:func:`learned`).

    (Writing it as ``m - rank + sum k/(s+k)`` drops every ``k/(s+k)`` below eps: it gave a
    wrong kappa, hence a wrong bias, once a gap in the spectrum exceeded ~1/eps^2 = 1e32 in
    float64.)
    """
    count, tail = learned(s, pos, k, w)
    return (m - count) + tail


def _gap(s, pos, kappa, n, ridge, w=None):
    """1 - df2/n >= 0 (R-6); zero exactly at the ridgeless interpolation threshold.

    With kappa > 0 the fixed point (R-1) gives n - df1 = n ridge / kappa, hence
    n - df2 = n ridge/kappa + sum s kappa/(s+kappa)^2: a sum of non-negative terms, each
    formed as (s/(s+kappa))(kappa/(s+kappa)) so that nothing underflows to 0/0.
    ``kappa`` may be 0 (ridgeless, n >= rank), where the gap is 1 - rank/n.
    """
    kb = kappa[..., None]
    denom = jnp.where(pos, s + kb, 1.0)
    safe = jnp.where(kappa > 0, kappa, 1.0)
    spread = jnp.where(pos, _weigh((s / denom) * (kb / denom), w), 0.0).sum(-1) / n
    df2 = jnp.where(pos, _weigh((s / denom) ** 2, w), 0.0).sum(-1)
    # kappa = 0: 1 - df2/n = 1 - rank/n, written through df2 so that d/d kappa flows
    return jnp.where(kappa > 0, ridge / safe + spread, 1.0 - df2 / n)


def log_lower_bound(s, pos, excess_rank, ridge, w=None):
    """log max(ridge, (rank - m) / sum_{s>0} 1/s), the lower end of the brackets (R-3),
    (RFE-4), formed in logs so that neither 1/s nor the bound itself can over- or underflow
    (``excess_rank = rank - m``; -inf when neither term is positive)."""
    s_min = jnp.min(jnp.where(pos, s, jnp.inf), axis=-1)
    s_min = jnp.where(jnp.isfinite(s_min), s_min, 1.0)
    rel_inv = jnp.where(pos, _weigh(s_min[..., None] / jnp.where(pos, s, 1.0), w), 0.0).sum(-1)
    free = excess_rank > 0
    log_free = jnp.where(
        free,
        jnp.log(jnp.where(free, excess_rank, 1.0)) + jnp.log(s_min)
        - jnp.log(jnp.where(rel_inv > 0, rel_inv, 1.0)),
        -jnp.inf,
    )
    log_ridge = jnp.where(ridge > 0, jnp.log(jnp.where(ridge > 0, ridge, 1.0)), -jnp.inf)
    return jnp.maximum(log_ridge, log_free)


def _solve_kappa(s, pos, n, ridge, w=None):
    """Root of (R-1), by bisection in log kappa between the bounds (R-3), then one Newton
    step so that derivatives follow the implicit-function theorem.  ``s`` and ``ridge`` are
    the rescaled ones of (R-8); the bracket ends are formed in logs.  ``w``: multiplicity
    weights (R-9), ``None`` for one mode per entry."""
    rank = mode_count(pos, w, s.dtype)
    hi = ridge + jnp.where(pos, _weigh(s, w), 0.0).sum(-1) / n
    solvable = (ridge > 0) | (rank > n)  # otherwise kappa = 0
    # bisect t = log(k / 2^H): near 0 for kappa near the rescaled spectrum, where exp(t) is
    # accurate to an ulp (exp(log k) at |log k| ~ 22 would lose 16 ulps in float32)
    H, shift = headroom(s.dtype), headroom(s.dtype) * math.log(2.0)
    log_lo = jnp.where(solvable, log_lower_bound(s, pos, rank - n, ridge, w), 0.0) - shift
    log_hi = jnp.log(jnp.where(solvable, hi, 2.0)) - shift

    def excess(t):  # ridge/k - (n - df1)/n, decreasing in k; root = kappa
        k = ldexp(jnp.exp(t), H)
        ridge_over_k = jnp.where(ridge > 0, ridge / k, 0.0)
        return ridge_over_k - deficit(s, pos, k, n, w) / n

    def step(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        positive = excess(mid) > 0
        return jnp.where(positive, mid, a), jnp.where(positive, b, mid)

    a, b = jax.lax.fori_loop(0, _BISECTION_STEPS, step, (log_lo, log_hi))
    k0 = jax.lax.stop_gradient(jnp.where(solvable, ldexp(jnp.exp(0.5 * (a + b)), H), 0.0))
    # Newton on h(k) = k (1 - df1/n) - ridge, h'(k) = 1 - df2/n > 0  (R-1), (R-6)
    slope = _gap(s, pos, k0, n, ridge, w)
    ok = solvable & (slope > 0)
    h = k0 * (deficit(s, pos, k0, n, w) / n) - ridge  # k0 * deficit alone may overflow
    k1 = k0 - h / jnp.where(ok, slope, 1.0)
    # kappa = 0 (ridgeless, n > rank): kappa ~ ridge / (1 - rank/n) to first order, which
    # carries the derivative d kappa / d ridge = 1 / (1 - rank/n)
    below = (rank < n) & ~solvable
    k_zero = jnp.where(below, ridge / jnp.where(below, 1.0 - rank / n, 1.0), 0.0)
    return jnp.where(ok & (k1 > 0), k1, jnp.where(solvable, k0, k_zero))


def _ridge_risk(s, beta, n, ridge, noise, s_exp=0, b_exp=0, w=None, power=None):
    """(R-1)-(R-8) for the spectrum ``s 2^s_exp`` and coefficients ``beta 2^b_exp``.

    With multiplicity weights ``w`` (R-9) entry i stands for ``w_i`` modes of eigenvalue
    ``s_i``; ``power`` (caller units, replacing ``w s beta^2``; ``beta`` is then unused) is
    the target power of each group, and may sit on null modes ``s_i = 0``, which it enters
    unlearned (R-10).

    The fixed point is solved for the problem rescaled by ``2^-e`` (R-8): kappa is
    homogeneous, kappa(c s, c ridge) = c kappa(s, ridge), so ``s 2^(s_exp-e)`` and
    ``ridge 2^-e`` (exact power-of-two scalings) give ``kappa 2^-e`` with every
    intermediate far from overflow and underflow.  The bias numerator and the variance
    are carried in extended range and rounded once.
    """
    dtype = s.dtype
    e = scale_exponent([(jnp.max(s), s_exp), (ridge, 0)], dtype)
    sp = ldexp(s, (s_exp - e)[..., None])
    rp = ldexp(ridge, -e)
    pos = sp > 0  # a mode 2^-H below a dominant ridge flushes to 0: negligible there
    kappa_p = _solve_kappa(sp, pos, n, rp, w)
    kb = kappa_p[..., None]
    denom = jnp.where(pos, sp + kb, 1.0)
    rank = mode_count(pos, w, dtype)
    gap = _gap(sp, pos, kappa_p, n, rp, w)
    at_threshold = gap <= 0  # ridgeless interpolation threshold n == rank
    safe_gap = jnp.where(at_threshold, 1.0, gap)
    # bias = sum s beta^2 r^2 / gap, r = kappa/(s+kappa), in the caller's units;
    # modes flushed to 0 by the rescaling keep r = 1 and their full power s beta^2
    r = xdiv(split(jnp.where(pos, kb, 1.0)), split(denom))  # 1 on flushed modes
    if power is None:
        b = split(beta, b_exp)
        signal = xmul(split(s, s_exp), b, b)
        if w is not None:
            signal = xmul(signal, split(w))
        signal_left = xsum(xmul(signal, r, r), s > 0)
        stuck = False
    else:  # power on null modes (r = 1) is never learned
        signal_left = xsum(xmul(split(power), r, r), power > 0)
        stuck = jnp.any((power > 0) & ~(s > 0), axis=-1)
    at_zero = jnp.where(stuck, jnp.inf, 0.0)  # unlearnable power acts as noise at n = rank
    bias = jnp.where(at_threshold, at_zero, xval(xdiv(signal_left, split(safe_gap))))
    # variance = noise (df2/n) / gap, no cancellation
    q = xdiv(split(sp), split(denom))
    df2 = xsum(xmul(q, q) if w is None else xmul(q, q, split(w)), pos)
    var = xval(xmul(split(noise), xdiv(df2, split(n * safe_gap))))
    variance = jnp.where(noise > 0, jnp.where(at_threshold, jnp.inf, var), 0.0)
    excess = bias + variance
    test = excess + noise
    # train = (ridge/kappa)^2 test = (1 - df1/n)^2 test; 0 whenever the fit interpolates
    shrink = jnp.where(kappa_p > 0, rp / jnp.where(kappa_p > 0, kappa_p, 1.0), 1.0 - rank / n)
    interpolates = (ridge == 0) & (rank >= n)
    train = jnp.where(interpolates, 0.0, shrink * (shrink * jnp.where(interpolates, 0.0, test)))
    kappa = ldexp(kappa_p, e)
    return RidgeRisk(kappa, bias, variance, excess, test, train)


_ridge_risk_jit = jax.jit(_ridge_risk)


def pad_modes(s, coeffs):
    """Pad the modes with null ones (``s = 0``, coefficient 0) up to a power of two (at
    least 16), so that spectra of many lengths share one compiled program; a null mode with
    no target power changes nothing in (R-1)-(R-7) or (RFE-2)-(RFE-9)."""
    p = s.shape[-1]
    size = max(16, 1 << max(p - 1, 0).bit_length())
    if size == p:
        return s, coeffs
    pad = [(0, 0)] * (s.ndim - 1) + [(0, size - p)]
    return jnp.pad(s, pad), jnp.pad(coeffs, pad)


def spectrum_arrays(eigenvalues, target_coeffs) -> tuple[jax.Array, jax.Array]:
    """1-d float arrays of equal length (integer eigenvalues are computed in floats)."""
    for name, x in (("eigenvalues", eigenvalues), ("target_coeffs", target_coeffs)):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise ValueError(f"{name} must be real, got an array of dtype {x.dtype}")
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


def check_spectrum(eigenvalues, dtype, field: str = "eigenvalues") -> None:
    """Concrete eigenvalues: real, finite, >= 0 with one > 0, each positive one a normal
    number of ``dtype`` within a factor ``1/finfo.tiny`` of the largest (R-8)."""
    require(field, eigenvalues, lambda a: (a >= 0).all() and (a > 0).any(),
            ">= 0 with at least one > 0", dtype)
    if not is_concrete(eigenvalues):
        return
    s = np.asarray(eigenvalues, dtype=float)
    tiny = float(jnp.finfo(dtype).tiny)
    top = s.max()
    small = (s > 0) & (s < top * tiny)
    if small.any():
        i = int(np.nonzero(small)[0][0])
        raise range_error(
            f"{field}[{i}]", float(s[i]), dtype,
            f"the positive eigenvalues must lie within a factor {1 / tiny:.3g} of the largest, "
            f"{top:g}, to be resolved in {np.dtype(dtype).name}; set the negligible ones to 0",
        )


def negligible_ridge(ridge, s_max: float, dtype, s_exp: int = 0) -> np.ndarray:
    """Where a positive ridge is exactly 0 in the rescaled problem (R-8): ``ridge 2^-e`` below
    ``finfo.tiny``, ``e`` as :func:`rfsim.theory.scaling.scale_exponent` picks it from the
    largest eigenvalue ``s_max 2^s_exp`` and the ridge."""
    r = np.asarray(ridge, dtype=float)
    e = np.maximum(math.frexp(s_max)[1] + s_exp, np.frexp(r)[1]) - headroom(dtype)
    return (r > 0) & (np.ldexp(r, -e) < float(jnp.finfo(dtype).tiny))


def check_ridge(ridge, dtype, *, s_max=None, s_exp: int = 0, threshold=False,
                field: str = "ridge") -> None:
    """A concrete ridge must be >= 0 and fit ``dtype``.  Where it is negligible beside the
    spectrum (largest eigenvalue ``s_max 2^s_exp``, :func:`negligible_ridge`) it is computed
    as 0, which is correct to round-off except at a ridgeless interpolation threshold
    (``threshold``, e.g. ``n == rank``), where the risk is finite for any ridge > 0 and inf
    at 0: refused there."""
    require_nonnegative(field, ridge, dtype)
    if s_max is None or not is_concrete(ridge):
        return
    tiny, at, r = np.broadcast_arrays(negligible_ridge(ridge, s_max, dtype, s_exp),
                                      np.asarray(threshold, dtype=bool),
                                      np.asarray(ridge, dtype=float))
    bad = tiny & at
    if bad.any():
        top = math.log10(s_max) + s_exp * math.log10(2.0)
        raise range_error(
            field, float(r[bad].flat[0]), dtype,
            f"beside the largest eigenvalue (about 1e{top:.0f}) it is below "
            f"{np.dtype(dtype).name}'s resolution and would act as 0, and at an interpolation "
            "threshold (n = rank) the risk depends on it: finite for ridge > 0, inf at 0",
        )


def check_power(field: str, log_total: float, dtype) -> None:
    """Refuse a target whose total power ``exp(log_total)`` overflows ``dtype``: every risk
    would then be inf."""
    top = float(jnp.finfo(dtype).max)
    if log_total > math.log(top):
        raise ValueError(
            f"{field}: the target's power is about 1e{log_total / math.log(10):.0f}, beyond "
            f"the largest {np.dtype(dtype).name} {top:.3g}, so every risk would overflow; "
            f"rescale the target{float64_hint(dtype)}"
        )


def log_power(weights, coeffs) -> float:
    """log sum_i w_i c_i^2 (w >= 0) in float64, free of overflow."""
    w = np.asarray(weights, dtype=float)
    c = np.abs(np.asarray(coeffs, dtype=float))
    live = (w > 0) & (c > 0)
    if not live.any():
        return -math.inf
    return float(np.logaddexp.reduce(np.log(w[live]) + 2.0 * np.log(c[live])))


def ridge_risk(eigenvalues, target_coeffs, *, n, ridge, noise=0.0) -> RidgeRisk:
    r"""Deterministic-equivalent risk of ridge regression (theory/ridge.md (R-1)–(R-8)).

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

    Computed in the eigenvalues' float dtype (the active default for Python numbers).
    Concrete inputs must fit it (theory/ridge.md §3c): nonzero values normal numbers,
    positive eigenvalues within ``1/finfo.tiny`` of the largest, integer ``n`` exact, target
    power ``sum s_i beta_i^2`` finite, and no ridge too small to resolve beside the spectrum
    at the threshold ``n == rank``; otherwise ``ValueError`` names the field, the value and
    the range.  Inside that domain the result
    is accurate to round-off at any scale (the problem is solved rescaled by a power of 2,
    (R-8)); only a risk whose true value overflows comes back inf.
    """
    dtype = float_dtype(eigenvalues)
    check_spectrum(eigenvalues, dtype)
    require_finite("target_coeffs", target_coeffs)
    require_in_range("target_coeffs", target_coeffs, dtype)
    require("n", n, lambda a: a > 0, "> 0", dtype)
    require_exact("n", n, dtype)
    if is_concrete(eigenvalues):
        s_arr = np.asarray(eigenvalues, dtype=float)
        threshold = np.asarray(n, dtype=float) == (s_arr > 0).sum() if is_concrete(n) else False
        check_ridge(ridge, dtype, s_max=float(s_arr.max()), threshold=threshold)
    else:
        check_ridge(ridge, dtype)
    require_nonnegative("noise", noise, dtype)
    if is_concrete((eigenvalues, target_coeffs)) and np.shape(eigenvalues) == np.shape(
            target_coeffs):
        check_power("target_coeffs", log_power(eigenvalues, target_coeffs), dtype)
    s, beta = spectrum_arrays(eigenvalues, target_coeffs)
    ridge = jnp.asarray(ridge, dtype=s.dtype)
    noise = jnp.asarray(noise, dtype=s.dtype)
    ridge, noise = jnp.broadcast_arrays(ridge, noise)
    s, beta = pad_modes(s, beta)
    return _ridge_risk_jit(s, beta, jnp.asarray(n, s.dtype), ridge, noise)


# --------------------------------------------------------------------------- (R-9)-(R-12)


def tail_mode(t1, t2, s_max, dtype, xp=jnp):
    """``(s_t, M)`` of (R-11): ``M`` modes of eigenvalue ``s_t = T2/T1``, ``M = T1^2/T2``, so
    that ``M s_t = T1`` and ``M s_t^2 = T2``.  ``s_t`` is floored at ``eps^2 max s`` (where
    ``T2`` is round-off, e.g. 0): ``M s_t = T1`` still holds and ``df1`` changes by a relative
    ``eps^2 max s / kappa``.  ``T1 = 0``: no tail (``M = 0``).  ``xp``: ``jnp``, or ``np``
    for the concrete checks."""
    t1 = xp.asarray(t1, dtype)
    t2 = xp.asarray(t2, dtype)
    floor = s_max * np.finfo(dtype).eps ** 2
    live = t1 > 0
    s_t = xp.maximum(xp.where(live & (t2 > 0), t2 / xp.where(live, t1, 1.0), 0.0), floor)
    m = xp.where(live, t1 / s_t, 0.0)
    return s_t, m


def krr_modes(eigenvalues, multiplicities, target_power, tail=(0.0, 0.0)):
    """Validate the spectrum of :func:`krr_risk`; ``(s, w, power, dtype)`` padded with null
    groups (``s = w = power = 0``) to a power of two (at least 16) with the last entry free
    for the tail mode (R-11).  NumPy arrays when concrete (no eager XLA programs)."""
    dtype = float_dtype(eigenvalues, multiplicities, target_power)
    check_spectrum(eigenvalues, dtype)
    require_positive("multiplicities", multiplicities, dtype)
    require_nonnegative("target_power", target_power, dtype)
    if not (isinstance(tail, (tuple, list)) and len(tail) == 2):
        raise ValueError(f"tail must be a pair (T1, T2) of tail moments, got {tail!r}")
    require_nonnegative("tail[0] (T1)", tail[0], dtype)
    require_nonnegative("tail[1] (T2)", tail[1], dtype)
    if is_concrete(tail) and float(tail[0]) == 0 and float(tail[1]) > 0:
        raise ValueError(f"tail = ({float(tail[0]):g}, {float(tail[1]):g}): T2 = sum s^2 > 0 "
                         "needs T1 = sum s > 0")
    inputs = (eigenvalues, multiplicities, target_power)
    xp = np if is_concrete(inputs) else jnp
    arrs = []
    for name, x in zip(("eigenvalues", "multiplicities", "target_power"), inputs):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise ValueError(f"{name} must be real, got an array of dtype {x.dtype}")
        arrs.append(xp.asarray(x, dtype=dtype))
    s, w, p = arrs
    if s.ndim != 1 or w.shape != s.shape or p.shape != s.shape:
        raise ValueError(
            f"eigenvalues, multiplicities and target_power must be 1-d of equal length, got "
            f"shapes {s.shape}, {w.shape} and {p.shape}")
    if xp is np:
        total = float(np.sum(p, dtype=float))
        check_power("target_power", math.log(total) if total > 0 else -math.inf, dtype)
    size = max(16, 1 << s.shape[0].bit_length())  # > len(s): the last slot holds the tail
    s, w, p = (xp.pad(a, (0, size - a.shape[0])) for a in (s, w, p))
    return s, w, p, dtype


@jax.jit
def _krr_risk_jit(s, w, power, t1, t2, n, ridge, noise):
    s_t, m = tail_mode(t1, t2, jnp.max(s), s.dtype)  # in the free last slot
    s, w = s.at[-1].set(s_t), w.at[-1].set(m)
    return _ridge_risk(s, None, n, ridge, noise, w=w, power=power)


def krr_risk(eigenvalues, multiplicities, target_power, *, n, ridge, noise=0.0,
             tail=(0.0, 0.0)) -> RidgeRisk:
    r"""Eigenlearning risk of kernel ridge regression with degenerate eigenvalues and a
    spectral tail (theory/ridge.md (R-9)–(R-12)).

    Args:
      eigenvalues: Mercer eigenvalues ``lambda_l >= 0`` (shape ``(L,)``), one per group of
        degenerate modes, at least one > 0.
      multiplicities: ``N_l > 0``, the number of modes sharing ``lambda_l`` (need not be
        integers).
      target_power: ``P_l >= 0``, the target's total power in group l (summed over its
        ``N_l`` modes).  Power on a group with ``lambda_l = 0`` is never learned (R-10).
      n: number of training samples (>= 1).
      ridge: ``>= 0`` in the (1/n)-loss convention: the estimator is ``f = K(., X) alpha``,
        ``alpha = (K + n ridge I)^{-1} y``; 0 is ridgeless interpolation.
      noise: label-noise variance ``>= 0``.
      tail: ``(T1, T2) = (sum s, sum s^2)`` over the modes left out of the list (each
        ``<< kappa``), entered as one group (R-11); ``(0, 0)`` for none.  The tail carries
        no target power.

    Returns :class:`RidgeRisk`; ``excess_risk = E (f - f*)^2`` at a fresh input,
    ``test_mse = excess_risk + noise``.  Jittable in ``ridge``, ``noise`` and ``tail`` (and
    vmappable over arrays of ``ridge`` and ``noise``, which broadcast together); concrete
    inputs are validated as in :func:`ridge_risk`.

    Example (each of 3 modes of eigenvalue 1 listed once vs grouped)::

        >>> import numpy as np
        >>> a = krr_risk([1.0], [3.0], [1.0], n=2, ridge=0.1, noise=0.2).test_mse
        >>> b = ridge_risk(np.ones(3), np.full(3, 3 ** -0.5), n=2, ridge=0.1, noise=0.2).test_mse
        >>> bool(abs(a - b) < 1e-6 * b)
        True
    """
    s, w, power, dtype = krr_modes(eigenvalues, multiplicities, target_power, tail)
    require("n", n, lambda a: a >= 1, ">= 1", dtype)
    require_exact("n", n, dtype)
    if is_concrete((eigenvalues, multiplicities, tail)):
        s_arr = np.asarray(eigenvalues, dtype=float)
        s_max = float(s_arr.max())
        _, m = tail_mode(float(tail[0]), float(tail[1]), s_max, np.dtype(float), np)
        rank = float(np.broadcast_to(np.asarray(multiplicities, float), s_arr.shape)[s_arr > 0]
                     .sum() + m)
        threshold = np.asarray(n, dtype=float) == rank if is_concrete(n) else False
        check_ridge(ridge, dtype, s_max=s_max, threshold=threshold)
    else:
        check_ridge(ridge, dtype)
    require_nonnegative("noise", noise, dtype)
    xp = np if is_concrete((ridge, noise)) else jnp
    ridge, noise = xp.broadcast_arrays(xp.asarray(ridge, dtype), xp.asarray(noise, dtype))
    t1, t2 = (jnp.asarray(t, dtype) for t in tail)
    return _krr_risk_jit(s, w, power, t1, t2, jnp.asarray(n, dtype), ridge, noise)
