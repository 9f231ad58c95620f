"""Collection rules for the doctests of the package (``--doctest-modules`` over rfsim/)."""

from pathlib import Path

# The engine's old module paths (rfsim/runner.py, ...) alias rfsim.engine.<name>: their
# doctests are collected once, from rfsim/engine/.
collect_ignore = [str(p.relative_to(Path(__file__).parent))
                  for p in (Path(__file__).parent / "rfsim").glob("*.py")
                  if p.read_text().startswith('"""Moved to :mod:`rfsim.engine.')]
