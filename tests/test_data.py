"""rfsim.data, the one home for data (theory/data.md D-1..D-5): each sampler's distribution
checked by its moments, its draws fixed by its key, and bad sizes refused."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim import data


def test_sphere_inputs_are_on_the_sphere_of_radius_sqrt_d_with_identity_covariance():
    d = 5
    x = np.asarray(data.sphere_inputs(jax.random.key(0), 20_000, d), dtype=float)
    np.testing.assert_allclose(np.sum(x**2, -1), d, rtol=1e-5)
    # E x x^T = I: Monte Carlo error of an entry ~ sqrt(2/n) ~ 0.01
    np.testing.assert_allclose(x.T @ x / len(x), np.eye(d), atol=0.05)


def test_sphere_inputs_is_the_gaussian_draw_projected():
    """Same key, same bits: sqrt(d) g/||g|| with g = normal(key, (n, d)) (D-1); a different
    key gives a different draw."""
    key, n, d = jax.random.key(3), 7, 4
    g = jax.random.normal(key, (n, d))
    expect = g * (math.sqrt(d) / jnp.linalg.norm(g, axis=-1, keepdims=True))
    np.testing.assert_array_equal(data.sphere_inputs(key, n, d), expect)
    assert not np.array_equal(data.sphere_inputs(jax.random.key(4), n, d), expect)


def test_token_sequences_have_the_query_and_keys_on_the_unit_sphere():
    S, N, d = 4000, 3, 6
    X = np.asarray(data.token_sequences(jax.random.key(1), S, N, d), dtype=float)
    assert X.shape == (S, N + 1, d)
    np.testing.assert_allclose(np.linalg.norm(X, axis=-1), 1.0, rtol=1e-6)
    # uniform on S^{d-1}: E x x^T = I/d, and the tokens are independent: E <x_0, x_i> = 0
    tokens = X.reshape(-1, d)
    np.testing.assert_allclose(tokens.T @ tokens / len(tokens), np.eye(d) / d, atol=0.01)
    assert abs(np.mean(np.sum(X[:, 0] * X[:, 1], -1))) < 4 / math.sqrt(d * S)


def test_gaussian_inputs_have_the_spectrum_as_covariance():
    s = data.powerlaw_spectrum(4, 1.0)
    assert float(s.sum()) == pytest.approx(4.0, rel=1e-6)
    x = np.asarray(data.gaussian_inputs(jax.random.key(2), 40_000, s), dtype=float)
    np.testing.assert_allclose(np.mean(x**2, 0), np.asarray(s), rtol=0.04)


def test_label_noise_has_the_requested_standard_deviation():
    eps = np.asarray(data.label_noise(jax.random.key(5), 50_000, 0.09), dtype=float)
    assert np.std(eps) == pytest.approx(0.3, rel=0.02)
    assert abs(np.mean(eps)) < 4 * 0.3 / math.sqrt(50_000)


def test_data_keys_split_by_purpose_in_a_fixed_order():
    key = jax.random.key(9)
    k = data.data_keys(key)
    for i, part in enumerate(k):
        np.testing.assert_array_equal(jax.random.key_data(part),
                                      jax.random.key_data(jax.random.fold_in(key, i)))
    assert len({tuple(np.asarray(jax.random.key_data(p)).ravel()) for p in k}) == 4


def test_harmonic_draw_is_on_the_sphere_and_reproducible():
    draw = data.harmonic_draw(jax.random.key(6), 7, 3, n_centers=5)
    assert draw.centres.shape == (3, 5, 7) and draw.coeffs.shape == (3, 5)
    assert draw.centres.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(draw.centres, axis=-1), math.sqrt(7), rtol=1e-15)
    again = data.harmonic_draw(jax.random.key(6), 7, 3, n_centers=5)
    np.testing.assert_array_equal(draw.centres, again.centres)
    np.testing.assert_array_equal(draw.coeffs, again.coeffs)


@pytest.mark.parametrize("call, match", [
    (lambda: data.sphere_inputs(jax.random.key(0), 0, 3), "n must be an integer >= 1"),
    (lambda: data.sphere_inputs(jax.random.key(0), 3, 2.0), "d must be an integer"),
    (lambda: data.sphere_inputs(jax.random.key(0), 3, 2, jnp.int32), "dtype must be a floating"),
    (lambda: data.token_sequences(jax.random.key(0), 2, 0, 3), "N must be an integer >= 1"),
    (lambda: data.harmonic_draw(jax.random.key(0), 3, 2, n_centers=0),
     "n_centers must be an integer >= 1"),
])
def test_bad_sizes_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
