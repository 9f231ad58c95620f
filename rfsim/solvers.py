r"""Ridge regression solvers that share one factorization across many ridges.

Convention (theory/ridge.md (R-0)): ``w_hat = argmin_w (1/n)||y - X w||^2 + ridge ||w||^2``,
i.e. ``w_hat = (X^T X + n ridge I)^{-1} X^T y``; ``ridge = 0`` is the minimum-norm
least-squares solution (pseudo-inverse).

:func:`gram_eigh` diagonalizes the smaller Gram matrix -- primal ``X^T X`` (p x p) when
``n >= p``, dual ``X X^T`` (n x n) otherwise -- and :func:`ridge_from_eigh` solves for one
ridge in O(n p).  Called inside ``vmap`` over the ridge only, the factorization is
unbatched, so R ridges cost one eigendecomposition plus R cheap solves.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class GramEigh(NamedTuple):
    """Eigendecomposition ``G = Q diag(evals) Q^T`` of the smaller Gram matrix."""

    evals: jax.Array
    vecs: jax.Array
    dual: bool  # True: G = X X^T (n x n); False: G = X^T X (p x p)


def gram_eigh(X: jax.Array) -> GramEigh:
    n, p = X.shape
    dual = n < p
    gram = X @ X.T if dual else X.T @ X
    evals, vecs = jnp.linalg.eigh(gram)
    return GramEigh(evals, vecs, dual)


def _filter(evals, n, ridge):
    """1/(e + n ridge), with the pseudo-inverse rule 1/e -> 0 for e below round-off."""
    tol = evals.max() * max(evals.shape[0], n) * jnp.finfo(evals.dtype).eps
    keep = evals > tol
    denom = jnp.where(keep, evals + n * ridge, 1.0)
    return jnp.where(keep, 1.0 / denom, 0.0)


def ridge_from_eigh(fac: GramEigh, X: jax.Array, y: jax.Array, ridge) -> jax.Array:
    """``w_hat`` for one ridge (any ``ridge >= 0``) from a shared :func:`gram_eigh`."""
    n = X.shape[0]
    inv = _filter(fac.evals, n, ridge)
    if fac.dual:  # w = X^T (X X^T + n ridge)^{-1} y
        return X.T @ (fac.vecs @ (inv * (fac.vecs.T @ y)))
    return fac.vecs @ (inv * (fac.vecs.T @ (X.T @ y)))


def ridge_solve(X: jax.Array, y: jax.Array, ridge) -> jax.Array:
    """One-ridge solve by Cholesky of the smaller Gram matrix (ridge > 0 required for
    a guaranteed factorization; a failed one yields NaN, which callers must check)."""
    n, p = X.shape
    shift = n * jnp.asarray(ridge, X.dtype)
    if n < p:
        chol = jax.scipy.linalg.cho_factor(X @ X.T + shift * jnp.eye(n, dtype=X.dtype))
        return X.T @ jax.scipy.linalg.cho_solve(chol, y)
    chol = jax.scipy.linalg.cho_factor(X.T @ X + shift * jnp.eye(p, dtype=X.dtype))
    return jax.scipy.linalg.cho_solve(chol, X.T @ y)


def kernel_ridge_from_eigh(evals: jax.Array, vecs: jax.Array, y: jax.Array, ridge) -> jax.Array:
    """Dual coefficients ``alpha = (K + n ridge I)^{-1} y`` from ``K = vecs diag(evals)
    vecs^T`` (the same (1/n)-loss convention; ``ridge = 0``: the pseudo-inverse, eigenvalues
    below round-off dropped).  Predictions are ``k(x, X) @ alpha``."""
    n = y.shape[0]
    return vecs @ (_filter(evals, n, ridge) * (vecs.T @ y))
