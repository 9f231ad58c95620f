"""Moved to :mod:`rfsim.engine.experiment`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import experiment as _module

sys.modules[__name__] = _module
