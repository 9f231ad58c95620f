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


ACTIVATIONS: dict[str, Activation] = {
    "relu": _relu,
    "erf": erf,
    "tanh": jnp.tanh,
    "gelu": _gelu,
    "linear": _linear,
}


def get_activation(activation: str | Activation, *, field: str = "activation") -> Activation:
    """Resolve an activation name (relu, erf, tanh, gelu, linear) or pass a callable through."""
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"{field} must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}"
        + closest(activation, ACTIVATIONS)
    )
