"""Moved to :mod:`rfsim.checks`; this path keeps working (it is the same module)."""
import sys

from rfsim import checks as _module

sys.modules[__name__] = _module
