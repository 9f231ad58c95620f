"""Hostile inputs to the theory API (issue 12, items 3, 6, 9, 13): every input that passes
validation gives a finite, correct result; every other one a ValueError naming the field,
the value and what is allowed."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.theory import kernels as tk

X = np.random.default_rng(0).normal(size=(4, 5))


# --------------------------------------------------------------------------- kernels (3, 13)


def test_nngp_huge_w_std_is_refused_not_nan():
    with pytest.raises(ValueError, match=r"w_std must be <= 1\.34\d*e\+154.*got 1e\+200"):
        tk.nngp(X, depth=2, w_std=1e200)


def test_nngp_w_std_whose_square_underflows_is_refused():
    with pytest.raises(ValueError, match=r"w_std must be 0 or >= .*got 1e-200"):
        tk.nngp(X, depth=2, w_std=1e-200)


@pytest.mark.parametrize("field", ["w_std", "b_std"])
def test_nngp_non_scalar_scales_are_refused(field):
    with pytest.raises(ValueError, match=rf"{field} must be a single number >= 0, got \[1\. 2\.\]"):
        tk.nngp(X, depth=2, **{field: np.array([1, 2])})


def test_nngp_growth_over_depth_is_refused_with_the_allowed_depth():
    # relu, w_std = 10: the variance grows 50-fold per layer; the last finite layer is known
    with pytest.raises(ValueError, match=r"depth must be <= \d+ for relu .*got depth = 400"):
        tk.nngp(X, depth=400, w_std=10.0)
    # just below the bound the result is finite and equals the homogeneous closed form
    q = np.sum(X * X, -1) / X.shape[-1]
    depth = 150
    K = tk.nngp(X, depth=depth, w_std=10.0, diagonal=True)
    expected = q * 100.0 * 50.0**depth
    np.testing.assert_allclose(K, expected, rtol=1e-12)


NORM_OVERFLOW = r"x1 must have every \|\|x\|\|\^2 <= .*got \|\|x1\[\d\]\|\|\^2 = 1e4"


def test_inputs_whose_norm_overflows_are_refused():
    with pytest.raises(ValueError, match=NORM_OVERFLOW):
        tk.ntk(X * 1e200, depth=2)


def test_inputs_whose_norm_underflows_are_refused():
    with pytest.raises(ValueError, match=r"x1 must have \|\|x\|\|\^2/d = 0 or >= "):
        tk.nngp(X * 1e-170, depth=1)


def test_non_finite_output_of_a_quadrature_activation_is_never_returned():
    with pytest.raises(ValueError, match=r"the NNGP is not finite .* gelu"):
        tk.nngp(X, depth=3, activation="gelu", w_std=1e100)


def test_dot_product_growth_is_checked_too():
    with pytest.raises(ValueError, match=r"depth must be <= \d+ for relu"):
        tk.dot_product(np.linspace(-1, 1, 3), depth=1000, w_std=3.0)


# --------------------------------------------------------------------------- kernels (6)


def _jaxpr_lines(depth, activation="relu"):
    fn = lambda x: tk.kernels(x, depth=depth, activation=activation, b_std=0.1)  # noqa: E731
    return len(str(jax.make_jaxpr(fn)(jnp.asarray(X))).splitlines())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_recursion_does_not_unroll_depth(activation):
    """The compiled program is the same size at depth 2 and 200 (compile time and memory
    were quadratic in depth; depth 100 ran out of memory)."""
    assert _jaxpr_lines(2, activation) == _jaxpr_lines(200, activation)


def test_deep_kernels_match_the_homogeneous_closed_form_diagonal():
    """relu, b = 0: K^{l}(x, x) = q (w^2/2)^{l-1} w^2 and the NTK diagonal is
    (depth + 1) K on the diagonal at w^2 = 2 (K-11), at a depth that used to be refused
    by compile memory."""
    q = np.sum(X * X, -1) / X.shape[-1]
    out = tk.kernels(X, depth=300, w_std=math.sqrt(2.0))
    np.testing.assert_allclose(np.diag(out.nngp), 2.0 * q, rtol=1e-12)
    np.testing.assert_allclose(np.diag(out.ntk), 301 * 2.0 * q, rtol=1e-12)
    assert np.all(np.isfinite(out.nngp)) and np.all(np.isfinite(out.ntk))


# --------------------------------------------------------------------------- signal propagation (3)

from rfsim.theory import gaussian as tg  # noqa: E402
from rfsim.theory import signal_propagation as sp  # noqa: E402


@pytest.mark.parametrize("call, match", [
    (lambda: sp.iterate_maps(-1.0, 0.5, 3), r"q0 must be >= 0 \(a variance\), got -1"),
    (lambda: sp.iterate_maps(1.0, 2.0, 3), r"c0 must be in \[-1, 1\] \(a correlation\), got 2"),
    (lambda: sp.iterate_maps(0.0, 0.5, 3), r"q0 must be > 0 with w_std > 0 when b_std = 0"),
    (lambda: sp.iterate_maps(1.0, 0.5, 3, w_std=np.array([1.0, 2.0])),
     r"w_std must be a single number"),
    (lambda: sp.correlation_map(2.0, 1.0), r"c must be in \[-1, 1\] \(a correlation\), got 2"),
    (lambda: sp.correlation_map(0.5, 0.0), r"q must be > 0 with w_std > 0 when b_std = 0"),
    (lambda: sp.fixed_point_c(-1.0), r"q_star must be >= 0 \(a variance\), got -1"),
    (lambda: sp.length_map(-1.0), r"q must be >= 0 \(a variance\), got -1"),
    (lambda: sp.length_map(1.0, w_std=-1.0), r"w_std must be >= 0, got -1"),
    (lambda: sp.length_map(1.0, b_std=1e200), r"b_std must be <= 1\.34\d*e\+154"),
    (lambda: sp.length_slope(0.0), r"q must be > 0 \(a variance\), got 0"),
    (lambda: sp.chi_1(np.nan), r"q must be finite, got nan"),
    (lambda: sp.depth_scales(1.0, 1.5), r"c_star must be in \[-1, 1\]"),
    (lambda: sp.critical_line(-2.0), r"q_star must be > 0 \(a variance\), got -2"),
    (lambda: sp.analyze(w_std=-1.0), r"w_std must be >= 0, got -1"),
    (lambda: sp.fixed_point_q(q0=-1.0), r"q0 must be >= 0 \(a variance\), got -1"),
])
def test_signal_propagation_refuses_illegal_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_signal_propagation_underflowing_variance_is_an_error_not_nan():
    with pytest.raises(ValueError, match=r"iterate_maps' c is not finite .* w_std = 0\.5"):
        sp.iterate_maps(1.0, 0.5, 600, activation="tanh", w_std=0.5)  # q ~ 4^-l: 0 by l ~ 540


def test_relu_correlations_survive_an_underflowing_variance():
    """b = 0, relu: the correlation map is q-free (SP-2), so c^l stays exact after q^l
    underflows to 0 (it was 0/0 = NaN)."""
    q, c = sp.iterate_maps(1.0, 0.5, 1200, activation="relu", w_std=0.5)
    assert float(q[-1]) == 0.0 and np.all(np.isfinite(c))
    _, c_ref = sp.iterate_maps(1.0, 0.5, 1200, activation="relu", w_std=1.0)
    np.testing.assert_allclose(c, c_ref, rtol=1e-13)  # c^l does not depend on w for relu


@pytest.mark.parametrize("q", [1e160, 1e300])
def test_maps_are_correct_at_huge_variance(q):
    """sqrt(qx qy) and (1 + 2q)^2 overflowed: relu's length map gave inf, erf's 0."""
    assert float(sp.length_map(q, activation="relu")) == pytest.approx(q / 2, rel=1e-14)
    assert float(sp.length_map(q, activation="erf")) == pytest.approx(1.0, rel=1e-14)
    c = float(sp.correlation_map(0.5, q, activation="erf"))
    assert c == pytest.approx((2 / math.pi) * math.asin(0.5), rel=1e-14)
    # E erf' erf' on the diagonal is (4/pi)/sqrt(1 + 4q)
    d = float(tg.derivative_two_point("erf", q, q, q))
    assert d == pytest.approx(4 / math.pi / math.sqrt(1 + 4 * q), rel=1e-14)


def test_erf_two_point_matches_the_textbook_formula_at_moderate_variance():
    rng = np.random.default_rng(1)
    qx, qy = rng.uniform(0.1, 5.0, 50), rng.uniform(0.1, 5.0, 50)
    c = rng.uniform(-1, 1, 50) * np.sqrt(qx * qy)
    ref = 2 / np.pi * np.arcsin(2 * c / np.sqrt((1 + 2 * qx) * (1 + 2 * qy)))
    np.testing.assert_allclose(tg.two_point("erf", qx, qy, c), ref, rtol=1e-13, atol=1e-15)
    ref_d = 4 / np.pi / np.sqrt((1 + 2 * qx) * (1 + 2 * qy) - 4 * c * c)
    np.testing.assert_allclose(tg.derivative_two_point("erf", qx, qy, c), ref_d, rtol=1e-12)


# --------------------------------------------------------------------------- sphere (9)

from rfsim.theory import sphere as ts  # noqa: E402


def test_multiplicities_beyond_float64_are_a_clear_error_up_front():
    """d = 1000, L = 400 raised OverflowError (int too large to convert to float) after a
    whole kernel-ridge simulation had run."""
    assert ts.max_degree(1000) == 307
    with pytest.raises(ValueError, match=r"L must be <= 307 for d = 1000, got 400"):
        ts.multiplicities(1000, 400)
    with pytest.raises(ValueError, match=r"L must be <= 307 for d = 1000, got 400"):
        ts.kernel_spectrum(ts.arccos_profile(1), 1000, 400)


def test_max_degree_is_exact_at_the_boundary():
    for d in (1000, 10000, 300):
        L = ts.max_degree(d)
        fmax = float(np.finfo(float).max)  # a Python float: exact int comparisons
        assert ts.multiplicity(d, L) <= fmax < ts.multiplicity(d, L + 1)
    assert ts.max_degree(3) == ts.max_degree(2) == 2**31 - 1


def test_multiplicities_at_the_limit_are_the_exact_integers_rounded():
    N = ts.multiplicities(1000, 307)
    assert np.all(np.isfinite(N))
    assert N[-1] == float(ts.multiplicity(1000, 307))
    np.testing.assert_allclose(np.log(N), ts.log_multiplicities(1000, 307), atol=1e-11)
    # log_multiplicities goes on where float64 cannot
    big = ts.log_multiplicities(1000, 400)
    assert np.all(np.isfinite(big)) and big[-1] / math.log(10) > 308


def test_trace_identity_holds_or_is_reported():
    """sum_l N(d, l) lambda_l + T1 = k(1) (S-7), within the reported bound."""
    spec = ts.kernel_spectrum(lambda t: np.exp(t), 20, 30)
    total = float(spec.multiplicities @ spec.eigenvalues) + spec.tail[0]
    assert abs(total - spec.trace) <= max(spec.trace_error, 1e-14)
    # a "kernel" whose eigenvalues overcount its trace (k(1) deliberately wrong) is refused
    kfun = lambda t: np.where(t >= 1.0, 0.5, np.exp(t))  # noqa: E731
    with pytest.raises(ValueError, match=r"sum N\(d, l\) lambda_l <= kfun\(1\)"):
        ts.kernel_spectrum(kfun, 20, 30)


# --------------------------------------------------------------------------- infinite width (13)

from rfsim.theory import infinite_width as iw  # noqa: E402


def _blocks_for_flow():
    x = np.random.default_rng(2).normal(size=(7, 3))
    T = tk.kernels(x, depth=1)
    return T.ntk[:5, :5], T.ntk[5:, :5], T.nngp[:5, :5], T.nngp[5:, :5], T.nngp[5:, 5:]


@pytest.mark.parametrize("missing", ["nngp_dd", "nngp_td", "nngp_tt"])
def test_ntk_flow_refuses_a_partial_set_of_nngp_blocks(missing):
    t_dd, t_td, k_dd, k_td, k_tt = _blocks_for_flow()
    blocks = dict(nngp_dd=k_dd, nngp_td=k_td, nngp_tt=k_tt)
    blocks[missing] = None
    with pytest.raises(ValueError, match=rf"must be given together .* without {missing}"):
        iw.ntk_flow(t_dd, t_td, np.ones(5), 1.0, **blocks)


@pytest.mark.parametrize("field", ["ntk_dd", "ntk_td", "y", "nngp_tt"])
def test_ntk_flow_refuses_complex_blocks(field):
    t_dd, t_td, k_dd, k_td, k_tt = _blocks_for_flow()
    args = dict(ntk_dd=t_dd, ntk_td=t_td, y=np.ones(5), nngp_dd=k_dd, nngp_td=k_td,
                nngp_tt=k_tt)
    args[field] = np.asarray(args[field]) + 1e-3j
    with pytest.raises(ValueError, match=rf"{field} must be real"):
        iw.ntk_flow(args.pop("ntk_dd"), args.pop("ntk_td"), args.pop("y"), 1.0, **args)


def test_nngp_posterior_refuses_complex_blocks():
    _, _, k_dd, k_td, k_tt = _blocks_for_flow()
    with pytest.raises(ValueError, match=r"dd must be real"):
        iw.nngp_posterior(np.asarray(k_dd) + 1e-3j, k_td, np.ones(5), k_tt, noise=0.1)


# --------------------------------------------------------------------------- empirical (3)

from rfsim import kernels as ek  # noqa: E402


@pytest.fixture(scope="module")
def small_mlp():
    return ek.mlp(jax.random.PRNGKey(0), 5, depth=2, width=16)


def test_empirical_ntk_of_huge_inputs_is_refused_not_nan(small_mlp):
    f, p = small_mlp
    with pytest.raises(ValueError, match=NORM_OVERFLOW):
        ek.empirical_ntk(f, p, X * 1e200)
    with pytest.raises(ValueError, match=r"x2 must have every"):
        ek.empirical_ntk(f, p, X, X * 1e200)
    K = ek.empirical_ntk(f, p, X * 1e150)  # large but representable: finite, homogeneous
    np.testing.assert_allclose(K, 1e300 * ek.empirical_ntk(f, p, X), rtol=1e-12)


def test_empirical_kernels_non_finite_results_are_errors():
    f, p = ek.mlp(jax.random.PRNGKey(0), 5, depth=3, width=8, w_std=1e100)  # output ~1e400
    with pytest.raises(ValueError, match=r"the empirical NTK is not finite"):
        ek.empirical_ntk(f, p, X)
    with pytest.raises(ValueError, match=r"the empirical NNGP is not finite"):
        ek.empirical_nngp(f, p, X)


def test_mlp_refuses_a_w_std_whose_square_overflows():
    with pytest.raises(ValueError, match=r"w_std must be 0 or in \[.*\].*got 1e\+200"):
        ek.mlp(jax.random.PRNGKey(0), 5, depth=1, width=4, w_std=1e200)
