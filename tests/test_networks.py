"""rfsim.networks (theory/networks.md N-1 – N-6): the one MLP against an independent numpy
forward pass, both parameterizations the same function at initialization, the weight kinds
inside a stored network, the drawn-on-the-fly driver against the same draws applied by hand,
and the architecture validator naming the field."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim import networks as N
from rfsim.features import deep_random_features

D, WIDTH = 5, 12


def _x(n=7, seed=3):
    return jax.random.normal(jax.random.key(seed), (n, D))


def _numpy_forward(Ws, bs, x, c, beta, phi):
    """h^l = c_l a W^l + beta_l b^l (N-1), written out in numpy."""
    a = np.asarray(x)
    for l, (W, b) in enumerate(zip(Ws, bs)):
        h = c[l] * a @ np.asarray(W) + beta[l] * np.asarray(b)
        a = phi(h) if l < len(Ws) - 1 else h
    return a[:, 0]


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_mlp_is_the_layer_of_n1(parameterization):
    apply_fn, params = N.mlp(jax.random.key(0), D, depth=2, width=WIDTH, w_std=1.3, b_std=0.2,
                             activation="erf", parameterization=parameterization)
    Ws, bs = apply_fn.arrays(params)
    dims = (D, WIDTH, WIDTH)
    if parameterization == "ntk":
        c, beta = [1.3 / np.sqrt(n) for n in dims], [0.2] * 3
    else:
        c, beta = [1.0] * 3, [1.0] * 3
    from scipy.special import erf

    want = _numpy_forward(Ws, bs, _x(), c, beta, erf)
    np.testing.assert_allclose(np.asarray(apply_fn(params, _x())), want, rtol=1e-12)


def test_both_parameterizations_are_one_function_at_initialization():
    f = {p: N.mlp(jax.random.key(4), D, depth=3, width=WIDTH, w_std=1.7, b_std=0.3,
                  parameterization=p) for p in N.PARAMETERIZATIONS}
    outs = [np.asarray(apply_fn(params, _x())) for apply_fn, params in f.values()]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12)
    assert np.std(outs[0]) > 0.05  # not a trivially constant network


@pytest.mark.parametrize("kind", ["orthogonal", "low_rank", "sparse"])
def test_structured_hidden_matrices_inside_the_stored_network(kind):
    n = 64
    apply_fn, params = N.mlp(jax.random.key(1), D, depth=3, width=n, kind=kind, rank=8,
                             density=0.25)
    Ws, _ = apply_fn.arrays(params)
    for W in map(np.asarray, Ws[1:3]):  # W^2, W^3: the kind; W^1 and the readout: iid
        if kind == "orthogonal":
            np.testing.assert_allclose(W @ W.T / n, np.eye(n), atol=1e-12)
        elif kind == "low_rank":
            assert np.linalg.matrix_rank(W) == 8
        else:
            assert abs(np.mean(W == 0) - 0.75) < 0.03
    assert np.linalg.matrix_rank(np.asarray(Ws[0])) == D


def test_propagate_is_the_same_layer_on_draws_made_by_hand():
    key, x = jax.random.key(9), _x(4)
    h, stacked = N.propagate(key, x, depth=3, width=WIDTH, activation="tanh", w_std=1.5,
                             b_std=0.1, reduce=lambda h: jnp.sum(h * h))
    a, want = np.asarray(x), []
    for l in (1, 2, 3):
        k_W, k_b = jax.random.split(jax.random.fold_in(key, l))
        W = np.asarray(jax.random.normal(k_W, (a.shape[1], WIDTH)))
        b = np.asarray(jax.random.normal(k_b, (WIDTH,)))
        pre = 1.5 / np.sqrt(a.shape[1]) * a @ W + 0.1 * b
        want.append(np.sum(pre * pre))
        a = np.tanh(pre)
    np.testing.assert_allclose(np.asarray(stacked), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(h), np.arctanh(a), rtol=1e-9)


def test_deep_random_features_with_offsets_and_deep_weights_prefix():
    Ws = N.deep_weights(jax.random.key(2), D, [9, 6])
    assert np.array_equal(Ws[0], N.deep_weights(jax.random.key(2), D, [9])[0])
    offsets = [jnp.full(9, 0.3), jnp.full(6, -0.2)]
    got = deep_random_features(_x(), Ws, "relu", offsets=offsets)
    a = np.asarray(_x())
    for W, c in zip(Ws, offsets):
        a = np.maximum(a @ np.asarray(W).T / np.sqrt(W.shape[1]), 0) - np.asarray(c)
    np.testing.assert_allclose(np.asarray(got), a, rtol=1e-12)
    with pytest.raises(ValueError, match="offsets"):
        deep_random_features(_x(), Ws, "relu", offsets=offsets[:1])


@pytest.mark.parametrize("field,value,match", [
    ("width", 0, "width must be an integer >= 1, got 0"),
    ("depth", 40, r"depth must be <= 32 \(why\), got 40"),
    ("activation", "rleu", r"activation must be one of .* got 'rleu' \(did you mean 'relu'"),
    ("parameterization", "mup", "parameterization must be one of"),
    ("w_std", 0.0, "w_std must be > 0"),
    ("b_std", -1.0, "b_std must be >= 0"),
])
def test_check_architecture_names_the_field(field, value, match):
    good = dict(width=4, depth=2, activation="relu", parameterization="ntk", w_std=1.0,
                b_std=0.0)
    N.check_architecture(SimpleNamespace(**good), max_depth=32, why="why")
    with pytest.raises(ValueError, match=match):
        N.check_architecture(SimpleNamespace(**{**good, field: value}), max_depth=32,
                             why="why")


@pytest.mark.parametrize("family", ["mlp-kernel", "structured-weights", "signal-propagation",
                                    "wide-training"])
def test_architecture_fields_are_declared_once(family):
    """Every network family's architecture fields carry the one documentation of N-6."""
    import dataclasses

    from rfsim.models import get_model

    fields = {f.name: f for f in dataclasses.fields(get_model(family).config)}
    shared = [name for name in N.ARCH_DOCS if name in fields]
    assert {"width", "depth", "activation", "w_std", "b_std"} <= set(shared)
    for name in shared:
        assert fields[name].metadata["doc"].startswith(N.ARCH_DOCS[name]), (family, name)


def test_mlp_spec_refuses_bad_kinds_before_compute():
    with pytest.raises(ValueError, match="kind must be one of"):
        N.mlp(jax.random.key(0), D, depth=2, width=4, kind="haar")
    with pytest.raises(ValueError, match="density must be in"):
        N.mlp(jax.random.key(0), D, depth=2, width=4, kind="sparse", density=0.0)
