"""NNGP posterior and NTK gradient-flow predictions (theory/kernels.md K-13..K-15), against
direct linear algebra, scipy's matrix exponential, and actual gradient descent (optax) of a
linear model whose NTK and NNGP are known exactly."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import agree
from scipy.linalg import expm

from rfsim.theory.infinite_width import nngp_posterior, ntk_flow
from rfsim.theory.kernels import kernels

RNG = np.random.default_rng(7)
XD = RNG.normal(size=(6, 3))
XT = RNG.normal(size=(3, 3))
Y = RNG.normal(size=6)
ALL = kernels(np.vstack([XD, XT]), depth=2, b_std=0.2)
K, T = np.asarray(ALL.nngp), np.asarray(ALL.ntk)
d, t_ = slice(0, 6), slice(6, 9)


def test_ntk_flow_at_infinity_is_kernel_regression():
    mean = ntk_flow(T[d, d], T[t_, d], Y, math.inf).mean
    np.testing.assert_allclose(mean, T[t_, d] @ np.linalg.solve(T[d, d], Y), rtol=1e-10)


@pytest.mark.parametrize("t", [0.0, 0.3, 4.0, 50.0])
def test_ntk_flow_mean_matches_the_matrix_exponential(t):
    n = 6
    ref = T[t_, d] @ np.linalg.solve(T[d, d], (np.eye(n) - expm(-T[d, d] * t / n)) @ Y)
    np.testing.assert_allclose(ntk_flow(T[d, d], T[t_, d], Y, t).mean, ref, atol=1e-12)


def test_ntk_flow_covariance_and_the_infinite_time_limit():
    post = ntk_flow(T[d, d], T[t_, d], Y, math.inf, nngp_dd=K[d, d], nngp_td=K[t_, d],
                    nngp_tt=K[t_, t_])
    A = T[t_, d] @ np.linalg.inv(T[d, d])
    ref = K[t_, t_] + A @ K[d, d] @ A.T - A @ K[d, t_] - K[t_, d] @ A.T
    np.testing.assert_allclose(post.cov, ref, atol=1e-10)
    diag = ntk_flow(T[d, d], T[t_, d], Y, math.inf, nngp_dd=K[d, d], nngp_td=K[t_, d],
                    nngp_tt=np.diag(K[t_, t_]))
    np.testing.assert_allclose(diag.cov, np.diag(ref), atol=1e-10)
    start = ntk_flow(T[d, d], T[t_, d], Y, 0.0, nngp_dd=K[d, d], nngp_td=K[t_, d],
                     nngp_tt=K[t_, t_])
    np.testing.assert_allclose(start.cov, K[t_, t_], atol=1e-14)  # t = 0: the prior
    np.testing.assert_allclose(start.mean, 0.0, atol=1e-14)


def test_nngp_posterior_interpolates_and_matches_a_direct_solve():
    post = nngp_posterior(K[d, d], K[d, d], Y, K[d, d])
    np.testing.assert_allclose(post.mean, Y, atol=1e-9)
    np.testing.assert_allclose(post.cov, 0.0, atol=1e-9)
    noisy = nngp_posterior(K[d, d], K[t_, d], Y, K[t_, t_], noise=0.1)
    S = K[d, d] + 0.1 * np.eye(6)
    np.testing.assert_allclose(noisy.mean, K[t_, d] @ np.linalg.solve(S, Y), rtol=1e-10)
    np.testing.assert_allclose(noisy.cov, K[t_, t_] - K[t_, d] @ np.linalg.solve(S, K[d, t_]),
                               atol=1e-12)


# ------------------------------------------------- the loss and time conventions, by simulation

N_FEAT, STEPS, LR = 40, 400, 0.02
PHI = RNG.normal(size=(9, N_FEAT)) / math.sqrt(N_FEAT)  # f(x) = phi(x) . theta


@jax.jit
def _train(key):
    """Gradient descent (optax.sgd) on (1/2n) sum (f - y)^2 from theta_0 ~ N(0, I):
    NTK = NNGP = Phi Phi^T exactly, time = LR * STEPS."""
    phi = jnp.asarray(PHI)
    y = jnp.asarray(Y)
    opt = optax.sgd(LR)
    theta = jax.random.normal(key, (N_FEAT,))

    def loss(theta):
        return 0.5 * jnp.mean((phi[d] @ theta - y) ** 2)

    def step(carry, _):
        theta, state = carry
        updates, state = opt.update(jax.grad(loss)(theta), state)
        return (optax.apply_updates(theta, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), None, length=STEPS)
    return phi[t_] @ theta


def test_gradient_descent_ensemble_matches_the_flow_and_a_wrong_time_does_not():
    outs = np.asarray(jax.vmap(_train)(jax.random.split(jax.random.key(3), 4000)))
    Kf = PHI @ PHI.T
    flow = ntk_flow(Kf[d, d], Kf[t_, d], Y, LR * STEPS, nngp_dd=Kf[d, d], nngp_td=Kf[t_, d],
                    nngp_tt=np.diag(Kf[t_, t_]))
    groups = outs.reshape(40, 100, 3)  # 40 batches of 100 networks: means and variances
    samples = np.concatenate([groups.mean(1), groups.var(1, ddof=1)], axis=1)
    agree(samples, np.concatenate([flow.mean, flow.cov]), max_abs_z=4.0, rel_tol=0.01)
    wrong = ntk_flow(Kf[d, d], Kf[t_, d], Y, LR * STEPS * 6,  # time without the 1/n
                     nngp_dd=Kf[d, d], nngp_td=Kf[t_, d], nngp_tt=np.diag(Kf[t_, t_]))
    with pytest.raises(AssertionError):
        agree(samples, np.concatenate([wrong.mean, wrong.cov]), max_abs_z=4.0, rel_tol=0.01)


def test_bad_blocks_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="dd .* square"):
        nngp_posterior(K[d, :4], K[t_, d], Y)
    with pytest.raises(ValueError, match="y must have n = 6"):
        ntk_flow(T[d, d], T[t_, d], Y[:5], 1.0)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        ntk_flow(-T[d, d], T[t_, d], Y, 1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        ntk_flow(T[d, d], T[t_, d], Y, -1.0)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        nngp_posterior(K[d, d], K[t_, d], Y, noise=-0.1)
