"""Moved to :mod:`rfsim.engine.expressions`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import expressions as _module

sys.modules[__name__] = _module
