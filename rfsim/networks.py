r"""The one network of the package: the multilayer perceptron of theory/kernels.md K-7
(theory/networks.md N-1 – N-6).  Every forward pass in rfsim is this one.

Network (N-1 = K-7).  ``depth`` = L hidden layers of ``width`` = n units on inputs of
dimension d, scalar readout; with n_0 = d, a^0 = x:

.. math::

    h^l = c_l\, a^{l-1} W^l + \beta_l\, b^l,\qquad a^l = \phi(h^l),\qquad f = h^{L+1},

weights stored ``(fan_in, fan_out)``.  ``parameterization="ntk"``: every stored entry
N(0, 1), ``c_l = w_std/sqrt(n_{l-1})``, ``beta_l = b_std``; ``"standard"``: stored
``W ~ N(0, w_std^2/n_{l-1})``, ``b ~ N(0, b_std^2)`` and ``c_l = beta_l = 1`` (the same
function at initialization, other gradients).  ``b_std=None``: no bias parameters.

Hidden-weight kinds (N-2 = SP-10), each with unit-variance entries before the scale ``c_l``:
``iid`` (N(0, 1)), ``orthogonal`` (``sqrt(n) Q``, Q Haar), ``low_rank`` (``U V^T/sqrt(r)``),
``sparse`` (``m G/sqrt(p)``, m ~ Bernoulli(p)).  They apply to the hidden-to-hidden
matrices W^2 .. W^L; the input layer, the readout and the biases are i.i.d.

Drivers of the one layer :func:`dense`:

* :func:`mlp`: the parameters stored (a flax.nnx Module, trainable with optax; the
  empirical kernels differentiate it), :func:`hidden_layers` / :func:`forward`;
* :func:`propagate`: a frozen network whose layer l is drawn from ``fold_in(key, l)`` inside a
  ``lax.scan`` (memory one ``width^2`` matrix at any depth: signal propagation at depth 1000);
* :func:`deep_weights`: the frozen layers of deep random features (DRF-1, applied by
  :func:`rfsim.features.deep_random_features`).

Architecture fields of the model configs (``width, depth, activation, w_std, b_std``,
``parameterization``) are declared once (:func:`arch_field`) and validated once
(:func:`check_architecture`).

Example::

    >>> import jax, jax.numpy as jnp
    >>> from rfsim.networks import mlp
    >>> apply_fn, params = mlp(jax.random.key(0), 3, depth=2, width=16, kind="orthogonal")
    >>> apply_fn(params, jnp.ones((4, 3))).shape
    (4,)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rfsim.activations import ACTIVATIONS, Activation, get_activation
from rfsim.config import param, static
from rfsim.theory.kernels import PARAMETERIZATIONS
from rfsim.validation import (
    MAX_SIZE,
    closest,
    float64_hint,
    float_dtype,
    requested_dtype,
    require,
    require_choice,
    require_int,
    require_nonnegative,
)

__all__ = [
    "MLP",
    "MLPApply",
    "MLPSpec",
    "MAX_UNROLLED_DEPTH",
    "PARAMETERIZATIONS",
    "WEIGHT_KINDS",
    "arch_field",
    "check_architecture",
    "deep_weights",
    "dense",
    "draw",
    "forward",
    "gaussian_weights",
    "haar_orthogonal",
    "hidden_layers",
    "hidden_weights",
    "layer_scales",
    "mlp",
    "mlp_spec",
    "propagate",
]

WEIGHT_KINDS = ("iid", "orthogonal", "low_rank", "sparse")
#: families that build :func:`mlp` unroll it layer by layer: the --quick grids of
#: experiments/mlp_kernel_width.toml and structured_weights_nngp.toml took 387 s and 843 s
#: (6 GB) at depth 100 on 2 CPU cores, 49 s at depth 30; the cap keeps a run about a minute
MAX_UNROLLED_DEPTH = 32
UNROLLED = ("the network is unrolled layer by layer: compilation and memory grow with depth, "
            "and depth 100 took minutes per width")


# --------------------------------------------------------------------------- weight samplers


def gaussian_weights(key, n_features: int, d: int, dtype=None) -> jax.Array:
    """W in R^{N x d} with i.i.d. entries W_ij ~ N(0, 1)."""
    require_int("n_features", n_features)
    require_int("d", d)
    return jax.random.normal(key, (int(n_features), int(d)), requested_dtype(dtype))


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
    require_int("d", d)
    return _haar_core(key, int(d), requested_dtype(dtype))


def deep_weights(key, d: int, widths: Sequence[int], dtype=None) -> list[jax.Array]:
    """Gaussian W_l in R^{k_l x k_{l-1}}, l = 1..L, with k_0 = d and widths = (k_1..k_L)
    (DRF-1, theory/deep_random_features.md).

    Layer l uses key ``fold_in(key, l)``, so adding layers leaves earlier ones unchanged.
    """
    require_int("d", d)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise ValueError(f"widths must be a non-empty sequence of integers >= 1, got {widths!r}")
    for i, k in enumerate(widths):
        require_int(f"widths[{i}]", k)
    ks = [int(d)] + [int(k) for k in widths]
    return [gaussian_weights(jax.random.fold_in(key, l), ks[l], ks[l - 1], dtype)
            for l in range(1, len(ks))]


def hidden_weights(key, n: int, kind: str = "iid", *, rank: int = 1, density: float = 1.0,
                   dtype=None) -> jax.Array:
    """One ``n x n`` hidden matrix of ``kind`` with mean-0, variance-1 entries (N-2 = SP-10):
    iid ``N(0, 1)``; orthogonal ``sqrt(n) Q``, Q Haar; low_rank ``U V^T / sqrt(rank)``, U, V
    ``(n, rank)`` N(0, 1); sparse ``m G / sqrt(density)``, m ~ Bernoulli(density)."""
    dtype = requested_dtype(dtype)
    if kind == "iid":
        return jax.random.normal(key, (n, n), dtype)
    if kind == "orthogonal":
        return math.sqrt(n) * _sign_fixed_qr(jax.random.normal(key, (n, n), dtype))
    if kind == "low_rank":
        k_u, k_v = jax.random.split(key)
        U = jax.random.normal(k_u, (n, rank), dtype)
        V = jax.random.normal(k_v, (n, rank), dtype)
        return (U @ V.T) / math.sqrt(rank)
    if kind == "sparse":
        k_m, k_g = jax.random.split(key)
        mask = jax.random.bernoulli(k_m, density, (n, n))
        return jnp.where(mask, jax.random.normal(k_g, (n, n), dtype), 0.0) / math.sqrt(density)
    raise ValueError(f"kind must be one of {list(WEIGHT_KINDS)}, got {kind!r}"
                     + closest(str(kind), WEIGHT_KINDS))


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class MLPSpec:
    """The architecture of an :func:`mlp` network (hashable: a static jit argument)."""

    d: int
    depth: int
    width: int
    activation: Activation
    w_std: float
    b_std: float | None
    parameterization: str
    kind: str = "iid"
    rank: int = 1
    density: float = 1.0

    @property
    def dims(self) -> tuple[int, ...]:
        """Layer widths n_0 = d, n_1 .. n_L = width, n_{L+1} = 1."""
        return (self.d,) + (self.width,) * self.depth + (1,)

    def scales(self) -> list[float]:
        """The weight multipliers c_l = w_std / sqrt(n_{l-1}), l = 1 .. L+1."""
        return [self.w_std / math.sqrt(n) for n in self.dims[:-1]]


def layer_scales(spec: MLPSpec) -> list[tuple[float, float]]:
    """``(c_l, beta_l)`` of N-1 for l = 1 .. L+1: ``(w_std/sqrt(n_{l-1}), b_std)`` in the NTK
    parameterization, ``(1, 1)`` in the standard one (the scale is in the stored weights)."""
    if spec.parameterization == "standard":
        return [(1.0, 1.0)] * (spec.depth + 1)
    b = 0.0 if spec.b_std is None else spec.b_std
    return [(c, b) for c in spec.scales()]


def _check_scale(name: str, value) -> None:
    """``w_std`` / ``b_std`` >= 0 whose square (the structured NTK's c_l^2, beta_l^2) is 0 or
    a normal number of the active float dtype."""
    dtype = float_dtype()
    require_nonnegative(name, value, dtype)
    fi = jnp.finfo(dtype)
    v = abs(float(value))
    if v * v > float(fi.max) or (v > 0 and v * v < float(fi.tiny)):
        lo, hi = math.sqrt(float(fi.tiny)), math.sqrt(float(fi.max))
        raise ValueError(f"{name} must be 0 or in [{lo:.4g}, {hi:.4g}] (its square must be a "
                         f"normal {np.dtype(dtype).name} number), got {v:g}"
                         + float64_hint(dtype, lead="; or "))


def mlp_spec(d, depth, width, activation="relu", w_std=1.0, b_std=0.0,
             parameterization="ntk", *, kind="iid", rank=1, density=1.0) -> MLPSpec:
    """Validate the architecture (before any compute) and freeze it."""
    require_int("d", d, 1)
    require_int("depth", depth, 0)
    require_int("width", width, 1)
    phi = get_activation(activation)
    _check_scale("w_std", w_std)
    if b_std is not None:
        _check_scale("b_std", b_std)
    require_choice("parameterization", parameterization, PARAMETERIZATIONS)
    require_choice("kind", kind, WEIGHT_KINDS)
    require_int("rank", rank, 1, maximum=int(width))
    require("density", density, lambda p: (p > 0) & (p <= 1), "in (0, 1]")
    return MLPSpec(int(d), int(depth), int(width), phi, float(w_std),
                   None if b_std is None else float(b_std), parameterization, kind, int(rank),
                   float(density))


# --------------------------------------------------------------------------- the layer


def dense(a, W, b, scale, bias_scale) -> jax.Array:
    """One layer of N-1: ``h = scale (a @ W) + bias_scale b`` (``b`` None: no bias)."""
    h = scale * (a @ W)
    return h if b is None else h + bias_scale * b


def hidden_layers(spec: MLPSpec, Ws, bs, x, *, slopes: bool = False):
    """The forward pass of N-1 on stored parameters: ``(f, [a^0 .. a^L], [phi'(h^1) ..
    phi'(h^L)])`` with ``f = h^{L+1}[:, 0]`` of shape (n,); the slopes (by forward-mode
    autodiff of the activation) only when asked, else an empty list."""
    scales = layer_scales(spec)
    acts, ders = [x], []
    a = x
    for l in range(spec.depth):
        h = dense(a, Ws[l], bs[l], *scales[l])
        if slopes:
            a, s = jax.jvp(spec.activation, (h,), (jnp.ones_like(h),))
            ders.append(s)
        else:
            a = spec.activation(h)
        acts.append(a)
    return dense(a, Ws[-1], bs[-1], *scales[-1])[:, 0], acts, ders


def forward(spec: MLPSpec, Ws, bs, x) -> jax.Array:
    """f(x) of N-1, shape (n,), for x of shape (n, d)."""
    return hidden_layers(spec, Ws, bs, x)[0]


def _bucket(n: int) -> int:
    """n rounded up to 2^k, 1.25 2^k, 1.5 2^k or 1.75 2^k (at most 25% more)."""
    if n <= 64:
        return 64
    top = 1 << (n - 1).bit_length()
    return min(b for b in (top // 8 * 5, top // 4 * 3, top // 8 * 7, top) if b >= n)


def _shapes(spec: MLPSpec) -> list[tuple[int, ...]]:
    dims, shapes = spec.dims, []
    for l in range(spec.depth + 1):
        shapes.append((dims[l], dims[l + 1]))
        if spec.b_std is not None:
            shapes.append((dims[l + 1],))
    return shapes


def draw(key, spec: MLPSpec, dtype) -> tuple[list, list]:
    """Initial weights (fan_in, fan_out) and biases of every layer, as stored.

    All i.i.d. parameters come from one draw of standard normals whose length is rounded up
    to a few sizes (``_bucket``): networks of similar size share its compiled threefry
    kernel, by far the slowest part of the initialization to compile.  With a structured
    ``kind``, hidden matrix l (2 <= l <= L) is :func:`hidden_weights` from
    ``fold_in(key, l)`` instead."""
    total = sum(math.prod(s) for s in _shapes(spec))
    Ws, bs = _unpack(spec, jax.random.normal(key, (_bucket(total),), dtype))
    if spec.kind != "iid" and spec.depth > 1:
        # one batched draw over the layers: two separate QRs in one vmapped program ran
        # ~100x slower on CPU (width 256, 6 seeds: > 40 s against 0.8 s batched)
        hidden = jax.vmap(lambda l: hidden_weights(
            jax.random.fold_in(key, l), spec.width, spec.kind, rank=spec.rank,
            density=spec.density, dtype=dtype))(jnp.arange(2, spec.depth + 1))
        for l in range(1, spec.depth):
            W = hidden[l - 1]
            Ws[l] = W * spec.scales()[l] if spec.parameterization == "standard" else W
    return Ws, bs


@partial(jax.jit, static_argnums=0)
def _unpack(spec: MLPSpec, z) -> tuple[list, list]:
    scales = spec.scales()
    standard = spec.parameterization == "standard"
    shapes = _shapes(spec)
    offsets = np.cumsum([0] + [math.prod(s) for s in shapes])
    arrays = [z[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes)]
    Ws, bs = [], []
    for l in range(spec.depth + 1):
        W = arrays.pop(0)
        Ws.append(W * scales[l] if standard else W)
        b = None if spec.b_std is None else arrays.pop(0)
        bs.append(b * spec.b_std if standard and b is not None else b)
    return Ws, bs


# --------------------------------------------------------------------------- flax


class MLP(nnx.Module):
    """The network of :func:`mlp` as a flax.nnx Module: ``MLP(spec, key, dtype)(x)`` is (n,)."""

    def __init__(self, spec: MLPSpec, key, dtype):
        Ws, bs = draw(key, spec, dtype)
        self.spec = spec
        self.kernels = nnx.List([nnx.Param(W) for W in Ws])
        self.biases = None if spec.b_std is None else nnx.List([nnx.Param(b) for b in bs])

    def arrays(self) -> tuple[list, list]:
        """The stored weights (fan_in, fan_out) and biases (None without biases)."""
        Ws = [W[...] for W in self.kernels]
        bs = [None] * len(Ws) if self.biases is None else [b[...] for b in self.biases]
        return Ws, bs

    def __call__(self, x):
        return forward(self.spec, *self.arrays(), x)


@dataclass(frozen=True)
class MLPApply:
    """``apply_fn(params, x) -> (n,)`` of an :func:`mlp` network; carries its architecture,
    which the empirical kernels' structured path and conditional NNGP use."""

    spec: MLPSpec
    graphdef: Any

    def __call__(self, params, x):
        return nnx.merge(self.graphdef, params)(x)

    def arrays(self, params) -> tuple[list, list]:
        return nnx.merge(self.graphdef, params).arrays()


def mlp(key, d: int, *, depth: int, width: int, activation: str | Activation = "relu",
        w_std: float = 1.0, b_std: float | None = 0.0, parameterization: str = "ntk",
        kind: str = "iid", rank: int = 1, density: float = 1.0,
        dtype=None) -> tuple[MLPApply, nnx.State]:
    """The network N-1 initialized from ``key``, hidden matrices of ``kind`` (N-2).

    Returns ``(apply_fn, params)``: ``apply_fn(params, x)`` maps x of shape (n, d) to the
    scalar outputs, shape (n,); ``params`` is the flax.nnx state (a pytree of arrays), which
    optax trains and :mod:`rfsim.empirical_kernels` differentiates.
    """
    spec = mlp_spec(d, depth, width, activation, w_std, b_std, parameterization, kind=kind,
                    rank=rank, density=density)
    graphdef, params = nnx.split(MLP(spec, key, requested_dtype(dtype)))
    return MLPApply(spec, graphdef), params


# ------------------------------------------------------------------ frozen, drawn on the fly


def propagate(key, x, *, depth: int, width: int, activation, w_std, b_std,
              reduce: Callable = lambda h: h, kind: str = "iid", rank: int = 1,
              density: float = 1.0):
    """A frozen N-1 network (NTK scaling, every stored entry unit-variance) applied to ``x``
    (n, d) without storing its weights: layer l (W^l of shape (n_{l-1}, width) and b^l) is
    drawn from ``split(fold_in(key, l))`` inside a ``lax.scan``; hidden matrices l >= 2 are of
    ``kind`` (N-2).  ``w_std``, ``b_std`` may be traced.

    Returns ``(h^L, stacked)`` with ``stacked = reduce(h^l)`` for l = 1 .. depth along a
    leading axis (a pytree of them when ``reduce`` returns one)."""
    sigma = get_activation(activation)
    dtype = x.dtype

    def layer(l, a, fan_in, hidden_kind):
        k_W, k_b = jax.random.split(jax.random.fold_in(key, l))
        if hidden_kind == "iid":
            W = jax.random.normal(k_W, (fan_in, width), dtype)
        else:
            W = hidden_weights(k_W, width, hidden_kind, rank=rank, density=density,
                               dtype=dtype)
        bias = jax.random.normal(k_b, (width,), dtype)
        return dense(a, W, bias, w_std / math.sqrt(fan_in), b_std)

    h = layer(1, x, x.shape[-1], "iid")

    def step(h, l):
        h = layer(l, sigma(h), width, kind)
        return h, reduce(h)

    first = reduce(h)
    h, rest = jax.lax.scan(step, h, jnp.arange(2, depth + 1))
    return h, jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


# --------------------------------------------------------------------------- config fields


ARCH_DOCS = {
    "width": "hidden width n (every hidden layer)",
    "depth": "number of hidden layers L (the readout is added on top)",
    "activation": "an activation of rfsim.activations (relu, erf, tanh, gelu, linear, "
                  "leaky_relu, ...)",
    "parameterization": "'ntk' or 'standard' (theory/networks.md N-1, kernels.md K-10)",
    "w_std": "weight scale sigma_w (N-1)",
    "b_std": "bias scale sigma_b (N-1; biases always present)",
}


def arch_field(name: str, default=dataclasses.MISSING, *, swept: bool = False,
               doc: str = ""):
    """A model config's architecture field ``name`` (N-6), declared once: a static field (a
    parameter swept without recompiling when ``swept``: w_std, b_std of a frozen network)
    with the shared documentation, ``doc`` appended (a family's range or default's reason).
    Validated by :func:`check_architecture`."""
    text = ARCH_DOCS[name] + (f"; {doc}" if doc else "")
    return param(default, doc=text) if swept else static(default, doc=text)


def check_architecture(cfg, *, min_depth: int = 0, max_depth: int = MAX_SIZE,
                       why: str = "") -> None:
    """Validate a model config's architecture fields once (N-6): ``width`` >= 1, ``depth`` in
    ``[min_depth, max_depth]`` (``why``: the reason for the cap), ``activation`` a known name,
    ``parameterization`` (when the config has one), ``w_std > 0``, ``b_std >= 0``.  Each
    error names the field, the value and what is allowed."""
    require_int("width", cfg.width)
    require_int("depth", cfg.depth, minimum=min_depth)
    if cfg.depth > max_depth:
        raise ValueError(f"depth must be <= {max_depth}{f' ({why})' if why else ''}, got "
                         f"{cfg.depth}")
    require_choice("activation", cfg.activation, ACTIVATIONS, listed=sorted(ACTIVATIONS))
    if hasattr(cfg, "parameterization"):
        require_choice("parameterization", cfg.parameterization, PARAMETERIZATIONS)
    require("w_std", cfg.w_std, lambda a: a > 0, "> 0")
    require_nonnegative("b_std", cfg.b_std)
