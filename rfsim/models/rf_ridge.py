r"""Model family ``rf-ridge``: random-features ridge regression in the Mei–Montanari setting.

theory/random_features.md §1, (RF-1)–(RF-11):

* inputs ``x`` and weights ``theta_j`` (j = 1..N) i.i.d. uniform on the sphere of radius
  ``sqrt(d)``; features ``z_j(x) = sigma(<theta_j, x>/sqrt(d))`` (unnormalized);
* target ``f(x) = <beta_1, x> + f_NL(x)`` with ``beta_1 = sqrt(f1_sq) e_1`` and the fixed
  degree-2 component ``f_NL(x) = c x_1 x_2``, ``c^2 = fstar_sq (d+2)/d`` so that
  ``E f_NL^2 = fstar_sq`` and ``f_NL`` is orthogonal to every polynomial of degree <= 1;
  labels ``y = f(x) + eps``, ``Var eps = noise``;
* fit ``a_hat = argmin (1/n) sum_i (y_i - z(x_i).a)^2 + (N ridge / d) ||a||^2`` (MM's lambda);
* metrics: ``excess_risk = E_x (f(x) - z(x).a_hat)^2`` on ``n_test`` fresh test points
  (default 4000), ``test_mse = excess_risk + noise``, ``train_mse``.

``predict`` is :func:`rfsim.theory.mei_montanari.mei_montanari` at ``psi1 = N/d``,
``psi2 = n/d``.  The features and the Gram eigendecomposition do not depend on ``ridge``,
``noise``, ``f1_sq`` or ``fstar_sq``: a sweep over them shares one factorization per seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import get_activation
from rfsim.config import model_config, param, static
from rfsim.data import data_keys, label_noise, linear_quadratic_target, sphere_inputs
from rfsim.engine.keys import SeedKeys
from rfsim.features import random_features, sphere_weights
from rfsim.models import register
from rfsim.models._scales import working_set
from rfsim.solvers import gram_eigh, ridge_from_eigh
from rfsim.theory.mei_montanari import activation_coefficients, mei_montanari, psi_range
from rfsim.validation import float_dtype, is_concrete, require_int, require_nonnegative


@model_config
class RFRidgeConfig:
    d: int = static(doc="input dimension", data=True)
    N: int = static(doc="number of random features")
    n: int = static(doc="training samples", data=True)
    ridge: float = param(0.0, doc="MM's lambda: penalty (N lambda/d)||a||^2")
    activation: str = static("relu", doc="relu, erf, tanh, gelu or a callable")
    f1_sq: float = param(1.0, doc="||beta_1||^2, power of the linear target part", data=True)
    fstar_sq: float = param(0.0, doc="E f_NL^2, power of the nonlinear part", data=True)
    noise: float = param(0.0, doc="label-noise variance tau^2", data=True)
    n_test: int = static(4000, doc="fresh test points for the excess risk", data=True)

    def validate(self):
        for name in ("d", "N", "n", "n_test"):
            require_int(name, getattr(self, name))
        if self.d < 2:
            raise ValueError(f"d must be an integer >= 2 (the target uses x_1 x_2), got {self.d}")
        get_activation(self.activation)
        if isinstance(self.activation, str) and activation_coefficients(self.activation)[2] == 0:
            raise ValueError(f"activation {self.activation!r} is linear (mu_star = 0), which "
                             "the rf-ridge theory (Mei-Montanari) excludes: use one of relu, "
                             "erf, tanh, gelu")
        for name in ("ridge", "f1_sq", "fstar_sq", "noise"):
            require_nonnegative(name, getattr(self, name))
        if isinstance(self.activation, str) and is_concrete(self.ridge):
            # the prediction's domain (RF-15), checked here so that a ridge the theory
            # cannot resolve is refused before the simulation runs, not in predict after it
            dtype = float_dtype()
            _, hi = psi_range(dtype)
            mustar = activation_coefficients(self.activation)[2]
            top = hi * mustar * mustar / max(1.0, (self.N / self.d) * (self.n / self.d))
            if float(self.ridge) > top:
                raise ValueError(
                    f"ridge must be <= {top:.3g} for activation {self.activation!r}, N/d = "
                    f"{self.N / self.d:g}, n/d = {self.n / self.d:g} (ridge/mu*^2 max(1, psi1 "
                    f"psi2) <= {hi:.3g}, where {np.dtype(dtype).name} resolves the "
                    f"Mei-Montanari risk, RF-15; beyond it the risk is its ridge -> inf "
                    f"limit), got {float(self.ridge):g}")


def target(x: jax.Array, cfg: RFRidgeConfig) -> jax.Array:
    """``f(x) = sqrt(f1_sq) x_1 + sqrt(fstar_sq (d+2)/d) x_1 x_2`` (RF-1):
    :func:`rfsim.data.linear_quadratic_target`."""
    return linear_quadratic_target(x, cfg.f1_sq, cfg.fstar_sq)


def simulate(keys: SeedKeys, cfg: RFRidgeConfig, state=None) -> dict[str, jax.Array]:
    """Inputs, test points and noise from ``keys.data`` (theory/data.md), so every N sees
    the same data; the features' weights from ``keys.model``."""
    k = data_keys(keys.data)
    dtype = jnp.result_type(float)
    W = sphere_weights(keys.model, cfg.N, cfg.d, dtype)
    x = sphere_inputs(k.train, cfg.n, cfg.d, dtype)
    x_test = sphere_inputs(k.test, cfg.n_test, cfg.d, dtype)
    Z = random_features(x, W, cfg.activation)
    y = target(x, cfg) + label_noise(k.noise, cfg.n, cfg.noise, dtype)
    # (1/n)||y - Za||^2 + (N ridge/d)||a||^2  ==  solver's (1/n)-loss ridge N ridge / d
    a = ridge_from_eigh(gram_eigh(Z), Z, y, cfg.N * cfg.ridge / cfg.d)
    err = random_features(x_test, W, cfg.activation) @ a - target(x_test, cfg)
    excess = jnp.mean(err**2)
    return {
        "excess_risk": excess,
        "test_mse": excess + cfg.noise,
        "train_mse": jnp.mean((y - Z @ a) ** 2),
    }


def predict(cfg: RFRidgeConfig, state=None) -> dict[str, jax.Array]:
    """Mei–Montanari Theorem 1 (RF-10), (RF-11); no prediction for the train error."""
    r = mei_montanari(cfg.N / cfg.d, cfg.n / cfg.d, cfg.ridge, activation=cfg.activation,
                      f1_sq=cfg.f1_sq, fstar_sq=cfg.fstar_sq, noise=cfg.noise)
    return {"excess_risk": r.excess_risk, "test_mse": r.test_mse}


def memory(cfg: RFRidgeConfig) -> int:
    """One seed's peak working set (floats): train and test
    pre-activations and features (2 n N + 2 n_test N), inputs and weights, the Gram matrix
    with its eigendecomposition and workspace (5 min(n, N)^2)."""
    m = min(cfg.n, cfg.N)
    return working_set(2 * (cfg.n + cfg.n_test) * cfg.N + 5 * m * m
                    + 2 * (cfg.n + cfg.n_test + cfg.N) * cfg.d)


MODEL = register(
    "rf-ridge",
    RFRidgeConfig,
    simulate,
    predict,
    metrics=("excess_risk", "test_mse", "train_mse"),
    description="random-features ridge regression on the sphere (Mei-Montanari 2019)",
    memory=memory,
)
