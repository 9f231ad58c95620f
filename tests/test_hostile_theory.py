"""Hostile inputs to the theory API (issue 12, items 3, 6, 9, 13): every input that passes
validation gives a finite, correct result; every other one a ValueError naming the field,
the value and what is allowed."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.theory import kernels as tk

X = np.random.default_rng(0).normal(size=(4, 5))


# --------------------------------------------------------------------------- kernels (3, 13)


def test_nngp_huge_w_std_is_refused_not_nan():
    with pytest.raises(ValueError, match=r"w_std must be <= 1\.34\d*e\+154.*got 1e\+200"):
        tk.nngp(X, depth=2, w_std=1e200)


def test_nngp_w_std_whose_square_underflows_is_refused():
    with pytest.raises(ValueError, match=r"w_std must be 0 or >= .*got 1e-200"):
        tk.nngp(X, depth=2, w_std=1e-200)


@pytest.mark.parametrize("field", ["w_std", "b_std"])
def test_nngp_non_scalar_scales_are_refused(field):
    with pytest.raises(ValueError, match=rf"{field} must be a single number >= 0, got \[1\. 2\.\]"):
        tk.nngp(X, depth=2, **{field: np.array([1, 2])})


def test_nngp_growth_over_depth_is_refused_with_the_allowed_depth():
    # relu, w_std = 10: the variance grows 50-fold per layer; the last finite layer is known
    with pytest.raises(ValueError, match=r"depth must be <= \d+ for relu .*got depth = 400"):
        tk.nngp(X, depth=400, w_std=10.0)
    # just below the bound the result is finite and equals the homogeneous closed form
    q = np.sum(X * X, -1) / X.shape[-1]
    depth = 150
    K = tk.nngp(X, depth=depth, w_std=10.0, diagonal=True)
    expected = q * 100.0 * 50.0**depth
    np.testing.assert_allclose(K, expected, rtol=1e-12)


def test_inputs_whose_norm_overflows_are_refused():
    with pytest.raises(ValueError, match=r"x1 must have every \|\|x\|\|\^2 <= .*got \|\|x1\[\d\]\|\|\^2 = 1e4"):
        tk.ntk(X * 1e200, depth=2)


def test_inputs_whose_norm_underflows_are_refused():
    with pytest.raises(ValueError, match=r"x1 must have \|\|x\|\|\^2/d = 0 or >= "):
        tk.nngp(X * 1e-170, depth=1)


def test_non_finite_output_of_a_quadrature_activation_is_never_returned():
    with pytest.raises(ValueError, match=r"the NNGP is not finite .* gelu"):
        tk.nngp(X, depth=3, activation="gelu", w_std=1e100)


def test_dot_product_growth_is_checked_too():
    with pytest.raises(ValueError, match=r"depth must be <= \d+ for relu"):
        tk.dot_product(np.linspace(-1, 1, 3), depth=1000, w_std=3.0)


# --------------------------------------------------------------------------- kernels (6)


def _jaxpr_lines(depth, activation="relu"):
    fn = lambda x: tk.kernels(x, depth=depth, activation=activation, b_std=0.1)  # noqa: E731
    return len(str(jax.make_jaxpr(fn)(jnp.asarray(X))).splitlines())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_recursion_does_not_unroll_depth(activation):
    """The compiled program is the same size at depth 2 and 200 (compile time and memory
    were quadratic in depth; depth 100 ran out of memory)."""
    assert _jaxpr_lines(2, activation) == _jaxpr_lines(200, activation)


def test_deep_kernels_match_the_homogeneous_closed_form_diagonal():
    """relu, b = 0: K^{l}(x, x) = q (w^2/2)^{l-1} w^2 and the NTK diagonal is
    (depth + 1) K on the diagonal at w^2 = 2 (K-11), at a depth that used to be refused
    by compile memory."""
    q = np.sum(X * X, -1) / X.shape[-1]
    out = tk.kernels(X, depth=300, w_std=math.sqrt(2.0))
    np.testing.assert_allclose(np.diag(out.nngp), 2.0 * q, rtol=1e-12)
    np.testing.assert_allclose(np.diag(out.ntk), 301 * 2.0 * q, rtol=1e-12)
    assert np.all(np.isfinite(out.nngp)) and np.all(np.isfinite(out.ntk))
