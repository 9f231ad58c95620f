r"""Model family ``linear-ridge``: ridge regression on Gaussian data (theory/ridge.md).

Data (theory/ridge.md §5): ``x ~ N(0, diag(s))`` in R^d with ``s_i ∝ i^(-spectrum_decay)``,
``sum s_i = d``; ``y = <beta, x> + eps``, ``beta_i ∝ i^(-target_decay/2) > 0`` with
``sum s_i beta_i^2 = signal``, ``Var eps = noise``.

Estimator: ``beta_hat = argmin (1/n)||y - X w||^2 + ridge ||w||^2`` (ridge 0: min-norm).

Metrics (all exact for the drawn training set, no test-sample noise):

* ``excess_risk = (beta_hat - beta)^T Sigma (beta_hat - beta)``
* ``test_mse = excess_risk + noise``
* ``train_mse = (1/n)||y - X beta_hat||^2``

``predict`` is :func:`rfsim.theory.ridge.ridge_risk` with the same ``Sigma`` and ``beta``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rfsim.config import model_config, param, static
from rfsim.data import data_keys, gaussian_inputs, label_noise, powerlaw_spectrum, powerlaw_target
from rfsim.engine.keys import SeedKeys
from rfsim.models import register
from rfsim.models._scales import working_set
from rfsim.solvers import gram_eigh, ridge_from_eigh
from rfsim.theory.ridge import ridge_risk
from rfsim.validation import require_int, require_nonnegative, require_positive


@model_config
class LinearRidgeConfig:
    n: int = static(doc="training samples", data=True)
    d: int = static(doc="input dimension", data=True)
    ridge: float = param(0.0, doc="lambda >= 0 in (1/n)||y - Xw||^2 + lambda ||w||^2")
    noise: float = param(0.0, doc="label-noise variance", data=True)
    signal: float = param(1.0, doc="sum_i s_i beta_i^2", data=True)
    spectrum_decay: float = param(0.0, doc="s_i ∝ i^-spectrum_decay", batch=False,  # shapes X
                                  data=True)
    target_decay: float = param(0.0, doc="beta_i ∝ i^-(target_decay/2)", data=True)

    def validate(self):
        require_int("n", self.n)
        require_int("d", self.d)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        require_positive("signal", self.signal)
        require_nonnegative("spectrum_decay", self.spectrum_decay)
        require_nonnegative("target_decay", self.target_decay)


def population(cfg: LinearRidgeConfig):
    """The covariance eigenvalues ``s`` and target coefficients ``beta`` of ``cfg``."""
    s = powerlaw_spectrum(cfg.d, cfg.spectrum_decay)
    return s, powerlaw_target(s, cfg.target_decay, cfg.signal)


def simulate(keys: SeedKeys, cfg: LinearRidgeConfig, state=None) -> dict[str, jax.Array]:
    """One training set, all of it from ``keys.data`` (theory/data.md): fit ridge, return
    exact excess risk, test and train MSE."""
    s, beta = population(cfg)
    k = data_keys(keys.data)
    X = gaussian_inputs(k.train, cfg.n, s)
    y = X @ beta + label_noise(k.noise, cfg.n, cfg.noise, s.dtype)
    beta_hat = ridge_from_eigh(gram_eigh(X), X, y, cfg.ridge)
    err = beta_hat - beta
    excess = jnp.sum(s * err**2)
    resid = y - X @ beta_hat
    return {
        "excess_risk": excess,
        "test_mse": excess + cfg.noise,
        "train_mse": jnp.mean(resid**2),
    }


def predict(cfg: LinearRidgeConfig, state=None) -> dict[str, jax.Array]:
    """Deterministic equivalent (theory/ridge.md (R-1)-(R-7)) for the same Sigma, beta."""
    s, beta = population(cfg)
    r = ridge_risk(s, beta, n=cfg.n, ridge=cfg.ridge, noise=cfg.noise)
    return {"excess_risk": r.excess_risk, "test_mse": r.test_mse, "train_mse": r.train_mse}


def memory(cfg: LinearRidgeConfig) -> int:
    """One seed's peak working set (floats): X drawn and scaled (2 n d), the Gram matrix, its
    eigenvectors and LAPACK's workspace (5 m^2, m = min(n, d))."""
    m = min(cfg.n, cfg.d)
    return working_set(2 * cfg.n * cfg.d + 5 * m * m + 4 * (cfg.n + cfg.d))


MODEL = register(
    "linear-ridge",
    LinearRidgeConfig,
    simulate,
    predict,
    metrics=("excess_risk", "test_mse", "train_mse"),
    description="ridge regression on Gaussian data with power-law spectrum and target",
    memory=memory,
)
