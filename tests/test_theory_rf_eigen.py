"""Exact tier: rfsim.theory.rf_eigen.rf_eigen_risk (theory/random_features.md §2).

(a) an independent implementation: the two level-wise equations of (RFE-3) solved separately
    with scipy.optimize.brentq, and the risk ingredients obtained by *complex-step
    differentiation* of the level-2 resolvent functionals (derivation §3, steps 2-3), never
    using the closed forms (RFE-6)-(RFE-7); elementary closed forms at ridge = 0;
(b) the infinite-width limit (RFE-10) towards ridge_risk, at rate O(1/N);
(c) jit / vmap / grad against eager and finite differences;
(d) thresholds (RFE-11), "more is better" monotonicity, validation errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from rfsim.theory.rf_eigen import rf_eigen_risk
from rfsim.theory.ridge import RidgeRisk, ridge_risk

RTOL = 1e-8  # float64 agreement with the independent reference


# --------------------------------------------------------------------------
# independent reference
# --------------------------------------------------------------------------


def _df1(lam, g):
    lp = lam[lam > 0]
    return np.sum(lp / (lp + g))


def _root(f, lo, hi):
    return brentq(f, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=2000)


def _gamma_N(lam, N):
    """Level 2 at kappa_1 -> 0: df1(gamma) = N when N < rank, else 0."""
    rank = np.sum(lam > 0)
    if N >= rank:
        return 0.0
    return _root(lambda g: _df1(lam, g) - N, 1e-300, lam.sum() / N * 4 + 1.0)


def _gamma_of_kappa(lam, N, k):
    """Level 2 (feature level): k = gamma (1 - df1(gamma)/N), branch df1 < N.

    Real k: brentq.  Complex k (complex step): Newton from the real root, which continues
    the same analytic branch."""
    kr = float(np.real(k))
    gN = _gamma_N(lam, N)
    g = _root(lambda g: g * (1 - _df1(lam, g) / N) - kr, max(gN, 1e-300), 2 * (kr + lam.sum() / N))
    if np.iscomplexobj(k):
        g = complex(g)
        lp = lam[lam > 0]
        for _ in range(4):
            d1 = np.sum(lp / (lp + g))
            dd1 = -np.sum(lp / (lp + g) ** 2)
            g = g - (g * (1 - d1 / N) - k) / (1 - d1 / N - g * dd1 / N)
    return g


def _resolvent_quad(lam, v, N, k):
    """v^T (A + k)^{-1} v  ~=  (gamma/k) sum v_i^2/(lambda_i + gamma)  (null modes: v^2/k)."""
    g = _gamma_of_kappa(lam, N, k)
    pos = lam > 0
    return (g / k) * np.sum(v[pos] ** 2 / (lam[pos] + g)) + np.sum(v[~pos] ** 2) / k


def _trace_df1(lam, N, k):
    """Tr A (A + k)^{-1}  ~=  df1(gamma(k))."""
    return _df1(lam, _gamma_of_kappa(lam, N, k))


def _cstep(f, k):
    h = 1e-30 * k
    return np.imag(f(k + 1j * h)) / h


def reference(lam, v, n, N, ridge, noise):
    """Return (gamma, bias, variance, excess, test, train) for rf_eigen_risk's conventions."""
    lam = np.asarray(lam, float)
    v = np.asarray(v, float)
    rank = np.sum(lam > 0)
    null_power = np.sum(v[lam <= 0] ** 2)
    m = min(n, N)
    if ridge == 0 and m >= rank:  # gamma = 0: least squares / min-norm over the rank modes
        d2, B, gamma, shrink = rank, null_power, 0.0, 1 - rank / n
    elif ridge == 0 and N < n:  # kappa_1 = 0: least squares on N features, projection residual
        gamma = _gamma_N(lam, N)
        pos = lam > 0
        B = gamma * np.sum(v[pos] ** 2 / (lam[pos] + gamma)) + null_power
        d2, shrink = N, 1 - N / n
    else:  # level 1 (data): n (1 - ridge/k) = Tr A (A + k)^{-1}
        f = lambda k: _trace_df1(lam, N, k) - n * (1 - ridge / k)
        k1 = _root(f, max(ridge, 1e-12 * lam.max()), 2 * (ridge + lam.sum() / n) + 1.0)
        gamma = _gamma_of_kappa(lam, N, k1)
        B = -(k1**2) * _cstep(lambda k: _resolvent_quad(lam, v, N, k), k1)
        d2 = _trace_df1(lam, N, k1) + k1 * _cstep(lambda k: _trace_df1(lam, N, k), k1)
        shrink = ridge / k1
    test = (B + noise) / (1 - d2 / n)
    bias = B / (1 - d2 / n)
    var = noise * (d2 / n) / (1 - d2 / n)
    return gamma, bias, var, test - noise, test, shrink**2 * test


def powerlaw(P, alpha, beta):
    i = np.arange(1, P + 1.0)
    v = i ** (-beta / 2)
    return i**-alpha, v / np.linalg.norm(v)


CASES = [
    # P, alpha, beta, n, N, ridge, noise
    (400, 1.2, 1.4, 100, 50, 1e-3, 0.1),
    (400, 1.2, 1.4, 100, 300, 1e-2, 0.5),
    (300, 1.5, 1.0, 200, 200, 1e-4, 0.0),
    (300, 2.0, 2.5, 50, 1000, 1.0, 0.2),
    (500, 1.1, 0.5, 150, 80, 10.0, 2.0),
    (400, 1.2, 1.4, 100, 50, 0.0, 0.2),  # ridgeless, N < n
    (400, 1.2, 1.4, 100, 300, 0.0, 0.2),  # ridgeless, n < N
    (400, 1.5, 1.2, 100, 101, 0.0, 0.1),  # ridgeless, just above threshold
    (400, 1.5, 1.2, 101, 100, 0.0, 0.1),  # ridgeless, just below threshold
    (60, 1.0, 1.0, 200, 100, 0.0, 0.3),  # ridgeless, min(n, N) >= rank: gamma = 0
    (60, 1.0, 1.0, 50, 100, 0.0, 0.3),  # ridgeless, n < rank < N
]


@pytest.mark.parametrize("P,alpha,beta,n,N,ridge,noise", CASES)
def test_matches_independent_two_level_reference(P, alpha, beta, n, N, ridge, noise):
    lam, v = powerlaw(P, alpha, beta)
    got = rf_eigen_risk(lam, v, n=n, n_features=N, ridge=ridge, noise=noise)
    want = reference(lam, v, n, N, ridge, noise)
    assert isinstance(got, RidgeRisk)
    for name, g, w in zip(RidgeRisk._fields, got, want):
        assert float(g) == pytest.approx(w, rel=RTOL, abs=1e-300), name


@pytest.mark.parametrize(
    "n,N,ridge",
    [(80, 60, 1e-3), (80, 60, 0.0), (30, 60, 0.0), (30, 20, 0.0), (60, 70, 0.0), (45, 45, 0.05)],
)
def test_null_modes_are_unlearnable(n, N, ridge):
    """Modes with lambda_i = 0 and v_i != 0 add v_i^2 to the noise-free numerator (RFE-7)."""
    lam, v = powerlaw(50, 1.3, 1.0)
    lam = np.concatenate([lam, np.zeros(10)])
    v = np.concatenate([v, np.full(10, 0.1)])
    got = rf_eigen_risk(lam, v, n=n, n_features=N, ridge=ridge, noise=0.2)
    want = reference(lam, v, n, N, ridge, 0.2)
    for name, g, w in zip(RidgeRisk._fields, got, want):
        assert float(g) == pytest.approx(w, rel=RTOL, abs=1e-300), name


def test_isotropic_ridgeless_closed_forms():
    """lambda_i = 1 (P modes), ridge 0: textbook least-squares forms.

    N < n, N < P: the features span an N-dim random subspace; bias = (1 - N/P) (unexplained
    power) amplified by 1/(1 - N/n).  n < N: gamma from a = n gives kernel min-norm."""
    P, n, N, s2 = 400, 200, 100, 0.3
    lam, v = np.ones(P), np.full(P, P**-0.5)
    r = rf_eigen_risk(lam, v, n=n, n_features=N, ridge=0.0, noise=s2)
    assert float(r.kappa) == pytest.approx(P / N - 1, rel=1e-12)
    assert float(r.test_mse) == pytest.approx((1 - N / P + s2) / (1 - N / n), rel=1e-12)
    assert float(r.train_mse) == pytest.approx((1 - N / P + s2) * (1 - N / n), rel=1e-12)


# --------------------------------------------------------------------------
# (b) infinite width
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ridge,noise", [(1e-3, 0.1), (0.0, 0.2), (0.3, 0.0)])
def test_tends_to_ridge_risk_as_features_grow(ridge, noise):
    """(RFE-10): ridge_risk(lam, v / sqrt(lam)) is the N -> inf limit; gap is O(1/N)."""
    lam, v = powerlaw(600, 1.2, 1.4)
    n = 200
    lim = ridge_risk(lam, v / np.sqrt(lam), n=n, ridge=ridge, noise=noise)
    gaps = []
    for N in (1e4, 1e6, 1e8):
        r = rf_eigen_risk(lam, v, n=n, n_features=N, ridge=ridge, noise=noise)
        gaps.append(
            max(
                abs(float(getattr(r, f) / getattr(lim, f)) - 1)
                for f in ("kappa", "excess_risk", "test_mse", "train_mse")
                if float(getattr(lim, f)) != 0
            )
        )
    assert gaps[1] < 1e-3
    assert gaps[1] < gaps[0] / 50 and gaps[2] < gaps[1] / 50  # O(1/N)


def test_wrong_parameterization_is_far_from_limit():
    """Twin of the limit test: passing v itself as ridge_risk's beta is NOT the limit."""
    lam, v = powerlaw(600, 1.2, 1.4)
    r = rf_eigen_risk(lam, v, n=200, n_features=1e8, ridge=1e-3, noise=0.1)
    wrong = ridge_risk(lam, v, n=200, ridge=1e-3, noise=0.1)
    assert abs(float(r.excess_risk / wrong.excess_risk) - 1) > 0.1


# --------------------------------------------------------------------------
# (c) jit, vmap, grad
# --------------------------------------------------------------------------


def test_jit_and_vmap_match_eager():
    lam, v = powerlaw(300, 1.2, 1.4)
    lam, v = jnp.asarray(lam), jnp.asarray(v)
    ridges = jnp.array([0.0, 1e-4, 1e-2, 1.0])
    noises = jnp.array([0.0, 0.1, 0.5, 1.0])
    ns = jnp.array([50.0, 100.0, 120.0, 300.0])
    Ns = jnp.array([300.0, 60.0, 120.0, 1000.0])

    def f(n, N, r, s):
        return rf_eigen_risk(lam, v, n=n, n_features=N, ridge=r, noise=s)

    batched = jax.jit(jax.vmap(f))(ns, Ns, ridges, noises)
    broadcast = rf_eigen_risk(lam, v, n=ns, n_features=Ns, ridge=ridges, noise=noises)
    for i in range(4):
        eager = f(float(ns[i]), float(Ns[i]), float(ridges[i]), float(noises[i]))
        for name, b, c, e in zip(RidgeRisk._fields, batched, broadcast, eager):
            if np.isinf(float(e)):
                assert np.isinf(float(b[i])) and np.isinf(float(c[i])), name
            else:
                assert float(b[i]) == pytest.approx(float(e), rel=1e-12, abs=1e-300), name
                assert float(c[i]) == pytest.approx(float(e), rel=1e-12, abs=1e-300), name


_GL, _GV = (jnp.asarray(a) for a in powerlaw(300, 1.2, 1.4))


@jax.jit
def _risk_vector(x):
    r = rf_eigen_risk(_GL, _GV, n=x[0], n_features=x[1], ridge=x[2], noise=x[3])
    return jnp.stack([r.test_mse, r.train_mse, r.kappa])


_JAC_FWD = jax.jit(jax.jacfwd(_risk_vector))
_JAC_REV = jax.jit(jax.jacrev(_risk_vector))


@pytest.mark.parametrize(
    "n,N,ridge,noise",
    [
        (100.0, 50.0, 1e-2, 0.3),
        (100.0, 300.0, 1e-3, 0.1),
        (100.0, 50.0, 0.0, 0.3),
        (100.0, 300.0, 0.0, 0.3),
    ],
)
def test_grad_matches_finite_differences(n, N, ridge, noise):
    """d(test, train, kappa)/d(n, N, ridge, noise): forward = reverse = finite differences."""
    f = _risk_vector
    x0 = jnp.array([n, N, ridge, noise])
    jac = np.asarray(_JAC_FWD(x0))
    # atol: at ridge 0, d train/d ridge is exactly 0 (stationarity) and both modes return
    # round-off of ~1e-14 there (50 eps of the row's scale), differently signed
    np.testing.assert_allclose(jac, np.asarray(_JAC_REV(x0)), rtol=1e-10, atol=1e-13)
    for j in range(4):
        if j == 2 and ridge == 0:
            # one-sided, second order, at ridge = 0 (d train/d ridge = 0 there: stationarity)
            h = 1e-7
            f0, f1, f2 = (np.asarray(f(x0.at[j].add(k * h))) for k in (0, 1, 2))
            fd = (-3 * f0 + 4 * f1 - f2) / (2 * h)
            np.testing.assert_allclose(jac[:, j], fd, rtol=1e-4, atol=1e-6)
            continue
        h = 1e-5 * max(abs(float(x0[j])), 1e-3)
        fd = (np.asarray(f(x0.at[j].add(h))) - np.asarray(f(x0.at[j].add(-h)))) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-6, atol=1e-10)
    assert np.all(np.isfinite(jac))


def test_float32_follows_input_dtype():
    lam, v = powerlaw(200, 1.2, 1.4)
    r32 = rf_eigen_risk(
        lam.astype(np.float32), v.astype(np.float32), n=80, n_features=40, ridge=1e-3, noise=0.1
    )
    r64 = rf_eigen_risk(lam, v, n=80, n_features=40, ridge=1e-3, noise=0.1)
    assert r32.test_mse.dtype == jnp.float32
    assert float(r32.test_mse) == pytest.approx(float(r64.test_mse), rel=1e-4)


# --------------------------------------------------------------------------
# (d) thresholds, monotonicity, validation
# --------------------------------------------------------------------------


def test_ridgeless_thresholds_are_inf_never_nan():
    lam, v = powerlaw(300, 1.2, 1.4)
    # n == N < rank: both bias (out-of-span signal acts as noise) and variance blow up
    r = rf_eigen_risk(lam, v, n=100, n_features=100, ridge=0.0, noise=0.1)
    assert np.isinf(float(r.bias)) and np.isinf(float(r.variance)) and np.isinf(float(r.test_mse))
    assert float(r.train_mse) == 0.0
    r0 = rf_eigen_risk(lam, v, n=100, n_features=100, ridge=0.0, noise=0.0)
    assert np.isinf(float(r0.excess_risk)) and float(r0.variance) == 0.0
    # n == rank <= N: well-specified least squares; only label noise blows up
    lam60, v60 = powerlaw(60, 1.2, 1.4)
    r = rf_eigen_risk(lam60, v60, n=60, n_features=80, ridge=0.0, noise=0.1)
    assert float(r.bias) == 0.0 and np.isinf(float(r.variance)) and float(r.train_mse) == 0.0
    r = rf_eigen_risk(lam60, v60, n=60, n_features=80, ridge=0.0, noise=0.0)
    assert float(r.excess_risk) == 0.0
    # n == N >= rank is not a threshold
    r = rf_eigen_risk(lam60, v60, n=80, n_features=80, ridge=0.0, noise=0.1)
    assert float(r.test_mse) == pytest.approx(0.1 / (1 - 60 / 80), rel=1e-12)
    # a grid through the threshold: finite and positive everywhere else, no NaN at all
    Ns = jnp.arange(90.0, 111.0)
    rr = rf_eigen_risk(lam, v, n=100, n_features=Ns, ridge=0.0, noise=0.1)
    for field in rr:
        assert not np.any(np.isnan(np.asarray(field)))
    finite = np.isfinite(np.asarray(rr.test_mse))
    assert list(np.asarray(Ns)[~finite]) == [100.0]
    # the peak: risk grows towards the threshold from both sides
    t = np.asarray(rr.test_mse)
    assert np.all(np.diff(t[:10]) > 0) and np.all(np.diff(t[11:]) < 0)


def test_more_is_better_with_tuned_ridge():
    """[SKGB] main claim: with the ridge tuned, test risk decreases in N and in n."""
    lam, v = powerlaw(500, 1.2, 1.4)
    ridges = jnp.concatenate([jnp.zeros(1), jnp.logspace(-7, 1, 81)])

    @jax.jit
    def tuned(n, N):
        return jnp.min(rf_eigen_risk(lam, v, n=n, n_features=N, ridge=ridges, noise=0.2).test_mse)

    def best(n, N):
        return float(tuned(float(n), float(N)))

    over_N = [best(100, N) for N in (10, 30, 100, 300, 1000, 10**5)]
    over_n = [best(n, 200) for n in (10, 30, 100, 300, 1000)]
    assert np.all(np.diff(over_N) < 0) and np.all(np.diff(over_n) < 0)
    # and the untuned ridgeless curve is not monotone in N (double descent)
    ridgeless = [
        float(rf_eigen_risk(lam, v, n=100, n_features=N, ridge=0.0, noise=0.2).test_mse)
        for N in (50, 90, 110, 300)
    ]
    assert ridgeless[1] > ridgeless[0] and ridgeless[2] > ridgeless[3]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n": 0}, "n"),
        ({"n": float("nan")}, "n"),
        ({"n_features": 0.5}, "n_features"),
        ({"n_features": float("inf")}, "n_features"),
        ({"ridge": -1e-3}, "ridge"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("inf")}, "noise"),
        ({"eigenvalues": np.zeros(5)}, "eigenvalues"),
        ({"eigenvalues": np.array([1.0, -0.5, 0.2, 0.1, 0.1])}, "eigenvalues"),
        ({"target_coeffs": np.array([1.0, np.nan, 0, 0, 0])}, "target_coeffs"),
    ],
)
def test_invalid_inputs_raise_naming_the_field(kwargs, field):
    args = {
        "eigenvalues": np.ones(5),
        "target_coeffs": np.ones(5) / 5**0.5,
        "n": 10,
        "n_features": 10,
        "ridge": 0.1,
        "noise": 0.1,
    }
    args.update(kwargs)
    lam, v = args.pop("eigenvalues"), args.pop("target_coeffs")
    with pytest.raises(ValueError, match=rf"^{field} must be .*got"):
        rf_eigen_risk(lam, v, **args)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal length"):
        rf_eigen_risk(np.ones(5), np.ones(4), n=10, n_features=10, ridge=0.1)
