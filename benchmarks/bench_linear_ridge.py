"""Linear-ridge sweep through rfsim vs plain numpy loops, in one process.

Workload (issue #2): d = 400, n in {200, 400, 800}, 20 ridges, 64 seeds; metrics
excess_risk, test_mse, train_mse for every (n, ridge, seed).

Baselines:
* numpy-naive: the plain loop over seeds and ridges, one ``np.linalg.solve`` of the
  p x p normal equations per (seed, ridge), Gram matrix formed inside the loop;
* numpy-gram: the same loop with ``X^T X`` and ``X^T y`` hoisted out of the ridge loop.

rfsim is timed through ``run_experiment`` (the whole engine: key derivation, vmapped seeds
and ridges, eigendecomposition shared by the ridges, point records, CSV tables), cold
(compilation included) and warm (a second run into a fresh directory).

Usage: python benchmarks/bench_linear_ridge.py [--seeds 64] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)
import numpy as np

from rfsim.engine.experiment import from_dict
from rfsim.engine.runner import run_experiment

D, NS, RIDGES, NOISE = 400, (200, 400, 800), np.logspace(-4, 1, 20), 0.5


def numpy_loop(seeds: int, hoist_gram: bool) -> np.ndarray:
    out = np.empty((len(NS), seeds, len(RIDGES), 3))
    beta = np.full(D, D**-0.5)
    for a, n in enumerate(NS):
        for s in range(seeds):
            rng = np.random.default_rng(s)
            X = rng.standard_normal((n, D))
            y = X @ beta + np.sqrt(NOISE) * rng.standard_normal(n)
            if hoist_gram:
                G, b = X.T @ X, X.T @ y
            for r, lam in enumerate(RIDGES):
                if not hoist_gram:
                    G, b = X.T @ X, X.T @ y
                w = np.linalg.solve(G + n * lam * np.eye(D), b)
                excess = np.sum((w - beta) ** 2)
                out[a, s, r] = excess, excess + NOISE, np.mean((y - X @ w) ** 2)
    return out


def rfsim_run(seeds: int, out: str, ridges=RIDGES) -> float:
    exp = from_dict({"model": "linear-ridge", "seeds": seeds,
                     "params": {"d": D, "noise": NOISE},
                     "grid": {"n": list(NS), "ridge": [float(x) for x in ridges]}},
                    name="bench")
    t = time.perf_counter()
    run_experiment(exp, out=out, plot=False)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = rfsim_run(args.seeds, f"{tmp}/a")
        warm = rfsim_run(args.seeds, f"{tmp}/b")
        rfsim_run(args.seeds, f"{tmp}/c", RIDGES[:1])
        one = rfsim_run(args.seeds, f"{tmp}/d", RIDGES[:1])
    t = time.perf_counter()
    numpy_loop(args.seeds, hoist_gram=False)
    naive = time.perf_counter() - t
    t = time.perf_counter()
    numpy_loop(args.seeds, hoist_gram=True)
    gram = time.perf_counter() - t
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"jax {jax.__version__} on {jax.default_backend()}, numpy {np.__version__}")
    print(f"workload: d={D}, n={NS}, {len(RIDGES)} ridges, {args.seeds} seeds, float64")
    print(f"rfsim cold (with compilation): {cold:8.2f} s")
    print(f"rfsim warm:                    {warm:8.2f} s")
    print(f"rfsim warm, 1 ridge:           {one:8.2f} s   "
          f"(20 ridges / 1 ridge = {warm / one:.2f}x)")
    print(f"numpy naive loop:              {naive:8.2f} s   ratio naive/rfsim-warm = "
          f"{naive / warm:5.1f}x  (cold {naive / cold:4.1f}x)")
    print(f"numpy loop, Gram hoisted:      {gram:8.2f} s   ratio gram/rfsim-warm  = "
          f"{gram / warm:5.1f}x  (cold {gram / cold:4.1f}x)")


if __name__ == "__main__":
    main()
