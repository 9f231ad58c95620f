"""Fault tests with real processes: Ctrl-C, SIGTERM and SIGKILL mid-run, then resume to
identical tables; concurrent runs into one directory."""

import os
import signal
import subprocess
import sys
import time

import pytest

EXPERIMENT = """
model = "linear-ridge"
seeds = 4
[params]
d = 6
noise = 0.5
[grid]
n = [4, 6, 8]
ridge = [0.0, 0.1]
"""


def _cmd(toml, out, *extra):
    return [sys.executable, "-m", "rfsim.cli", "run", str(toml), "--out", str(out), "--quiet",
            "--no-plot", *extra]


def _env():
    return {**os.environ, "PYTHONWARNINGS": "ignore", "XLA_FLAGS": ""}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the experiment (the tables every resume must reproduce)."""
    root = tmp_path_factory.mktemp("ref")
    toml = root / "e.toml"
    toml.write_text(EXPERIMENT)
    proc = subprocess.run(_cmd(toml, root / "ref"), capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    return toml, {n: (root / "ref" / n).read_text() for n in ("sim.csv", "summary.csv")}


def _wait_for_points(out, at_least=1, timeout=60.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if len(list((out / "points").glob("*.json"))) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError("no point finished in time")


def _resume_matches(toml, out, reference):
    proc = subprocess.run(_cmd(toml, out), capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "reused" in proc.stdout
    for name, text in reference.items():
        assert (out / name).read_text() == text, name


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                      (signal.SIGKILL, -9)])
def test_signal_mid_run_then_resume_is_identical(tmp_path, reference, sig, code):
    toml, tables = reference
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(toml, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    _wait_for_points(out, at_least=2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        assert err.count("\n") == 1 and err.startswith(f"interrupted ({sig.name})"), err
        assert "Traceback" not in err
    assert not (out / "summary.csv").exists() or sig == signal.SIGKILL
    _resume_matches(toml, out, tables)


def _interrupt_trials(tmp_path, reference, trials):
    """SIGINT at delays spread over start-up, compilation, compute and the final writes."""
    toml, tables = reference
    codes = []
    for i in range(trials):
        out = tmp_path / f"t{i}"
        proc = subprocess.Popen(_cmd(toml, out), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())
        time.sleep(0.2 + 3.0 * ((i * 0.618) % 1.0))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        codes.append(proc.returncode)
        assert proc.returncode in (0, 130), (proc.returncode, err)  # 0: it had finished
        assert "Traceback" not in err and "Segmentation" not in err, err
        _resume_matches(toml, out, tables)
    return codes


def test_ctrl_c_never_crashes(tmp_path, reference):
    codes = _interrupt_trials(tmp_path, reference, trials=3)
    assert codes.count(130) >= 2, codes


@pytest.mark.slow
def test_ctrl_c_exits_130_in_50_trials(tmp_path, reference):
    codes = _interrupt_trials(tmp_path, reference, trials=50)
    assert codes.count(130) >= 40, codes


def test_concurrent_runs_of_different_experiments_one_wins(tmp_path, reference):
    toml, _ = reference
    other = tmp_path / "other.toml"
    other.write_text(EXPERIMENT.replace("noise = 0.5", "noise = 0.1"))
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_cmd(t, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env()) for t in (toml, other)]
    results = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, err in results if code == 2)
    assert loser_err.count("\n") == 1 and ("different experiment" in loser_err), loser_err
    winner = toml if results[0][0] == 0 else other
    noise = "0.5" if winner == toml else "0.1"
    rows = (out / "summary.csv").read_text().splitlines()[1:]
    assert rows and all(r.split(",")[3] == noise for r in rows)


def test_concurrent_runs_of_the_same_experiment_are_safe(tmp_path, reference):
    toml, tables = reference
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_cmd(toml, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env()) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read()
    for name, text in tables.items():
        assert (out / name).read_text() == text


def test_ctrl_c_while_validating_a_large_grid_is_prompt(tmp_path):
    """Validation (about a millisecond per point) is not compute: a signal stops it at once."""
    toml = tmp_path / "big.toml"
    ns = ", ".join(str(n) for n in range(4, 254))
    ridges = ", ".join(repr(r / 1000) for r in range(200))
    toml.write_text(f'model = "linear-ridge"\nseeds = 2\n[params]\nd = 6\n'
                    f'[grid]\nn = [{ns}]\nridge = [{ridges}]\n')  # 50,000 points
    proc = subprocess.Popen(_cmd(toml, tmp_path / "out", "--dry-run"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    time.sleep(4.0)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.time() - t0 < 10, (proc.returncode, err)
    assert err.startswith("interrupted (SIGTERM)") and err.count("\n") == 1, err


# A compiled call that runs for minutes: the second group (2e8 GD steps) is one XLA call.
# The first group (64 steps) finishes first, so its record must survive the hard exit.
LONG = """
model = "wide-training"
seeds = 2
[params]
width = 16
n_times = 3
[grid]
steps = [64, 200000000]
"""


def _start_long(tmp_path, **env):
    toml = tmp_path / "long.toml"
    toml.write_text(LONG)
    out = tmp_path / "long"
    proc = subprocess.Popen(_cmd(toml, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**_env(), **env})
    _wait_for_points(out, at_least=1, timeout=120)
    time.sleep(2.0)  # the long group is compiling or running: the main thread is in XLA
    assert proc.poll() is None, "the long run ended early"
    return proc, out


def _kept_first_group(out):
    records = list((out / "points").glob("*.json"))
    assert len(records) == 1, records  # the short group's record, written before the exit
    assert '"steps": 64' in records[0].read_text()


def test_two_ctrl_c_end_a_running_compiled_call_within_10s(tmp_path):
    proc, out = _start_long(tmp_path)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.time() - t0 < 10, (proc.returncode, err)
    assert err.count("\n") == 1 and err.startswith("interrupted (SIGINT)"), err
    _kept_first_group(out)


def test_sigterm_ends_a_running_compiled_call_after_its_grace_period(tmp_path):
    proc, out = _start_long(tmp_path, RFSIM_TERM_GRACE_S="2")
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    elapsed = time.time() - t0
    assert proc.returncode == 143 and 1.5 < elapsed < 10, (proc.returncode, elapsed, err)
    assert err.count("\n") == 1 and err.startswith("interrupted (SIGTERM)"), err
    _kept_first_group(out)


@pytest.mark.slow
def test_sigterm_default_grace_is_within_30s(tmp_path):
    proc, _ = _start_long(tmp_path)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.time() - t0 < 30


def test_bad_term_grace_is_one_line(tmp_path):
    toml = tmp_path / "e.toml"
    toml.write_text(EXPERIMENT)
    proc = subprocess.run(_cmd(toml, tmp_path / "out", "--dry-run"), capture_output=True,
                          text=True, env={**_env(), "RFSIM_TERM_GRACE_S": "-1"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "RFSIM_TERM_GRACE_S" in proc.stderr, proc.stderr
