"""Moved to :mod:`rfsim.engine.io`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import io as _module

sys.modules[__name__] = _module
