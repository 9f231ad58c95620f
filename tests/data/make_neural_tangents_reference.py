"""Regenerate tests/data/neural_tangents_0.6.5_kernels.npz: neural-tangents 0.6.5's closed-form
NNGP/NTK of stax.serial(*[Dense(512, W_std, b_std), Act()] * depth, Dense(1, W_std, b_std))
for relu, erf and exact gelu, depths 1-5, four (W_std, b_std), cross (20 x 15) and symmetric
(20 x 20) inputs, float64; plus the standard parameterization at width 64.

Run with the interpreter of the virtual environment that benchmarks/bench_kernels.py builds
(neural-tangents 0.6.5 on jax 0.4.23):  benchmarks/.nt-venv/bin/python tests/data/make_neural_tangents_reference.py
"""
import sys, types
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from neural_tangents import stax
rng = np.random.default_rng(123)
x1 = rng.normal(size=(20, 7)); x2 = rng.normal(size=(15, 7))
out = {"x1": x1, "x2": x2}
acts = {"relu": stax.Relu(), "erf": stax.Erf(), "gelu": stax.Gelu(approximate=False)}
for name, act in acts.items():
    for depth in (1, 2, 3, 4, 5):
        for w, b in ((1.0, 0.0), (1.5, 0.2), (0.7, 1.0), (2.0, 0.5)):
            layers = []
            for _ in range(depth):
                layers += [stax.Dense(512, W_std=w, b_std=b), act]
            layers += [stax.Dense(1, W_std=w, b_std=b)]
            _, _, kf = stax.serial(*layers)
            k = kf(x1, x2, ("nngp", "ntk"))
            ks = kf(x1, None, ("nngp", "ntk"))
            key = f"{name}_{depth}_{w}_{b}"
            out[key + "_nngp"] = np.asarray(k.nngp); out[key + "_ntk"] = np.asarray(k.ntk)
            out[key + "_snngp"] = np.asarray(ks.nngp); out[key + "_sntk"] = np.asarray(ks.ntk)
# standard parameterization, depth 2, width 64
for name, act in (("relu", stax.Relu()), ("erf", stax.Erf())):
    layers = []
    for _ in range(2):
        layers += [stax.Dense(64, W_std=1.3, b_std=0.2, parameterization="standard"), act]
    layers += [stax.Dense(1, W_std=1.3, b_std=0.2, parameterization="standard")]
    _, _, kf = stax.serial(*layers)
    k = kf(x1, x2, ("nngp", "ntk"))
    out[f"std_{name}_nngp"] = np.asarray(k.nngp); out[f"std_{name}_ntk"] = np.asarray(k.ntk)
np.savez_compressed(__file__.replace("make_neural_tangents_reference.py", "neural_tangents_0.6.5_kernels.npz"), **out)
print("saved", len(out))
