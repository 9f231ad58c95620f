"""Exact tier: rfsim.theory.ridge.ridge_risk against independent formulas (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from rfsim.theory.ridge import ridge_risk

RTOL = 1e-8  # float64 acceptance tolerance


def isotropic_closed_form(d, n, ridge, noise, signal):
    """Hastie et al. 2022 / Marchenko-Pastur: kappa from the quadratic, s_i = 1."""
    g = d / n
    if ridge == 0:
        if g < 1:
            return noise * g / (1 - g)
        return signal * (1 - 1 / g) + noise / (g - 1)
    b = 1 - ridge - g
    kappa = (-b + np.sqrt(b * b + 4 * ridge)) / 2
    t = g / (1 + kappa) ** 2
    return (kappa**2 / (1 + kappa) ** 2 * signal + noise * t) / (1 - t)


def brentq_reference(s, beta, n, ridge, noise):
    """Independent numpy/scipy route: root of n(1 - ridge/k) = sum s/(s+k) by brentq."""
    s = np.asarray(s, float)
    beta = np.asarray(beta, float)
    rank = np.sum(s > 0)
    if ridge == 0 and n >= rank:
        kappa = 0.0
    else:
        f = lambda k: np.sum(s / (s + k)) - n * (1 - ridge / k)
        kappa = brentq(f, max(ridge, 1e-300) if ridge else 1e-14 * s.max(), ridge + s.sum() / n,
                       xtol=1e-300, rtol=1e-15, maxiter=1000)
    pos = s > 0
    r = s[pos] / (s[pos] + kappa)
    df2 = np.sum(r**2)
    bias = kappa**2 * np.sum(s[pos] * beta[pos] ** 2 / (s[pos] + kappa) ** 2) / (1 - df2 / n)
    var = noise * df2 / (n - df2)
    test = bias + var + noise
    train = (ridge / kappa) ** 2 * test if kappa > 0 else (noise * (n - rank) / n)
    return kappa, bias, var, bias + var, test, train


def powerlaw(d, a, b):
    i = np.arange(1, d + 1.0)
    s = i**-a
    s *= d / s.sum()
    beta = i ** (-b / 2)
    beta /= np.sqrt(np.sum(s * beta**2))
    return s, beta


@pytest.mark.parametrize(
    "d,n,ridge,noise",
    [(200, 100, 0.0, 0.5), (200, 400, 0.0, 0.5), (200, 100, 0.1, 0.3), (300, 300, 1e-6, 0.2),
     (100, 50, 50.0, 1.0), (100, 250, 1e-3, 0.0)],
)
def test_isotropic_matches_closed_form(d, n, ridge, noise):
    s = np.ones(d)
    beta = np.full(d, d**-0.5)
    got = float(ridge_risk(s, beta, n=n, ridge=ridge, noise=noise).excess_risk)
    want = isotropic_closed_form(d, n, ridge, noise, 1.0)
    assert got == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize(
    "d,n,a,b,ridge,noise",
    [(500, 100, 1.5, 1.0, 0.0, 0.5), (500, 800, 1.5, 1.0, 0.0, 0.5),
     (400, 400, 1.2, 1.4, 1e-4, 0.1), (300, 50, 2.0, 2.5, 1e-2, 0.0),
     (300, 200, 1.1, 0.5, 10.0, 2.0), (50, 500, 1.0, 1.0, 1e-3, 1.0)],
)
def test_powerlaw_matches_brentq_reference(d, n, a, b, ridge, noise):
    s, beta = powerlaw(d, a, b)
    got = ridge_risk(s, beta, n=n, ridge=ridge, noise=noise)
    want = brentq_reference(s, beta, n, ridge, noise)
    for name, g, w in zip(got._fields, got, want):
        assert float(g) == pytest.approx(w, rel=RTOL, abs=1e-14), name


def test_threshold_is_infinite_and_never_nan():
    d = 100
    r = ridge_risk(np.ones(d), np.full(d, 0.1), n=d, ridge=0.0, noise=0.5)
    assert np.isinf(float(r.excess_risk)) and float(r.excess_risk) > 0
    assert float(r.train_mse) == 0.0
    r0 = ridge_risk(np.ones(d), np.full(d, 0.1), n=d, ridge=0.0, noise=0.0)
    assert float(r0.excess_risk) == 0.0  # noiseless interpolation at n = d is exact


def test_zero_eigenvalues_reduce_rank():
    s = np.array([2.0, 1.0, 0.5, 0.0, 0.0])
    beta = np.array([1.0, -1.0, 0.5, 3.0, 3.0])
    # rank 3: ridgeless with n = 4 > rank behaves like the 3-d problem
    full = ridge_risk(s, beta, n=4, ridge=0.0, noise=0.3)
    reduced = ridge_risk(s[:3], beta[:3], n=4, ridge=0.0, noise=0.3)
    for g, w in zip(full, reduced):
        assert float(g) == pytest.approx(float(w), rel=RTOL)
    assert float(full.variance) == pytest.approx(0.3 * 3 / (4 - 3), rel=RTOL)


def test_jit_vmap_and_eager_agree():
    s, beta = powerlaw(200, 1.5, 1.0)
    ridges = jnp.array([0.0, 1e-3, 1e-1, 1.0])
    f = jax.jit(jax.vmap(lambda lam: ridge_risk(s, beta, n=150, ridge=lam, noise=0.4).test_mse))
    eager = [float(ridge_risk(s, beta, n=150, ridge=float(lam), noise=0.4).test_mse)
             for lam in ridges]
    np.testing.assert_allclose(np.asarray(f(ridges)), eager, rtol=1e-12)


@pytest.mark.parametrize("ridge", [1e-3, 0.1, 2.0])
def test_gradient_matches_finite_differences(ridge):
    s, beta = powerlaw(150, 1.3, 1.2)

    def risk(lam, noise):
        return ridge_risk(s, beta, n=120, ridge=lam, noise=noise).test_mse

    g_lam, g_noise = jax.grad(risk, argnums=(0, 1))(ridge, 0.5)
    h = 1e-6 * ridge
    fd_lam = (risk(ridge + h, 0.5) - risk(ridge - h, 0.5)) / (2 * h)
    fd_noise = (risk(ridge, 0.5 + 1e-6) - risk(ridge, 0.5 - 1e-6)) / 2e-6
    assert float(g_lam) == pytest.approx(float(fd_lam), rel=1e-6)
    assert float(g_noise) == pytest.approx(float(fd_noise), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"ridge": -1.0}, "ridge must be >= 0, got -1"),
     ({"noise": float("nan")}, "noise must be finite"),
     ({"n": 0}, "n must be > 0, got 0")],
)
def test_bad_input_names_the_field(kwargs, message):
    args = {"n": 10, "ridge": 0.1, "noise": 0.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        ridge_risk(np.ones(5), np.ones(5), **args)


@settings(max_examples=60, deadline=None)
@given(
    # subnormal eigenvalues are refused by validation (XLA flushes them to zero): see
    # tests/test_api_ranges.py
    eig=st.lists(st.floats(0.0, 1e3, allow_subnormal=False), min_size=1, max_size=12).filter(
        lambda v: max(v) > 1e-6),
    n=st.integers(1, 30),
    ridge=st.one_of(st.just(0.0), st.floats(1e-8, 1e3)),
    noise=st.floats(0.0, 10.0, allow_subnormal=False),
    seed=st.integers(0, 1000),
)
def test_fuzz_no_nan_and_consistent(eig, n, ridge, noise, seed):
    s = np.array(eig)
    beta = np.random.default_rng(seed).normal(size=s.shape)
    if (s[s > 0] < s.max() * np.finfo(float).tiny).any():  # beyond float64's dynamic range
        with pytest.raises(ValueError, match=r"eigenvalues\[\d+\] = .* within a factor"):
            ridge_risk(s, beta, n=n, ridge=ridge, noise=noise)
        return
    r = ridge_risk(s, beta, n=n, ridge=ridge, noise=noise)
    vals = np.array([float(v) for v in r])
    assert not np.isnan(vals).any()
    assert float(r.excess_risk) >= 0 and float(r.train_mse) >= 0
    if np.isfinite(float(r.excess_risk)):
        want = float(r.excess_risk) + noise
        assert float(r.test_mse) == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert float(r.train_mse) <= float(r.test_mse) * (1 + 1e-12) + 1e-300


def test_integer_eigenvalues_are_computed_in_floats():
    got = ridge_risk([1, 2, 3, 4], [1, 1, 1, 1], n=2, ridge=0.5, noise=0.25)
    want = brentq_reference(np.array([1.0, 2, 3, 4]), np.ones(4), 2, 0.5, 0.25)
    for g, w in zip(got, want):
        assert float(g) == pytest.approx(w, rel=RTOL)


@pytest.mark.parametrize("ridge", [1e3, 1e4, 1e12])
def test_variance_keeps_relative_precision_at_huge_ridge(ridge):
    """variance = noise (df2/n)/gap: no 1/gap - 1 cancellation when gap -> 1."""
    d = n = 100
    got = float(ridge_risk(np.ones(d), np.full(d, 0.1), n=n, ridge=ridge, noise=0.5).variance)
    kappa = (-(1 - ridge - d / n) + np.sqrt((1 - ridge - d / n) ** 2 + 4 * ridge)) / 2
    t = (d / n) / (1 + kappa) ** 2
    assert got == pytest.approx(0.5 * t / (1 - t), rel=1e-10)


def test_gradient_at_zero_ridge_above_the_threshold():
    """n > rank: kappa = 0 at ridge 0 but d kappa / d ridge = 1/(1 - rank/n) > 0."""
    s, beta = np.ones(100), np.full(100, 0.1)

    def risk(lam):
        return ridge_risk(s, beta, n=150, ridge=lam, noise=0.2).excess_risk

    fd = (risk(1e-8) - risk(0.0)) / 1e-8
    assert float(jax.grad(risk)(0.0)) == pytest.approx(float(fd), rel=1e-5)
