r"""Deep random features: layer-wise population covariances and the ridge risk.

Implements theory/deep_random_features.md, Eqs. (DRF-1)–(DRF-12), after Schröder, Cui,
Dmitriev, Loureiro 2023, "Deterministic equivalent and error universality of deep random
features learning" (arXiv:2302.00401, ICML 2023; cited [SCDL]).

Model (DRF-1).  ``x ~ N(0, Omega_0)`` in R^d (``Omega_0 = I`` by default), ``h_0 = x`` and
L frozen layers

.. math:: h_l = \sigma(u_l) - c_l,\qquad u_l = W_l h_{l-1} / \sqrt{k_{l-1}},

``W_l`` of shape ``(k_l, k_{l-1})`` with ``k_0 = d`` (as :func:`rfsim.networks.deep_weights`
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
    >>> import jax.numpy as jnp
    >>> from rfsim.networks import deep_weights
    >>> from rfsim.theory.deep_rf import deep_rf_risk
    >>> Ws = deep_weights(jax.random.key(0), 100, [150, 150])  # the draw is the caller's
    >>> beta = jnp.ones(100)
    >>> r = deep_rf_risk(Ws, activation="relu", n=200, ridge=1e-2, noise=0.1,
    ...                  target="linear", beta=beta)
    >>> float(r.test_mse) > float(r.excess_risk)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS, get_activation
from rfsim.theory.gaussian import gaussian_moments  # noqa: F401  (earlier public path)
from rfsim.theory.ridge import RidgeRisk, _ridge_risk, check_power, check_ridge
from rfsim.theory.scaling import ldexp
from rfsim.validation import (
    float64_hint,
    as_real_array,
    float_dtype,
    is_concrete,
    require_exact,
    require_finite,
    require_in_range,
    require_nonnegative,
)

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


def _rescaled(sigma) -> bool:
    """Positively homogeneous of degree 1 (relu, leaky relu, linear; theory/activations.md
    A-1): ``sigma(2^e u) = 2^e sigma(u)``, so the layers are evaluated rescaled (DRF-13)."""
    return sigma.degree == 1


def _two_point(sigma, C):
    """E sigma(U_i) sigma(U_j) for U ~ N(0, C), closed form (DRF-5; theory/activations.md A-5)."""
    q = jnp.diagonal(C)
    return sigma.two_point(q[:, None], q[None, :], C)


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


def _exponent(x):
    """Binary exponent of max|x| (0 for an all-zero x), without gradient."""
    return jax.lax.stop_gradient(jnp.frexp(jnp.max(jnp.abs(x)))[1])


def _layers(weights, sigma, omega0, centered, recursion):
    """Layer statistics in rescaled form (DRF-13): returns ``(stats, exps)`` with the true
    statistics of layer l equal to ``stats[l]`` times ``2^exps[l]`` (covariances
    ``2^(2 exps[l])``, kappa1 unscaled).  ``exps`` is 0 unless sigma is positively
    homogeneous of degree 1 (relu, leaky relu, linear): then each W_l and each
    pre-activation covariance is scaled by an exact power of two, which commutes with the
    whole recursion."""
    homogeneous = _rescaled(sigma)
    dtype = omega0.dtype
    d = omega0.shape[0]
    cov, mean, lin = omega0, jnp.zeros(d, dtype), jnp.eye(d, dtype=dtype)
    total = jnp.zeros((), jnp.int32)
    out, exps = [], []
    for W in weights:
        W = jnp.asarray(W, dtype)
        root_k = math.sqrt(W.shape[1])
        e = _exponent(W) if homogeneous else 0
        W = ldexp(W, -e) if homogeneous else W
        C = (W @ cov @ W.T) / W.shape[1]
        C = 0.5 * (C + C.T)
        b = (W @ mean) / root_k
        # pre-activations u = 2^f u~ with max Var u~ near 1 (f = half the exponent of max q)
        f = _exponent(jnp.diagonal(C)) // 2 if homogeneous else 0
        if homogeneous:
            C, b = ldexp(C, -2 * f), ldexp(b, -f)
            total = total + e + f
        q = jnp.diagonal(C)
        m, k1, second = sigma.moments(b, q)
        if recursion == "exact":
            K = _two_point(sigma, C)
            new_cov = K - m[:, None] * m[None, :]
        else:
            star = jnp.maximum(second - m * m - k1 * k1 * q, 0.0)  # kappa_*^2 per neuron
            new_cov = k1[:, None] * C * k1[None, :] + jnp.diag(star)
        lin = k1[:, None] * (W @ lin) / root_k
        lin = ldexp(lin, -f) if homogeneous else lin
        mean = jnp.zeros_like(m) if centered else m
        cov = new_cov
        out.append(LayerStats(C, b, m, k1, mean, cov, lin))
        exps.append(total)
    return out, exps


def _unscale(stats: LayerStats, exp) -> LayerStats:
    """True-scale statistics from the rescaled ones (DRF-13)."""
    one, two = (lambda x: ldexp(x, exp)), (lambda x: ldexp(x, 2 * exp))
    return LayerStats(two(stats.pre_cov), one(stats.pre_mean), one(stats.act_mean),
                      stats.kappa1, one(stats.mean), two(stats.cov), one(stats.lin))


def _true_layers(weights, sigma, omega0, centered, recursion):
    stats, exps = _layers(weights, sigma, omega0, centered, recursion)
    return [_unscale(st, ex) for st, ex in zip(stats, exps)], stats, exps


_true_layers_jit = jax.jit(_true_layers, static_argnums=(1, 3, 4))


# --------------------------------------------------------------------------- validation


def _check_weights(field: str, weights, d: int | None = None) -> list:
    if isinstance(weights, (jax.Array, np.ndarray)) or not isinstance(weights, Sequence) \
            or len(weights) == 0:
        raise ValueError(
            f"{field} must be a non-empty list of 2-D arrays W_l of shape (k_l, k_(l-1)), "
            f"got {type(weights).__name__}"
        )
    prev = d
    for i, W in enumerate(weights):
        shape = np.shape(W)
        if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"{field}[{i}] must be a 2-D array with both sizes >= 1, "
                             f"got shape {shape}")
        if prev is not None and shape[1] != prev:
            what = "the input dimension d" if i == 0 else f"the width of {field}[{i - 1}]"
            raise ValueError(f"{field}[{i}] has shape {shape}: its second size must equal "
                             f"{what} = {prev}")
        require_finite(f"{field}[{i}]", W)  # before any cast: real, finite
        prev = shape[0]
    return list(weights)


def _check_dtype_range(dtype, **values) -> None:
    """Every given array must fit ``dtype`` (validation.require_in_range), checked before the
    cast that would turn an overflowing entry into inf."""
    for field, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):
            for i, W in enumerate(value):
                require_in_range(f"{field}[{i}]", W, dtype)
        else:
            require_in_range(field, value, dtype)


def _check_choice(field: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")


def _check_vector(field: str, value, size: int, why: str):
    if value is None:
        raise ValueError(f"{field} is required: {why}")
    shape = np.shape(value)
    if shape != (size,):
        raise ValueError(f"{field} must have shape ({size},) ({why}), got shape {shape}")
    require_finite(field, value)
    return value


def _check_input_cov(input_cov, d: int):
    if input_cov is None:
        return None
    a = input_cov
    if np.shape(a) not in ((d,), (d, d)):
        raise ValueError(f"input_cov must have shape ({d},) (a diagonal) or ({d}, {d}), "
                         f"got shape {np.shape(a)}")
    require_finite("input_cov", a)
    if is_concrete(a):
        arr = as_real_array("input_cov", a)
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

    ``"exact"`` (DRF-5) needs a closed-form two-point integral (relu, leaky relu, erf,
    linear, sin, cos, or a registered activation with one; theory/activations.md A-5) and
    zero-mean pre-activations (centred layers, an odd activation, or depth 1).
    """
    _check_choice("recursion", recursion, RECURSIONS)
    sigma = get_activation(activation, field=field)
    if recursion != "exact":
        return
    if not sigma.has_closed_form("two_point"):
        closed = sorted(n for n, a in ACTIVATIONS.items() if a.has_closed_form("two_point"))
        raise ValueError(
            f"recursion='exact' needs a closed-form two-point integral: {field} must be one of "
            f"{closed}, got {activation!r} (use recursion='linearized')"
        )
    if not centered and depth >= 2 and not sigma.odd:
        raise ValueError(
            f"recursion='exact' with centered=False and depth {depth} >= 2: the uncentred "
            f"{sigma.name} layers give pre-activations a non-zero mean, which has no closed-form "
            "two-point integral; use centered=True or recursion='linearized'"
        )


def _weights_dtype(*weight_lists):
    """The float dtype the recursion runs in: the weights' own (canonicalized), else default."""
    return float_dtype(*(W for Ws in weight_lists for W in (Ws or ())))


def _check_scales(field: str, name, qmax, dtype) -> None:
    """A non-homogeneous activation (erf, tanh, gelu, callables) sees the weights' scale
    itself: each layer's largest pre-activation variance must be a normal number well clear
    of underflow (``finfo.tiny / eps``, beyond which the moments lose their digits and XLA
    flushes to 0) and finite (DRF-13)."""
    fi = jnp.finfo(dtype)
    floor = float(fi.tiny) / float(fi.eps)
    for i, q in enumerate(np.asarray(qmax, dtype=float)):
        if not (np.isfinite(q) and q >= floor and q <= float(fi.max)):
            raise ValueError(
                f"{field}[{i}] sets pre-activation variances of magnitude {q:.3g}, outside what "
                f"{np.dtype(dtype).name} resolves for activation {name!r} ([{floor:.3g}, "
                f"{float(fi.max):.3g}]); only the positively homogeneous (degree 1) relu, "
                f"leaky relu and linear are rescaled exactly; rescale the weights"
                f"{float64_hint(dtype, what='weights')}"
            )


def _check_fits(what: str, values: dict, dtype) -> None:
    """Refuse to *return* true-scale numbers that the dtype cannot hold (the weights' scale
    overflowed or underflowed them): ``values`` maps a name to (scaled array, exponent)."""
    fi = jnp.finfo(dtype)
    for name, (arr, exp) in values.items():
        mag = np.abs(np.asarray(arr, dtype=float))
        top = mag.max() if mag.size else 0.0
        if top == 0:
            continue
        log2 = math.log2(top) + int(exp)
        if not (math.log2(float(fi.tiny)) <= log2 <= math.log2(float(fi.max))):
            raise ValueError(
                f"weights: {what} {name} reaches about 1e{log2 * math.log10(2):.0f}, beyond "
                f"{np.dtype(dtype).name} ([{float(fi.tiny):.3g}, {float(fi.max):.3g}]), because "
                f"of the weights' scale; deep_rf_risk evaluates the risk in rescaled form, or "
                f"rescale the weights{float64_hint(dtype, what='weights')}"
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

    Returns one :class:`LayerStats` per layer.  Jittable for fixed static options.  Concrete
    inputs are validated (DRF-13): the statistics must be representable in the weights'
    float dtype, else ``ValueError``.
    """
    sigma = get_activation(activation)
    _check_choice("recursion", recursion, RECURSIONS)
    Ws = _check_weights("weights", weights)
    d = np.shape(Ws[0])[1]
    omega0 = _check_input_cov(input_cov, d)
    check_recursion(activation, recursion, centered=bool(centered), depth=len(Ws))
    dtype = _weights_dtype(Ws)
    _check_dtype_range(dtype, weights=Ws, input_cov=omega0)
    true, scaled, exps = _true_layers_jit(Ws, sigma, _input_cov(omega0, d, dtype),
                                          bool(centered), recursion)
    if is_concrete((scaled, exps)):
        if not _rescaled(sigma):
            _check_scales("weights", sigma.name,
                          [jnp.max(jnp.diagonal(st.pre_cov)) for st in scaled], dtype)
        for i, (st, ex) in enumerate(zip(scaled, exps)):
            _check_fits(f"layer {i + 1}'s", {"pre_cov": (st.pre_cov, 2 * ex),
                                             "cov": (st.cov, 2 * ex)}, dtype)
    return true


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
    """(DRF-7)-(DRF-10) in rescaled form (DRF-13): returns ``(pop, exps, qmax)`` where the
    true eigenvalues are ``pop.eigenvalues 2^exps[0]``, the true coefficients
    ``pop.target_coeffs 2^exps[1]`` and the true signal and residual ``2^exps[2]`` times
    theirs; ``qmax`` is each layer's largest pre-activation variance (student, then teacher)."""
    stats, exps = _layers(weights, sigma, omega0, centered, recursion)
    qmax = [jnp.max(jnp.diagonal(st.pre_cov)) for st in stats]
    student, E = stats[-1], exps[-1]
    k = student.cov.shape[0]
    second = (student.cov + student.mean[:, None] * student.mean[None, :]) / k
    s, V = jnp.linalg.eigh(0.5 * (second + second.T))
    tol = jnp.max(s) * k * jnp.finfo(s.dtype).eps
    s = jnp.where(s > tol, s, 0.0)
    zero = jnp.zeros((), jnp.int32)
    if target == "shared":  # (DRF-7): f* = <z, theta>
        coeffs = V.T @ theta
        signal = jnp.sum(s * coeffs**2)
        pop = DeepRFPopulation(s, coeffs, signal, jnp.zeros_like(signal))
        return pop, (2 * E, zero, 2 * E), jnp.stack(qmax)
    d = omega0.shape[0]
    if target != "teacher":  # linear (DRF-8): f* = <beta, x>/sqrt(d); cross moment scales 2^E
        signal = beta @ omega0 @ beta / d
        cross = student.lin @ (omega0 @ beta) / math.sqrt(d * k)
        Et = zero
    else:  # teacher (DRF-10): f* = <theta, h_t(x)>/sqrt(k_t); its statistics scale 2^Et
        tstats, texps = _layers(teacher_weights, sigma_t, omega0, centered, recursion)
        qmax += [jnp.max(jnp.diagonal(st.pre_cov)) for st in tstats]
        teach, Et = tstats[-1], texps[-1]
        kt = teach.cov.shape[0]
        signal = (theta @ teach.cov @ theta + (teach.mean @ theta) ** 2) / kt
        joint = student.lin @ omega0 @ teach.lin.T + student.mean[:, None] * teach.mean[None, :]
        cross = joint @ theta / math.sqrt(k * kt)
    proj = V.T @ cross
    pos = s > 0
    coeffs = jnp.where(pos, proj / jnp.where(pos, s, 1.0), 0.0)
    explained = jnp.sum(jnp.where(pos, proj * coeffs, 0.0))
    residual = jnp.maximum(signal - explained, 0.0)
    pop = DeepRFPopulation(s, coeffs, signal, residual)
    return pop, (2 * E, Et - E, 2 * Et), jnp.stack(qmax)


_population_jit = jax.jit(_population, static_argnums=(5, 6, 7, 8, 9))


@jax.jit
def _risk_from_population(pop, exps, n, ridge, noise):
    """(DRF-11) with ridge_risk's rescaled core: the spectrum and coefficients stay in their
    rescaled form and only the risks are rounded to the dtype."""
    s_exp, b_exp, p_exp = exps
    residual = ldexp(pop.residual, p_exp)
    r = _ridge_risk(pop.eigenvalues, pop.target_coeffs, n, ridge, noise + residual,
                    s_exp, b_exp)
    bias = r.bias + residual
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
    d, k = np.shape(Ws[0])[1], np.shape(Ws[-1])[0]
    omega0 = _check_input_cov(input_cov, d)
    check_recursion(activation, recursion, centered=bool(centered), depth=len(Ws))
    sigma_t, Wt = None, None
    if target == "shared":
        theta = _check_vector("theta", theta, k, "the readout of the shared target "
                              "f* = <h_L, theta>/sqrt(k_L)")
    elif target == TARGETS[1]:  # "linear"
        beta = _check_vector("beta", beta, d, "the linear target f* = <beta, x>/sqrt(d)")
    else:
        if teacher_weights is None:
            raise ValueError("teacher_weights is required for target='teacher'")
        Wt = _check_weights("teacher_weights", teacher_weights, d)
        sigma_t = get_activation(activation if teacher_activation is None
                                 else teacher_activation, field="teacher_activation")
        check_recursion(sigma_t, recursion, centered=bool(centered), depth=len(Wt),
                        field="teacher_activation")
        theta = _check_vector("theta", theta, np.shape(Wt[-1])[0], "the teacher readout "
                              "f* = <h_t, theta>/sqrt(k_t)")
    dtype = _weights_dtype(Ws, Wt)
    _check_dtype_range(dtype, weights=Ws, teacher_weights=Wt, input_cov=omega0, theta=theta,
                       beta=beta)
    omega0 = _input_cov(omega0, d, dtype)
    Ws = [jnp.asarray(W, dtype) for W in Ws]
    Wt = None if Wt is None else [jnp.asarray(W, dtype) for W in Wt]
    theta = None if theta is None else jnp.asarray(theta, dtype)
    beta = None if beta is None else jnp.asarray(beta, dtype)
    return (Ws, Wt, theta, beta, omega0, sigma, sigma_t, target, bool(centered), recursion)


def _check_population(args, pop, exps, qmax, dtype) -> None:
    """Concrete checks after the layer recursion, before any risk (DRF-13)."""
    Ws, Wt, _theta, _beta, _omega0, sigma, sigma_t, target, _centered, _recursion = args
    qmax = np.asarray(qmax, dtype=float)
    if not _rescaled(sigma):
        _check_scales("weights", sigma.name, qmax[: len(Ws)], dtype)
    if Wt is not None and not _rescaled(sigma_t):
        _check_scales("teacher_weights", sigma_t.name, qmax[len(Ws):], dtype)
    signal = float(pop.signal)
    if signal > 0:
        coefficients = "beta" if target == "linear" else "theta"  # the target's, not sigma's
        check_power(coefficients,
                    math.log(signal) + int(exps[2]) * math.log(2.0), dtype)


def deep_rf_population(weights, *, activation, target: str = "shared", theta=None, beta=None,
                       teacher_weights=None, teacher_activation=None, input_cov=None,
                       centered: bool = True, recursion: str = "linearized"
                       ) -> DeepRFPopulation:
    """Eigenvalues, target coefficients and unexplained residual (DRF-7)-(DRF-10).

    Same arguments as :func:`deep_rf_risk` without ``n``, ``ridge``, ``noise``.  The returned
    numbers must be representable in the weights' dtype: weights so large or small that they
    are not raise ``ValueError`` (:func:`deep_rf_risk` still evaluates the risk for them).
    """
    args = _prepare(weights, activation, target, theta, beta, teacher_weights,
                    teacher_activation, input_cov, centered, recursion)
    dtype = args[4].dtype
    pop, exps, qmax = _population_jit(*args)
    if is_concrete((pop, exps)):
        _check_population(args, pop, exps, qmax, dtype)
        s_exp, b_exp, p_exp = (int(x) for x in exps)
        _check_fits("the feature covariance's", {"eigenvalues": (pop.eigenvalues, s_exp),
                                                 "target_coeffs": (pop.target_coeffs, b_exp),
                                                 "signal": (pop.signal, p_exp)}, dtype)
    s_exp, b_exp, p_exp = exps
    return DeepRFPopulation(ldexp(pop.eigenvalues, s_exp), ldexp(pop.target_coeffs, b_exp),
                            ldexp(pop.signal, p_exp), ldexp(pop.residual, p_exp))


def deep_rf_risk(weights, *, activation, n, ridge, noise=0.0, target: str = "shared",
                 theta=None, beta=None, teacher_weights=None, teacher_activation=None,
                 input_cov=None, centered: bool = True, recursion: str = "linearized"
                 ) -> RidgeRisk:
    r"""Deterministic-equivalent ridge risk of deep random features (DRF-11).

    Args:
      weights: frozen ``[W_1, ..., W_L]`` (``W_l``: ``(k_l, k_{l-1})``, ``k_0 = d``), e.g.
        :func:`rfsim.networks.deep_weights`; layer l computes
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
    ``ValueError`` naming the field, the value and what is allowed.  relu, leaky relu and
    linear layers are evaluated rescaled by powers of two, so the risk is right at any
    weight scale;
    other activations must keep every layer's pre-activation variance inside the dtype
    (DRF-13).
    """
    if is_concrete(n) and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                           or n < 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    args = _prepare(weights, activation, target, theta, beta, teacher_weights,
                    teacher_activation, input_cov, centered, recursion)
    dtype = args[4].dtype
    require_exact("n", n, dtype)
    require_in_range("n", n, dtype)
    check_ridge(ridge, dtype)
    require_nonnegative("noise", noise, dtype)
    pop, exps, qmax = _population_jit(*args)
    if is_concrete((pop, exps, ridge, n)):
        _check_population(args, pop, exps, qmax, dtype)
        s = np.asarray(pop.eigenvalues, dtype=float)
        if s.max() > 0:  # the ridgeless threshold n == rank, against the true spectrum scale
            check_ridge(ridge, dtype, s_max=float(s.max()), s_exp=int(exps[0]),
                        threshold=int(n) == int((s > 0).sum()))
    ridge, noise = jnp.broadcast_arrays(jnp.asarray(ridge, dtype), jnp.asarray(noise, dtype))
    return _risk_from_population(pop, exps, jnp.asarray(n, dtype), ridge, noise)
