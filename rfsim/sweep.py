"""Moved to :mod:`rfsim.engine.sweep`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import sweep as _module

sys.modules[__name__] = _module
