r"""Model family ``kernel-ridge``: kernel ridge regression on the sphere against its
spectral (eigenlearning) prediction (theory/kernels.md §5, theory/sphere.md, theory/ridge.md §8).

Data: ``x`` uniform on the sphere of radius sqrt(d) (``||x||^2/d = 1``); target
``y = f*(x) + eps``, ``f* = sum_l f_l`` a sum of spherical harmonics of the chosen
``degrees`` with powers ``E f_l^2 = powers[l]`` (:func:`rfsim.data.harmonic_draw` made a
target by :meth:`rfsim.theory.sphere.HarmonicTarget.from_draw`, drawn once per static group
from its state key: every seed learns the same target);
``Var eps = noise``.

Kernel (a dot-product kernel ``k(x, x') = kfun(x.x'/d)``):

* ``"ntk"`` / ``"nngp"``: the NTK or NNGP of the network (depth, activation, w_std, b_std;
  NTK parameterization) of theory/kernels.md (K-7)–(K-9), :func:`rfsim.theory.kernels.dot_product`;
* ``"gaussian"``: ``exp(-||x - x'||^2 / (2 bandwidth^2)) = exp(-d (1 - t) / bandwidth^2)``.

Estimator (the (1/n)-loss convention, PAPERS.md pitfall 1): ``f = k(., X) alpha``,
``alpha = (K + n ridge I)^{-1} y``; ``ridge = 0`` is the minimum-norm interpolant.

Metrics: ``excess_risk = E_x (f(x) - f*(x))^2`` by ``n_test`` fresh points (unbiased; its
Monte Carlo error is part of the seed scatter), ``test_mse = excess_risk + noise``,
``train_mse = (1/n) ||K alpha - y||^2``.

Prediction: the kernel's Mercer eigenvalues per degree ``l <= L`` with multiplicities
``N(d, l)`` by Funk–Hecke quadrature, the rest of the spectrum through its exact tail
moments (the trace identity), fed to :func:`rfsim.theory.ridge.krr_risk` (host NumPy:
``predict_jit=False``).  Asymptotically exact as n, d grow with n/N(d, l) fixed; at small d
and no noise it underestimates (theory/kernels.md §5).
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS
from rfsim.config import model_config, param, static
from rfsim.data import harmonic_draw, sphere_inputs
from rfsim.models import register
from rfsim.models._scales import require_network_scales, require_square, working_set
from rfsim.solvers import kernel_ridge_from_eigh
from rfsim.theory.kernels import dot_product
from rfsim.theory.sphere import (
    HarmonicTarget,
    degree_power,
    kernel_spectrum,
    max_degree as sphere_max_degree,
    sphere_krr_risk,
)
from rfsim.validation import (
    require,
    require_choice,
    require_in_range,
    require_int,
    require_nonnegative,
)

KERNELS = ("ntk", "nngp", "gaussian")
MAX_D = 10**6


@model_config
class KernelRidgeConfig:
    n: int = static(doc="training samples")
    d: int = static(doc="input dimension (inputs on the sphere of radius sqrt(d))")
    kernel: str = static("ntk", doc="'ntk', 'nngp' (of the MLP below) or 'gaussian'")
    depth: int = static(1, doc="hidden layers of the MLP whose NTK/NNGP is the kernel")
    activation: str = static("relu", doc="the MLP's activation")
    w_std: float = static(1.0, doc="the MLP's weight scale")
    b_std: float = static(0.0, doc="the MLP's bias scale")
    bandwidth: float = static(1.0, doc="the Gaussian kernel's bandwidth")
    degrees: tuple = static((1, 2), doc="spherical-harmonic degrees of the target")
    powers: tuple = static((0.5, 0.5), doc="target power E f_l^2 per degree")
    max_degree: int = static(20, doc="L: the theory's last explicit degree (tail beyond)")
    n_test: int = static(2000, doc="fresh points estimating the excess risk")
    ridge: float = param(0.0, doc="lambda >= 0: alpha = (K + n lambda I)^-1 y")
    noise: float = param(0.0, doc="label-noise variance")

    def validate(self):
        require_int("n", self.n)
        require_int("d", self.d, minimum=2)
        if self.d > MAX_D:
            raise ValueError(f"d must be <= {MAX_D:,} (the theory's Funk-Hecke quadrature "
                             f"takes about 5 d nodes: minutes beyond that, and float64 "
                             f"resolves only the first few degrees there), got {self.d:,}")
        require_choice("kernel", self.kernel, KERNELS)
        require_int("depth", self.depth, minimum=0, maximum=100)
        require_choice("activation", self.activation, ACTIVATIONS, listed=sorted(ACTIVATIONS))
        require("w_std", self.w_std, lambda a: a > 0, "> 0")
        require_nonnegative("b_std", self.b_std)
        require("bandwidth", self.bandwidth, lambda a: a > 0, "> 0")
        require_int("max_degree", self.max_degree, minimum=0, maximum=2000)
        top = min(2000, sphere_max_degree(self.d))
        if self.max_degree > top:
            raise ValueError(f"max_degree must be <= {top} for d = {self.d} (the multiplicity "
                             f"N(d, l) of a higher degree exceeds the float64 maximum, and the "
                             f"spectrum weights each eigenvalue by it), got {self.max_degree}")
        require_int("n_test", self.n_test, minimum=2)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        _ignored(self)
        degrees, powers = _target_lists(self.degrees, self.powers)
        object.__setattr__(self, "degrees", degrees)
        object.__setattr__(self, "powers", powers)
        degree_power(self.degrees, self.powers, self.max_degree)  # validates both lists
        if self.kernel == "gaussian":
            # the Gram forms exp(-(d / bandwidth^2)(1 - t)): d / bandwidth^2 must be a number
            require_square("bandwidth", self.bandwidth, zero_ok=False)
            scale = self.d / (float(self.bandwidth) * float(self.bandwidth))
            require_in_range("d / bandwidth^2", scale)
        else:
            require_network_scales(w_std=self.w_std, b_std=self.b_std, depth=self.depth,
                                   activation=self.activation, gets=(self.kernel,),
                                   family="the kernel")
        _require_spectrum(self)


def _require_spectrum(cfg) -> None:
    """Form the Mercer spectrum (cached: predict reuses it) before any compute, so that a
    (d, max_degree, kernel) whose spectrum float64 cannot resolve is refused here, naming
    the fields, not after the whole simulation ran."""
    try:
        spectrum(cfg)
    except ValueError as e:
        m = re.search(r"eigenvalues\[(\d+)\]", str(e))
        at = f" (it failed at degree {m.group(1)})" if m else ""
        raise ValueError(f"max_degree must be small enough for float64 to resolve the "
                         f"{cfg.kernel} kernel's Mercer spectrum in d = {cfg.d}{at}, got "
                         f"{cfg.max_degree}: lower max_degree or d ({e})"
        ) from None


# fields that only some kernels use, with their defaults: a non-default value under a kernel
# that ignores it would change the draws (statics are hashed into the keys) and nothing else
_NETWORK_FIELDS = {"depth": 1, "activation": "relu", "w_std": 1.0, "b_std": 0.0}
_GAUSSIAN_FIELDS = {"bandwidth": 1.0}


def _ignored(cfg) -> None:
    unused = _NETWORK_FIELDS if cfg.kernel == "gaussian" else _GAUSSIAN_FIELDS
    users = "'ntk' or 'nngp'" if cfg.kernel == "gaussian" else "'gaussian'"
    for name, default in unused.items():
        value = getattr(cfg, name)
        if value != default:
            raise ValueError(f"{name} is used only with kernel = {users}; got {name} = "
                             f"{value!r} with kernel = {cfg.kernel!r}: remove it")


def _target_lists(degrees, powers) -> tuple[tuple, tuple]:
    """``degrees`` and ``powers`` as tuples: each must be a list (a scalar or a string is
    refused, not iterated), ``powers`` a flat list of real numbers."""
    for name, value, what in (("degrees", degrees, "integers >= 0"),
                              ("powers", powers, "numbers >= 0, one per degree")):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list of {what}, got {value!r}")
    for i, p in enumerate(powers):
        if isinstance(p, (bool, str, bytes, list, tuple, dict)) or p is None:
            raise ValueError(f"powers[{i}] must be a real number >= 0, got {p!r}")
        require_nonnegative(f"powers[{i}]", p)
    return tuple(degrees), tuple(float(p) for p in powers)


def _kfun(cfg: KernelRidgeConfig):
    """``kfun(t)`` (jittable, elementwise) of the configured kernel."""
    return _kernel_function(cfg.kernel, cfg.d, cfg.depth, cfg.activation, cfg.w_std,
                            cfg.b_std, cfg.bandwidth)


def _kernel_function(kernel, d, depth, activation, w_std, b_std, bandwidth):
    if kernel == "gaussian":
        scale = d / (float(bandwidth) * float(bandwidth))  # validated: a normal number
        return lambda t: jnp.exp(-scale * (1.0 - t))
    return functools.partial(dot_product, depth=depth, activation=activation,
                             w_std=w_std, b_std=b_std, get=kernel)


def _gram(kfun, a, b, d, same=False):
    t = jnp.clip((a @ b.T) / d, -1.0, 1.0)
    if same:  # ||x||^2/d = 1 exactly on the diagonal (round-off would put theta ~ 1e-8)
        t = jnp.fill_diagonal(0.5 * (t + t.T), 1.0, inplace=False)
    return kfun(t)


def init(key: jax.Array, cfg: KernelRidgeConfig) -> dict:
    """The target f* of this static group (centres and coefficients, theory/sphere.md S-8)."""
    f = HarmonicTarget.from_draw(cfg.d, cfg.degrees, cfg.powers,
                                 harmonic_draw(key, cfg.d, len(cfg.degrees)))
    return {"centres": jnp.asarray(f.centres), "coeffs": jnp.asarray(f.coeffs)}


def _target(cfg, state):
    return HarmonicTarget(cfg.d, tuple(int(l) for l in cfg.degrees),
                          tuple(float(p) for p in cfg.powers), state["centres"],
                          state["coeffs"])


def simulate(key: jax.Array, cfg: KernelRidgeConfig, state: dict) -> dict[str, jax.Array]:
    """One training set: KRR on n points, excess risk on n_test fresh points."""
    k_x, k_eps, k_test = jax.random.split(key, 3)
    f = _target(cfg, state)
    kfun = _kfun(cfg)
    X = sphere_inputs(k_x, cfg.n, cfg.d)
    Xt = sphere_inputs(k_test, cfg.n_test, cfg.d)
    dtype = X.dtype
    y = f(X) + jnp.sqrt(jnp.asarray(cfg.noise, dtype)) * jax.random.normal(k_eps, (cfg.n,), dtype)
    K = _gram(kfun, X, X, cfg.d, same=True)
    evals, vecs = jnp.linalg.eigh(K)  # data only: shared by every ridge and noise
    alpha = kernel_ridge_from_eigh(evals, vecs, y, cfg.ridge)
    excess = jnp.mean((_gram(kfun, Xt, X, cfg.d) @ alpha - f(Xt)) ** 2)
    return {
        "excess_risk": excess,
        "test_mse": excess + cfg.noise,
        "train_mse": jnp.mean((K @ alpha - y) ** 2),
    }


@functools.lru_cache(maxsize=64)
def _spectrum(kernel, depth, activation, w_std, b_std, bandwidth, d, L):
    kfun = _kernel_function(kernel, d, depth, activation, w_std, b_std, bandwidth)

    def kfun64(t):  # the theory is float64 even in a --float32 run (a scoped switch only)
        with jax.enable_x64(True):
            return np.asarray(kfun(jnp.asarray(t, dtype=jnp.float64)), dtype=float)

    return kernel_spectrum(kfun64, d, L)


def spectrum(cfg: KernelRidgeConfig):
    """The kernel's Mercer spectrum on the sphere to degree ``max_degree`` with its tail
    (cached per kernel, d and L)."""
    return _spectrum(cfg.kernel, int(cfg.depth), cfg.activation, float(cfg.w_std),
                     float(cfg.b_std), float(cfg.bandwidth), int(cfg.d), int(cfg.max_degree))


def predict(cfg: KernelRidgeConfig, state: dict) -> dict[str, float]:
    """Eigenlearning with multiplicities and the spectral tail (theory/ridge.md R-9–R-11)."""
    del state  # the risk depends on the target only through its power per degree
    power = degree_power(cfg.degrees, cfg.powers, cfg.max_degree)
    r = sphere_krr_risk(spectrum(cfg), power, n=cfg.n, ridge=float(cfg.ridge),
                        noise=float(cfg.noise))
    return {"excess_risk": float(r.excess_risk), "test_mse": float(r.test_mse),
            "train_mse": float(r.train_mse)}


def memory(cfg: KernelRidgeConfig) -> int:
    """One seed's peak working set (floats): the train and test
    inputs in R^d drawn and normalized (2.5 (n + n_test) d), the Gram matrix with its
    eigendecomposition and workspace (5 n^2) and the test-by-train kernel block with the
    kernel's temporaries (4 n_test n)."""
    return working_set(2.5 * (cfg.n + cfg.n_test) * cfg.d + 5 * cfg.n * cfg.n
                    + 4 * cfg.n_test * cfg.n)


MODEL = register(
    "kernel-ridge",
    KernelRidgeConfig,
    simulate,
    predict,
    metrics=("excess_risk", "test_mse", "train_mse"),
    description="kernel ridge regression on the sphere (NTK/NNGP/Gaussian kernels) vs "
                "eigenlearning from the Mercer spectrum",
    memory=memory,
    init=init,
    predict_jit=False,
    predicts=("excess_risk", "test_mse", "train_mse"),  # declared: predict runs on the host
)

