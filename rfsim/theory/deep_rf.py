r"""Deep random features: layer-wise population covariances and the ridge risk.

Implements theory/deep_random_features.md, Eqs. (DRF-1)–(DRF-12), after Schröder, Cui,
Dmitriev, Loureiro 2023, "Deterministic equivalent and error universality of deep random
features learning" (arXiv:2302.00401, ICML 2023; cited [SCDL]).

Model (DRF-1).  ``x ~ N(0, Omega_0)`` in R^d (``Omega_0 = I`` by default), ``h_0 = x`` and
L frozen layers

.. math:: h_l = \sigma(u_l) - c_l,\qquad u_l = W_l h_{l-1} / \sqrt{k_{l-1}},

``W_l`` of shape ``(k_l, k_{l-1})`` with ``k_0 = d`` (as :func:`rfsim.features.deep_weights`
draws them).  The weights are *given*: every quantity here is conditional on them.
``c_l = E[sigma(u_l) | W]`` when ``centered`` (each layer has mean zero), else ``c_l = 0``.

Readout (DRF-2).  Features ``z = h_L / sqrt(k_L)``, predictor ``f(x) = <z(x), a>``,
``a_hat = argmin (1/n)||y - Z a||^2 + ridge ||a||^2``: exactly the convention of
:func:`rfsim.theory.ridge.ridge_risk`, applied to the second-moment matrix
``E[z z^T] = (Omega_L + mu_L mu_L^T) / k_L`` (``mu_L = 0`` when centered).

Covariance recursions for ``Omega_l = Cov(h_l | W)``, with the pre-activation covariance
``C_l = W_l Omega_{l-1} W_l^T / k_{l-1}`` and each neuron's *actual* variance
``q_i = (C_l)_ii`` (pitfall: never 1):

* ``recursion="linearized"`` (DRF-4): ``Omega_l = D_1 C_l D_1 + diag(kappa_*^2)``,
  ``D_1 = diag(kappa_1(q_i))``, ``kappa_1 = E sigma'(U)``, ``kappa_*^2 = Var sigma(U) -
  q kappa_1^2``, ``U ~ N(b_i, q_i)`` ([SCDL] eqs. (10)-(11) and their linearized population
  covariance, here neuron by neuron);
* ``recursion="exact"`` (DRF-5): ``Omega_l[i, j] = E sigma(U_i) sigma(U_j) - m_i m_j`` for
  ``U ~ N(0, C_l)`` in closed form (relu arc-cosine, erf arcsine, linear).  Exact for l = 1;
  for l >= 2 it assumes Gaussian pre-activations (DRF-12).

Cross-covariance with the input (DRF-6): ``E[h_l x^T] = A_l Omega_0``,
``A_l = D_1 W_l A_{l-1} / sqrt(k_{l-1})``, ``A_0 = I`` (Stein's lemma; exact for l = 1).

Risk (DRF-8)-(DRF-11): the target's best linear predictor in ``z`` gives the coefficients
fed to ``ridge_risk``; the part of the target that ``z`` cannot explain linearly
(``residual``) acts as label noise *and* adds to the excess risk (the error floor).

Example::

    >>> import jax; jax.config.update("jax_enable_x64", True)
    >>> from rfsim.features import deep_weights
    >>> from rfsim.theory.deep_rf import deep_rf_risk
    >>> Ws = deep_weights(jax.random.key(0), 100, [150, 150])
    >>> beta = jax.random.normal(jax.random.key(1), (100,))
    >>> r = deep_rf_risk(Ws, activation="relu", n=200, ridge=1e-2, noise=0.1,
    ...                  target="linear", beta=beta)
    >>> float(r.test_mse) > float(r.excess_risk)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf
from jax.scipy.stats import norm

from rfsim.activations import ACTIVATIONS, get_activation
from rfsim.theory.ridge import RidgeRisk, ridge_risk
from rfsim.validation import is_concrete, require_finite, require_nonnegative

__all__ = [
    "RECURSIONS",
    "TARGETS",
    "DeepRFPopulation",
    "LayerStats",
    "check_recursion",
    "deep_rf_population",
    "deep_rf_risk",
    "gaussian_moments",
    "layer_statistics",
]

RECURSIONS = ("linearized", "exact")
TARGETS = ("shared", "linear", "teacher")
_EXACT_FORMS = ("erf", "linear", "relu")
_ODD = ("erf", "linear", "tanh")  # sigma(-u) = -sigma(u): zero means at every layer

# Probabilists' Gauss-Hermite rule (weights sum to 1) for activations without closed forms.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(120)
_GH_WEIGHTS = _GH_WEIGHTS / math.sqrt(2.0 * math.pi)


def _name(sigma) -> str | None:
    for name, fn in ACTIVATIONS.items():
        if fn is sigma:
            return name
    return None


# --------------------------------------------------------------------------- (DRF-3)


def gaussian_moments(activation, mean, var):
    r"""``(m, kappa1, second)`` of ``sigma(U)``, ``U ~ N(mean, var)``, elementwise (DRF-3).

    ``m = E sigma(U)``; ``kappa1 = E sigma'(U) = E[(U - mean) sigma(U)] / var`` (Stein's
    lemma, so it is defined for relu's kink too); ``second = E sigma(U)^2``.

    Closed forms: relu (any mean, ``t = mean/sqrt(var)``: ``m = mean Phi(t) + sqrt(var)
    phi(t)``, ``kappa1 = Phi(t)``, ``second = (mean^2 + var) Phi(t) + mean sqrt(var) phi(t)``);
    linear; erf (``m = erf(mean/sqrt(1+2 var))``, ``kappa1 = 2 exp(-mean^2/(1+2var)) /
    sqrt(pi (1+2var))``, and at zero mean ``second = (2/pi) arcsin(2var/(1+2var))``).
    Anything else: 120-point Gauss-Hermite quadrature.  ``var`` must be > 0.
    """
    sigma = get_activation(activation)
    name = _name(sigma)
    b, q = jnp.broadcast_arrays(jnp.asarray(mean), jnp.asarray(var))
    if not jnp.issubdtype(q.dtype, jnp.floating):
        b, q = b.astype(jnp.result_type(float)), q.astype(jnp.result_type(float))
    s = jnp.sqrt(q)
    if name == "relu":
        t = b / s
        cdf, pdf = norm.cdf(t), norm.pdf(t)
        return b * cdf + s * pdf, cdf, (b * b + q) * cdf + b * s * pdf
    if name == "linear":
        return b, jnp.ones_like(q), b * b + q
    nodes = jnp.asarray(_GH_NODES, q.dtype)
    weights = jnp.asarray(_GH_WEIGHTS, q.dtype)
    vals = sigma(b[..., None] + s[..., None] * nodes)
    m = vals @ weights
    second = (vals * vals) @ weights
    kappa1 = (vals * nodes) @ weights / s
    if name == "erf":
        g = 1.0 + 2.0 * q
        m = erf(b / jnp.sqrt(g))
        kappa1 = 2.0 / math.sqrt(math.pi) * jnp.exp(-b * b / g) / jnp.sqrt(g)
        second = jnp.where(b == 0, 2.0 / math.pi * jnp.arcsin(2.0 * q / g), second)
    return m, kappa1, second


def _two_point(name: str, C):
    """E sigma(U_i) sigma(U_j) for U ~ N(0, C), closed form (DRF-5)."""
    q = jnp.diagonal(C)
    if name == "linear":
        return C
    if name == "erf":
        g = jnp.sqrt(1.0 + 2.0 * q)
        return 2.0 / math.pi * jnp.arcsin(jnp.clip(2.0 * C / (g[:, None] * g[None, :]), -1, 1))
    # relu: arc-cosine kernel of order 1 (Cho & Saul 2009), cos clipped into [-1, 1]
    norms = jnp.sqrt(q[:, None] * q[None, :])
    cos = jnp.clip(C / norms, -1.0, 1.0)
    theta = jnp.arccos(cos)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0))
    return norms * (sin + (math.pi - theta) * cos) / (2.0 * math.pi)


# --------------------------------------------------------------------------- (DRF-4)-(DRF-6)


class LayerStats(NamedTuple):
    """Population statistics of one layer, conditional on the frozen weights.

    pre_cov: ``C_l = W_l Omega_{l-1} W_l^T / k_{l-1}`` (DRF-4), shape (k_l, k_l).
    pre_mean: ``b_l = W_l mu_{l-1} / sqrt(k_{l-1})``, the pre-activation mean (zero when centred).
    act_mean: ``E sigma(u_l)`` (before any centring), shape (k_l,).
    kappa1: ``E sigma'(u_l)`` per neuron, at the actual ``(b_i, q_i)`` (DRF-3).
    mean: ``mu_l = E h_l`` (zero when centred).
    cov: ``Omega_l = Cov h_l`` (DRF-4 or DRF-5), shape (k_l, k_l).
    lin: ``A_l`` with ``E[h_l x^T] = A_l Omega_0`` (DRF-6), shape (k_l, d).
    """

    pre_cov: jax.Array
    pre_mean: jax.Array
    act_mean: jax.Array
    kappa1: jax.Array
    mean: jax.Array
    cov: jax.Array
    lin: jax.Array


def _input_cov(input_cov, d, dtype):
    if input_cov is None:
        return jnp.eye(d, dtype=dtype)
    a = jnp.asarray(input_cov, dtype)
    return jnp.diag(a) if a.ndim == 1 else a


def _layers(weights, sigma, omega0, centered, recursion):
    name = _name(sigma)
    dtype = omega0.dtype
    d = omega0.shape[0]
    cov, mean, lin = omega0, jnp.zeros(d, dtype), jnp.eye(d, dtype=dtype)
    out = []
    for W in weights:
        W = jnp.asarray(W, dtype)
        root_k = math.sqrt(W.shape[1])
        C = (W @ cov @ W.T) / W.shape[1]
        C = 0.5 * (C + C.T)
        b = (W @ mean) / root_k
        q = jnp.diagonal(C)
        m, k1, second = gaussian_moments(sigma, b, q)
        if recursion == "exact":
            K = _two_point(name, C)
            new_cov = K - m[:, None] * m[None, :]
        else:
            star = jnp.maximum(second - m * m - k1 * k1 * q, 0.0)  # kappa_*^2 per neuron
            new_cov = k1[:, None] * C * k1[None, :] + jnp.diag(star)
        lin = k1[:, None] * (W @ lin) / root_k
        mean = jnp.zeros_like(m) if centered else m
        cov = new_cov
        out.append(LayerStats(C, b, m, k1, mean, cov, lin))
    return out


_layers_jit = jax.jit(_layers, static_argnums=(1, 3, 4))


# --------------------------------------------------------------------------- validation


def _check_weights(field: str, weights, d: int | None = None) -> list:
    if isinstance(weights, (jax.Array, np.ndarray)) or not isinstance(weights, Sequence) \
            or len(weights) == 0:
        raise ValueError(
            f"{field} must be a non-empty list of 2-D arrays W_l of shape (k_l, k_(l-1)), "
            f"got {type(weights).__name__}"
        )
    Ws = [jnp.asarray(W) for W in weights]
    prev = d
    for i, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
            raise ValueError(f"{field}[{i}] must be a 2-D array with both sizes >= 1, "
                             f"got shape {W.shape}")
        if prev is not None and W.shape[1] != prev:
            what = "the input dimension d" if i == 0 else f"the width of {field}[{i - 1}]"
            raise ValueError(f"{field}[{i}] has shape {W.shape}: its second size must equal "
                             f"{what} = {prev}")
        require_finite(f"{field}[{i}]", W)
        prev = W.shape[0]
    return Ws


def _check_choice(field: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")


def _check_vector(field: str, value, size: int, why: str):
    if value is None:
        raise ValueError(f"{field} is required: {why}")
    v = jnp.asarray(value)
    if v.shape != (size,):
        raise ValueError(f"{field} must have shape ({size},) ({why}), got shape {v.shape}")
    require_finite(field, v)
    return v


def _check_input_cov(input_cov, d: int):
    if input_cov is None:
        return None
    a = jnp.asarray(input_cov)
    if a.shape not in ((d,), (d, d)):
        raise ValueError(f"input_cov must have shape ({d},) (a diagonal) or ({d}, {d}), "
                         f"got shape {a.shape}")
    require_finite("input_cov", a)
    if is_concrete(a):
        arr = np.asarray(a, dtype=float)
        if arr.ndim == 1 and (arr < 0).any():
            raise ValueError(f"input_cov must be >= 0 (a covariance diagonal), got min "
                             f"{arr.min():g}")
        if arr.ndim == 2 and not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12):
            raise ValueError("input_cov must be a symmetric matrix")
        if (np.diag(arr) if arr.ndim == 2 else arr).sum() <= 0:
            raise ValueError("input_cov must have a positive trace")
    return a


def check_recursion(activation, recursion: str, *, centered: bool, depth: int,
                    field: str = "activation") -> None:
    """Raise ``ValueError`` unless ``recursion`` is available for this activation and depth.

    ``"exact"`` (DRF-5) needs a closed-form two-point integral (relu, erf, linear) and
    zero-mean pre-activations (centred layers, an odd activation, or depth 1).
    """
    _check_choice("recursion", recursion, RECURSIONS)
    sigma = get_activation(activation, field=field)
    name = _name(sigma)
    if recursion != "exact":
        return
    if name not in _EXACT_FORMS:
        raise ValueError(
            f"recursion='exact' needs a closed-form two-point integral: {field} must be one of "
            f"{list(_EXACT_FORMS)}, got {activation!r} (use recursion='linearized')"
        )
    if not centered and depth >= 2 and name not in _ODD:
        raise ValueError(
            f"recursion='exact' with centered=False and depth {depth} >= 2: the uncentred "
            f"{name} layers give pre-activations a non-zero mean, which has no closed-form "
            "two-point integral; use centered=True or recursion='linearized'"
        )


def layer_statistics(weights, *, activation, input_cov=None, centered: bool = True,
                     recursion: str = "linearized") -> list[LayerStats]:
    """Per-layer population statistics given frozen weights ((DRF-3)-(DRF-6)).

    Args:
      weights: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(k_l, k_{l-1})``, ``k_0 = d``.
      activation: a name from :mod:`rfsim.activations` or a callable.
      input_cov: ``Omega_0``: None (identity), a ``(d,)`` diagonal or a ``(d, d)`` matrix.
      centered: subtract each neuron's population mean at every layer (DRF-1).
      recursion: ``"linearized"`` (DRF-4) or ``"exact"`` (DRF-5; relu, erf, linear only).

    Returns one :class:`LayerStats` per layer.  Jittable for fixed static options.
    """
    sigma = get_activation(activation)
    _check_choice("recursion", recursion, RECURSIONS)
    Ws = _check_weights("weights", weights)
    d = Ws[0].shape[1]
    omega0 = _check_input_cov(input_cov, d)
    check_recursion(activation, recursion, centered=bool(centered), depth=len(Ws))
    dtype = jnp.result_type(*Ws, float)
    return _layers_jit(Ws, sigma, _input_cov(omega0, d, dtype), bool(centered), recursion)


# --------------------------------------------------------------------------- (DRF-7)-(DRF-11)


class DeepRFPopulation(NamedTuple):
    """What the ridge risk needs (DRF-7)-(DRF-9).

    eigenvalues: of ``E[z z^T]`` with ``z = h_L / sqrt(k_L)`` (below round-off set to 0).
    target_coeffs: the best linear predictor ``w* = E[z z^T]^+ E[z f*]`` in that eigenbasis.
    signal: ``E f*(x)^2`` (the noiseless target's power).
    residual: ``E (f* - <z, w*>)^2 = signal - sum_i s_i w*_i^2 >= 0``: the part of the target
      the features cannot explain linearly (DRF-9).
    """

    eigenvalues: jax.Array
    target_coeffs: jax.Array
    signal: jax.Array
    residual: jax.Array


def _population(weights, teacher_weights, theta, beta, omega0, sigma, sigma_t, target,
                centered, recursion):
    student = _layers(weights, sigma, omega0, centered, recursion)[-1]
    k = student.cov.shape[0]
    second = (student.cov + student.mean[:, None] * student.mean[None, :]) / k
    s, V = jnp.linalg.eigh(0.5 * (second + second.T))
    tol = jnp.max(s) * k * jnp.finfo(s.dtype).eps
    s = jnp.where(s > tol, s, 0.0)
    if target == "shared":  # (DRF-7): f* = <z, theta>
        coeffs = V.T @ theta
        signal = jnp.sum(s * coeffs**2)
        return DeepRFPopulation(s, coeffs, signal, jnp.zeros_like(signal))
    d = omega0.shape[0]
    if target == "linear":  # (DRF-8): f* = <beta, x>/sqrt(d)
        signal = beta @ omega0 @ beta / d
        cross = student.lin @ (omega0 @ beta) / math.sqrt(d * k)
    else:  # teacher (DRF-10): f* = <theta, h_t(x)>/sqrt(k_t)
        teach = _layers(teacher_weights, sigma_t, omega0, centered, recursion)[-1]
        kt = teach.cov.shape[0]
        signal = (theta @ teach.cov @ theta + (teach.mean @ theta) ** 2) / kt
        joint = student.lin @ omega0 @ teach.lin.T + student.mean[:, None] * teach.mean[None, :]
        cross = joint @ theta / math.sqrt(k * kt)
    proj = V.T @ cross
    pos = s > 0
    coeffs = jnp.where(pos, proj / jnp.where(pos, s, 1.0), 0.0)
    explained = jnp.sum(jnp.where(pos, proj * coeffs, 0.0))
    residual = jnp.maximum(signal - explained, 0.0)
    return DeepRFPopulation(s, coeffs, signal, residual)


_population_jit = jax.jit(_population, static_argnums=(5, 6, 7, 8, 9))


@partial(jax.jit, static_argnums=(5, 6, 7, 8, 9))
def _risk_jit(weights, teacher_weights, theta, beta, omega0, sigma, sigma_t, target, centered,
              recursion, n, ridge, noise):
    pop = _population(weights, teacher_weights, theta, beta, omega0, sigma, sigma_t, target,
                      centered, recursion)
    r = ridge_risk(pop.eigenvalues, pop.target_coeffs, n=n, ridge=ridge,
                   noise=noise + pop.residual)  # (DRF-11)
    bias = r.bias + pop.residual
    excess = bias + r.variance
    return RidgeRisk(r.kappa, bias, r.variance, excess, excess + noise, r.train_mse)


def _prepare(weights, activation, target, theta, beta, teacher_weights, teacher_activation,
             input_cov, centered, recursion):
    sigma = get_activation(activation)
    _check_choice("target", target, TARGETS)
    _check_choice("recursion", recursion, RECURSIONS)
    if not isinstance(centered, (bool, np.bool_)):
        raise ValueError(f"centered must be True or False, got {centered!r}")
    Ws = _check_weights("weights", weights)
    d, k = Ws[0].shape[1], Ws[-1].shape[0]
    omega0 = _check_input_cov(input_cov, d)
    check_recursion(activation, recursion, centered=bool(centered), depth=len(Ws))
    sigma_t, Wt = None, None
    if target == "shared":
        theta = _check_vector("theta", theta, k, "the readout of the shared target "
                              "f* = <h_L, theta>/sqrt(k_L)")
    elif target == "linear":
        beta = _check_vector("beta", beta, d, "the linear target f* = <beta, x>/sqrt(d)")
    else:
        if teacher_weights is None:
            raise ValueError("teacher_weights is required for target='teacher'")
        Wt = _check_weights("teacher_weights", teacher_weights, d)
        sigma_t = get_activation(activation if teacher_activation is None
                                 else teacher_activation, field="teacher_activation")
        check_recursion(sigma_t, recursion, centered=bool(centered), depth=len(Wt),
                        field="teacher_activation")
        theta = _check_vector("theta", theta, Wt[-1].shape[0], "the teacher readout "
                              "f* = <h_t, theta>/sqrt(k_t)")
    dtype = jnp.result_type(*Ws, *(Wt or ()), float)
    omega0 = _input_cov(omega0, d, dtype)
    theta = None if theta is None else jnp.asarray(theta, dtype)
    beta = None if beta is None else jnp.asarray(beta, dtype)
    return (Ws, Wt, theta, beta, omega0, sigma, sigma_t, target, bool(centered), recursion)


def deep_rf_population(weights, *, activation, target: str = "shared", theta=None, beta=None,
                       teacher_weights=None, teacher_activation=None, input_cov=None,
                       centered: bool = True, recursion: str = "linearized"
                       ) -> DeepRFPopulation:
    """Eigenvalues, target coefficients and unexplained residual (DRF-7)-(DRF-10).

    Same arguments as :func:`deep_rf_risk` without ``n``, ``ridge``, ``noise``.
    """
    args = _prepare(weights, activation, target, theta, beta, teacher_weights,
                    teacher_activation, input_cov, centered, recursion)
    return _population_jit(*args)


def deep_rf_risk(weights, *, activation, n, ridge, noise=0.0, target: str = "shared",
                 theta=None, beta=None, teacher_weights=None, teacher_activation=None,
                 input_cov=None, centered: bool = True, recursion: str = "linearized"
                 ) -> RidgeRisk:
    r"""Deterministic-equivalent ridge risk of deep random features (DRF-11).

    Args:
      weights: frozen ``[W_1, ..., W_L]`` (``W_l``: ``(k_l, k_{l-1})``, ``k_0 = d``), e.g.
        :func:`rfsim.features.deep_weights`; layer l computes
        ``sigma(W_l h_{l-1} / sqrt(k_{l-1}))`` (DRF-1).
      activation: name (relu, erf, tanh, gelu, linear) or callable.
      n: training samples.
      ridge: ``lambda >= 0`` of ``(1/n)||y - Z a||^2 + lambda ||a||^2``, ``Z = H_L/sqrt(k_L)``
        (DRF-2); same meaning as in :func:`rfsim.theory.ridge.ridge_risk`.
      noise: label-noise variance ``>= 0``.
      target: ``"shared"``: ``f* = <h_L(x), theta> / sqrt(k_L)`` with the learner's own layers
        (DRF-7; [SCDL] Sec. 4, proven); ``"linear"``: ``f* = <beta, x> / sqrt(d)`` (DRF-8);
        ``"teacher"``: ``f* = <h_t(x), theta> / sqrt(k_t)`` for a frozen teacher network
        ``teacher_weights`` with ``teacher_activation`` (default: ``activation``), same
        centring (DRF-10; [SCDL]'s conjecture with linearized cross-covariance).
      theta, beta: the target's coefficients (see ``target``).
      input_cov: ``Omega_0``: None (identity), ``(d,)`` diagonal or ``(d, d)``.
      centered: every layer centred to mean zero (DRF-1); else the mean enters (DRF-4) and the
        readout sees the second moment ``Omega_L + mu mu^T``.
      recursion: ``"linearized"`` (DRF-4, any activation) or ``"exact"`` (DRF-5: relu, erf,
        linear).

    Returns:
      :class:`~rfsim.theory.ridge.RidgeRisk`: ``excess_risk = E(f* - f_hat)^2`` (no label
      noise) ``= bias + variance``, where ``bias`` includes the unexplained ``residual``
      (the error floor) and ``variance`` is driven by ``noise + residual``;
      ``test_mse = excess_risk + noise``; ``train_mse`` (R-7).

    Jittable for fixed ``activation``, ``target``, ``centered``, ``recursion``; ``ridge`` and
    ``noise`` may be arrays (broadcast).  Concrete inputs are validated: a bad one raises
    ``ValueError`` naming the field, the value and what is allowed.
    """
    require_nonnegative("ridge", ridge)
    require_nonnegative("noise", noise)
    if is_concrete(n) and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                           or n < 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    args = _prepare(weights, activation, target, theta, beta, teacher_weights,
                    teacher_activation, input_cov, centered, recursion)
    dtype = args[4].dtype
    ridge, noise = jnp.broadcast_arrays(jnp.asarray(ridge, dtype), jnp.asarray(noise, dtype))
    return _risk_jit(*args, jnp.asarray(n, dtype), ridge, noise)

