"""rfsim: learning-theory simulators checked against their closed-form predictions."""

__version__ = "0.1.0"
