
r"""Model family ``rf-gaussian``: linear random-feature ridge regression on Gaussian data
(theory/random_features.md §2.5), the setting of Simon et al. (arXiv:2311.14646).

Data: ``x ~ N(0, I)`` in R^{n_modes}; the expected kernel has eigenvalues
``lambda_i = i^(-spectrum_decay)`` and eigenfunctions ``e_i(x) = x_i``.  Features
``phi_j(x) = sum_i g_ji sqrt(lambda_i) x_i`` with ``g_ji ~ N(0, 1)`` i.i.d., j = 1..n_features,
so ``E_g phi_j(x) phi_j(x') = sum_i lambda_i x_i x'_i``.  Target ``y = <v, x> + eps`` with
``v_i ∝ i^(-target_decay/2) > 0``, ``sum v_i^2 = 1``, ``Var eps = noise``.

Estimator (RFE-1): ``a_hat = argmin (1/n)||y - Phi a/sqrt(N)||^2 + ridge ||a||^2``
(ridge 0: min-norm), solved with :func:`rfsim.solvers.gram_eigh` /
:func:`rfsim.solvers.ridge_from_eigh` on ``Phi/sqrt(N)``, so a vmap over ``ridge`` alone shares
one eigendecomposition.  The fitted function is linear, ``f_hat(x) = <w_hat, x>`` with
``w_hat = Lambda^{1/2} G^T a_hat / sqrt(N)``.

Metrics (exact for the drawn data and features, no test-sample noise):

* ``excess_risk = E_x (<v, x> - f_hat(x))^2 = ||w_hat - v||^2`` (x is standard Gaussian)
* ``test_mse = excess_risk + noise``
* ``train_mse = (1/n)||y - Phi a_hat / sqrt(N)||^2``
* ``fit_ratio = train_mse / test_mse`` (per seed; theory: (RFE-9)'s ratio), the fitting
  ratio of Simon et al. 2023 ("overfitting is obligatory" when it is ~0 at the optimal ridge)

``predict`` is :func:`rfsim.theory.rf_eigen.rf_eigen_risk` with the same ``lambda`` and ``v``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rfsim.config import model_config, param, static
from rfsim.data import data_keys, gaussian_inputs, label_noise, powerlaw_target
from rfsim.engine.keys import SeedKeys
from rfsim.models import register
from rfsim.models._scales import working_set
from rfsim.networks import gaussian_weights
from rfsim.solvers import gram_eigh, ridge_from_eigh
from rfsim.theory.rf_eigen import rf_eigen_risk
from rfsim.validation import require_int, require_nonnegative


@model_config
class RFGaussianConfig:
    n: int = static(doc="training samples", data=True)
    n_features: int = static(doc="number of random features N")
    n_modes: int = static(doc="input dimension = number of kernel eigenmodes", data=True)
    ridge: float = param(0.0, doc="lambda >= 0 in (1/n)||y - Phi a/sqrt(N)||^2 + lambda ||a||^2")
    noise: float = param(0.0, doc="label-noise variance", data=True)
    spectrum_decay: float = param(0.0, doc="kernel eigenvalues lambda_i = i^-spectrum_decay",
                                  batch=False)  # shapes the features: one eigh per seed
    target_decay: float = param(0.0, doc="target v_i ∝ i^-(target_decay/2), sum v_i^2 = 1",
                                data=True)

    def validate(self):
        require_int("n", self.n)
        require_int("n_features", self.n_features)
        require_int("n_modes", self.n_modes)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        require_nonnegative("spectrum_decay", self.spectrum_decay)
        require_nonnegative("target_decay", self.target_decay)


def population(cfg: RFGaussianConfig):
    """Kernel eigenvalues ``lambda_i = i^-spectrum_decay`` and unit-norm target ``v``
    (:func:`rfsim.data.powerlaw_target` on the identity covariance)."""
    i = jnp.arange(1, cfg.n_modes + 1, dtype=jnp.result_type(float))
    lam = i ** (-jnp.asarray(cfg.spectrum_decay, i.dtype))
    return lam, powerlaw_target(jnp.ones_like(i), cfg.target_decay, 1.0)


def simulate(keys: SeedKeys, cfg: RFGaussianConfig, state=None) -> dict[str, jax.Array]:
    """Data and noise from ``keys.data`` (theory/data.md), the features' Gaussian matrix
    from ``keys.model``: fit RF ridge, return exact risks."""
    lam, v = population(cfg)
    k = data_keys(keys.data)
    X = gaussian_inputs(k.train, cfg.n, jnp.ones_like(lam))
    G = gaussian_weights(keys.model, cfg.n_features, cfg.n_modes, lam.dtype)
    W = G * (jnp.sqrt(lam) / jnp.sqrt(jnp.asarray(cfg.n_features, lam.dtype)))  # (N, P)
    Z = X @ W.T  # Phi / sqrt(N)
    y = X @ v + label_noise(k.noise, cfg.n, cfg.noise, lam.dtype)
    a_hat = ridge_from_eigh(gram_eigh(Z), Z, y, cfg.ridge)
    excess = jnp.sum((W.T @ a_hat - v) ** 2)
    resid = y - Z @ a_hat
    train = jnp.mean(resid**2)
    return {
        "excess_risk": excess,
        "test_mse": excess + cfg.noise,
        "train_mse": train,
        "fit_ratio": train / (excess + cfg.noise),
    }


def predict(cfg: RFGaussianConfig, state=None) -> dict[str, jax.Array]:
    """RF eigenframework (theory/random_features.md §2 (RFE-1)-(RFE-11))."""
    lam, v = population(cfg)
    r = rf_eigen_risk(lam, v, n=cfg.n, n_features=cfg.n_features, ridge=cfg.ridge, noise=cfg.noise)
    return {"excess_risk": r.excess_risk, "test_mse": r.test_mse, "train_mse": r.train_mse,
            "fit_ratio": r.train_mse / r.test_mse}


def memory(cfg: RFGaussianConfig) -> int:
    """One seed's peak working set (floats): X (n P), G and W
    (2 N P), the features Z (n N), the Gram matrix with its eigendecomposition and workspace
    (5 min(n, N)^2)."""
    n, N, P = cfg.n, cfg.n_features, cfg.n_modes
    m = min(n, N)
    return working_set(n * P + 2 * N * P + n * N + 5 * m * m + 4 * (n + N + P))


MODEL = register(
    "rf-gaussian",
    RFGaussianConfig,
    simulate,
    predict,
    metrics=("excess_risk", "test_mse", "train_mse", "fit_ratio"),
    description="linear random-feature ridge regression on Gaussian data, power-law "
    "kernel spectrum and target (Simon et al. 2023 RF eigenframework)",
    memory=memory,
)
