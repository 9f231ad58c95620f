"""Collection rules for the doctests of the package (``--doctest-modules`` over rfsim/)."""

from pathlib import Path

# Old module paths kept as aliases (rfsim/runner.py -> rfsim.engine.runner, ...): their
# doctests are collected once, from the module they alias.
collect_ignore = [str(p.relative_to(Path(__file__).parent))
                  for p in (Path(__file__).parent / "rfsim").glob("*.py")
                  if p.read_text().startswith('"""Moved to :mod:`rfsim.')]
