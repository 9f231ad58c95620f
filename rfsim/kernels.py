"""Moved to :mod:`rfsim.empirical_kernels`; this path keeps working (it is the same module)."""
import sys

from rfsim import empirical_kernels as _module

sys.modules[__name__] = _module
