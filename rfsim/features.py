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
* closed-form expected kernels E_w sigma(w.x/sqrt d) sigma(w.y/sqrt d) for
  relu (arc-cosine, Cho & Saul 2009), erf (Williams 1997) and linear.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS, Activation, get_activation
from rfsim.validation import float_dtype, require_positive

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


def _float_dtype(dtype, field: str = "dtype"):
    """Resolve ``dtype`` (None -> jax's default float) and insist it is floating."""
    if dtype is None:
        return jnp.result_type(float)
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"{field} must be a floating dtype, got {dtype!r}")
    return jax.dtypes.canonicalize_dtype(dt)


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
    x = jnp.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"{field} must have shape (n, d) or (d,), got shape {x.shape}")
    if d is not None and x.shape[-1] != d:
        raise ValueError(f"{field} has last dimension {x.shape[-1]}, but the weights expect d={d}")
    return x


def _check_weights(field: str, W) -> jax.Array:
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"{field} must have shape (n_features, d) with both >= 1, got {W.shape}")
    return W


# --------------------------------------------------------------------------- samplers


def gaussian_weights(key, n_features: int, d: int, dtype=None) -> jax.Array:
    """W in R^{N x d} with i.i.d. entries W_ij ~ N(0, 1)."""
    n_features = _check_count("n_features", n_features)
    d = _check_count("d", d)
    return jax.random.normal(key, (n_features, d), _float_dtype(dtype))


def sphere_weights(key, n_features: int, d: int, dtype=None) -> jax.Array:
    """Rows w_i i.i.d. uniform on the sphere S^{d-1}(sqrt d): w = sqrt(d) g / ||g||, g ~ N(0, I).

    Hence ||w_i||^2 = d exactly and E w w^T = I.
    """
    g = gaussian_weights(key, n_features, d, dtype)
    return g * (math.sqrt(d) / jnp.linalg.norm(g, axis=-1, keepdims=True))


def sphere_inputs(key, n: int, d: int, dtype=None) -> jax.Array:
    """n inputs i.i.d. uniform on S^{d-1}(sqrt d), so ||x||^2 / d = 1 (q_0 = 1).

    Same distribution *and* same draw as ``sphere_weights(key, n, d, dtype)``: it is
    an alias with input-side naming; use different keys for inputs and weights.
    """
    _check_count("n", n)
    return sphere_weights(key, n, d, dtype)


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


def deep_weights(key, d: int, widths: Sequence[int], dtype=None) -> list[jax.Array]:
    """Gaussian W_l in R^{k_l x k_{l-1}}, l = 1..L, with k_0 = d and widths = (k_1..k_L).

    Layer l uses key ``fold_in(key, l)``, so adding layers leaves earlier ones unchanged.
    """
    d = _check_count("d", d)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise ValueError(f"widths must be a non-empty sequence of integers >= 1, got {widths!r}")
    ks = [d] + [_check_count(f"widths[{i}]", k) for i, k in enumerate(widths)]
    return [
        gaussian_weights(jax.random.fold_in(key, l), ks[l], ks[l - 1], dtype)
        for l in range(1, len(ks))
    ]


_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / math.sqrt(2.0 * math.pi)  # sum to 1: E f(G), G ~ N(0,1)


def gaussian_mean(activation: str | Activation, q) -> jax.Array:
    """m(q) = E sigma(sqrt(q) G), G ~ N(0, 1), elementwise in q >= 0.

    Closed forms: relu sqrt(q / (2 pi)); gelu q / sqrt(2 pi (1 + q)) (Stein's lemma);
    erf, tanh, linear 0 (odd).  Any other callable: 96-point Gauss-Hermite quadrature
    (accurate for smooth sigma; slow to converge at kinks).
    """
    sigma = get_activation(activation)
    q = jnp.asarray(q)
    if not jnp.issubdtype(q.dtype, jnp.floating):
        q = q.astype(jnp.result_type(float))
    if sigma is ACTIVATIONS["relu"]:
        return jnp.sqrt(q / (2.0 * math.pi))
    if sigma is ACTIVATIONS["gelu"]:
        return q / jnp.sqrt(2.0 * math.pi * (1.0 + q))
    if sigma in (ACTIVATIONS["erf"], ACTIVATIONS["tanh"], ACTIVATIONS["linear"]):
        return jnp.zeros_like(q)
    nodes = jnp.asarray(_HERMITE_NODES, q.dtype)
    weights = jnp.asarray(_HERMITE_WEIGHTS, q.dtype)
    return sigma(jnp.sqrt(q)[..., None] * nodes) @ weights


def deep_random_features(
    x,
    weights: Sequence[jax.Array],
    activation: str | Activation,
    *,
    centered: bool = False,
    return_all: bool = False,
):
    """L frozen layers: h_0 = x, h_l = sigma(W_l h_{l-1} / sqrt(k_{l-1})), W_l: (k_l, k_{l-1}).

    Given h_{l-1}, each pre-activation z = W_l h_{l-1} / sqrt(k_{l-1}) is exactly
    N(0, q_l) over W_l with q_l = ||h_{l-1}||^2 / k_{l-1} (per input).  With
    ``centered=True`` each layer subtracts that conditional mean,
    h_l = sigma(z) - E sigma(sqrt(q_l) G), using the per-input q_l (see
    ``gaussian_mean``); at infinite width q_l follows the NNGP recursion
    q_{l+1} = E[sigma(sqrt(q_l) G)^2] (uncentered) or Var[sigma(sqrt(q_l) G)] (centered).

    Returns h_L of shape (n, k_L), or the list [h_1, ..., h_L] when ``return_all``.
    Like ``random_features`` the output is unnormalized (no 1/sqrt(k_L)).
    """
    sigma = get_activation(activation)
    if isinstance(weights, jax.Array) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty list of 2-D arrays (see deep_weights)")
    Ws = [_check_weights(f"weights[{i}]", W) for i, W in enumerate(weights)]
    h = _check_batch("x", x, Ws[0].shape[1])
    layers = []
    for l, W in enumerate(Ws):
        k_prev = W.shape[1]
        if h.shape[-1] != k_prev:
            raise ValueError(
                f"weights[{l}] has shape {W.shape}, but layer {l + 1} receives width {h.shape[-1]}"
            )
        z = (h @ W.T) / math.sqrt(k_prev)
        if centered:
            q = jnp.sum(h**2, axis=-1, keepdims=True) / k_prev  # Var(z | h_{l-1}) per input
            h = sigma(z) - gaussian_mean(sigma, q)
        else:
            h = sigma(z)
        layers.append(h)
    return layers if return_all else layers[-1]


# --------------------------------------------------------------------------- Fourier


def rff_weights(key, n_features: int, d: int, bandwidth=1.0, dtype=None) -> jax.Array:
    """Frequencies omega_i ~ N(0, I / bandwidth^2), i.i.d., shape (N, d) (Rahimi & Recht 2007).

    Bochner: exp(-||x-y||^2 / (2 bandwidth^2)) = E_omega cos(omega.(x - y)).
    """
    _check_positive("bandwidth", bandwidth, _float_dtype(dtype))
    return gaussian_weights(key, n_features, d, dtype) / bandwidth


def _sign_fixed_qr(g: jax.Array) -> jax.Array:
    """Q of g = Q R (batched over leading axes) with Q <- Q diag(sign(diag R)), so diag R > 0."""
    q, r = jnp.linalg.qr(g)
    signs = jnp.where(jnp.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0).astype(q.dtype)
    return q * signs[..., None, :]


@partial(jax.jit, static_argnums=(1, 2))
def _haar_core(key, d: int, dtype) -> jax.Array:
    return _sign_fixed_qr(jax.random.normal(key, (d, d), dtype))


def haar_orthogonal(key, d: int, dtype=None) -> jax.Array:
    """Q ~ Haar on O(d): Q R = G with G_ij ~ N(0, 1), then Q <- Q diag(sign(diag R)).

    The sign correction makes the factorization unique (diag R > 0), which is what
    makes Q exactly Haar (Mezzadri 2007); without it LAPACK's Householder convention
    biases the signs of the columns.
    """
    d = _check_count("d", d)
    return _haar_core(key, d, _float_dtype(dtype))


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
    _check_positive("bandwidth", bandwidth, _float_dtype(dtype))
    return _orf_core(key, n_features, d, _float_dtype(dtype)) / bandwidth


def random_phases(key, n_features: int, dtype=None) -> jax.Array:
    """b_i ~ Uniform[0, 2 pi), i.i.d., shape (N,), for the random-phase Fourier form."""
    n_features = _check_count("n_features", n_features)
    dt = _float_dtype(dtype)
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


@jax.jit
def _gaussian_kernel_core(x2, y2, bandwidth):
    sq = (jnp.sum(x2**2, -1)[:, None] + jnp.sum(y2**2, -1)[None, :]) - 2.0 * (x2 @ y2.T)
    # (sq / 2 bw) / bw, not sq / (2 bw^2): bw^2 under- or overflows first (float32 bandwidth
    # 1e-20 made the diagonal 0/0 = NaN)
    return jnp.exp(-(jnp.maximum(sq, 0.0) / (2.0 * bandwidth)) / bandwidth)


def gaussian_kernel(x, y, bandwidth=1.0) -> jax.Array:
    """k(x, y) = exp(-||x - y||^2 / (2 bandwidth^2)); (n, d), (m, d) -> (n, m).

    ||x - y||^2 is expanded as ||x||^2 + ||y||^2 - 2 x.y and clipped at 0.
    A (d,) argument drops the corresponding axis.
    """
    _check_positive("bandwidth", bandwidth, float_dtype(x, y))
    return _pairwise(_gaussian_kernel_core, x, y, bandwidth)


# --------------------------------------------------------------------------- expected kernels


def _moments(x2, y2):
    """(q_x, q_y, c) = (||x||^2/d, ||y||^2/d, x.y/d) as (n, m) arrays: Cov of (w.x, w.y)/sqrt(d)."""
    d = x2.shape[-1]
    c = (x2 @ y2.T) / d
    qx = jnp.broadcast_to(jnp.sum(x2**2, -1)[:, None] / d, c.shape)
    qy = jnp.broadcast_to(jnp.sum(y2**2, -1)[None, :] / d, c.shape)
    return qx, qy, c


def _pairwise(core, x, y, *args):
    """Validate x, y, run the jitted ``core`` on 2-D batches, drop the axes of 1-D inputs."""
    x = _check_batch("x", x)
    y = _check_batch("y", y, x.shape[-1])
    out = core(jnp.atleast_2d(x), jnp.atleast_2d(y), *args)
    if y.ndim == 1:
        out = out[:, 0]
    if x.ndim == 1:
        out = out[0]
    return out


def _cos_theta(qx, qy, c):
    """cos theta = c / sqrt(q_x q_y), clipped into [-1, 1]; 0 where a norm vanishes."""
    qq = qx * qy
    pos = qq > 0
    safe = jnp.sqrt(jnp.where(pos, qq, 1.0))
    return jnp.where(pos, jnp.clip(c / safe, -1.0, 1.0), 0.0), jnp.sqrt(qq)


@partial(jax.jit, static_argnums=2)
def _arccos_core(x2, y2, order: int):
    cos, norm = _cos_theta(*_moments(x2, y2))
    theta = jnp.arccos(cos)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos**2, 0.0))
    if order == 0:
        j = math.pi - theta
    elif order == 1:
        j = sin + (math.pi - theta) * cos
    else:
        j = 3.0 * sin * cos + (math.pi - theta) * (1.0 + 2.0 * cos**2)
    return norm**order * j / (2.0 * math.pi)


def arccos_kernel(x, y, order: int = 1) -> jax.Array:
    """E_w[Theta(u) Theta(v) u^n v^n], u = w.x/sqrt(d), v = w.y/sqrt(d), w ~ N(0, I_d).

    = (q_x q_y)^{n/2} J_n(theta) / (2 pi),  cos theta = x.y / (||x|| ||y||), q = ||.||^2/d,
    J_0 = pi - theta,  J_1 = sin theta + (pi - theta) cos theta,
    J_2 = 3 sin theta cos theta + (pi - theta)(1 + 2 cos^2 theta)
    (Cho & Saul 2009 arc-cosine kernel k_n, halved and with the 1/d scaling).
    order=1 is the relu kernel, order=0 the step-function kernel.  cos theta is
    clipped into [-1, 1] so the diagonal never turns NaN.
    (n, d), (m, d) -> (n, m); a (d,) argument drops the corresponding axis.
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"order must be one of [0, 1, 2], got {order!r}")
    return _pairwise(_arccos_core, x, y, int(order))


@jax.jit
def _erf_core(x2, y2):
    qx, qy, c = _moments(x2, y2)
    arg = 2.0 * c / jnp.sqrt((1.0 + 2.0 * qx) * (1.0 + 2.0 * qy))
    return (2.0 / math.pi) * jnp.arcsin(jnp.clip(arg, -1.0, 1.0))


def erf_kernel(x, y) -> jax.Array:
    """E_w erf(u) erf(v) = (2/pi) arcsin(2c / sqrt((1 + 2 q_x)(1 + 2 q_y))) (Williams 1997),

    with u = w.x/sqrt(d), v = w.y/sqrt(d), w ~ N(0, I_d), q = ||.||^2/d, c = x.y/d.
    The arcsin argument is clipped into [-1, 1].  Shapes as ``arccos_kernel``.
    """
    return _pairwise(_erf_core, x, y)


@jax.jit
def _linear_core(x2, y2):
    return _moments(x2, y2)[2]


_CLOSED_FORMS = ("erf", "linear", "relu")


def expected_kernel(x, y, activation: str | Activation) -> jax.Array:
    """K(x, y) = E_w sigma(w.x/sqrt d) sigma(w.y/sqrt d), w ~ N(0, I_d), in closed form.

    relu: ``arccos_kernel(x, y, 1)``; erf: ``erf_kernel``; linear: x.y/d.
    (n, d), (m, d) -> (n, m); this is the N -> infinity limit of
    ``random_features(x, W, a) @ random_features(y, W, a).T / N``.
    """
    sigma = get_activation(activation)
    if sigma is ACTIVATIONS["relu"]:
        return arccos_kernel(x, y, 1)
    if sigma is ACTIVATIONS["erf"]:
        return erf_kernel(x, y)
    if sigma is ACTIVATIONS["linear"]:
        return _pairwise(_linear_core, x, y)
    raise ValueError(
        f"activation must be one of {list(_CLOSED_FORMS)} for a closed-form expected kernel, "
        f"got {activation!r}"
    )
