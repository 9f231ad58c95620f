"""Signal propagation (theory/signal_propagation.md SP-1 – SP-9) and the family
``signal-propagation``: the maps against the NNGP recursion and Monte Carlo, chi_1 closed
forms, fixed points and depth scales, relu's critical point, the boundary (SP-9), the family
against its prediction with a twin that fails, and validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import agree, keys
from scipy import integrate

import rfsim.models.signal_propagation as fam
from rfsim.engine.keys import SeedKeys
from rfsim.check import statistical
from rfsim.models import get_model
from rfsim.theory import signal_propagation as sp
from rfsim.theory.kernels import nngp


def _pair(q0, c0, d=6):
    """Two inputs with ||x||^2/d = q0 and correlation c0."""
    x = np.zeros((2, d))
    x[0, 0] = x[1, 0] = math.sqrt(q0 * d)
    x[1, 0] *= c0
    x[1, 1] = math.sqrt(q0 * d * (1 - c0 * c0))
    return jnp.asarray(x)


@pytest.mark.parametrize("activation", ["erf", pytest.param("tanh", marks=pytest.mark.slow)])
def test_iterates_are_the_normalized_nngp(activation):
    """(SP-8) = (K-8): q^l is the NNGP diagonal and c^l its normalized off-diagonal."""
    w, b, depth = 1.7, 0.4, 5
    q, c = sp.iterate_maps(0.8, 0.3, depth, activation=activation, w_std=w, b_std=b)
    x = _pair(0.8, 0.3)
    for l in (2, depth):
        K = np.asarray(nngp(x, depth=l - 1, activation=activation, w_std=w, b_std=b))
        assert q[l - 1] == pytest.approx(K[0, 0], rel=1e-12)
        assert c[l - 1] == pytest.approx(K[0, 1] / K[0, 0], rel=1e-10)


@pytest.mark.parametrize("activation", ["erf", pytest.param("tanh", marks=pytest.mark.slow)])
def test_correlation_map_at_the_fixed_point_is_the_nngp(activation):
    """Inputs scaled so that q^1 = q*: every layer stays at q*, and the correlation map
    (SP-2) with its fixed-point denominator is the NNGP's normalized kernel layer by layer."""
    w, b = 1.5, 0.3
    q_star = float(sp.fixed_point_q(activation=activation, w_std=w, b_std=b))
    assert float(sp.length_map(q_star, activation=activation, w_std=w, b_std=b)) == \
        pytest.approx(q_star, rel=1e-13)
    q0 = (q_star - b * b) / (w * w)  # q^1 = w^2 q0 + b^2 = q*
    x = _pair(q0, 0.2)
    c = (w * w * 0.2 * q0 + b * b) / q_star  # c^1
    for _ in range(3):
        c = float(sp.correlation_map(c, q_star, activation=activation, w_std=w, b_std=b))
    K = np.asarray(nngp(x, depth=3, activation=activation, w_std=w, b_std=b))  # layer 4
    assert K[0, 0] == pytest.approx(q_star, rel=1e-12)
    assert c == pytest.approx(K[0, 1] / q_star, rel=1e-10)


def test_maps_against_monte_carlo():
    """(SP-1), (SP-2) for tanh against 4e5 Gaussian samples (4 sem)."""
    w, b, q, c = 1.3, 0.2, 0.9, 0.6
    z = np.random.default_rng(0).standard_normal((2, 400_000))
    u = math.sqrt(q) * z[0]
    v = math.sqrt(q) * (c * z[0] + math.sqrt(1 - c * c) * z[1])
    num = w * w * np.tanh(u) * np.tanh(v) + b * b
    den = w * w * np.tanh(u) ** 2 + b * b
    agree(den[None].reshape(400, 1000).mean(1),
          sp.length_map(q, activation="tanh", w_std=w, b_std=b))
    ratio = num.mean() / den.mean()  # delta method for the ratio of means
    se = np.std(num / den.mean() - ratio * den / den.mean()) / math.sqrt(num.size)
    got = float(sp.correlation_map(c, q, activation="tanh", w_std=w, b_std=b))
    assert abs(got - ratio) < 4 * se, (got, ratio, se)


@pytest.mark.parametrize("q", [0.1, 1.0, 7.0])
def test_chi1_closed_forms(q):
    for w in (0.7, 1.4142135623730951, 2.0):
        assert float(sp.chi_1(q, activation="relu", w_std=w)) == pytest.approx(w * w / 2,
                                                                               rel=1e-14)
        assert float(sp.chi_1(q, activation="erf", w_std=w)) == pytest.approx(
            w * w * 4 / math.pi / math.sqrt(1 + 4 * q), rel=1e-13)
    sech4, _ = integrate.quad(lambda z: np.cosh(math.sqrt(q) * z) ** -4
                              * np.exp(-z * z / 2) / math.sqrt(2 * math.pi), -12, 12,
                              epsabs=1e-14, limit=200)
    assert float(sp.chi_1(q, activation="tanh", w_std=1.3)) == pytest.approx(1.69 * sech4,
                                                                              rel=1e-9)


def test_chi1_is_the_slope_of_the_correlation_map_at_one():
    w, b = 1.8, 0.2
    q_star = sp.fixed_point_q(activation="erf", w_std=w, b_std=b)
    eps = 1e-6
    slope = (1 - sp.correlation_map(1 - eps, q_star, activation="erf", w_std=w, b_std=b)) / eps
    assert float(slope) == pytest.approx(float(sp.chi_1(q_star, activation="erf", w_std=w)),
                                         rel=1e-5)


def test_erf_length_slope_and_fixed_point_closed_form():
    """(SP-6) against d/dq of L(q) = w^2 (2/pi) asin(2q/(1+2q)) + b^2 (K-5)."""
    w, b, q = 1.6, 0.3, 0.7
    exact = w * w * (2 / math.pi) * 2 / ((1 + 2 * q) * math.sqrt(1 + 4 * q))
    assert float(sp.length_slope(q, activation="erf", w_std=w, b_std=b)) == pytest.approx(
        exact, rel=1e-10)
    q_star = float(sp.fixed_point_q(activation="erf", w_std=w, b_std=b))
    assert w * w * 2 / math.pi * math.asin(2 * q_star / (1 + 2 * q_star)) + b * b == \
        pytest.approx(q_star, rel=1e-13)


def test_relu_critical_point():
    """relu: chi_1 = w^2/2, critical at (w^2, b^2) = (2, 0) and only there (SP-4, SP-9)."""
    at = sp.analyze(activation="relu", w_std=math.sqrt(2), b_std=0.0, q0=0.7)
    assert float(at.q_star) == pytest.approx(0.7) and float(at.chi_1) == pytest.approx(1.0)
    assert math.isinf(float(at.xi_c))
    w2, b2 = sp.critical_line(jnp.array([0.1, 1.0, 5.0]), activation="relu")
    np.testing.assert_allclose(w2, 2.0, rtol=1e-14)
    np.testing.assert_allclose(b2, 0.0, atol=1e-14)
    ordered = sp.analyze(activation="relu", w_std=1.2, b_std=0.3)
    assert float(ordered.q_star) == pytest.approx(0.09 / (1 - 0.72), rel=1e-13)
    assert float(ordered.chi_1) == pytest.approx(0.72) and float(ordered.c_star) == 1.0
    assert math.isinf(float(sp.analyze(activation="relu", w_std=1.5, b_std=0.1).q_star))


def test_erf_boundary_has_chi1_one():
    """(SP-9) points are on chi_1 = 1 with the given q* as fixed point; a point 5% off in
    w^2 is ordered or chaotic on the right side."""
    w2, b2 = sp.critical_line(jnp.array([0.3, 1.0]), activation="erf")
    for W2, B2, q in zip(np.asarray(w2), np.asarray(b2), (0.3, 1.0)):
        at = sp.analyze(activation="erf", w_std=math.sqrt(W2), b_std=math.sqrt(B2))
        assert float(at.q_star) == pytest.approx(q, rel=1e-10)
        assert float(at.chi_1) == pytest.approx(1.0, rel=1e-10)
        below = sp.analyze(activation="erf", w_std=math.sqrt(0.95 * W2), b_std=math.sqrt(B2))
        above = sp.analyze(activation="erf", w_std=math.sqrt(1.05 * W2), b_std=math.sqrt(B2))
        assert float(below.chi_1) < 1 < float(above.chi_1)
        assert float(below.c_star) == 1.0 and float(above.c_star) < 1.0


def test_chaotic_fixed_point_and_depth_scale():
    """(SP-5), (SP-7): c* is fixed and stable; |c^l - c*| shrinks by chi_c per layer."""
    w, b = 2.5, 0.3
    at = sp.analyze(activation="erf", w_std=w, b_std=b)
    assert float(at.chi_1) > 1 and 0 < float(at.c_star) < 1
    kw = dict(activation="erf", w_std=w, b_std=b)
    assert float(sp.correlation_map(at.c_star, at.q_star, **kw)) == pytest.approx(
        float(at.c_star), rel=1e-13)
    c, gaps = float(at.c_star) + 0.01, []
    for _ in range(8):
        c = float(sp.correlation_map(c, at.q_star, **kw))
        gaps.append(c - float(at.c_star))
    assert gaps[-1] / gaps[-2] == pytest.approx(float(at.chi_c), rel=1e-3)
    assert float(at.xi_c) == pytest.approx(-1 / math.log(float(at.chi_c)))


# --------------------------------------------------------------------------- the family

SEEDS = 8


@pytest.fixture(scope="module")
def chaotic():
    """A chaotic erf network (chi_1 = 1.33), its simulation and its prediction."""
    cfg = fam.SignalPropagationConfig(width=192, depth=8, activation="erf", n_pairs=4,
                                      w_std=2.5, b_std=0.3, c0=0.6)
    seeds = SeedKeys(keys(SEEDS, 3), keys(SEEDS, 4))
    out = jax.jit(jax.vmap(fam.simulate, in_axes=(0, None)))(seeds, cfg)
    return cfg, {m: np.asarray(v) for m, v in out.items()}, jax.jit(fam.predict)(cfg)


def _rows(out, pred, factor=1.0):
    """Summary-like rows of c and q per layer; the prediction multiplied by ``factor``."""
    rows = []
    for m in ("c", "q"):
        v = out[m]
        for l in range(v.shape[1]):
            rows.append({"metric": m, "layer": str(l + 1), "mean": repr(float(v[:, l].mean())),
                         "sem": repr(float(v[:, l].std(ddof=1) / math.sqrt(SEEDS))),
                         "theory": repr(factor * float(pred[m][l]))})
    return rows


def test_family_agrees_with_the_maps_and_a_wrong_map_fails(chaotic):
    cfg, out, pred = chaotic
    assert float(sp.analyze(activation="erf", w_std=2.5, b_std=0.3).chi_1) > 1.2
    spec = {"max_abs_z": 4.0, "rel_tol": 0.02}
    for m in ("c", "q"):
        ok, fig = statistical(_rows(out, pred), {**spec, "metric": m})
        assert ok, fig
        ok, fig = statistical(_rows(out, pred, 1.10), {**spec, "metric": m})
        assert not ok, fig  # a map off by 10%: detected
    c = out["c"].mean(0)
    assert np.all(np.diff(c) < 0)  # chaotic: decorrelation, layer after layer


def test_first_layer_is_exact_in_distribution(chaotic):
    """Layer 1 is a linear function of the exact input pair: no finite-width bias."""
    cfg, out, pred = chaotic
    agree(out["c"][:, :1], pred["c"][:1])
    assert out["c"].shape == (SEEDS, cfg.depth)


@pytest.mark.parametrize("values,match", [
    (dict(width=0), "width"),
    (dict(depth=0), "depth"),
    (dict(depth=5000), "depth"),
    (dict(activation="tahn"), "activation"),
    (dict(w_std=0.0), "w_std"),
    (dict(b_std=-0.1), "b_std"),
    (dict(q0=0.0), "q0"),
    (dict(c0=1.5), "c0"),
    (dict(n_pairs=0), "n_pairs"),
    (dict(d=1), "d"),
])
def test_bad_config_names_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        fam.SignalPropagationConfig(**values)


def test_registered_along_the_layer_axis():
    model = get_model("signal-propagation")
    assert model.metrics == ("q", "c") and model.axes == {"q": "layer", "c": "layer"}
    cfg = fam.SignalPropagationConfig(depth=7)
    assert list(model.coords(cfg)["layer"]) == list(range(1, 8))
