"""Family ``wide-training``: gradient descent of the simulated network against an independent
recursion (a linear model, whose linearization is exact), the width^-1/2 rate of the distance
to the linearized NTK dynamics and the ensemble mean against the NTK flow (theory/kernels.md
§4), each with a twin in which a wrong theory FAILs the same check; config validation."""

import functools

import jax
import numpy as np
import pytest
from helpers import keys

import rfsim.models.wide_training as fam
from rfsim.check import evaluate
from rfsim.engine.keys import SeedKeys
from rfsim.models import get_model
from rfsim.networks import mlp
from rfsim.theory.infinite_width import ntk_flow

WIDTHS = (64, 512, 4096)
SEEDS = 8
BASE = dict(depth=1, w_std=2 ** 0.5, steps=64, n_times=7, learning_rate=0.25)
RATE = {"kind": "rate", "metric": "lin_error", "x": "width", "expected": -0.5,
        "tolerance": 0.1, "max_abs_z": 3.0}
STAT = {"kind": "statistical", "metric": "prediction_cv", "max_abs_z": 4.0, "rel_tol": 0.01,
        "where": {"step": [32, 64]}}
#: a static group's keys for init: the data key fixes the problem for every width
GROUP = SeedKeys(jax.random.key(0), jax.random.key(1))


def _simulator(cfg):
    """Seeds looped like the engine does; the state is an argument (compiled once)."""
    sim = jax.jit(lambda k, s: jax.lax.map(lambda kk: fam.simulate(kk, cfg, s), k))
    seeds = SeedKeys(keys(SEEDS, 3), keys(SEEDS, 4))
    return lambda state: {k: np.asarray(v) for k, v in sim(seeds, state).items()}


def _rows(metric, width, out, theory, steps):
    v = out[metric]
    mean, sem = v.mean(0), v.std(0, ddof=1) / np.sqrt(v.shape[0])
    th = [""] * len(steps) if theory is None else [repr(float(t)) for t in theory]
    return [{"width": str(width), "step": str(int(k)), "metric": metric,
             "mean": repr(float(m)), "sem": repr(float(s)), "theory": t,
             "n_seeds": str(v.shape[0])} for k, m, s, t in zip(steps, mean, sem, th)]


@functools.cache
def _sweep():
    """Per width: the config, the state, the right outputs and those with the NTK blocks
    10% off (the same compiled simulation, a perturbed state argument)."""
    runs = {}
    for width in WIDTHS:
        cfg = fam.WideTrainingConfig(width=width, **BASE)
        state = fam.init(GROUP, cfg)
        wrong = {**state, "theta_dd": 1.1 * state["theta_dd"],
                 "theta_td": 1.1 * state["theta_td"]}
        run = _simulator(cfg)
        runs[width] = (cfg, state, run(state), run(wrong))
    return runs


def test_linear_model_follows_the_gd_recursion_exactly():
    """Depth 0 with a linear activation: f = w_std w.x/sqrt(d) + b_std b is linear in its
    parameters, so GD is its linearization exactly, with NTK w_std^2 x.x'/d + b_std^2 (K-8):
    lin_error vanishes to round-off, and the outputs equal an independent step-by-step
    residual recursion r_{k+1} = (I - eta Theta/n) r_k (no eigendecomposition)."""
    cfg = fam.WideTrainingConfig(width=1, depth=0, activation="linear", w_std=1.3, b_std=0.4,
                                 steps=50, n_times=5, learning_rate=0.3, noise=0.01)
    state = fam.init(GROUP, cfg)
    X, Xt, y = (np.asarray(state[k]) for k in ("x_train", "x_test", "y"))
    theta_dd = 1.3 ** 2 * X @ X.T / cfg.d + 0.4 ** 2
    theta_td = 1.3 ** 2 * Xt @ X.T / cfg.d + 0.4 ** 2
    np.testing.assert_allclose(state["theta_dd"], theta_dd, rtol=1e-12)
    np.testing.assert_allclose(state["theta_td"], theta_td, rtol=1e-12)
    seed = SeedKeys(keys(1, 7)[0], keys(1, 8)[0])
    out = jax.jit(fam.simulate, static_argnums=1)(seed, cfg, state)
    apply_fn, params = mlp(seed.model, cfg.d, depth=0, width=1, activation="linear", w_std=1.3,
                           b_std=0.4)
    r, f = np.asarray(apply_fn(params, X)) - y, np.asarray(apply_fn(params, Xt))
    want, ks = [], set(fam.checkpoints(cfg.steps, cfg.n_times).tolist())
    for k in range(1, cfg.steps + 1):
        f = f - cfg.learning_rate / cfg.n_train * theta_td @ r
        r = r - cfg.learning_rate / cfg.n_train * theta_dd @ r
        if k in ks:
            want.append(f[0])
    np.testing.assert_allclose(out["prediction"], want, rtol=1e-10, atol=1e-12)
    assert np.max(np.asarray(out["lin_error"])) < 1e-10


def test_distance_to_linearized_dynamics_falls_as_one_over_root_width():
    rows = [r for w, (_, _, out, _) in _sweep().items()
            for r in _rows("lin_error", w, out, None, fam.checkpoints(64, 7))]
    v = evaluate(rows, RATE)
    assert v.passed, v.figure


def test_a_kernel_ten_percent_off_fails_the_rate_check():
    rows = [r for w, (_, _, _, wrong) in _sweep().items()
            for r in _rows("lin_error", w, wrong, None, fam.checkpoints(64, 7))]
    v = evaluate(rows, RATE)
    assert not v.passed, v.figure


def _flow_rows(time_factor=1.0, metric="prediction_cv"):
    width = WIDTHS[-1]
    cfg, state, out, _ = _sweep()[width]
    ks = fam.checkpoints(cfg.steps, cfg.n_times)
    if time_factor == 1.0:
        theory = fam.predict(cfg, state)[metric]
    else:
        dd, td, y = (np.asarray(state[k]) for k in ("theta_dd", "theta_td", "y"))
        theory = [ntk_flow(dd, td[:1], y, time_factor * cfg.learning_rate * k).mean[0]
                  for k in ks]
    return _rows(metric, width, out, theory, ks)


@pytest.mark.parametrize("metric", ["prediction_cv", "prediction"])
def test_ensemble_mean_follows_the_ntk_flow(metric):
    v = evaluate(_flow_rows(metric=metric), {**STAT, "metric": metric})
    assert v.passed, v.figure


def test_flow_time_without_one_over_n_fails():
    """K-14 with t in place of t/n (the flow 8x too fast) FAILs the same check."""
    v = evaluate(_flow_rows(time_factor=fam.WideTrainingConfig(width=1).n_train), STAT)
    assert not v.passed, v.figure


def test_control_variate_keeps_the_mean_and_shrinks_the_spread():
    """prediction_cv - prediction = -f_0(x*) + C_k f_0(X_d): mean zero at every width (the
    readout is symmetric), so both estimate the same ensemble mean; the spread shrinks."""
    _, _, out, _ = _sweep()[WIDTHS[-1]]
    diff = out["prediction_cv"] - out["prediction"]
    z = diff.mean(0) / (diff.std(0, ddof=1) / np.sqrt(SEEDS))
    assert np.all(np.abs(z) < 4.5), z
    assert np.all(out["prediction_cv"].std(0) < 0.2 * out["prediction"].std(0))


def test_gd_operator_has_no_cancellation_at_small_rates():
    """(1 - (1 - a)^k)/lambda for a tiny lambda is k eta/n, not round-off."""
    dd = np.diag([1e-14, 1.0])
    C = np.asarray(fam.gd_operator(dd, np.eye(2), 0.5, [3]))[0]
    np.testing.assert_allclose(C[0, 0], 3 * 0.5 / 2, rtol=1e-12)
    np.testing.assert_allclose(C[1, 1], 1 - (1 - 0.25) ** 3, rtol=1e-14)


def test_checkpoints_and_axis():
    cfg = fam.WideTrainingConfig(width=8, steps=256, n_times=9)
    np.testing.assert_array_equal(fam.coords(cfg)["step"], 2 ** np.arange(9))
    np.testing.assert_array_equal(fam.checkpoints(10, 1), [10])


@pytest.mark.parametrize("values,match", [
    (dict(width=0), "width"),
    (dict(width=8, depth=5), "depth"),
    (dict(width=8, activation="rleu"), "activation"),
    (dict(width=8, w_std=0.0), "w_std"),
    (dict(width=8, b_std=-0.1), "b_std"),
    (dict(width=8, n_train=0), "n_train"),
    (dict(width=8, steps=4, n_times=5), "n_times"),
    (dict(width=8, steps=5, n_times=5), "n_times"),
    (dict(width=8, noise=-1.0), "noise"),
    (dict(width=8, learning_rate=0.0), "learning_rate"),
    (dict(width=8, w_std=2 ** 0.5, learning_rate=0.6), "learning_rate"),  # 2/Theta = 0.5
])
def test_bad_config_names_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        fam.WideTrainingConfig(**values)


def test_registered_with_its_metrics_and_axes():
    model = get_model("wide-training")
    assert model.metrics == ("prediction", "prediction_cv", "lin_error")
    assert model.axis_names == ("step",) and not model.predict_jit and model.init is not None
    cfg = fam.WideTrainingConfig(width=8)
    assert set(fam.predict(cfg, fam.init(GROUP, cfg))) == {"prediction", "prediction_cv"}


def test_the_problem_depends_on_the_data_fields_only():
    """init draws the problem from the group's data key alone: another width or depth and
    another model key keep it (the engine hashes only the data fields into the data key),
    another data key changes it."""
    a = fam.init(GROUP, fam.WideTrainingConfig(width=8))
    b = fam.init(GROUP._replace(model=jax.random.key(5)), fam.WideTrainingConfig(width=64,
                                                                                depth=2))
    for k in ("x_train", "x_test", "y"):
        np.testing.assert_array_equal(a[k], b[k])
    c = fam.init(GROUP._replace(data=jax.random.key(5)), fam.WideTrainingConfig(width=8))
    assert not np.allclose(a["x_train"], c["x_train"])
