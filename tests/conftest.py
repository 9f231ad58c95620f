"""Test-session configuration: float64 everywhere (tolerances are dtype-aware: see
tests/helpers.py), strict dtype promotion (an implicit float32/float64 or int/float mix is
an error, here and in the CLI subprocesses the tests start), tests/ importable
(``from helpers import ...``), and a fixture that keeps toy model families from leaking
between tests."""

import os
import sys
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
os.environ["JAX_NUMPY_DTYPE_PROMOTION"] = "strict"  # for `rfsim` subprocesses
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def registry():
    """The model registry, restored after the test: register toy families freely."""
    from rfsim import models

    models._load_builtins()
    saved = dict(models._REGISTRY)
    yield models
    models._REGISTRY.clear()
    models._REGISTRY.update(saved)
