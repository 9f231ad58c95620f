"""Moved to :mod:`rfsim.engine.keys`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import keys as _module

sys.modules[__name__] = _module
