"""Check kinds: each passes on agreeing data and its twin (a wrong prediction) fails."""

import pytest

from rfsim.check import evaluate, perturb_theory


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
