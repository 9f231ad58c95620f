"""Activation functions by name, shared by the simulators and the closed forms.

``get_activation("relu")`` returns a jax-differentiable elementwise callable;
a callable passed in is returned unchanged.  Unknown names raise a
``ValueError`` that lists the valid ones and suggests the closest.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from rfsim.validation import closest  # noqa: F401  (re-exported: its old home)

Activation = Callable[[jax.Array], jax.Array]


def _relu(z):
    return jnp.maximum(z, 0.0)


def _gelu(z):
    # exact (erf) GELU: z * Phi(z)
    return 0.5 * z * (1.0 + erf(z / jnp.sqrt(2.0).astype(jnp.result_type(z))))


def _linear(z):
    return z


def leaky_relu(slope: float = 0.01) -> Activation:
    """sigma(z) = max(z, 0) + slope * min(z, 0) (jax.nn.leaky_relu's convention).

    The returned callable carries its slope, so closed forms (rfsim.theory.gaussian, K-4)
    recognise it for any slope; a plain lambda would go to quadrature."""
    slope = float(slope)

    def _leaky(z):
        return jnp.where(z >= 0, z, slope * z)

    _leaky.leaky_slope = slope
    _leaky.__name__ = f"leaky_relu_{slope:g}"
    return _leaky


def _softplus(z):
    return jnp.logaddexp(z, 0.0)


ACTIVATIONS: dict[str, Activation] = {
    "relu": _relu,
    "erf": erf,
    "tanh": jnp.tanh,
    "gelu": _gelu,
    "linear": _linear,
    "leaky_relu": leaky_relu(0.01),
    "softplus": _softplus,
    "sin": jnp.sin,
}


def name_of(sigma: Activation) -> str | None:
    """The registered name of an activation callable, or None for any other callable."""
    for name, fn in ACTIVATIONS.items():
        if fn is sigma:
            return name
    return None


def leaky_slope(sigma: Activation) -> float | None:
    """The negative-side slope of a ``leaky_relu(...)`` callable, else None."""
    return getattr(sigma, "leaky_slope", None)


def is_homogeneous(sigma: Activation) -> bool:
    """Positively homogeneous of degree 1, ``phi(a z) = a phi(z)`` for ``a > 0``: relu,
    linear and every leaky relu (their Gaussian facts scale exactly with the variance)."""
    return name_of(sigma) in ("relu", "linear") or leaky_slope(sigma) is not None


def get_activation(activation: str | Activation, *, field: str = "activation") -> Activation:
    """Resolve an activation name (relu, erf, tanh, gelu, linear, leaky_relu (slope 0.01),
    softplus, sin) or pass a callable through."""
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"{field} must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}"
        + closest(activation, ACTIVATIONS)
    )
