"""Each family's memory estimate (what ``--dry-run`` prints and the engine checks before any
compute: ``memory(cfg) * itemsize``, rfsim.engine.resources) against the peak it
measures: one seed run in a fresh subprocess (``init`` + jitted ``simulate`` + ``predict``),
peak RSS minus that of the same family at a tiny size (imports and compilation), within 2x.
Sizes are a few hundred MB, where an estimate that forgets a dimension matters.  The heavy
ones are slow-marked; linear-ridge runs by default.  Issue 12 (7)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from rfsim.cli import main
from rfsim.config import make_config
from rfsim.models import get_model
from rfsim.engine.resources import human, seed_bytes

_CHILD = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    from rfsim.config import make_config
    from rfsim.engine.keys import SeedKeys
    from rfsim.models import get_model
    m = get_model(sys.argv[1])
    cfg = make_config(m, json.loads(sys.argv[2]))
    state = m.init(SeedKeys(jax.random.key(1), jax.random.key(2)), cfg)
    keys = SeedKeys(jax.random.key(0), jax.random.key(3))
    jax.block_until_ready(jax.jit(m.simulate, static_argnums=1)(keys, cfg, state))
    if m.predict is not None:
        jax.block_until_ready(m.predict(cfg, state))
    # VmHWM, the peak of this process image: ru_maxrss would carry over the peak of the
    # (large) pytest worker that forked it, which execve keeps (Linux)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(int(hwm.split()[1]) * 1024)
""")


def _peak_rss(family: str, params: dict) -> int:
    proc = subprocess.run([sys.executable, "-c", _CHILD, family, json.dumps(params)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


def _estimate(family: str, params: dict) -> int:
    model = get_model(family)
    return seed_bytes(int(model.memory(make_config(model, params))), 8)


def measured_vs_estimate(family: str, tiny: dict, big: dict) -> tuple[int, int]:
    measured = _peak_rss(family, big) - _peak_rss(family, tiny)
    return _estimate(family, big), measured


CASES = [
    ("linear-ridge", {"n": 20, "d": 10}, {"n": 3000, "d": 3000}),
    ("rf-ridge", {"d": 10, "N": 20, "n": 20, "n_test": 20},
     {"d": 100, "N": 4000, "n": 3000, "n_test": 4000}),
    ("rf-gaussian", {"n": 20, "n_features": 20, "n_modes": 10},
     {"n": 3000, "n_features": 4000, "n_modes": 4000}),
    ("deep-rf", {"d": 10, "n": 20, "widths": [20, 20], "n_test": 20},
     {"d": 100, "n": 3000, "widths": [3000, 3000], "n_test": 4000}),
    ("kernel-ridge", {"n": 20, "d": 10, "n_test": 20}, {"n": 4000, "d": 10, "n_test": 4000}),
    ("kernel-ridge", {"n": 20, "d": 10, "n_test": 20},  # the input dimension dominates
     {"n": 200, "d": 100000, "n_test": 200, "max_degree": 2}),
    ("mlp-kernel", {"width": 8, "depth": 2, "n_inputs": 4},
     {"width": 64, "depth": 2, "n_inputs": 3000}),
    ("structured-weights", {"width": 8, "depth": 2, "n_inputs": 4},
     {"width": 4000, "depth": 2, "n_inputs": 16}),
    ("structured-weights", {"width": 8, "depth": 2, "n_inputs": 4, "kind": "sparse"},
     {"width": 4000, "depth": 2, "n_inputs": 16, "kind": "sparse"}),
    ("wide-training", {"width": 8, "depth": 2, "steps": 4, "n_times": 2},
     {"width": 4000, "depth": 2, "steps": 4, "n_times": 2}),
    ("signal-propagation", {"width": 8, "depth": 2, "n_pairs": 2},
     {"width": 64, "depth": 2, "n_pairs": 100000}),
]


def _check(family, tiny, big):
    estimate, measured = measured_vs_estimate(family, tiny, big)
    assert measured > 100 * 2**20, f"{family}: {human(measured)} is too small to test"
    ratio = estimate / measured
    assert 0.5 <= ratio <= 2.0, (f"{family} {big}: estimate {human(estimate)}, measured "
                                 f"{human(measured)} (ratio {ratio:.2f})")


def test_linear_ridge_estimate_within_2x_of_measured_peak():
    _check(*CASES[0])


@pytest.mark.slow
@pytest.mark.parametrize("family,tiny,big", CASES[1:],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES[1:])])
def test_estimate_within_2x_of_measured_peak(family, tiny, big):
    _check(family, tiny, big)


# --------------------------------------------------------------------------- every dimension


def _memory(family, **fields):
    """memory(cfg) of a stand-in config (no validation: sizes far beyond what runs)."""
    return get_model(family).memory(SimpleNamespace(**fields))


@pytest.mark.parametrize("family,base,dim", [
    ("kernel-ridge", dict(n=100, d=10, n_test=100), "d"),
    ("mlp-kernel", dict(width=8, depth=1, n_inputs=10, d=8), "n_inputs"),
    ("structured-weights", dict(width=8, depth=2, n_inputs=10, d=8, kind="iid"), "n_inputs"),
    ("signal-propagation", dict(width=8, depth=2, n_pairs=4, d=16), "n_pairs"),
    ("wide-training", dict(width=8, depth=1, d=4, n_train=10, n_test=10, n_times=9),
     "n_train"),
])
def test_each_dimension_that_allocates_is_counted(family, base, dim):
    """d = 10^7 in kernel-ridge was 160 GB that passed --dry-run; likewise n_inputs^2
    (mlp-kernel, structured-weights), n_pairs (signal-propagation), the NTK blocks
    (wide-training)."""
    small = _memory(family, **base)
    big = _memory(family, **{**base, dim: base[dim] * 1000})
    assert big > 10 * small


def test_deep_rf_counts_every_layer():
    one = _memory("deep-rf", d=10, n=10, n_test=10, widths=(1000,), centered=False)
    three = _memory("deep-rf", d=10, n=10, n_test=10, widths=(1000, 1000, 1000),
                    centered=False)
    assert three - one >= 2 * 1000 * 1000 // 3  # two more 1000 x 1000 weight matrices


@pytest.mark.parametrize("text", [
    'model = "kernel-ridge"\n[params]\nn = 10000000\nd = 5\n',
    'model = "mlp-kernel"\n[params]\nwidth = 8\nn_inputs = 10000000\n',
    'model = "structured-weights"\n[params]\nwidth = 1000000\n',
    'model = "wide-training"\n[params]\nwidth = 8\nn_train = 1000000\nn_test = 1000000\n',
    'model = "signal-propagation"\n[params]\nwidth = 1000\nn_pairs = 1000000000\n',
    'model = "deep-rf"\n[params]\nd = 10\nn = 10\nwidths = [1000000, 1000000]\n',
    'model = "rf-ridge"\n[params]\nd = 10\nN = 2000000000\nn = 10\nn_test = 2000000000\n',
    'model = "rf-gaussian"\n[params]\nn = 10\nn_features = 2000000000\nn_modes = 2000000000\n',
])
def test_a_config_beyond_memory_is_refused_with_the_estimate(tmp_path, capsys, text):
    path = tmp_path / "big.toml"
    path.write_text("seeds = 1\n" + text)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "does not fit in memory" in err and "working set is about" in err, err
    assert not (tmp_path / "out").exists()
