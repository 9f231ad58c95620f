"""Model contract v2 with toy families: metrics along an axis (run, check, plot, merge),
frozen state shared by simulate and predict, theory on the host (predict_jit=False), and
statics that must be plain data."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.config import model_config, param, static
from rfsim.engine.io import read_csv
from rfsim.models import register
from helpers import run_cli


@model_config
class DecayConfig:
    steps: int = static(6, doc="log-spaced time points 1 .. 10^3")
    alpha: float = param(0.5, doc="loss(t) = t^-alpha (1 + noise * eps)")
    noise: float = param(0.2)


def _times(cfg):
    return {"step": np.unique(np.round(np.logspace(0, 3, cfg.steps)))}


def _decay_simulate(key, cfg):
    t = jnp.asarray(_times(cfg)["step"], jnp.result_type(float))
    eps = jax.random.normal(key, t.shape, t.dtype)
    loss = t ** (-cfg.alpha) * (1 + cfg.noise * eps)
    return {"loss": loss, "final": loss[-1]}


def _decay_predict(cfg):
    t = jnp.asarray(_times(cfg)["step"], jnp.result_type(float))
    return {"loss": t ** (-cfg.alpha), "final": t[-1] ** (-cfg.alpha)}


@model_config
class StateConfig:
    k: int = static(5)
    scale: float = param(1.0)


def _state_init(key, cfg):
    return {"w": jax.random.normal(key, (cfg.k,), jnp.result_type(float))}


def _state_simulate(key, cfg, state):
    x = jax.random.normal(key, (cfg.k,), state["w"].dtype)
    return {"dot": cfg.scale * jnp.dot(state["w"], x)}


def _host_predict(cfg, state):
    """Not jittable on purpose: scipy and Python floats (predict_jit=False)."""
    from scipy import integrate

    assert isinstance(cfg.scale, float)
    w = np.asarray(state["w"])
    integral, _ = integrate.quad(lambda u: u, 0.0, 1.0)  # = 1/2, a host-only computation
    return {"dot": 2 * integral * 0.0 * cfg.scale * float(w.sum())}  # E[w.x] = 0


@pytest.fixture
def toy_families(registry):  # conftest's registry fixture restores the registry afterwards
    register("toy-decay", DecayConfig, _decay_simulate, _decay_predict, metrics=("loss", "final"),
             axes={"loss": "step"}, coords=_times)
    register("toy-state", StateConfig, _state_simulate, _host_predict, metrics=("dot",),
             init=_state_init, predict_jit=False)


DECAY = """model = "toy-decay"
seeds = 24
[params]
noise = 0.2
[grid]
alpha = [0.5, 1.0]
[[check]]
name = "loss along time"
metric = "loss"
max_abs_z = 4.0
[[check]]
name = "loss decreases in time"
kind = "monotone"
metric = "loss"
x = "step"
[[check]]
name = "late loss"
metric = "loss"
where = { step = 1000 }
[plot]
x = "step"
metric = "loss"
series = ["alpha"]
"""


_run = run_cli


def test_metric_along_an_axis_runs_checks_plots_and_merges(tmp_path, capsys, toy_families):
    path = tmp_path / "decay.toml"
    path.write_text(DECAY)
    code, stdout, err = _run(capsys, "run", path, "--out", tmp_path / "full", "--quiet")
    assert code == 0, err
    assert stdout.count("PASS") == 3, stdout
    rows = read_csv(tmp_path / "full" / "summary.csv")
    assert list(rows[0])[:4] == ["steps", "alpha", "noise", "step"]
    loss = [r for r in rows if r["metric"] == "loss"]
    final = [r for r in rows if r["metric"] == "final"]
    steps = _times(DecayConfig())["step"]
    assert len(loss) == 2 * len(steps) and len(final) == 2
    assert all(r["step"] == "" for r in final)  # scalar metrics have a blank axis cell
    for r in loss:
        t, a = float(r["step"]), float(r["alpha"])
        assert float(r["theory"]) == pytest.approx(t ** -a, rel=1e-12)
        assert abs(float(r["mean"]) - t ** -a) <= 4 * float(r["sem"])
    sim = read_csv(tmp_path / "full" / "sim.csv")
    assert len(sim) == 2 * 24 * (len(steps) + 1)  # per seed: the scalar row + one per step
    assert (tmp_path / "full" / "figure.png").stat().st_size > 1000
    for i in range(2):
        _run(capsys, "run", path, "--out", tmp_path / f"s{i}", "--shard", f"{i}/2", "--quiet",
             "--no-plot")
    code, _, err = _run(capsys, "merge", tmp_path / "s0", tmp_path / "s1", "--out",
                        tmp_path / "m", "--no-plot")
    assert code == 0, err
    for name in ("sim.csv", "summary.csv"):
        assert (tmp_path / "m" / name).read_text() == (tmp_path / "full" / name).read_text()


def test_checks_along_the_axis_fail_for_a_wrong_prediction(tmp_path, capsys, toy_families):
    """Twin: the same checks with the theory off by 30% (--perturb; 4 sem is ~16% here) FAIL."""
    (tmp_path / "exps").mkdir()
    (tmp_path / "exps" / "decay.toml").write_text(DECAY)
    args = ["check", "--dir", tmp_path / "exps", "--out-root", tmp_path / "c", "--quiet",
            "--full"]
    code, stdout, _ = _run(capsys, *args)
    assert code == 0, stdout
    code, stdout, _ = _run(capsys, *args, "--perturb", "1.3")
    assert code == 1 and "FAIL  loss along time" in stdout and "FAIL  late loss" in stdout


def test_frozen_state_is_shared_and_theory_can_run_on_the_host(tmp_path, capsys, toy_families):
    path = tmp_path / "state.toml"
    path.write_text('model = "toy-state"\nseeds = 200\n[grid]\nscale = [1.0, 3.0]\n'
                    '[[check]]\nmetric = "dot"\nmax_abs_z = 4.0\n')
    code, stdout, err = _run(capsys, "run", path, "--out", tmp_path / "r", "--quiet",
                             "--no-plot")
    assert code == 0 and "PASS" in stdout, err + stdout
    sim = read_csv(tmp_path / "r" / "sim.csv")
    one = np.array([float(r["dot"]) for r in sim if r["scale"] == "1.0"])
    three = np.array([float(r["dot"]) for r in sim if r["scale"] == "3.0"])
    np.testing.assert_allclose(three, 3 * one, rtol=1e-12)  # same state, same draws
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    from rfsim.engine.keys import STATE_KEY_SCHEME, group_digests, state_key
    from rfsim.models import get_model

    assert get_model("toy-state").stateful and not get_model("toy-decay").stateful

    assert meta["state_key_scheme"] == STATE_KEY_SCHEME
    (record,) = meta["state_keys"]  # one static group: k = 5, every static data-defining
    want = jax.random.key_data(state_key(0, group_digests({"k": 5}, {})))
    assert record["key_data"] == [int(x) for x in np.asarray(want).ravel()]


def test_statics_that_are_not_plain_data_are_refused():
    """Two different callables used to collide (identified by __name__): now refused."""
    from rfsim.engine.experiment import from_dict, grid_points

    exp = from_dict({"model": "rf-ridge", "seeds": 2,
                     "params": {"d": 4, "N": 4, "n": 4}}, name="c")
    import dataclasses

    from rfsim.models import get_model
    from rfsim.engine.sweep import plan

    f = lambda z: jnp.tanh(z)  # noqa: E731
    g = lambda z: jnp.tanh(2 * z)  # noqa: E731
    for act in (f, g):
        bad = dataclasses.replace(exp, params={**exp.params, "activation": act})
        with pytest.raises(ValueError, match="activation must be plain data"):
            plan(get_model("rf-ridge"), grid_points(bad))


@model_config
class MeanConfig:
    n: int = static(8)
    mu: float = param(0.3)


@model_config
class ShrunkConfig:
    n: int = static(8)
    mu: float = param(0.3)
    shrink: float = param(0.5)


def _sample(key, cfg):
    return cfg.mu + jax.random.normal(key, (cfg.n,), jnp.result_type(float))


@pytest.fixture
def two_families(registry):
    register("toy-mean", MeanConfig,
             lambda key, cfg: {"sq_err": (jnp.mean(_sample(key, cfg)) - cfg.mu) ** 2},
             lambda cfg: {"sq_err": jnp.asarray(1.0 / cfg.n)}, metrics=("sq_err",))
    register("toy-shrunk", ShrunkConfig,
             lambda key, cfg: {"sq_err": (cfg.shrink * jnp.mean(_sample(key, cfg)) - cfg.mu)
                               ** 2},
             lambda cfg: {"sq_err": cfg.shrink ** 2 / cfg.n + (1 - cfg.shrink) ** 2 * cfg.mu ** 2},
             metrics=("sq_err",))


TWO = """models = ["toy-mean", "toy-shrunk"]
seeds = 400
[grid]
n = [4, 16]
[per_model.toy-shrunk]
shrink = {shrink}
[[check]]
name = "both families"
metric = "sq_err"
max_abs_z = 4.0
[[check]]
name = "the plain mean"
metric = "sq_err"
where = {{ model = "toy-mean" }}
[plot]
x = "n"
"""


def test_two_families_share_a_grid_tables_and_draws(tmp_path, capsys, two_families):
    path = tmp_path / "two.toml"
    path.write_text(TWO.format(shrink=0.5))
    code, stdout, err = _run(capsys, "run", path, "--out", tmp_path / "r", "--quiet")
    assert code == 0 and stdout.count("PASS") == 2, stdout + err
    rows = read_csv(tmp_path / "r" / "summary.csv")
    assert list(rows[0])[:4] == ["model", "n", "mu", "shrink"]
    assert [(r["model"], r["n"], r["shrink"]) for r in rows] == [
        ("toy-mean", "4", ""), ("toy-mean", "16", ""),
        ("toy-shrunk", "4", "0.5"), ("toy-shrunk", "16", "0.5")]
    assert (tmp_path / "r" / "figure.png").stat().st_size > 1000
    # common random numbers: at shrink = 1 the second family is the first, draw for draw
    path.write_text(TWO.format(shrink=1.0))
    _run(capsys, "run", path, "--out", tmp_path / "crn", "--quiet", "--no-plot")
    sim = read_csv(tmp_path / "crn" / "sim.csv")
    a = [r["sq_err"] for r in sim if r["model"] == "toy-mean"]
    b = [r["sq_err"] for r in sim if r["model"] == "toy-shrunk"]
    assert a == b and len(set(a)) == len(a)


def test_a_parameter_one_family_lacks_must_be_per_model(tmp_path, capsys, two_families):
    path = tmp_path / "two.toml"
    path.write_text(TWO.format(shrink=0.5).replace("[per_model.toy-shrunk]\n", "[params]\n"))
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "r")
    assert code == 2 and "unknown parameter 'shrink' for model 'toy-mean'" in err
    assert "[per_model.<family>]" in err and err.count("\n") == 1


COMPARE = """
[[check]]
name = "shrinking helps at small n"
kind = "compare"
metric = "sq_err"
numerator = "toy-shrunk"
denominator = "toy-mean"
below = {below}
where = {{ n = 4 }}
"""


def test_cross_family_claim_and_its_failing_twin(tmp_path, capsys, two_families):
    """At n = 4, mu = 0.3: shrink 0.5 gives 0.25/4 + 0.25*0.09 = 0.085 vs 0.25 for the plain
    mean, a ratio of 0.34.  'below 0.6' holds; 'below 0.25' (the twin) must FAIL."""
    path = tmp_path / "two.toml"
    for below, code_wanted, verdict in (("0.6", 0, "PASS"), ("0.25", 0, "FAIL")):
        path.write_text(TWO.format(shrink=0.5) + COMPARE.format(below=below))
        code, stdout, err = _run(capsys, "run", path, "--out", tmp_path / "r", "--quiet",
                                 "--no-plot")
        assert code == code_wanted, err
        line = next(x for x in stdout.splitlines() if "shrinking helps" in x)
        assert line.startswith(verdict) and "toy-shrunk/toy-mean" in line, line
        ratio = float(line.split("closest: ")[1].split(" ")[0])
        assert abs(ratio - 0.085 / 0.25) < 0.1  # 400 seeds: se of the ratio ~0.03


def test_cross_family_check_is_validated_before_compute(tmp_path, capsys, two_families):
    path = tmp_path / "two.toml"
    path.write_text(TWO.format(shrink=0.5) + COMPARE.format(below=0.6).replace(
        'denominator = "toy-mean"', 'denominator = "toy-mena"'))
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "r")
    assert code == 2 and "denominator must be one of the experiment's models" in err
    assert not (tmp_path / "r").exists()
