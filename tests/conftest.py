"""Test-session configuration: float64 everywhere (tolerances are dtype-aware: see
tests/helpers.py), tests/ importable (``from helpers import ...``), and a fixture that
keeps toy model families from leaking between tests."""

import sys
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
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
