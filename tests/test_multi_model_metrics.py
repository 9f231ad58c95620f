"""Several families with different metrics over one grid (issue 12 item 4): one family has a
metric along an axis, the other only scalars.  The tables take the union of the metrics
(blank where a family has none), shards merge byte-identically, and each family's own
claims are checked (and fail for a wrong prediction)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.config import model_config, param, static
from rfsim.engine.io import read_csv
from rfsim.models import register
from helpers import run_cli


@model_config
class CurveConfig:
    steps: int = static(4, doc="time points 1, 10, 100, 1000")
    alpha: float = param(0.5, doc="curve(t) = t^-alpha (1 + 0.2 eps)")


def _t(cfg):
    return {"step": np.logspace(0, 3, cfg.steps)}


def _curve_simulate(key, cfg):
    t = jnp.asarray(_t(cfg)["step"], jnp.result_type(float))
    return {"curve": t ** (-cfg.alpha) * (1 + 0.2 * jax.random.normal(key, t.shape, t.dtype))}


def _curve_predict(cfg):
    t = jnp.asarray(_t(cfg)["step"], jnp.result_type(float))
    return {"curve": t ** (-cfg.alpha)}


@model_config
class LevelConfig:
    m: int = static(3)
    alpha: float = param(0.5, doc="level = alpha + 0.1 eps, twice")
    offset: float = param(0.0, doc="added to the prediction (a deliberately wrong theory)")


def _level_simulate(key, cfg):
    eps = jax.random.normal(key, (2,), jnp.result_type(float))
    return {"level": cfg.alpha + 0.1 * eps[0], "spread": 0.1 * jnp.abs(eps[1])}


def _level_predict(cfg):
    return {"level": cfg.alpha + cfg.offset}


@pytest.fixture
def families(registry):
    register("toy-curve", CurveConfig, _curve_simulate, _curve_predict, metrics=("curve",),
             axes={"curve": "step"}, coords=_t)
    register("toy-level", LevelConfig, _level_simulate, _level_predict,
             metrics=("level", "spread"))


EXPERIMENT = """models = ["toy-curve", "toy-level"]
seeds = 16
[grid]
alpha = [0.5, 1.0, 1.5]
[per_model.toy-level]
offset = {offset}
[[check]]
name = "curve"
metric = "curve"
where = {{ model = "toy-curve" }}
max_abs_z = 4.0
[[check]]
name = "level"
metric = "level"
where = {{ model = "toy-level" }}
max_abs_z = 4.0
[plot]
x = "alpha"
metric = "level"
"""


_run = run_cli


def test_families_with_different_metrics_run_merge_and_check(tmp_path, capsys, families):
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.format(offset=0.0))
    code, out, err = _run(capsys, "run", path, "--out", tmp_path / "full", "--quiet")
    assert code == 0, err
    assert out.count("PASS") == 2 and "FAIL" not in out, out
    sim = read_csv(tmp_path / "full" / "sim.csv")
    curve = [r for r in sim if r["model"] == "toy-curve"]
    level = [r for r in sim if r["model"] == "toy-level"]
    assert len(curve) == 3 * 16 * 4 and len(level) == 3 * 16  # one row per step / per seed
    assert all(r["level"] == "" and r["spread"] == "" and r["step"] != "" for r in curve)
    assert all(r["curve"] == "" and r["step"] == "" and r["m"] == "3" for r in level)
    summary = read_csv(tmp_path / "full" / "summary.csv")
    by_family = {m: sorted({r["metric"] for r in summary if r["model"] == m})
                 for m in ("toy-curve", "toy-level")}
    assert by_family == {"toy-curve": ["curve"], "toy-level": ["level", "spread"]}
    assert len(summary) == 3 * 4 + 3 * 2
    for i in range(2):
        code, _, err = _run(capsys, "run", path, "--out", tmp_path / f"s{i}", "--shard",
                            f"{i}/2", "--quiet", "--no-plot")
        assert code == 0, err
    code, out, err = _run(capsys, "merge", tmp_path / "s0", tmp_path / "s1", "--out",
                          tmp_path / "merged")
    assert code == 0 and out.count("PASS") == 2, (out, err)
    for name in ("sim.csv", "summary.csv"):
        assert (tmp_path / "merged" / name).read_bytes() == \
            (tmp_path / "full" / name).read_bytes(), name


def test_one_familys_wrong_prediction_fails_only_its_claim(tmp_path, capsys, families):
    path = tmp_path / "e.toml"
    path.write_text(EXPERIMENT.format(offset=0.3))  # 0.3 = 12 sem at 16 seeds
    code, out, err = _run(capsys, "run", path, "--out", tmp_path / "wrong", "--quiet",
                          "--no-plot")
    assert code == 0, err
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines()
             if line.startswith(("PASS", "FAIL"))}
    assert lines == {"curve": "PASS", "level": "FAIL"}, out


def test_per_model_tables_do_not_rename_the_experiment(tmp_path, families):
    """The experiment's name (default run directory, default check names) is the file's stem;
    a loop over [per_model.X] tables used to overwrite it with the last family's name."""
    from rfsim.engine.experiment import load_experiment

    path = tmp_path / "pair.toml"
    path.write_text(EXPERIMENT.format(offset=0.0))
    assert load_experiment(path).name == "pair"
