"""Moved to :mod:`rfsim.engine.runner`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import runner as _module

sys.modules[__name__] = _module
