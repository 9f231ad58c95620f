"""Moved to :mod:`rfsim.engine.interrupt`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import interrupt as _module

sys.modules[__name__] = _module
