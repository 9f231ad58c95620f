"""rf-ridge sweep through rfsim vs a numpy loop and scikit-learn, plus the theory curve.

Workload (issue #3): d = 200, N = n = 1000, 40 ridges (MM's lambda, log-spaced), 32 seeds,
relu features on the sphere, linear target + noise 0.25; metrics excess_risk (4000 test
points), test_mse, train_mse for every (ridge, seed).

* rfsim: ``run_experiment`` on the grid (one eigendecomposition per seed shared by all
  ridges), warm (compiled) timing; also the same with a single ridge, for the
  "40 ridges cost <= 4x one ridge" claim.
* numpy loop: per (seed, ridge) ``np.linalg.solve`` of the N x N normal equations.
* scikit-learn: ``Ridge(alpha=n N lambda / d, fit_intercept=False)`` per (seed, ridge).
* theory: ``mei_montanari`` on 1000 (psi1, ridge) points, jitted, after compilation.

Usage: python benchmarks/bench_rf_ridge.py [--seeds 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

from rfsim.engine.experiment import from_dict
from rfsim.engine.runner import run_experiment
from rfsim.theory.mei_montanari import mei_montanari

D, N, NS, NTEST, NOISE = 200, 1000, 1000, 4000, 0.25
RIDGES = np.logspace(-4, 1, 40)


def sphere(rng, m, d):
    g = rng.standard_normal((m, d))
    return np.sqrt(d) * g / np.linalg.norm(g, axis=1, keepdims=True)


def data(seed):
    rng = np.random.default_rng(seed)
    W, x, xt = sphere(rng, N, D), sphere(rng, NS, D), sphere(rng, NTEST, D)
    Z, Zt = np.maximum(x @ W.T / np.sqrt(D), 0), np.maximum(xt @ W.T / np.sqrt(D), 0)
    y = x[:, 0] + np.sqrt(NOISE) * rng.standard_normal(NS)
    return Z, Zt, y, xt[:, 0]


def numpy_loop(seeds):
    out = np.empty((seeds, len(RIDGES), 2))
    for s in range(seeds):
        Z, Zt, y, ft = data(s)
        for r, lam in enumerate(RIDGES):
            a = np.linalg.solve(Z.T @ Z + NS * N * lam / D * np.eye(N), Z.T @ y)
            out[s, r] = np.mean((Zt @ a - ft) ** 2), np.mean((y - Z @ a) ** 2)
    return out


def sklearn_loop(seeds):
    from sklearn.linear_model import Ridge

    out = np.empty((seeds, len(RIDGES), 2))
    for s in range(seeds):
        Z, Zt, y, ft = data(s)
        for r, lam in enumerate(RIDGES):
            m = Ridge(alpha=NS * N * lam / D, fit_intercept=False).fit(Z, y)
            out[s, r] = np.mean((m.predict(Zt) - ft) ** 2), np.mean((y - m.predict(Z)) ** 2)
    return out


def rfsim_time(seeds, ridges, tmp, tag):
    exp = from_dict({"model": "rf-ridge", "seeds": seeds,
                     "params": {"d": D, "N": N, "n": NS, "noise": NOISE, "n_test": NTEST},
                     "grid": {"ridge": [float(r) for r in ridges]}}, name="bench")
    run_experiment(exp, out=f"{tmp}/{tag}-warmup", plot=False, chunk_size=4)
    t = time.perf_counter()
    run_experiment(exp, out=f"{tmp}/{tag}", plot=False, chunk_size=4)
    return time.perf_counter() - t


def theory_time():
    psi1 = jnp.asarray(np.repeat(np.logspace(-1, 1, 40), 25))
    ridge = jnp.asarray(np.tile(np.logspace(-4, 0, 25), 40))
    f = jax.jit(lambda p, lam: mei_montanari(p, 5.0, lam, noise=NOISE).test_mse)
    f(psi1, ridge).block_until_ready()
    t = time.perf_counter()
    for _ in range(10):
        f(psi1, ridge).block_until_ready()
    return (time.perf_counter() - t) / 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = rfsim_time(args.seeds, RIDGES[:1], tmp, "one")
        many = rfsim_time(args.seeds, RIDGES, tmp, "many")
    t = time.perf_counter()
    numpy_loop(args.seeds)
    t_np = time.perf_counter() - t
    t = time.perf_counter()
    sklearn_loop(args.seeds)
    t_sk = time.perf_counter() - t
    t_th = theory_time()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{jax.default_backend()}, numpy {np.__version__}")
    print(f"workload: d={D}, N=n={N}, {len(RIDGES)} ridges, {args.seeds} seeds, "
          f"{NTEST} test points, float64")
    print(f"rfsim, 1 ridge:        {one:8.2f} s")
    print(f"rfsim, 40 ridges:      {many:8.2f} s   (40 ridges / 1 ridge = {many / one:.2f}x)")
    print(f"numpy loop:            {t_np:8.2f} s   ratio numpy/rfsim = {t_np / many:5.1f}x")
    print(f"scikit-learn Ridge:    {t_sk:8.2f} s   ratio sklearn/rfsim = {t_sk / many:5.1f}x")
    print(f"theory, 1000 points:   {t_th * 1e3:8.2f} ms (jitted, after compilation)")


if __name__ == "__main__":
    main()
