"""Model family rf-gaussian (theory/random_features.md §2.5).

Exact: the simulator's metrics against a numpy kernel-form reference on the same draws;
least squares with full-span features is exact.  Statistical: seed means over 16 fixed keys
against rf_eigen_risk, |mean - theory| <= 4 sem + 3% |theory|, with twins showing that a 5%
error and the infinite-width (kernel) prediction both FAIL that bound.  Validation errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rfsim.models.rf_gaussian as rfg
from rfsim.config import param_fields
from rfsim.data import data_keys
from rfsim.engine.keys import SeedKeys
from rfsim.models import get_model
from rfsim.theory.ridge import ridge_risk

Z_SEM, REL_ALLOW = 4.0, 0.03
SEEDS = 16
BASE = {"n_modes": 1000, "spectrum_decay": 1.2, "target_decay": 1.4}


def sk(key):
    """A seed's SeedKeys from one key: data = key, model = fold_in(key, 99)."""
    return SeedKeys(key, jax.random.fold_in(key, 99))


def seed_keys(count=SEEDS):
    root = jax.random.key(0)
    return jax.vmap(sk)(jnp.stack([jax.random.fold_in(root, s) for s in range(count)]))


def with_ridge(cfg, ridge):
    """cfg with its ridge leaf replaced (works on tracers: no re-validation)."""
    leaves = [ridge if f == "ridge" else getattr(cfg, f) for f in param_fields(cfg)]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(cfg), leaves)


def simulate_grid(cfg, ridges):
    """metrics[name] of shape (seeds, ridges); the ridge vmap shares one eigendecomposition."""
    one = lambda keys, r: rfg.simulate(keys, with_ridge(cfg, r))
    fn = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    return {k: np.asarray(v) for k, v in fn(seed_keys(), jnp.asarray(ridges)).items()}


def within(mean, sem, theory):
    return abs(mean - theory) <= Z_SEM * sem + REL_ALLOW * abs(theory)


# --------------------------------------------------------------------------
# contract and exactness
# --------------------------------------------------------------------------


def test_registered_with_contract():
    model = get_model("rf-gaussian")
    assert model is rfg.MODEL
    assert model.metrics == ("excess_risk", "test_mse", "train_mse", "fit_ratio")
    cfg = rfg.RFGaussianConfig(n=20, n_features=10, n_modes=30, ridge=0.1, noise=0.2)
    out = model.simulate(sk(jax.random.key(1)), cfg, None)
    pred = model.predict(cfg)
    assert set(out) == set(pred) == set(model.metrics)
    assert all(jnp.shape(v) == () for v in (*out.values(), *pred.values()))
    assert float(out["test_mse"]) == pytest.approx(float(out["excess_risk"]) + 0.2, rel=1e-14)
    assert float(pred["test_mse"]) == pytest.approx(float(pred["excess_risk"]) + 0.2, rel=1e-14)


def _numpy_kernel_form(key, cfg):
    """Same draws (rfsim.data's purposes from the data key, the features from the model key
    of :func:`sk`); fit in kernel form with a dense solve."""
    P, n, N = cfg.n_modes, cfg.n, cfg.n_features
    k_x, k_eps, k_g = data_keys(key).train, data_keys(key).noise, jax.random.fold_in(key, 99)
    X = np.asarray(jax.random.normal(k_x, (n, P)))
    G = np.asarray(jax.random.normal(k_g, (N, P)))
    eps = np.asarray(jax.random.normal(k_eps, (n,)))
    i = np.arange(1, P + 1.0)
    lam = i**-cfg.spectrum_decay
    v = i ** (-cfg.target_decay / 2)
    v /= np.linalg.norm(v)
    y = X @ v + np.sqrt(cfg.noise) * eps
    Phi = X @ (G * np.sqrt(lam)).T
    K = Phi @ Phi.T / N  # K_hat(X, X)
    alpha = np.linalg.solve(K + n * cfg.ridge * np.eye(n), y)
    # f_hat(x) = K_hat(x, X) alpha = x^T [Lambda^1/2 G^T Phi^T alpha / N]
    w = np.sqrt(lam) * (G.T @ (Phi.T @ alpha)) / N
    return np.sum((w - v) ** 2), np.mean((y - K @ alpha) ** 2)


@pytest.mark.parametrize("n,N", [(40, 25), (25, 40)])
def test_simulate_matches_numpy_kernel_form(n, N):
    cfg = rfg.RFGaussianConfig(
        n=n, n_features=N, n_modes=60, ridge=3e-3, noise=0.3, spectrum_decay=1.5, target_decay=1.0
    )
    key = jax.random.key(7)
    out = jax.jit(rfg.simulate)(sk(key), cfg)
    excess, train = _numpy_kernel_form(key, cfg)
    assert float(out["excess_risk"]) == pytest.approx(excess, rel=1e-9)
    assert float(out["train_mse"]) == pytest.approx(train, rel=1e-9)


def test_full_span_least_squares_is_exact():
    """n, N >= n_modes, ridge 0, no noise: the fit recovers v exactly."""
    cfg = rfg.RFGaussianConfig(
        n=50, n_features=40, n_modes=20, spectrum_decay=1.0, target_decay=1.0
    )
    out = rfg.simulate(sk(jax.random.key(3)), cfg)
    assert float(out["excess_risk"]) < 1e-20 and float(out["train_mse"]) < 1e-20
    pred = rfg.predict(cfg)
    assert float(pred["excess_risk"]) == 0.0 and float(pred["train_mse"]) == 0.0


def test_ridge_vmap_equals_separate_calls_and_predict_jits():
    cfg = rfg.RFGaussianConfig(
        n=30,
        n_features=50,
        n_modes=80,
        noise=0.1,
        **{k: v for k, v in BASE.items() if k != "n_modes"},
    )
    ridges = [0.0, 1e-3, 1.0]
    key = jax.random.key(5)
    batched = jax.vmap(lambda r: rfg.simulate(sk(key), with_ridge(cfg, r)))(jnp.asarray(ridges))
    for j, r in enumerate(ridges):
        single = rfg.simulate(sk(key), rfg.RFGaussianConfig(**{**cfg.__dict__, "ridge": r}))
        for k in single:
            assert float(batched[k][j]) == pytest.approx(float(single[k]), rel=1e-9, abs=1e-25)
        eager = rfg.predict(rfg.RFGaussianConfig(**{**cfg.__dict__, "ridge": r}))
        jitted = jax.jit(rfg.predict)(with_ridge(cfg, jnp.asarray(r)))
        for k in eager:
            assert float(jitted[k]) == pytest.approx(float(eager[k]), rel=1e-12, abs=1e-300)


# --------------------------------------------------------------------------
# statistical: simulation vs rf_eigen_risk
# --------------------------------------------------------------------------

POINTS = [
    # n, N, noise, ridges (a small one, moderate ones, a strongly regularized one)
    (300, 400, 0.0, [1e-4, 1e-2, 0.3, 10.0]),
    (300, 100, 0.2, [0.0, 1e-3, 0.1, 10.0]),
    (100, 300, 0.2, [0.0, 1e-3, 0.1]),
]


@pytest.fixture(scope="module")
def table():
    rows = []
    for n, N, noise, ridges in POINTS:
        cfg = rfg.RFGaussianConfig(n=n, n_features=N, noise=noise, **BASE)
        sims = simulate_grid(cfg, ridges)
        for j, r in enumerate(ridges):
            c = rfg.RFGaussianConfig(n=n, n_features=N, noise=noise, ridge=r, **BASE)
            pred = {k: float(x) for k, x in rfg.predict(c).items()}
            lam, v = (np.asarray(a) for a in rfg.population(c))
            kern = ridge_risk(lam, v / np.sqrt(lam), n=n, ridge=r, noise=noise)
            for metric in ("excess_risk", "test_mse", "train_mse"):
                x = sims[metric][:, j]
                rows.append(
                    {
                        "n": n,
                        "N": N,
                        "noise": noise,
                        "ridge": r,
                        "metric": metric,
                        "mean": x.mean(),
                        "sem": x.std(ddof=1) / np.sqrt(len(x)),
                        "theory": pred[metric],
                        "kernel": float(getattr(kern, metric)),
                    }
                )
    return rows


def test_simulation_agrees_with_rf_eigen_risk(table):
    checked = 0
    for row in table:
        if row["metric"] == "train_mse" and row["theory"] == 0.0:  # ridgeless interpolation
            assert row["mean"] < 1e-12, row
            continue
        assert within(row["mean"], row["sem"], row["theory"]), row
        checked += 1
    assert checked >= 28


def test_five_percent_error_fails_the_same_bound(table):
    """Twin: the bound has power. A prediction 5% too high fails it somewhere."""
    wrong = [
        r
        for r in table
        if r["metric"] == "excess_risk" and not within(r["mean"], r["sem"], 1.05 * r["theory"])
    ]
    assert wrong


def test_infinite_width_prediction_fails_the_same_bound(table):
    """Twin: the finite-N correction is resolved. Kernel ridge (N = inf, ridge_risk with
    beta = v/sqrt(lambda)) fails the bound at the small-width points."""
    wrong = [
        r
        for r in table
        if r["metric"] == "excess_risk"
        and r["N"] <= 300
        and not within(r["mean"], r["sem"], r["kernel"])
    ]
    assert len(wrong) >= 3


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n": 0}, "n"),
        ({"n_features": 10.0}, "n_features"),
        ({"n_features": True}, "n_features"),
        ({"n_modes": -3}, "n_modes"),
        ({"ridge": -1e-3}, "ridge"),
        ({"noise": float("nan")}, "noise"),
        ({"spectrum_decay": -0.5}, "spectrum_decay"),
        ({"target_decay": float("inf")}, "target_decay"),
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, field):
    args = {"n": 10, "n_features": 10, "n_modes": 20}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        rfg.RFGaussianConfig(**args)
