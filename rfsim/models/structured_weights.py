r"""Model family ``structured-weights``: beyond i.i.d. weights, orthogonal, low-rank and
sparse hidden layers give the same NNGP (Nait-Saada, Naderi, Tanner 2023, arXiv:2310.16597;
theory/signal_propagation.md §5, SP-10 – SP-12).

One seed: ``n_inputs`` inputs uniform on the sphere of radius sqrt(d) and a network of
``depth`` hidden layers of ``width`` units in the conventions of theory/kernels.md (K-7),
``h^1 = (w_std/sqrt d) W^1 x + b_std b^1``, ``h^{l+1} = (w_std/sqrt n) W^{l+1} phi(h^l) +
b_std b^{l+1}``, whose hidden-to-hidden matrices ``W^2 ... W^depth`` (``width x width``) are
of one ``kind`` (SP-10), each normalized so that its entries have mean 0 and variance 1:

* ``iid``: ``W_ij ~ N(0, 1)``;
* ``orthogonal``: ``W = sqrt(n) Q``, ``Q`` Haar on O(n) (:func:`rfsim.features.haar_orthogonal`);
* ``low_rank``: ``W = U V^T / sqrt(r)``, ``U, V`` of shape ``(n, r)`` with N(0, 1) entries,
  ``r = max(1, round(rank_fraction * width))`` (static).  The pseudo-iid conditions of the
  paper need the rank to grow with the width (a fixed rank leaves a random, rank-``r``
  covariance in every layer and no GP limit), hence a fraction of the width, 1/4 by default;
* ``sparse``: ``W_ij = m_ij G_ij / sqrt(p)``, ``m_ij ~ Bernoulli(p)`` (``p = density``),
  ``G_ij ~ N(0, 1)``.

The first layer is i.i.d. for every kind: its fan-in ``d`` stays fixed as the width grows,
so a sparse or low-rank input layer would keep non-Gaussian pre-activations (a Gaussian scale
mixture over the mask) at any width, outside the paper's setting.  Biases are i.i.d. N(0, 1).

Metric ``nngp_error = ||K_cond - v K||_F / ||v K||_F``: ``K_cond = w_std^2 phi(h^L)
phi(h^L)^T / n + b_std^2`` is the output covariance given the hidden layers (the readout's
weights alone random) and ``K`` the closed-form NNGP (K-8) of
:func:`rfsim.theory.kernels.nngp` with the weight variance multiplied by the kind's factor
``variance_factor`` (SP-11; 1 for all four kinds with the normalizations above, so ``v K``
means the NNGP at ``w_std * sqrt(variance_factor)``).  Like ``mlp-kernel``'s, the error is
a fluctuation of mean ``O(width^{-1/2})`` (SP-12): the checks are rates in width.  A wrong
``variance_factor`` leaves an error that does not shrink (slope ~0: the twin).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rfsim.activations import ACTIVATIONS, get_activation
from rfsim.config import model_config, static
from rfsim.features import haar_orthogonal, sphere_inputs
from rfsim.models import register
from rfsim.models._scales import relative_frobenius, require_network_scales, working_set
from rfsim.theory.kernels import nngp
from rfsim.validation import closest, require, require_int, require_nonnegative

KINDS = ("iid", "orthogonal", "low_rank", "sparse")
# every hidden layer is drawn and applied unrolled: experiments/structured_weights_nngp.toml at
# depth 100 (4 kinds x widths 64-256, 4 seeds) took 843 s and 6 GB; capped where a run stays
# about a minute
MAX_DEPTH = 32


@model_config
class StructuredWeightsConfig:
    width: int = static(doc="hidden width n (every hidden layer)")
    kind: str = static("iid", doc="hidden weights: iid, orthogonal, low_rank or sparse")
    depth: int = static(2, doc="hidden layers (>= 2: layers 2..depth are structured)")
    activation: str = static("relu", doc="relu, erf, tanh, gelu, linear, ...")
    n_inputs: int = static(16, doc="inputs per seed (uniform on the sphere of radius sqrt(d))")
    d: int = static(8, doc="input dimension")
    w_std: float = static(1.4142135623730951, doc="weight scale sigma_w")
    b_std: float = static(0.1, doc="bias scale sigma_b")
    rank_fraction: float = static(0.25, doc="low_rank: r = max(1, round(rank_fraction * "
                                  "width)), in (0, 1]")
    density: float = static(0.5, doc="sparse: probability p that an entry is kept, in (0, 1]")
    variance_factor: float = static(1.0, doc="the NNGP is evaluated at weight variance "
                                    "variance_factor * w_std^2 (1 for every kind here)")

    def validate(self):
        require_int("width", self.width)
        require_int("depth", self.depth, minimum=2)
        if self.depth > MAX_DEPTH:
            raise ValueError(f"depth must be <= {MAX_DEPTH} (the network is unrolled layer by "
                             f"layer: compilation and memory grow with depth, and depth 100 "
                             f"took minutes per width), got {self.depth}")
        require_int("n_inputs", self.n_inputs, minimum=2)
        require_int("d", self.d)
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}"
                             + closest(str(self.kind), KINDS))
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}{closest(str(self.activation), ACTIVATIONS)}")
        require("w_std", self.w_std, lambda a: a > 0, "> 0")
        require_nonnegative("b_std", self.b_std)
        require("rank_fraction", self.rank_fraction, lambda a: (a > 0) & (a <= 1), "in (0, 1]")
        require("density", self.density, lambda a: (a > 0) & (a <= 1), "in (0, 1]")
        require("variance_factor", self.variance_factor, lambda a: a > 0, "> 0")
        for name, default, kind in (("rank_fraction", 0.25, "low_rank"),
                                    ("density", 0.5, "sparse")):
            value = getattr(self, name)
            if self.kind != kind and float(value) != default:
                raise ValueError(f"{name} is used only with kind = {kind!r}; got {name} = "
                                 f"{value!r} with kind = {self.kind!r}: remove it")
        # the network forms w_std^2 ||x||^2/d and b_std^2; the NNGP it is compared with is
        # evaluated at w_std sqrt(variance_factor): both must stay in range
        require_network_scales(w_std=self.w_std, b_std=self.b_std, depth=self.depth,
                               activation=self.activation, gets=("nngp",),
                               family="the network")
        try:
            require_network_scales(w_std=float(self.w_std) * math.sqrt(float(
                self.variance_factor)), b_std=self.b_std, depth=self.depth,
                activation=self.activation, gets=("nngp",))
        except ValueError as e:
            raise ValueError(f"variance_factor must keep the compared NNGP, evaluated at "
                             f"w_std sqrt(variance_factor), in range, got variance_factor = "
                             f"{float(self.variance_factor):g} ({e})") from None

    @property
    def rank(self) -> int:
        return max(1, round(self.rank_fraction * self.width))


def hidden_weights(key: jax.Array, cfg: StructuredWeightsConfig, dtype=None) -> jax.Array:
    """One ``width x width`` hidden matrix of ``cfg.kind`` with unit-variance entries (SP-10)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    n = cfg.width
    if cfg.kind == "iid":
        return jax.random.normal(key, (n, n), dtype)
    if cfg.kind == "orthogonal":
        return math.sqrt(n) * haar_orthogonal(key, n, dtype)
    if cfg.kind == "low_rank":
        k_u, k_v = jax.random.split(key)
        r = cfg.rank
        U = jax.random.normal(k_u, (n, r), dtype)
        V = jax.random.normal(k_v, (n, r), dtype)
        return (U @ V.T) / math.sqrt(r)
    k_m, k_g = jax.random.split(key)
    p = float(cfg.density)
    mask = jax.random.bernoulli(k_m, p, (n, n))
    return jnp.where(mask, jax.random.normal(k_g, (n, n), dtype), 0.0) / math.sqrt(p)


def conditional_nngp(key: jax.Array, cfg: StructuredWeightsConfig, x: jax.Array):
    """``w^2 phi(h^L) phi(h^L)^T / n + b^2`` of one network drawn from ``key``."""
    sigma = get_activation(cfg.activation)
    dtype = x.dtype
    w, b, n = float(cfg.w_std), float(cfg.b_std), cfg.width
    keys = jax.random.split(key, 2 * cfg.depth)
    W1 = jax.random.normal(keys[0], (n, cfg.d), dtype)
    h = (w / math.sqrt(cfg.d)) * (x @ W1.T) + b * jax.random.normal(keys[1], (n,), dtype)
    for l in range(1, cfg.depth):
        W = hidden_weights(keys[2 * l], cfg, dtype)
        h = (w / math.sqrt(n)) * (sigma(h) @ W.T) + b * jax.random.normal(keys[2 * l + 1],
                                                                         (n,), dtype)
    a = sigma(h)
    return (w * w) * (a @ a.T) / n + b * b


def simulate(key: jax.Array, cfg: StructuredWeightsConfig) -> dict[str, jax.Array]:
    """One network on one draw of inputs: the relative Frobenius error of its conditional
    NNGP against the closed form (SP-12)."""
    k_x, k_w = jax.random.split(key)
    x = sphere_inputs(k_x, cfg.n_inputs, cfg.d)
    K_cond = conditional_nngp(k_w, cfg, x)
    limit = nngp(x, depth=cfg.depth, activation=cfg.activation,
                 w_std=float(cfg.w_std) * math.sqrt(float(cfg.variance_factor)),
                 b_std=float(cfg.b_std))
    return {"nngp_error": relative_frobenius(K_cond, limit)}


def memory(cfg: StructuredWeightsConfig) -> int:
    """One seed's peak working set (floats): a hidden matrix
    being drawn (2 width^2: the draw and its product or factorization; 3 for sparse: the
    mask, the Gaussian entries and the product), the first layer, the activations
    (3 n_inputs width (depth + 1)) and the n_inputs x n_inputs kernels ((depth + 4) n_inputs^2)."""
    w, n = cfg.width, cfg.n_inputs
    c = 3 if cfg.kind == "sparse" else 2
    return working_set(c * w * w + 2 * w * cfg.d + 3 * n * w * (cfg.depth + 1)
                    + (cfg.depth + 4) * n * n)


MODEL = register(
    "structured-weights",
    StructuredWeightsConfig,
    simulate,
    None,
    metrics=("nngp_error",),
    description="conditional NNGP of networks with orthogonal / low-rank / sparse hidden "
    "weights vs the i.i.d. closed form (Nait-Saada, Naderi, Tanner 2023)",
    memory=memory,
)
