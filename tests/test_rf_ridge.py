"""rf-ridge simulator (Mei-Montanari setting) against mei_montanari."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.engine.keys import SeedKeys
from rfsim.models import get_model
from rfsim.models.rf_ridge import target

MODEL = get_model("rf-ridge")
_SIM = jax.jit(jax.vmap(MODEL.simulate, in_axes=(0, None)))
SEEDS = 24  # 12 left the 20%-off twin within 4 sem + 5% for some draws
KEYS = SeedKeys(jax.vmap(lambda s: jax.random.fold_in(jax.random.key(11), s))(jnp.arange(SEEDS)),
                jax.random.split(jax.random.key(12), SEEDS))


def _gap(cfg, factor=1.0):
    out = np.asarray(_SIM(KEYS, cfg)["excess_risk"])
    theory = factor * float(MODEL.predict(cfg)["excess_risk"])
    sem = out.std(ddof=1) / np.sqrt(len(out))
    return abs(out.mean() - theory) / (4 * sem + 0.05 * theory)  # <= 1 means agreement


CASES = [
    dict(d=60, N=30, n=120, ridge=1e-3, noise=0.25, n_test=2000),
    dict(d=60, N=240, n=120, ridge=0.1, noise=0.0, fstar_sq=0.3, n_test=2000),
    dict(d=60, N=120, n=90, ridge=0.05, noise=0.5, activation="erf", n_test=2000),
]


@pytest.mark.parametrize("case", CASES)
def test_simulation_matches_mei_montanari(case):
    # d = 60 is small: 4 sem + 5% (the acceptance bound quoted for d = 200)
    assert _gap(MODEL.config(**case)) <= 1.0


def test_twin_prediction_off_by_20_percent_fails():
    assert _gap(MODEL.config(**CASES[1]), factor=1.2) > 1.0


def test_target_normalization():
    """E f_NL^2 = fstar_sq and E <beta_1, x>^2 = f1_sq on the sphere (Monte Carlo, 4 sem)."""
    from rfsim.features import sphere_inputs

    cfg = MODEL.config(d=30, N=5, n=5, f1_sq=0.0, fstar_sq=2.0)
    x = sphere_inputs(jax.random.key(0), 200_000, 30)
    f = np.asarray(target(x, cfg))
    assert abs((f**2).mean() - 2.0) <= 4 * (f**2).std() / np.sqrt(len(f))
    assert abs(np.mean(f * np.asarray(x[:, 0]))) <= 4 * np.std(f * np.asarray(x[:, 0])) / 447


@pytest.mark.parametrize(
    "kwargs,message",
    [({"N": 0}, "N must be an integer >= 1, got 0"), ({"n": 0}, "n must be an integer >= 1"),
     ({"ridge": -0.1}, "ridge must be >= 0, got -0.1"),
     ({"activation": "rleu"}, "did you mean 'relu'")],
)
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MODEL.config(**{"d": 10, "N": 10, "n": 10, **kwargs})
