"""Families from outside the package: README's worked example ("Your own family") run as a
file next to its experiment through the CLI (a subprocess) and the Python API, with the
numbers it writes recomputed from the key rule; the module form, a plain object with the
contract, the ``rfsim.models`` entry-point group, and the errors that name what is allowed."""

import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim.engine.experiment import ExperimentError, from_dict, load_experiment
from rfsim.engine.io import read_csv
from rfsim.engine.keys import group_digests, group_keys, seed_keys
from rfsim.models import get_model

README = Path(__file__).resolve().parents[1] / "README.md"
ROOT = README.parent


def _readme_example() -> tuple[str, str]:
    """The python and toml blocks of README's "Your own family" subsection."""
    text = README.read_text()
    section = text[text.index("### Your own family"):]
    section = section[: section.index("\n## ")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    return code, toml


@pytest.fixture
def example(tmp_path):
    code, toml = _readme_example()
    where = tmp_path / "study"
    where.mkdir()
    (where / "family.py").write_text(code)
    (where / "mean.toml").write_text(toml)
    return where


def _expected(n: int, seed: int, sigma: float = 2.0) -> float:
    """The example's sq_err recomputed from the key rule: every static (n) is a data field,
    the model key hashes nothing."""
    keys = seed_keys(group_keys(0, group_digests({"n": n}, {})), seed)
    x = sigma * jax.random.normal(keys.data, (n,), jnp.float64)
    return float(jnp.mean(x) ** 2)


def _check_numbers(run: Path) -> list[dict]:
    sim = read_csv(run / "sim.csv")
    assert len(sim) == 3 * 400  # n in (4, 16, 64), 400 seeds
    for row in sim[:3] + sim[-3:]:
        got = float(row["sq_err"])
        want = _expected(int(row["n"]), int(row["seed"]))
        np.testing.assert_allclose(got, want, rtol=1e-15)  # the same bits, up to printing
    summary = read_csv(run / "summary.csv")
    for row in summary:  # E (mean x)^2 = sigma^2 / n, within 4 standard errors
        assert abs(float(row["mean"]) - 4.0 / int(row["n"])) < 4 * float(row["sem"])
    return sim


def test_readme_example_runs_through_the_cli_and_the_python_api(example, tmp_path, registry):
    """The experiment's relative path is taken from its own directory, not from the cwd."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "rfsim.cli", "run", str(example / "mean.toml"), "--out",
         str(tmp_path / "cli"), "--no-plot"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "FAIL" not in done.stdout, done.stdout
    cli = _check_numbers(tmp_path / "cli")

    from rfsim.engine.runner import run_experiment

    res = run_experiment(load_experiment(example / "mean.toml"), out=tmp_path / "api", plot=False)
    assert all(v.passed for v in res.verdicts)
    api = _check_numbers(tmp_path / "api")
    assert [r["sq_err"] for r in api] == [r["sq_err"] for r in cli]  # bit for bit


def test_a_family_file_without_an_experiment_file_is_relative_to_the_cwd(
        example, registry, monkeypatch):
    monkeypatch.chdir(example)
    model = get_model("family.py:family")
    assert model.name == "family.py:family" and model.metrics == ("sq_err",)
    exp = from_dict({"model": "family.py:family", "seeds": 2, "grid": {"n": [3]}})
    assert exp.model == "family.py:family"
    with pytest.raises(ExperimentError, match=r"model: .*no file .*current directory"):
        from_dict({"model": "study/family.py:family", "seeds": 2})
    monkeypatch.chdir(example.parent)
    assert get_model("study/family.py:family").config is model.config  # loaded once


def test_a_module_on_the_import_path_and_a_plain_object_with_the_contract(
        tmp_path, registry, monkeypatch):
    """``module:attribute``; the attribute may be any object with config, simulate, metrics
    (here a namespace, with an earlier-shaped simulate(key, cfg): adapted, key = keys.data)."""
    (tmp_path / "my_rfsim_family.py").write_text(textwrap.dedent('''
        import types
        import jax
        from rfsim.config import model_config, param, static

        @model_config
        class C:
            m: int = static(3)
            scale: float = param(1.0)

        family = types.SimpleNamespace(
            config=C, metrics=("total",),
            simulate=lambda key, cfg: {"total": cfg.scale * jax.random.normal(key, (cfg.m,)).sum()})
        number = 7
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    model = get_model("my_rfsim_family:family")
    assert model.legacy and model.metrics == ("total",) and model.predict is None
    cfg = model.config(m=3, scale=2.0)
    keys = seed_keys(group_keys(0, group_digests({"m": 3}, {})), 5)
    out = model.simulate(keys, cfg, model.init(keys, cfg))
    want = 2.0 * jax.random.normal(keys.data, (3,)).sum()
    assert float(out["total"]) == float(want)
    with pytest.raises(ValueError, match=r"'my_rfsim_family:number'.*int 7 is not a family"):
        get_model("my_rfsim_family:number")
    with pytest.raises(ValueError, match=r"has no attribute 'famly'.*"):
        get_model("my_rfsim_family:famly")
    with pytest.raises(ValueError, match=r"no module named 'no_such_rfsim_module'.*sys\.path"):
        get_model("no_such_rfsim_module:family")


def test_errors_name_the_field_and_the_syntax(example):
    for name, fragment in [("family.py:nothing", "has no attribute 'nothing'"),
                           ("missing.py:family", "no file"),
                           ("family.py:", "empty or invalid part")]:
        (example / "bad.toml").write_text(f'model = "{name}"\nseeds = 2\n')
        with pytest.raises(ExperimentError) as err:
            load_experiment(example / "bad.toml")
        msg = str(err.value)
        assert msg.startswith("model: ") and fragment in msg, msg
        if "no file" in msg:  # relative to the experiment's directory
            assert str(example / "missing.py") in msg and "experiment file's directory" in msg
        if "attribute 'nothing'" in msg:  # what is there instead
            assert msg.endswith("its families: family"), msg
        else:  # what is allowed
            assert "path/to/file.py:attribute" in msg, msg
    with pytest.raises(ValueError, match=r"model must be one of .*'module:attribute'"):
        get_model("no-such-family")


def test_an_installed_entry_point_registers_its_family(tmp_path, registry, monkeypatch):
    """A distribution on sys.path whose entry points name a family under ``rfsim.models``."""
    (tmp_path / "ep_rfsim_family.py").write_text(textwrap.dedent('''
        import jax.numpy as jnp
        from rfsim.config import model_config, static
        from rfsim.models import register

        @model_config
        class C:
            k: int = static(2)

        MODEL = register("ep-toy-internal", C, lambda keys, cfg, state: {"k": jnp.asarray(cfg.k)},
                         metrics={"k": None})
    '''))
    info = tmp_path / "ep_rfsim_family-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-rfsim-family\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rfsim.models]\nep-toy = ep_rfsim_family:MODEL\n"
                                           "ep-broken = ep_rfsim_family:C\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    with pytest.warns(UserWarning, match=r"entry point 'ep-broken' .* not a family, skipped"):
        names = registry.available()
    assert "ep-toy" in names and "ep-broken" not in names
    model = get_model("ep-toy")
    assert model.name == "ep-toy" and not model.legacy
    assert int(model.simulate(None, model.config(), None)["k"]) == 2


def test_a_module_object_with_the_contract_is_a_family(registry, monkeypatch):
    """A module itself has the contract when it defines config, simulate and metrics."""
    from rfsim.config import model_config, static

    @model_config
    class C:
        k: int = static(2)

    inline = types.ModuleType("inline")
    inline.config, inline.metrics = C, {"k": None}
    inline.simulate = lambda keys, cfg, state: {"k": jnp.asarray(float(cfg.k))}
    holder = types.ModuleType("rfsim_inline_holder")
    holder.inline = inline
    monkeypatch.setitem(sys.modules, "rfsim_inline_holder", holder)
    model = get_model("rfsim_inline_holder:inline")
    assert model.name == "rfsim_inline_holder:inline" and model.metrics == ("k",)
    assert float(model.simulate(None, C(k=3), None)["k"]) == 3.0
