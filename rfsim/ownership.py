"""Moved to :mod:`rfsim.engine.ownership`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import ownership as _module

sys.modules[__name__] = _module
