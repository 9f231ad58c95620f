"""Family ``kernel-ridge``: the NTK's Mercer spectrum on the sphere (exact to 1e-10, trace
identity to 1e-8), and kernel ridge regression against eigenlearning where it is
asymptotically exact (d = 10; d = 3 with noise and ridge), each with a twin that fails."""

import math

import jax
import numpy as np
import pytest
from helpers import agree, keys
from scipy import integrate

import rfsim.models.kernel_ridge as fam
from rfsim.theory.kernels import dot_product
from rfsim.theory.sphere import gegenbauer, multiplicity

SEEDS = 12


@pytest.mark.parametrize("d,depth", [(3, 1), (3, 3), (10, 1), (10, 3)])
def test_ntk_spectrum_trace_identity(d, depth):
    cfg = fam.KernelRidgeConfig(n=10, d=d, depth=depth, max_degree=60 if d == 3 else 30)
    s = fam.spectrum(cfg)
    k1 = float(dot_product(1.0, depth=depth))
    assert abs(s.trace - k1) < 1e-14 * k1
    explicit = float(s.multiplicities @ s.eigenvalues)
    assert abs(explicit + s.tail[0] - k1) < 1e-8 * k1  # sum N lambda + tail = k(1)
    assert s.tail[0] < 0.05 * k1  # the explicit degrees carry most of the trace


@pytest.mark.parametrize("d,l", [(3, 0), (3, 2), (3, 7), (10, 1), (10, 4)])
def test_ntk_eigenvalues_match_adaptive_quadrature(d, l):
    """lambda_l = E_t[k(t) P_l(t)] with density ∝ (1 - t^2)^{(d-3)/2}, by QUADPACK in
    theta (an independent rule) for the depth-2 NTK with bias."""
    cfg = fam.KernelRidgeConfig(n=10, d=d, depth=2, b_std=0.3, max_degree=12)
    lam = fam.spectrum(cfg).eigenvalues[l]
    k = lambda t: float(dot_product(t, depth=2, b_std=0.3))  # noqa: E731
    P = lambda t: float(gegenbauer(l, d, np.array([t]))[l][0])  # noqa: E731
    w = lambda th: math.sin(th) ** (d - 2)  # noqa: E731
    num = integrate.quad(lambda th: k(math.cos(th)) * P(math.cos(th)) * w(th), 0, math.pi,
                         epsabs=1e-14, epsrel=1e-13, limit=200)[0]
    den = integrate.quad(w, 0, math.pi, epsabs=1e-14, epsrel=1e-13)[0]
    assert abs(lam - num / den) < 1e-10
    assert multiplicity(d, l) >= 1


def _samples(cfg):
    state = fam.init(jax.random.key(11), cfg)
    sim = jax.jit(jax.vmap(fam.simulate, in_axes=(0, None, None)))
    out = sim(keys(SEEDS, cfg.n), cfg, state)
    return out, fam.predict(cfg, state)


CASES = {
    "d10-ridgeless-noise": dict(n=100, d=10, depth=1, noise=0.1, ridge=0.0),
    "d10-noise-free-depth3": dict(n=100, d=10, depth=3, noise=0.0, ridge=0.01),
    "d3-noise-ridge": dict(n=100, d=3, depth=1, noise=0.5, ridge=0.1, max_degree=40),
}


@pytest.fixture(scope="module", params=[
    pytest.param(c, marks=pytest.mark.slow) if c == "d10-noise-free-depth3" else c
    for c in CASES])
def case(request):
    cfg = fam.KernelRidgeConfig(**CASES[request.param], degrees=(1, 2), powers=(0.6, 0.4),
                                n_test=600)
    return cfg, *_samples(cfg)


def test_simulation_agrees_with_eigenlearning(case):
    cfg, out, theory = case
    for metric in ("excess_risk", "test_mse"):
        agree(np.asarray(out[metric])[:, None], [theory[metric]], max_abs_z=4.0, rel_tol=0.03,
              label=metric)


def test_a_wrong_prediction_fails(case):
    """The twin: a Gaussian kernel's spectrum in place of the NTK's (ridgeless cases), or
    the kernel-form ridge delta = n lambda taken for lambda (PAPERS.md pitfall 1), fails the
    same check."""
    cfg, out, _ = case
    values = CASES_BY_CFG(cfg)
    if cfg.ridge == 0:
        values["kernel"] = "gaussian"
    else:
        values["ridge"] = cfg.ridge * cfg.n
    wrong = fam.predict(fam.KernelRidgeConfig(**values, degrees=cfg.degrees, powers=cfg.powers,
                                              n_test=cfg.n_test), None)
    with pytest.raises(AssertionError):
        agree(np.asarray(out["excess_risk"])[:, None], [wrong["excess_risk"]], max_abs_z=4.0,
              rel_tol=0.03)


def CASES_BY_CFG(cfg):  # noqa: N802 - the case's own fields, to rebuild a variant
    for values in CASES.values():
        if all(getattr(cfg, k) == v for k, v in values.items()):
            return dict(values)
    raise KeyError(cfg)


def test_training_error_is_zero_when_interpolating(case):
    cfg, out, theory = case
    if cfg.ridge == 0:
        assert float(np.max(out["train_mse"])) < 1e-10 and theory["train_mse"] == 0.0


@pytest.mark.parametrize("values,match", [
    (dict(n=0), "n"),
    (dict(d=1), "d"),
    (dict(kernel="ntkk"), "kernel"),
    (dict(ridge=-1.0), "ridge"),
    (dict(noise=float("nan")), "noise"),
    (dict(degrees=(1, 30), powers=(1.0, 1.0)), "degrees"),
    (dict(degrees=(1, 2), powers=(1.0,)), "powers"),
    (dict(activation="rellu"), "activation"),
])
def test_bad_config_names_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        fam.KernelRidgeConfig(**{"n": 10, "d": 3, **values})
