r"""Closed-form kernels of infinitely wide networks: NNGP and NTK of any depth.

Implements theory/kernels.md, Eqs. (K-7)–(K-12); the Gaussian expectations they need are
(K-1)–(K-6) in :mod:`rfsim.theory.gaussian`.

Network (K-7), ``depth`` = number of hidden layers, a scalar readout on top, every
parameter N(0, 1) ("ntk" parameterization):

.. math:: h^1 = \frac{\sigma_w}{\sqrt d} W^1 x + \sigma_b b^1,\quad
          h^{l+1} = \frac{\sigma_w}{\sqrt{n_l}} W^{l+1}\phi(h^l) + \sigma_b b^{l+1},
          \quad f = h^{depth+1}.

NNGP (K-8): ``K^1 = w^2 x.x'/d + b^2``, ``K^{l+1} = w^2 E[phi(u)phi(v)] + b^2`` under
``(u, v) ~ N(0, K^l)``.  NTK (K-9): ``Theta^1 = K^1``, ``Theta^{l+1} = K^{l+1} + w^2
Theta^l E[phi'(u)phi'(v)]``.  The output kernels are ``K^{depth+1}``, ``Theta^{depth+1}``.
In the "standard" parameterization (K-10) the NNGP is the same and
``Theta^{l+1} = n_l E[phi phi] + w^2 Theta^l E[phi' phi'] + [bias]`` with
``Theta^1 = x.x' + [bias]``: it needs the finite ``width``.  These are the kernels of
neural-tangents' ``stax.serial(*[Dense(n, W_std, b_std), Act()] * depth, Dense(1, W_std,
b_std))``.

Also here, the one-layer expected kernels of random features (moved from
``rfsim.features``, which re-exports them): :func:`arccos_kernel`, :func:`erf_kernel`,
:func:`expected_kernel` and the Gaussian (RBF) kernel :func:`gaussian_kernel`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS, get_activation
from rfsim.theory.gaussian import QUADRATURE_ORDER, arccos_expectation
from rfsim.validation import (
    as_real_array,
    closest,
    float64_hint,
    float_dtype,
    is_concrete,
    require_batch,
    require_int,
    require_nonnegative,
    require_positive,
)

__all__ = [
    "PARAMETERIZATIONS",
    "Kernels",
    "arccos_kernel",
    "dot_product",
    "erf_kernel",
    "expected_kernel",
    "gaussian_kernel",
    "kernels",
    "nngp",
    "ntk",
]

PARAMETERIZATIONS = ("ntk", "standard")
#: the largest ``depth`` accepted.  The layers are a loop (compile time and memory do not grow
#: with depth); the run time is linear in it.
MAX_DEPTH = 10_000


class Kernels(NamedTuple):
    """Output kernels of the network: ``nngp`` (K-8) and ``ntk`` (K-9 or K-10); ``ntk``
    is None when only the NNGP was asked for."""

    nngp: jax.Array
    ntk: jax.Array | None


# --------------------------------------------------------------------------- helpers


def _moments(x2, y2):
    """(q_x, q_y, c) = (||x||^2/d, ||y||^2/d, x.y/d): (n,), (m,), (n, m)."""
    d = x2.shape[-1]
    return jnp.sum(x2 * x2, -1) / d, jnp.sum(y2 * y2, -1) / d, (x2 @ y2.T) / d


def _pairwise(core, x, y, *args):
    """Validate x, y, run the jitted ``core`` on 2-D batches, drop the axes of 1-D inputs."""
    x = require_batch("x", x)
    y = require_batch("y", y, x.shape[-1], other="x's features")
    # an explicit common float type (numpy's rule), so strict dtype promotion holds
    dtype = np.promote_types(x.dtype, y.dtype)
    dtype = (jax.dtypes.canonicalize_dtype(dtype) if np.issubdtype(dtype, np.floating)
             else jnp.result_type(float))
    out = core(jnp.atleast_2d(x).astype(dtype), jnp.atleast_2d(y).astype(dtype), *args)
    if y.ndim == 1:
        out = out[:, 0]
    if x.ndim == 1:
        out = out[0]
    return out


# --------------------------------------------------------------------------- one layer


@partial(jax.jit, static_argnums=2)
def _arccos_core(x2, y2, order: int):
    qx, qy, c = _moments(x2, y2)
    return arccos_expectation(order, qx[:, None], qy[None, :], c)


def arccos_kernel(x, y, order: int = 1) -> jax.Array:
    """E_w[Theta(u) Theta(v) u^n v^n], u = w.x/sqrt(d), v = w.y/sqrt(d), w ~ N(0, I_d).

    = (q_x q_y)^{n/2} J_n(theta) / (2 pi) with q = ||.||^2/d (theory/kernels.md K-2;
    Cho & Saul 2009's arc-cosine kernel k_n, halved and with the 1/d scaling).
    order=1 is the relu kernel, order=0 the step-function kernel.
    (n, d), (m, d) -> (n, m); a (d,) argument drops the corresponding axis.
    """
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"order must be one of [0, 1, 2], got {order!r}")
    return _pairwise(_arccos_core, x, y, int(order))


@partial(jax.jit, static_argnums=2)
def _two_point_core(x2, y2, sigma):
    qx, qy, c = _moments(x2, y2)
    return sigma.two_point(qx[:, None], qy[None, :], c)


def erf_kernel(x, y) -> jax.Array:
    """E_w erf(u) erf(v) = (2/pi) arcsin(2c / sqrt((1 + 2 q_x)(1 + 2 q_y))) (Williams 1997;
    K-5), u = w.x/sqrt(d), v = w.y/sqrt(d), q = ||.||^2/d, c = x.y/d.  Shapes as
    :func:`arccos_kernel`."""
    return _pairwise(_two_point_core, x, y, get_activation("erf"))


def expected_kernel(x, y, activation) -> jax.Array:
    """K(x, y) = E_w sigma(w.x/sqrt d) sigma(w.y/sqrt d), w ~ N(0, I_d), in closed form:
    the activation's closed-form two-point fact (theory/activations.md A-5) at
    ``(||x||^2/d, ||y||^2/d, x.y/d)``.

    relu: ``arccos_kernel(x, y, 1)``; erf: ``erf_kernel``; linear: x.y/d; also leaky relu,
    sin, cos and any registered activation with a closed ``two_point``.  The N -> infinity
    limit of ``random_features(x, W, a) @ random_features(y, W, a).T / N``.  For any
    activation and depth see :func:`nngp` (this is its ``depth=1, w_std=1, b_std=0``
    post-activation kernel, without the readout's ``w_std^2``).
    """
    sigma = get_activation(activation)
    if not sigma.has_closed_form("two_point"):
        closed = sorted(n for n, a in ACTIVATIONS.items() if a.has_closed_form("two_point"))
        raise ValueError(f"activation must be one with a closed-form two-point expectation "
                         f"({closed}) for expected_kernel, got {activation!r}; nngp(..., "
                         "depth=1) takes any activation by quadrature")
    return _pairwise(_two_point_core, x, y, sigma)


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
    require_positive("bandwidth", bandwidth, float_dtype(x, y))
    return _pairwise(_gaussian_kernel_core, x, y, bandwidth)


# --------------------------------------------------------------------------- NNGP / NTK


def _pair(sigma, vx, vy, K, order, want_ntk):
    """E[phi phi] and E[phi' phi'] over a block (rows of variance vx, columns vy)."""
    if sigma.degree == 1:  # fast path: the correlation form (theory/activations.md A-7)
        sx, sy = jnp.sqrt(vx), jnp.sqrt(vy)
        tiny = jnp.finfo(K.dtype).tiny
        ix, iy = 1.0 / jnp.maximum(sx, tiny), 1.0 / jnp.maximum(sy, tiny)
        rho = jnp.clip(K * ix[:, None] * iy[None, :], -1.0, 1.0)
        k1, k0 = sigma.correlation(rho, order=order)
        return sx[:, None] * sy[None, :] * k1, (k0 if want_ntk else None)
    ex, ey = vx[:, None], vy[None, :]
    return (sigma.two_point(ex, ey, K, order=order),
            sigma.derivative_two_point(ex, ey, K, order=order) if want_ntk else None)


def _recursion(qx, qy, c0, *, depth, sigma, w, b, standard, widths, want_ntk, order,
               diagonal, same=False, c_override=False):
    """(K^{depth+1}, Theta^{depth+1}) for one block: qx (n,) and qy (m,) input variances
    ||x||^2/d, c0 the block's x.x'/d ((n, m), or (n,) when ``diagonal``).  ``same``: the
    block pairs a batch with itself, so its diagonal is pinned to the variance recursion
    at every layer (theta = 0 exactly there; a one-ulp mismatch between a matmul and a sum
    of squares would otherwise give theta ~ 1e-8 and an NTK diagonal off by ~1e-9).

    The layers are one ``lax.fori_loop`` (K-8, K-9 as a loop over l, theory/kernels.md §2):
    the compiled program, its compile time and its compile memory do not grow with
    ``depth`` (unrolled, depth 40 took 35-95 s and 1.9 GB to compile, depth 100 ran out of
    memory).  Each iteration is one fused kernel per block, as the unrolled layers were."""
    w2 = w * w
    b2 = 0.0 if b is None else b * b
    bias_ntk = 0.0 if b is None else 1.0
    vx, vy = w2 * qx + b2, w2 * (qx if same else qy) + b2  # variances of h^1 (vectors)
    pin = (lambda M, v: jnp.fill_diagonal(M, v, inplace=False)) if same else (lambda M, v: M)
    K = pin(w2 * c0 + b2, vx)
    T = K
    if want_ntk:  # Theta^1
        T = K if not standard else (c0 * widths[0] + bias_ntk).astype(K.dtype)
    # the fan-ins n_1 .. n_depth of the standard NTK (K-10), indexed by the loop counter
    fans = (jnp.asarray(widths[1:], K.dtype) if (want_ntk and standard and depth > 0)
            else None)

    def layer(l, carry):
        K, T, vx, vy = carry
        # variances of the next layer: vectors, cheap (on the diagonal they are the kernel)
        vx_post = sigma.two_point(vx, vx, vx, order=order)
        if diagonal and not c_override:
            post, vy_post = vx_post, vx_post
            deriv = sigma.derivative_two_point(vx, vx, vx, order=order) if want_ntk else None
        elif diagonal:  # elementwise pairs (x_i, y_i) of equal variance, covariance K
            vy_post = vx_post
            post = sigma.two_point(vx, vx, K, order=order)
            deriv = sigma.derivative_two_point(vx, vx, K, order=order) if want_ntk else None
        else:
            vy_post = vx_post if same else sigma.two_point(vy, vy, vy, order=order)
            post, deriv = _pair(sigma, vx, vy, K, order, want_ntk)
            if same:  # the diagonal from the vector recursion: theta = 0 exactly there
                post = jnp.fill_diagonal(post, vx_post, inplace=False)
                if want_ntk:
                    deriv = jnp.fill_diagonal(
                        deriv, sigma.derivative_two_point(vx, vx, vx, order=order),
                        inplace=False)
        K_new = w2 * post + b2
        if want_ntk:
            carried = w2 * T * deriv
            T = (K_new + carried) if not standard else (fans[l] * post + carried + bias_ntk)
        vx, vy = w2 * vx_post + b2, w2 * vy_post + b2
        K = pin(K_new, vx)
        # one fused kernel per layer (kept from the unrolled recursion, where XLA otherwise
        # fused the layers and recomputed earlier ones inside later ones)
        out = (K, T if want_ntk else K, vx, vy)
        out = jax.tree.map(lambda new, old: new.astype(old.dtype), out, carry)
        return jax.lax.optimization_barrier(out)

    K, T, vx, vy = jax.lax.fori_loop(0, depth, layer, (K, T, vx, vy))
    return K, (T if want_ntk else None)


_TILE = 256  # rows and columns per tile: a tile's intermediates (512 KB each) stay in cache


def _tile(xa, xb, qa, qb, w, b, *, same, **static):
    """(K, Theta) for one tile from its inputs and their precomputed variances ||x||^2/d."""
    c0 = (xa @ xb.T) / xa.shape[-1]
    if same:
        c0 = 0.5 * (c0 + c0.T)  # exactly symmetric, so every layer's kernel is too
    K, T = _recursion(qa, qb, c0, w=w, b=b, same=same, diagonal=False, **static)
    if same:  # vectorized loops may round entries (i, j), (j, i) differently
        K = 0.5 * (K + K.T)
        T = None if T is None else 0.5 * (T + T.T)
    return K, T


def _tiles(x, q, t):
    pad = (-x.shape[0]) % t
    x = jnp.pad(x, ((0, pad), (0, 0)))
    q = jnp.pad(q, (0, pad))
    return x.reshape(-1, t, x.shape[-1]), q.reshape(-1, t)


@partial(jax.jit, static_argnames=("depth", "sigma", "standard", "widths", "want_ntk",
                                   "order", "diagonal", "has_bias", "same"))
def _kernel_block(x1, x2, w, b, *, depth, sigma, standard, widths, want_ntk, order, diagonal,
                  has_bias, same=False):
    """(K, Theta) of a block.  Large blocks run as a loop over 256 x 256 tiles (only those on
    and above the diagonal when ``same``, K-12): the per-layer arithmetic then works in
    cache instead of streaming n1 x n2 intermediates through memory (4x faster at 4000^2)."""
    d = x1.shape[-1]
    static = dict(depth=depth, sigma=sigma, standard=standard, widths=widths,
                  want_ntk=want_ntk, order=order, b=b if has_bias else None)
    q1 = jnp.sum(x1 * x1, -1) / d
    q2 = q1 if same else jnp.sum(x2 * x2, -1) / d
    if diagonal:
        return _recursion(q1, q1, q1, w=w, diagonal=True, **static)
    n1, n2 = x1.shape[0], x2.shape[0]
    if n1 <= _TILE and n2 <= _TILE:
        return _tile(x1, x2, q1, q2, w, same=same, **static)
    # tiles of at most _TILE rows, as equal as possible: 4000 = 16 x 250 needs no padding
    # (and no copy of the padded result back to n1 x n2)
    nt = -(-max(n1, n2) // _TILE)
    t = -(-max(n1, n2) // nt)
    X1, Q1 = _tiles(x1, q1, t)
    X2, Q2 = (X1, Q1) if same else _tiles(x2, q2, t)
    nt1, nt2 = X1.shape[0], X2.shape[0]
    if same:
        I, J = np.triu_indices(nt1)
    else:
        I, J = (g.ravel() for g in np.meshgrid(np.arange(nt1), np.arange(nt2), indexing="ij"))
    I, J = jnp.asarray(I, jnp.int32), jnp.asarray(J, jnp.int32)
    n_out = 2 if want_ntk else 1

    def body(k, outs):
        i, j = I[k], J[k]
        xa, xb = X1[i], X2[j]
        qa, qb = Q1[i], Q2[j]
        if same:  # a diagonal tile pins its diagonal and symmetrizes (K-11)
            tiles = jax.lax.cond(i == j,
                                 lambda: _tile(xa, xa, qa, qa, w, same=True, **static),
                                 lambda: _tile(xa, xb, qa, qb, w, same=False, **static))
        else:
            tiles = _tile(xa, xb, qa, qb, w, same=False, **static)
        new = []
        for full, tile in zip(outs, tiles[:n_out]):
            full = jax.lax.dynamic_update_slice(full, tile, (i * t, j * t))
            if same:  # the mirror image below the diagonal (a no-op rewrite on the diagonal)
                full = jax.lax.dynamic_update_slice(full, tile.T, (j * t, i * t))
            new.append(full)
        return tuple(new)

    dtype = jnp.result_type(x1.dtype, w.dtype)
    outs = tuple(jnp.zeros((nt1 * t, nt2 * t), dtype) for _ in range(n_out))
    outs = jax.lax.fori_loop(0, I.shape[0], body, outs)
    crop = (lambda M: M) if (nt1 * t, nt2 * t) == (n1, n2) else (lambda M: M[:n1, :n2])
    return crop(outs[0]), (crop(outs[1]) if want_ntk else None)


def _resolve_widths(width, depth, d, standard, want_ntk):
    """Fan-ins (d, n_1, ..., n_depth) for the standard NTK; None otherwise."""
    if not (standard and want_ntk):
        return None
    if width is None:
        raise ValueError("width is required for the NTK in the standard parameterization "
                         "(it scales with the layer widths: K-10); pass width=n or a list "
                         f"of {depth} widths, or use parameterization='ntk'")
    if isinstance(width, (list, tuple)):
        if len(width) != depth:
            raise ValueError(f"width must be one integer or a list of depth={depth} widths, "
                             f"got {len(width)} values")
        for i, n in enumerate(width):
            require_int(f"width[{i}]", n)
        return (d, *[int(n) for n in width])
    require_int("width", width)
    return (d, *([int(width)] * depth))


def _show(value) -> str:
    arr = np.asarray(value)
    return f"{arr.item():g}" if arr.ndim == 0 else np.array2string(arr, threshold=6)


def _show_b(b_std) -> str:
    return "None" if b_std is None else f"{float(b_std):g}"


def _check_scale(name: str, value, dtype) -> None:
    """``w_std`` / ``b_std``: one real number >= 0 whose square (the recursion forms
    ``w_std^2`` and ``b_std^2``, K-8) is 0 or a normal number of ``dtype``."""
    if not is_concrete(value):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a single number >= 0, got a traced array of "
                             f"shape {jnp.shape(value)} (vmap over the call for several values)")
        return
    arr = as_real_array(name, value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single number >= 0, got {_show(arr)} (shape "
                         f"{arr.shape}; call once per value, or vmap over the call)")
    require_nonnegative(name, value, dtype)
    v = float(arr)
    fi = jnp.finfo(dtype)
    sq = v * v
    if sq > float(fi.max):
        raise ValueError(f"{name} must be <= {math.sqrt(float(fi.max)):.4g} (its square, "
                         f"which the recursion forms (K-8), must not exceed the "
                         f"{np.dtype(dtype).name} maximum {float(fi.max):.3g}), got {v:g}"
                         + float64_hint(dtype, lead="; or "))
    if v > 0.0 and sq < float(fi.tiny):
        raise ValueError(f"{name} must be 0 or >= {math.sqrt(float(fi.tiny)):.4g} (its square "
                         f"must be a normal {np.dtype(dtype).name} number, >= "
                         f"{float(fi.tiny):.3g}; smaller ones flush to 0), got {v:g}"
                         + float64_hint(dtype, lead="; or "))


def _log_sq_norms(x) -> np.ndarray:
    """log(||x_i||^2) per row of a concrete batch, without overflow (-inf for a zero row)."""
    a = np.abs(np.atleast_2d(np.asarray(x, dtype=np.float64)))
    m = a.max(-1)
    safe = np.where(m > 0, m, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(m > 0, 2.0 * np.log(safe) + np.log(np.sum((a / safe[:, None]) ** 2,
                                                                    -1)), -np.inf)


def _check_inputs(name: str, x, dtype) -> float:
    """Every row's ``||x||^2`` (formed by the kernel) at most the dtype's maximum and every
    nonzero row's ``||x||^2/d`` a normal number; returns max ``||x||^2/d`` (0 if traced)."""
    if not is_concrete(x):
        return 0.0
    fi = jnp.finfo(dtype)
    d = x.shape[-1]
    logs = _log_sq_norms(x)
    i = int(np.argmax(logs))
    if logs[i] > math.log(float(fi.max)):
        raise ValueError(f"{name} must have every ||x||^2 <= {float(fi.max):.3g} (the "
                         f"{np.dtype(dtype).name} maximum: the kernel forms x.x'), got "
                         f"||{name}[{i}]||^2 = 1e{logs[i] / math.log(10):.1f}"
                         + float64_hint(dtype, lead="; rescale the inputs or "))
    with np.errstate(divide="ignore"):
        per_d = logs - math.log(d)
    small = np.isfinite(per_d) & (per_d < math.log(float(fi.tiny)))
    if small.any():
        j = int(np.nonzero(small)[0][0])
        raise ValueError(f"{name} must have ||x||^2/d = 0 or >= {float(fi.tiny):.3g} (a "
                         f"normal {np.dtype(dtype).name} number), got ||{name}[{j}]||^2/d = "
                         f"1e{per_d[j] / math.log(10):.1f}; rescale the inputs")
    return float(np.exp(per_d[i])) if np.isfinite(per_d[i]) else 0.0




def _check_growth(sigma, depth, w_std, b_std, q_max, dtype, want_ntk) -> None:
    """Refuse scales whose NNGP (K-8) or NTK (K-9) diagonal leaves the dtype's range.

    Layer 1 forms ``w^2 q + b^2`` (q = ``max ||x||^2/d``): it must not overflow for any
    activation.  For positively homogeneous ones (relu, leaky relu, linear) the diagonal
    recursion is affine, ``v' = a v + b^2``, ``T' = v' + a' T`` with ``a = w^2 E phi(z)^2``,
    ``a' = w^2 E phi'(z)^2`` (K-11), so the growth over depth is checked exactly, layer by
    layer, in float64 on the host.  Other activations: the output is checked after the fact
    (:func:`_check_output`)."""
    if not is_concrete((w_std, b_std)):
        return
    fmax = float(jnp.finfo(dtype).max)
    w2 = float(w_std) ** 2
    b2 = 0.0 if b_std is None else float(b_std) ** 2
    v = w2 * q_max + b2
    where = (f"w_std = {float(w_std):g}, b_std = {_show_b(b_std)}, inputs with max "
             f"||x||^2/d = {q_max:.3g}")
    if not v <= fmax:
        raise ValueError(f"w_std^2 max||x||^2/d + b_std^2 (the layer-1 variance, K-8) must be "
                         f"<= {fmax:.3g} (the {np.dtype(dtype).name} maximum), got {v:.3g} "
                         f"for {where}" + float64_hint(dtype, lead="; or "))
    name = sigma.name
    if sigma.degree != 1:
        return
    with jax.ensure_compile_time_eval():
        a = w2 * float(sigma.two_point(1.0, 1.0, 1.0))
        a1 = w2 * float(sigma.derivative_two_point(1.0, 1.0, 1.0))
    T = v
    for layer in range(1, depth + 1):
        v = a * v + b2
        T = v + a1 * T if want_ntk else v
        if not (v <= fmax and T <= fmax):
            what = "NNGP" if not v <= fmax else "NTK"
            raise ValueError(
                f"depth must be <= {layer - 1} for {name} with {where}: the layer-"
                f"{layer + 1} {what} variance (K-8, K-9) grows by w_std^2 E phi(z)^2 = "
                f"{a:.3g} per layer and would exceed the {np.dtype(dtype).name} maximum "
                f"{fmax:.3g}; got depth = {depth}" + float64_hint(dtype, lead="; or "))


def _check_output(out, what, *, depth, sigma, w_std, b_std, q_max, dtype) -> None:
    """Never return a non-finite kernel silently (concrete results only)."""
    if out is None or not is_concrete(out):
        return
    bad = int(jnp.sum(~jnp.isfinite(out)))
    if bad:
        raise ValueError(
            f"the {what} is not finite ({bad} NaN or infinite entr{'y' if bad == 1 else 'ies'})"
            f" for activation {sigma.name}, depth = {depth}, w_std = {float(w_std):g}, "
            f"b_std = {_show_b(b_std)}, inputs with max "
            f"||x||^2/d = {q_max:.3g}: a layer's variance left the {np.dtype(dtype).name} "
            f"range [{float(jnp.finfo(dtype).tiny):.3g}, {float(jnp.finfo(dtype).max):.3g}]; "
            "w_std, b_std, depth and the input scale must keep every layer's variance in it"
            + float64_hint(dtype, lead="; or "))


def _validate(x1, x2, depth, activation, w_std, b_std, parameterization, batch_size, order,
              want_ntk=True):
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0 (the number of hidden layers), "
                         f"got {depth!r}")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth must be <= {MAX_DEPTH}, got {depth}")
    sigma = get_activation(activation)
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {list(PARAMETERIZATIONS)}, got "
                         f"{parameterization!r}" + closest(str(parameterization),
                                                           PARAMETERIZATIONS))
    x1 = require_batch("x1", x1, finite=True)
    x2 = None if x2 is None else require_batch("x2", x2, x1.shape[-1], finite=True,
                                              other="x1's features")
    dtype = float_dtype(x1) if x2 is None else float_dtype(x1, x2)
    _check_scale("w_std", w_std, dtype)
    if b_std is not None:
        _check_scale("b_std", b_std, dtype)
    if batch_size is not None:
        require_int("batch_size", batch_size)
    require_int("order", order, minimum=2, maximum=1000)
    q_max = _check_inputs("x1", x1, dtype)
    if x2 is not None:
        q_max = max(q_max, _check_inputs("x2", x2, dtype))
    if is_concrete((x1, x2)):
        _check_growth(sigma, int(depth), w_std, b_std, q_max, dtype, want_ntk)
    return sigma, x1, x2, q_max, dtype


def kernels(x1, x2=None, *, depth: int, activation="relu", w_std=1.0, b_std=0.0,
            parameterization: str = "ntk", width=None, diagonal: bool = False,
            batch_size: int | None = None, get=("nngp", "ntk"),
            order: int = QUADRATURE_ORDER) -> Kernels:
    """NNGP and NTK of the depth-``depth`` network (K-7)–(K-10) between rows of ``x1``
    (n1, d) and ``x2`` (n2, d); ``x2=None`` means ``x1`` against itself (computed once).

    Args:
        depth: number of hidden layers (0 is the linear model ``w x/sqrt(d) + b``).
        activation: a name (relu, leaky_relu, erf, linear, sin, cos in closed form; tanh,
            gelu, softplus by quadrature; any :func:`rfsim.activations.register`-ed one), an
            :class:`~rfsim.activations.Activation`, or any jax-differentiable callable
            (quadrature, derivative by autodiff; theory/activations.md A-5, A-6).
        w_std, b_std: weight and bias scales sigma_w, sigma_b (``b_std=None``: no biases).
        parameterization: "ntk" (default) or "standard" (same NNGP; the NTK needs ``width``).
        width: hidden width(s) for the standard NTK: an int or a list of ``depth`` ints.
        diagonal: return only k(x_i, x_i) (vectors of length n1; ``x2`` must be None).
        batch_size: evaluate in blocks of at most ``batch_size`` rows and columns.
        get: "nngp", "ntk" or both (the NTK costs about twice the NNGP).
        order: polar-quadrature nodes per arc for activations without a closed form (A-6).
    Returns:
        :class:`Kernels` ``(nngp, ntk)`` (``ntk`` None when not asked for).
    Raises:
        ValueError: naming the field, the value and what is allowed, for the arguments
        above and for scales whose recursion leaves the float range (theory/kernels.md
        K-12, "Range"): ``w_std``/``b_std`` not one number or with a square outside the
        dtype's normal range, inputs whose ``||x||^2`` overflows, a depth at which a
        homogeneous activation's variance overflows; and whenever the computed kernel has a
        NaN or inf entry (never returned silently).  Inside ``jit`` only the shapes are
        checked.
    """
    gets = (get,) if isinstance(get, str) else tuple(get)
    if not gets or any(g not in ("nngp", "ntk") for g in gets):
        raise ValueError(f"get must be 'nngp', 'ntk' or both, got {get!r}")
    sigma, x1, x2, q_max, in_dtype = _validate(x1, x2, depth, activation, w_std, b_std,
                                               parameterization, batch_size, order,
                                               want_ntk="ntk" in gets)
    if diagonal and x2 is not None:
        raise ValueError("diagonal=True computes k(x_i, x_i): pass x2=None")
    want_ntk = "ntk" in gets
    standard = parameterization == "standard"
    x1_2d = jnp.atleast_2d(x1)
    dtype = jnp.result_type(x1_2d.dtype, float) if x2 is None else jnp.result_type(
        x1_2d.dtype, x2.dtype, float)
    x1_2d = x1_2d.astype(dtype)
    widths = _resolve_widths(width, depth, x1_2d.shape[-1], standard, want_ntk)
    w = jnp.asarray(w_std, dtype)
    b = jnp.asarray(0.0 if b_std is None else b_std, dtype)
    static = dict(depth=int(depth), sigma=sigma, standard=standard, widths=widths,
                  want_ntk=want_ntk, order=int(order), has_bias=b_std is not None)
    if diagonal:
        K, T = _blocks_diagonal(x1_2d, w, b, static, batch_size)
    else:
        x2_2d = x1_2d if x2 is None else jnp.atleast_2d(x2).astype(dtype)
        K, T = _blocks(x1_2d, x2_2d, x2 is None, w, b, static, batch_size)
    if x1.ndim == 1 and not diagonal:
        K, T = K[0], (None if T is None else T[0])
    if x2 is not None and x2.ndim == 1:
        K, T = K[..., 0], (None if T is None else T[..., 0])
    K = K if "nngp" in gets else None
    for out, what in ((K, "NNGP"), (T, "NTK")):
        _check_output(out, what, depth=int(depth), sigma=sigma, w_std=w_std, b_std=b_std,
                      q_max=q_max, dtype=in_dtype)
    return Kernels(K, T)


def _blocks_diagonal(x, w, b, static, batch_size):
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    parts = [_kernel_block(x[i:i + step], x[i:i + step], w, b, diagonal=True, **static)
             for i in range(0, n, step)]
    K = jnp.concatenate([p[0] for p in parts])
    T = None if parts[0][1] is None else jnp.concatenate([p[1] for p in parts])
    return K, T


def _blocks(x1, x2, symmetric, w, b, static, batch_size):
    n1, n2 = x1.shape[0], x2.shape[0]
    if batch_size is None or (n1 <= batch_size and n2 <= batch_size):
        return _kernel_block(x1, x2, w, b, diagonal=False, same=symmetric, **static)
    rows = range(0, n1, batch_size)
    cols = range(0, n2, batch_size)
    want_ntk = static["want_ntk"]
    K_rows, T_rows = [], []
    cache = {}
    for i in rows:
        K_row, T_row = [], []
        for j in cols:
            if symmetric and j < i:  # computed already as block (j, i): mirror it
                Kb, Tb = cache[(j, i)]
                Kb, Tb = Kb.T, (None if Tb is None else Tb.T)
            else:
                Kb, Tb = _kernel_block(x1[i:i + batch_size], x2[j:j + batch_size], w, b,
                                       diagonal=False, same=symmetric and i == j, **static)
                if symmetric:
                    cache[(i, j)] = (Kb, Tb)
            K_row.append(Kb)
            T_row.append(Tb)
        K_rows.append(jnp.concatenate(K_row, axis=1))
        if want_ntk:
            T_rows.append(jnp.concatenate(T_row, axis=1))
    return jnp.concatenate(K_rows), (jnp.concatenate(T_rows) if want_ntk else None)


def nngp(x1, x2=None, *, depth: int, activation="relu", w_std=1.0, b_std=0.0,
         parameterization: str = "ntk", **options) -> jax.Array:
    """The NNGP kernel (K-8) of the network of :func:`kernels` (same arguments)."""
    return kernels(x1, x2, depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                   parameterization=parameterization, get="nngp", **options).nngp


def ntk(x1, x2=None, *, depth: int, activation="relu", w_std=1.0, b_std=0.0,
        parameterization: str = "ntk", **options) -> jax.Array:
    """The NTK (K-9, or K-10 for ``parameterization="standard"``, which needs ``width``)."""
    return kernels(x1, x2, depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                   parameterization=parameterization, get="ntk", **options).ntk


@partial(jax.jit, static_argnames=("depth", "sigma", "want_ntk", "order"))
def _dot_product(t, w, b, *, depth, sigma, want_ntk, order):
    """The recursion of :func:`dot_product` on a flat ``t``, compiled once per (depth,
    activation, kernel, order): an eager call would retrace its layer loop every time
    (about 140 ms a call, which quadrature of a kernel pays per node)."""
    flat = jnp.clip(t, -1.0, 1.0)
    one = jnp.ones_like(flat)
    # each entry is a 1 x 1 block: qx = qy = 1, c0 = t (vectors, elementwise)
    K, T = _recursion(one, one, flat, depth=depth, sigma=sigma, w=w, b=b, standard=False,
                      widths=None, want_ntk=want_ntk, order=order, diagonal=True,
                      same=False, c_override=True)
    return T if want_ntk else K


def dot_product(t, *, depth: int, activation="relu", w_std=1.0, b_std=0.0,
                parameterization: str = "ntk", width=None, get: str = "ntk",
                order: int = QUADRATURE_ORDER) -> jax.Array:
    """The NNGP or NTK (``get``) of :func:`kernels` as a function of ``t = x.x'/d`` for
    inputs with ``||x||^2/d = 1`` (the sphere of radius sqrt(d), K-11 with ``q = 1``):
    elementwise in ``t`` (any shape, values in [-1, 1]); jittable and differentiable.
    ``dot_product(1.0, ...)`` is the kernel's diagonal ``k(x, x)``."""
    if get not in ("nngp", "ntk"):
        raise ValueError(f"get must be 'nngp' or 'ntk', got {get!r}")
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    # inputs on the sphere: ||x||^2/d = 1 (the growth check runs at q = 1)
    sigma, _, _, _, dtype = _validate(np.ones((1, 1), t.dtype), None, depth, activation,
                                      w_std, b_std, parameterization, None, order,
                                      want_ntk=get == "ntk")
    standard = parameterization == "standard"
    want_ntk = get == "ntk"
    widths = _resolve_widths(width, depth, 1, standard, want_ntk)
    if widths is not None:
        raise ValueError("dot_product does not take the standard parameterization's NTK "
                         "(it depends on d through x.x' = d t): use kernels() on the inputs")
    w = jnp.asarray(w_std, t.dtype)
    b = None if b_std is None else jnp.asarray(b_std, t.dtype)
    out = _dot_product(t.reshape(-1), w, b, depth=int(depth), sigma=sigma,
                       want_ntk=want_ntk, order=int(order))
    _check_output(out, get.upper(), depth=int(depth), sigma=sigma, w_std=w_std, b_std=b_std,
                  q_max=1.0, dtype=dtype)
    return out.reshape(t.shape)
