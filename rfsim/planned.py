"""Moved to :mod:`rfsim.engine.planned`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import planned as _module

sys.modules[__name__] = _module
