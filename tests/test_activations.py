"""Activations are objects (rfsim.activations, theory/activations.md A-1..A-9): every built-in's
closed-form facts against independent references (scipy's adaptive quadrature, a numpy
tensor Gauss-Hermite rule, hand-derived constants) and against the package's own quadrature;
a new activation defined in one place and used unchanged by the kernels, deep random
features, signal propagation, Mei-Montanari and a simulated family; a wrong closed form
caught against quadrature."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from rfsim.activations import (
    ACTIVATIONS,
    Activation,
    check_facts,
    get_activation,
    is_homogeneous,
    leaky_relu,
    register,
)

BUILTINS = ["relu", "erf", "tanh", "gelu", "linear", "leaky_relu", "softplus", "sin", "cos"]
SMOOTH = ["erf", "tanh", "linear", "sin", "cos"]
PAIRS = [(0.5, 2.0, -0.7), (2.5, 0.4, 0.9), (1.3, 1.3, 1.3)]
POINTS = [(0.0, 1.0), (0.7, 0.4), (-1.2, 9.0)]


def tol(x=None) -> float:
    """Exact-comparison tolerance of the default float (the session runs float64)."""
    return 1e-10 if jnp.result_type(float) == jnp.float64 else 2e-4


def f64(fn, *args):
    return np.asarray(fn(*args), dtype=float)


# --------------------------------------------------------------------------- independent refs


#: the built-ins written again in plain Python (the references do not call the package)
PLAIN = {
    "relu": lambda z: max(z, 0.0),
    "erf": math.erf,
    "tanh": math.tanh,
    "gelu": lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
    "linear": lambda z: z,
    "leaky_relu": lambda z: z if z >= 0 else 0.01 * z,
    "softplus": lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
    "sin": math.sin,
    "cos": math.cos,
}


def _quad_moments(f, b, q):
    """(E f(U), E[(U - b) f(U)]/q, E f(U)^2), U ~ N(b, q), by scipy's adaptive quadrature
    split where U = 0 (the kink of relu-like activations); ``f`` a Python float function."""
    s = math.sqrt(q)
    z0 = -b / s
    out = []
    for g in (lambda z: f(b + s * z), lambda z: z * f(b + s * z) / s,
              lambda z: f(b + s * z) ** 2):
        out.append(sum(integrate.quad(
            lambda z: g(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), lo, hi,
            epsabs=1e-14, epsrel=1e-12, limit=200)[0] for lo, hi in ((-14, z0), (z0, 14))))
    return out


def _gh2(f, g, qx, qy, c, order=250):
    """E f(u) g(v) by a tensor Gauss-Hermite rule in numpy (smooth integrands: round-off)."""
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    rho = c / math.sqrt(qx * qy)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    u = math.sqrt(qx) * z1
    v = math.sqrt(qy) * (rho * z1 + math.sqrt(max(1 - rho * rho, 0.0)) * z2)
    return float(np.sum(np.outer(w, w) * np.asarray(f(jnp.asarray(u))) *
                        np.asarray(g(jnp.asarray(v)))))


# --------------------------------------------------------------------------- the built-ins


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_closed_forms_agree_with_quadrature(name):
    """Every closed-form fact of every built-in within the dtype's tolerance of the
    package's quadrature (A-9); a built-in that fails its own check would raise."""
    act = ACTIVATIONS[name]
    assert act.verify() is act
    assert isinstance(act, Activation) and act.name == name


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("b,q", POINTS)
def test_one_point_facts_against_adaptive_quadrature(name, b, q):
    """moments (closed or the split Gauss-Legendre rule, A-4) and mean against scipy."""
    act = get_activation(name)
    ref = _quad_moments(PLAIN[name], b, q)
    got = [float(v) for v in act.moments(b, q)]
    for g, r in zip(got, ref):
        assert abs(g - r) <= 1e-10 * max(1.0, abs(r)), (got, ref)
    mean_ref = _quad_moments(PLAIN[name], 0.0, q)[0]
    assert abs(float(act.mean(q)) - mean_ref) <= 1e-10 * max(1.0, abs(mean_ref))


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("qx,qy,rho", PAIRS)
def test_two_point_facts_of_smooth_activations_against_tensor_hermite(name, qx, qy, rho):
    act = get_activation(name)
    c = rho * math.sqrt(qx * qy) if rho <= 1 else math.sqrt(qx * qy)
    ref = _gh2(act, act, qx, qy, c)
    dref = _gh2(act.derivative, act.derivative, qx, qy, c)
    assert abs(float(act.two_point(qx, qy, c)) - ref) <= tol() * max(1.0, abs(ref))
    assert abs(float(act.derivative_two_point(qx, qy, c)) - dref) <= tol() * max(1.0, abs(dref))


def test_sin_cos_closed_forms_by_hand():
    """(A-5) E sin u sin v = e^{-(qx+qy)/2} sinh c, E cos u cos v = e^{-(qx+qy)/2} cosh c."""
    qx, qy, c = 0.7, 1.9, -0.5
    e = math.exp(-(qx + qy) / 2)
    assert float(get_activation("sin").two_point(qx, qy, c)) == pytest.approx(
        e * math.sinh(c), rel=1e-14)
    assert float(get_activation("cos").two_point(qx, qy, c)) == pytest.approx(
        e * math.cosh(c), rel=1e-14)
    assert float(get_activation("sin").derivative_two_point(qx, qy, c)) == pytest.approx(
        e * math.cosh(c), rel=1e-14)


def test_hermite_constants_closed_forms():
    """(A-8) (mu0, mu1, mu*) by hand: relu, leaky relu of slope a, sin, cos, erf, linear."""
    r = get_activation("relu").hermite()
    np.testing.assert_allclose(r, (1 / math.sqrt(2 * math.pi), 0.5,
                                   math.sqrt(0.25 - 1 / (2 * math.pi))), rtol=1e-14)
    a = 0.2
    mu0, mu1 = (1 - a) / math.sqrt(2 * math.pi), (1 + a) / 2
    np.testing.assert_allclose(leaky_relu(a).hermite(),
                               (mu0, mu1, math.sqrt((1 + a * a) / 2 - mu0**2 - mu1**2)),
                               rtol=1e-14)
    e = math.exp(-0.5)
    np.testing.assert_allclose(get_activation("sin").hermite(),
                               (0.0, e, math.sqrt((1 - e**4) / 2 - e * e)), rtol=1e-14)
    np.testing.assert_allclose(get_activation("cos").hermite(),
                               (e, 0.0, math.sqrt((1 + e**4) / 2 - e * e)), rtol=1e-14,
                               atol=1e-16)
    assert get_activation("linear").hermite() == (0.0, 1.0, 0.0)
    mu0, mu1, mus = get_activation("erf").hermite()
    assert mu0 == 0.0 and mu1 == pytest.approx(2 / math.sqrt(3 * math.pi), rel=1e-15)


def test_gelu_mean_and_constants():
    """(A-3) gelu: E[z Phi(z)] = q/sqrt(2 pi (1+q)); E sigma^2 at q = 1 is 1/3 + 1/(2 pi
    sqrt 3) (the quadrature reaches it to round-off)."""
    g = get_activation("gelu")
    q = np.array([0.2, 1.0, 7.0])
    np.testing.assert_allclose(g.mean(q), q / np.sqrt(2 * np.pi * (1 + q)), rtol=1e-15)
    mu0, mu1, mus = g.hermite()
    assert mu0 == pytest.approx(1 / (2 * math.sqrt(math.pi)), rel=1e-13)
    assert mu1 == pytest.approx(0.5, rel=1e-13)
    second = 1 / 3 + 1 / (2 * math.pi * math.sqrt(3))
    assert mus**2 == pytest.approx(second - mu0**2 - mu1**2, rel=1e-12)


@pytest.mark.parametrize("name,odd,even,degree", [
    ("relu", False, False, 1.0), ("erf", True, False, None), ("tanh", True, False, None),
    ("gelu", False, False, None), ("linear", True, False, 1.0), ("sin", True, False, None),
    ("cos", False, True, None), ("leaky_relu", False, False, 1.0), ("softplus", False, False,
                                                                      None)])
def test_properties(name, odd, even, degree):
    act = get_activation(name)
    assert (act.odd, act.even, act.degree) == (odd, even, degree)
    assert is_homogeneous(name) == (degree == 1.0)
    z = jnp.linspace(-3, 3, 13)
    if odd:
        np.testing.assert_allclose(act(-z), -act(z), atol=1e-15)
    if degree is not None:
        np.testing.assert_allclose(act(2.5 * z), 2.5**degree * act(z), rtol=1e-15)


@pytest.mark.parametrize("slope", [-1.0, 0.2, 1.0, 3.0])
def test_leaky_relu_of_any_slope(slope):
    act = leaky_relu(slope)
    assert act is leaky_relu(slope) is leaky_relu(slope=slope)  # one per slope: jit caches hit
    assert act.params == {"slope": slope}
    assert (act.odd, act.even) == (slope == 1.0, slope == -1.0)
    act.verify()
    # the one-point facts against scipy at a shifted mean
    ref = _quad_moments(lambda z: z if z >= 0 else slope * z, 0.4, 1.3)
    np.testing.assert_allclose([float(v) for v in act.moments(0.4, 1.3)], ref, rtol=1e-10)
    assert leaky_relu(0.01) is get_activation("leaky_relu")


def test_correlation_form_is_the_unit_variance_two_point():
    """(A-7) for degree-1 activations: (E sigma sigma, E sigma' sigma') at unit variances;
    refused for others."""
    rho = jnp.linspace(-1, 1, 9)
    one = jnp.ones_like(rho)
    for act in (get_activation("relu"), leaky_relu(-0.3), get_activation("linear")):
        g, h = act.correlation(rho)
        np.testing.assert_allclose(g, act.two_point(one, one, rho), rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(h, act.derivative_two_point(one, one, rho), rtol=1e-14)
    with pytest.raises(ValueError, match="degree-1"):
        get_activation("tanh").correlation(rho)


# --------------------------------------------------------------------------- names and callables


def test_names_and_callables_resolve():
    relu = get_activation("relu")
    assert get_activation(relu) is relu
    z = jnp.linspace(-2, 2, 5)
    np.testing.assert_array_equal(relu(z), jnp.maximum(z, 0))  # callable, as before

    def f(z):
        return jnp.tanh(z) + 0.1 * z

    a, b = get_activation(f), get_activation(f)
    assert a == b and hash(a) == hash(b) and a.fn is f  # equal wraps: jit caches hit
    assert a.closed_forms == () and a.degree is None and not a.odd
    np.testing.assert_allclose(a.derivative(z), 1 - jnp.tanh(z) ** 2 + 0.1, rtol=1e-14)
    with pytest.raises(ValueError, match=r"activation must be one of .* got 'rleu'.*relu"):
        get_activation("rleu")
    with pytest.raises(ValueError, match="teacher_activation must be one of"):
        get_activation(3, field="teacher_activation")


def test_constructor_refuses_bad_facts():
    with pytest.raises(ValueError, match="degree must be a positive number"):
        Activation("x", jnp.tanh, degree=-1)
    with pytest.raises(ValueError, match="odd and even"):
        Activation("x", jnp.tanh, odd=True, even=True)
    with pytest.raises(ValueError, match="two_point must be a callable"):
        Activation("x", jnp.tanh, two_point=3.0)
    with pytest.raises(ValueError, match="correlation .* needs degree=1"):
        Activation("x", jnp.tanh, correlation=lambda r: (r, r))
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        Activation("", jnp.tanh)


# --------------------------------------------------------------------------- a new activation


def _cube_moments(b, q):
    """U ~ N(b, q): E U^3, E 3U^2, E U^6 (Gaussian moments)."""
    return (b**3 + 3 * b * q, 3 * (b * b + q),
            b**6 + 15 * b**4 * q + 45 * b * b * q * q + 15 * q**3)


#: defined in ONE place: the function and its closed-form facts (E u^3 v^3 = 9 qx qy c + 6 c^3
#: by Isserlis; E 3u^2 3v^2 = 9 (qx qy + 2 c^2))
CUBE = Activation("cube", lambda z: z**3, odd=True, degree=3,
                  derivative=lambda z: 3 * z**2, moments=_cube_moments,
                  two_point=lambda qx, qy, c: 9 * qx * qy * c + 6 * c**3,
                  derivative_two_point=lambda qx, qy, c: 9 * (qx * qy + 2 * c * c))
PLAIN_CUBE = lambda z: z**3  # noqa: E731  (the same function, quadrature facts only)


@pytest.fixture
def cube():
    """``cube`` registered by name for one test (the registry is process-wide)."""
    register(CUBE, replace=True)
    yield CUBE
    ACTIVATIONS.pop("cube", None)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_new_activation_in_the_kernels(cube):
    from rfsim.theory.kernels import kernels, nngp, ntk

    x = np.random.default_rng(0).normal(size=(6, 4)) * 0.8
    k = kernels(x, depth=2, activation="cube", w_std=0.9, b_std=0.3)
    q = kernels(x, depth=2, activation=PLAIN_CUBE, w_std=0.9, b_std=0.3)  # quadrature
    assert rel(k.nngp, q.nngp) < 1e-9 and rel(k.ntk, q.ntk) < 1e-9
    # depth 1 by hand: K2 = w^2 (9 qx qy c + 6 c^3) + b^2, Theta2 = K2 + w^2 K1 9(qx qy + 2c^2)
    w, b = 0.9, 0.3
    K1 = w * w * x @ x.T / 4 + b * b
    qd = np.diag(K1)
    K2 = w * w * (9 * np.outer(qd, qd) * K1 + 6 * K1**3) + b * b
    T2 = K2 + w * w * K1 * 9 * (np.outer(qd, qd) + 2 * K1**2)
    assert rel(nngp(x, depth=1, activation="cube", w_std=w, b_std=b), K2) < 1e-13
    assert rel(ntk(x, depth=1, activation="cube", w_std=w, b_std=b), T2) < 1e-13


def test_new_activation_in_deep_random_features(cube):
    from rfsim.networks import deep_weights
    from rfsim.theory.deep_rf import deep_rf_risk

    Ws = deep_weights(jax.random.key(3), 20, [30, 25])
    beta = jnp.linspace(-1.0, 1.0, 20)
    kw = dict(n=40, ridge=0.05, noise=0.1, target="linear", beta=beta)
    a = deep_rf_risk(Ws, activation="cube", **kw)
    b = deep_rf_risk(Ws, activation=PLAIN_CUBE, **kw)
    assert abs(float(a.test_mse) - float(b.test_mse)) <= 1e-9 * float(b.test_mse)
    assert float(a.test_mse) > 0.1


def test_new_activation_in_signal_propagation(cube):
    from rfsim.theory import signal_propagation as sp

    w, b, q, c = 0.5, 0.2, 0.8, 0.4
    # (SP-1), (SP-2) by hand: E sigma^2 = 15 q^3, E sigma(u) sigma(v) = 9 q^2 c q + 6 (c q)^3
    L = w * w * 15 * q**3 + b * b
    assert float(sp.length_map(q, activation="cube", w_std=w, b_std=b)) == pytest.approx(
        L, rel=1e-14)
    M = (w * w * (9 * q * q * c * q + 6 * (c * q) ** 3) + b * b) / L
    assert float(sp.correlation_map(c, q, activation="cube", w_std=w, b_std=b)) == \
        pytest.approx(M, rel=1e-14)
    chi = w * w * 9 * (q * q + 2 * (c * q) ** 2)
    assert float(sp.correlation_slope(c, q, activation="cube", w_std=w)) == pytest.approx(
        chi, rel=1e-14)
    got = sp.iterate_maps(0.5, 0.3, 4, activation="cube", w_std=w, b_std=b)
    ref = sp.iterate_maps(0.5, 0.3, 4, activation=PLAIN_CUBE, w_std=w, b_std=b)
    assert rel(got[0], ref[0]) < 1e-9 and rel(got[1], ref[1]) < 1e-9


def test_new_activation_in_mei_montanari(cube):
    from rfsim.theory.mei_montanari import activation_coefficients, mei_montanari

    # mu0 = E G^3 = 0, mu1 = E G^4 = 3, mu*^2 = E G^6 - 9 = 6
    assert activation_coefficients("cube") == (0.0, 3.0, math.sqrt(6.0))
    a = mei_montanari(1.5, 0.8, 0.05, activation="cube", noise=0.2)
    b = mei_montanari(1.5, 0.8, 0.05, activation=PLAIN_CUBE, noise=0.2)
    assert rel(a.excess_risk, b.excess_risk) < 1e-10


def test_new_activation_in_a_simulated_family(cube, tmp_path):
    """rf-ridge through the engine with activation = "cube" (a config holds the name): the
    theory column is Mei-Montanari for the plain callable (quadrature constants), and the
    simulation is near it (d = 30: finite-size corrections of ~10%)."""
    from rfsim.engine.experiment import from_dict
    from rfsim.engine.runner import run_experiment
    from rfsim.theory.mei_montanari import mei_montanari

    raw = {"model": "rf-ridge", "seeds": 6, "grid": {"N": [120]},
           "params": {"d": 30, "n": 60, "ridge": 0.1, "noise": 0.1, "n_test": 500,
                      "activation": "cube"}}
    res = run_experiment(from_dict(raw, name="cube"), out=tmp_path / "run", plot=False)
    row = next(r for r in res.summary if r["metric"] == "excess_risk")
    assert row["activation"] == "cube"
    want = float(mei_montanari(4.0, 2.0, 0.1, activation=PLAIN_CUBE, noise=0.1).excess_risk)
    assert float(row["theory"]) == pytest.approx(want, rel=1e-10)
    assert abs(float(row["mean"]) / want - 1) < 0.3


# --------------------------------------------------------------------------- wrong facts


def test_a_wrong_closed_form_is_caught_against_quadrature():
    wrong = Activation("cube_wrong", lambda z: z**3, odd=True,
                       two_point=lambda qx, qy, c: 9 * qx * qy * c + 5 * c**3)
    with pytest.raises(ValueError, match=r"'cube_wrong': two_point disagrees with quadrature "
                                         r"at \(qx, qy, c\) = .*closed form .* quadrature"):
        register(wrong)
    assert "cube_wrong" not in ACTIVATIONS
    bad_moments = Activation("cube_m", lambda z: z**3,
                             moments=lambda b, q: (b**3 + 3 * b * q, 3 * (b * b + q),
                                                   15.5 * q**3 + 0 * b))
    with pytest.raises(ValueError, match=r"moments \(E sigma\(U\)\^2\) disagrees"):
        check_facts(bad_moments)
    with pytest.raises(ValueError, match="odd = True"):
        Activation("not_odd", jax.nn.softplus, odd=True).verify()
    with pytest.raises(ValueError, match="degree = 2"):
        Activation("not_2", lambda z: z**3, degree=2).verify()
    with pytest.raises(ValueError, match="derivative disagrees"):
        Activation("bad_d", jnp.sin, derivative=lambda z: -jnp.cos(z)).verify()
    # the right facts pass, within the dtype-aware tolerance
    CUBE.verify()


def test_register_refuses_a_taken_name(cube):
    assert register(CUBE) is CUBE  # the same object again: harmless
    other = Activation("cube", lambda z: z**3)
    with pytest.raises(ValueError, match="activation name 'cube' is taken.*replace=True"):
        register(other)
    with pytest.raises(ValueError, match="'relu' is taken by .*a built-in"):
        register(Activation("relu", jax.nn.relu), replace=True)
    with pytest.raises(ValueError, match="register needs an Activation"):
        register(jnp.tanh)
    assert ACTIVATIONS["cube"] is CUBE
