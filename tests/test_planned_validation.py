"""Checks and plots validated against the planned grid, before compute (issue 12 items 10,
11, 13): each bad case is exit 2 with one line on stderr naming the field, the value and
what exists, from `--dry-run` (which runs only `prepare`), and nothing is written."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.cli import main
from rfsim.config import model_config, param, static
from rfsim.models import register


@model_config
class StepsConfig:
    width: int = static(16)
    steps: int = static(5, doc="checkpoints 1, 2, 4, 8, 16")
    alpha: float = param(0.5)
    ridge: float = param(0.1)


def _steps(cfg):
    return {"step": 2.0 ** np.arange(cfg.steps)}


def _simulate(key, cfg):
    t = jnp.asarray(_steps(cfg)["step"], jnp.result_type(float))
    loss = t ** (-cfg.alpha) * (1 + 0.1 * jax.random.normal(key, t.shape, t.dtype))
    return {"loss": loss, "final": loss[-1]}


def _predict(cfg):  # no prediction of "final": on purpose
    t = jnp.asarray(_steps(cfg)["step"], jnp.result_type(float))
    return {"loss": t ** (-cfg.alpha)}


@model_config
class MeanConfig:
    n: int = static(8)
    mu: float = param(0.3)


def _mean_sim(key, cfg):
    return {"sq_err": jnp.mean(cfg.mu + jax.random.normal(key, (cfg.n,),
                                                          jnp.result_type(float))) ** 2}


@pytest.fixture
def toys(registry):
    register("toy-steps", StepsConfig, _simulate, _predict, metrics=("loss", "final"),
             axes={"loss": "step"}, coords=_steps)
    for name in ("toy-a", "toy-b"):
        register(name, MeanConfig, _mean_sim, lambda cfg: {"sq_err": cfg.mu ** 2},
                 metrics=("sq_err",))


STEPS = """model = "toy-steps"
seeds = 3
[grid]
width = [16, 32, 64]
alpha = [0.5, 1.0]
"""


def _dry_run(tmp_path, capsys, text):
    path = tmp_path / "e.toml"
    path.write_text(text)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    assert not (tmp_path / "out").exists()
    return code, captured.out, captured.err


def _refused(tmp_path, capsys, text, *messages):
    code, out, err = _dry_run(tmp_path, capsys, text)
    assert code == 2, out + err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for m in messages:
        assert m in err, err
    return err


def _accepted(tmp_path, capsys, text):
    code, out, err = _dry_run(tmp_path, capsys, text)
    assert code == 0, err
    return out


# --- item 10: `where` against the axis coordinates ------------------------------------------

def test_where_on_an_axis_coordinate_that_does_not_exist(tmp_path, capsys, toys):
    check = '[[check]]\nname = "late"\nmetric = "loss"\nwhere = {{ step = {} }}\n'
    _accepted(tmp_path, capsys, STEPS + check.format(16))
    _refused(tmp_path, capsys, STEPS + check.format(99999),
             "check 'late': where step = 99999 matches no grid point",
             "takes 1.0, 2.0, 4.0, 8.0, 16.0")


def test_where_on_an_axis_the_metric_does_not_have(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, STEPS + '[[check]]\nkind = "threshold"\nmetric = "final"\n'
             'x = "width"\nbelow = 1.0\nwhere = { step = 16 }\n',
             "where names 'step', which is blank on the rows of 'final'",
             "the metrics along step are loss")


def test_plot_where_is_validated_too(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, STEPS + '[plot]\nx = "width"\nmetric = "loss"\n'
             'where = { step = 3 }\n', "plot: where step = 3 matches no grid point")


@pytest.mark.parametrize("text,message", [
    ('model = "signal-propagation"\nseeds = 2\n[params]\nwidth = 16\ndepth = 4\nd = 4\n'
     '[[check]]\nmetric = "c"\nwhere = { layer = 2.5 }\n',
     "where layer = 2.5 matches no grid point (layer, the axis of 'c', takes 1, 2, 3, 4)"),
    ('model = "wide-training"\nseeds = 2\n[params]\nsteps = 16\nn_times = 5\n[grid]\n'
     'width = [16, 32, 64]\n[[check]]\nmetric = "prediction"\nwhere = { step = 99999 }\n',
     "where step = 99999 matches no grid point (step, the axis of 'prediction', takes 1, "),
])
def test_shipped_axis_families(tmp_path, capsys, text, message):
    _refused(tmp_path, capsys, text, message)


# --- item 11: checks that could never be evaluated ------------------------------------------

RIDGE = """model = "linear-ridge"
seeds = 3
[params]
d = 8
[grid]
n = [4, 12]
ridge = [0.0, 0.1]
[[check]]
kind = "bound"
metric = "excess_risk"
bound = "1 / ridge"
"""


def test_bound_that_is_infinite_on_the_grid(tmp_path, capsys):
    _refused(tmp_path, capsys, RIDGE, "bound `1 / ridge` is undefined at ridge = 0.0",
             "division by zero")
    _accepted(tmp_path, capsys, RIDGE + "where = { ridge = 0.1 }\n")


def test_bound_naming_the_axis_is_evaluated_at_every_coordinate(tmp_path, capsys, toys):
    check = '[[check]]\nkind = "bound"\nmetric = "loss"\nbound = "{}"\n'
    _accepted(tmp_path, capsys, STEPS + check.format("2 / sqrt(step)"))
    _refused(tmp_path, capsys, STEPS + check.format("1 / log(step)"),
             "bound `1 / log(step)` is undefined at step = 1.0")


def test_statistical_on_a_metric_without_prediction(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, STEPS + '[[check]]\nmetric = "final"\n',
             "a statistical check compares the simulation with the prediction, but family "
             "'toy-steps' has no prediction of 'final' (its predict returns loss)")
    _refused(tmp_path, capsys, STEPS + '[[check]]\nkind = "bound"\nmetric = "final"\n'
             'bound = "theory"\n', "has no prediction of 'final'")
    _refused(tmp_path, capsys, STEPS + '[[check]]\nkind = "monotone"\nmetric = "final"\n'
             'x = "width"\nvalue = "theory"\n', "has no prediction of 'final'")
    _accepted(tmp_path, capsys, STEPS + '[[check]]\nkind = "monotone"\nmetric = "final"\n'
              'x = "width"\n')


def test_statistical_on_mlp_kernel_which_has_no_predict(tmp_path, capsys):
    _refused(tmp_path, capsys, 'model = "mlp-kernel"\nseeds = 2\n[params]\nd = 4\n'
             'n_inputs = 4\n[grid]\nwidth = [16, 32, 64]\n[[check]]\nmetric = "ntk_error"\n',
             "has no prediction of 'ntk_error' (it has no predict)")


TWO = """models = ["toy-a", "toy-b"]
seeds = 3
[grid]
n = [4, 8]
[per_model.toy-a]
mu = 0.3
[per_model.toy-b]
mu = {mu}
[[check]]
kind = "compare"
metric = "sq_err"
numerator = "toy-a"
denominator = "toy-b"
below = 2.0
"""


def test_compare_with_no_shared_grid_point(tmp_path, capsys, toys):
    _accepted(tmp_path, capsys, TWO.format(mu=0.3))
    _refused(tmp_path, capsys, TWO.format(mu=0.5),
             "'toy-a' and 'toy-b' share no grid point of 'sq_err' (compared on n, mu)")


def test_where_that_selects_nothing_together(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, TWO.format(mu=0.5).split("[[check]]")[0]
             + '[[check]]\nmetric = "sq_err"\nwhere = { model = "toy-a", mu = 0.5 }\n',
             "where { model = 'toy-a', mu = 0.5 } selects no row of 'sq_err'")


def test_plot_x_model_is_refused_before_compute(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, TWO.format(mu=0.3) + '[plot]\nx = "model"\n',
             "plot x must be a numeric parameter or axis, got 'model'")


@pytest.mark.parametrize("check,message", [
    ('kind = "monotone"\nmetric = "loss"\nx = "width"\nwhere = { width = 16 }',
     "a monotone check needs >= 2 values of width on every curve"),
    ('kind = "rate"\nmetric = "loss"\nx = "step"\nexpected = -0.5\ntolerance = 0.1\n'
     'x_max = 2', "a rate needs >= 3 values of step in [-inf, 2] on every curve"),
    ('kind = "rate"\nmetric = "loss"\nx = "step"\nexpected = -0.5\ntolerance = 0.1\n'
     'where = { step = [1, 2] }', "a rate needs >= 3 values of step on every curve"),
    ('kind = "monotone"\nmetric = "loss"\nx = "width"\noptimize = "alpha"\n'
     'argmin_of = "final"', "argmin_of 'final' is a scalar but 'loss' is along step"),
    ('kind = "threshold"\nmetric = "final"\nx = "step"\nbelow = 1.0',
     "x = 'step' is blank on the rows of 'final' (a scalar metric)"),
])
def test_curve_checks_that_cannot_be_evaluated(tmp_path, capsys, toys, check, message):
    _refused(tmp_path, capsys, STEPS + "[[check]]\n" + check + "\n", message)


def test_rate_on_the_mean_needs_two_seeds(tmp_path, capsys, toys):
    _refused(tmp_path, capsys, STEPS.replace("seeds = 3", "seeds = 1") + '[[check]]\n'
             'kind = "rate"\nmetric = "loss"\nx = "step"\nexpected = -0.5\ntolerance = 0.1\n',
             "needs seeds >= 2, got seeds = 1")


@pytest.mark.parametrize("plot,message", [
    ('x = "step"\nmetric = "final"', "plot x = 'step' is blank on the rows of 'final'"),
    ('x = "ridge"\nlogx = true', "plot logx = true, but ridge takes 0"),
])
def test_plots_that_cannot_be_drawn(tmp_path, capsys, toys, plot, message):
    text = STEPS.replace("alpha = [0.5, 1.0]", "alpha = [0.5, 1.0]\nridge = [0.0, 0.1]")
    _refused(tmp_path, capsys, text + "[plot]\n" + plot + "\n", message)


# --- item 13: a typo in `models` -------------------------------------------------------------

def test_typo_in_models_points_at_models(tmp_path, capsys):
    err = _refused(tmp_path, capsys,
                   'models = ["mlp-kernel", "structured-weight"]\nseeds = 2\n'
                   '[per_model.structured-weights]\nwidth = 16\n',
                   "models names an unknown family 'structured-weight' (did you mean "
                   "'structured-weights'?)")
    assert "[per_model" not in err


def test_shipped_experiments_still_validate(capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "experiments"
    for path in sorted(root.glob("*.toml")):
        for extra in ([], ["--quick"]):
            code = main(["run", str(path), "--dry-run", *extra])
            assert code == 0, (path, capsys.readouterr().err)


def test_monotone_with_one_point_per_curve_is_a_fail_not_a_crash():
    """Refused before compute (above); evaluated directly it is a FAIL with a reason (it
    raised TypeError: cannot unpack None)."""
    from rfsim.check import evaluate

    rows = [{"N": "10", "metric": "risk", "mean": "1.0", "sem": "0.1", "theory": "1.0"}]
    v = evaluate(rows, {"kind": "monotone", "metric": "risk", "x": "N"})
    assert not v.passed and "needs >= 2 values of N" in v.figure
