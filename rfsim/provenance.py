"""Moved to :mod:`rfsim.engine.provenance`; this path keeps working (it is the same module)."""
import sys

from rfsim.engine import provenance as _module

sys.modules[__name__] = _module
