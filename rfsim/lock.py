"""Moved to :mod:`rfsim.engine.lock`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import lock as _module

sys.modules[__name__] = _module
