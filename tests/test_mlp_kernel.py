"""Family ``mlp-kernel``: finite-width kernel errors fall as width^-1/2 (the shipped rate
claim), and a wrong closed form (off by 10% in w_std) stops the error from falling, which
the same rate check catches."""

import jax
import numpy as np
import pytest
from helpers import keys

import rfsim.models.mlp_kernel as fam
from rfsim.check import evaluate
from rfsim.engine.keys import SeedKeys
from rfsim.models import get_model

WIDTHS = (64, 256, 1024)
SEEDS = 6
RATE = {"kind": "rate", "x": "width", "expected": -0.5, "tolerance": 0.08, "max_abs_z": 3.0}


def seed_keys(n: int, seed: int = 0) -> SeedKeys:
    """``n`` seeds' (data, model) keys, fixed and independent."""
    return SeedKeys(keys(n, seed), keys(n, seed + 10_000))


def _rows(monkeypatch=None, scale=1.0):
    """Summary-like rows (mean, sem over SEEDS seeds) of both metrics at each width."""
    if scale != 1.0:
        exact = fam.kernels
        monkeypatch.setattr(fam, "kernels",
                            lambda x, *, w_std, **kw: exact(x, w_std=scale * w_std, **kw))
    rows = []
    for width in WIDTHS:
        cfg = fam.MLPKernelConfig(width=width, depth=1, n_inputs=8, d=4, w_std=1.2, b_std=0.1)
        out = jax.jit(jax.vmap(fam.simulate, in_axes=(0, None)))(seed_keys(SEEDS, width), cfg)
        for metric, v in out.items():
            v = np.asarray(v)
            rows.append({"width": str(width), "metric": metric, "mean": repr(float(v.mean())),
                         "sem": repr(float(v.std(ddof=1) / np.sqrt(SEEDS))), "theory": "",
                         "n_seeds": str(SEEDS)})
    return rows


@pytest.fixture(scope="module")
def rows():
    return _rows()


@pytest.mark.parametrize("metric", ["ntk_error", "nngp_error"])
def test_errors_fall_as_one_over_root_width(rows, metric):
    v = evaluate(rows, {**RATE, "metric": metric})
    assert v.passed, v.figure


def test_a_wrong_closed_form_fails_the_rate_check(monkeypatch):
    wrong = _rows(monkeypatch, scale=1.1)
    for metric in ("ntk_error", "nngp_error"):
        v = evaluate(wrong, {**RATE, "metric": metric})
        assert not v.passed, v.figure


def test_errors_are_small_at_large_width(rows):
    at = {(r["width"], r["metric"]): float(r["mean"]) for r in rows}
    assert at[("1024", "ntk_error")] < 0.12 and at[("1024", "nngp_error")] < 0.12


@pytest.mark.parametrize("values,match", [
    (dict(width=0), "width"),
    (dict(width=8, activation="rleu"), "activation"),
    (dict(width=8, parameterization="NTK"), "parameterization"),
    (dict(width=8, w_std=0.0), "w_std"),
    (dict(width=8, b_std=-1.0), "b_std"),
    (dict(width=8, n_inputs=1), "n_inputs"),
])
def test_bad_config_names_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        fam.MLPKernelConfig(**values)


def test_registered_with_its_metrics():
    model = get_model("mlp-kernel")
    assert model.metrics == ("ntk_error", "nngp_error") and model.predict is None
