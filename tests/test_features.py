"""Tests of rfsim.features: every assertion is quantitative and could fail.

Statistical checks use fixed keys and state their tolerance in standard errors
(sem) estimated from the same samples; exact checks use dtype-aware tolerances.
conftest.py enables float64.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim import features as F
from rfsim.activations import get_activation

EPS64 = float(jnp.finfo(jnp.float64).eps)
EPS32 = float(jnp.finfo(jnp.float32).eps)


def _z(mean, target, sem):
    return (np.asarray(mean) - np.asarray(target)) / np.asarray(sem)


def _mean_sem(samples, axis=0):
    samples = np.asarray(samples)
    n = samples.shape[axis]
    return samples.mean(axis), samples.std(axis, ddof=1) / math.sqrt(n)


# --------------------------------------------------------------------------- (a) shapes, dtypes


def test_sampler_shapes_and_default_dtype():
    key = jax.random.key(0)
    assert F.gaussian_weights(key, 7, 3).shape == (7, 3)
    assert F.gaussian_weights(key, 7, 3).dtype == jnp.float64  # x64 on: default float64
    assert F.gaussian_weights(key, 7, 3, dtype=jnp.float32).dtype == jnp.float32
    assert F.sphere_weights(key, 5, 4, dtype=jnp.float32).dtype == jnp.float32
    assert F.rff_weights(key, 9, 4).shape == (9, 4)
    assert F.orf_weights(key, 9, 4).shape == (9, 4)  # 3 blocks of 4, last truncated to 1 row
    assert F.orf_weights(key, 9, 4, dtype=jnp.float32).dtype == jnp.float32
    assert F.haar_orthogonal(key, 5).shape == (5, 5)
    assert F.random_phases(key, 6).shape == (6,)
    ws = F.deep_weights(key, 3, (8, 5))
    assert [w.shape for w in ws] == [(8, 3), (5, 8)]


def test_feature_shapes_and_dtypes():
    key = jax.random.key(1)
    x = F.sphere_inputs(jax.random.fold_in(key, 0), 4, 3)
    W = F.gaussian_weights(jax.random.fold_in(key, 1), 10, 3)
    assert F.random_features(x, W, "relu").shape == (4, 10)
    assert F.random_features(x[0], W, "relu").shape == (10,)
    x32, W32 = x.astype(jnp.float32), W.astype(jnp.float32)
    assert F.random_features(x32, W32, "erf").dtype == jnp.float32
    ws = F.deep_weights(key, 3, (8, 5))
    assert F.deep_random_features(x, ws, "tanh").shape == (4, 5)
    hs = F.deep_random_features(x, ws, "tanh", return_all=True)
    assert [h.shape for h in hs] == [(4, 8), (4, 5)]
    om = F.rff_weights(key, 6, 3)
    assert F.fourier_features(x, om).shape == (4, 12)  # cos/sin pairs: 2N columns
    assert F.fourier_features(x, om, F.random_phases(key, 6)).shape == (4, 6)
    assert F.expected_kernel(x, x[:2], "relu").shape == (4, 2)
    assert F.expected_kernel(x[0], x[1], "erf").shape == ()
    assert F.gaussian_kernel(x, x[:3]).shape == (4, 3)


def test_random_features_definition():
    """phi(x) = sigma(W x / sqrt d) exactly, unnormalized (no 1/sqrt N)."""
    key = jax.random.key(2)
    x = jax.random.normal(jax.random.fold_in(key, 0), (3, 5))
    W = F.gaussian_weights(jax.random.fold_in(key, 1), 4, 5)
    want = np.tanh(np.asarray(x) @ np.asarray(W).T / math.sqrt(5))
    np.testing.assert_allclose(F.random_features(x, W, "tanh"), want, rtol=0, atol=10 * EPS64)


@pytest.mark.parametrize("dtype, eps", [(jnp.float64, EPS64), (jnp.float32, EPS32)])
def test_sphere_rows_have_norm_sqrt_d(dtype, eps):
    d = 17
    w = F.sphere_weights(jax.random.key(3), 200, d, dtype=dtype)
    norms = np.linalg.norm(np.asarray(w, np.float64), axis=1)
    tol = 1e-12 if dtype == jnp.float64 else 20 * eps * math.sqrt(d)
    assert np.max(np.abs(norms - math.sqrt(d))) <= tol


def test_sphere_isotropic_and_inputs_alias():
    """Rows uniform on S^{d-1}(sqrt d): E w = 0, E w_i^2 = 1 (exact: sum is d); E w_i w_j = 0."""
    n, d = 4000, 5
    key = jax.random.key(4)
    w = np.asarray(F.sphere_weights(key, n, d))
    mean, sem = _mean_sem(w)
    assert np.max(np.abs(mean / sem)) < 4.0
    off = (w[:, :, None] * w[:, None, :])[:, ~np.eye(d, dtype=bool)]
    m_off, s_off = _mean_sem(off)
    assert np.max(np.abs(m_off / s_off)) < 4.0
    # alias semantics: same key -> identical draw
    np.testing.assert_array_equal(F.sphere_inputs(key, n, d), w)


# ------------------------------------------------------------------ expected kernels, exact


def test_expected_kernel_exact_values():
    """Closed forms at theta = 0, pi/2, pi and the clipped diagonal (no NaN)."""
    d = 4
    e = np.eye(d)
    x = jnp.asarray(np.stack([2 * e[0], e[1], -2 * e[0]]))  # q = 1, 1/4, 1
    q = np.array([1.0, 0.25, 1.0])
    K = np.asarray(F.expected_kernel(x, x, "relu"))
    tol = 20 * EPS64
    np.testing.assert_allclose(np.diag(K), q / 2, rtol=tol)  # E relu(G sqrt q)^2 = q/2
    np.testing.assert_allclose(K[0, 1], math.sqrt(0.25) / (2 * math.pi), rtol=tol)  # theta=pi/2
    assert abs(K[0, 2]) <= tol  # theta = pi
    Ke = np.asarray(F.expected_kernel(x, x, "erf"))
    np.testing.assert_allclose(np.diag(Ke), (2 / np.pi) * np.arcsin(2 * q / (1 + 2 * q)), rtol=tol)
    np.testing.assert_allclose(Ke[0, 2], -Ke[0, 0], rtol=tol)  # odd activation
    assert abs(Ke[0, 1]) <= tol
    np.testing.assert_allclose(F.arccos_kernel(x[0], x[0], 0), 0.5, rtol=tol)  # P(u>0) = 1/2
    np.testing.assert_allclose(F.arccos_kernel(x[0], x[0], 2), 1.5, rtol=tol)  # E u^4 1(u>0)
    np.testing.assert_allclose(F.expected_kernel(x, x, "linear"), np.asarray(x @ x.T) / d)


def test_expected_kernel_diagonal_never_nan_float32():
    """cos theta is rounded above 1 on many float32 diagonals; clipping keeps them finite."""
    x = jax.random.normal(jax.random.key(5), (300, 7), jnp.float32) * 3.0
    for act in ("relu", "erf"):
        diag = jnp.diagonal(F.expected_kernel(x, x, act))
        assert bool(jnp.all(jnp.isfinite(diag)))
    q = np.sum(np.asarray(x, np.float64) ** 2, 1) / 7
    diag = np.asarray(jnp.diagonal(F.expected_kernel(x, x, "relu")), np.float64)
    np.testing.assert_allclose(diag, q / 2, rtol=50 * EPS32)
    zero = jnp.zeros((1, 7))
    assert np.isfinite(np.asarray(F.expected_kernel(zero, x[:2], "relu"))).all()


# --------------------------------------------------------------------------- (b) Monte Carlo kernel

N_MC = 100_000  # at N = 20000 the relu bound 4*s would be ~0.068 and could not reject 5% off


@pytest.fixture(scope="module")
def mc_inputs():
    d = 10
    radii = jnp.sqrt(jnp.array([1.0, 1.0, 1.0, 0.25, 2.0, 4.0]))  # q_0 in {1, 1/4, 2, 4}
    x = F.sphere_inputs(jax.random.key(10), 6, d) * radii[:, None]
    return x.at[1].set(0.9 * x[0] + 0.1 * x[1])  # one strongly correlated pair


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_monte_carlo_kernel_matches_expected(mc_inputs, activation):
    """||Phi Phi^T/N - K||_F / ||K||_F <= 4 s, with s^2 = sum_ij Var(phi_i phi_j) / (N ||K||_F^2).

    s is the rms relative error predicted by the per-entry standard errors (estimated
    from the same features).  Twin: the same bound rejects a kernel 5% off.
    """
    x = mc_inputs
    W = F.gaussian_weights(jax.random.key(11), N_MC, x.shape[1])
    phi = np.asarray(F.random_features(x, W, activation))
    K_hat = phi @ phi.T / N_MC
    K = np.asarray(F.expected_kernel(x, x, activation))
    prod = phi[:, None, :] * phi[None, :, :]
    var = (prod**2).mean(-1) - K_hat**2
    norm_K = np.linalg.norm(K)
    s = math.sqrt(var.sum() / N_MC) / norm_K
    rel = np.linalg.norm(K_hat - K) / norm_K
    assert s < 0.01  # resolving power: 4 s < 0.04 < 0.05
    assert rel <= 4 * s, (rel, s)
    K_off = 1.05 * K
    rel_off = np.linalg.norm(K_hat - K_off) / np.linalg.norm(K_off)
    assert rel_off > 4 * s, (rel_off, s)


# --------------------------------------------------------------------------- (c) Haar


def test_haar_orthogonal_is_orthogonal():
    q = F.haar_orthogonal(jax.random.key(20), 12)
    np.testing.assert_allclose(q.T @ q, np.eye(12), rtol=0, atol=1e-12)
    np.testing.assert_allclose(q @ q.T, np.eye(12), rtol=0, atol=1e-12)


def test_haar_sign_correction_removes_diagonal_bias():
    """Haar Q is invariant under Q -> -Q column-wise, so E Q_kk = 0 for every k.

    LAPACK's Householder QR without the sign fix gives |z| > 10 on diag(Q).
    """
    d, S = 6, 2000
    keys = jax.random.split(jax.random.key(21), S)
    q = jax.jit(jax.vmap(lambda k: F.haar_orthogonal(k, d)))(keys)
    diag = np.asarray(jnp.diagonal(q, axis1=1, axis2=2))
    mean, sem = _mean_sem(diag)
    assert np.max(np.abs(mean / sem)) < 4.0, mean / sem
    # second moment of a Haar entry: E Q_kk^2 = 1/d
    m2, s2 = _mean_sem(diag**2)
    assert np.max(np.abs(_z(m2, 1 / d, s2))) < 4.0
    # the same Gaussian matrices (same keys) factored without the correction are biased
    raw = jax.jit(jax.vmap(lambda k: jnp.linalg.qr(jax.random.normal(k, (d, d)))[0]))(keys)
    rdiag = np.asarray(jnp.diagonal(raw, axis1=1, axis2=2))
    rmean, rsem = _mean_sem(rdiag)
    assert np.min(np.abs(rmean / rsem)) > 10.0, rmean / rsem


# --------------------------------------------------------------------------- (d) RFF / ORF


def test_orf_blocks_orthogonal_and_rows_gaussian_scale():
    d, bw = 5, 0.7
    om = np.asarray(F.orf_weights(jax.random.key(30), 3 * d, d, bandwidth=bw))
    for b in range(3):
        G = om[b * d : (b + 1) * d] @ om[b * d : (b + 1) * d].T
        off = G - np.diag(np.diag(G))
        assert np.max(np.abs(off)) <= 1e-12 * np.max(np.diag(G))
    # marginal N(0, I/bw^2): E omega_j^2 = 1/bw^2 over many independent blocks
    big = np.asarray(F.orf_weights(jax.random.key(31), 4000, d, bandwidth=bw))
    m2, s2 = _mean_sem(big**2 * bw**2)
    assert np.max(np.abs(_z(m2, 1.0, s2))) < 4.0
    m1, s1 = _mean_sem(big)
    assert np.max(np.abs(m1 / s1)) < 4.0


def test_gaussian_kernel_definition():
    x = jax.random.normal(jax.random.key(32), (4, 3))
    y = jax.random.normal(jax.random.key(33), (2, 3))
    want = np.exp(-((np.asarray(x)[:, None] - np.asarray(y)[None]) ** 2).sum(-1) / (2 * 1.3**2))
    np.testing.assert_allclose(F.gaussian_kernel(x, y, 1.3), want, rtol=1e-12)
    np.testing.assert_allclose(np.diag(F.gaussian_kernel(x, x)), 1.0, rtol=0, atol=10 * EPS64)


@pytest.fixture(scope="module")
def fourier_estimates():
    """k_hat(x, y) over S = 1000 seeds for RFF, ORF (cos/sin) and RFF random-phase; N = d = 8."""
    d, N, S, bw = 8, 8, 1000, 1.0
    x = jnp.zeros(d)
    ys = jnp.zeros((3, d)).at[:, 0].set(jnp.array([0.5, 1.0, 1.5]))

    def est(k, sampler, phased):
        om = sampler(k, N, d, bw)
        b = F.random_phases(jax.random.fold_in(k, 1), N) if phased else None
        return F.fourier_features(ys, om, b) @ F.fourier_features(x, om, b)

    samplers = {
        "rff": (F.rff_weights, False),
        "orf": (F.orf_weights, False),
        "rff_phase": (F.rff_weights, True),
    }

    @jax.jit
    def all_estimates(keys):  # one compilation for the three estimators
        return {
            n: jax.vmap(lambda k, s=s, p=p: est(k, s, p))(keys) for n, (s, p) in samplers.items()
        }

    out = {
        n: np.asarray(v) for n, v in all_estimates(jax.random.split(jax.random.key(34), S)).items()
    }
    r2 = np.asarray(jnp.sum(ys**2, -1))
    return out, np.asarray(F.gaussian_kernel(ys, x, bw)), r2, N


@pytest.mark.parametrize("name", ["rff", "orf", "rff_phase"])
def test_fourier_features_unbiased(fourier_estimates, name):
    est, k_true, _, _ = fourier_estimates
    mean, sem = _mean_sem(est[name])
    z = _z(mean, k_true, sem)
    assert np.max(np.abs(z)) < 4.0, z


def test_rff_variance_matches_closed_form(fourier_estimates):
    """cos/sin RFF: Var k_hat = (1 - exp(-||x-y||^2/bw^2))^2 / (2N)."""
    est, _, r2, N = fourier_estimates
    e = est["rff"]
    dev2 = (e - e.mean(0)) ** 2
    v, v_sem = _mean_sem(dev2)
    want = (1 - np.exp(-r2)) ** 2 / (2 * N)
    assert np.max(np.abs(_z(v, want, v_sem))) < 4.0


def test_orf_variance_not_larger_than_rff(fourier_estimates):
    """At equal N: Var_ORF < Var_RFF, with the difference > 4 standard errors."""
    est, _, _, _ = fourier_estimates
    d_r = (est["rff"] - est["rff"].mean(0)) ** 2
    d_o = (est["orf"] - est["orf"].mean(0)) ** 2
    v_r, s_r = _mean_sem(d_r)
    v_o, s_o = _mean_sem(d_o)
    z = (v_r - v_o) / np.sqrt(s_r**2 + s_o**2)
    assert np.all(v_o < v_r)
    assert np.min(z) > 4.0, z


# --------------------------------------------------------------------------- (e) deep features


def _erf_q(q):
    return (2 / np.pi) * np.arcsin(2 * q / (1 + 2 * q))


@pytest.fixture(scope="module")
def deep_setup():
    """4 inputs with q_0 = ||x||^2/d in {1/4, 1, 2, 4}; S = 32 seeds of L = 2 layers, widths 500."""
    d, S, widths = 20, 32, (500, 500)
    q0 = np.array([0.25, 1.0, 2.0, 4.0])
    x = F.sphere_inputs(jax.random.key(40), 4, d) * jnp.sqrt(jnp.asarray(q0))[:, None]
    keys = jax.random.split(jax.random.key(41), S)
    weights = jax.jit(jax.vmap(lambda k: F.deep_weights(k, d, widths)))(keys)
    return x, q0, weights


@pytest.mark.parametrize(
    "activation, centered, step",
    [
        ("relu", False, lambda q: q / 2),  # E relu(sqrt(q) G)^2 = q/2
        ("relu", True, lambda q: q * (0.5 - 0.5 / np.pi)),  # Var relu(sqrt(q) G)
        ("erf", False, _erf_q),  # E erf(sqrt(q) G)^2
    ],
)
def test_deep_features_follow_nngp_variance(deep_setup, activation, centered, step):
    """Per-input mean_j h_l[j]^2, averaged over the 32 seeds, vs q_l = step(q_{l-1}).

    relu (both) is exact in expectation at any width (q -> c q is linear); erf has an
    O(1/k) finite-width bias that is far below the sem here.
    """
    x, q0, weights = deep_setup

    def one(ws):
        hs = F.deep_random_features(x, ws, activation, centered=centered, return_all=True)
        return jnp.stack([jnp.mean(h**2, -1) for h in hs]), jnp.stack([jnp.mean(h, -1) for h in hs])

    m2, m1 = jax.jit(jax.vmap(one))(weights)
    q1 = step(q0)
    q = np.stack([q1, step(q1)])
    mean, sem = _mean_sem(m2)
    assert np.max(sem / q) < 0.04  # resolving power: a >16% error would exceed 4 sem
    assert np.max(np.abs(_z(mean, q, sem))) < 4.0, _z(mean, q, sem)
    if centered:  # each unit has conditional mean exactly 0
        mu, mu_sem = _mean_sem(m1)
        assert np.max(np.abs(mu / mu_sem)) < 4.0


def test_gaussian_mean_closed_forms_vs_quadrature():
    q = jnp.array([0.1, 1.0, 3.0])
    np.testing.assert_allclose(F.gaussian_mean(lambda z: z**2, q), q, rtol=1e-12)
    np.testing.assert_allclose(F.gaussian_mean(jnp.exp, q), jnp.exp(q / 2), rtol=1e-12)
    gelu = F.gaussian_mean("gelu", q)
    np.testing.assert_allclose(
        F.gaussian_mean(lambda z: get_activation("gelu")(z), q), gelu, rtol=1e-10
    )
    np.testing.assert_allclose(F.gaussian_mean("relu", q), np.sqrt(q / (2 * np.pi)), rtol=1e-15)
    np.testing.assert_allclose(F.gaussian_mean("tanh", q), 0.0, atol=0)


# --------------------------------------------------------------------------- (f) bad inputs


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda k: F.gaussian_weights(k, 0, 3), "n_features"),
        (lambda k: F.sphere_weights(k, 4, 0), "d"),
        (lambda k: F.sphere_inputs(k, 0, 3), "n"),
        (lambda k: F.rff_weights(k, 0, 3), "n_features"),
        (lambda k: F.orf_weights(k, 2.5, 3), "n_features"),
        (lambda k: F.rff_weights(k, 4, 3, bandwidth=0.0), "bandwidth"),
        (lambda k: F.orf_weights(k, 4, 3, bandwidth=-1.0), "bandwidth"),
        (lambda k: F.gaussian_kernel(jnp.ones((2, 3)), jnp.ones((2, 3)), 0.0), "bandwidth"),
        (lambda k: F.deep_weights(k, 3, (4, 0)), "widths[1]"),
        (lambda k: F.random_features(jnp.ones((2, 3)), jnp.ones((4, 3)), "rleu"), "activation"),
        (lambda k: F.expected_kernel(jnp.ones((2, 3)), jnp.ones((2, 3)), "tanh"), "activation"),
        (lambda k: F.random_features(jnp.ones((2, 5)), jnp.ones((4, 3)), "relu"), "x"),
        (lambda k: F.gaussian_weights(k, 3, 2, dtype=jnp.int32), "dtype"),
        (lambda k: F.arccos_kernel(jnp.ones(3), jnp.ones(3), order=3), "order"),
    ],
)
def test_bad_inputs_raise_value_error_naming_field(call, field):
    with pytest.raises(ValueError) as err:
        call(jax.random.key(50))
    assert str(err.value).startswith(field), str(err.value)
