"""Input distributions and teacher (target) functions.

Power-law conventions (theory/ridge.md §5): ``s_i ∝ i^(-spectrum_decay)`` with
``sum_i s_i = d`` (so ``E||x||^2 = d``), and ``beta_i ∝ i^(-target_decay/2) > 0``
with ``sum_i s_i beta_i^2 = signal`` (the variance of the noiseless target).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def powerlaw_spectrum(d: int, decay, dtype=None) -> jax.Array:
    """Covariance eigenvalues ``s_i = d * i^(-decay) / sum_j j^(-decay)``, i = 1..d."""
    i = jnp.arange(1, d + 1, dtype=dtype or jnp.result_type(float))
    raw = i ** (-jnp.asarray(decay, i.dtype))
    return d * raw / raw.sum()


def powerlaw_target(eigenvalues: jax.Array, decay, signal=1.0) -> jax.Array:
    """Target coefficients ``beta_i ∝ i^(-decay/2) > 0`` with ``sum s_i beta_i^2 = signal``."""
    i = jnp.arange(1, eigenvalues.shape[-1] + 1, dtype=eigenvalues.dtype)
    raw = i ** (-0.5 * jnp.asarray(decay, i.dtype))
    power = (eigenvalues * raw**2).sum()
    return raw * jnp.sqrt(jnp.asarray(signal, i.dtype) / power)


def gaussian_inputs(key, n: int, eigenvalues: jax.Array) -> jax.Array:
    """``n`` rows ``x ~ N(0, diag(eigenvalues))``."""
    z = jax.random.normal(key, (n, eigenvalues.shape[-1]), eigenvalues.dtype)
    return z * jnp.sqrt(eigenvalues)
