
r"""Model family ``deep-rf``: ridge readout on deep frozen random features
(theory/deep_random_features.md; Schröder, Cui, Dmitriev, Loureiro 2023, arXiv:2302.00401).

Network (DRF-1).  ``x ~ N(0, I_d)``; ``L = len(widths)`` frozen layers
``h_l = sigma(W_l h_{l-1} / sqrt(k_{l-1})) - c_l`` with ``W_l`` Gaussian of shape
``(k_l, k_{l-1})``, ``k_0 = d``.  With ``centered = True`` (default) ``c_l`` is each neuron's
population mean ``E[sigma(u_l) | W]``, estimated once per configuration on 16384 calibration
inputs; with ``centered = False``, ``c_l = 0``.

Frozen means frozen.  The weights ``W_l`` (:func:`rfsim.networks.deep_weights`) and the
calibration inputs come from the static group's model key (``fold_in`` 0, 2), which hashes
only the network's fields (widths, activation, centered, recursion): the same network at
every n and every seed.  The target's coefficients come from the group's data key
(:func:`rfsim.data.data_keys` ``.target``).  They are the family's state (:func:`init`),
computed once per static group and passed to both ``simulate`` and ``predict`` as
arguments.  Each seed redraws only the data, from its data key: training inputs, label
noise, test inputs.  ``predict`` is the theory for exactly those weights, so simulation and
prediction describe the same network.  (Another root seed draws another network.)  The
forward pass is
:func:`rfsim.features.deep_random_features` with the estimated constants as offsets.

Readout (DRF-2).  ``Z = H_L / sqrt(k_L)``; ``a_hat = argmin (1/n)||y - Z a||^2 + ridge ||a||^2``
(ridge 0: min-norm), solved by :func:`rfsim.solvers.gram_eigh` / ``ridge_from_eigh``, so a
vmap over ``ridge`` alone shares one eigendecomposition.

Targets (``y = f*(x) + eps``, ``Var eps = noise``):

* ``"linear"``: ``f*(x) = <beta, x> / sqrt(d)``, ``beta ~ N(0, I_d)`` frozen (DRF-8);
* ``"shared"``: ``f*(x) = <h_L(x), theta> / sqrt(k_L)``, ``theta ~ N(0, I_{k_L})`` frozen: the
  target shares the learner's layers (DRF-7).

Metrics:

* ``excess_risk = E_x (f*(x) - <z(x), a_hat>)^2``, estimated on ``n_test`` (default 4000)
  fresh noiseless test points per seed (unbiased for the population excess risk of the
  trained readout);
* ``test_mse = excess_risk + noise``;
* ``train_mse = (1/n)||y - Z a_hat||^2``.

``predict`` is :func:`rfsim.theory.deep_rf.deep_rf_risk` (DRF-11) with ``recursion`` (static:
``"linearized"`` (DRF-4) or ``"exact"`` (DRF-5)) for the same weights and target.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import get_activation
from rfsim.config import model_config, param, static
from rfsim.data import data_keys, gaussian_inputs, label_noise
from rfsim.features import deep_random_features
from rfsim.models import register
from rfsim.networks import deep_weights
from rfsim.models._scales import working_set
from rfsim.solvers import gram_eigh, ridge_from_eigh
from rfsim.theory.deep_rf import RECURSIONS, check_recursion, deep_rf_risk
from rfsim.validation import require_choice, require_int, require_nonnegative

#: the targets the family simulates: rfsim.theory.deep_rf.TARGETS without "teacher" (a
#: teacher network, which the theory accepts as given weights and the family does not draw)
SIMULATED_TARGETS = ("linear", "shared")
CALIBRATION = 16384  # inputs used to estimate the centring constants c_l


@model_config
class DeepRFConfig:
    d: int = static(doc="input dimension; x ~ N(0, I_d)", data=True)
    n: int = static(doc="training samples", data=True)
    widths: tuple = static(doc="hidden widths (k_1, ..., k_L); the depth is L = len(widths)")
    activation: str = static("relu", doc="relu, erf, tanh, gelu or linear")
    target: str = static(
        "linear", doc="'linear' (<beta, x>/sqrt d) or 'shared' (<h_L, theta>/sqrt k_L)",
        data=True,
    )
    centered: bool = static(True, doc="subtract each neuron's population mean at every layer")
    recursion: str = static("linearized", doc="theory: 'linearized' (any activation) or "
                            "'exact' (relu, erf, linear)")
    n_test: int = static(4000, doc="fresh test points per seed for the excess risk", data=True)
    ridge: float = param(
        0.0, doc="lambda >= 0 in (1/n)||y - Z a||^2 + lambda ||a||^2, Z = H_L/sqrt(k_L)"
    )
    noise: float = param(0.0, doc="label-noise variance", data=True)

    def validate(self):
        require_int("d", self.d)
        require_int("n", self.n)
        widths = self.widths
        if isinstance(widths, (str, bytes)) or not isinstance(widths, (list, tuple)) \
                or len(widths) == 0:
            raise ValueError(f"widths must be a non-empty list of integers >= 1, got {widths!r}")
        for i, k in enumerate(widths):
            require_int(f"widths[{i}]", k)
        object.__setattr__(self, "widths", tuple(int(k) for k in widths))
        if not isinstance(self.activation, str):
            raise ValueError(f"activation must be a string name, got {self.activation!r}")
        get_activation(self.activation)
        require_choice("target", self.target, SIMULATED_TARGETS)
        if self.recursion not in RECURSIONS:
            raise ValueError(f"recursion must be one of {list(RECURSIONS)}, "
                             f"got {self.recursion!r}")
        if not isinstance(self.centered, (bool, np.bool_)):
            raise ValueError(f"centered must be true or false, got {self.centered!r}")
        require_int("n_test", self.n_test)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        # "exact" needs relu/erf/linear and zero-mean pre-activations: fail here, not mid-sweep
        check_recursion(self.activation, self.recursion, centered=bool(self.centered),
                        depth=len(self.widths))


def _inputs(key, n: int, d: int, dtype):
    """``n`` inputs ``x ~ N(0, I_d)`` (:func:`rfsim.data.gaussian_inputs`)."""
    return gaussian_inputs(key, n, jnp.ones(d, dtype))


def init(keys, cfg: DeepRFConfig) -> dict:
    """The frozen network of a configuration: weights, centring constants (``keys.model``)
    and the target's coefficients (``keys.data``), passed to :func:`simulate` and
    :func:`predict` as arguments (not compile-time constants)."""
    dtype = jnp.result_type(float)
    widths = list(cfg.widths)
    weights = deep_weights(jax.random.fold_in(keys.model, 0), cfg.d, widths, dtype)
    size = widths[-1] if cfg.target == "shared" else cfg.d
    coeffs = _inputs(data_keys(keys.data).target, 1, size, dtype)[0]  # N(0, I)
    consts = [jnp.zeros(k, dtype) for k in widths]
    if cfg.centered:  # c_l: each neuron's mean over calibration inputs, layer after layer
        h = _inputs(jax.random.fold_in(keys.model, 2), CALIBRATION, cfg.d, dtype)
        for l, W in enumerate(weights):
            a = deep_random_features(h, [W], cfg.activation)
            consts[l] = a.mean(axis=0)
            h = a - consts[l]
    return {"weights": tuple(weights), "consts": tuple(consts), "coeffs": coeffs}


def simulate(keys, cfg: DeepRFConfig, state: dict) -> dict[str, jax.Array]:
    """One draw of training data, noise and test data (``keys.data``) through the frozen
    network."""
    weights, consts, coeffs = state["weights"], state["consts"], state["coeffs"]
    dtype = coeffs.dtype
    k = data_keys(keys.data)
    root_k = math.sqrt(cfg.widths[-1])
    X = _inputs(k.train, cfg.n, cfg.d, dtype)
    Xt = _inputs(k.test, cfg.n_test, cfg.d, dtype)
    Z = deep_random_features(X, weights, cfg.activation, offsets=consts) / root_k
    Zt = deep_random_features(Xt, weights, cfg.activation, offsets=consts) / root_k
    if cfg.target == "shared":
        f, ft = Z @ coeffs, Zt @ coeffs
    else:
        f, ft = X @ coeffs / math.sqrt(cfg.d), Xt @ coeffs / math.sqrt(cfg.d)
    noise = jnp.asarray(cfg.noise, dtype)
    y = f + label_noise(k.noise, cfg.n, noise, dtype)
    a_hat = ridge_from_eigh(gram_eigh(Z), Z, y, cfg.ridge)
    excess = jnp.mean((ft - Zt @ a_hat) ** 2)
    return {
        "excess_risk": excess,
        "test_mse": excess + noise,
        "train_mse": jnp.mean((y - Z @ a_hat) ** 2),
    }


def predict(cfg: DeepRFConfig, state: dict) -> dict[str, jax.Array]:
    """Deterministic equivalent (DRF-11) for the same frozen weights and target; evaluated
    on the host per point (``predict_jit=False``): the layer recursion validates and jits
    itself, and the weights arrive as arguments, not constants."""
    weights, coeffs = state["weights"], state["coeffs"]
    extra = {"theta": coeffs} if cfg.target == "shared" else {"beta": coeffs}
    r = deep_rf_risk(list(weights), activation=cfg.activation, n=cfg.n, ridge=cfg.ridge,
                     noise=cfg.noise, target=cfg.target, centered=bool(cfg.centered),
                     recursion=cfg.recursion, **extra)
    return {"excess_risk": r.excess_risk, "test_mse": r.test_mse, "train_mse": r.train_mse}


def memory(cfg: DeepRFConfig) -> int:
    """One seed's peak working set (floats): every layer's
    weights, plus the largest of the calibration pass of :func:`init` (16384 inputs through
    the widest layer, two copies), the simulation (train and test inputs and activations,
    the Gram matrix with its eigendecomposition and workspace) and the theory's
    population covariances."""
    widths = (cfg.d, *cfg.widths)
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    k = max(widths)
    cal = CALIBRATION * (cfg.d + 2 * k) if cfg.centered else 0
    m = min(cfg.n, cfg.widths[-1])
    sim = (cfg.n + cfg.n_test) * (cfg.d + 2 * k) + 5 * m * m
    return working_set(weights + max(cal, sim, 3 * k * k))


MODEL = register(
    "deep-rf",
    DeepRFConfig,
    simulate,
    predict,
    metrics=("excess_risk", "test_mse", "train_mse"),
    description="ridge readout on deep frozen random features (Schröder, Cui, Dmitriev, "
    "Loureiro 2023 deterministic equivalent with layer-wise population covariances)",
    memory=memory,
    init=init,
    predict_jit=False,
    predicts=("excess_risk", "test_mse", "train_mse"),  # declared: predict runs on the host
)
