"""Moved to :mod:`rfsim.engine.resources`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import resources as _module

sys.modules[__name__] = _module
