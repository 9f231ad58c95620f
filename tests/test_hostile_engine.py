"""The engine under hostile input (issue 12): canonical values in point ids, row caps that
count axis coordinates, and a prediction that cannot be formed refused before the
simulation runs (never after, losing it)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.config import model_config, param, static
from rfsim.models import register
from helpers import run_cli


@model_config
class ScaledConfig:
    k: int = static(3)
    scale: float = static(1.0, doc="a real-valued static (like w_std)")
    noise: float = param(0.1)


def _scaled_simulate(key, cfg):
    return {"value": cfg.scale + cfg.noise * jax.random.normal(key, (), jnp.result_type(float))}


def _scaled_predict(cfg):
    return {"value": jnp.asarray(cfg.scale, jnp.result_type(float))}


@pytest.fixture
def scaled(registry):
    register("toy-scaled", ScaledConfig, _scaled_simulate, _scaled_predict, metrics=("value",))


_run = run_cli


def test_an_integer_spelling_of_a_real_static_is_the_same_point(tmp_path, capsys, scaled):
    """``--set scale=2`` into a directory made with ``scale = 2.0`` reuses every point (the
    ids hashed the raw value: 2 and 2.0 were two points with different draws)."""
    path = tmp_path / "e.toml"
    path.write_text('model = "toy-scaled"\nseeds = 4\n[params]\nscale = 2.0\n'
                    '[grid]\nnoise = [0.1, 0.2]\n')
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "run", path, "--out", out, "--quiet", "--no-plot")
    assert code == 0 and "2 computed, 0 reused" in stdout, (stdout, err)
    sim = (out / "sim.csv").read_bytes()
    code, stdout, err = _run(capsys, "run", path, "--out", out, "--quiet", "--no-plot",
                             "--set", "scale=2")
    assert code == 0 and "0 computed, 2 reused" in stdout, (stdout, err)
    assert (out / "sim.csv").read_bytes() == sim
    assert len(list((out / "points").glob("*.json"))) == 2  # no orphan duplicates


@model_config
class AxisConfig:
    steps: int = static(4, doc="coordinates along the axis")


def _axis_coords(cfg):
    return {"step": np.arange(1, cfg.steps + 1, dtype=float)}


def _axis_simulate(key, cfg):
    return {"curve": jax.random.normal(key, (cfg.steps,), jnp.result_type(float))}


@pytest.fixture
def axis_family(registry):
    register("toy-axis", AxisConfig, _axis_simulate, None, metrics=("curve",),
             axes={"curve": "step"}, coords=_axis_coords)


def test_the_row_cap_counts_axis_coordinates(tmp_path, capsys, axis_family):
    """10^3 points x 10^3 seeds is within the cap of 10^8 rows, but with 10^3 coordinates per
    seed sim.csv would have 10^9 rows: refused before anything is computed or written."""
    path = tmp_path / "e.toml"
    steps = ", ".join(str(1000 + i) for i in range(1000))  # 1000 static groups
    path.write_text(f'model = "toy-axis"\nseeds = 1000\n[grid]\nsteps = [{steps}]\n')
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--dry-run")
    assert code == 2 and err.count("\n") == 1, err
    assert "rows of sim.csv" in err and "1,499,500,000" in err, err
    assert not (tmp_path / "out").exists()


@model_config
class FragileConfig:
    k: int = static(3)
    scale: float = param(1.0)


SIMULATED = []


def _fragile_simulate(key, cfg):
    jax.debug.callback(lambda: SIMULATED.append(1))
    return {"value": cfg.scale * jax.random.normal(key, (), jnp.result_type(float))}


def _fragile_predict(cfg, state=None):
    return {"value": float(10.0 ** (400 * cfg.scale))}  # OverflowError on the host


@pytest.fixture
def fragile(registry):
    register("toy-fragile", FragileConfig, _fragile_simulate, _fragile_predict,
             metrics=("value",), predict_jit=False)


def test_a_prediction_that_cannot_be_formed_stops_before_the_simulation(tmp_path, capsys,
                                                                         fragile):
    SIMULATED.clear()
    path = tmp_path / "e.toml"
    path.write_text('model = "toy-fragile"\nseeds = 2\n[params]\nscale = 2.0\n')
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--no-plot")
    assert code == 2 and err.count("\n") == 1, err
    assert "prediction cannot be computed for (k=3)" in err and "OverflowError" in err, err
    assert SIMULATED == []  # nothing was spent on a simulation the run could not keep


def _nan_predict(cfg):
    return {"value": jnp.where(cfg.noise > 0.15, jnp.nan, cfg.scale)}


def test_a_nan_prediction_is_reported_not_written_silently(tmp_path, capsys, registry):
    register("toy-nan", ScaledConfig, _scaled_simulate, _nan_predict, metrics=("value",))
    path = tmp_path / "e.toml"
    path.write_text('model = "toy-nan"\nseeds = 3\n[grid]\nnoise = [0.1, 0.2]\n')
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--quiet",
                        "--no-plot")
    assert code == 3, err
    assert "1 prediction(s) are NaN" in err and "noise=0.2" in err, err
    rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert len(rows) == 3  # both points are in the table, the NaN theory cell blank


def test_an_integer_beyond_float_range_is_one_line(tmp_path, capsys, scaled):
    path = tmp_path / "e.toml"
    path.write_text('model = "toy-scaled"\nseeds = 2\n')
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--dry-run",
                        "--set", "scale=1" + "0" * 400)
    assert code == 2 and err.count("\n") == 1 and "scale must be a finite number" in err, err


def test_dry_run_states_the_memory_estimate(tmp_path, capsys):
    """linear-ridge's working set: 2 n d + 5 min(n, d)^2 + 4 (n + d) floats of 8 bytes
    (X drawn and scaled, the Gram matrix, its eigenvectors and workspace) = 12.2 MB."""
    path = tmp_path / "e.toml"
    path.write_text('model = "linear-ridge"\nseeds = 2\n[params]\nd = 1000\nn = 400\n')
    code, out, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--dry-run")
    assert code == 0, err
    assert "memory: about 12.2 MB per seed" in out, out


def test_a_claim_on_a_metric_a_host_predict_lacks_is_refused_before_compute(tmp_path, capsys):
    """wide-training predicts on the host (predict_jit=False) and declares what it predicts,
    so a statistical claim on lin_error (no prediction) is refused by --dry-run."""
    path = tmp_path / "e.toml"
    path.write_text('model = "wide-training"\nseeds = 2\n[params]\nwidth = 16\nsteps = 64\n'
                    '[[check]]\nkind = "statistical"\nmetric = "lin_error"\n')
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "out", "--dry-run")
    assert code == 2 and err.count("\n") == 1, err
    assert "no prediction of 'lin_error'" in err, err


def test_a_declared_prediction_that_predict_does_not_return_is_caught(registry):
    from rfsim.engine.sweep import plan, run_points

    model = register("toy-liar", ScaledConfig, _scaled_simulate, _scaled_predict,
                     metrics=("value",), predicts=())
    with pytest.raises(RuntimeError, match="declares predicts"):
        run_points(model, plan(model, [{}]), seeds=2)


def test_predicts_must_name_metrics(registry):
    with pytest.raises(ValueError, match="not among its metrics"):
        register("toy-bad", ScaledConfig, _scaled_simulate, _scaled_predict,
                 metrics=("value",), predicts=("other",))
