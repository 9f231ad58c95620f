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
and no noise it underestimates (theory/kernels.md §5).  The truncation ``L`` is
``max_degree``: ``"auto"`` (default) picks the least L whose left-out eigenvalues are all
<= 1e-2 kappa (theory/sphere.md S-10); an explicit L must meet the same bound, and any L
whose trace round-off could move test_mse by more than 1e-5 relative is refused (S-11).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.activations import ACTIVATIONS
from rfsim.config import model_config, param, static
from rfsim.data import data_keys, harmonic_draw, label_noise, sphere_inputs
from rfsim.engine.keys import SeedKeys
from rfsim.models import register
from rfsim.models._scales import require_network_scales, require_square, working_set
from rfsim.solvers import kernel_ridge_from_eigh
from rfsim.theory.kernels import dot_product
from rfsim.theory.sphere import (
    DEGREE_LIMIT,
    ROUNDOFF_TOL,
    TRUNCATION_RATIO,
    HarmonicTarget,
    SpectrumError,
    Truncation,
    auto_degree,
    certify,
    degree_power,
    kernel_spectrum,
    max_degree as sphere_max_degree,
    roundoff,
    sphere_krr_risk,
)
from rfsim.validation import (
    is_concrete,
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
    n: int = static(doc="training samples", data=True)
    d: int = static(doc="input dimension (inputs on the sphere of radius sqrt(d))", data=True)
    kernel: str = static("ntk", doc="'ntk', 'nngp' (of the MLP below) or 'gaussian'")
    depth: int = static(1, doc="hidden layers of the MLP whose NTK/NNGP is the kernel")
    activation: str = static("relu", doc="the MLP's activation")
    w_std: float = static(1.0, doc="the MLP's weight scale")
    b_std: float = static(0.0, doc="the MLP's bias scale")
    bandwidth: float = static(1.0, doc="the Gaussian kernel's bandwidth")
    degrees: tuple = static((1, 2), doc="spherical-harmonic degrees of the target", data=True)
    powers: tuple = static((0.5, 0.5), doc="target power E f_l^2 per degree", data=True)
    max_degree: int | str = static("auto", doc="L: the theory's last explicit degree (tail "
                                   "beyond); 'auto' picks it by theory/sphere.md (S-10)")
    n_test: int = static(2000, doc="fresh points estimating the excess risk", data=True)
    ridge: float = param(0.0, doc="lambda >= 0: alpha = (K + n lambda I)^-1 y")
    noise: float = param(0.0, doc="label-noise variance", data=True)

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
        top = min(DEGREE_LIMIT, sphere_max_degree(self.d))
        if self.max_degree != "auto":
            if isinstance(self.max_degree, str):
                raise ValueError(f"max_degree must be 'auto' or an integer >= 0, got "
                                 f"{self.max_degree!r}")
            require_int("max_degree", self.max_degree, minimum=0, maximum=DEGREE_LIMIT)
            if self.max_degree > top:
                raise ValueError(f"max_degree must be <= {top} for d = {self.d} (the "
                                 f"multiplicity N(d, l) of a higher degree exceeds the float64 "
                                 f"maximum, and the spectrum weights each eigenvalue by it), "
                                 f"got {self.max_degree}")
        require_int("n_test", self.n_test, minimum=2)
        require_nonnegative("ridge", self.ridge)
        require_nonnegative("noise", self.noise)
        _ignored(self)
        degrees, powers = _target_lists(self.degrees, self.powers)
        object.__setattr__(self, "degrees", degrees)
        object.__setattr__(self, "powers", powers)
        degree_power(self.degrees, self.powers,  # validates both lists
                     top if self.max_degree == "auto" else self.max_degree)
        if self.kernel == "gaussian":
            # the Gram forms exp(-(d / bandwidth^2)(1 - t)): d / bandwidth^2 must be a number
            require_square("bandwidth", self.bandwidth, zero_ok=False)
            scale = self.d / (float(self.bandwidth) * float(self.bandwidth))
            require_in_range("d / bandwidth^2", scale)
        else:
            require_network_scales(w_std=self.w_std, b_std=self.b_std, depth=self.depth,
                                   activation=self.activation, gets=(self.kernel,),
                                   family="the kernel")
        if is_concrete((self.ridge, self.noise)):
            truncation(self)  # refused here, naming the field, before anything is simulated


# fields that only some kernels use, with their defaults: a non-default value under a kernel
# that ignores it would split the grid into static groups that differ in nothing
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


def init(keys: SeedKeys, cfg: KernelRidgeConfig) -> dict:
    """The target f* of this static group (centres and coefficients, theory/sphere.md S-8),
    drawn from the group's data key: every seed, and every kernel, learns the same target."""
    draw = harmonic_draw(data_keys(keys.data).target, cfg.d, len(cfg.degrees))
    f = HarmonicTarget.from_draw(cfg.d, cfg.degrees, cfg.powers, draw)
    return {"centres": jnp.asarray(f.centres), "coeffs": jnp.asarray(f.coeffs)}


def _target(cfg, state):
    return HarmonicTarget(cfg.d, tuple(int(l) for l in cfg.degrees),
                          tuple(float(p) for p in cfg.powers), state["centres"],
                          state["coeffs"])


def simulate(keys: SeedKeys, cfg: KernelRidgeConfig, state: dict) -> dict[str, jax.Array]:
    """One training set (all of it from ``keys.data``, theory/data.md): KRR on n points,
    excess risk on n_test fresh points."""
    k = data_keys(keys.data)
    f = _target(cfg, state)
    kfun = _kfun(cfg)
    X = sphere_inputs(k.train, cfg.n, cfg.d)
    Xt = sphere_inputs(k.test, cfg.n_test, cfg.d)
    y = f(X) + label_noise(k.noise, cfg.n, cfg.noise, X.dtype)
    K = _gram(kfun, X, X, cfg.d, same=True)
    evals, vecs = jnp.linalg.eigh(K)  # data only: shared by every ridge and noise
    alpha = kernel_ridge_from_eigh(evals, vecs, y, cfg.ridge)
    excess = jnp.mean((_gram(kfun, Xt, X, cfg.d) @ alpha - f(Xt)) ** 2)
    return {
        "excess_risk": excess,
        "test_mse": excess + cfg.noise,
        "train_mse": jnp.mean((K @ alpha - y) ** 2),
    }


def _bucket(m: int) -> int:
    """Quadrature sizes rounded up to a power of two (>= 1024): one compiled kernel
    evaluation serves every degree of a truncation search."""
    return max(1024, 1 << (m - 1).bit_length())


@functools.lru_cache(maxsize=256)
def _spectrum(kernel, depth, activation, w_std, b_std, bandwidth, d, L):
    kfun = _kernel_function(kernel, d, depth, activation, w_std, b_std, bandwidth)

    def kfun64(t):  # the theory is float64 even in a --float32 run (a scoped switch only)
        t = np.asarray(t, dtype=float)
        padded = np.ones(_bucket(t.size))
        padded[:t.size] = t.ravel()
        with jax.enable_x64(True):
            k = np.asarray(kfun(jnp.asarray(padded, dtype=jnp.float64)), dtype=float)
        return k[:t.size].reshape(t.shape)

    return kernel_spectrum(kfun64, d, L)


def _kernel_key(cfg) -> tuple:
    return (cfg.kernel, int(cfg.depth), cfg.activation, float(cfg.w_std), float(cfg.b_std),
            float(cfg.bandwidth), int(cfg.d))


def truncation(cfg: KernelRidgeConfig) -> Truncation:
    """The prediction's truncation degree L with its certificates (theory/sphere.md S-10,
    S-11): ``max_degree = 'auto'`` picks the smallest L whose left-out eigenvalues are all
    <= 1e-2 kappa; an explicit one must satisfy the same; both must keep the round-off
    estimate of test_mse <= 1e-5 relative.  ValueError naming max_degree otherwise."""
    with jax.enable_x64(True):  # certificates in float64 even in a --float32 run
        return _truncation(_kernel_key(cfg), int(cfg.n), float(cfg.ridge), float(cfg.noise),
                           cfg.degrees, cfg.powers, cfg.max_degree)


@functools.lru_cache(maxsize=1024)
def _truncation(kkey, n, ridge, noise, degrees, powers, max_degree) -> Truncation:
    kernel, d = kkey[0], kkey[-1]

    def spectrum_at(L):
        return _spectrum(*kkey, L)

    def unresolved(e: SpectrumError) -> ValueError:
        return ValueError(f"max_degree must be small enough for float64 to resolve the "
                          f"{kernel} kernel's Mercer spectrum in d = {d} (it failed at degree "
                          f"{e.degree}), got {max_degree!r}: lower max_degree or d ({e})")

    def auto() -> Truncation:
        try:
            return auto_degree(spectrum_at, d, n=n, ridge=ridge, floor=max(degrees))
        except SpectrumError as e:
            raise unresolved(e) from None
        except ValueError as e:
            raise ValueError(f"max_degree = 'auto' found no truncation: {e}; raise ridge"
                             ) from None

    if max_degree == "auto":
        t = auto()
    else:
        top = sphere_max_degree(d)
        try:
            t = certify(spectrum_at(min(max_degree + 2, top)), max_degree, d, n=n,
                        ridge=ridge)
        except SpectrumError as e:
            raise unresolved(e) from None
        if t.ratio > TRUNCATION_RATIO:
            raise ValueError(
                f"max_degree must leave out only eigenvalues far below the effective ridge "
                f"kappa (theory/sphere.md S-10: lambda_l <= {TRUNCATION_RATIO:g} kappa for l "
                f"> L), got {max_degree}: the largest left-out one is {t.ratio:.3g} kappa "
                f"(kappa = {t.kappa:.3g} at n = {n}, ridge = {ridge:g}); use max_degree = "
                f"'auto' (here {auto().L})")
    spec = spectrum_at(t.L)
    err = roundoff(spec, degree_power(degrees, powers, t.L), n=n, ridge=ridge, noise=noise)
    if err > ROUNDOFF_TOL:
        fix = "lower it or use 'auto'" if max_degree != "auto" else "raise ridge"
        raise ValueError(
            f"max_degree must be low enough for float64 to hold the spectrum's trace "
            f"(theory/sphere.md S-11), got {max_degree!r} (L = {t.L} in d = {d}): its "
            f"round-off {spec.trace_error:.2g} moves test_mse by up to {err:.2g} relative, "
            f"more than {ROUNDOFF_TOL:g}; {fix}")
    return t._replace(roundoff=err)


def spectrum(cfg: KernelRidgeConfig):
    """The kernel's Mercer spectrum on the sphere to the truncation degree of
    :func:`truncation` (``max_degree``, or the one 'auto' picks), with its tail (cached)."""
    return _spectrum(*_kernel_key(cfg), truncation(cfg).L)


def predict(cfg: KernelRidgeConfig, state: dict) -> dict[str, float]:
    """Eigenlearning with multiplicities and the spectral tail (theory/ridge.md R-9–R-11)."""
    del state  # the risk depends on the target only through its power per degree
    L = truncation(cfg).L
    power = degree_power(cfg.degrees, cfg.powers, L)
    r = sphere_krr_risk(_spectrum(*_kernel_key(cfg), L), power, n=cfg.n,
                        ridge=float(cfg.ridge), noise=float(cfg.noise))
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

