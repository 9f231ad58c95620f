"""Empirical NTK / NNGP of finite networks (rfsim.empirical_kernels, formerly rfsim.kernels):
the three implementations agree, the Jacobian path matches a brute-force jacrev reference,
wide networks approach the infinite-width kernels at rate width^{-1/2}, batching is exact,
bad inputs are refused."""

import itertools
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import tol
from jax.flatten_util import ravel_pytree

from rfsim import empirical_kernels as kernels
from rfsim.features import arccos_kernel

D = 3
X1 = jax.random.normal(jax.random.key(11), (5, D))
X2 = jax.random.normal(jax.random.key(12), (4, D))


def close(a, b, scale=None):
    """Equal to the dtype's round-off, relative to the largest entry."""
    a, b = np.asarray(a), np.asarray(b)
    scale = np.abs(b).max() if scale is None else scale
    np.testing.assert_allclose(a, b, rtol=0, atol=100 * tol(a) * scale)


def net(depth, b_std, parameterization, activation, width=6, w_std=1.3, seed=0):
    return kernels.mlp(jax.random.key(seed), D, depth=depth, width=width, w_std=w_std,
                       b_std=b_std, parameterization=parameterization, activation=activation)


# --------------------------------------------------------------------------- implementations

# (depth, b_std, parameterization, activation): every pair of levels of depth {1, 2}, bias
# {none, 0.4}, both parameterizations and relu/tanh occurs in some row (a covering array;
# the full product costs 16 compilations for no new pair), plus the linear depth-0 network
CASES = [(1, None, "ntk", "relu"), (1, 0.4, "standard", "tanh"), (2, None, "standard", "tanh"),
         (2, 0.4, "ntk", "tanh"), (2, 0.4, "standard", "relu"), (0, 0.4, "standard", "relu")]


def test_cases_cover_every_pair():
    levels = [(1, 2), (None, 0.4), ("ntk", "standard"), ("relu", "tanh")]
    for i, j in itertools.combinations(range(4), 2):
        for pair in itertools.product(levels[i], levels[j]):
            assert any((c[i], c[j]) == pair for c in CASES), (i, j, pair)


@pytest.mark.parametrize("depth,b_std,parameterization,activation", CASES)
def test_implementations_agree(depth, b_std, parameterization, activation):
    f, p = net(depth, b_std, parameterization, activation)
    ks = {impl: kernels.empirical_ntk(f, p, X1, implementation=impl)
          for impl in ("structured", "jacobian", "ntvp")}
    assert ks["structured"].shape == (5, 5)
    assert ks["structured"].dtype == jnp.float64
    close(ks["jacobian"], ks["structured"])
    close(ks["ntvp"], ks["structured"])
    assert kernels.empirical_ntk(f, p, X1) is not None  # auto picks structured
    close(kernels.empirical_ntk(f, p, X1), ks["structured"])


@partial(jax.jit, static_argnums=0)
def brute_force_ntk(apply_fn, params, x):
    """J J^T / k with J the full-batch jacrev of the raveled parameters: (n, n, k, k)."""
    flat, unravel = ravel_pytree(params)
    J = jax.jacrev(lambda v: apply_fn(unravel(v), x).reshape(x.shape[0], -1))(flat)
    return jnp.einsum("iap,jbp->ijab", J, J)


def test_jacobian_matches_brute_force_mlp():
    f, p = net(2, 0.4, "standard", "tanh")
    ref = brute_force_ntk(f, p, X1)[:, :, 0, 0]
    close(kernels.empirical_ntk(f, p, X1, implementation="jacobian"), ref)
    close(kernels.empirical_ntk(f, p, X1, X2, implementation="jacobian"),
          brute_force_ntk(f, p, jnp.concatenate([X1, X2]))[:5, 5:, 0, 0])


class TwoOut(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(D, 4, param_dtype=jnp.float64, rngs=rngs)
        self.b = nnx.Linear(4, 2, param_dtype=jnp.float64, rngs=rngs)

    def __call__(self, x):
        return self.b(jnp.tanh(self.a(x)))


class LinenTwoOut(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = lambda k: nn.Dense(k, param_dtype=jnp.float64)
        return dense(2)(jnp.sin(dense(4)(x)))


@pytest.mark.parametrize("which", ["nnx", "linen", "linen_apply"])
def test_vector_outputs_all_paths(which):
    if which == "nnx":
        f, p = kernels.from_nnx(TwoOut(nnx.Rngs(0)))
    else:
        model = LinenTwoOut()
        variables = model.init(jax.random.key(0), X1)
        f, p = ((model.apply, variables) if which == "linen_apply"
                else kernels.from_linen(model, variables))
    full = brute_force_ntk(f, p, X1)
    ref = jnp.trace(full, axis1=2, axis2=3) / 2
    close(kernels.empirical_ntk(f, p, X1), ref)  # auto: the Jacobians fit, so "jacobian"
    if which != "nnx":
        return
    close(kernels.empirical_ntk(f, p, X1, implementation="ntvp"), ref)
    for impl in ("jacobian", "ntvp"):
        close(kernels.empirical_ntk(f, p, X1, implementation=impl, trace_outputs=False), full)
    out = f(p, X1)
    close(kernels.empirical_nngp(f, p, X1), out @ out.T / 2)
    outer = kernels.empirical_nngp(f, p, X1, trace_outputs=False)
    close(outer, jnp.einsum("ia,jb->ijab", out, out))


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("impl", ["structured", "jacobian", "ntvp"])
def test_batch_size_is_exact(impl):
    f, p = net(2, 0.4, "ntk", "relu")
    xa = jnp.concatenate([X1, X2])  # 9 rows: blocks of 4 leave a padded remainder
    whole = kernels.empirical_ntk(f, p, xa, implementation=impl)
    close(kernels.empirical_ntk(f, p, xa, batch_size=4, implementation=impl), whole)
    close(kernels.empirical_ntk(f, p, xa, X2, batch_size=4, implementation=impl), whole[:, 5:])
    blocked = kernels.empirical_ntk(f, p, xa, batch_size=4, implementation=impl)
    assert np.array_equal(blocked, blocked.T)


def test_symmetric_triangle_blocks_match_plain(monkeypatch):
    monkeypatch.setattr(kernels, "_TRIANGLE_ROWS", 3)  # 10 rows: blocks of 3, 4, 3
    f, p = net(1, 0.4, "ntk", "relu", width=4)  # a width no other test traces
    x = jnp.concatenate([X1, X2, X1[:1]])
    tri = kernels.empirical_ntk(f, p, x)
    close(tri, kernels.empirical_ntk(f, p, x, x))
    assert np.array_equal(tri, tri.T)


def test_float32_when_asked():
    f, p = kernels.mlp(jax.random.key(0), D, depth=1, width=5, dtype=jnp.float32)
    k = kernels.empirical_ntk(f, p, X1.astype(jnp.float32))
    assert k.dtype == jnp.float32


# --------------------------------------------------------------------------- infinite width

W_STD = 1.5
SEEDS = 8
XW = jax.random.normal(jax.random.key(21), (6, 4)) * jnp.array([1.0, 2.0, 0.5, 1.0])


def relu_depth1_reference(x, w):
    """Depth-1 relu network, b_std = 0, NTK parameterization, infinite width:
    K1 = w^2 x.x'/d, NNGP = w^2 E relu(u) relu(v) = w^4 arccos_1, and
    NTK = NNGP + w^2 K1 E relu'(u) relu'(v) = w^4 (arccos_1 + (x.x'/d) arccos_0)."""
    k1 = x @ x.T / x.shape[1]
    nngp = w**4 * arccos_kernel(x, x, 1)
    return nngp, nngp + w**4 * k1 * arccos_kernel(x, x, 0)


def rel_err(k, ref):
    return float(jnp.linalg.norm(k - ref) / jnp.linalg.norm(ref))


@pytest.fixture(scope="module")
def wide_kernels():
    """(NTK, conditional NNGP) of SEEDS seeds at widths 256 and 4096."""
    out = {}
    for width in (256, 4096):
        for seed in range(SEEDS):
            f, p = kernels.mlp(jax.random.key(100 + seed), XW.shape[1], depth=1, width=width,
                               w_std=W_STD, b_std=0.0)
            out[width, seed] = (kernels.empirical_ntk(f, p, XW),
                                kernels.conditional_nngp(f, p, XW))
    return out


def converges(kernel_by_width, ref) -> tuple[bool, str]:
    """Relative Frobenius error (RMS over seeds) < 0.1 at width 4096, and it shrinks like
    width^{-1/2}: the 256 -> 4096 ratio (ideally 4) within [2, 8]."""
    err = {w: float(np.sqrt(np.mean([rel_err(k, ref)**2 for k in ks])))
           for w, ks in kernel_by_width.items()}
    ratio = err[256] / err[4096]
    return err[4096] < 0.1 and 2.0 <= ratio <= 8.0, f"errors {err}, ratio {ratio:.2f}"


def by_width(wide, i):
    return {w: [wide[w, s][i] for s in range(SEEDS)] for w in (256, 4096)}


def test_wide_network_approaches_infinite_width(wide_kernels):
    nngp, ntk = relu_depth1_reference(XW, W_STD)
    ok, why = converges(by_width(wide_kernels, 0), ntk)
    assert ok, "NTK: " + why
    ok, why = converges(by_width(wide_kernels, 1), nngp)
    assert ok, "conditional NNGP: " + why


def test_wrong_references_fail_the_same_criterion(wide_kernels):
    nngp, ntk = relu_depth1_reference(XW, W_STD)
    wrong_w_nngp, wrong_w_ntk = relu_depth1_reference(XW, 1.0)
    assert not converges(by_width(wide_kernels, 0), nngp)[0]  # NTK against the NNGP
    assert not converges(by_width(wide_kernels, 1), ntk)[0]  # NNGP against the NTK
    assert not converges(by_width(wide_kernels, 0), wrong_w_ntk)[0]
    assert not converges(by_width(wide_kernels, 1), wrong_w_nngp)[0]


def test_monte_carlo_means_are_unbiased_at_depth_one():
    """At depth 1 (b_std = 0) E f f' and E Theta equal the infinite-width kernels at every
    width: the Monte Carlo means agree with them within their standard errors (300 seeds in
    chunks of 128, the last one partial)."""
    mc = kernels.monte_carlo_kernels(jax.random.key(5), XW[:3], n_samples=300, depth=1,
                                     width=8, w_std=W_STD, chunk_size=128)
    nngp, ntk = relu_depth1_reference(XW[:3], W_STD)
    assert mc.n_samples == 300 and mc.ntk.shape == (3, 3)
    iu = np.triu_indices(3)
    for mean, sem, ref, label in [(mc.nngp, mc.nngp_sem, nngp, "nngp"),
                                  (mc.ntk, mc.ntk_sem, ntk, "ntk"),
                                  (mc.conditional_nngp, mc.conditional_nngp_sem, nngp, "cond")]:
        assert np.all(np.asarray(sem) > 0)
        z = np.abs(np.asarray(mean - ref))[iu] / np.asarray(sem)[iu]
        assert z.max() < 4.0, (label, z)
        if label != "nngp":  # the twin (f f' itself is too noisy to resolve this at S=300):
            wrong = ref * (1.4 / W_STD) ** 4  # w_std = 1.4 instead of 1.5 is resolved
            assert (np.abs(np.asarray(mean - wrong))[iu] / np.asarray(sem)[iu]).max() > 4.0


# --------------------------------------------------------------------------- validation


def _nnx_fn():
    return kernels.from_nnx(TwoOut(nnx.Rngs(0)))


BAD = [
    ("depth", lambda: kernels.mlp(jax.random.key(0), D, depth=-1, width=4)),
    ("width", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=0)),
    ("d", lambda: kernels.mlp(jax.random.key(0), 0, depth=1, width=4)),
    ("activation", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=4,
                                       activation="rleu")),
    ("parameterization", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=4,
                                             parameterization="ntx")),
    ("w_std", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=4, w_std=-1.0)),
    ("b_std", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=4, b_std=float("nan"))),
    ("dtype", lambda: kernels.mlp(jax.random.key(0), D, depth=1, width=4, dtype=jnp.int32)),
    ("implementation", lambda: kernels.empirical_ntk(*net(1, None, "ntk", "relu"), X1,
                                                     implementation="jacobain")),
    ("implementation", lambda: kernels.empirical_ntk(*_nnx_fn(), X1,
                                                     implementation="structured")),
    ("batch_size", lambda: kernels.empirical_ntk(*net(1, None, "ntk", "relu"), X1,
                                                 batch_size=0)),
    ("x1", lambda: kernels.empirical_ntk(*net(1, None, "ntk", "relu"), X1.at[0, 0].set(np.nan))),
    ("x2", lambda: kernels.empirical_ntk(*net(1, None, "ntk", "relu"), X1,
                                         X2.at[1, 1].set(np.inf))),
    ("x1", lambda: kernels.empirical_ntk(*net(1, None, "ntk", "relu"), jnp.ones((3, D + 1)))),
    ("x2", lambda: kernels.empirical_ntk(*_nnx_fn(), X1, jnp.ones((3, D + 1)))),
    ("x2", lambda: kernels.empirical_nngp(*net(1, None, "ntk", "relu"), X1, jnp.ones((2, 1)))),
    ("apply_fn", lambda: kernels.conditional_nngp(*_nnx_fn(), X1)),
    ("n_samples", lambda: kernels.monte_carlo_kernels(jax.random.key(0), X1, n_samples=1,
                                                      depth=1, width=4)),
    ("chunk_size", lambda: kernels.monte_carlo_kernels(jax.random.key(0), X1, n_samples=4,
                                                       depth=1, width=4, chunk_size=0)),
    ("depth", lambda: kernels.monte_carlo_kernels(jax.random.key(0), X1, n_samples=4,
                                                  depth=1.0, width=4)),
]


@pytest.mark.parametrize("field,call", BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_inputs_name_the_field(field, call):
    with pytest.raises(ValueError, match=rf"\b{field}\b") as info:
        call()
    assert "\n" not in str(info.value)


def test_the_old_path_is_the_same_module_and_kernels_is_one_namedtuple():
    """rfsim.kernels aliases rfsim.empirical_kernels; Kernels and PARAMETERIZATIONS are the
    theory's and the network's (one object per name, issue 13 item 4)."""
    import rfsim.kernels as old
    from rfsim import networks, theory

    assert old is kernels and old.mlp is networks.mlp
    assert kernels.Kernels is theory.kernels.Kernels
    assert kernels.PARAMETERIZATIONS is networks.PARAMETERIZATIONS
