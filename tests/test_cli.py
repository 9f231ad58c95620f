"""The command line: one-line errors with exit code 2, check verdicts, plot, merge, info."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli

EXPERIMENT = """
model = "linear-ridge"
seeds = 12
[params]
d = 30
noise = 0.5
[grid]
n = [10, 60]
ridge = [0.0, 0.1]
[[check]]
name = "small"
metric = "excess_risk"
max_abs_z = 4.0
rel_tol = 0.1
[plot]
x = "n"
"""


@pytest.fixture
def exp_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(EXPERIMENT)
    return path


_run = run_cli


def test_run_writes_the_run_directory(tmp_path, exp_file, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(capsys, "run", exp_file, "--out", out, "--quiet")
    assert code == 0
    for name in ("sim.csv", "summary.csv", "meta.json", "config.toml", "figure.png", "figure.pdf"):
        assert (out / name).is_file(), name
    assert (out / "config.toml").read_text() == EXPERIMENT
    assert "PASS" in stdout and f"run directory: {out}" in stdout


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--set", "ridge=-1"], "error: ridge must be >= 0, got -1\n"),
        (["--set", "n=0"], "error: n must be an integer >= 1, got 0\n"),
        (["--set", "noise=nan"], "error: noise must be finite, got nan\n"),
        (["--set", "rdige=0.1"], "error: unknown parameter 'rdige' for model 'linear-ridge' "
                                 "(did you mean 'ridge'?)"),
        (["--seeds", "0"], "error: seeds must be an integer >= 1, got 0\n"),
        (["--shard", "3/2"], "error: shard must be i/N with 0 <= i < N, got '3/2'\n"),
        (["--set", "d=2.5"], "error: d must be an integer >= 1, got 2.5"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, exp_file, capsys, extra,
                                                          message):
    out = tmp_path / "run"
    code, _, _ = _run(capsys, "run", exp_file, "--out", out, "--quiet", "--no-plot")
    before = (out / "summary.csv").read_text()
    code, stdout, stderr = _run(capsys, "run", exp_file, "--out", out, "--quiet", *extra)
    assert code == 2
    assert stderr.startswith(message) and stderr.count("\n") == 1, stderr
    assert (out / "summary.csv").read_text() == before  # nothing already written lost


def test_unknown_model_and_malformed_toml(tmp_path, capsys):
    bad_model = tmp_path / "m.toml"
    bad_model.write_text('model = "linear-rigde"\n[params]\nn = 3\nd = 3\n')
    code, _, err = _run(capsys, "run", bad_model)
    assert code == 2 and "did you mean 'linear-ridge'?" in err and err.count("\n") == 1
    broken = tmp_path / "b.toml"
    broken.write_text('model = "linear-ridge"\n[params]\nn = = 3\n')
    code, _, err = _run(capsys, "run", broken)
    assert code == 2 and "line 3" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "run", tmp_path / "missing.toml")
    assert code == 2 and "does not exist" in err


def test_check_passes_and_its_twin_fails(tmp_path, exp_file, capsys):
    args = ["check", "--dir", tmp_path, "--out-root", tmp_path / "checks", "--quiet"]
    code, stdout, _ = _run(capsys, *args, "--full")
    assert code == 0 and "PASS  small" in stdout
    code, stdout, _ = _run(capsys, *args, "--full", "--perturb", "1.5")
    assert code == 1 and "FAIL  small" in stdout


def test_plot_merge_and_info(tmp_path, exp_file, capsys):
    for i in range(2):
        _run(capsys, "run", exp_file, "--out", tmp_path / f"s{i}", "--shard", f"{i}/2", "--quiet")
    code, stdout, _ = _run(capsys, "merge", tmp_path / "s0", tmp_path / "s1", "--out",
                           tmp_path / "m")
    assert code == 0 and "2 reused" not in stdout and (tmp_path / "m" / "summary.csv").is_file()
    (tmp_path / "m" / "figure.png").unlink()
    code, stdout, _ = _run(capsys, "plot", tmp_path / "m")
    assert code == 0 and (tmp_path / "m" / "figure.png").stat().st_size > 1000
    code, stdout, _ = _run(capsys, "info")
    assert code == 0 and "linear-ridge" in stdout and "jax" in stdout


def test_console_script_has_no_traceback(tmp_path):
    """The installed entry point: --help works; a bad value is one line, exit 2."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    exe = [sys.executable, "-m", "rfsim.cli"]
    assert subprocess.run(exe + ["--help"], capture_output=True, env=env).returncode == 0
    path = tmp_path / "x.toml"
    path.write_text(EXPERIMENT)
    proc = subprocess.run(exe + ["run", str(path), "--set", "ridge=-1"], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "error: ridge must be >= 0, got -1\n"
    assert not Path(tmp_path / "runs").exists()


def test_shipped_check_passes_and_fails_when_prediction_is_5_percent_off(tmp_path, capsys):
    """`rfsim check` on a shipped experiment (quick mode): PASS, and exit 1 at 1.05x theory."""
    args = ["check", "--only", "linear_ridge_powerlaw", "--out-root", tmp_path, "--quiet"]
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and "all claims PASS" in stdout
    code, stdout, _ = _run(capsys, *args, "--perturb", "1.05")
    assert code == 1 and "FAIL" in stdout


@pytest.mark.slow
def test_every_shipped_claim_passes_in_quick_mode(tmp_path, capsys):
    code, stdout, _ = _run(capsys, "check", "--out-root", tmp_path, "--quiet")
    assert code == 0, stdout


def test_bad_check_table_is_caught_before_compute(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(EXPERIMENT.replace("max_abs_z = 4.0", "max_abs_zz = 4.0"))
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "o")
    assert code == 2 and "unknown check key 'max_abs_zz' (did you mean 'max_abs_z'?)" in err
    path.write_text(EXPERIMENT.replace('metric = "excess_risk"', 'metric = "excess_rsik"'))
    code, _, err = _run(capsys, "run", path, "--out", tmp_path / "o")
    assert code == 2 and "did you mean 'excess_risk'?" in err and not (tmp_path / "o").exists()


def test_empty_set_list_and_bad_plot_fail_before_compute(tmp_path, exp_file, capsys):
    out = tmp_path / "run"
    _run(capsys, "run", exp_file, "--out", out, "--quiet", "--no-plot")
    before = (out / "summary.csv").read_text()
    code, _, err = _run(capsys, "run", exp_file, "--out", out, "--set", "ridge=[]")
    assert code == 2 and "grid axis ridge must be a non-empty list" in err
    bad_plot = tmp_path / "p.toml"
    bad_plot.write_text(EXPERIMENT.replace('x = "n"', 'x = "m"'))
    code, _, err = _run(capsys, "run", bad_plot, "--out", tmp_path / "p")
    assert code == 2 and err.count("\n") == 1 and "plot x must be a parameter" in err
    assert not (tmp_path / "p").exists()
    assert (out / "summary.csv").read_text() == before


def test_a_different_experiment_never_overwrites_a_run_directory(tmp_path, exp_file, capsys):
    out = tmp_path / "run"
    _run(capsys, "run", exp_file, "--out", out, "--quiet", "--no-plot")
    before = (out / "summary.csv").read_text()
    code, _, err = _run(capsys, "run", exp_file, "--out", out, "--set", "noise=0.1", "--quiet")
    assert code == 2 and "holds the results of a different experiment" in err
    assert (out / "summary.csv").read_text() == before
    # --force adds points (a grown grid); the old rows stay, unchanged
    code, stdout, _ = _run(capsys, "run", exp_file, "--out", out, "--set", "n=[10, 30, 60]",
                           "--quiet", "--no-plot", "--force")
    assert code == 0 and "2 computed, 4 reused" in stdout
    after = (out / "summary.csv").read_text().splitlines()
    assert set(before.splitlines()) < set(after)
