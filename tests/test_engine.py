"""The sweep engine and run directories: keys, chunking, shards, merge, resume, non-finite."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.config import model_config, param, static
from rfsim.engine.experiment import from_dict
from rfsim.engine.io import read_csv
from rfsim.models import register
from rfsim.engine.runner import merge_runs, run_experiment

SMALL = {
    "model": "linear-ridge",
    "seeds": 5,
    "params": {"d": 16, "noise": 0.5},
    "grid": {"n": [8, 24, 40], "ridge": [0.0, 0.1]},
    "check": [{"metric": "excess_risk", "max_abs_z": 4.0, "rel_tol": 0.3}],
}


def _exp(**changes):
    return from_dict({**SMALL, **changes}, name="small")


def _table(path, name):
    return (path / name).read_text()


def test_summary_columns_and_rows(tmp_path):
    res = run_experiment(_exp(), out=tmp_path / "run", plot=False)
    rows = read_csv(tmp_path / "run" / "summary.csv")
    assert list(rows[0]) == ["n", "d", "ridge", "noise", "signal", "spectrum_decay",
                             "target_decay", "metric", "mean", "std", "sem", "n_seeds",
                             "theory", "rel_err", "z"]
    assert len(rows) == 3 * 2 * 3  # points x metrics
    sim = read_csv(tmp_path / "run" / "sim.csv")
    assert len(sim) == 3 * 2 * 5 and sorted({r["seed"] for r in sim}) == list("01234")
    r = rows[0]
    mean, theory, sem = float(r["mean"]), float(r["theory"]), float(r["sem"])
    assert float(r["z"]) == pytest.approx((mean - theory) / sem, rel=1e-12)
    assert float(r["rel_err"]) == pytest.approx((mean - theory) / abs(theory), rel=1e-12)
    values = [float(s["excess_risk"]) for s in sim if s["n"] == r["n"] and s["ridge"] == r["ridge"]]
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert sem == pytest.approx(np.std(values, ddof=1) / np.sqrt(5), rel=1e-12)
    assert res.computed == 6 and res.reused == 0
    meta = json.loads(_table(tmp_path / "run", "meta.json"))
    for key in ("command_line", "versions", "x64", "git", "utc_time", "wall_time_s", "key_scheme",
                "root_seed", "seeds", "devices", "backend", "prng_impl", "matmul_precision"):
        assert key in meta


def test_results_do_not_depend_on_chunk_size(tmp_path):
    run_experiment(_exp(), out=tmp_path / "a", chunk_size=2, plot=False)
    run_experiment(_exp(), out=tmp_path / "b", chunk_size=8, plot=False)
    assert _table(tmp_path / "a", "sim.csv") == _table(tmp_path / "b", "sim.csv")  # exactly


def test_shards_merge_to_the_full_run(tmp_path):
    full = run_experiment(_exp(), out=tmp_path / "full", plot=False)
    for i in range(3):
        run_experiment(_exp(), out=tmp_path / f"s{i}", shard=(i, 3), plot=False)
    merged = merge_runs([tmp_path / f"s{i}" for i in range(3)], tmp_path / "merged", plot=False)
    assert merged.computed == 0
    for a, b in zip(full.summary, merged.summary):
        assert a.keys() == b.keys()
        assert float(a["mean"]) == pytest.approx(float(b["mean"]), rel=1e-10)
    with pytest.raises(ValueError, match="grid points have no result"):
        merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "partial", plot=False)


def test_killed_run_resumes_without_recomputing(tmp_path):
    reference = run_experiment(_exp(), out=tmp_path / "ref", plot=False)
    done = []

    def die_after_two_groups(results):
        done.append(results)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(_exp(), out=tmp_path / "run", on_group_done=die_after_two_groups)
    assert len(list((tmp_path / "run" / "points").glob("*.json"))) == 4  # 2 groups x 2 ridges
    resumed = run_experiment(_exp(), out=tmp_path / "run", plot=False)
    assert (resumed.computed, resumed.reused) == (2, 4)
    assert _table(tmp_path / "run", "summary.csv") == _table(tmp_path / "ref", "summary.csv")
    again = run_experiment(_exp(), out=tmp_path / "run", plot=False)
    assert again.computed == 0
    assert reference.summary == again.summary


def test_ridges_share_training_sets_within_a_seed(tmp_path):
    """Common random numbers: at ridge -> huge, every ridge point sees the same data (key
    scheme), so the train MSE equals the mean of y^2 for the same draw."""
    exp = _exp(grid={"n": [24], "ridge": [1e6, 1e7]}, seeds=3)
    run_experiment(exp, out=tmp_path / "r", plot=False)
    sim = read_csv(tmp_path / "r" / "sim.csv")
    by_seed = {}
    for r in sim:
        by_seed.setdefault(r["seed"], []).append(float(r["train_mse"]))
    for values in by_seed.values():
        assert values[0] == pytest.approx(values[1], rel=1e-5)
    assert len({round(v[0], 8) for v in by_seed.values()}) == 3  # but seeds differ


@model_config
class ToyConfig:
    n: int = static(4)
    scale: float = param(1.0)


def _toy_simulate(key, cfg):
    x = jax.random.normal(key, ()) * cfg.scale
    return {"value": jnp.where(x > 1.0, jnp.nan, x)}  # NaN for some seeds


register("nan-toy", ToyConfig, _toy_simulate, lambda cfg: {"value": jnp.asarray(0.0)},
         metrics=("value",))


def test_nonfinite_results_are_reported_and_left_blank(tmp_path):
    exp = from_dict({"model": "nan-toy", "seeds": 12, "grid": {"scale": [1.0, 2.0]}}, name="t")
    res = run_experiment(exp, out=tmp_path / "t", plot=False)
    assert res.nonfinite, "some draws exceed 1 and must be reported"
    sim = read_csv(tmp_path / "t" / "sim.csv")
    blanks = sum(r["value"] == "" for r in sim)
    assert blanks == sum(len(b["seeds"]) for b in res.nonfinite)
    assert "nan" not in _table(tmp_path / "t", "sim.csv").lower()
    rows = read_csv(tmp_path / "t" / "summary.csv")
    assert sum(int(r["n_seeds"]) for r in rows) == 24 - blanks
    meta = json.loads(_table(tmp_path / "t", "meta.json"))
    assert meta["nonfinite"] == res.nonfinite


def test_list_valued_parameters_via_set():
    """--set widths=[30,20] fixes a list-valued parameter; [[30],[30,20]] sweeps it."""
    from rfsim.engine.experiment import apply_overrides

    base = from_dict({"model": "deep-rf", "seeds": 2,
                      "params": {"d": 10, "n": 20, "widths": [8]}}, name="w")
    fixed = apply_overrides(base, ["widths=[30,20]"])
    assert fixed.params["widths"] == [30, 20] and "widths" not in fixed.grid
    swept = apply_overrides(base, ["widths=[[30],[30,20]]"])
    assert swept.grid["widths"] == [[30], [30, 20]]
    with pytest.raises(ValueError, match=r"widths\[1\] must be an integer >= 1, got -2"):
        apply_overrides(base, ["widths=[30,-2]"])
