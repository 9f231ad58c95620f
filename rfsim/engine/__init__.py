"""The engine: what runs a model family, knowing only the model contract.

experiment files (:mod:`~rfsim.engine.experiment`), planning and validation before compute
(:mod:`~rfsim.engine.planned`), the sweep over static groups (:mod:`~rfsim.engine.sweep`),
run directories (:mod:`~rfsim.engine.runner`, :mod:`~rfsim.engine.io`,
:mod:`~rfsim.engine.ownership`, :mod:`~rfsim.engine.lock`), content keys
(:mod:`~rfsim.engine.keys`), interrupts, provenance, resources and the check suite.
The domain (activations, data, networks, features, solvers, theory, models) never imports it.
"""
