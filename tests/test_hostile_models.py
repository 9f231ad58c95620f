"""Hostile but "valid" input to the model families (issue 12): every case gives a correct
result, non-finite metrics (exit 3), or one line on stderr with exit 2 naming the field, the
value and what is allowed, before anything is computed or written.  Never a traceback, an
abort, or a finite wrong number."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.cli import main
from rfsim.engine.keys import SeedKeys
from rfsim.models import signal_propagation as sp

# --------------------------------------------------------------------------- refusals (CLI)

FAMILIES = {
    "kernel-ridge": 'model = "kernel-ridge"\nseeds = 2\n[params]\nn = 8\nd = 5\nn_test = 8\n',
    "mlp-kernel": 'model = "mlp-kernel"\nseeds = 2\n[params]\nwidth = 8\n',
    "wide-training": ('model = "wide-training"\nseeds = 2\n[params]\nwidth = 8\nsteps = 4\n'
                      'n_times = 2\n'),
    "structured-weights": 'model = "structured-weights"\nseeds = 2\n[params]\nwidth = 8\n',
    "signal-propagation": 'model = "signal-propagation"\nseeds = 2\n[params]\nwidth = 8\n',
    "rf-ridge": 'model = "rf-ridge"\nseeds = 2\n[params]\nd = 10\nN = 20\nn = 15\n',
}


def _with(family: str, extra: str) -> str:
    """The family's base experiment with ``extra``'s keys replacing its own."""
    keys = {line.split("=")[0].strip() for line in extra.splitlines() if "=" in line}
    base = [line for line in FAMILIES[family].splitlines()
            if "=" not in line or line.split("=")[0].strip() not in keys]
    return "\n".join(base) + "\n" + extra


def _refused(tmp_path, capsys, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--quiet", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("family,extra,message", [
    # (8) tracebacks from validation
    ("kernel-ridge", "degrees = 2\n", "degrees must be a list of integers >= 0, got 2"),
    ("kernel-ridge", "powers = [[0.5, 0.5]]\n",
     "powers[0] must be a real number >= 0, got [0.5, 0.5]"),
    ("wide-training", "w_std = 1e-300\n", "w_std must be in [1.49e-154, 1.34e+154]"),
    # (13) a string is not iterated by character
    ("kernel-ridge", 'degrees = "x"\n', "degrees must be a list of integers >= 0, got 'x'"),
    # (9) values that used to pass validation and crash later
    ("kernel-ridge", 'kernel = "gaussian"\nbandwidth = 1e300\n', "bandwidth must be in ["),
    ("kernel-ridge", 'kernel = "gaussian"\nbandwidth = 1e-300\n', "bandwidth must be in ["),
    ("mlp-kernel", "w_std = 1e300\n", "w_std must be in [1.49e-154, 1.34e+154]"),
    ("mlp-kernel", "b_std = 1e300\n", "b_std must be 0 or in [1.49e-154, 1.34e+154]"),
    ("mlp-kernel", "w_std = 1e100\ndepth = 2\n",
     "w_std must keep the network's NNGP diagonal k(x, x) in ["),
    ("kernel-ridge", "d = 1000\nmax_degree = 400\n", "max_degree must be <= 307 for d = 1000"),
    # (12) late errors named the wrong field
    ("kernel-ridge", "w_std = 1e300\n", "w_std must be in [1.49e-154, 1.34e+154]"),
    ("kernel-ridge", "w_std = 1e-300\n", "w_std must be in [1.49e-154, 1.34e+154]"),
    ("kernel-ridge", "w_std = 10.0\ndepth = 100\n",
     "w_std must keep the kernel's NTK diagonal k(x, x) in ["),
    ("wide-training", "w_std = 1e300\n", "w_std must be in [1.49e-154, 1.34e+154]"),
    ("kernel-ridge", "d = 10000000\n", "d must be <= 1,000,000"),
    # depth caps: depth 100 took 387 s (mlp-kernel) and 843 s, 6 GB (structured-weights)
    ("mlp-kernel", "depth = 100\n", "depth must be <= 32 (the network is unrolled"),
    ("structured-weights", "depth = 100\n", "depth must be <= 32 (the network is unrolled"),
    # the other families: rf-ridge's prediction refused ridge = 1e300 only in predict,
    # after the simulation ran (RF-15): now before compute, naming ridge
    ("rf-ridge", "ridge = 1e300\n", "ridge must be <= 9.02e+136 for activation 'relu'"),
    # (16) a field the chosen variant ignores
    ("kernel-ridge", "bandwidth = 2.0\n",
     "bandwidth is used only with kernel = 'gaussian'; got bandwidth = 2.0 with kernel = "
     "'ntk': remove it"),
    ("kernel-ridge", 'kernel = "gaussian"\ndepth = 3\n',
     "depth is used only with kernel = 'ntk' or 'nngp'; got depth = 3"),
    ("kernel-ridge", 'kernel = "gaussian"\nactivation = "tanh"\n',
     "activation is used only with kernel = 'ntk' or 'nngp'"),
    ("structured-weights", "density = 0.3\n",
     "density is used only with kind = 'sparse'; got density = 0.3 with kind = 'iid'"),
    ("structured-weights", 'kind = "sparse"\nrank_fraction = 0.5\n',
     "rank_fraction is used only with kind = 'low_rank'"),
])
def test_hostile_values_are_refused_in_one_line_naming_the_field(tmp_path, capsys, family,
                                                                 extra, message):
    err = _refused(tmp_path, capsys, _with(family, extra))
    assert message in err, err


def test_kernel_ridge_spectrum_that_float64_cannot_resolve_is_refused_before_compute(
        tmp_path, capsys):
    """d = 10^5 with an explicit max_degree 20 (the default, 'auto', stops below it): the
    Funk-Hecke spectrum fails at degree 3; it used to fail in predict, after the whole
    simulation ran, naming no field."""
    err = _refused(tmp_path, capsys, _with("kernel-ridge", "d = 100000\nmax_degree = 20\n"))
    assert "max_degree must be small enough for float64 to resolve" in err, err


def test_shipped_variants_and_defaults_stay_valid():
    from rfsim.models.kernel_ridge import KernelRidgeConfig
    from rfsim.models.structured_weights import StructuredWeightsConfig

    KernelRidgeConfig(n=4, d=3, kernel="gaussian", bandwidth=0.5, degrees=[1], powers=[1.0])
    cfg = KernelRidgeConfig(n=4, d=3, degrees=[1, 2], powers=[0.6, 0.4], depth=3)
    assert cfg.degrees == (1, 2) and cfg.powers == (0.6, 0.4)  # hashable statics
    for kind in ("iid", "orthogonal", "low_rank", "sparse"):
        StructuredWeightsConfig(width=8, kind=kind, rank_fraction=0.25, density=0.5)


# --------------------------------------------------------------------------- (1) overflow


def _pair(scale, c):
    """Two rows with exactly known correlation c: scale * (u, c u + sqrt(1 - c^2) v)."""
    u = np.zeros(64)
    v = np.zeros(64)
    u[:32] = 1.0
    v[32:] = 1.0
    return jnp.asarray(scale * np.stack([u, c * u + math.sqrt(1 - c * c) * v]))


@pytest.mark.parametrize("scale", [1.0, 1e100, 1e160])
def test_signal_propagation_correlation_survives_overflowing_norms(scale):
    """sqrt(|a|^2 |b|^2) overflowed at |h| ~ 1e77 per entry: c read 0.0 (issue 12 (1))."""
    q, c = jax.jit(sp._stats)(_pair(scale, 0.5))
    assert float(c) == pytest.approx(0.5, rel=1e-12)
    expected = 0.5 * scale * scale  # |a|^2/n = |b|^2/n = scale^2 / 2
    if math.isfinite(expected):
        assert float(q) == pytest.approx(expected, rel=1e-12)
    else:
        assert not math.isfinite(float(q))  # q itself overflows: non-finite, reported


def test_signal_propagation_overflowed_row_is_non_finite_not_zero():
    h = jnp.asarray(np.stack([np.full(8, np.inf), np.ones(8)]))
    q, c = sp._stats(h)
    assert not np.isfinite(float(q)) and not np.isfinite(float(c))


def test_signal_propagation_deep_relu_never_reports_a_finite_wrong_correlation():
    """relu w_std = 2, depth 1000, width 16: q ~ 2^l stays finite, and c used to be 0 from
    layer 711 on; with w_std = 3, q itself overflows around layer 530: q is non-finite from
    there (exit 3), and c, exact while the entries of h are finite, is never 0."""
    run = jax.jit(sp.simulate, static_argnums=1)
    cfg = sp.SignalPropagationConfig(activation="relu", w_std=2.0, b_std=0.0, depth=1000,
                                     width=16, n_pairs=2)
    out = run(SeedKeys(jax.random.key(0), jax.random.key(1)), cfg)
    q, c = np.asarray(out["q"]), np.asarray(out["c"])
    assert np.isfinite(q).all() and np.isfinite(c).all()
    assert c[0] < 0.9 and (c[-100:] > 0.99).all()  # relu: c -> 1 (was 0 from layer 711)
    cfg3 = sp.SignalPropagationConfig(activation="relu", w_std=3.0, b_std=0.0, depth=1000,
                                      width=16, n_pairs=2)
    out = run(SeedKeys(jax.random.key(0), jax.random.key(1)), cfg3)
    q, c = np.asarray(out["q"]), np.asarray(out["c"])
    assert not np.isfinite(q[-1])
    wrong = np.isfinite(c) & ((np.abs(c) > 1 + 1e-12) | (c == 0))
    assert not wrong.any()  # c stays exact while the entries of h are finite


def test_signal_propagation_q0_near_the_float_maximum_builds_finite_inputs():
    """sqrt(q0 d) overflowed for q0 d > 1.8e308; sqrt(q0) sqrt(d) does not."""
    cfg = sp.SignalPropagationConfig(q0=1e308, d=16, width=8, depth=1, n_pairs=2)
    x = sp._pairs(jax.random.key(0), cfg, jnp.float64)
    assert np.isfinite(np.asarray(x)).all()
    norms = np.linalg.norm(np.asarray(x) / 1e154, axis=1) ** 2 / 16 * 1e308
    np.testing.assert_allclose(norms, 1e308, rtol=1e-10)


# --------------------------------------------------------------------------- relative errors


def test_relative_errors_do_not_overflow_for_large_kernels():
    from rfsim.models._scales import relative_frobenius as _relative

    b = jnp.full((4, 4), 1e200)
    assert float(_relative(1.01 * b, b)) == pytest.approx(0.01, rel=1e-10)


def test_signal_propagation_correlation_when_the_norm_overflows_but_entries_do_not():
    """float32 rows of 16 entries near 1e38: every entry finite, |a| > 3.4e38.  c used to be
    h / inf = 0 exactly (layers 316-318 of relu w_std 2 depth 1000 in float32)."""
    from rfsim.models.signal_propagation import _stats

    rng = np.random.default_rng(0)
    h64 = rng.uniform(0.5, 1.0, (2, 16)) * 2e38  # |a| ~ 6e38
    _, c32 = _stats(jnp.asarray(h64, jnp.float32))
    a, b = h64
    expected = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert np.isfinite(float(c32)) and abs(float(c32) - expected) < 1e-6
    _, c_zero = _stats(jnp.zeros((2, 16), jnp.float32))
    assert np.isnan(float(c_zero))  # a dead layer is reported, not read as c = 0
