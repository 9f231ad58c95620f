"""Check kinds: each passes on agreeing data and its twin (a wrong prediction) fails."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from rfsim.check import evaluate, perturb_theory, validate_spec
from rfsim.cli import main


def _row(x, ridge, mean, sem, theory, metric="risk"):
    return {"N": str(x), "ridge": str(ridge), "metric": metric, "mean": repr(mean),
            "std": "", "sem": repr(sem), "n_seeds": "16", "theory": repr(theory),
            "rel_err": "", "z": ""}


AGREE = [_row(x, 0.1, m, 0.01, m * 1.004) for x, m in [(10, 1.0), (20, 0.8), (40, 0.7)]]


def test_statistical_passes_and_5_percent_off_fails():
    spec = {"kind": "statistical", "metric": "risk", "max_abs_z": 4.0}
    assert evaluate(AGREE, spec).passed
    wrong = evaluate(perturb_theory(AGREE, 1.05), spec)
    assert not wrong.passed and "max |z|" in wrong.figure


def test_statistical_allowance_and_where():
    rows = AGREE + [_row(80, 0.1, 0.6, 0.01, 0.66)]  # 10% off at one point
    spec = {"kind": "statistical", "metric": "risk", "max_abs_z": 4.0}
    assert not evaluate(rows, spec).passed
    assert evaluate(rows, {**spec, "rel_tol": 0.11}).passed
    assert evaluate(rows, {**spec, "where": {"N": [10, 20, 40]}}).passed


def test_infinite_theory_is_left_out_and_counted():
    rows = AGREE + [_row(80, 0.0, 1e4, 5e3, float("inf"))]
    v = evaluate(rows, {"kind": "statistical", "metric": "risk"})
    assert v.passed and "1 with infinite/missing theory left out" in v.figure


def test_exact_twin():
    rows = [_row(1, 0, 2.0, 0.0, 2.0 * (1 + 1e-10))]
    assert evaluate(rows, {"kind": "exact", "metric": "risk"}).passed
    assert not evaluate(perturb_theory(rows, 1.05), {"kind": "exact", "metric": "risk"}).passed


def test_monotone_at_best_ridge_and_its_twin():
    # at each N the best ridge is the smaller risk; best-ridge curve 1.0, 0.8, 0.7
    rows = AGREE + [_row(x, 1.0, m, 0.01, m) for x, m in [(10, 1.2), (20, 0.9), (40, 0.75)]]
    spec = {"kind": "monotone", "metric": "risk", "x": "N", "optimize": "ridge"}
    assert evaluate(rows, spec).passed
    bump = rows + [_row(80, 0.1, 0.9, 0.01, 0.9), _row(80, 1.0, 0.95, 0.01, 0.95)]
    v = evaluate(bump, spec)  # 0.7 -> 0.9 is 14 combined sem up: a non-monotone curve
    assert not v.passed and "40 -> 80" in v.figure
    small = rows + [_row(80, 0.1, 0.71, 0.01, 0.7)]  # +0.7 sem: noise, not a violation
    assert evaluate(small, spec).passed


def test_threshold_twin():
    rows = [_row(x, 0.1, m, 0.002, m, "ratio") for x, m in [(10, 0.4), (100, 0.05)]]
    spec = {"kind": "threshold", "metric": "ratio", "x": "N", "below": 0.1}
    assert evaluate(rows, spec).passed
    assert not evaluate(rows, {**spec, "below": 0.04}).passed


@pytest.mark.parametrize("spec,message", [
    ({"kind": "statistcal", "metric": "risk"}, "did you mean 'statistical'"),
    ({"kind": "statistical", "metric": "rsik"}, "did you mean 'risk'"),
])
def test_bad_check_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        evaluate(AGREE, spec)


def test_argmin_of_reads_one_metric_at_the_minimizer_of_another():
    """fit ratio read at the ridge minimizing test risk, not the smallest fit ratio."""
    rows = []
    for x, (te_a, te_b), (fr_a, fr_b) in [(10, (1.0, 1.5), (0.5, 0.0)),
                                          (20, (0.8, 1.2), (0.3, 0.0))]:
        rows += [_row(x, 0.1, te_a, 0.01, te_a, "test"), _row(x, 0.0, te_b, 0.01, te_b, "test"),
                 _row(x, 0.1, fr_a, 0.01, fr_a, "ratio"), _row(x, 0.0, fr_b, 0.01, fr_b, "ratio")]
    spec = {"kind": "threshold", "metric": "ratio", "x": "N", "optimize": "ridge",
            "argmin_of": "test", "below": 0.35}
    v = evaluate(rows, spec)
    assert v.passed and "0.3 " in v.figure  # at N = 20 the best ridge is 0.1: ratio 0.3
    assert not evaluate(rows, {**spec, "below": 0.25}).passed
    assert evaluate(rows, {**spec, "argmin_of": "ratio", "below": 0.05}).passed


# --- rate: fitted log-log slope vs a stated exponent ---------------------------------------

def _powerlaw_rows(exponent, *, rel_sem=0.02, xs=(10, 20, 40, 80, 160), ridges=(0.1, 1.0),
                   seed=0, metric="risk"):
    """Means scattered around C x^exponent by their sem (seeded), theory exactly on it."""
    rng = np.random.default_rng(seed)
    rows = []
    for ridge in ridges:
        for x in xs:
            truth = 3.0 * (1 + ridge) * x ** exponent
            sem = rel_sem * truth
            rows.append(_row(x, ridge, truth + sem * rng.standard_normal(), sem, truth, metric))
    return rows


def _slopes(figure):
    """Every 'slope ± se' pair a rate figure prints: the worst curve, then each curve."""
    return [(float(a), float(b)) for a, b in re.findall(r"([+-]\d+\.\d+) ?± ?(\d+\.\d+)", figure)]


RATE = {"kind": "rate", "metric": "risk", "x": "N", "expected": -0.6, "tolerance": 0.0,
        "max_abs_z": 3.0}


def test_rate_passes_within_3_se_of_the_true_exponent_and_0_2_off_fails():
    rows = _powerlaw_rows(-0.6)
    v = evaluate(rows, RATE)
    slope, se = _slopes(v.figure)[0]
    # 2% sem over x 10..160: se = 1/sqrt(sum w (log x - mean)^2) = 0.0093 for each curve
    assert se == pytest.approx(0.02 / math.sqrt(5 * np.var(np.log([10, 20, 40, 80, 160]))),
                               rel=0.02)
    assert v.passed and abs(slope + 0.6) <= 3 * se, v.figure
    assert "2 curves" in v.figure and "expected -0.6 ± 3 se" in v.figure
    resolution = float(re.search(r"detects an exponent off by > ([\d.]+)", v.figure).group(1))
    assert resolution == pytest.approx(3 * se, rel=0.05)
    wrong = evaluate(rows, {**RATE, "expected": -0.8})  # 0.2 off = 20 se
    assert not wrong.passed and "x allowance" in wrong.figure
    assert float(re.search(r"= ([\d.]+) x allowance", wrong.figure).group(1)) > 5


def test_rate_tolerance_is_the_stated_finite_size_allowance():
    rows = _powerlaw_rows(-0.6)
    spec = {**RATE, "expected": -0.7, "max_abs_z": 0.0}
    assert not evaluate(rows, {**spec, "tolerance": 0.05}).passed
    assert evaluate(rows, {**spec, "tolerance": 0.15}).passed  # 0.1 off + < 3 se of noise


def test_rate_reports_the_worst_curve():
    rows = _powerlaw_rows(-0.6, ridges=(0.1,)) + _powerlaw_rows(-0.9, ridges=(1.0,), seed=1)
    v = evaluate(rows, RATE)
    assert not v.passed and "at ridge=1.0" in v.figure, v.figure
    worst, *each = _slopes(v.figure)
    assert worst[0] == pytest.approx(-0.9, abs=3 * worst[1]) and len(each) == 2


def test_rate_on_theory_is_an_unweighted_fit_whose_se_is_the_curvature():
    exact = [_row(x, 0.1, 0.0, 0.0, 2.0 * x ** -1.5) for x in (10, 20, 40, 80)]
    spec = {"kind": "rate", "metric": "risk", "x": "N", "value": "theory", "expected": -1.5,
            "tolerance": 1e-9}
    v = evaluate(exact, spec)
    assert v.passed and _slopes(v.figure)[0][1] < 1e-9, v.figure
    assert not evaluate(exact, {**spec, "expected": -1.49}).passed
    curved = [_row(x, 0.1, 0.0, 0.0, x ** -1.0 + 0.01) for x in (10, 20, 40, 80)]
    slope, se = _slopes(evaluate(curved, {**spec, "expected": -1.0}).figure)[0]
    assert -0.8 < slope < -0.5 and se > 0.02  # bent by the floor: the se shows it


def test_rate_x_range_keeps_the_power_law_part():
    # a power law -1.5 up to N = 80, then a floor: the full fit is shallower
    rows = [_row(x, 0.1, max(x ** -1.5, 80 ** -1.5), 0.01 * x ** -1.5, 1.0)
            for x in (10, 20, 40, 80, 160, 320)]
    spec = {**RATE, "expected": -1.5, "tolerance": 0.01}
    assert not evaluate(rows, spec).passed
    v = evaluate(rows, {**spec, "x_max": 80})
    assert v.passed and "4 points, N 10..80" in v.figure, v.figure
    short = evaluate(rows, {**spec, "x_min": 100})
    assert not short.passed and "needs >= 3 points per curve; 2 with N in [100, inf]" in \
        short.figure


@pytest.mark.parametrize("mean,sem,message", [
    (0.0, 0.01, "needs positive values; mean = 0 at N=40"),
    (float("nan"), 0.01, "needs positive values; mean = nan at N=40"),
    (0.5, 0.0, "no standard error at N=40"),
])
def test_rate_fails_on_points_it_cannot_fit(mean, sem, message):
    rows = [_row(x, 0.1, 1.0 / x, 0.01 / x, 1.0 / x) for x in (10, 20, 80)]
    rows.append(_row(40, 0.1, mean, sem, 1 / 40))
    v = evaluate(rows, RATE)
    assert not v.passed and message in v.figure, v.figure


# --- bound: the simulation stays below a stated bound, which is not vacuous ---------------

def _bound_rows(seed=0):
    """risk ~ noise/N (half the bound 2 noise/N) with 5% sem, over N x noise; theory 1.3x."""
    rng = np.random.default_rng(seed)
    rows = []
    for x in (10, 20, 40, 80):
        for noise in (0.1, 0.5):
            truth = noise / x
            sem = 0.05 * truth
            row = _row(x, 0.1, truth + sem * rng.standard_normal(), sem, 1.3 * truth)
            row["noise"] = str(noise)
            rows.append(row)
    return rows


BOUND = {"kind": "bound", "metric": "risk", "bound": "2 * noise / N"}


def _margin(figure):
    return float(re.search(r"\(([+-][\d.]+)% of the bound\)", figure).group(1)) / 100


def test_bound_holds_with_its_margin_and_a_bound_below_the_truth_fails():
    rows = _bound_rows()
    v = evaluate(rows, BOUND)
    # mean + 3 sem <= 0.5 (1 + 3 * 0.05 + noise) x bound: margin ~ 40% of the bound
    assert v.passed and "every row holds" in v.figure and 0.3 < _margin(v.figure) < 0.5
    wrong = evaluate(rows, {**BOUND, "bound": "0.9 * noise / N"})  # 10% under the truth
    assert not wrong.passed and "8 of 8 rows violate it" in wrong.figure
    assert _margin(wrong.figure) < -0.1
    tight = evaluate(rows, {**BOUND, "bound": "1.05 * noise / N"})  # above the mean, not 3 sem
    assert not tight.passed and "violate" in tight.figure


def test_bound_is_not_vacuous_with_max_ratio():
    rows = _bound_rows()
    loose = {**BOUND, "bound": "100 * noise / N", "max_ratio": 10}
    v = evaluate(rows, loose)  # bound/mean ~ 100 everywhere: holds, but says nothing
    assert not v.passed and "> max_ratio 10: vacuous" in v.figure
    ratio = float(re.search(r"smallest bound/mean = ([\d.]+)", v.figure).group(1))
    assert 80 < ratio < 120
    assert evaluate(rows, {**BOUND, "max_ratio": 3}).passed  # 2 noise/N: ratio ~ 2


def test_bound_theory_and_number():
    rows = _bound_rows() + [_row(160, 0.1, 1e-4, 1e-5, float("inf"))]
    rows[-1]["noise"] = "0.1"
    v = evaluate(rows, {**BOUND, "bound": "theory"})  # 1.3 truth >= mean + 3 sem unless 3 sem off
    assert v.passed and "1 with infinite/missing theory left out" in v.figure
    assert evaluate(rows, {**BOUND, "bound": 0.06}).passed  # max mean 0.5/10 = 0.05
    assert not evaluate(rows, {**BOUND, "bound": 0.04}).passed
    perturbed = evaluate(perturb_theory(rows, 0.8), {**BOUND, "bound": "theory"})
    assert not perturbed.passed and "8 of 8 rows violate it" in perturbed.figure  # 1.04x < 1.15x


def test_bound_undefined_at_a_row_fails_and_a_wrong_name_is_an_error():
    rows = _bound_rows()
    v = evaluate(rows, {**BOUND, "bound": "1 / (N - 10)"})
    assert not v.passed and "undefined here: float division by zero" in v.figure
    with pytest.raises(ValueError, match="names 'M', which is not a parameter column"):
        evaluate(rows, {**BOUND, "bound": "1 / M"})


# --- validation before compute --------------------------------------------------------------

@pytest.mark.parametrize("spec,message", [
    ({"kind": "rate", "metric": "risk", "x": "N", "tolerance": 0.1},
     "a rate check needs `expected = <the exponent>`"),
    ({"kind": "rate", "metric": "risk", "x": "N", "expected": -1},
     "a rate check needs `tolerance"),
    ({"kind": "rate", "metric": "risk", "expected": -1, "tolerance": 0.1},
     "a rate check needs `x = \"<grid axis>\"`"),
    ({**RATE, "expected": "-1"}, "expected must be a finite number, got '-1'"),
    ({**RATE, "expected": float("inf")}, "expected must be a finite number, got inf"),
    ({**RATE, "tolerance": -0.1}, "tolerance must be >= 0, got -0.1"),
    ({**RATE, "x_min": 100, "x_max": 10}, "x_min must be < x_max"),
    ({**RATE, "below": 1}, "key 'below' does not apply to kind 'rate'"),
    ({"kind": "bound", "metric": "risk"}, "a bound check needs `bound = \"theory\""),
    ({**BOUND, "bound": True}, "bound must be \"theory\", a number or an expression"),
    ({**BOUND, "bound": "N % 2"}, "the operator '%' is not allowed"),
    ({**BOUND, "bound": "abs(N)"}, "unknown function 'abs'"),
    ({**BOUND, "bound": "N.real"}, "'N.real' (attribute access) is not allowed"),
    ({**BOUND, "bound": "2 * theory"}, "may name parameters only, not 'theory'"),
    ({**BOUND, "max_ratio": 0.5}, "max_ratio must be >= 1"),
    ({**BOUND, "tolerance": 0.1}, "key 'tolerance' does not apply to kind 'bound'"),
])
def test_bad_rate_and_bound_specs(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(AGREE, spec)


CONTEXT = {"metrics": ["risk"], "columns": ["N", "ridge", "noise"],
           "values": {"N": [10, 20, 40, 80], "ridge": [0.1], "noise": [0.1, 0.5]},
           "axes": ["N", "noise"]}


@pytest.mark.parametrize("spec,message", [
    ({**RATE, "x": "ridge"}, "x must be a grid axis (N, noise), got 'ridge'"),
    ({**RATE, "x_max": 20}, "a rate needs >= 3 values of N in [-inf, 20]; the grid has 2 (10, 20)"),
    ({**RATE, "where": {"N": [10, 80]}}, "a rate needs >= 3 values of N; the grid has 2"),
    ({**BOUND, "bound": "2 * nosie / N"}, "names 'nosie', which is not a parameter (did you "
                                          "mean 'noise'?)"),
])
def test_rate_and_bound_checked_against_the_experiment(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_spec(spec, **CONTEXT)
    validate_spec({**RATE, "x_min": 20}, **CONTEXT)  # 20, 40, 80: enough
    validate_spec(BOUND, **CONTEXT)


def test_a_bad_bound_is_refused_before_compute(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('model = "linear-ridge"\nseeds = 2\n[params]\nd = 8\nnoise = 0.5\n'
                    '[grid]\nn = [4, 12]\n[[check]]\nkind = "bound"\nmetric = "excess_risk"\n'
                    'bound = "noise ^ 2"\n')
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the operator '^' is not allowed" in err and not out.exists(), err


# --- the shipped rate claim is the closed form, and the theory itself bears it out --------

def _min_over_ridge(s, beta, n, noise):
    """min over log ridge of the deterministic equivalent's excess risk at n."""
    from scipy.optimize import minimize_scalar

    from rfsim.theory.ridge import ridge_risk

    top = math.log10(float(s[0]))
    o = minimize_scalar(lambda ll: float(ridge_risk(s, beta, n=n, ridge=10 ** ll,
                                                    noise=noise).excess_risk),
                        bounds=(top - 12, top + 2), method="bounded", options={"xatol": 1e-7})
    assert top - 11 < o.x < top + 1.5  # an interior minimum, not a bracket end
    return o.fun


def _powerlaw_experiment():
    from rfsim.engine.experiment import load_experiment

    exp = load_experiment(Path(__file__).resolve().parents[1] / "experiments"
                          / "linear_ridge_powerlaw.toml")
    (spec,) = [c for c in exp.checks if c.get("kind") == "rate"]
    a, b, noise = (exp.params[k] for k in ("spectrum_decay", "target_decay", "noise"))
    return exp, spec, a, b, noise


def test_powerlaw_rate_claim_is_the_closed_form_and_covers_the_theorys_curvature():
    """theory/ridge.md (P-7): n^-(a+b-1)/(a+b) at the optimal ridge; on the experiment's own
    grid the theory's minimum over the ridges, fitted like the check, is within tolerance."""
    from rfsim.data import powerlaw_spectrum, powerlaw_target
    from rfsim.theory.ridge import ridge_risk

    exp, spec, a, b, noise = _powerlaw_experiment()
    assert spec["expected"] == pytest.approx(-(a + b - 1) / (a + b))
    s = powerlaw_spectrum(exp.params["d"], a)
    beta = powerlaw_target(s, b)
    ns = exp.grid["n"]
    ridges = np.array(exp.grid["ridge"], dtype=float)
    best = [float(ridge_risk(s, beta, n=n, ridge=ridges, noise=noise).excess_risk.min())
            for n in ns]
    slope = np.polyfit(np.log(ns), np.log(best), 1)[0]
    assert slope == pytest.approx(-0.655, abs=0.002)  # the curvature the tolerance covers
    assert abs(slope - spec["expected"]) <= spec["tolerance"] - 0.02


@pytest.mark.slow
def test_powerlaw_rate_is_reached_by_the_theory_at_large_n_and_d():
    """ridge_risk's local slope of min over ridge, n = 1e5 -> 1e6 at d = 1e5, is (P-7)."""
    from rfsim.data import powerlaw_spectrum, powerlaw_target

    _, spec, a, b, noise = _powerlaw_experiment()
    s = powerlaw_spectrum(10**5, a)
    beta = powerlaw_target(s, b)
    r1, r2 = (_min_over_ridge(s, beta, n, noise) for n in (10**5, 10**6))
    assert math.log(r2 / r1) / math.log(10) == pytest.approx(spec["expected"], abs=0.002)


# --- the typed summary table --------------------------------------------------------------

def test_summary_table_is_typed_and_its_text_is_summary_csv(tmp_path):
    """Cells are numbers (int, float; blank None/NaN) and write back to the same bytes."""
    import csv
    import io

    from rfsim.engine.io import read_summary, read_table, write_csv
    from rfsim.engine.table import SUMMARY_STATS, SummaryTable, format_value

    header = ["n", "ridge", "widths", "activation", *SUMMARY_STATS]
    raw = [[10, 0.1, [20, 20], "relu", "risk", 1 / 3, 0.2, 0.05, 16, float("inf"), None, None],
           [20, 1e-300, [7], "erf", "risk", -0.0, float("nan"), 0.0, 1, 0.5, -1.0, 2.5e10]]
    table = SummaryTable.from_values(header, raw)
    r0, r1 = table.rows
    assert (r0["n"], r0["ridge"], r0["widths"], r0["activation"]) == (10, 0.1, "20x20", "relu")
    assert isinstance(r0["n"], int) and r1["widths"] == 7 and r1["ridge"] == 1e-300
    assert r0["mean"] == 1 / 3 and r0["theory"] == math.inf and math.isnan(r0["z"])
    assert math.isnan(r1["std"]) and r1["n_seeds"] == 1
    write_csv(tmp_path / "summary.csv", header, table.cells())
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [header] + [[format_value(v) for v in row] for row in raw])
    assert (tmp_path / "summary.csv").read_text() == buf.getvalue()  # byte for byte
    assert read_table(tmp_path / "summary.csv").text_rows() == read_summary(
        tmp_path / "summary.csv") == table.text_rows()


def test_where_matches_numbers_exactly_and_text_as_written():
    """1 == 1.0 and 10 == 10.0; 0.1 + 0.2 is not 0.3 (the CSV keeps every float64);
    a string is matched against the cell as summary.csv writes it."""
    rows = AGREE + [_row(80, 0.1 + 0.2, 0.6, 0.01, 0.6)]
    spec = {"kind": "statistical", "metric": "risk"}
    assert "3 points" in evaluate(rows, {**spec, "where": {"ridge": 0.1}}).figure
    assert "3 points" in evaluate(rows, {**spec, "where": {"N": [10.0, 20, 40.0]}}).figure
    assert "1 points" in evaluate(rows, {**spec, "where": {"ridge": 0.1 + 0.2}}).figure
    assert "selects no rows" in str(pytest.raises(
        ValueError, evaluate, rows, {**spec, "kind": "monotone", "x": "N",
                                     "where": {"ridge": 0.3}}).value)
    assert "1 points" in evaluate(rows, {**spec, "where": {"ridge": "0.30000000000000004"}}
                                  ).figure


def test_each_kind_is_a_frozen_spec_with_its_defaults():
    import dataclasses

    from rfsim.checks import KINDS, parse

    assert sorted(KINDS) == ["bound", "compare", "exact", "monotone", "rate", "statistical",
                             "threshold"]
    s = parse({"metric": "risk"})
    assert (s.kind, s.max_abs_z, s.rel_tol, s.abs_tol) == ("statistical", 4.0, 0.0, 0.0)
    assert parse({"kind": "exact", "metric": "risk"}).rel_tol == 1e-8
    r = parse(RATE)
    assert (r.x_min, r.x_max, r.span, r.value) == (None, None, (-math.inf, math.inf), "mean")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.expected = 0.0
    from rfsim.checks import Statistical

    assert Statistical(metric="risk", max_abs_z=3).evaluate(AGREE).passed  # built directly
    with pytest.raises(ValueError, match="max_abs_z must be >= 0, got -1"):
        Statistical(metric="risk", max_abs_z=-1)  # validated on construction, like parse
    assert KINDS["rate"].keys() == ("kind", "name", "metric", "where", "x", "optimize",
                                    "argmin_of", "value", "expected", "tolerance",
                                    "max_abs_z", "x_min", "x_max")
