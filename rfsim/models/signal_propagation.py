r"""Model family ``signal-propagation``: the length and correlation of two signals through a
deep random network, layer by layer, against the mean-field maps
(theory/signal_propagation.md SP-1, SP-2, SP-8; Poole et al. 2016, Schoenholz et al. 2017).

One seed: one random network of ``depth`` hidden layers of ``width`` units, the conventions
of theory/kernels.md (K-7):
``h^1 = (w_std/sqrt d) W^1 x + b_std b^1``, ``h^{l+1} = (w_std/sqrt n) W^{l+1} phi(h^l) +
b_std b^{l+1}``, every entry of ``W`` and ``b`` N(0, 1), a fresh draw per seed from its model
key (:func:`rfsim.networks.propagate`: layer ``l`` from ``fold_in(key, l)``, generated inside
the layer loop, so memory is one ``width^2`` matrix whatever the depth).  It is applied to
``n_pairs`` pairs of inputs, drawn from the seed's data key; each pair is built exactly:
``x = sqrt(q0 d) e_1``, ``x' = sqrt(q0 d)(c0 e_1 + sqrt(1 - c0^2) e_2)`` with ``(e_1, e_2)``
a random orthonormal pair of R^d (the QR factor of two points of
:func:`rfsim.data.sphere_inputs`), so ``||x||^2/d = ||x'||^2/d = q0`` and their correlation
is ``c0``.

Metrics along the ``layer`` axis (coordinates ``1 ... depth``):

* ``q``: the mean squared pre-activation ``(1/(2 n_pairs n)) sum ||h^l||^2`` over both
  inputs of every pair;
* ``c``: the mean over pairs of the correlation ``h^l.h'^l / (||h^l|| ||h'^l||)``.

``predict``: :func:`rfsim.theory.signal_propagation.iterate_maps` from the same ``(q0, c0)``
(SP-8): exact at infinite width.  At width ``n`` each layer adds a relative fluctuation
``O(1/sqrt n)`` (``c`` of a pair is a ratio of sums of ``n`` terms) and a bias ``O(1/n)``
(the maps are nonlinear); the deviations are carried forward by the maps' slopes
(``dq'/dq`` and ``chi_c``), damped where the fixed point is stable and compounding only
at criticality (theory/signal_propagation.md §3).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from rfsim.config import model_config, param, static
from rfsim.data import data_keys, sphere_inputs
from rfsim.models import register
from rfsim.models._scales import working_set
from rfsim.networks import arch_field, check_architecture, propagate
from rfsim.theory.signal_propagation import iterate_maps
from rfsim.validation import require, require_int

MAX_DEPTH = 1000


@model_config
class SignalPropagationConfig:
    width: int = arch_field("width", 1000)
    depth: int = arch_field("depth", 50, doc=f"1..{MAX_DEPTH}, metrics at layers 1..L")
    activation: str = arch_field("activation", "tanh")
    n_pairs: int = static(4, doc="input pairs per seed, all through the same network",
                          data=True)
    d: int = static(16, doc="input dimension (>= 2)", data=True)
    w_std: float = arch_field("w_std", 1.0, swept=True)
    b_std: float = arch_field("b_std", 0.0, swept=True)
    q0: float = param(1.0, doc="input second moment ||x||^2/d of both inputs (> 0)",
                      data=True)
    c0: float = param(0.5, doc="input correlation of each pair, in [-1, 1]", data=True)

    def validate(self):
        check_architecture(self, min_depth=1, max_depth=MAX_DEPTH,
                           why="the layers run in a scan: the run time is linear in depth")
        require_int("n_pairs", self.n_pairs)
        require_int("d", self.d, minimum=2)
        require("q0", self.q0, lambda a: a > 0, "> 0")
        require("c0", self.c0, lambda a: (a >= -1) & (a <= 1), "in [-1, 1]")

def coords(cfg: SignalPropagationConfig) -> dict[str, np.ndarray]:
    return {"layer": np.arange(1, cfg.depth + 1)}


def _pairs(key, cfg, dtype):
    """(2 n_pairs, d): rows 2k and 2k+1 are a pair with norms^2/d = q0, correlation c0."""
    g = sphere_inputs(key, 2 * cfg.n_pairs, cfg.d, dtype).reshape(cfg.n_pairs, 2, cfg.d)
    e, _ = jnp.linalg.qr(jnp.swapaxes(g, 1, 2))  # (n_pairs, d, 2): orthonormal columns
    e1, e2 = e[..., 0], e[..., 1]
    c0 = jnp.asarray(cfg.c0, dtype)
    # sqrt(q0) sqrt(d), not sqrt(q0 d): q0 d overflows for q0 near the float maximum
    scale = jnp.sqrt(jnp.asarray(cfg.q0, dtype)) * math.sqrt(cfg.d)
    x = scale * e1
    y = scale * (c0 * e1 + jnp.sqrt(jnp.maximum(1.0 - c0 * c0, 0.0)) * e2)
    return jnp.stack([x, y], axis=1).reshape(2 * cfg.n_pairs, cfg.d)


def _norms(h):
    """Euclidean norms of the rows of ``h`` without overflow or underflow of the squares:
    ``m sqrt(sum (h/m)^2)`` with ``m = max |h|`` per row (0 for a zero row, inf or NaN for a
    row holding one)."""
    m = jnp.max(jnp.abs(h), axis=-1, keepdims=True)
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    scaled = jnp.sqrt(jnp.sum(_divide(h, safe) ** 2, axis=-1))
    return jnp.where(jnp.isfinite(m[..., 0]), m[..., 0] * scaled, m[..., 0] + scaled)


def _stats(h):
    """(q, c) of one layer's pre-activations h: (2 n_pairs, n).

    Overflow-safe: ``q = mean_rows (|h|/sqrt n)^2`` from the scaled norms (inf only when q
    itself exceeds the float range), and ``c = <a/|a|, b/|b|>`` normalizes before it
    multiplies, so the correlation stays exact while the squared norms overflow (the old
    ``a.b / sqrt(|a|^2 |b|^2)`` read 0 once ``|a|^2 |b|^2`` overflowed).  A row that has
    overflowed to inf gives NaN (reported as non-finite), never a finite wrong number."""
    norm = _norms(h)
    rms = norm / math.sqrt(h.shape[-1])
    top = jnp.max(rms)
    unit = jnp.where((top > 0) & jnp.isfinite(top), top, 1.0)
    q = unit * unit * jnp.mean((rms / unit) ** 2)  # no overflow of the sum before the mean
    unit_rows = _unit_rows(h)
    corr = jnp.sum(unit_rows[0::2] * unit_rows[1::2], -1)
    return q, jnp.mean(corr)


def _unit_rows(h):
    """``h / |h|`` row by row, scaled by the row's largest entry first: ``|h|`` itself may
    overflow while every entry is finite (float32, 16 entries near 1e38), and ``h / inf``
    read 0 -- a correlation of exactly 0.  A row holding inf or NaN, or all zeros, gives
    NaN (reported), never a finite wrong number."""
    m = jnp.max(jnp.abs(h), axis=-1, keepdims=True)
    scaled = _divide(h, jnp.where(jnp.isfinite(m), m, jnp.nan))
    return scaled / jnp.sqrt(jnp.sum(scaled * scaled, axis=-1, keepdims=True))


def _divide(h, m):
    """``h / m`` for ``|h| <= m`` near the top of the float range: XLA computes a division as
    a product with ``1/m``, which is subnormal for ``m`` above ~1e38 (float32) and flushed
    to 0 on CPU -- every row read 0.  Dividing twice by ``sqrt(m)`` keeps it normal."""
    r = jnp.sqrt(m)
    return (h / r) / r


def simulate(keys, cfg: SignalPropagationConfig, state=None) -> dict:
    """One network (``keys.model``), ``n_pairs`` input pairs (``keys.data``): ``q`` and ``c``
    at every layer."""
    dtype = jnp.result_type(float)
    x = _pairs(data_keys(keys.data).train, cfg, dtype)
    _, (q, c) = propagate(keys.model, x, depth=cfg.depth, width=cfg.width,
                          activation=cfg.activation, w_std=jnp.asarray(cfg.w_std, dtype),
                          b_std=jnp.asarray(cfg.b_std, dtype), reduce=_stats)
    return {"q": q, "c": c}


def predict(cfg: SignalPropagationConfig, state=None) -> dict:
    """The maps (SP-1, SP-2) iterated from the same ``(q0, c0)`` (SP-8)."""
    q, c = iterate_maps(cfg.q0, cfg.c0, cfg.depth, activation=cfg.activation,
                        w_std=cfg.w_std, b_std=cfg.b_std)
    return {"q": q, "c": c}


def memory(cfg: SignalPropagationConfig) -> int:
    """One seed's peak working set (floats): the pre-activations
    of all 2 n_pairs inputs and their temporaries (5 per layer step: h, phi(h), the product,
    the scaled copies of the statistics), the input pairs being built (4 d per input) and
    a weight matrix being drawn (3 width^2)."""
    rows = 2 * cfg.n_pairs
    return working_set(rows * (5 * cfg.width + 4 * cfg.d) + 3 * cfg.width * cfg.width
                    + 2 * cfg.width * cfg.d)


MODEL = register(
    "signal-propagation",
    SignalPropagationConfig,
    simulate,
    predict,
    metrics={"q": "layer", "c": "layer"},
    description="length q^l and correlation c^l of input pairs through a deep random "
    "network vs the mean-field maps (Poole et al. 2016; Schoenholz et al. 2017)",
    memory=memory,
    coords=coords,
)
