"""Plots of metrics along an axis (issue 12 item 2): a line never joins points that differ in
anything but x.  Every other varying column -- grid axes, the axis coordinates (``step``)
and the family -- is a series or a small-multiple panel; legend values are short, colours
follow the swept value, and more than MAX_CURVES curves make panels."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from rfsim.cli import main
from rfsim.config import model_config, param, static
from rfsim.engine.io import read_summary
from rfsim.models import register
from rfsim.plot import MAX_CURVES, draw, layout, short_labels

matplotlib.use("Agg", force=True)


@model_config
class StepsConfig:
    width: int = static(16, doc="a size: one static group per width")
    steps: int = static(5, doc="checkpoints 1, 2, 4, ... (log-spaced)")
    alpha: float = param(0.5)


def _steps(cfg):
    return {"step": 2.0 ** np.arange(cfg.steps)}


def _simulate(key, cfg):
    t = jnp.asarray(_steps(cfg)["step"], jnp.result_type(float))
    eps = jax.random.normal(key, t.shape, t.dtype)
    loss = t ** (-cfg.alpha) * (1 + 0.1 * eps) / jnp.sqrt(float(cfg.width))
    return {"loss": loss, "final": loss[-1]}


def _predict(cfg):
    t = jnp.asarray(_steps(cfg)["step"], jnp.result_type(float))
    return {"loss": t ** (-cfg.alpha) / jnp.sqrt(float(cfg.width))}


@pytest.fixture
def toy_steps(registry):
    register("toy-steps", StepsConfig, _simulate, _predict, metrics=("loss", "final"),
             axes={"loss": "step"}, coords=_steps)


def _run(tmp_path, capsys, text):
    path = tmp_path / "e.toml"
    path.write_text(text)
    code = main(["run", str(path), "--out", str(tmp_path / "r"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return read_summary(tmp_path / "r" / "summary.csv")


def _curves(fig):
    """Per panel: [(label, x values, colour)] of the drawn simulation series."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out.append([(c.get_label(), list(c.lines[0].get_xdata()), c.lines[0].get_color())
                    for c in ax.containers])
    return out


WIDE = """model = "toy-steps"
seeds = 3
[grid]
width = [16, 32, 64]
{extra}
[plot]
x = "width"
metric = "loss"
{plot}
"""


def test_x_on_a_grid_axis_draws_one_curve_per_step(tmp_path, capsys, toy_steps):
    """wide-training's case: x = width, loss along step.  Before, every step was merged into
    one zig-zag series of 15 points; now one curve per step, each with 3 distinct widths."""
    rows = _run(tmp_path, capsys, WIDE.format(extra="", plot=""))
    fig = draw(rows, {"x": "width", "metric": "loss"}, grid_axes=["width"])
    (panel,) = _curves(fig)
    steps = sorted({float(r["step"]) for r in rows if r["metric"] == "loss"})
    assert len(panel) == len(steps) == 5
    assert sorted(label for label, _, _ in panel) == sorted(f"step={s:g}" for s in steps)
    for _, xs, _ in panel:
        assert xs == sorted(set(xs)) == [16.0, 32.0, 64.0]
    theory = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "theory"]
    assert len(theory) == 5 and all(np.all(np.diff(ln.get_xdata()) > 0) for ln in theory)
    assert (tmp_path / "r" / "figure.png").stat().st_size > 1000  # plot_run drew it too


def test_more_than_max_curves_become_small_multiples(tmp_path, capsys, toy_steps):
    """5 steps x 2 alphas = 10 curves > MAX_CURVES: alpha becomes panels (each a complete
    family of step curves); alpha = sqrt(2) is labelled 1.41."""
    rows = _run(tmp_path, capsys, WIDE.format(extra="alpha = [1.4142135623730951, 0.5]",
                                              plot=""))
    fig = draw(rows, {"x": "width", "metric": "loss"}, grid_axes=["width", "alpha"])
    panels = _curves(fig)
    assert len(panels) == 2 and all(len(p) == 5 for p in panels)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_visible())
    assert titles == ["alpha=0.5", "alpha=1.41"]
    for panel in panels:
        for _, xs, _ in panel:
            assert xs == sorted(set(xs))


def test_listed_series_keep_their_order_and_overflow_to_panels(tmp_path, capsys, toy_steps):
    rows = _run(tmp_path, capsys, WIDE.format(extra="alpha = [0.25, 0.5]",
                                              plot='series = ["alpha"]'))
    spec = {"x": "width", "metric": "loss", "series": ["alpha"]}
    panels = _curves(draw(rows, spec, grid_axes=["width", "alpha"]))
    # alpha is the series (2 curves); step, unlisted but varying, makes 5 panels
    assert len(panels) == 5 and all(sorted(lb for lb, _, _ in p) == ["alpha=0.25", "alpha=0.5"]
                                    for p in panels)


def test_colours_follow_the_swept_value(tmp_path, capsys, toy_steps):
    rows = _run(tmp_path, capsys, WIDE.format(extra="", plot=""))
    (panel,) = _curves(draw(rows, {"x": "width", "metric": "loss"}, grid_axes=["width"]))
    cmap = matplotlib.colormaps["viridis"]
    by_step = sorted(panel, key=lambda c: float(c[0].split("=")[1]))
    for j, (_, _, colour) in enumerate(by_step):
        np.testing.assert_allclose(matplotlib.colors.to_rgba(colour),
                                   cmap(0.85 * j / (len(by_step) - 1)))


def test_plot_where_selects_rows(tmp_path, capsys, toy_steps):
    rows = _run(tmp_path, capsys, WIDE.format(extra="", plot="where = { step = [1, 16] }"))
    spec = {"x": "width", "metric": "loss", "where": {"step": [1, 16]}}
    (panel,) = _curves(draw(rows, spec, grid_axes=["width"]))
    assert sorted(lb for lb, _, _ in panel) == ["step=1", "step=16"]


def test_layout_rule():
    names = ["model", "n", "shrink", "step"]
    combos = {(m, n, "" if m == "a" else "0.5", s) for m in "ab" for n in "1234"
              for s in ("1", "2")}
    series, panels = layout(names, combos)
    # the family first; shrink is determined by the family (no panel of its own)
    assert series[0] == "model" and "shrink" not in panels
    assert set(series + panels) >= {"model", "n", "step"}
    n_curves = len({tuple(c[names.index(s)] for s in series) for c in combos})
    assert n_curves <= MAX_CURVES or len(series) == 2  # model + the first ramp
    # one column with many values stays one ramp in one panel
    assert layout(["step"], {(str(i),) for i in range(9)}) == (["step"], [])


def test_short_labels_stay_distinct():
    assert short_labels(["1.4142135623730951", "2.0"]) == {"1.4142135623730951": "1.41",
                                                           "2.0": "2"}
    labels = short_labels(["0.1", "0.10001"])
    assert len(set(labels.values())) == 2
    assert short_labels(["relu", "tanh"]) == {"relu": "relu", "tanh": "tanh"}
    assert short_labels(["64", "1024", "1234.5678"]) == {"64": "64", "1024": "1024",
                                                        "1234.5678": "1235"}
