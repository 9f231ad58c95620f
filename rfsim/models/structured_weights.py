r"""Model family ``structured-weights``: beyond i.i.d. weights, orthogonal, low-rank and
sparse hidden layers give the same NNGP (Nait-Saada, Naderi, Tanner 2023, arXiv:2310.16597;
theory/signal_propagation.md §5, SP-10 – SP-12).

One seed: ``n_inputs`` inputs uniform on the sphere of radius sqrt(d) and a network of
``depth`` hidden layers of ``width`` units in the conventions of theory/kernels.md (K-7),
``h^1 = (w_std/sqrt d) W^1 x + b_std b^1``, ``h^{l+1} = (w_std/sqrt n) W^{l+1} phi(h^l) +
b_std b^{l+1}``, whose hidden-to-hidden matrices ``W^2 ... W^depth`` (``width x width``) are
of one ``kind`` (SP-10), each normalized so that its entries have mean 0 and variance 1:

* ``iid``: ``W_ij ~ N(0, 1)``;
* ``orthogonal``: ``W = sqrt(n) Q``, ``Q`` Haar on O(n) (:func:`rfsim.networks.haar_orthogonal`);
* ``low_rank``: ``W = U V^T / sqrt(r)``, ``U, V`` of shape ``(n, r)`` with N(0, 1) entries,
  ``r = max(1, round(rank_fraction * width))`` (static).  The pseudo-iid conditions of the
  paper need the rank to grow with the width (a fixed rank leaves a random, rank-``r``
  covariance in every layer and no GP limit), hence a fraction of the width, 1/4 by default;
* ``sparse``: ``W_ij = m_ij G_ij / sqrt(p)``, ``m_ij ~ Bernoulli(p)`` (``p = density``),
  ``G_ij ~ N(0, 1)``.

The first layer is i.i.d. for every kind: its fan-in ``d`` stays fixed as the width grows,
so a sparse or low-rank input layer would keep non-Gaussian pre-activations (a Gaussian scale
mixture over the mask) at any width, outside the paper's setting.  Biases are i.i.d. N(0, 1).
The network is :func:`rfsim.networks.mlp` with ``kind`` (theory/networks.md N-2), drawn from
the seed's model key; the inputs from its data key (:func:`rfsim.data.sphere_inputs`).

Metric ``nngp_error = ||K_cond - v K||_F / ||v K||_F``: ``K_cond = w_std^2 phi(h^L)
phi(h^L)^T / n + b_std^2`` is the output covariance given the hidden layers (the readout's
weights alone random; :func:`rfsim.empirical_kernels.conditional_nngp`) and ``K`` the
closed-form NNGP (K-8) of
:func:`rfsim.theory.kernels.nngp` with the weight variance multiplied by the kind's factor
``variance_factor`` (SP-11; 1 for all four kinds with the normalizations above, so ``v K``
means the NNGP at ``w_std * sqrt(variance_factor)``).  Like ``mlp-kernel``'s, the error is
a fluctuation of mean ``O(width^{-1/2})`` (SP-12): the checks are rates in width.  A wrong
``variance_factor`` leaves an error that does not shrink (slope ~0: the twin).
"""

from __future__ import annotations

import math

from rfsim.config import model_config, static
from rfsim.data import data_keys, sphere_inputs
from rfsim.empirical_kernels import conditional_nngp
from rfsim.models import register
from rfsim.models._scales import (
    check_network,
    relative_frobenius,
    require_network_scales,
    working_set,
)
from rfsim.networks import MAX_UNROLLED_DEPTH, UNROLLED, WEIGHT_KINDS, arch_field, mlp
from rfsim.networks import hidden_weights as _hidden_weights
from rfsim.theory.kernels import nngp
from rfsim.validation import require, require_choice, require_int

KINDS = WEIGHT_KINDS
MAX_DEPTH = MAX_UNROLLED_DEPTH


@model_config
class StructuredWeightsConfig:
    width: int = arch_field("width")
    kind: str = static("iid", doc="hidden weights: iid, orthogonal, low_rank or sparse")
    depth: int = arch_field("depth", 2, doc=f"2..{MAX_DEPTH}: layers 2..depth are "
                            "structured")
    activation: str = arch_field("activation", "relu")
    n_inputs: int = static(16, doc="inputs per seed (uniform on the sphere of radius sqrt(d))",
                           data=True)
    d: int = static(8, doc="input dimension", data=True)
    w_std: float = arch_field("w_std", 1.4142135623730951)
    b_std: float = arch_field("b_std", 0.1)
    rank_fraction: float = static(0.25, doc="low_rank: r = max(1, round(rank_fraction * "
                                  "width)), in (0, 1]")
    density: float = static(0.5, doc="sparse: probability p that an entry is kept, in (0, 1]")
    variance_factor: float = static(1.0, doc="the NNGP is evaluated at weight variance "
                                    "variance_factor * w_std^2 (1 for every kind here)")

    def validate(self):
        require_int("n_inputs", self.n_inputs, minimum=2)
        require_int("d", self.d)
        require_choice("kind", self.kind, KINDS)
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
        check_network(self, min_depth=2, max_depth=MAX_DEPTH, why=UNROLLED, gets=("nngp",))
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


def hidden_weights(key, cfg: StructuredWeightsConfig, dtype=None):
    """One ``width x width`` hidden matrix of ``cfg.kind`` with unit-variance entries (SP-10):
    :func:`rfsim.networks.hidden_weights` with the config's rank and density."""
    return _hidden_weights(key, cfg.width, cfg.kind, rank=cfg.rank, density=float(cfg.density),
                          dtype=dtype)


def simulate(keys, cfg: StructuredWeightsConfig, state=None) -> dict:
    """One network (``keys.model``) on one draw of inputs (``keys.data``): the relative
    Frobenius error of its conditional NNGP against the closed form (SP-12)."""
    x = sphere_inputs(data_keys(keys.data).train, cfg.n_inputs, cfg.d)
    apply_fn, params = mlp(keys.model, cfg.d, depth=cfg.depth, width=cfg.width,
                           activation=cfg.activation, w_std=float(cfg.w_std),
                           b_std=float(cfg.b_std), kind=cfg.kind, rank=cfg.rank,
                           density=float(cfg.density))
    limit = nngp(x, depth=cfg.depth, activation=cfg.activation,
                 w_std=float(cfg.w_std) * math.sqrt(float(cfg.variance_factor)),
                 b_std=float(cfg.b_std))
    return {"nngp_error": relative_frobenius(conditional_nngp(apply_fn, params, x), limit)}


def memory(cfg: StructuredWeightsConfig) -> int:
    """One seed's peak working set (floats): the network's parameters P, four times (the
    one standard-normal draw of :func:`rfsim.networks.draw`, the arrays cut from it, and
    the module's state split and merged by flax.nnx: measured 4.0 P at width 4000), the
    structured hidden matrices being drawn, all depth - 1 at once (2 width^2 each: the draw
    and its product or factorization; 3 for sparse: the mask, the Gaussian entries and the
    product), the
    activations (3 n_inputs width (depth + 1)) and the n_inputs x n_inputs kernels
    ((depth + 4) n_inputs^2)."""
    w, n, L = cfg.width, cfg.n_inputs, cfg.depth
    params = w * w * (L - 1) + cfg.d * w + w * (L + 1) + w
    c = 0 if cfg.kind == "iid" else 3 if cfg.kind == "sparse" else 2
    return working_set(4 * params + c * w * w * (L - 1) + 3 * n * w * (L + 1) + (L + 4) * n * n)

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
