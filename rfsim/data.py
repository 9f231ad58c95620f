"""One home for data: input distributions and targets, each drawn from an explicit key.

theory/data.md lists them with their conventions; ``rfsim.theory`` draws nothing and the
families draw their data only through these functions, in a fixed order, from their
data key (so two families with the same data fields see byte-identical draws).

* Inputs: :func:`sphere_inputs` (uniform on the sphere of radius ``sqrt(d)``, D-1),
  :func:`gaussian_inputs` (``N(0, diag(s))``, D-2), :func:`token_sequences` (a query and
  ``N`` keys on the unit sphere ``S^{d-1}``, D-3).
* Keys: :func:`data_keys` splits a data key by purpose, in one fixed order (D-0).
* Targets: :func:`powerlaw_target` (the linear teacher of theory/ridge.md §5, deterministic),
  :func:`linear_quadratic_target` (Mei-Montanari's, deterministic),
  :func:`harmonic_draw` (the random part of a harmonic target, theory/sphere.md S-8; the
  normalization is :meth:`rfsim.theory.sphere.HarmonicTarget.from_draw`), :func:`label_noise`.

Power-law conventions (theory/ridge.md §5): ``s_i ∝ i^(-spectrum_decay)`` with
``sum_i s_i = d`` (so ``E||x||^2 = d``), and ``beta_i ∝ i^(-target_decay/2) > 0``
with ``sum_i s_i beta_i^2 = signal`` (the variance of the noiseless target).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.validation import requested_dtype, require_int

__all__ = [
    "DataKeys",
    "HarmonicDraw",
    "data_keys",
    "gaussian_inputs",
    "harmonic_draw",
    "label_noise",
    "linear_quadratic_target",
    "powerlaw_spectrum",
    "powerlaw_target",
    "sphere_inputs",
    "token_sequences",
]


class DataKeys(NamedTuple):
    """A data key split by purpose (D-0), always in this order: ``fold_in(key, i)`` with
    ``i = 0`` training inputs, ``1`` test inputs, ``2`` label noise, ``3`` the target.  A
    family that draws each through these keys and the samplers below draws, for equal data
    fields, the same data as any other family doing so."""

    train: jax.Array
    test: jax.Array
    noise: jax.Array
    target: jax.Array


def data_keys(key) -> DataKeys:
    """``key`` (a seed's ``keys.data``, or a static group's in ``init``) split by purpose."""
    return DataKeys(*(jax.random.fold_in(key, i) for i in range(len(DataKeys._fields))))


def _on_sphere(g: jax.Array, radius) -> jax.Array:
    """Rows of ``g`` projected to the sphere of ``radius``: ``radius g / ||g||``."""
    return g * (radius / jnp.linalg.norm(g, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- inputs


def sphere_inputs(key, n: int, d: int, dtype=None) -> jax.Array:
    """``n`` points i.i.d. uniform on the sphere of radius ``sqrt(d)`` in R^d (D-1), shape
    ``(n, d)``: ``x = sqrt(d) g / ||g||``, ``g ~ N(0, I_d)``, so ``||x||^2/d = 1`` exactly
    and ``E x x^T = I``.  The same key and dtype give the same bits wherever it is called."""
    require_int("n", n)
    require_int("d", d)
    g = jax.random.normal(key, (n, d), requested_dtype(dtype))
    return _on_sphere(g, math.sqrt(d))


def gaussian_inputs(key, n: int, eigenvalues: jax.Array) -> jax.Array:
    """``n`` rows ``x ~ N(0, diag(eigenvalues))`` (D-2), in the eigenvalues' dtype."""
    z = jax.random.normal(key, (n, eigenvalues.shape[-1]), eigenvalues.dtype)
    return z * jnp.sqrt(eigenvalues)


def token_sequences(key, S: int, N: int, d: int, dtype=None) -> jax.Array:
    """``S`` sequences ``X = (x_0; x_1, ..., x_N)`` of a query ``x_0`` and ``N`` keys, every
    token i.i.d. uniform on the unit sphere ``S^{d-1}`` (D-3): shape ``(S, N+1, d)``, row 0
    the query, ``||x_i|| = 1``."""
    require_int("S", S)
    require_int("N", N)
    require_int("d", d)
    g = jax.random.normal(key, (S, N + 1, d), requested_dtype(dtype))
    return _on_sphere(g, 1.0)


# --------------------------------------------------------------------------- targets


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


def linear_quadratic_target(x: jax.Array, linear_power, quadratic_power) -> jax.Array:
    """``f(x) = sqrt(linear_power) x_1 + sqrt(quadratic_power (d+2)/d) x_1 x_2`` for ``x``
    on the sphere of radius ``sqrt(d)`` (D-6; theory/random_features.md RF-1): the linear
    part has power ``linear_power``, the degree-2 part ``x_1 x_2`` (orthogonal to every
    polynomial of degree <= 1) exactly ``quadratic_power``.  Deterministic; ``d >= 2``."""
    d = x.shape[-1]
    c = jnp.sqrt(jnp.asarray(quadratic_power, x.dtype) * (d + 2) / d)
    return jnp.sqrt(jnp.asarray(linear_power, x.dtype)) * x[..., 0] + c * x[..., 0] * x[..., 1]


def label_noise(key, n: int, variance, dtype=None) -> jax.Array:
    """``n`` additive label noises ``eps = sqrt(variance) z``, ``z ~ N(0, 1)`` (D-4), so
    ``Var eps = variance`` (the families' ``noise`` field); ``variance`` may be traced."""
    dt = requested_dtype(dtype)
    return jnp.sqrt(jnp.asarray(variance, dt)) * jax.random.normal(key, (n,), dt)


class HarmonicDraw(NamedTuple):
    """The random part of a harmonic target (S-8), float64 NumPy: ``centres`` of shape
    ``(n_degrees, n_centers, d)`` with ``||u|| = sqrt(d)`` to float64 round-off, and raw
    coefficients ``coeffs ~ N(0, I)`` of shape ``(n_degrees, n_centers)``."""

    centres: np.ndarray
    coeffs: np.ndarray


def harmonic_draw(key, d: int, n_degrees: int, n_centers: int = 16) -> HarmonicDraw:
    """Centres uniform on the sphere of radius ``sqrt(d)`` and ``N(0, 1)`` coefficients for
    a harmonic target of ``n_degrees`` degrees (D-5); the centres from ``split(key)[0]``,
    the coefficients from ``split(key)[1]``, both drawn in jax's default float, then held
    in float64 with the centres re-projected exactly onto the sphere.
    :meth:`rfsim.theory.sphere.HarmonicTarget.from_draw` fixes each degree's power."""
    require_int("d", d)
    require_int("n_degrees", n_degrees)
    require_int("n_centers", n_centers)
    k_u, k_a = jax.random.split(key)
    u = np.array(sphere_inputs(k_u, n_degrees * n_centers, d), dtype=float)
    u = u.reshape(n_degrees, n_centers, d)
    u *= math.sqrt(d) / np.linalg.norm(u, axis=-1, keepdims=True)  # exact in float64
    a = np.array(jax.random.normal(k_a, (n_degrees, n_centers)), dtype=float)
    return HarmonicDraw(u, a)
