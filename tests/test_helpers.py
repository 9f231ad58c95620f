"""The shared helpers themselves: agree() passes a right prediction and fails a wrong one."""

import numpy as np
import pytest
from helpers import agree, keys, replace, tol

from rfsim.models import get_model


def test_agree_passes_and_its_twin_fails():
    rng = np.random.default_rng(0)
    samples = rng.normal(1.0, 0.5, size=(400, 3))
    assert "max |z|" in agree(samples, 1.0)
    with pytest.raises(AssertionError, match="worst gap"):
        agree(samples, 1.1)  # 0.1 off = 4 sem (0.025) away: fails at 4 sem with no allowance


def test_keys_are_fixed_and_distinct():
    import jax

    a, b = jax.random.key_data(keys(3)), jax.random.key_data(keys(3))
    assert (a == b).all() and len({tuple(k) for k in np.asarray(a)}) == 3


def test_replace_validates_and_tol_follows_dtype():
    cfg = get_model("linear-ridge").config(n=5, d=3)
    assert replace(cfg, ridge=0.5).ridge == 0.5
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        replace(cfg, ridge=-1.0)
    assert tol(np.float32(1)) > tol(np.float64(1))
