"""Family ``structured-weights`` (theory/signal_propagation.md SP-10 – SP-12): orthogonal,
low-rank and sparse hidden layers give the i.i.d. NNGP, with an error falling as
width^-1/2 for every kind; a wrong variance factor stops the fall (the twin).  The default
suite runs the low-rank rate and the twin (~30 s each on 2 loaded cores); the other kinds'
rates are marked slow (``pytest -m slow``) and claimed by experiments/structured_weights_nngp."""

import jax
import numpy as np
import pytest
from helpers import keys

import rfsim.models.structured_weights as fam
from rfsim.check import evaluate
from rfsim.engine.keys import SeedKeys
from rfsim.models import get_model

WIDTHS = (32, 128, 512)
SEEDS = 6
RATE = {"kind": "rate", "x": "width", "expected": -0.5, "tolerance": 0.12, "max_abs_z": 3.0,
        "metric": "nngp_error"}


def seed_keys(n: int, seed: int = 0) -> SeedKeys:
    """``n`` seeds' (data, model) keys, fixed and independent."""
    return SeedKeys(keys(n, seed), keys(n, seed + 10_000))


def _rows(kind, factor=1.0):
    rows = []
    for width in WIDTHS:
        cfg = fam.StructuredWeightsConfig(width=width, kind=kind, depth=2, n_inputs=6, d=4,
                                          variance_factor=factor)
        v = np.asarray(jax.jit(jax.vmap(fam.simulate, in_axes=(0, None)))(
            seed_keys(SEEDS, width), cfg)["nngp_error"])
        rows.append({"width": str(width), "metric": "nngp_error", "mean": repr(float(v.mean())),
                     "sem": repr(float(v.std(ddof=1) / np.sqrt(SEEDS))), "theory": "",
                     "n_seeds": str(SEEDS)})
    return rows


@pytest.mark.parametrize("kind", [
    pytest.param(k, marks=[] if k == "low_rank" else pytest.mark.slow) for k in fam.KINDS])
def test_every_kind_converges_to_the_iid_nngp_at_rate_one_half(kind):
    v = evaluate(_rows(kind), RATE)
    assert v.passed, v.figure


def test_a_wrong_variance_factor_fails_the_rate_check():
    v = evaluate(_rows("orthogonal", factor=1.1), RATE)
    assert not v.passed, v.figure


@pytest.mark.parametrize("kind", fam.KINDS)
def test_hidden_weights_have_unit_variance_entries(kind):
    cfg = fam.StructuredWeightsConfig(width=256, kind=kind)
    W = np.asarray(fam.hidden_weights(jax.random.key(0), cfg))
    assert W.shape == (256, 256)
    assert abs(W.mean()) < 0.02 and W.var() == pytest.approx(1.0, abs=0.05)
    if kind == "orthogonal":
        np.testing.assert_allclose(W @ W.T / 256, np.eye(256), atol=1e-10)
    if kind == "low_rank":
        assert np.linalg.matrix_rank(W) == cfg.rank == 64
    if kind == "sparse":
        assert np.mean(W == 0) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("values,match", [
    (dict(width=0), "width"),
    (dict(width=8, kind="orthgonal"), "kind"),
    (dict(width=8, depth=1), "depth"),
    (dict(width=8, rank_fraction=0.0), "rank_fraction"),
    (dict(width=8, density=1.5), "density"),
    (dict(width=8, variance_factor=0.0), "variance_factor"),
    (dict(width=8, activation="rleu"), "activation"),
])
def test_bad_config_names_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        fam.StructuredWeightsConfig(**values)


def test_registered():
    model = get_model("structured-weights")
    assert model.metrics == ("nngp_error",) and model.predict is None
