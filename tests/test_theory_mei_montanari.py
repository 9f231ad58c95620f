"""Tests for rfsim.theory.mei_montanari (theory/random_features.md, Section 1).

(a) an independent implementation (complex fixed point of (RF-4) by continuation
    with scipy.optimize.root; paper's ridgeless closed form at ridge = 0;
    Definition-1 polynomials written out separately; activation moments by
    adaptive quadrature);
(b) known limits (RF-14);
(c) a Monte Carlo of the exact Mei–Montanari objective (RF-1)-(RF-2);
(d) jit / vmap / grad / dtype / input validation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special

from rfsim.theory.mei_montanari import (
    MeiMontanariRisk,
    activation_coefficients,
    mei_montanari,
)

# --------------------------------------------------------------------------
# independent reference implementation
# --------------------------------------------------------------------------

_NUMPY_ACT = {
    "relu": lambda z: np.maximum(z, 0.0),
    "erf": special.erf,
    "tanh": np.tanh,
    "gelu": lambda z: z * special.ndtr(z),
}


def _ref_coefficients(fn):
    """(mu0, mu1, mustar) by adaptive quadrature of the Gaussian integrals."""

    def moment(h):
        dens = lambda z: h(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return sum(
            integrate.quad(dens, a, b, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
            for a, b in [(-45.0, -1.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 45.0)]
        )

    f = lambda z: float(fn(np.float64(z)))
    m0 = moment(f)
    m1 = moment(lambda z: z * f(z))
    m2 = moment(lambda z: f(z) ** 2)
    return m0, m1, math.sqrt(m2 - m0 * m0 - m1 * m1)


def _ref_chi(zeta, p1, p2, lbar):
    """chi = nu1 nu2 at xi = i sqrt(p1 p2 lbar): complex 2-unknown solve of (RF-4).

    Continuation in s = Im(xi) from a huge value (where nu_k ~ -psi_k/xi) down to
    the target; no use of the scalar reduction (RF-6).  At lbar = 0 the paper's
    ridgeless closed form (RF-12) is used instead.
    """
    z2 = zeta * zeta
    if lbar == 0.0:
        psi = min(p1, p2)
        b = psi * z2 - z2 - 1.0
        return -(b + math.sqrt(b * b + 4 * z2 * psi)) / (2 * z2)

    def resid(v, xi):
        n1, n2 = complex(v[0], v[1]), complex(v[2], v[3])
        den = 1.0 - z2 * n1 * n2
        r1 = n1 * (-xi - n2 - z2 * n2 / den) - p1
        r2 = n2 * (-xi - n1 - z2 * n1 / den) - p2
        return [r1.real, r1.imag, r2.real, r2.imag]

    s_target = math.sqrt(p1 * p2 * lbar)
    s0 = max(1e4 * (p1 + p2 + 1.0) * (1.0 + z2), 10.0 * s_target)
    v = np.array([0.0, p1 / s0, 0.0, p2 / s0])
    for s in np.geomspace(s0, s_target, 400):
        sol = optimize.root(resid, v, args=(1j * s,), method="hybr", tol=1e-15)
        v = sol.x
    sol = optimize.root(resid, v, args=(1j * s_target,), method="lm", tol=1e-16)
    v = sol.x
    assert max(abs(r) for r in resid(v, 1j * s_target)) < 1e-11 * (p1 + p2)
    nu1, nu2 = complex(v[0], v[1]), complex(v[2], v[3])
    assert nu1.imag > 0 and nu2.imag > 0  # the branch in C_+ (Definition 1)
    chi = nu1 * nu2
    assert abs(chi.imag) <= 1e-10 * abs(chi)
    return chi.real


def _ref_risk(p1, p2, ridge, activation="relu", f1_sq=1.0, fstar_sq=0.0, noise=0.0):
    _mu0, mu1, mus = _ref_coefficients(_NUMPY_ACT[activation])
    zeta = mu1 / mus
    x = _ref_chi(zeta, p1, p2, ridge / mus**2)
    z = zeta
    # [MM] Definition 1, term by term as printed in the paper.
    e0 = (
        -(x**5) * z**6
        + 3 * x**4 * z**4
        + (p1 * p2 - p2 - p1 + 1) * x**3 * z**6
        - 2 * x**3 * z**4
        - 3 * x**3 * z**2
        + (p1 + p2 - 3 * p1 * p2 + 1) * x**2 * z**4
        + 2 * x**2 * z**2
        + x**2
        + 3 * p1 * p2 * x * z**2
        - p1 * p2
    )
    e1 = p2 * x**3 * z**4 - p2 * x**2 * z**2 + p1 * p2 * x * z**2 - p1 * p2
    e2 = (
        x**5 * z**6
        - 3 * x**4 * z**4
        + (p1 - 1) * x**3 * z**6
        + 2 * x**3 * z**4
        + 3 * x**3 * z**2
        + (-p1 - 1) * x**2 * z**4
        - 2 * x**2 * z**2
        - x**2
    )
    b, v = e1 / e0, e2 / e0
    excess = f1_sq * b + (noise + fstar_sq) * v + fstar_sq  # [MM] Theorem 1
    return {"excess_risk": excess, "test_mse": excess + noise, "bias": b, "variance": v, "chi": x}


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


# --------------------------------------------------------------------------
# (a) agreement with the independent implementation
# --------------------------------------------------------------------------

CASES = [
    # psi1, psi2, ridge, activation, f1_sq, fstar_sq, noise
    pytest.param(3.0, 2.0, 0.1, "relu", 1.0, 0.0, 0.0, id="over-param"),
    pytest.param(0.4, 1.7, 0.05, "relu", 1.0, 0.0, 0.0, id="under-param"),
    pytest.param(1.0, 1.01, 1e-5, "relu", 1.0, 0.0, 0.1, id="near-threshold-small-ridge"),
    pytest.param(0.5, 2.0, 50.0, "relu", 1.0, 0.0, 0.0, id="large-ridge"),
    pytest.param(2.0, 0.7, 0.05, "relu", 1.0, 0.0, 0.5, id="noise"),
    pytest.param(4.0, 1.5, 0.01, "relu", 0.8, 0.3, 0.2, id="fstar"),
    pytest.param(0.6, 1.3, 0.0, "relu", 1.0, 0.2, 0.3, id="ridgeless-under"),
    pytest.param(2.5, 1.1, 0.0, "relu", 1.0, 0.2, 0.3, id="ridgeless-over"),
    pytest.param(1.7, 2.3, 0.02, "erf", 1.0, 0.2, 0.1, id="erf"),
    pytest.param(0.8, 3.0, 0.3, "tanh", 1.0, 0.0, 0.25, id="tanh"),
    pytest.param(5.0, 0.9, 0.0, "tanh", 1.0, 0.1, 0.25, id="tanh-ridgeless"),
    pytest.param(1.2, 0.8, 1e-3, "gelu", 0.5, 0.5, 0.5, id="gelu"),
]


@pytest.mark.parametrize("p1,p2,ridge,act,f1,fs,tau2", CASES)
def test_matches_independent_implementation(p1, p2, ridge, act, f1, fs, tau2):
    got = mei_montanari(p1, p2, ridge, activation=act, f1_sq=f1, fstar_sq=fs, noise=tau2)
    ref = _ref_risk(p1, p2, ridge, act, f1, fs, tau2)
    assert isinstance(got, MeiMontanariRisk)
    for field in ("excess_risk", "test_mse", "bias", "variance", "chi"):
        assert _rel(getattr(got, field), ref[field]) <= 1e-6, (field, getattr(got, field), ref)
    # in fact much tighter than the acceptance tolerance:
    assert _rel(got.excess_risk, ref["excess_risk"]) <= 1e-9


def test_vectorised_call_matches_pointwise():
    p1 = jnp.array([3.0, 0.4, 1.0, 0.5, 2.0, 2.5])
    p2 = jnp.array([2.0, 1.7, 1.01, 2.0, 0.7, 1.1])
    ridge = jnp.array([0.1, 0.05, 1e-5, 50.0, 0.05, 0.0])
    got = mei_montanari(p1, p2, ridge, noise=0.3, fstar_sq=0.1)
    assert got.excess_risk.shape == (6,)
    for i in range(6):
        one = mei_montanari(float(p1[i]), float(p2[i]), float(ridge[i]), noise=0.3, fstar_sq=0.1)
        assert _rel(got.excess_risk[i], one.excess_risk) <= 1e-13
    # broadcasting: (3,1) x (4,) -> (3,4)
    grid = mei_montanari(jnp.array([[0.5], [1.5], [4.0]]), jnp.array([0.7, 1.2, 2.0, 3.0]), 0.01)
    assert grid.bias.shape == (3, 4)
    assert _rel(grid.bias[2, 1], mei_montanari(4.0, 1.2, 0.01).bias) <= 1e-13


@pytest.mark.parametrize("act", ["relu", "erf", "tanh", "gelu"])
def test_activation_coefficients_vs_adaptive_quadrature(act):
    got = activation_coefficients(act)
    ref = _ref_coefficients(_NUMPY_ACT[act])
    for g, r in zip(got, ref):
        assert abs(g - r) <= 1e-10 * max(1.0, abs(r))


def test_activation_coefficients_closed_forms():
    mu0, mu1, mus = activation_coefficients("relu")
    assert mu0 == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    assert mu1 == 0.5
    assert mus**2 == pytest.approx(0.25 - 1 / (2 * math.pi), rel=1e-14)
    mu0, mu1, mus = activation_coefficients("erf")
    assert mu0 == 0.0 and mu1 == pytest.approx(2 / math.sqrt(3 * math.pi), rel=1e-15)
    # the name and the equivalent callable agree (callable path = Gauss-Hermite)
    by_name = activation_coefficients("tanh")
    by_callable = activation_coefficients(lambda z: jnp.tanh(z))
    for a, b in zip(by_name, by_callable):
        assert abs(a - b) <= 1e-12
    gelu_cf = activation_coefficients("gelu")
    gelu_q = activation_coefficients(lambda z: jax.nn.gelu(z, approximate=False))
    for a, b in zip(gelu_cf, gelu_q):
        assert abs(a - b) <= 1e-12


def test_activation_coefficients_kinked_callable_falls_back_to_adaptive():
    fn = lambda z: jnp.abs(z - 0.3)
    got = activation_coefficients(fn)
    ref = _ref_coefficients(lambda z: abs(z - 0.3))
    for g, r in zip(got, ref):
        assert abs(g - r) <= 1e-9


def test_callable_activation_risk_matches_named():
    a = mei_montanari(1.3, 0.9, 0.05, activation="erf", noise=0.2)
    b = mei_montanari(1.3, 0.9, 0.05, activation=jax.scipy.special.erf, noise=0.2)
    assert _rel(b.excess_risk, a.excess_risk) <= 1e-10


# --------------------------------------------------------------------------
# (b) known limits (RF-14)
# --------------------------------------------------------------------------


def _mp(c, lam):
    """Marchenko–Pastur Stieltjes transform m(-lam) and m'(-lam), ratio c."""
    z = -lam
    m = (1 - c - z - math.sqrt((1 - c - z) ** 2 - 4 * c * z)) / (2 * c * z)
    dm = (c * m * m + m) / ((1 - c - z) - 2 * c * z * m)
    return m, dm


def test_large_ridge_gives_null_predictor():
    for f1, fs, tau2 in [(1.0, 0.0, 0.0), (0.7, 0.4, 2.0)]:
        r = mei_montanari(jnp.array([0.5, 2.0, 7.0]), 1.3, 1e9, f1_sq=f1, fstar_sq=fs, noise=tau2)
        np.testing.assert_allclose(r.excess_risk, f1 + fs, rtol=1e-7)
        np.testing.assert_allclose(r.bias, 1.0, rtol=1e-7)
        assert np.all(np.asarray(r.variance) < 1e-8)
    # and the approach is monotone along a ridge path far above the optimum
    path = mei_montanari(2.0, 1.3, jnp.geomspace(1.0, 1e6, 30)).excess_risk
    assert np.all(np.diff(np.asarray(path)) > 0)


@pytest.mark.parametrize("act", ["relu", "erf"])
@pytest.mark.parametrize("p2,ridge", [(2.0, 0.0), (0.5, 0.1), (3.0, 1.0)])
def test_wide_limit_is_kernel_ridge_regression(act, p2, ridge):
    """psi1 -> inf: linear ridge with lambda_r = (mu*^2 + psi2 ridge)/(mu1^2 psi2) (RF-14)."""
    _, mu1, mus = activation_coefficients(act)
    lam_r = (mus**2 + p2 * ridge) / (mu1**2 * p2)
    c = 1.0 / p2
    m, dm = _mp(c, lam_r)
    b_inf, v_inf = lam_r**2 * dm, c * (m - lam_r * dm)
    r1 = mei_montanari(1e6, p2, ridge, activation=act)
    r2 = mei_montanari(2e6, p2, ridge, activation=act)
    # O(1/psi1) approach: Richardson extrapolation
    b_ex, v_ex = 2 * float(r2.bias) - float(r1.bias), 2 * float(r2.variance) - float(r1.variance)
    assert _rel(b_ex, b_inf) <= 1e-7 and _rel(v_ex, v_inf) <= 1e-7
    assert _rel(r2.bias, b_inf) <= 1e-5 and _rel(r2.variance, v_inf) <= 1e-5


@pytest.mark.parametrize("p1,ridge", [(2.0, 0.0), (0.5, 0.1), (3.0, 1.0)])
def test_infinite_data_limit_is_approximation_error(p1, ridge):
    """psi2 -> inf: variance -> 0, bias -> RF approximation error (RF-14)."""
    _, mu1, mus = activation_coefficients("relu")
    rho = p1 * ridge
    g = (mus**2 + rho) / mu1**2
    m, dm = _mp(1.0 / p1, g / p1)
    m_a, dm_a = m / p1, dm / p1**2
    t1, t2 = 1 - g * m_a, m_a - g * dm_a
    b_inf = 1 - t1 - rho / mu1**2 * t2
    r1 = mei_montanari(p1, 1e6, ridge)
    r2 = mei_montanari(p1, 2e6, ridge)
    assert _rel(2 * float(r2.bias) - float(r1.bias), b_inf) <= 1e-7
    assert float(r2.variance) <= 1e-5


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_ridgeless_underparametrised_variance_is_least_squares(act):
    p1 = jnp.array([0.3, 0.9, 1.5, 0.2])
    p2 = jnp.array([2.0, 5.0, 1.7, 0.21])
    v = mei_montanari(p1, p2, 0.0, activation=act).variance
    np.testing.assert_allclose(v, p1 / (p2 - p1), rtol=1e-10)


def test_interpolation_threshold_is_inf_never_nan():
    r = mei_montanari(
        jnp.array([0.5, 1.0, 2.0, 2.0]),
        jnp.array([0.5, 1.0, 2.0, 3.0]),
        0.0,
        noise=0.3,
        fstar_sq=0.2,
    )
    for field in ("excess_risk", "test_mse", "bias", "variance"):
        arr = np.asarray(getattr(r, field))
        assert not np.isnan(arr).any()
        assert np.all(np.isposinf(arr[:3])) and np.isfinite(arr[3])
    # a zero target with no noise is exactly learned, even at the threshold
    zero = mei_montanari(1.0, 1.0, 0.0, f1_sq=0.0)
    assert float(zero.excess_risk) == 0.0 and np.isposinf(float(zero.bias))
    # the divergence is approached continuously: V ~ psi1 / (psi2 - psi1) from below
    eps = jnp.array([1e-2, 1e-4, 1e-6])
    v = mei_montanari(1.0, 1.0 + eps, 0.0).variance
    np.testing.assert_allclose(v, 1.0 / eps, rtol=1e-6)
    # and from the over-parametrised side it is also large and finite
    over = mei_montanari(1.0 + eps, 1.0, 0.0).excess_risk
    assert np.all(np.isfinite(over)) and np.all(np.diff(np.asarray(over)) > 0)
    assert float(over[-1]) > 1e4


def test_small_ridge_converges_to_ridgeless():
    for p1, p2 in [(0.6, 1.3), (2.5, 1.1), (1.0, 1.05)]:
        r0 = mei_montanari(p1, p2, 0.0, noise=0.2)
        r = mei_montanari(p1, p2, 1e-11, noise=0.2)
        assert _rel(r.excess_risk, r0.excess_risk) <= 1e-6
    # with ridge > 0 the threshold is finite
    assert np.isfinite(float(mei_montanari(1.0, 1.0, 1e-8).excess_risk))


def test_test_mse_is_excess_plus_noise():
    noise = jnp.array([0.0, 0.25, 1.0, 3.0])
    r = mei_montanari(1.7, 0.6, 0.02, noise=noise, fstar_sq=0.3)
    np.testing.assert_allclose(
        np.asarray(r.test_mse - r.excess_risk), np.asarray(noise), rtol=0, atol=1e-12
    )
    # and the decomposition (RF-10) holds
    np.testing.assert_allclose(r.excess_risk, r.bias + (noise + 0.3) * r.variance + 0.3, rtol=1e-14)


# --------------------------------------------------------------------------
# (c) Monte Carlo of the exact objective (RF-1)-(RF-2)
# --------------------------------------------------------------------------


def _sphere(rng, m, d):
    g = rng.standard_normal((m, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * math.sqrt(d)


def _simulate(seed, d, n_feat, n_train, ridge, noise, n_test=4000):
    rng = np.random.default_rng(seed)
    theta = _sphere(rng, n_feat, d)
    x = _sphere(rng, n_train, d)
    beta = rng.standard_normal(d)
    beta /= np.linalg.norm(beta)  # ||beta1||^2 = 1, beta0 = 0, f_NL = 0
    y = x @ beta + math.sqrt(noise) * rng.standard_normal(n_train)
    z = np.maximum(x @ theta.T / math.sqrt(d), 0.0)
    # (1/n)||y - Z a||^2 + (N ridge / d)||a||^2
    a = np.linalg.solve(z.T @ z + n_train * n_feat * ridge / d * np.eye(n_feat), z.T @ y)
    xt = _sphere(rng, n_test, d)
    return float(np.mean((xt @ beta - np.maximum(xt @ theta.T / math.sqrt(d), 0.0) @ a) ** 2))


@pytest.mark.parametrize("n_feat,n_train", [(300, 200), (200, 300)])
def test_monte_carlo_matches_theory(n_feat, n_train):
    d, ridge, noise = 100, 0.1, 0.25
    risks = np.array([_simulate(s, d, n_feat, n_train, ridge, noise) for s in range(8)])
    mean, sem = risks.mean(), risks.std(ddof=1) / math.sqrt(len(risks))
    theory = float(mei_montanari(n_feat / d, n_train / d, ridge, noise=noise).excess_risk)
    assert abs(mean - theory) <= 4 * sem + 0.08 * theory, (mean, sem, theory)


# --------------------------------------------------------------------------
# (d) transformations, dtype, validation
# --------------------------------------------------------------------------


def test_jit_matches_eager():
    p1 = jnp.geomspace(0.1, 10.0, 37)
    p2 = 1.3
    ridge = jnp.concatenate([jnp.zeros(1), jnp.geomspace(1e-6, 1e2, 36)])
    eager = mei_montanari(p1, p2, ridge, activation="tanh", noise=0.2, fstar_sq=0.1)
    jitted = jax.jit(mei_montanari, static_argnames="activation")(
        p1, p2, ridge, activation="tanh", noise=0.2, fstar_sq=0.1
    )
    for e, j in zip(eager, jitted):
        np.testing.assert_allclose(j, e, rtol=1e-12, atol=0)
    # jit with every numeric argument traced
    fn = jax.jit(lambda a, b, c, f1, fs, t: mei_montanari(a, b, c, f1_sq=f1, fstar_sq=fs, noise=t))
    j2 = fn(p1, p2, ridge, 1.0, 0.1, 0.2)
    e2 = mei_montanari(p1, p2, ridge, fstar_sq=0.1, noise=0.2)
    np.testing.assert_allclose(j2.excess_risk, e2.excess_risk, rtol=1e-12)


def test_vmap_over_ridge_and_psi():
    ridges = jnp.array([0.0, 1e-4, 1e-2, 1.0, 1e3])
    v = jax.vmap(lambda r: mei_montanari(2.0, 1.5, r, noise=0.1).excess_risk)(ridges)
    direct = mei_montanari(2.0, 1.5, ridges, noise=0.1).excess_risk
    np.testing.assert_allclose(v, direct, rtol=1e-12)
    vv = jax.vmap(jax.vmap(lambda a, b: mei_montanari(a, b, 0.05).bias, (None, 0)), (0, None))(
        jnp.array([0.5, 3.0]), jnp.array([0.7, 1.1, 4.0])
    )
    grid = mei_montanari(jnp.array([[0.5], [3.0]]), jnp.array([0.7, 1.1, 4.0]), 0.05).bias
    np.testing.assert_allclose(vv, grid, rtol=1e-12)


def test_gradients_match_finite_differences():
    def risk(p1, p2, r):
        return mei_montanari(p1, p2, r, noise=0.3, fstar_sq=0.1).excess_risk

    x0 = (1.7, 0.9, 0.03)
    grads = jax.grad(risk, argnums=(0, 1, 2))(*x0)
    for i, g in enumerate(grads):
        h = 1e-6 * x0[i]
        xp, xm = list(x0), list(x0)
        xp[i] += h
        xm[i] -= h
        fd = (float(risk(*xp)) - float(risk(*xm))) / (2 * h)
        assert abs(float(g) - fd) <= 1e-6 * max(1.0, abs(fd)), (i, g, fd)
    # ridgeless: derivative in psi1 exists away from the threshold
    g0 = jax.grad(lambda a: mei_montanari(a, 1.8, 0.0).excess_risk)(0.7)
    fd0 = (
        float(mei_montanari(0.7 + 1e-6, 1.8, 0.0).excess_risk)
        - float(mei_montanari(0.7 - 1e-6, 1.8, 0.0).excess_risk)
    ) / 2e-6
    assert abs(float(g0) - fd0) <= 1e-6 * abs(fd0)


def test_dtype_follows_inputs():
    r64 = mei_montanari(1.5, 0.8, 0.01)
    assert r64.excess_risk.dtype == jnp.float64
    r32 = mei_montanari(jnp.float32(1.5), jnp.float32(0.8), jnp.float32(0.01))
    assert r32.excess_risk.dtype == jnp.float32 and r32.bias.dtype == jnp.float32
    assert _rel(r32.excess_risk, r64.excess_risk) <= 1e-4
    rint = mei_montanari(2, 1, 0)
    assert rint.excess_risk.dtype == jnp.float64 and np.isfinite(float(rint.excess_risk))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"psi1": -1.0}, r"psi1 must be > 0, got -1\.0"),
        ({"psi2": 0.0}, r"psi2 must be > 0, got 0\.0"),
        ({"ridge": -0.1}, r"ridge must be >= 0, got -0\.1"),
        ({"noise": -0.5}, r"noise must be >= 0, got -0\.5"),
        ({"f1_sq": -1.0}, r"f1_sq must be >= 0, got -1\.0"),
        ({"fstar_sq": -2.0}, r"fstar_sq must be >= 0, got -2\.0"),
        ({"psi1": float("nan")}, r"psi1 must be finite, got nan"),
        ({"ridge": float("inf")}, r"ridge must be finite, got inf"),
        ({"psi2": np.array([1.0, -3.0])}, r"psi2 must be > 0, got -3\.0"),
        ({"activation": "linear"}, r"mu_star"),
        ({"activation": "relux"}, r"did you mean 'relu'"),
    ],
)
def test_invalid_inputs_raise(kwargs, match):
    args = {"psi1": 1.0, "psi2": 2.0, "ridge": 0.1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mei_montanari(**args)


def test_linear_callable_raises():
    with pytest.raises(ValueError, match="mu_star > 0"):
        mei_montanari(1.0, 2.0, 0.1, activation=lambda z: 3.0 * z + 1.0)
