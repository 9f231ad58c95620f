"""Test-session configuration: float64 everywhere (tolerances are dtype-aware: see
tests/helpers.py), strict dtype promotion (an implicit float32/float64 or int/float mix is
an error, here and in the CLI subprocesses the tests start), tests/ importable
(``from helpers import ...``), and a fixture that keeps toy model families from leaking
between tests.

Compiled programs are shared across the test session's processes (the xdist workers and
every `rfsim` subprocess a test starts) through JAX's persistent compilation cache, in one
directory per user under the system's temp folder (``RFSIM_TEST_JAX_CACHE`` overrides it):
on 2 cores the CLI tests spend most of their time compiling the same small programs."""

import os
import sys
import tempfile
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
os.environ["JAX_NUMPY_DTYPE_PROMOTION"] = "strict"  # for `rfsim` subprocesses
_CACHE = os.environ.get("RFSIM_TEST_JAX_CACHE") or str(
    Path(tempfile.gettempdir()) / f"rfsim-tests-jax-cache-{os.getuid()}")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # subprocesses inherit it
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.1"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
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
