"""Test-session configuration: float64 everywhere (tolerances are dtype-aware)."""

import jax

jax.config.update("jax_enable_x64", True)
