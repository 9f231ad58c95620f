"""Float32 smoke tier: every shipped family runs end to end under `rfsim run --float32`
(x64 off, highest matmul precision) on a tiny grid, stays finite, and agrees with its
prediction at a loose, stated allowance (5 sem + 10%: float32 round-off plus small-size
corrections)."""

import json
import os
import subprocess
import sys

import pytest

from rfsim.engine.io import read_csv

TINY = {
    "linear-ridge": 'd = 12\nn = 24\nnoise = 0.3\nridge = 0.05',
    "rf-ridge": 'd = 10\nN = 20\nn = 40\nridge = 0.1\nn_test = 400',
    "rf-gaussian": 'n = 30\nn_features = 20\nn_modes = 60\nridge = 0.01\nnoise = 0.1\n'
                   'spectrum_decay = 1.5\ntarget_decay = 1.0',
    "deep-rf": 'd = 12\nn = 40\nwidths = [24]\nridge = 0.01\nnoise = 0.1\nn_test = 400',
    "kernel-ridge": 'n = 40\nd = 5\nnoise = 0.1\nridge = 0.01\nn_test = 500\nmax_degree = 12',
    "signal-propagation": 'width = 128\ndepth = 5\nd = 8\nactivation = "erf"\nw_std = 1.2\n'
                          'b_std = 0.2',
    "wide-training": 'width = 256\nsteps = 32\nn_times = 3',
    "mlp-kernel": 'width = 64\nn_inputs = 6\nd = 4',
    "structured-weights": 'width = 64\nn_inputs = 6\nd = 4\nkind = "orthogonal"',
}

#: the metric each family's smoke claim checks (None: the family has no per-point theory,
#: the smoke test is "runs and stays finite"), and where (the GD/flow gap is 9% at step 1)
CLAIM = {"signal-propagation": ("c", ""), "wide-training": ("prediction_cv",
                                                             "where = { step = [32] }\n"),
         "mlp-kernel": (None, ""), "structured-weights": (None, "")}


@pytest.mark.parametrize("model", sorted(TINY))
def test_family_runs_in_float32(tmp_path, model):
    path = tmp_path / "tiny.toml"
    metric, where = CLAIM.get(model, ("excess_risk", ""))
    check = ("" if metric is None else
             f'[[check]]\nmetric = "{metric}"\nmax_abs_z = 5.0\nrel_tol = 0.1\n{where}')
    path.write_text(f'model = "{model}"\nseeds = 24\n[params]\n{TINY[model]}\n{check}')
    proc = subprocess.run([sys.executable, "-m", "rfsim.cli", "run", str(path), "--out",
                           str(tmp_path / "r"), "--float32", "--quiet", "--no-plot"],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert metric is None or "PASS" in proc.stdout, proc.stdout
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["x64"] is False and meta["matmul_precision"] == "highest"
    assert meta["experiment"]["model"] == model and not meta["nonfinite"]
    rows = read_csv(tmp_path / "r" / "summary.csv")
    assert all(r["mean"] not in ("", "nan", "inf") for r in rows)
