"""Moved to :mod:`rfsim.engine.suite`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import suite as _module

sys.modules[__name__] = _module
