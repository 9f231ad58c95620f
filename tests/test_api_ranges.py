"""Python API at the edges of the float range (issue 6, item 6).

Every closed form either computes the right number or refuses the input with a ValueError
that names the field, the value and what is allowed -- never a finite wrong number, never
a ComplexWarning.  References are independent of the code under test: Decimal arithmetic
at 50-1500 digits, or numpy/scipy float64 on a problem rescaled by hand (the risks are
homogeneous: scaling spectrum and ridge by c scales kappa by c, theory/ridge.md (R-8)).

conftest.py turns float64 on; float32 cases run under ``jax.enable_x64(False)``.
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, localcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from rfsim import features
from rfsim.engine.experiment import make_config
from rfsim.models import get_model
from rfsim.theory.deep_rf import deep_rf_population, deep_rf_risk, layer_statistics
from rfsim.theory.mei_montanari import mei_montanari, psi_range
from rfsim.theory.rf_eigen import rf_eigen_risk
from rfsim.theory.ridge import ridge_risk
from rfsim.validation import as_real_array, require_exact, require_in_range

F32 = {"tiny": float(np.finfo(np.float32).tiny), "tol": 2e-5}
F64 = {"tiny": float(np.finfo(np.float64).tiny), "tol": 1e-12}


@pytest.fixture
def float32():
    """JAX's default float is float32 inside the test (x64 off), restored afterwards."""
    with jax.enable_x64(False):
        assert jnp.result_type(float) == jnp.float32
        yield


def close(got, want, spec):
    """Relative agreement to the dtype's tolerance; a true value below the dtype's smallest
    normal number must come back as 0 or below it (correct rounding of an underflow)."""
    got, want = float(got), float(want)
    if math.isinf(want):
        return got == want
    if abs(want) < spec["tiny"]:
        return abs(got) < spec["tiny"]
    return abs(got - want) <= spec["tol"] * abs(want)


# --------------------------------------------------------------------------- references


def _dec(x) -> Decimal:
    return Decimal(repr(float(x)))


def ridge_reference(s, beta, n, ridge, noise, digits=60):
    """(kappa, bias, variance) of (R-1), (R-4), (R-5) in Decimal: bisection in log kappa."""
    with localcontext() as ctx:
        ctx.prec = digits
        s = [_dec(x) for x in s]
        beta = [_dec(x) for x in beta]
        n, lam, noise = _dec(n), _dec(ridge), _dec(noise)
        pos = [i for i, x in enumerate(s) if x > 0]
        rank = len(pos)
        if lam == 0 and n >= rank:
            kappa = Decimal(0)
        else:
            lo = max(lam, (rank - n) / sum(1 / s[i] for i in pos))
            hi = lam + sum(s) / n
            for _ in range(2000):
                mid = (lo * hi).sqrt()
                if lam / mid - (n - sum(s[i] / (s[i] + mid) for i in pos)) / n > 0:
                    lo = mid
                else:
                    hi = mid
                if hi - lo <= hi * Decimal(10) ** -30:  # far below float64's eps
                    break
            kappa = (lo * hi).sqrt()
        df2 = sum((s[i] / (s[i] + kappa)) ** 2 for i in pos)
        gap = 1 - df2 / n
        left = sum(s[i] * beta[i] ** 2 * (kappa / (s[i] + kappa)) ** 2 for i in pos)
        return float(kappa), float(left / gap), float(noise * df2 / n / gap)


def rf_eigen_reference(lam, v, n, N, ridge, noise, digits=60):
    """(gamma, bias, variance) of (RFE-3), (RFE-6)-(RFE-8) in Decimal."""
    with localcontext() as ctx:
        ctx.prec = digits
        lam = [_dec(x) for x in lam]
        v = [_dec(x) for x in v]
        n, N, ridge, noise = _dec(n), _dec(N), _dec(ridge), _dec(noise)
        pos = [i for i, x in enumerate(lam) if x > 0]
        m = min(n, N)

        def a_of(g):
            return sum(lam[i] / (lam[i] + g) for i in pos)

        if ridge == 0 and m >= len(pos):
            g = Decimal(0)
        else:
            lo = max(ridge, (len(pos) - m) / sum(1 / lam[i] for i in pos))
            hi = ridge + sum(lam) * (1 / n + 1 / N)
            for _ in range(2000):
                mid = (lo * hi).sqrt()
                a = a_of(mid)
                if a < m and mid * (1 - a / n) * (1 - a / N) > ridge:
                    hi = mid
                else:
                    lo = mid
                if hi - lo <= hi * Decimal(10) ** -30:  # far below float64's eps
                    break
            g = (lo * hi).sqrt()
        q = {i: lam[i] / (lam[i] + g) for i in pos}
        r = [g / (lam[i] + g) if i in q else Decimal(1) for i in range(len(lam))]
        a, b = sum(q.values()), sum(x * x for x in q.values())
        theta = (a - b) / (N - b) if g > 0 else Decimal(0)
        d2 = a - (N - a) * theta
        left = sum(v[i] ** 2 * r[i] ** 2 for i in range(len(lam)))
        left += theta * sum(v[i] ** 2 * r[i] * q[i] for i in pos)
        gap = (1 - a / n) + (N - a) * theta / n
        return float(g), float(left / gap), float(noise * d2 / n / gap)


def mm_reference(p1, p2, ridge, digits=600):
    """relu Mei-Montanari (bias, variance, chi) in Decimal: chi from P(w) = 0 (RF-6) by
    bisection, or the ridgeless closed form (RF-12); E0..E2 as printed in the paper (RF-9)."""
    with localcontext() as ctx:
        ctx.prec = digits
        p1, p2, lam = _dec(p1), _dec(p2), _dec(ridge)
        pi = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
        mus2 = Decimal(1) / 4 - 1 / (2 * pi)
        z2 = (Decimal(1) / 4) / mus2
        lb = lam / mus2

        def q(psi, w):
            return psi + (psi * z2 - 1 - z2) * w - z2 * w * w

        psi = min(p1, p2)
        b = psi * z2 - z2 - 1
        w = (b + (b * b + 4 * z2 * psi).sqrt()) / (2 * z2)
        if lb > 0:
            c = 1 + z2
            beta = c * (p1 + p2) + p1 * p2 * lb
            lo = 2 * p1 * p2 / (beta + max(beta * beta - 4 * c * c * p1 * p2, 0).sqrt())
            hi = min(w, 1 / lb)
            lo = min(lo, hi)
            for _ in range(3000):
                mid = (lo * hi).sqrt()
                t = 1 + z2 * mid
                if q(p1, mid) * q(p2, mid) - p1 * p2 * lb * mid * t * t > 0:
                    lo = mid
                else:
                    hi = mid
                if hi - lo <= hi * Decimal(10) ** -30:
                    break
            w = (lo * hi).sqrt()
        x, z = -w, z2.sqrt()
        e0 = (-(x**5) * z**6 + 3 * x**4 * z**4 + (p1 * p2 - p2 - p1 + 1) * x**3 * z**6
              - 2 * x**3 * z**4 - 3 * x**3 * z**2 + (p1 + p2 - 3 * p1 * p2 + 1) * x**2 * z**4
              + 2 * x**2 * z**2 + x**2 + 3 * p1 * p2 * x * z**2 - p1 * p2)
        e1 = p2 * x**3 * z**4 - p2 * x**2 * z**2 + p1 * p2 * x * z**2 - p1 * p2
        e2 = (x**5 * z**6 - 3 * x**4 * z**4 + (p1 - 1) * x**3 * z**6 + 2 * x**3 * z**4
              + 3 * x**3 * z**2 + (-p1 - 1) * x**2 * z**4 - 2 * x**2 * z**2 - x**2)
        return float(e1 / e0), float(e2 / e0), float(x)


def deep_relu_reference(Ws, beta, n, ridge, noise, target="linear", theta=None):
    """Independent numpy/scipy float64 deep relu risk, linearized and centred (DRF-4, -6,
    -8, -9, -11): Omega_l = C/4 + (1/4 - 1/(2 pi)) diag(C), A_l = W A/(2 sqrt(k)); kappa by
    brentq on (R-1).  Returns (excess_risk, bias, variance)."""
    d = Ws[0].shape[1]
    cov, lin = np.eye(d), np.eye(d)
    for W in Ws:
        k = W.shape[1]
        C = W @ cov @ W.T / k
        cov = C / 4 + np.diag(np.diag(C)) * (0.25 - 1 / (2 * np.pi))
        lin = W @ lin / (2 * math.sqrt(k))
    kL = cov.shape[0]
    s, V = np.linalg.eigh(cov / kL)
    s = np.where(s > s.max() * kL * np.finfo(float).eps, s, 0.0)
    pos = s > 0
    if target == "shared":
        coeffs, residual = V.T @ theta, 0.0
    else:
        proj = V.T @ (lin @ beta) / math.sqrt(d * kL)
        coeffs = np.where(pos, proj / np.where(pos, s, 1.0), 0.0)
        residual = max(beta @ beta / d - np.sum(proj[pos] * coeffs[pos]), 0.0)
    sp, bp = s[pos], coeffs[pos]
    if ridge == 0 and n >= pos.sum():
        kappa = 0.0
    else:
        f = lambda k: np.sum(sp / (sp + k)) - n * (1 - ridge / k)  # noqa: E731
        lo = ridge if ridge else (pos.sum() - n) / np.sum(1 / sp)
        kappa = brentq(f, lo, ridge + sp.sum() / n, xtol=1e-300, rtol=1e-15, maxiter=500)
    df2 = np.sum((sp / (sp + kappa)) ** 2)
    bias = kappa**2 * np.sum(sp * bp**2 / (sp + kappa) ** 2) / (1 - df2 / n) + residual
    variance = (noise + residual) * df2 / (n - df2)
    return bias + variance, bias, variance


def powerlaw(p=12):
    i = np.arange(1.0, p + 1)
    return i**-1.5, i**-0.5


# --------------------------------------------------------------------------- complex input


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: ridge_risk(np.ones(3) + 0j, np.ones(3), n=2, ridge=0.1), "eigenvalues"),
        (lambda: ridge_risk(np.ones(3), np.ones(3) * 1j, n=2, ridge=0.1), "target_coeffs"),
        (lambda: ridge_risk(np.ones(3), np.ones(3), n=2, ridge=0.1 + 0j), "ridge"),
        (lambda: ridge_risk(np.ones(3), np.ones(3), n=2 + 0j, ridge=0.1), "n"),
        (lambda: ridge_risk(np.ones(3), np.ones(3), n=2, ridge=0.1, noise=[0.1j]), "noise"),
        (lambda: rf_eigen_risk(np.ones(3), np.ones(3), n=2, n_features=4, ridge=1j), "ridge"),
        (lambda: rf_eigen_risk(np.ones(3), np.ones(3), n=2, n_features=4 + 0j, ridge=0.1),
         "n_features"),
        (lambda: mei_montanari(1.5 + 0j, 0.8, 0.1), "psi1"),
        (lambda: mei_montanari(1.5, 0.8, 0.1, noise=np.complex64(0.1)), "noise"),
        (lambda: deep_rf_risk([np.ones((4, 3)) + 0j], activation="relu", n=5, ridge=0.1,
                              theta=np.ones(4)), r"weights\[0\]"),
        (lambda: deep_rf_risk([np.ones((4, 3))], activation="relu", n=5, ridge=0.1,
                              theta=np.ones(4) * 1j), "theta"),
        (lambda: make_config(get_model("linear-ridge"), {"n": 10, "d": 20, "ridge": 0.1j}),
         "ridge"),
        (lambda: features.gaussian_kernel(np.ones((2, 3)), np.ones((2, 3)), 1j), "bandwidth"),
    ],
)
def test_complex_input_is_refused_by_name_without_a_warning(call, field):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning (imaginary part dropped) would fail
        with pytest.raises(ValueError, match=rf"^{field} must be real"):
            call()


# --------------------------------------------------------------------------- validators


def test_validators_name_field_value_range_and_the_way_to_widen_it(float32):
    with pytest.raises(ValueError) as err:
        require_in_range("ridge", 1e300)
    msg = str(err.value)
    assert msg.startswith("ridge = 1e+300 is outside the float32 range")
    assert "[1.18e-38, 3.4e+38]" in msg and "overflow" in msg and "jax_enable_x64" in msg
    with pytest.raises(ValueError, match=r"^x\[1\] = 1e-40 .* flushes subnormals to zero"):
        require_in_range("x", [1.0, 1e-40])
    with pytest.raises(ValueError, match=r"^n = 16777217 is not exactly representable in "
                                         r"float32 \(integers up to 16777216 are\)"):
        require_exact("n", 2**24 + 1)
    require_exact("n", 2**24)
    require_in_range("ridge", 3.4e38)  # largest float32 values pass
    require_in_range("ridge", [0.0, 1.2e-38, -3e38])
    with pytest.raises(ValueError, match=r"^ridge must be a real number of magnitude at most "
                                         r"1.798e\+308, got an integer of 401 digits"):
        as_real_array("ridge", 10**400)


def test_float64_refuses_only_subnormals_and_overflow():
    require_in_range("ridge", [1e300, 1e-300, 0.0])
    with pytest.raises(ValueError, match=r"ridge = 1e-310 is outside the float64 range") as err:
        require_in_range("ridge", 1e-310)
    assert "jax_enable_x64" not in str(err.value)  # nothing wider to suggest


def test_float32_arrays_under_x64_point_to_float64_arrays():
    s = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"ridge = 1e\+300 .* float32 .* pass float64 arrays"):
        ridge_risk(s, s, n=2, ridge=1e300)


# --------------------------------------------------------------------------- ridge_risk


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ridge": 1e300}, r"^ridge = 1e\+300 is outside the float32 range"),
        ({"ridge": 1e-40}, r"^ridge = 1e-40 is outside the float32 range.*subnormal"),
        ({"noise": 1e39}, r"^noise = 1e\+39 is outside the float32 range"),
        ({"n": 1e39}, r"^n = 1e\+39 is outside the float32 range"),
        ({"n": 2**24 + 1}, r"^n = 16777217 is not exactly representable in float32"),
        ({"s_scale": 1e39}, r"^eigenvalues\[0\] = 1e\+39 is outside the float32 range"),
        ({"s_scale": 1e-39}, r"^eigenvalues\[0\] = 1e-39 is outside the float32 range"),
        ({"b_scale": 1e20}, r"^target_coeffs: the target's power is about 1e40, beyond the "
                            r"largest float32"),
        ({"spread": 1e-30}, r"^eigenvalues\[1\] = 1e-30 .* within a factor 8.51e\+37 of the "
                            r"largest, 1e\+10"),
    ],
)
def test_ridge_risk_float32_refuses_what_float32_cannot_hold(float32, kwargs, message):
    s, beta = np.array([1.0, 0.5, 0.25]), np.array([1.0, 1.0, 1.0])
    s = s * kwargs.pop("s_scale", 1.0)
    beta = beta * kwargs.pop("b_scale", 1.0)
    if "spread" in kwargs:
        s = np.array([1e10, kwargs.pop("spread")])  # both normal, 1e40 apart
        beta = beta[:2]
    args = {"n": 2, "ridge": 1e-2, "noise": 0.1} | kwargs
    with pytest.raises(ValueError, match=message) as err:
        ridge_risk(s, beta, **args)
    assert "jax_enable_x64" in str(err.value)


# (spectrum scale, coefficient scale, ridge, noise, n): all representable in float32; each
# used to come back 0, inf or NaN in one of kappa, bias, variance.
EXTREMES_32 = [
    (1e30, 1.0, 1e28, 0.1, 6),  # s, ridge ~1e30: fine before, kept as a control
    (1e-30, 1.0, 1e-32, 0.1, 6),
    (1e-36, 1e18, 2e-38, 0.1, 6),  # was kappa 0, bias 0, variance inf
    (1.0, 1e-18, 1e-2, 0.1, 6),  # bias 5.9e-38: was flushed to 0
    (1e36, 1e-18, 1e34, 0.1, 6),
    (1.0, 1.0, 1e37, 0.1, 6),  # huge ridge: null predictor
    (1.0, 1.0, 1e-2, 3e37, 6),  # huge noise
    (1.0, 1.0, 1e-30, 0.1, 12),  # n == rank with a tiny ridge: variance 4e14, was inf at 1e-40
]


@pytest.mark.parametrize("s_scale, b_scale, ridge, noise, n", EXTREMES_32)
def test_ridge_risk_float32_extremes_match_decimal(float32, s_scale, b_scale, ridge, noise, n):
    s, beta = powerlaw()
    s, beta = s * s_scale, beta * b_scale
    r = ridge_risk(s, beta, n=n, ridge=ridge, noise=noise)
    s32, b32 = np.float32(s), np.float32(beta)  # the reference sees the float32 inputs
    want = ridge_reference(s32, b32, n, np.float32(ridge), np.float32(noise))
    for got, ref in zip((r.kappa, r.bias, r.variance), want):
        assert close(got, ref, F32), (float(got), ref)


EXTREMES_64 = [
    (1e300, 1.0, 1e298, 0.1, 6),
    (1e-300, 1.0, 1e-302, 0.1, 6),
    (1.0, 1e150, 1e-2, 0.1, 6),
    (1.0, 1e-150, 1e-2, 0.1, 6),
    (1e300, 1e-150, 1e298, 0.1, 6),
    (1.0, 1.0, 1e308, 0.1, 6),
    (1.0, 1.0, 1e-2, 1e308, 6),
    (1.0, 1.0, 1e-2, 0.1, 1e300),
    (1.0, 1.0, 1e-300, 0.1, 12),
]


@pytest.mark.parametrize("s_scale, b_scale, ridge, noise, n", EXTREMES_64)
def test_ridge_risk_float64_extremes_match_decimal(s_scale, b_scale, ridge, noise, n):
    s, beta = powerlaw()
    s, beta = s * s_scale, beta * b_scale
    r = ridge_risk(s, beta, n=n, ridge=ridge, noise=noise)
    want = ridge_reference(s, beta, n, ridge, noise, digits=400)
    for got, ref in zip((r.kappa, r.bias, r.variance), want):
        assert close(got, ref, F64), (float(got), ref)


@pytest.mark.parametrize("gap", [1e34, 1e40, 1e80, 1e150])
def test_ridge_risk_spectral_gap_beyond_1e32(gap):
    """kappa sits between two clusters 1/sqrt(gap) apart from each; n - df1 used to drop the
    upper cluster's kappa/(s+kappa) < eps (gap 1e40: bias 4.7e16 instead of 5e19)."""
    s = np.array([1.0, 1.0 / gap])
    beta = np.array([1.0, math.sqrt(gap)])
    for n, ridge in [(1, 0.0), (1, 1e-3 / gap)]:
        r = ridge_risk(s, beta, n=n, ridge=ridge, noise=0.1)
        want = ridge_reference(s, beta, n, ridge, 0.1, digits=400)
        for got, ref in zip((r.kappa, r.bias, r.variance), want):
            assert close(got, ref, F64), (gap, ridge, float(got), ref)
    assert float(ridge_risk(s, beta, n=1, ridge=0.0).bias) == pytest.approx(
        0.5 * math.sqrt(gap), rel=1e-12)  # closed form: kappa = gap^-1/2, bias = gap^1/2 / 2


def test_ridge_risk_refuses_an_unresolvable_ridge_only_at_the_threshold(float32):
    s = np.array([1e20, 1e20, 1.0, 1.0])
    beta = np.ones(4)
    # beside 1e20 a ridge of 1e-30 is 0 in float32; away from n == rank that is exact ...
    r = ridge_risk(s, beta, n=2, ridge=1e-30, noise=0.1)
    want = ridge_reference(s, beta, 2, 1e-30, 0.1)
    assert all(close(g, w, F32) for g, w in zip((r.kappa, r.bias, r.variance), want))
    # ... at n == rank the risk is finite for ridge > 0 and inf at 0: refused
    with pytest.raises(ValueError, match=r"^ridge = 1e-30 is outside the float32 range.*"
                                         r"interpolation threshold"):
        ridge_risk(s, beta, n=4, ridge=1e-30, noise=0.1)


def test_ridge_risk_derivatives_survive_extreme_scales(float32):
    """Under grad the inputs are tracers (validation is skipped) and the derivatives pass
    through the power-of-two rescaling: at spectrum 1e-30 the factor 2^e must stay a normal
    number (it once underflowed and d kappa / d ridge came back 0)."""
    s, beta = powerlaw()

    def kappa(lam, scale):
        return ridge_risk(s * scale, beta, n=6, ridge=lam).kappa

    g_small = float(jax.grad(kappa)(jnp.float32(1e-32), 1e-30))
    g_one = float(jax.grad(kappa)(jnp.float32(1e-2), 1.0))
    assert g_small == pytest.approx(g_one, rel=1e-4)  # kappa(c s, c ridge) = c kappa(s, ridge)
    h = 1e-2  # and it is the slope: central difference of the eager function at 1e-30
    fd = (float(kappa(1e-32 * (1 + h), 1e-30)) - float(kappa(1e-32 * (1 - h), 1e-30))) / (2e-32 * h)
    assert g_small == pytest.approx(fd, rel=1e-3)


# --------------------------------------------------------------------------- rf_eigen_risk


@pytest.mark.parametrize("gap", [1e34, 1e80])
def test_rf_eigen_spectral_gap_beyond_1e32(gap):
    lam, v = np.array([1.0, 1.0 / gap]), np.array([1.0, 1.0])
    for n, N, ridge in [(1, 5, 0.0), (5, 1, 0.0), (1, 1.5, 1e-3 / gap)]:
        r = rf_eigen_risk(lam, v, n=n, n_features=N, ridge=ridge, noise=0.1)
        want = rf_eigen_reference(lam, v, n, N, ridge, 0.1, digits=400)
        for got, ref in zip((r.kappa, r.bias, r.variance), want):
            assert close(got, ref, F64), (n, N, float(got), ref)


@pytest.mark.parametrize("ridge", [1e3, 1e12, 1e100])
def test_rf_eigen_variance_at_a_huge_ridge(ridge):
    """d2 = a - (N - a) theta cancelled: 3e-4 relative error at ridge 1e12."""
    lam, v = powerlaw()
    r = rf_eigen_risk(lam, v, n=6, n_features=9, ridge=ridge, noise=0.1)
    want = rf_eigen_reference(lam, v, 6, 9, ridge, 0.1, digits=260)
    assert close(r.variance, want[2], F64) and close(r.bias, want[1], F64)


@pytest.mark.parametrize("s_scale, v_scale, ridge", [(1e-30, 1.0, 1e-32), (1e30, 1e-15, 1e28),
                                                     (1.0, 1e15, 1e-2), (1e-36, 1.0, 1e-37)])
def test_rf_eigen_float32_extremes_match_decimal(float32, s_scale, v_scale, ridge):
    lam, v = powerlaw()
    lam, v = lam * s_scale, v * v_scale
    r = rf_eigen_risk(lam, v, n=5, n_features=8, ridge=ridge, noise=0.1)
    want = rf_eigen_reference(np.float32(lam), np.float32(v), 5, 8, np.float32(ridge), 0.1)
    for got, ref in zip((r.kappa, r.bias, r.variance), want):
        assert close(got, ref, F32), (float(got), ref)


def test_rf_eigen_float32_refusals(float32):
    lam, v = powerlaw()
    with pytest.raises(ValueError, match=r"^n_features = 1e\+39 is outside the float32 range"):
        rf_eigen_risk(lam, v, n=5, n_features=1e39, ridge=0.1)
    with pytest.raises(ValueError, match=r"^target_coeffs: the target's power is about 1e40"):
        rf_eigen_risk(lam, v / np.linalg.norm(v) * 1e20, n=5, n_features=8, ridge=0.1)


# --------------------------------------------------------------------------- deep_rf


def _deep_case(widths, seed=0, d=6):
    rng = np.random.default_rng(seed)
    Ws, prev = [], d
    for k in widths:
        Ws.append(rng.normal(size=(k, prev)))
        prev = k
    return Ws, rng.normal(size=d), rng.normal(size=prev)


@pytest.mark.parametrize("scale", [1e80, 1e-80, 1e150, 1e-150])
def test_deep_rf_relu_at_extreme_weight_scales_matches_rescaled_reference(scale):
    """One relu layer: the spectrum scales by c^2, so the risk at weights c W and ridge
    lambda is the reference at W and lambda / c^2 (a moderate 1e-2 here).  It used to be the
    null-predictor risk at 1e+-80."""
    Ws, beta, theta = _deep_case([9])
    ridge = 1e-2 * scale**2
    for target in ("linear", "shared"):
        r = deep_rf_risk([W * scale for W in Ws], activation="relu", n=5, ridge=ridge,
                         noise=0.1, target=target, beta=beta, theta=theta)
        excess, bias, variance = deep_relu_reference(Ws, beta, 5, 1e-2, 0.1, target, theta)
        if target == "shared":  # the target scales with the features: bias by c^2
            bias, excess = bias * scale**2, bias * scale**2 + variance
        assert float(r.bias) == pytest.approx(bias, rel=1e-9)
        assert float(r.variance) == pytest.approx(variance, rel=1e-9)
        assert float(r.excess_risk) == pytest.approx(excess, rel=1e-9)


@pytest.mark.parametrize("scale", [1e80, 1e-80])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_deep_rf_two_layers_ridgeless_is_scale_free(scale, activation):
    """Two layers at 1e+-80: the covariance is 1e+-320 (beyond float64); ridgeless, the
    linear-target risk does not depend on the scale (was 0.89, the null predictor)."""
    Ws, beta, _ = _deep_case([9, 8])
    r = deep_rf_risk([W * scale for W in Ws], activation=activation, n=5, ridge=0.0,
                     noise=0.1, target="linear", beta=beta)
    if activation == "relu":
        want = deep_relu_reference(Ws, beta, 5, 0.0, 0.1)[0]
    else:
        want = float(deep_rf_risk(Ws, activation="linear", n=5, ridge=0.0, noise=0.1,
                                  target="linear", beta=beta).excess_risk)
    assert float(r.excess_risk) == pytest.approx(want, rel=1e-9)
    null = float(beta @ beta / 6)  # the null predictor's risk, what it used to return
    assert abs(float(r.excess_risk) - null) > 0.1 * null


def test_deep_rf_nonhomogeneous_activation_out_of_range_is_refused():
    Ws, beta, _ = _deep_case([9, 8])
    kw = dict(activation="erf", n=5, ridge=0.0, noise=0.1, target="linear", beta=beta)
    with pytest.raises(ValueError, match=r"^weights\[1\] sets pre-activation variances .* "
                                         r"'erf'"):
        deep_rf_risk([W * 1e-80 for W in Ws], **kw)  # layer 2 underflows (1e-320)
    # saturated erf is sign(): the risk at 1e80 equals the one at 1e10 to round-off
    far = float(deep_rf_risk([W * 1e80 for W in Ws], **kw).excess_risk)
    near = float(deep_rf_risk([W * 1e10 for W in Ws], **kw).excess_risk)
    assert far == pytest.approx(near, rel=1e-9)


def test_deep_rf_population_refuses_numbers_it_cannot_return():
    Ws, beta, _ = _deep_case([9, 8])
    big = [W * 1e80 for W in Ws]
    with pytest.raises(ValueError, match=r"^weights: the feature covariance's eigenvalues "
                                         r"reaches about 1e3\d\d, beyond float64"):
        deep_rf_population(big, activation="relu", target="linear", beta=beta)
    with pytest.raises(ValueError, match=r"^weights: layer 2's pre_cov reaches about 1e3\d\d"):
        layer_statistics(big, activation="relu")
    # features ~1e160 (one layer at 1e160): the shared target's power is ~1e320
    with pytest.raises(ValueError, match=r"^theta: the target's power is about 1e3\d\d"):
        deep_rf_risk([Ws[0] * 1e160], activation="relu", n=5, ridge=0.0,
                     theta=_deep_case([9])[2], target="shared")
    # one layer at 1e80 is representable (1e160): returned at its true scale
    pop = deep_rf_population(big[:1], activation="relu", target="linear", beta=beta)
    ref = deep_rf_population(Ws[:1], activation="relu", target="linear", beta=beta)
    np.testing.assert_allclose(pop.eigenvalues, np.asarray(ref.eigenvalues) * 1e160, rtol=1e-9)


def test_deep_rf_float32_scales_and_refusals(float32):
    Ws, beta, _ = _deep_case([9, 8])
    Ws32 = [np.float32(W) for W in Ws]
    kw = dict(n=5, ridge=0.0, noise=0.1, target="linear", beta=np.float32(beta))
    one = float(deep_rf_risk(Ws32, activation="relu", **kw).excess_risk)
    for scale in (1e10, 1e-10):  # covariance 1e+-40: beyond float32 before rescaling
        got = deep_rf_risk([W * np.float32(scale) for W in Ws32], activation="relu", **kw)
        assert float(got.excess_risk) == pytest.approx(one, rel=2e-5)
    with pytest.raises(ValueError, match=r"^weights\[0\]\[\d+, \d+\] = .* outside the "
                                         r"float32 range"):
        deep_rf_risk([Ws[0] * 1e39, Ws[1]], activation="relu", **kw)  # float64 input, 1e39
    with pytest.raises(ValueError, match=r"^weights\[0\] sets pre-activation variances .*"
                                         r"jax_enable_x64"):
        deep_rf_risk([W * np.float32(1e20) for W in Ws32], activation="erf", **kw)
    with pytest.raises(ValueError, match=r"^n = 16777217 is not exactly representable"):
        deep_rf_risk(Ws32, activation="relu", **(kw | {"n": 2**24 + 1}))


# --------------------------------------------------------------------------- mei_montanari


@pytest.mark.parametrize("x64", [False, True])
def test_mei_montanari_range_edges_match_decimal(x64):
    with jax.enable_x64(x64):
        lo, hi = psi_range(jnp.result_type(float))
        spec = F64 if x64 else {"tiny": F32["tiny"], "tol": 5e-6}
        for p1, p2, ridge in [(lo, 0.8, 0.0), (hi, 0.8, 0.01), (1.5, lo, 0.01), (2.0, hi, 0.0),
                              (lo, hi, 0.0), (1.5, 0.8, hi * 0.05)]:
            r = mei_montanari(p1, p2, ridge)
            bias, variance, chi = mm_reference(p1, p2, ridge)
            for got, ref in ((r.bias, bias), (r.variance, variance), (r.chi, chi)):
                assert close(got, ref, spec), (p1, p2, ridge, float(got), ref)


@pytest.mark.parametrize("x64", [False, True])
def test_mei_montanari_refuses_outside_its_range(x64):
    with jax.enable_x64(x64):
        lo, hi = psi_range(jnp.result_type(float))
        name = "float64" if x64 else "float32"
        with pytest.raises(ValueError, match=rf"^psi1 = .* is outside \[.*\], the range where "
                                             rf"{name} resolves"):
            mei_montanari(lo / 10, 0.8, 0.01)  # was: variance 0 instead of 1.25 psi1
        with pytest.raises(ValueError, match=r"^psi2 = .* is outside"):
            mei_montanari(1.5, hi * 10, 0.01)  # was: bias 1 instead of 0.31
        with pytest.raises(ValueError, match=r"^ridge = .* is too large"):
            mei_montanari(1.5, 0.8, hi)  # was: chi = 0
        if not x64:
            with pytest.raises(ValueError, match=r"^noise = 1e\+39 is outside the float32"):
                mei_montanari(1.5, 0.8, 0.01, noise=1e39)


# --------------------------------------------------------------------------- configs


def test_config_params_are_checked_against_the_active_float_type(float32):
    model = get_model("linear-ridge")
    with pytest.raises(ValueError, match=r"^ridge = 1e\+300 is outside the float32 range.*"
                                         r"jax_enable_x64"):
        make_config(model, {"n": 10, "d": 20, "ridge": 1e300})
    with pytest.raises(ValueError, match=r"^noise = 1e-45 is outside the float32 range"):
        make_config(model, {"n": 10, "d": 20, "noise": 1e-45})
    assert make_config(model, {"n": 10, "d": 20, "ridge": 1e30}).ridge == 1e30


def test_config_params_in_float64_accept_the_float64_range():
    model = get_model("linear-ridge")
    assert make_config(model, {"n": 10, "d": 20, "ridge": 1e300}).ridge == 1e300
    with pytest.raises(ValueError, match=r"^ridge = 1e-310 is outside the float64 range"):
        make_config(model, {"n": 10, "d": 20, "ridge": 1e-310})


# --------------------------------------------------------------------------- features


def test_gaussian_kernel_at_extreme_bandwidths(float32):
    x = jnp.ones((2, 3), jnp.float32).at[1].set(2.0)
    # bandwidth^2 = 1e-40 flushed to 0 made the diagonal 0/0 = NaN
    np.testing.assert_array_equal(np.asarray(features.gaussian_kernel(x, x, 1e-20)),
                                  [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(np.asarray(features.gaussian_kernel(x, x, 1e20)), 1.0)
    with pytest.raises(ValueError, match=r"^bandwidth = 1e\+300 is outside the float32 range"):
        features.rff_weights(jax.random.key(0), 4, 3, bandwidth=1e300)

