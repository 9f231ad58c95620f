"""Empirical NTK and NNGP of finite networks (any ``apply_fn``, flax models included).

Networks
--------
The fully connected network is :func:`rfsim.networks.mlp` (theory/networks.md N-1 = K-7),
re-exported here with ``MLP``, ``MLPApply``, ``MLPSpec`` and ``PARAMETERIZATIONS``: ``depth``
hidden layers of width ``n`` on inputs of dimension ``d``, scalar readout, ``h^l = c_l
a^{l-1} W^l + beta_l b^l`` with ``(c_l, beta_l) = (w_std/sqrt(n_{l-1}), b_std)`` in the NTK
parameterization and ``(1, 1)`` in the standard one (whose stored weights carry the scale).
``b_std=None`` means no bias parameters at all; ``b_std=0`` keeps them (at zero): in the
standard parameterization they then still contribute to the NTK.

Kernels
-------
* empirical NTK: Theta(x, x') = sum_p df(x)/dp df(x')/dp over all parameters p; for k
  outputs the (n1, n2) kernel is the trace over the output axis divided by k
  (``trace_outputs=False``: the full (n1, n2, k, k) kernel).
* empirical NNGP: f(x) f(x')^T / k (outer product over outputs, averaged); its mean over
  initializations (``monte_carlo_kernels``) is the NNGP.
* conditional NNGP (``mlp`` only): the output covariance with only the readout layer
  random, w_std^2 a^L(x).a^L(x') / n_L + b_std^2.  At width n it is within O(n^{-1/2}) of
  the infinite-width NNGP from a single initialization.

Implementations of the empirical NTK
------------------------------------
* ``"jacobian"``: per-example Jacobians (vmapped ``jax.jacrev``) contracted leaf by leaf;
  memory (n1 + n2) k P.
* ``"ntvp"``: NTK-vector products: for each column x'_j and output b the cotangent
  e_b gives J(x'_j)^T e_b (``jax.vjp``), then J(x1) of it (``jax.linearize``); columns
  go through ``lax.map`` in chunks so that the tangents fit in memory.
* ``"structured"`` (networks from ``mlp``): the gradient with respect to a dense weight
  matrix is an outer product, dh^l/dW^l = c_l delta_l a_{l-1}^T with delta_l = df/dh^l, so

      Theta(x, x') = sum_l (delta_l(x).delta_l(x')) (c_l^2 a_{l-1}(x).a_{l-1}(x') + beta_l^2)

  with delta_{L+1} = 1, delta_l = phi'(h^l) * c_{l+1} (W^{l+1} delta_{l+1}) and (c_l, beta_l)
  of the network above (beta_l = 0 without biases).  Two matmuls per layer on the batch of
  activations and backward vectors: this is the fast path.  When x2 is None only the
  upper triangle of row blocks is contracted.  (Depth 1, width 1024, d = 100, 1000 inputs,
  float64: about 0.1 s on 2 CPU cores, bound by the two 1000 x 1024 x 1000 Gram products.)
* ``"auto"``: structured for ``mlp`` networks, else jacobian when the Jacobians fit in
  1 GiB, else ntvp.

``batch_size`` evaluates the kernel in blocks of that many rows and columns (the upper
triangle only when x2 is None); the result equals the unbatched kernel to round-off.
Everything is float64 when the caller enabled x64 (and passes float64 data), else float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rfsim.activations import Activation
from rfsim.networks import (
    MLP,
    PARAMETERIZATIONS,
    MLPApply,
    MLPSpec,
    draw,
    hidden_layers,
    layer_scales,
    mlp,
    mlp_spec,
)
from rfsim.theory.kernels import Kernels
from rfsim.validation import closest, is_concrete, requested_dtype, require_int

__all__ = [
    "IMPLEMENTATIONS",
    "PARAMETERIZATIONS",
    "Kernels",
    "MLP",
    "MLPApply",
    "MLPSpec",
    "MonteCarloKernels",
    "conditional_nngp",
    "empirical_kernels",
    "empirical_nngp",
    "empirical_ntk",
    "from_linen",
    "from_nnx",
    "mlp",
    "monte_carlo_kernels",
]

IMPLEMENTATIONS = ("auto", "jacobian", "ntvp", "structured")
_JACOBIAN_BYTES = 1 << 30  # "auto" takes per-example Jacobians when they fit in this
_NTVP_BYTES = 1 << 28  # "ntvp" maps over columns in chunks whose tangents fit in this
_MC_BYTES = 1 << 28  # monte_carlo_kernels vmaps over as many seeds as fit in this


def _coefficients(spec: MLPSpec) -> tuple[list[float], list[float]]:
    """(c_l^2, beta_l^2) per layer: what the weight and the bias gradients contribute."""
    pairs = layer_scales(spec)
    return [c * c for c, _ in pairs], [0.0 if spec.b_std is None else b * b for _, b in pairs]


def _features(spec: MLPSpec, Ws, bs, x):
    """f(x), forward activations a_0 .. a_L and backward vectors delta_1 .. delta_L."""
    f, acts, slopes = hidden_layers(spec, Ws, bs, x, slopes=True)
    scales = [c for c, _ in layer_scales(spec)]
    deltas = [None] * spec.depth
    for l in reversed(range(spec.depth)):
        W = Ws[l + 1]
        back = W[:, 0][None, :] if l == spec.depth - 1 else deltas[l + 1] @ W.T
        deltas[l] = slopes[l] * (scales[l + 1] * back)
    return f, acts, deltas


def _contract(spec: MLPSpec, feats1, feats2) -> jax.Array:
    """sum_l (delta_l delta_l'^T) * (c_l^2 a_{l-1} a_{l-1}'^T + beta_l^2): the structured NTK."""
    _, a1, d1 = feats1
    _, a2, d2 = feats2
    cw, cb = _coefficients(spec)
    L = spec.depth
    K = cw[L] * (a1[L] @ a2[L].T) + cb[L]
    for l in range(L):
        K = K + (d1[l] @ d2[l].T) * (cw[l] * (a1[l] @ a2[l].T) + cb[l])
    return K


_TRIANGLE_ROWS = 320  # symmetric kernels: row blocks of about this size, upper triangle only


def _symmetric(contract, feats) -> jax.Array:
    """``contract(feats, feats)``, exactly symmetric, evaluating the upper triangle of row
    blocks only (XLA has no symmetric rank-k update: this saves up to half the flops)."""
    n = feats[1][0].shape[0]
    m = min(8, max(1, n // _TRIANGLE_ROWS))
    edges = [round(i * n / m) for i in range(m + 1)]
    part = [jax.tree.map(lambda a, i=i: a[edges[i]:edges[i + 1]], feats) for i in range(m)]
    grid = [[None] * m for _ in range(m)]
    for i in range(m):
        K = contract(part[i], part[i])
        grid[i][i] = 0.5 * (K + K.T)
        for j in range(i + 1, m):
            grid[i][j] = contract(part[i], part[j])
            grid[j][i] = grid[i][j].T
    return grid[0][0] if m == 1 else jnp.block(grid)


def _conditional(spec: MLPSpec, feats1, feats2) -> jax.Array:
    b2 = 0.0 if spec.b_std is None else spec.b_std**2
    aL1, aL2 = feats1[1][-1], feats2[1][-1]
    return spec.w_std**2 * (aL1 @ aL2.T) / aL1.shape[1] + b2


def from_nnx(module: nnx.Module) -> tuple[Callable, nnx.State]:
    """``(apply_fn, params)`` of a flax.nnx Module: the kernels differentiate with respect to
    its ``nnx.Param`` variables; any other state is held fixed."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    def apply_fn(p, x):
        return nnx.merge(graphdef, p, rest)(x)

    return apply_fn, params


def from_linen(model, variables) -> tuple[Callable, Any]:
    """``(apply_fn, params)`` of a flax.linen Module and its variables: the kernels
    differentiate with respect to ``variables["params"]``; other collections are fixed.
    (``model.apply`` with the whole ``variables`` also works, differentiating them all.)"""
    if "params" not in variables:
        raise ValueError(f"variables must hold a 'params' collection, got collections "
                         f"{sorted(variables)}")
    rest = {k: v for k, v in variables.items() if k != "params"}

    def apply_fn(p, x):
        return model.apply({"params": p, **rest}, x)

    return apply_fn, variables["params"]


# --------------------------------------------------------------------------- validation


def _check_scale_of_inputs(name: str, x) -> None:
    """Every row's ``||x||^2`` (formed by the first layer and by the kernel's x.x') must not
    overflow ``x``'s dtype: an input scaled by 1e200 gave a kernel of NaN and inf."""
    arr = np.abs(np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1))
    m = arr.max(-1)
    safe = np.where(m > 0, m, 1.0)
    with np.errstate(divide="ignore"):
        logs = np.where(m > 0, 2 * np.log(safe) + np.log(np.sum((arr / safe[:, None]) ** 2, -1)),
                        -np.inf)
    fmax = float(jnp.finfo(x.dtype).max)
    i = int(np.argmax(logs))
    if logs[i] > math.log(fmax):
        raise ValueError(f"{name} must have every ||x||^2 <= {fmax:.3g} (the "
                         f"{np.dtype(x.dtype).name} maximum: the network and the kernel form "
                         f"x.x'), got ||{name}[{i}]||^2 = 1e{logs[i] / math.log(10):.1f}; "
                         "rescale the inputs")


def _check_output(what: str, K, x1, x2) -> jax.Array:
    """Never return a non-finite kernel silently (concrete results only)."""
    if is_concrete(K):
        bad = int(jnp.sum(~jnp.isfinite(K)))
        if bad:
            scale = max(float(jnp.max(jnp.abs(x))) for x in (x1, x1 if x2 is None else x2))
            raise ValueError(
                f"the {what} is not finite ({bad} NaN or infinite entr"
                f"{'y' if bad == 1 else 'ies'}) for inputs of max |x| = {scale:.3g}: a "
                f"layer's activations or gradients left the {np.dtype(K.dtype).name} range; "
                "the inputs, w_std, b_std and depth must keep them in it")
    return K


def _check_x(name: str, x, spec: MLPSpec | None) -> jax.Array:
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.integer):
        x = x.astype(jnp.result_type(float))
    elif not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a real array, got dtype {x.dtype}")
    if spec is not None and x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) with d={spec.d}, got shape {x.shape}")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, ...) with n >= 1, got shape {x.shape}")
    if spec is not None and x.shape[1] != spec.d:
        raise ValueError(f"{name} has input dimension {x.shape[1]}, but the network was "
                         f"built for d={spec.d}")
    if is_concrete(x):
        bad = ~np.isfinite(np.asarray(x))
        if bad.any():
            idx = tuple(int(i[0]) for i in np.nonzero(bad))
            raise ValueError(f"{name} must be finite, got {np.asarray(x)[idx]} at "
                             f"{name}[{', '.join(map(str, idx))}]")
        _check_scale_of_inputs(name, x)
    return x


def _check_inputs(x1, x2, spec: MLPSpec | None):
    x1 = _check_x("x1", x1, spec)
    if x2 is None:
        return x1, None
    x2 = _check_x("x2", x2, spec)
    if x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"x2 has input shape {x2.shape[1:]} per example, but x1 has "
                         f"{x1.shape[1:]}")
    return x1, x2


def _check_batch_size(batch_size):
    if batch_size is not None:
        require_int("batch_size", batch_size, 1)


def _mlp_spec_of(apply_fn) -> MLPSpec | None:
    return apply_fn.spec if isinstance(apply_fn, MLPApply) else None


def _require_mlp(apply_fn, what: str) -> MLPSpec:
    spec = _mlp_spec_of(apply_fn)
    if spec is None:
        raise ValueError(f"apply_fn must come from rfsim.networks.mlp for {what}, got "
                         f"{apply_fn!r}")
    return spec


# --------------------------------------------------------------------------- cores


def _outputs2d(y) -> jax.Array:
    """Outputs as (n, k): (n,) -> (n, 1); (n, ...) flattened."""
    if y.ndim == 0:
        raise ValueError("apply_fn must return one output row per input (shape (n,) or "
                         f"(n, k)), got shape {y.shape}")
    return y.reshape(y.shape[0], -1)


def _finish(K, k: int, trace: bool, symmetric: bool):
    """(n1, n2, k, k) or traced (n1, n2) kernel; symmetrized when x2 was None."""
    if trace:
        K = K / k
        return 0.5 * (K + K.T) if symmetric else K
    return 0.5 * (K + K.transpose(1, 0, 3, 2)) if symmetric else K


def _on_features(contract, symmetric, apply_fn: MLPApply, params, x1, x2):
    """``contract(spec, feats(x1), feats(x2))`` of an ``mlp`` network; when x2 is None,
    ``symmetric(contract on feats(x1) twice, feats(x1))`` (exactly symmetric)."""
    spec = apply_fn.spec
    Ws, bs = apply_fn.arrays(params)
    f1 = _features(spec, Ws, bs, x1)
    if x2 is None:
        return symmetric(partial(contract, spec), f1)
    return contract(spec, f1, _features(spec, Ws, bs, x2))


def _symmetrized(contract, feats) -> jax.Array:
    K = contract(feats, feats)
    return 0.5 * (K + K.T)


_ntk_structured = jax.jit(partial(_on_features, _contract, _symmetric), static_argnums=0)


def _per_example_jacobians(apply_fn, params, x):
    """Leaves of shape (n, k, size): d f_a(x_i) / d p for every leaf p."""
    def single(p, xi):
        return _outputs2d(apply_fn(p, xi[None]))[0]

    jac = jax.vmap(jax.jacrev(single), in_axes=(None, 0))(params, x)
    return [leaf.reshape(leaf.shape[0], leaf.shape[1], -1) for leaf in jax.tree.leaves(jac)]


@partial(jax.jit, static_argnums=(0, 4))
def _ntk_jacobian(apply_fn, params, x1, x2, trace: bool):
    j1 = _per_example_jacobians(apply_fn, params, x1)
    j2 = j1 if x2 is None else _per_example_jacobians(apply_fn, params, x2)
    k = j1[0].shape[1]
    if trace:
        K = sum(a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T for a, b in zip(j1, j2))
    else:
        K = sum(jnp.einsum("iap,jbp->ijab", a, b) for a, b in zip(j1, j2))
    return _finish(K, k, trace, x2 is None)


@partial(jax.jit, static_argnums=(0, 4, 5))
def _ntk_ntvp(apply_fn, params, x1, x2, trace: bool, chunk: int):
    symmetric = x2 is None
    y1, jvp1 = jax.linearize(lambda p: _outputs2d(apply_fn(p, x1)), params)
    k = y1.shape[1]

    def column(xj):  # J(x1) J(xj)^T e_b for every output b: (k_b, n1, k_a)
        yj, vjp_j = jax.vjp(lambda p: _outputs2d(apply_fn(p, xj[None]))[0], params)
        return jax.vmap(lambda e: jvp1(vjp_j(e)[0]))(jnp.eye(k, dtype=yj.dtype))

    cols = jax.lax.map(column, x1 if symmetric else x2, batch_size=chunk)  # (n2, kb, n1, ka)
    if trace:
        K = jnp.diagonal(cols, axis1=1, axis2=3).sum(-1).T
    else:
        K = cols.transpose(2, 0, 3, 1)
    return _finish(K, k, trace, symmetric)


def _n_params(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def _n_outputs(apply_fn, params, x1) -> tuple[int, int]:
    """(k, itemsize) of apply_fn's outputs, from shapes only."""
    out = jax.eval_shape(apply_fn, params, x1[:1])
    return int(np.prod(out.shape[1:], dtype=int)), np.dtype(out.dtype).itemsize


def _blocked(kernel, x1, x2, bs: int, trace: bool):
    """``kernel(xa, xb)`` (xb None: symmetric) over blocks of ``bs`` rows and columns,
    padding the last block with copies of the first input; upper triangle only when
    ``x2`` is None."""
    def blocks(x):
        nb = -(-x.shape[0] // bs)
        pad = nb * bs - x.shape[0]
        xp = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x
        return [xp[i * bs:(i + 1) * bs] for i in range(nb)]

    def swap(K):
        return K.T if trace else K.transpose(1, 0, 3, 2)

    b1 = blocks(x1)
    if x2 is None:
        grid = [[None] * len(b1) for _ in b1]
        for i, xa in enumerate(b1):
            grid[i][i] = kernel(xa, None)
            for j in range(i + 1, len(b1)):
                grid[i][j] = kernel(xa, b1[j])
                grid[j][i] = swap(grid[i][j])
        n2 = x1.shape[0]
    else:
        grid = [[kernel(xa, xb) for xb in blocks(x2)] for xa in b1]
        n2 = x2.shape[0]
    K = jnp.concatenate([jnp.concatenate(row, axis=1) for row in grid], axis=0)
    return K[: x1.shape[0], :n2]


def _resolve(implementation, apply_fn, params, x1, x2, batch_size) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {list(IMPLEMENTATIONS)}, got "
                         f"{implementation!r}" + closest(implementation, IMPLEMENTATIONS))
    is_mlp = isinstance(apply_fn, MLPApply)
    if implementation == "structured" and not is_mlp:
        raise ValueError("implementation='structured' needs an apply_fn from "
                         f"rfsim.networks.mlp, got {apply_fn!r}; use 'jacobian' or 'ntvp'")
    if implementation != "auto":
        return implementation
    if is_mlp:
        return "structured"
    k, itemsize = _n_outputs(apply_fn, params, x1)
    rows = x1.shape[0] + (0 if x2 is None else x2.shape[0])
    if batch_size is not None:
        rows = min(rows, 2 * batch_size)
    fits = rows * k * _n_params(params) * itemsize <= _JACOBIAN_BYTES
    return "jacobian" if fits else "ntvp"


# --------------------------------------------------------------------------- public kernels


def empirical_ntk(apply_fn, params, x1, x2=None, *, batch_size: int | None = None,
                  implementation: str = "auto", trace_outputs: bool = True) -> jax.Array:
    """Theta(x1, x2) = sum_p df(x1)/dp df(x2)/dp of ``apply_fn(params, x)`` (module docstring).

    x1 (n1, ...), x2 (n2, ...) or None (x2 = x1, computed once, exactly symmetric).
    Returns (n1, n2), averaged over outputs; (n1, n2, k, k) with ``trace_outputs=False``
    (the structured path has k = 1 and always returns (n1, n2)).  ``implementation``:
    'auto', 'jacobian', 'ntvp' or 'structured' (``mlp`` networks only); ``batch_size``
    evaluates blocks of that many rows and columns.
    """
    _check_batch_size(batch_size)
    x1, x2 = _check_inputs(x1, x2, _mlp_spec_of(apply_fn))
    impl = _resolve(implementation, apply_fn, params, x1, x2, batch_size)
    trace = bool(trace_outputs)
    if impl == "structured":
        kernel = partial(_ntk_structured, apply_fn, params)
        trace = True
    elif impl == "jacobian":
        kernel = lambda a, b: _ntk_jacobian(apply_fn, params, a, b, trace)
    else:
        k, itemsize = _n_outputs(apply_fn, params, x1)
        per_column = max(1, k * _n_params(params) * itemsize)
        cols = x1.shape[0] if x2 is None else x2.shape[0]
        if batch_size is not None:
            cols = min(cols, batch_size)
        chunk = int(max(1, min(cols, _NTVP_BYTES // per_column)))
        kernel = lambda a, b: _ntk_ntvp(apply_fn, params, a, b, trace, chunk)
    n = max(x1.shape[0], 0 if x2 is None else x2.shape[0])
    if batch_size is None or batch_size >= n:
        return _check_output("empirical NTK", kernel(x1, x2), x1, x2)
    return _check_output("empirical NTK", _blocked(kernel, x1, x2, batch_size, trace), x1, x2)


@partial(jax.jit, static_argnums=(0, 4))
def _nngp_core(apply_fn, params, x1, x2, trace: bool):
    f1 = _outputs2d(apply_fn(params, x1))
    f2 = f1 if x2 is None else _outputs2d(apply_fn(params, x2))
    if trace:
        return f1 @ f2.T / f1.shape[1]
    return jnp.einsum("ia,jb->ijab", f1, f2)


def empirical_nngp(apply_fn, params, x1, x2=None, *, trace_outputs: bool = True) -> jax.Array:
    """f(x1) f(x2)^T / k for one network (one sample of the NNGP's covariance): (n1, n2);
    ``trace_outputs=False``: the (n1, n2, k, k) outer product."""
    x1, x2 = _check_inputs(x1, x2, _mlp_spec_of(apply_fn))
    return _check_output("empirical NNGP", _nngp_core(apply_fn, params, x1, x2,
                                                      bool(trace_outputs)), x1, x2)


_conditional_core = jax.jit(partial(_on_features, _conditional, _symmetrized), static_argnums=0)


def conditional_nngp(apply_fn: MLPApply, params, x1, x2=None) -> jax.Array:
    """w_std^2 a^L(x1).a^L(x2) / n_L + b_std^2 for an ``mlp`` network: the output covariance
    given the hidden weights (only the readout random).  (n1, n2)."""
    spec = _require_mlp(apply_fn, "conditional_nngp")
    x1, x2 = _check_inputs(x1, x2, spec)
    return _check_output("conditional NNGP", _conditional_core(apply_fn, params, x1, x2), x1,
                         x2)


def empirical_kernels(apply_fn, params, x1, x2=None, *, batch_size: int | None = None,
                      implementation: str = "auto") -> Kernels:
    """Both :func:`empirical_nngp` and :func:`empirical_ntk` (traced over outputs)."""
    ntk = empirical_ntk(apply_fn, params, x1, x2, batch_size=batch_size,
                        implementation=implementation)
    return Kernels(empirical_nngp(apply_fn, params, x1, x2), ntk)


# --------------------------------------------------------------------------- Monte Carlo


class MonteCarloKernels(NamedTuple):
    """Means over initializations and their standard errors, each (n1, n2)."""

    nngp: jax.Array
    nngp_sem: jax.Array
    ntk: jax.Array
    ntk_sem: jax.Array
    conditional_nngp: jax.Array
    conditional_nngp_sem: jax.Array
    n_samples: int


@partial(jax.jit, static_argnums=(0, 4, 5))
def _mc_core(spec: MLPSpec, keys, x1, x2, chunk: int, dtype):
    S = keys.shape[0]
    n_chunks = -(-S // chunk)
    pad = n_chunks * chunk - S
    if pad:
        keys = jnp.concatenate([keys, jnp.repeat(keys[:1], pad, axis=0)])
    keys = keys.reshape((n_chunks, chunk) + keys.shape[1:])
    mask = (jnp.arange(n_chunks * chunk) < S).reshape(n_chunks, chunk).astype(dtype)
    x1 = x1.astype(jnp.result_type(x1.dtype, dtype))
    x2 = None if x2 is None else x2.astype(x1.dtype)

    def one(key):
        Ws, bs = draw(key, spec, dtype)
        f1 = _features(spec, Ws, bs, x1)
        f2 = f1 if x2 is None else _features(spec, Ws, bs, x2)
        K = jnp.stack([jnp.outer(f1[0], f2[0]), _contract(spec, f1, f2),
                       _conditional(spec, f1, f2)])
        return 0.5 * (K + K.transpose(0, 2, 1)) if x2 is None else K

    def step(carry, inp):  # Chan et al.'s pairwise update of (count, mean, M2)
        n_a, mean_a, m2_a = carry
        ks, m = inp
        v = jax.vmap(one)(ks)
        w = m[:, None, None, None]
        n_b = m.sum()
        mean_b = (w * v).sum(0) / n_b
        m2_b = (w * (v - mean_b) ** 2).sum(0)
        n = n_a + n_b
        delta = mean_b - mean_a
        return (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)), None

    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    zero = jnp.zeros((3, x1.shape[0], n2), x1.dtype)
    (_, mean, m2), _ = jax.lax.scan(step, (jnp.zeros((), x1.dtype), zero, zero), (keys, mask))
    sem = jnp.sqrt(m2 / (S - 1) / S)
    return mean, sem


def monte_carlo_kernels(key, x1, x2=None, *, n_samples: int, depth: int, width: int,
                        activation: str | Activation = "relu", w_std: float = 1.0,
                        b_std: float | None = 0.0, parameterization: str = "ntk",
                        chunk_size: int | None = None, dtype=None) -> MonteCarloKernels:
    """NNGP (mean of f(x1) f(x2)^T), NTK (mean of empirical NTKs) and conditional NNGP of
    ``mlp`` networks over ``n_samples`` independent initializations (keys split from
    ``key``), vmapped over seeds in chunks of ``chunk_size`` (default: as many as fit in
    256 MiB), with standard errors of the means.  d is x1's second dimension."""
    x1 = _check_x("x1", x1, None)
    if x1.ndim != 2:
        raise ValueError(f"x1 must have shape (n, d), got shape {x1.shape}")
    spec = mlp_spec(x1.shape[1], depth, width, activation, w_std, b_std, parameterization)
    require_int("n_samples", n_samples, 2)
    if chunk_size is not None:
        require_int("chunk_size", chunk_size, 1)
    dtype = requested_dtype(dtype)
    x1, x2 = _check_inputs(x1, x2, spec)
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    if chunk_size is None:
        itemsize = np.dtype(dtype).itemsize
        per_seed = itemsize * (4 * (n1 + n2) * width * (depth + 1) + 6 * n1 * n2
                               + width * (width * max(depth - 1, 0) + x1.shape[1] + depth + 2))
        chunk_size = max(1, _MC_BYTES // per_seed)
    chunk = int(min(chunk_size, n_samples))
    keys = jax.random.split(key, n_samples)
    mean, sem = _mc_core(spec, keys, x1, x2, chunk, np.dtype(dtype))
    return MonteCarloKernels(mean[0], sem[0], mean[1], sem[1], mean[2], sem[2], int(n_samples))
