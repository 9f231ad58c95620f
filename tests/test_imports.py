"""Imports point one way: cli -> engine (suite -> runner -> experiment -> sweep) -> models ->
theory/features -> leaves.  A module may import its own layer or any layer below, never
one above (function-level imports included)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rfsim"

LAYERS = [
    # 0: leaves
    {"rfsim.validation", "rfsim.engine.keys", "rfsim.engine.lock", "rfsim.engine.interrupt",
     "rfsim.engine.provenance", "rfsim.engine.resources", "rfsim.engine.expressions",
     "rfsim.activations", "rfsim.theory.scaling", "rfsim.theory.gaussian", "rfsim",
     "rfsim.engine"},
    # 1: building blocks
    {"rfsim.config", "rfsim.engine.io", "rfsim.data", "rfsim.solvers"},
    # 2: closed forms, feature maps, verdicts, run-directory ownership, figures
    {"rfsim.features", "rfsim.kernels", "rfsim.empirical_kernels", "rfsim.theory",
     "rfsim.networks",
     "rfsim.engine.ownership", "rfsim.check", "rfsim.checks", "rfsim.plot"},
    # 3: model families (the one place simulation meets theory)
    {"rfsim.models"},
    {"rfsim.engine.sweep"},
    {"rfsim.engine.experiment", "rfsim.engine.planned"},
    {"rfsim.engine.runner"},
    {"rfsim.engine.suite"},
    {"rfsim.cli"},
    # the old paths of the engine's modules: aliases of rfsim.engine.<name>
    {f"rfsim.{m}" for m in ("experiment", "planned", "sweep", "runner", "io", "ownership", "lock",
                            "keys", "interrupt", "provenance", "resources", "suite",
                            "expressions")},
]


def _layer(module: str) -> int:
    best = None
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (
                    best is None or len(name) > len(best[1])):
                best = (rank, name)
    assert best is not None, f"{module} is in no layer of tests/test_imports.py"
    return best[0]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rfsim"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("rfsim"))


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v))
def test_no_module_imports_a_layer_above_it(module, path):
    mine = _layer(module)
    above = sorted(m for m in set(_imports(path)) if _layer(m) > mine)
    assert not above, f"{module} (layer {mine}) imports {above}"


def test_a_deliberate_upward_import_is_caught(tmp_path):
    """The twin: the checker flags an engine module importing the experiment format."""
    fake = tmp_path / "sweep.py"
    fake.write_text("def f():\n    from rfsim.engine.experiment import grid_points\n")
    assert _layer("rfsim.engine.experiment") > _layer("rfsim.engine.sweep")
    assert "rfsim.engine.experiment" in set(_imports(fake))


def test_import_rfsim_leaves_jax_config_alone():
    import subprocess
    import sys

    code = ("import jax; before = dict(jax.config.values); import rfsim, rfsim.cli, "
            "rfsim.engine.runner, rfsim.models; rfsim.models.available(); "
            "assert dict(jax.config.values) == before")
    subprocess.run([sys.executable, "-c", code], check=True)
