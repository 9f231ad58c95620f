"""Closed-form NNGP/NTK (rfsim.theory.kernels, theory/kernels.md K-7..K-10) and the Gaussian
two-point functions under them (rfsim.theory.gaussian, K-1..K-6), against independent
references: adaptive 2-D quadrature (scipy), a plain-numpy layer-by-layer recursion written
from the network's definition, hand-derived values, and Monte Carlo."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import agree, keys
from scipy import integrate

from rfsim.activations import get_activation
from rfsim.theory import gaussian as G
from rfsim.theory.kernels import kernels, nngp, ntk

RNG = np.random.default_rng(20261130)
X = RNG.normal(size=(7, 5))
X2 = RNG.normal(size=(4, 5))


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# --------------------------------------------------------------------------- two-point functions

def _dblquad(f, g, qx, qy, c):
    """E f(u) g(v), (u, v) ~ N(0, [[qx, c], [c, qy]]), by adaptive quadrature on the four
    quadrants of (z1, z2) with u = sqrt(qx) z1, v = sqrt(qy)(rho z1 + sqrt(1-rho^2) z2)."""
    rho = c / math.sqrt(qx * qy)
    s = math.sqrt(1 - rho * rho)

    def integrand(z2, z1):
        u = math.sqrt(qx) * z1
        v = math.sqrt(qy) * (rho * z1 + s * z2)
        return f(u) * g(v) * math.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2 * math.pi)

    # split at u = 0 (z1 = 0) and v = 0 (z2 = -rho z1 / s)
    total = 0.0
    for lo1, hi1 in ((-12, 0), (0, 12)):
        total += integrate.dblquad(integrand, lo1, hi1, lambda z1: -12,
                                   lambda z1: -rho * z1 / s, epsabs=1e-13, epsrel=1e-12)[0]
        total += integrate.dblquad(integrand, lo1, hi1, lambda z1: -rho * z1 / s,
                                   lambda z1: 12, epsabs=1e-13, epsrel=1e-12)[0]
    return total


relu = lambda z: max(z, 0.0)  # noqa: E731
step = lambda z: 1.0 if z > 0 else 0.0  # noqa: E731
erf_d = lambda z: 2 / math.sqrt(math.pi) * math.exp(-z * z)  # noqa: E731
leaky = lambda z: z if z >= 0 else 0.01 * z  # noqa: E731
leaky_d = lambda z: 1.0 if z > 0 else 0.01  # noqa: E731
gelu = lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731

PAIRS = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (2.5, 0.4, 0.9)]


@pytest.mark.parametrize("qx,qy,c", PAIRS)
@pytest.mark.parametrize("name,f,fd", [("relu", relu, step), ("erf", math.erf, erf_d),
                                       ("leaky_relu", leaky, leaky_d)])
def test_closed_forms_match_adaptive_quadrature(name, f, fd, qx, qy, c):
    assert abs(float(G.two_point(name, qx, qy, c)) - _dblquad(f, f, qx, qy, c)) < 1e-10
    assert abs(float(G.derivative_two_point(name, qx, qy, c)) - _dblquad(fd, fd, qx, qy, c)) < 1e-10


@pytest.mark.parametrize("qx,qy,c", PAIRS)
def test_gelu_quadrature_matches_adaptive_quadrature(qx, qy, c):
    assert abs(float(G.two_point("gelu", qx, qy, c)) - _dblquad(gelu, gelu, qx, qy, c)) < 1e-10


def test_hermite_rule_integrates_moments_exactly():
    z, w = G.hermite_rule(20)
    assert abs(w.sum() - 1) < 1e-15
    assert abs(w @ z**4 - 3) < 1e-13 and abs(w @ z**6 - 15) < 1e-12
    with pytest.raises(ValueError, match="order"):
        G.hermite_rule(0)


def test_two_point_on_the_diagonal_is_exact():
    """cos theta = 1 exactly on a diagonal: relu gives q/2, its derivative 1/2, with no
    sqrt(eps) angle error (the FMA pitfall of qx qy - c^2)."""
    q = jnp.array([0.37, 1.3, 2.2, 1e-3])
    np.testing.assert_allclose(G.two_point("relu", q, q, q), q / 2, rtol=1e-15)
    np.testing.assert_allclose(G.derivative_two_point("relu", q, q, q), 0.5, rtol=1e-15)


# --------------------------------------------------------------------------- recursion


def _reference(x1, x2, depth, name, w, b, standard=False, width=None):
    """Plain numpy, written from the definition (K-7): layer by layer, Dense then activation,
    arccos with clipping (not the package's atan2), standard NTK with explicit fan-ins."""
    d = x1.shape[1]
    qa = (x1 * x1).sum(1) / d
    qb = (x2 * x2).sum(1) / d
    c = x1 @ x2.T / d
    b2 = b * b
    K, va, vb = w * w * c + b2, w * w * qa + b2, w * w * qb + b2
    T = (x1 @ x2.T + 1.0) if standard else K.copy()

    def pair(va, vb, K):
        A, B = va[:, None], vb[None, :]
        if name == "relu":
            cos = np.clip(K / np.sqrt(A * B), -1, 1)
            th = np.arccos(cos)
            e = np.sqrt(A * B) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi)
            ed = (np.pi - th) / (2 * np.pi)
        else:  # erf
            e = 2 / np.pi * np.arcsin(2 * K / np.sqrt((1 + 2 * A) * (1 + 2 * B)))
            ed = 4 / np.pi / np.sqrt((1 + 2 * A) * (1 + 2 * B) - 4 * K * K)
        return e, ed

    for _ in range(depth):
        e, ed = pair(va, vb, K)
        ea = np.diag(pair(va, va, np.diag(va))[0])
        eb = np.diag(pair(vb, vb, np.diag(vb))[0])
        K_new = w * w * e + b2
        T = (width * e + w * w * T * ed + 1.0) if standard else (K_new + w * w * T * ed)
        K, va, vb = K_new, w * w * ea + b2, w * w * eb + b2
    return K, T


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("depth", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("w,b", [(1.0, 0.0), (1.5, 0.3), (0.8, 1.0)])
def test_nngp_ntk_match_a_numpy_recursion_written_from_the_definition(name, depth, w, b):
    K_ref, T_ref = _reference(X, X2, depth, name, w, b)
    k = kernels(X, X2, depth=depth, activation=name, w_std=w, b_std=b)
    assert rel(k.nngp, K_ref) < 1e-12
    assert rel(k.ntk, T_ref) < 1e-12


def test_standard_parameterization_same_nngp_width_scaled_ntk():
    K_ref, T_ref = _reference(X, X2, 2, "relu", 1.3, 0.2, standard=True, width=64)
    k = kernels(X, X2, depth=2, w_std=1.3, b_std=0.2, parameterization="standard", width=64)
    assert rel(k.nngp, K_ref) < 1e-12 and rel(k.ntk, T_ref) < 1e-12
    assert rel(k.nngp, nngp(X, X2, depth=2, w_std=1.3, b_std=0.2)) < 1e-14
    with pytest.raises(ValueError, match="width is required"):
        ntk(X, depth=2, parameterization="standard")


def test_hand_derived_values_depth_one_relu():
    """|x|^2 = |y|^2 = d, x.y = 0: K = 1/(2 pi), Theta = 1/(2 pi) (the carried term has
    x.y = 0); on the diagonal K = 1/2 and Theta = 1/2 + 1 * 1/2 = 1."""
    x = np.array([[1.0, 1.0], [1.0, -1.0]])
    k = kernels(x, depth=1)
    np.testing.assert_allclose(k.nngp, [[0.5, 1 / (2 * np.pi)], [1 / (2 * np.pi), 0.5]],
                               rtol=1e-15)
    np.testing.assert_allclose(k.ntk, [[1.0, 1 / (2 * np.pi)], [1 / (2 * np.pi), 1.0]],
                               rtol=1e-15)


# --------------------------------------------------------------------------- quadrature path


@pytest.mark.parametrize("name,fn", [("relu", lambda z: jax.nn.relu(z)),
                                     ("erf", lambda z: jax.scipy.special.erf(z)),
                                     ("leaky_relu", lambda z: jax.nn.leaky_relu(z, 0.01))])
@pytest.mark.parametrize("depth,w,b", [pytest.param(1, 1.0, 0.0, marks=pytest.mark.slow),
                                     pytest.param(3, 1.4, 0.2, marks=pytest.mark.slow),
                                     (5, 2.0, 0.5)])  # the deepest and widest-variance case
def test_quadrature_path_matches_closed_forms(name, fn, depth, w, b):
    exact = kernels(X, depth=depth, activation=name, w_std=w, b_std=b)
    quad = kernels(X, depth=depth, activation=fn, w_std=w, b_std=b)
    assert rel(quad.nngp, exact.nngp) < 1e-8
    assert rel(quad.ntk, exact.ntk) < 1e-8


def test_tanh_kernels_agree_with_monte_carlo_and_a_wrong_one_does_not():
    """E tanh(u) tanh(v) and E tanh' tanh' by 20 x 50,000 Gaussian pairs: within 4 sem;
    the twin shifts the covariance by 5% and must fail the same check."""
    qx, qy, c = 1.7, 0.6, 0.55
    L = np.linalg.cholesky(np.array([[qx, c], [c, qy]]))

    @jax.jit
    def draw(key):
        u, v = (jax.random.normal(key, (50_000, 2)) @ L.T).T
        dt = jax.vmap(jax.grad(jnp.tanh))
        return jnp.array([jnp.mean(jnp.tanh(u) * jnp.tanh(v)), jnp.mean(dt(u) * dt(v))])

    samples = np.stack([draw(k) for k in keys(20)])
    theory = np.array([G.two_point("tanh", qx, qy, c), G.derivative_two_point("tanh", qx, qy, c)])
    agree(samples, theory, max_abs_z=4.0)
    wrong = np.array([G.two_point("tanh", qx, qy, 1.05 * c),
                      G.derivative_two_point("tanh", qx, qy, 1.05 * c)])
    with pytest.raises(AssertionError):
        agree(samples, wrong, max_abs_z=4.0)


# --------------------------------------------------------------------------- evaluation modes


def test_blocks_diagonal_and_symmetry_give_the_same_numbers():
    full = kernels(X, depth=3, b_std=0.1)
    blocked = kernels(X, depth=3, b_std=0.1, batch_size=3)
    assert rel(blocked.ntk, full.ntk) < 1e-15 and rel(blocked.nngp, full.nngp) < 1e-15
    diag = kernels(X, depth=3, b_std=0.1, diagonal=True)
    np.testing.assert_allclose(diag.nngp, np.diag(full.nngp), rtol=1e-14)
    np.testing.assert_allclose(diag.ntk, np.diag(full.ntk), rtol=1e-14)
    assert np.array_equal(full.ntk, full.ntk.T)
    cross = kernels(X, X2, depth=3, b_std=0.1, batch_size=3)
    assert rel(cross.ntk, kernels(X, X2, depth=3, b_std=0.1).ntk) < 1e-15
    one = kernels(X[0], X2, depth=3, b_std=0.1)
    assert one.ntk.shape == (4,) and rel(one.ntk, cross.ntk[0]) < 1e-14


@pytest.mark.parametrize("kwargs,match", [
    (dict(depth=-1), "depth"),
    (dict(depth=2.0), "depth"),
    (dict(depth=1, activation="relux"), "activation"),
    (dict(depth=1, parameterization="ntK"), "parameterization"),
    (dict(depth=1, w_std=-1.0), "w_std"),
    (dict(depth=1, b_std=float("nan")), "b_std"),
    (dict(depth=1, batch_size=0), "batch_size"),
    (dict(depth=1, get="ntkk"), "get"),
])
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernels(X, **kwargs)


def test_bad_inputs_name_the_field():
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="x1 must be finite"):
        nngp(bad, depth=1)
    with pytest.raises(ValueError, match="x2 has last dimension 3"):
        ntk(X, X2[:, :3], depth=1)
    with pytest.raises(ValueError, match="x2=None"):
        kernels(X, X2, depth=1, diagonal=True)


def test_activation_callable_is_differentiated_by_autodiff():
    sigma = get_activation("softplus")
    k = kernels(X, depth=2, activation=sigma)
    # softplus' = logistic: E over a pair by the same quadrature on the explicit derivative
    d = G.two_point(jax.nn.sigmoid, 1.0, 1.0, 0.4)
    assert abs(float(G.derivative_two_point("softplus", 1.0, 1.0, 0.4)) - float(d)) < 1e-14
    assert np.all(np.isfinite(k.ntk))
