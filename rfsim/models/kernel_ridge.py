r"""Model family ``kernel-ridge``: kernel ridge regression on the sphere against its
spectral (eigenlearning) prediction (theory/kernels.md §5, theory/sphere.md, theory/ridge.md §8).

Data: ``x`` uniform on the sphere of radius sqrt(d) (``||x||^2/d = 1``); target
``y = f*(x) + eps``, ``f* = sum_l f_l`` a sum of spherical harmonics of the chosen
``degrees`` with powers ``E f_l^2 = powers[l]`` (:func:`rfsim.theory.sphere.harmonic_target`,
drawn once per static group from its state key: every seed learns the same target);
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

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS
from rfsim.config import model_config, param, static
from rfsim.models import register
from rfsim.solvers import kernel_ridge_from_eigh
from rfsim.theory.kernels import dot_product
from rfsim.theory.sphere import (
    HarmonicTarget,
    degree_power,
    harmonic_target,
    kernel_spectrum,
    sphere_krr_risk,
    sphere_points,
)
from rfsim.validation import require, require_choice, require_int, require_nonnegative

KERNELS = ("ntk", "nngp", "gaussian")


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
        require_choice("kernel", self.kernel, KERNELS)
        require_int("depth", self.depth, minimum=0, maximum=100)
        require_choice("activation", self.activation, ACTIVATIONS, listed=sorted(ACTIVATIONS))
        require("w_std", self.w_std, lambda a: a > 0, "> 0")
        require_nonnegative("b_std", self.b_std)
        require("bandwidth", self.bandwidth, lambda a: a > 0, "> 0")
        require_int("max_degree", self.max_degree, minimum=0, maximum=2000)
        require_int("n_test", self.n_test, minimum=2)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        degree_power(self.degrees, self.powers, self.max_degree)  # validates both lists


def _kfun(cfg: KernelRidgeConfig):
    """``kfun(t)`` (jittable, elementwise) of the configured kernel."""
    if cfg.kernel == "gaussian":
        scale = cfg.d / cfg.bandwidth**2
        return lambda t: jnp.exp(-scale * (1.0 - t))
    return functools.partial(dot_product, depth=cfg.depth, activation=cfg.activation,
                             w_std=cfg.w_std, b_std=cfg.b_std, get=cfg.kernel)


def _gram(kfun, a, b, d, same=False):
    t = jnp.clip((a @ b.T) / d, -1.0, 1.0)
    if same:  # ||x||^2/d = 1 exactly on the diagonal (round-off would put theta ~ 1e-8)
        t = jnp.fill_diagonal(0.5 * (t + t.T), 1.0, inplace=False)
    return kfun(t)


def init(key: jax.Array, cfg: KernelRidgeConfig) -> dict:
    """The target f* of this static group (centres and coefficients, theory/sphere.md S-8)."""
    f = harmonic_target(key, cfg.d, cfg.degrees, cfg.powers)
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
    X = sphere_points(k_x, cfg.n, cfg.d)
    Xt = sphere_points(k_test, cfg.n_test, cfg.d)
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
    cfg = KernelRidgeConfig(n=1, d=d, kernel=kernel, depth=depth, activation=activation,
                            w_std=w_std, b_std=b_std, bandwidth=bandwidth, degrees=(0,),
                            powers=(0.0,), max_degree=L)
    kfun = _kfun(cfg)

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
    """Floats in the largest array of one seed: the Gram matrix and its eigenvectors, or
    the test-by-train kernel block."""
    return max(2 * cfg.n * cfg.n, cfg.n_test * cfg.n)


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
)

