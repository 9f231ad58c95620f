"""Random feature maps and their analytic expected kernels.

Conventions
-----------
* Every sampler takes an explicit PRNG key (``jax.random.key``) and is pure.
* ``dtype=None`` means jax's default float (float64 when the caller enabled
  x64, float32 otherwise); an explicit ``dtype=`` overrides it.
* Shapes: a batch of inputs ``x`` is ``(n, d)``; weights ``W`` are
  ``(N, d)`` (one row per feature); features come back as ``(n, N)``.

Contents
--------
* one-layer features   phi(x) = sigma(W x / sqrt(d))       (random_features)
* deep frozen features h_l = sigma(W_l h_{l-1} / sqrt(k_{l-1}))  (deep_random_features)
* random Fourier features (RFF) and orthogonal random features (ORF) for the
  Gaussian kernel k(x, y) = exp(-||x - y||^2 / (2 bandwidth^2))

The closed-form expected kernels (arccos_kernel, erf_kernel, expected_kernel,
gaussian_kernel) and ``gaussian_mean`` moved to rfsim.theory.kernels and
rfsim.theory.gaussian (one home for Gaussian expectations); they are re-exported here so
that old imports keep working.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from rfsim.activations import Activation, get_activation
from rfsim.data import sphere_inputs
from rfsim.networks import (
    _sign_fixed_qr,
    deep_weights,
    dense,
    gaussian_weights,
    haar_orthogonal,
)
from rfsim.theory.gaussian import gaussian_mean
from rfsim.theory.kernels import arccos_kernel, erf_kernel, expected_kernel, gaussian_kernel
from rfsim.validation import requested_dtype, require_batch, require_positive

__all__ = [
    "arccos_kernel",
    "deep_random_features",
    "deep_weights",
    "erf_kernel",
    "expected_kernel",
    "fourier_features",
    "gaussian_kernel",
    "gaussian_mean",
    "gaussian_weights",
    "haar_orthogonal",
    "orf_weights",
    "random_features",
    "random_phases",
    "rff_weights",
    "sphere_inputs",
    "sphere_weights",
]

# --------------------------------------------------------------------------- validation


def _check_count(field: str, value, minimum: int = 1) -> int:
    """``value`` must be an integer >= ``minimum``; returns it as ``int``."""
    try:
        ivalue = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        ivalue = None
    if ivalue is None:
        raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
    if ivalue < minimum:
        raise ValueError(f"{field} must be >= {minimum}, got {ivalue}")
    return ivalue


def _check_positive(field: str, value, dtype=None) -> None:
    """A concrete ``value`` must be real, finite, > 0 and a normal number of ``dtype`` (the
    active float by default; traced values are not checked): validation.require_positive."""
    require_positive(field, value, dtype)


def _check_batch(field: str, x, d: int | None = None) -> jax.Array:
    """``x`` must be (n, d) or (d,), with ``d`` matching the weights when given."""
    return require_batch(field, x, d)


def _check_weights(field: str, W) -> jax.Array:
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"{field} must have shape (n_features, d) with both >= 1, got {W.shape}")
    return W


# --------------------------------------------------------------------------- samplers


def sphere_weights(key, n_features: int, d: int, dtype=None) -> jax.Array:
    """Rows w_i i.i.d. uniform on the sphere S^{d-1}(sqrt d): w = sqrt(d) g / ||g||, g ~ N(0, I).

    Hence ||w_i||^2 = d exactly and E w w^T = I.
    """
    g = gaussian_weights(key, n_features, d, dtype)
    return g * (math.sqrt(d) / jnp.linalg.norm(g, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- one layer


def random_features(x, W, activation: str | Activation) -> jax.Array:
    """phi(x) = sigma(W x / sqrt(d)): (n, d) x (N, d) -> (n, N); a (d,) input gives (N,).

    Unnormalized: there is no 1/sqrt(N), so the empirical kernel is
    Phi Phi^T / N  ->  E_w sigma(w.x/sqrt d) sigma(w.y/sqrt d)  (see ``expected_kernel``).
    """
    sigma = get_activation(activation)
    W = _check_weights("W", W)
    d = W.shape[1]
    x = _check_batch("x", x, d)
    return _features_core(x, W, sigma)


@partial(jax.jit, static_argnums=2)
def _features_core(x, W, sigma):
    return sigma((x @ W.T) / math.sqrt(W.shape[1]))


# --------------------------------------------------------------------------- deep


def deep_random_features(
    x,
    weights: Sequence[jax.Array],
    activation: str | Activation,
    *,
    centered: bool = False,
    offsets: Sequence[jax.Array] | None = None,
    return_all: bool = False,
):
    """L frozen layers (DRF-1): h_0 = x, h_l = sigma(W_l h_{l-1} / sqrt(k_{l-1})) - c_l,
    W_l: (k_l, k_{l-1}) (:func:`rfsim.networks.deep_weights`), each layer
    :func:`rfsim.networks.dense`.

    Given h_{l-1}, each pre-activation z = W_l h_{l-1} / sqrt(k_{l-1}) is exactly
    N(0, q_l) over W_l with q_l = ||h_{l-1}||^2 / k_{l-1} (per input).  ``c_l``:

    * ``offsets=None, centered=False``: 0;
    * ``centered=True``: that conditional mean, c_l = E sigma(sqrt(q_l) G) per input (see
      ``gaussian_mean``); at infinite width q_l follows the NNGP recursion
      q_{l+1} = E[sigma(sqrt(q_l) G)^2] (uncentered) or Var[sigma(sqrt(q_l) G)] (centered);
    * ``offsets=[c_1, ..., c_L]``: given constants (each neuron's population mean, as the
      ``deep-rf`` family estimates them).

    Returns h_L of shape (n, k_L), or the list [h_1, ..., h_L] when ``return_all``.
    Like ``random_features`` the output is unnormalized (no 1/sqrt(k_L)).
    """
    sigma = get_activation(activation)
    if isinstance(weights, jax.Array) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty list of 2-D arrays (see deep_weights)")
    Ws = [_check_weights(f"weights[{i}]", W) for i, W in enumerate(weights)]
    if offsets is not None and (centered or len(offsets) != len(Ws)):
        raise ValueError(f"offsets must be one array per layer ({len(Ws)}), without "
                         f"centered=True, got {len(offsets)} with centered={centered}")
    h = _check_batch("x", x, Ws[0].shape[1])
    layers = []
    for l, W in enumerate(Ws):
        k_prev = W.shape[1]
        if h.shape[-1] != k_prev:
            raise ValueError(
                f"weights[{l}] has shape {W.shape}, but layer {l + 1} receives width {h.shape[-1]}"
            )
        z = dense(h, W.T, None, 1.0 / math.sqrt(k_prev), 0.0)
        if centered:
            q = jnp.sum(h**2, axis=-1, keepdims=True) / k_prev  # Var(z | h_{l-1}) per input
            h = sigma(z) - gaussian_mean(sigma, q)
        elif offsets is not None:
            h = sigma(z) - offsets[l]
        else:
            h = sigma(z)
        layers.append(h)
    return layers if return_all else layers[-1]


# --------------------------------------------------------------------------- Fourier


def rff_weights(key, n_features: int, d: int, bandwidth=1.0, dtype=None) -> jax.Array:
    """Frequencies omega_i ~ N(0, I / bandwidth^2), i.i.d., shape (N, d) (Rahimi & Recht 2007).

    Bochner: exp(-||x-y||^2 / (2 bandwidth^2)) = E_omega cos(omega.(x - y)).
    """
    _check_positive("bandwidth", bandwidth, requested_dtype(dtype))
    return gaussian_weights(key, n_features, d, dtype) / bandwidth


@partial(jax.jit, static_argnums=(1, 2, 3))
def _orf_core(key, n_features: int, d: int, dtype) -> jax.Array:
    n_blocks = -(-n_features // d)
    k_q, k_s = jax.random.split(key)
    qs = _sign_fixed_qr(jax.random.normal(k_q, (n_blocks, d, d), dtype))  # Haar blocks
    norms = jnp.linalg.norm(jax.random.normal(k_s, (n_blocks, d, d), dtype), axis=-1)  # chi_d
    blocks = norms[..., None] * qs  # row i of block b scaled by s_{b,i}
    return blocks.reshape(n_blocks * d, d)[:n_features]


def orf_weights(key, n_features: int, d: int, bandwidth=1.0, dtype=None) -> jax.Array:
    """Orthogonal random features (Yu et al. 2016), shape (N, d).

    ceil(N / d) independent blocks; block b is S_b Q_b / bandwidth with Q_b Haar on
    O(d) (sign-corrected QR of a Gaussian matrix, as in ``haar_orthogonal``) and
    S_b = diag(s_1..s_d), s_i ~ chi_d independent (norms of fresh N(0, I_d) vectors).
    A Haar row is uniform on S^{d-1}, so each row is marginally N(0, I / bandwidth^2)
    as for RFF, while rows of one block are exactly orthogonal.  The last block is
    truncated so that N rows are returned.
    """
    n_features = _check_count("n_features", n_features)
    d = _check_count("d", d)
    _check_positive("bandwidth", bandwidth, requested_dtype(dtype))
    return _orf_core(key, n_features, d, requested_dtype(dtype)) / bandwidth


def random_phases(key, n_features: int, dtype=None) -> jax.Array:
    """b_i ~ Uniform[0, 2 pi), i.i.d., shape (N,), for the random-phase Fourier form."""
    n_features = _check_count("n_features", n_features)
    dt = requested_dtype(dtype)
    return jax.random.uniform(key, (n_features,), dt, 0.0, 2.0 * math.pi)


def fourier_features(x, omega, phases=None) -> jax.Array:
    """Random Fourier features with phi(x).phi(y) an unbiased estimate of k(x, y).

    * ``phases=None`` (default, cos/sin pairs): phi(x) = [cos(omega x), sin(omega x)] / sqrt(N),
      shape (n, 2N); phi(x).phi(y) = (1/N) sum_i cos(omega_i.(x - y)).
    * ``phases=b`` of shape (N,) with b_i ~ U[0, 2 pi) (``random_phases``):
      phi(x) = sqrt(2/N) cos(omega x + b), shape (n, N); unbiased because
      E_b 2 cos(a + b) cos(c + b) = cos(a - c).

    With omega from ``rff_weights`` the cos/sin estimate has variance
    Var = (1 - exp(-||x-y||^2 / bw^2))^2 / (2N) (N frequencies, 2N features).
    """
    omega = _check_weights("omega", omega)
    n_freq = omega.shape[0]
    x = _check_batch("x", x, omega.shape[1])
    proj = x @ omega.T
    if phases is None:
        return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1) / math.sqrt(n_freq)
    phases = jnp.asarray(phases)
    if phases.shape != (n_freq,):
        raise ValueError(f"phases must have shape ({n_freq},) to match omega, got {phases.shape}")
    return math.sqrt(2.0 / n_freq) * jnp.cos(proj + phases)
