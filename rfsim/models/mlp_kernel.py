r"""Model family ``mlp-kernel``: how far a finite network's kernels are from their
infinite-width limits (theory/kernels.md K-7 – K-11).

One seed: ``n_inputs`` inputs uniform on the sphere of radius sqrt(d) (so ||x||^2/d = 1), a
network of ``depth`` hidden layers of ``width`` units drawn at initialization
(:func:`rfsim.networks.mlp`, the conventions of K-7 / K-10), and

* ``ntk_error = ||Theta_emp - Theta||_F / ||Theta||_F``: the empirical NTK (all parameters'
  gradients, :func:`rfsim.empirical_kernels.empirical_ntk`) against the closed form (K-9 / K-10);
* ``nngp_error = ||K_cond - K||_F / ||K||_F``: the conditional NNGP of the drawn hidden
  layers, ``w_std^2 phi(h^L).phi(h^L)'/width + b_std^2`` (the output covariance over the
  readout weights alone, :func:`rfsim.empirical_kernels.conditional_nngp`), against the NNGP (K-8).

Both are random with mean ``O(width^{-1/2})`` (the hidden layers' empirical kernels
fluctuate like a sum of ``width`` i.i.d. terms; theory/kernels.md §2, regime of validity),
which is what this family's ``rate`` checks test: the fitted log–log slope in width is -1/2.
There is no per-point prediction (``predict`` is None): the closed form enters the metric.
"""

from __future__ import annotations

from rfsim.config import model_config, static
from rfsim.data import data_keys, sphere_inputs
from rfsim.empirical_kernels import conditional_nngp, empirical_ntk
from rfsim.models import register
from rfsim.models._scales import check_network, relative_frobenius, working_set
from rfsim.networks import MAX_UNROLLED_DEPTH, UNROLLED, arch_field, mlp
from rfsim.theory.kernels import kernels
from rfsim.validation import require_int

MAX_DEPTH = MAX_UNROLLED_DEPTH


@model_config
class MLPKernelConfig:
    width: int = arch_field("width")
    depth: int = arch_field("depth", 1, doc=f"0..{MAX_DEPTH}")
    activation: str = arch_field("activation", "relu")
    parameterization: str = arch_field("parameterization", "ntk")
    n_inputs: int = static(16, doc="inputs per seed (uniform on the sphere of radius sqrt(d))",
                           data=True)
    d: int = static(8, doc="input dimension", data=True)
    w_std: float = arch_field("w_std", 1.0)
    b_std: float = arch_field("b_std", 0.0)

    def validate(self):
        require_int("n_inputs", self.n_inputs, minimum=2)
        require_int("d", self.d)
        # the closed forms and the network form w_std^2 ||x||^2/d, b_std^2 and kernels that
        # grow like w_std^(2 depth): refuse scales they cannot hold, naming the field
        check_network(self, max_depth=MAX_DEPTH, why=UNROLLED)


def simulate(keys, cfg: MLPKernelConfig, state=None) -> dict:
    """One network at initialization (``keys.model``) on one draw of inputs
    (``keys.data``): relative Frobenius errors."""
    x = sphere_inputs(data_keys(keys.data).train, cfg.n_inputs, cfg.d)
    arch = dict(depth=cfg.depth, activation=cfg.activation, w_std=float(cfg.w_std),
                b_std=float(cfg.b_std), parameterization=cfg.parameterization)
    apply_fn, params = mlp(keys.model, cfg.d, width=cfg.width, **arch)
    limit = kernels(x, width=cfg.width, **arch)
    return {
        "ntk_error": relative_frobenius(empirical_ntk(apply_fn, params, x), limit.ntk),
        "nngp_error": relative_frobenius(conditional_nngp(apply_fn, params, x), limit.nngp),
    }


def memory(cfg: MLPKernelConfig) -> int:
    """One seed's peak working set (floats): the parameters
    (three copies), the inputs, every layer's activations and backward vectors
    (4 n_inputs width (depth + 1)), and the n_inputs x n_inputs kernels: one per layer in the
    empirical NTK, the closed forms' and their temporaries ((3 (depth + 1) + 2) n_inputs^2)."""
    n, w, L = cfg.n_inputs, cfg.width, cfg.depth
    params = w * w * max(L - 1, 0) + cfg.d * w + w * (L + 1) + w
    return working_set(3 * params + 2 * n * cfg.d + 4 * n * w * (L + 1)
                    + (3 * (L + 1) + 2) * n * n)


MODEL = register(
    "mlp-kernel",
    MLPKernelConfig,
    simulate,
    None,
    metrics=("ntk_error", "nngp_error"),
    description="finite-width NTK/NNGP of an MLP against the infinite-width closed forms",
    memory=memory,
)
