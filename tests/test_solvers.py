"""Exact tier: the shared-factorization ridge solver against numpy/scipy solves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import jaxprs_in_params

from rfsim.solvers import gram_eigh, ridge_from_eigh, ridge_solve

TOL = {np.float64: 1e-9, np.float32: 2e-3}


def _data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)), rng.normal(size=n)


@pytest.mark.parametrize("n,p", [(30, 12), (12, 30), (20, 20)])
@pytest.mark.parametrize("ridge", [1e-3, 0.5])
def test_matches_numpy_solve(n, p, ridge):
    X, y = _data(n, p)
    want = np.linalg.solve(X.T @ X + n * ridge * np.eye(p), X.T @ y)
    got = ridge_from_eigh(gram_eigh(jnp.asarray(X)), jnp.asarray(X), jnp.asarray(y), ridge)
    np.testing.assert_allclose(np.asarray(got), want, rtol=TOL[np.float64], atol=1e-12)
    chol = ridge_solve(jnp.asarray(X), jnp.asarray(y), ridge)
    np.testing.assert_allclose(np.asarray(chol), want, rtol=TOL[np.float64], atol=1e-12)


@pytest.mark.parametrize("n,p", [(30, 12), (12, 30), (20, 20)])
def test_ridgeless_is_minimum_norm(n, p):
    X, y = _data(n, p, seed=1)
    want = np.linalg.pinv(X) @ y
    got = ridge_from_eigh(gram_eigh(jnp.asarray(X)), jnp.asarray(X), jnp.asarray(y), 0.0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-7, atol=1e-9)


def test_rank_deficient_ridgeless_is_minimum_norm():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(25, 4)) @ rng.normal(size=(4, 10))  # rank 4 < min(n, p)
    y = rng.normal(size=25)
    got = ridge_from_eigh(gram_eigh(jnp.asarray(X)), jnp.asarray(X), jnp.asarray(y), 0.0)
    np.testing.assert_allclose(np.asarray(got), np.linalg.pinv(X) @ y, rtol=1e-6, atol=1e-8)


def _find(jaxpr, name):
    """Equations named ``name`` in a jaxpr and its sub-jaxprs (pjit, cond, ...)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == name:
            yield eqn
        for sub in jaxprs_in_params(eqn.params):
            yield from _find(sub, name)


def test_many_ridges_share_one_eigendecomposition():
    """vmapping the ridge leaves the factorization unbatched: one eigh in the jaxpr."""
    X, y = (jnp.asarray(a) for a in _data(40, 15))

    def fit(lam):
        return ridge_from_eigh(gram_eigh(X), X, y, lam)

    jaxpr = jax.make_jaxpr(jax.vmap(fit))(jnp.linspace(0.1, 1.0, 20))
    eighs = list(_find(jaxpr.jaxpr, "eigh"))
    assert len(eighs) == 1
    assert eighs[0].invars[0].aval.shape == (15, 15)  # not (20, 15, 15)
