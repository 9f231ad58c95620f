"""Kernel ridge regression on the sphere (theory/sphere.md (S-1)-(S-9), theory/ridge.md
(R-9)-(R-12)): spectra against exact rational arithmetic and closed forms, the weighted
risk against ridge_risk on the expanded mode list, the tail, and simulated kernel ridge
regression with a twin that must fail."""

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import agree, keys
from scipy.integrate import quad
from scipy.special import eval_gegenbauer, eval_legendre

from rfsim.data import harmonic_draw, sphere_inputs
from rfsim.theory.ridge import krr_risk, ridge_risk
from rfsim.theory.sphere import (
    HarmonicTarget,
    arccos_profile,
    degree_power,
    exp_kernel_eigenvalues,
    gegenbauer,
    kernel_eigenvalues,
    kernel_spectrum,
    multiplicities,
    multiplicity,
    sphere_krr_risk,
    t_quadrature,
    trace_residual,
)



def harmonic_target(key, d, degrees, powers):
    """The draw of rfsim.data made a target of the given powers (S-8)."""
    return HarmonicTarget.from_draw(d, degrees, powers, harmonic_draw(key, d, len(degrees)))


# ------------------------------------------------------------------------ (S-1), (S-2)


def test_multiplicities():
    for l in range(30):
        assert multiplicity(3, l) == 2 * l + 1
        assert multiplicity(2, l) == (1 if l == 0 else 2)
    for d in range(2, 13):
        for l in range(1, 20):  # the closed form (2l+d-2)/l C(l+d-3, l-1), in rationals
            assert multiplicity(d, l) == Fraction(2 * l + d - 2, l) * math.comb(l + d - 3, l - 1)
        for L in range(16):  # polynomials of degree <= L restricted to the sphere
            want = math.comb(L + d - 1, d - 1) + math.comb(L + d - 2, d - 1)
            assert sum(multiplicity(d, l) for l in range(L + 1)) == want
    assert multiplicities(10, 3).tolist() == [1.0, 10.0, 54.0, 210.0]


@pytest.mark.parametrize("d", [2, 3, 5, 10, 40])
def test_gegenbauer_orthogonal_under_the_t_density(d):
    L = 40
    t, w = t_quadrature(d, 2 * L)
    P = gegenbauer(L, d, t)
    gram = (P * w) @ P.T
    want = np.diag(1.0 / multiplicities(d, L))  # E[P_l P_m] = delta_lm / N(d, l)
    assert np.abs(gram - want).max() < 1e-12
    assert np.abs(gegenbauer(L, d, np.ones(1))[:, 0] - 1).max() < 1e-12


def test_gegenbauer_matches_scipy_at_low_degree():
    t = np.linspace(-1, 1, 101)
    for d in (3, 5, 8):
        alpha = (d - 2) / 2
        P = gegenbauer(12, d, t)
        for l in range(13):
            ref = eval_gegenbauer(l, alpha, t) / eval_gegenbauer(l, alpha, 1.0)
            assert np.abs(P[l] - ref).max() < 1e-12


# ------------------------------------------------------------------------ (S-4)-(S-6)


def _moment(d, j):
    """E t^j under (1 - t^2)^((d-3)/2), exactly: 0 for odd j, prod (2i+1)/(d+2i) for even."""
    if j % 2:
        return Fraction(0)
    return math.prod((Fraction(2 * i + 1, d + 2 * i) for i in range(j // 2)), start=Fraction(1))


def _monomial_eigenvalues(d, L, p):
    """lambda_l of t^p in rationals: P_l's monomial coefficients by the recurrence (S-2)."""
    polys = [[Fraction(1)], [Fraction(0), Fraction(1)]]
    for l in range(1, L):
        a, b = polys[l], polys[l - 1] + [Fraction(0)] * 2
        nxt = [Fraction(0)] + [Fraction(2 * l + d - 2) * c for c in a]
        polys.append([(x - l * y) / (l + d - 2) for x, y in zip(nxt, b)])
    return [sum(c * _moment(d, p + j) for j, c in enumerate(polys[l])) for l in range(L + 1)]


@pytest.mark.parametrize("d", [2, 3, 7, 20])
def test_monomial_kernel_eigenvalues_exact(d):
    for p in range(9):
        want = np.array([float(x) for x in _monomial_eigenvalues(d, 12, p)])
        got = kernel_eigenvalues(lambda t, p=p: t**p, d, 12)
        assert np.abs(got - want).max() < 1e-12, p
        assert all(want[l] == 0 for l in range(13) if l > p or (p - l) % 2)


@pytest.mark.parametrize("d", [2, 3, 4, 10, 25])
def test_exp_kernel_closed_form(d):
    got = kernel_eigenvalues(np.exp, d, 40)
    assert np.abs(got - exp_kernel_eigenvalues(d, 40)).max() < 1e-12
    assert np.abs(kernel_eigenvalues(lambda t: np.exp(2 * t), d, 20)
                  - exp_kernel_eigenvalues(d, 20, scale=2.0)).max() < 1e-12


def test_exp_kernel_closed_form_against_adaptive_quadrature():
    """An independent route at d = 3: (1/2) int e^t P_l(t) dt by QUADPACK in t."""
    want = exp_kernel_eigenvalues(3, 10)
    for l in range(11):
        ref = 0.5 * quad(lambda t: np.exp(t) * eval_legendre(l, t), -1, 1, epsabs=1e-14,
                         epsrel=1e-12, limit=200)[0]
        assert abs(ref - want[l]) < 1e-13


@pytest.mark.parametrize("d", [2, 3, 10, 30])
def test_arccos_kernels_vanishing_degrees(d):
    l = np.arange(61)
    lam1 = kernel_eigenvalues(arccos_profile(1), d, 60)
    assert np.abs(lam1[(l % 2 == 1) & (l >= 3)]).max() < 1e-12  # odd part is t/4
    assert abs(lam1[1] - 1 / (4 * d)) < 1e-13  # E[t^2]/4 = 1/(4d)
    lam0 = kernel_eigenvalues(arccos_profile(0), d, 60)
    assert np.abs(lam0[(l % 2 == 0) & (l >= 2)]).max() < 1e-12  # even part is 1/4
    assert abs(lam0[0] - 0.25) < 1e-13
    spec = kernel_spectrum(arccos_profile(1), d, 60)
    assert (spec.eigenvalues[(l % 2 == 1) & (l >= 3)] == 0).all()
    assert (spec.eigenvalues[l % 2 == 0][: 20] > 0).all()


def test_eigenvalues_converged_in_the_panels():
    for d in (3, 10):
        for kfun in (arccos_profile(0), arccos_profile(1), np.exp):
            a = kernel_eigenvalues(kfun, d, 200)
            b = kernel_eigenvalues(kfun, d, 200, panels=150)
            assert np.abs(a - b).max() < 1e-14


# ------------------------------------------------------------------------ (S-7)


@pytest.mark.parametrize("d", [2, 3, 10])
def test_trace_identity(d):
    for kfun, L in ((np.exp, 40), (lambda t: t**6 + 0.5 * t**3 + 0.1, 8)):
        spec = kernel_spectrum(kfun, d, L)
        N, lam = spec.multiplicities, spec.eigenvalues
        assert abs(N @ lam - kfun(1.0)) < 1e-10
        assert abs(N @ lam**2 - spec.second_moment) < 1e-10
        assert spec.tail == (0.0, 0.0)  # all of the trace is in degrees <= L
        assert spec.trace_error < 1e-8
    e2 = exp_kernel_eigenvalues(d, 0, scale=2.0)[0]  # E e^{2t}
    assert abs(kernel_spectrum(np.exp, d, 40).second_moment - e2) < 1e-12
    # arc-cosine, d = 3: the Mercer series converges to k(1) like L^-3; the tail closes it
    spec = kernel_spectrum(arccos_profile(1), 3, 60)
    t1 = spec.tail[0]
    assert 6e-7 < t1 < 8e-7
    assert abs(spec.multiplicities @ spec.eigenvalues + t1 - 1 / 2) < 1e-14


def test_mercer_series_converges_at_high_degree():
    """Quadrature error in high-degree eigenvalues would stop the partial traces from
    converging: at d = 3 the residual falls ~8x per doubling (L^-3) down to 1.6e-10."""
    k1 = arccos_profile(1)
    r1, r2 = trace_residual(k1, 3, 500), trace_residual(k1, 3, 1000)
    assert 0 < r2 < 2e-10
    assert 6 < r1 / r2 < 9


def test_tail_corrects_the_truncation():
    """d = 10, arc-cosine kernel, ridgeless: truncating the spectrum at degree 10 biases the
    prediction by 8% at n = 3000 and 17% at n = 10^4; the tail (R-11) removes it."""
    k1 = arccos_profile(1)
    P = degree_power((1, 2), (0.5, 0.5), 40)
    s10, s40 = kernel_spectrum(k1, 10, 10), kernel_spectrum(k1, 10, 40)
    for n, noise in ((3000, 0.1), (10_000, 0.1), (300, 0.5)):
        ref = float(sphere_krr_risk(s40, P, n=n, ridge=0.0, noise=noise).test_mse)
        with_tail = float(sphere_krr_risk(s10, P[:11], n=n, ridge=0.0, noise=noise).test_mse)
        without = float(sphere_krr_risk(s10, P[:11], n=n, ridge=0.0, noise=noise,
                                        tail=False).test_mse)
        assert abs(with_tail / ref - 1) < 1e-3 * abs(without / ref - 1)
        assert abs(without / ref - 1) > 0.01
    without = float(sphere_krr_risk(s10, P[:11], n=10_000, ridge=0.0, noise=0.1,
                                    tail=False).test_mse)
    assert without / float(sphere_krr_risk(s40, P, n=10_000, ridge=0.0, noise=0.1).test_mse) > 1.1


# ------------------------------------------------------------------------ (R-9)-(R-12)


@pytest.mark.parametrize("n", [5, 20, 49, 60, 200])
@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.3])
def test_krr_risk_equals_ridge_risk_on_the_expanded_modes(n, ridge):
    d, L = 3, 6
    spec = kernel_spectrum(np.exp, d, L)
    lam, N = spec.eigenvalues, spec.multiplicities
    P = degree_power((0, 1, 3, 4), (0.2, 0.5, 0.3, 0.1), L)
    got = krr_risk(lam, N, P, n=n, ridge=ridge, noise=0.3)  # no tail: 49 modes in all
    reps = N.astype(int)
    want = ridge_risk(np.repeat(lam, reps), np.repeat(np.sqrt(P / (N * lam)), reps), n=n,
                      ridge=ridge, noise=0.3)
    for name, g, w in zip(got._fields, got, want):
        if np.isinf(w):
            assert np.isinf(g), name
        else:
            assert float(g) == pytest.approx(float(w), rel=1e-10, abs=1e-300), name


@pytest.mark.parametrize("ridge", [0.0, 0.01])
def test_unlearnable_power_acts_as_noise(ridge):
    """Power on a degree with lambda_l = 0 (R-10) is never learned and enters like label
    noise: test_mse(null power P0, noise s2) = test_mse(none, noise s2 + P0)."""
    spec = kernel_spectrum(arccos_profile(1), 5, 12)
    assert spec.eigenvalues[3] == 0
    P = degree_power((1, 2, 3), (0.5, 0.3, 0.2), 12)
    a = sphere_krr_risk(spec, P, n=40, ridge=ridge, noise=0.1)
    b = sphere_krr_risk(spec, degree_power((1, 2), (0.5, 0.3), 12), n=40, ridge=ridge,
                        noise=0.3)
    assert float(a.test_mse) == pytest.approx(float(b.test_mse), rel=1e-12)
    assert float(a.kappa) == pytest.approx(float(b.kappa), rel=1e-12)


def test_krr_risk_traces_and_broadcasts():
    spec = kernel_spectrum(arccos_profile(1), 10, 12)
    P = degree_power((1, 2), (0.5, 0.5), 12)
    lam, N, tail = spec.eigenvalues, spec.multiplicities, spec.tail
    ridges = jnp.array([0.0, 1e-3, 1e-1])
    many = krr_risk(lam, N, P, n=100, ridge=ridges, noise=0.2, tail=tail).test_mse
    one = [float(krr_risk(lam, N, P, n=100, ridge=float(r), noise=0.2, tail=tail).test_mse)
           for r in ridges]
    np.testing.assert_allclose(many, one, rtol=1e-12)
    f = jax.jit(lambda r: krr_risk(lam, N, P, n=100, ridge=r, noise=0.2, tail=tail).test_mse)
    assert float(f(1e-3)) == pytest.approx(one[1], rel=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: multiplicity(1, 2), "d must be an integer >= 2"),
    (lambda: multiplicity(3, -1), "l must be an integer >= 0"),
    (lambda: kernel_eigenvalues(np.exp, 3, -2), "L must be an integer >= 0"),
    (lambda: kernel_eigenvalues(lambda t: np.where(t < 1, t, np.inf), 3, 2),
     "kfun must be finite"),
    (lambda: kernel_spectrum(lambda t: -t**2, 3, 4), "not a positive semi-definite"),
    (lambda: harmonic_target(jax.random.key(0), 3, (1, -1), (1.0, 1.0)),
     r"degrees\[1\] must be an integer >= 0"),
    (lambda: harmonic_target(jax.random.key(0), 3, (1, 2), (1.0, -1.0)), "powers must be >= 0"),
    (lambda: harmonic_target(jax.random.key(0), 3, (1, 2), (1.0,)), "one entry per degree"),
    (lambda: HarmonicTarget.from_draw(4, (1, 2), (1.0, 1.0),
                                      harmonic_draw(jax.random.key(0), 3, 2)),
     r"draw must hold centres of shape \(2, n_centers, 4\)"),
    (lambda: degree_power((1, 12), (1.0, 1.0), 10), "degrees must be <= L = 10"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=10, ridge=0.1, noise=-1.0),
     "noise must be >= 0"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=0, ridge=0.1), "n must be >= 1"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=10, ridge=-0.1), "ridge must be >= 0"),
    (lambda: krr_risk([1.0, np.nan], [1, 3], [1.0, 0.0], n=10, ridge=0.1),
     "eigenvalues must be finite"),
    (lambda: krr_risk([1.0, -0.5], [1, 3], [1.0, 0.0], n=10, ridge=0.1),
     "eigenvalues must be >= 0"),
    (lambda: krr_risk([1.0, 0.5], [1, 0], [1.0, 0.0], n=10, ridge=0.1),
     "multiplicities must be > 0"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, -1.0], n=10, ridge=0.1),
     "target_power must be >= 0"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0], n=10, ridge=0.1), "1-d of equal length"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=10, ridge=0.1, tail=(0.0, 1.0)),
     "needs T1"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=10, ridge=0.1, tail=(-1.0, 0.0)),
     r"tail\[0\] \(T1\) must be >= 0"),
    (lambda: krr_risk([1.0, 0.5], [1, 3], [1.0, 0.0], n=10, ridge=np.inf),
     "ridge must be finite"),
])
def test_invalid_inputs_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------ (S-8), simulation


def test_harmonic_target_has_the_requested_power():
    d, degrees, powers = 6, (0, 1, 2, 3), (0.1, 0.5, 0.3, 0.2)
    target = harmonic_target(jax.random.key(1), d, degrees, powers)
    np.testing.assert_array_equal(target.power(5), [0.1, 0.5, 0.3, 0.2, 0.0, 0.0])
    x = sphere_inputs(jax.random.key(2), 16, d)
    assert x.shape == (16, d) and np.allclose(jnp.sum(x**2, -1), d)
    X = _uniform_sphere(np.random.default_rng(2), 40_000, d)
    f = np.asarray(jax.jit(target)(X))
    np.testing.assert_allclose(f[:100], np.asarray(target(X[:100])), rtol=1e-12)
    assert np.mean(f**2) == pytest.approx(sum(powers), rel=0.04)
    # degree by degree: a single-degree target with the same centres has its own power,
    # and different degrees are orthogonal (each within Monte Carlo error)
    parts = [harmonic_target(jax.random.key(1), d, (l,), (p,)) for l, p in zip(degrees, powers)]
    vals = [np.asarray(p(X)) for p in parts]
    for (l, p), v in zip(zip(degrees, powers), vals):
        assert np.mean(v**2) == pytest.approx(p, rel=0.05), l
    assert abs(np.mean(vals[1] * vals[2])) < 0.02
    assert abs(np.mean(vals[0])) == pytest.approx(math.sqrt(0.1), rel=1e-10)


def _uniform_sphere(rng, n, d):
    """NumPy's sampler for the bulk points (XLA compiles its sampler per shape, slowly)."""
    g = rng.standard_normal((n, d))
    return g * (math.sqrt(d) / np.linalg.norm(g, axis=-1, keepdims=True))


def _simulate_krr(d, n, ridges, noise, seeds, n_test=2000):
    """Kernel ridge regression with the order-1 arc-cosine kernel, alpha = (K + n ridge I)^-1
    y, by one eigendecomposition per seed; excess risk on fresh points, (seeds, ridges)."""
    k1 = arccos_profile(1)
    out = []
    for i, key in enumerate(keys(seeds, seed=7)):
        rng = np.random.default_rng([7, i])
        target = harmonic_target(key, d, (1, 2, 3), (0.5, 0.3, 0.2))
        X, Z = _uniform_sphere(rng, n, d), _uniform_sphere(rng, n_test, d)
        y = np.asarray(target(X)) + math.sqrt(noise) * rng.standard_normal(n)
        e, V = np.linalg.eigh(k1(X @ X.T / d))
        Kz, fz, Vy = k1(Z @ X.T / d), np.asarray(target(Z)), V.T @ y
        out.append([np.mean((Kz @ (V @ (Vy / (e + n * r))) - fz) ** 2) for r in ridges])
    return np.array(out)


@pytest.fixture(scope="module")
def simulated():
    d, n, ridges, noise = 10, 150, (0.0, 1e-3), 0.1
    return d, n, ridges, noise, _simulate_krr(d, n, ridges, noise, seeds=20)


def _theory(d, n, ridges, noise, kernel=1, L=40, tail=True, ridge_scale=1.0):
    spec = kernel_spectrum(arccos_profile(kernel), d, L)
    P = degree_power((1, 2, 3), (0.5, 0.3, 0.2), L)
    return [float(sphere_krr_risk(spec, P, n=n, ridge=r * ridge_scale, noise=noise,
                                  tail=tail).excess_risk) for r in ridges]


def test_simulated_kernel_ridge_agrees(simulated):
    """d = 10, n = 150, ridgeless and ridge 1e-3, label noise 0.1, target power on degrees
    1, 2 and 3 (the last unlearnable: lambda_3 = 0): 20 seeds, 4 sem + 3%."""
    d, n, ridges, noise, samples = simulated
    agree(samples, _theory(d, n, ridges, noise), max_abs_z=4, rel_tol=0.03)


@pytest.mark.parametrize("wrong", [
    dict(kernel=0),  # eigenvalues of the order-0 arc-cosine kernel
    dict(L=10, tail=False, ridge_scale=150.0),  # tail dropped, ridge in the kernel convention
])
def test_simulated_kernel_ridge_twin_fails(simulated, wrong):
    d, n, ridges, noise, samples = simulated
    with pytest.raises(AssertionError):
        agree(samples, _theory(d, n, ridges, noise, **wrong), max_abs_z=4, rel_tol=0.03)
