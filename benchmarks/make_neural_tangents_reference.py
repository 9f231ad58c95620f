"""Regenerate tests/data/neural_tangents_0.6.5_kernels.npz: neural-tangents 0.6.5's closed-form
NNGP/NTK of stax.serial(*[Dense(512, W_std, b_std), Act()] * depth, Dense(1, W_std, b_std))
for relu, erf and exact gelu, depths 1-5, four (W_std, b_std), cross (20 x 15) and symmetric
(20 x 20) inputs, float64; plus the standard parameterization at width 64.

Run with the interpreter of the virtual environment that benchmarks/bench_kernels.py builds
(neural-tangents 0.6.5 on jax 0.4.23):
    benchmarks/.nt-venv/bin/python benchmarks/make_neural_tangents_reference.py
"""

import sys
import types
from pathlib import Path

# neural_tangents.experimental imports tensorflow; nothing here needs it
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "neural_tangents_0.6.5_kernels.npz"
ACTIVATIONS = {"relu": stax.Relu(), "erf": stax.Erf(), "gelu": stax.Gelu(approximate=False)}
SCALES = ((1.0, 0.0), (1.5, 0.2), (0.7, 1.0), (2.0, 0.5))


def network(act, depth, w, b, **dense):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512 if not dense else 64, W_std=w, b_std=b, **dense), act]
    return stax.serial(*layers, stax.Dense(1, W_std=w, b_std=b, **dense))[2]


def main():
    rng = np.random.default_rng(123)
    x1, x2 = rng.normal(size=(20, 7)), rng.normal(size=(15, 7))
    out = {"x1": x1, "x2": x2}
    for name, act in ACTIVATIONS.items():
        for depth in (1, 2, 3, 4, 5):
            for w, b in SCALES:
                kernel_fn = network(act, depth, w, b)
                cross = kernel_fn(x1, x2, ("nngp", "ntk"))
                same = kernel_fn(x1, None, ("nngp", "ntk"))
                key = f"{name}_{depth}_{w}_{b}"
                out[key + "_nngp"], out[key + "_ntk"] = map(np.asarray, cross)
                out[key + "_snngp"], out[key + "_sntk"] = map(np.asarray, same)
    for name in ("relu", "erf"):
        kernel_fn = network(ACTIVATIONS[name], 2, 1.3, 0.2, parameterization="standard")
        out[f"std_{name}_nngp"], out[f"std_{name}_ntk"] = map(
            np.asarray, kernel_fn(x1, x2, ("nngp", "ntk")))
    np.savez_compressed(OUT, **out)
    print("saved", len(out), "arrays to", OUT)


if __name__ == "__main__":
    main()
