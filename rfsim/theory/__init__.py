"""Closed-form predictions: no randomness, jittable, differentiable.

Every function here cites the numbered equation it implements in the
project's ``theory/*.md`` files.  Nothing in this subpackage imports the
simulators.
"""
