"""NNGP / NTK kernels through rfsim vs neural-tangents 0.6.5 and plain baselines, one run.

Workload (issue #8, item 9), float64:

1. closed-form depth-3 relu NNGP + NTK of n x n inputs (default n = 4000, d = 100,
   x ~ N(0, 1)): ``rfsim.theory.kernels.kernels(x, depth=3)`` (both kernels) against
   (a) neural-tangents' jitted ``kernel_fn`` of ``stax.serial(*[Dense(512, 1., 0.), Relu()]
   * 3, Dense(1, 1., 0.))`` with ``get=("nngp", "ntk")``, and (b) a plain numpy recursion of
   theory/kernels.md (K-7)-(K-9) (numpy arccos with clipping), written below;
2. empirical NTK of a width-1024 two-layer relu net (depth 1, d = 100) on 1000 inputs:
   ``rfsim.kernels.empirical_ntk`` with implementation "structured", "auto" and "jacobian"
   against neural-tangents' ``empirical_ntk_fn`` (STRUCTURED_DERIVATIVES,
   NTK_VECTOR_PRODUCTS, JACOBIAN_CONTRACTION), on the same weights, and a textbook baseline:
   ``jax.jacrev`` of the flattened parameters, then one matmul ``J J^T``.

Every timing is the best of ``--repeat`` (5) calls after a warm-up call (which compiles;
its time is printed as "first call"), each waited for with ``block_until_ready``; an
implementation gets fewer calls (at least one; the table says how many) where 5 would
take more than ``--budget`` (60) seconds: the slow baselines take 10 s and more per call.  The
``baseline / rfsim`` column is that row's time over rfsim's (case 1: ``kernels``;
case 2: "structured"), so > 1 means rfsim is faster.  Values are checked: relative
Frobenius distance ``||A - B||_F / ||B||_F`` to the numpy (case 1) or jacrev (case 2) kernel.

neural-tangents 0.6.5 needs jax < 0.5, which cannot share rfsim's environment: the script
creates ``benchmarks/.nt-venv`` (ignored by git through a ``.gitignore`` inside it) with
jax[cpu] 0.4.23 (the release NT 0.6.5 was made against; with 0.4.35 its
STRUCTURED_DERIVATIVES fails) and neural-tangents 0.6.5, and runs NT's part in a
subprocess (this file with ``--nt-worker``), which sends its times back as JSON on stdout
and its kernels as an .npz file.  NT is installed with ``--no-deps``: its declared
dependency tf2jax pulls in tensorflow (~570 MB), which only
``neural_tangents.experimental`` (TF conversion) imports; the worker replaces that
subpackage with an empty module.  Where NT cannot be installed or run, its rows are
skipped with a one-line reason and everything else still runs.

Usage: python benchmarks/bench_kernels.py [--quick] [--n 4000] [--n-ntk 1000]
       [--width 1024] [--repeat 5] [--no-nt] [--nt-venv benchmarks/.nt-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

NT_WORKER = "--nt-worker" in sys.argv
if not NT_WORKER:  # the NT environment has no rfsim (nor flax)
    from jax.flatten_util import ravel_pytree

    from rfsim.kernels import empirical_ntk, mlp
    from rfsim.theory.kernels import kernels

D, DEPTH, NT_WIDTH = 100, 3, 512
NT_VERSION = "0.6.5"
NT_JAX = "0.4.23"  # later 0.4.x break NT's STRUCTURED_DERIVATIVES (jax.interpreters.ad
# lost source_info_util); NT 0.6.5 was released against jax 0.4.23
NT_REQUIREMENTS = [f"jax[cpu]=={NT_JAX}", "numpy<2", "scipy<1.13", "frozendict", "absl-py"]
DEFAULT_VENV = Path(__file__).resolve().parent / ".nt-venv"
NT_IMPLEMENTATIONS = ("STRUCTURED_DERIVATIVES", "NTK_VECTOR_PRODUCTS", "JACOBIAN_CONTRACTION")


def _wait(out):
    for leaf in jax.tree_util.tree_leaves(out):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return out


BUDGET = [60.0]  # seconds of timed calls per implementation (--budget)


def best_of(fn, repeat: int):
    """(first call incl. compilation, best of the later calls, the output, number of later
    calls): ``repeat`` calls, fewer when they would take more than ``BUDGET`` seconds (the
    slowest baselines run 10 s and more per call at the default sizes); at least one."""
    t = time.perf_counter()
    out = _wait(fn())
    first = time.perf_counter() - t
    times: list[float] = []
    while len(times) < repeat and (not times or sum(times) + min(times) <= BUDGET[0]):
        t = time.perf_counter()
        _wait(fn())
        times.append(time.perf_counter() - t)
    return first, min(times), out, len(times)


def rel_frobenius(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- neural-tangents


def _nt_stub():
    """Import neural_tangents without tensorflow: its ``experimental`` subpackage (TF
    conversion, unused here) imports jax2tf, which imports tensorflow."""
    import types

    sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
    import neural_tangents

    return neural_tangents


def nt_worker(spec: dict) -> None:
    """Runs inside the NT environment: time NT on the inputs in ``spec["data"]``, save its
    kernels to ``spec["out"]`` and print the times as one JSON line."""
    nt = _nt_stub()
    from neural_tangents import stax

    data = np.load(spec["data"])
    x = jnp.asarray(data["x"])
    repeat = spec["repeat"]
    BUDGET[0] = spec["budget"]
    times, kernels_out = {}, {}
    if spec["case"] == 1:
        _, _, kernel_fn = stax.serial(*[stax.Dense(NT_WIDTH, 1.0, 0.0), stax.Relu()] * DEPTH,
                                      stax.Dense(1, 1.0, 0.0))
        kfn = jax.jit(kernel_fn, static_argnames="get")
        first, best, out, runs = best_of(lambda: kfn(x, None, get=("nngp", "ntk")), repeat)
        times["kernel_fn"] = [first, best, runs]
        kernels_out["nngp"], kernels_out["ntk"] = np.asarray(out.nngp), np.asarray(out.ntk)
    else:
        _, apply_fn, _ = stax.serial(stax.Dense(spec["width"], 1.0, 0.0), stax.Relu(),
                                     stax.Dense(1, 1.0, 0.0))
        params = [(jnp.asarray(data["W0"]), jnp.asarray(data["b0"])[None, :]), (),
                  (jnp.asarray(data["W1"]), jnp.asarray(data["b1"])[None, :])]
        for name in NT_IMPLEMENTATIONS:
            impl = getattr(nt.NtkImplementation, name)
            fn = jax.jit(nt.empirical_ntk_fn(apply_fn, vmap_axes=0, implementation=impl))
            first, best, out, runs = best_of(lambda fn=fn: fn(x, None, params), repeat)
            times[name] = [first, best, runs]
            kernels_out[name] = np.asarray(out)
    np.savez(spec["out"], **kernels_out)
    print(json.dumps({"jax": jax.__version__, "nt": nt.__version__, "times": times}))


def _nt_ok(python: Path) -> bool:
    if not python.exists():
        return False
    probe = ("import sys, types; sys.modules['neural_tangents.experimental'] = "
             "types.ModuleType('x'); import neural_tangents as nt, jax; "
             f"assert nt.__version__ == '{NT_VERSION}' and jax.__version__ == '{NT_JAX}'")
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def ensure_nt(venv: Path) -> tuple[Path | None, str]:
    """(python of an environment with neural-tangents, "") or (None, why not)."""
    python = venv / "bin" / "python"
    if _nt_ok(python):
        return python, ""
    print(f"installing neural-tangents {NT_VERSION} into {venv} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *NT_REQUIREMENTS],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", f"neural-tangents=={NT_VERSION}"],
    ]
    for cmd in steps:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"`{' '.join(cmd[2:5])}` failed: {e}"
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr + r.stdout).splitlines()
                     if ln.strip() and not ln.startswith("WARNING")]
            why = lines[-1] if lines else r.returncode
            return None, f"`{' '.join(cmd[2:6])} ...` failed: {why}"
        if cmd[1:3] == ["-m", "venv"]:  # keep the environment out of git
            (venv / ".gitignore").write_text("*\n")
    if not _nt_ok(python):
        return None, "neural_tangents does not import in the new environment"
    return python, ""


def _last_error(text: str) -> str:
    """The exception line of a traceback (JAX prints a note after it)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ("Error" in ln.split(":")[0] or "Exception" in ln.split(":")[0])
              and not ln.startswith("File ")]
    return errors[-1] if errors else (lines[-1] if lines else "")


def run_nt(python: Path, spec: dict, tmp: str):
    """(NT's times and versions, its kernels) or (None, why not)."""
    spec = dict(spec, out=f"{tmp}/nt_out_{spec['case']}.npz")
    r = subprocess.run([str(python), __file__, "--nt-worker", json.dumps(spec)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"the NT worker failed: {_last_error(r.stderr) or r.returncode}"
    report = json.loads(r.stdout.strip().splitlines()[-1])
    return report, dict(np.load(spec["out"]))


# --------------------------------------------------------------------------- case 1


def numpy_kernels(x, depth: int, w_std: float = 1.0, b_std: float = 0.0):
    """NNGP and NTK of (K-7)-(K-9) for relu, plain numpy: arccos of the clipped cosine."""
    w2, b2 = w_std**2, b_std**2
    K = w2 * (x @ x.T) / x.shape[1] + b2  # K^1 = Theta^1
    T = K.copy()
    for _ in range(depth):
        s = np.sqrt(np.diag(K))
        norms = np.outer(s, s)
        cos = np.clip(K / norms, -1.0, 1.0)
        np.fill_diagonal(cos, 1.0)
        theta = np.arccos(cos)
        post = (norms * np.sin(theta) + (np.pi - theta) * K) / (2 * np.pi)  # E phi phi (K-3)
        deriv = (np.pi - theta) / (2 * np.pi)  # E phi' phi'
        K = w2 * post + b2
        T = K + w2 * T * deriv
    return K, T


def case1(n: int, repeat: int, nt_python, tmp: str, rows: list):
    x = np.random.default_rng(0).standard_normal((n, D))
    xj = jnp.asarray(x)
    print(f"\ncase 1: depth-{DEPTH} relu NNGP + NTK, {n} x {n}, d = {D}, float64", flush=True)
    first, t_rf, (K_rf, T_rf), runs = best_of(lambda: kernels(xj, depth=DEPTH), repeat)
    rows.append(("1", "rfsim kernels(x, depth=3)", first, t_rf, runs, t_rf))
    first, t_np, (K_np, T_np), runs = best_of(lambda: numpy_kernels(x, DEPTH), repeat)
    rows.append(("1", "numpy recursion (K-7..K-9)", first, t_np, runs, t_rf))
    checks = [("rfsim vs numpy", rel_frobenius(K_rf, K_np), rel_frobenius(T_rf, T_np))]
    if nt_python is not None:
        np.savez(f"{tmp}/case1.npz", x=x)
        report, out = run_nt(nt_python, {"case": 1, "data": f"{tmp}/case1.npz",
                                         "repeat": repeat, "budget": BUDGET[0]}, tmp)
        if report is None:
            print(f"neural-tangents case 1 skipped: {out}")
        else:
            first, best, runs = report["times"]["kernel_fn"]
            rows.append(("1", f"NT {report['nt']} jit(kernel_fn) (jax {report['jax']})",
                         first, best, runs, t_rf))
            checks.append(("NT vs numpy", rel_frobenius(out["nngp"], K_np),
                           rel_frobenius(out["ntk"], T_np)))
            checks.append(("rfsim vs NT", rel_frobenius(K_rf, out["nngp"]),
                           rel_frobenius(T_rf, out["ntk"])))
    for name, dk, dt in checks:
        ok = "ok" if max(dk, dt) <= 1e-7 else "FAIL (> 1e-7)"
        print(f"  {name:15s} relative Frobenius: NNGP {dk:.2e}, NTK {dt:.2e}  {ok}")
    return checks


# --------------------------------------------------------------------------- case 2


def jacrev_ntk(apply_fn, params):
    """The textbook empirical NTK: J = d f(x) / d theta (flattened), then J J^T."""
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def ntk(flat, x):
        J = jax.jacrev(lambda p: apply_fn(unravel(p), x))(flat)
        return J @ J.T

    return lambda x: ntk(flat, x)


def case2(n: int, width: int, repeat: int, nt_python, tmp: str, rows: list):
    key = jax.random.key(0)
    apply_fn, params = mlp(key, D, depth=1, width=width)
    x = np.random.default_rng(1).standard_normal((n, D))
    xj = jnp.asarray(x)
    n_params = D * width + width + width + 1
    jac_bytes = n * n_params * 8
    avail = _mem_available()
    fits = avail is None or 3 * jac_bytes < avail
    print(f"\ncase 2: empirical NTK, depth 1, width {width}, d = {D}, {n} inputs, "
          f"{n_params} parameters, float64", flush=True)
    first, t_rf, ref_rf, runs = best_of(
        lambda: empirical_ntk(apply_fn, params, xj, implementation="structured"), repeat)
    rows.append(("2", 'rfsim empirical_ntk "structured"', first, t_rf, runs, t_rf))
    results = {'rfsim "structured"': ref_rf}
    first, best, out, runs = best_of(
        lambda: empirical_ntk(apply_fn, params, xj, implementation="auto"), repeat)
    rows.append(("2", 'rfsim empirical_ntk "auto"', first, best, runs, t_rf))
    results['rfsim "auto"'] = out
    if fits:
        first, best, out, runs = best_of(
            lambda: empirical_ntk(apply_fn, params, xj, implementation="jacobian"), repeat)
        rows.append(("2", 'rfsim empirical_ntk "jacobian"', first, best, runs, t_rf))
        results['rfsim "jacobian"'] = out
        fn = jacrev_ntk(apply_fn, params)
        first, best, ref, runs = best_of(lambda: fn(xj), repeat)
        rows.append(("2", "jax.jacrev(flat params) + J J^T", first, best, runs, t_rf))
        ref_name = "jacrev"
    else:
        print(f'  rfsim "jacobian" and the jacrev baseline skipped: the Jacobian needs '
              f"{jac_bytes / 1e9:.2f} GB, {avail / 1e9:.1f} GB available")
        ref, ref_name = ref_rf, 'rfsim "structured"'
    if nt_python is not None:
        Ws, bs = apply_fn.arrays(params)
        np.savez(f"{tmp}/case2.npz", x=x, W0=np.asarray(Ws[0]), b0=np.asarray(bs[0]),
                 W1=np.asarray(Ws[1]), b1=np.asarray(bs[1]))
        report, out = run_nt(nt_python, {"case": 2, "data": f"{tmp}/case2.npz",
                                         "repeat": repeat, "budget": BUDGET[0],
                                         "width": width}, tmp)
        if report is None:
            print(f"neural-tangents case 2 skipped: {out}")
        else:
            for name in NT_IMPLEMENTATIONS:
                first, best, runs = report["times"][name]
                rows.append(("2", f"NT {report['nt']} empirical_ntk_fn {name}", first, best,
                             runs, t_rf))
                results[f"NT {name}"] = out[name]
    checks = [(name, rel_frobenius(k, ref)) for name, k in results.items()]
    for name, dist in checks:
        ok = "ok" if dist <= 1e-10 else "FAIL (> 1e-10)"
        print(f"  {name:30s} vs {ref_name}: relative Frobenius {dist:.2e}  {ok}")
    return checks


# --------------------------------------------------------------------------- main


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, help="case 1: number of inputs (4000)")
    ap.add_argument("--n-ntk", type=int, help="case 2: number of inputs (1000)")
    ap.add_argument("--width", type=int, default=1024, help="case 2: hidden width")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls after the warm-up")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: case 1 on 1000 points, case 2 on 300 inputs")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds of timed calls per implementation (fewer runs past it)")
    ap.add_argument("--no-nt", action="store_true", help="skip neural-tangents")
    ap.add_argument("--nt-venv", type=Path, default=DEFAULT_VENV,
                    help="virtual environment for neural-tangents (created if missing)")
    args = ap.parse_args()
    quick = args.quick
    args.n = args.n or (1000 if quick else 4000)
    args.n_ntk = args.n_ntk or (300 if quick else 1000)
    BUDGET[0] = args.budget
    load0 = os.getloadavg()
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {nproc} cores ({_cpu_model()}), {platform.machine()}, "
          f"jax {jax.__version__} on {jax.default_backend()}, numpy {np.__version__}, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    if args.no_nt:
        nt_python, why = None, "--no-nt"
    else:
        nt_python, why = ensure_nt(args.nt_venv)
    if nt_python is None:
        print(f"neural-tangents skipped: {why}")
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        case1(args.n, args.repeat, nt_python, tmp, rows)
        case2(args.n_ntk, args.width, args.repeat, nt_python, tmp, rows)
    load1 = os.getloadavg()
    print(f"\nbest of {args.repeat} calls (fewer past {BUDGET[0]:.0f} s) after a warm-up call; "
          f"ratio = this row's time / rfsim's (case 1: kernels, case 2: \"structured\"); "
          f"> 1: rfsim faster")
    print("| case | implementation | first call (s) | best (s) | runs | ratio / rfsim |")
    print("|---|---|---|---|---|---|")
    for case, name, first, best, runs, ref in rows:
        print(f"| {case} | {name} | {first:.3f} | {best:.4f} | {runs} | {best / ref:.2f}x |")
    print(f"load average at the end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    if NT_WORKER:
        nt_worker(json.loads(sys.argv[sys.argv.index("--nt-worker") + 1]))
    else:
        main()
