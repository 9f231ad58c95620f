"""``rfsim`` command line: run, demo, check, plot, merge, info.

Errors are one line on stderr (``error: ...``) with exit code 2, before any compute.
Exit codes: 0 success; 1 a check FAILed (``rfsim check``); 2 bad input (or a run directory
or file that cannot be used); 3 the run finished but some simulations were not finite
(reported, left blank); 130 / 143 interrupted by Ctrl-C / SIGTERM (rerun the same command
to resume: finished grid points are kept).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import tomllib
from pathlib import Path

from rfsim.engine.interrupt import Checkpoint, Interrupted, deferred_signals, install, term_grace_s

DEMO = "linear_ridge_double_descent"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def experiments_dir() -> Path:
    """The experiments shipped with rfsim (wheel: rfsim/_experiments; source tree: experiments/)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_experiments", here.parent / "experiments"):
        if cand.is_dir():
            return cand
    raise ValueError("no experiments directory found next to the rfsim package")


def _setup_precision(float32: bool) -> None:
    import jax

    if float32:
        jax.config.update("jax_enable_x64", False)
        jax.config.update("jax_default_matmul_precision", "highest")
    else:
        jax.config.update("jax_enable_x64", True)


def _load(args, path):
    from rfsim.engine.experiment import apply_overrides, load_experiment, quick

    exp = load_experiment(path, validate=False)  # the structure; the rest once, in prepare
    exp = apply_overrides(exp, args.set or [], seeds=args.seeds, root_seed=args.root_seed,
                          validate=False)
    if getattr(args, "quick", False):
        exp = quick(exp, validate=False)
    return exp


def _report(res, t0: float) -> int:
    from rfsim.engine.runner import describe_nonfinite

    print(f"run directory: {res.path}")
    if res.computed + res.reused == 0:
        print(f"this shard has no grid points (the grid has {res.grid_points}): nothing to "
              "compute; `rfsim merge` accepts this directory")
        return 0
    if res.figure is not None:
        print(f"figure: {res.figure}")
    print(f"grid points: {res.computed} computed, {res.reused} reused from the run directory "
          f"({time.time() - t0:.1f} s)")
    for v in res.verdicts:
        print(v.line())
    if res.nonfinite:
        sys.stderr.write("warning: " + describe_nonfinite(res.nonfinite) + "\n")
        return 3
    return 0


def cmd_run(args) -> int:
    from rfsim.engine.runner import default_out, prepare, run_experiment
    from rfsim.engine.sweep import parse_shard

    shard = parse_shard(args.shard)
    if args.out is not None and not args.out.strip():
        raise ValueError("--out must name a directory, got ''")
    exp = _load(args, args.experiment)
    out = args.out or default_out(exp, quick=args.quick, shard=shard)
    job = prepare(exp, shard=shard, chunk_size=args.chunk)
    if args.dry_run:
        return _dry_run(job, out, args.force)
    t0 = time.time()
    res = run_experiment(job, out=out, progress=not args.quiet, plot=not args.no_plot,
                         force=args.force, interrupt=args.checkpoint)
    return _report(res, t0)


def _dry_run(job, out, force: bool) -> int:
    from rfsim.engine.ownership import inspect
    from rfsim.engine.sweep import group_points

    groups = group_points(job.points)
    print(f"{len(job.points)} grid points ({job.total} in the full grid) in {len(groups)} "
          f"compiled group(s), {job.exp.seeds} seeds each, {job.chunk_size} seed(s) per call")
    if job.memory:
        from rfsim.engine.resources import available_memory, human

        available, where = available_memory()
        room = "" if available is None else f" of {human(available)} available ({where})"
        print(f"memory: about {human(job.memory)} per seed in the largest group{room}")
    print(f"run directory: {out} ({inspect(Path(out), job.owner, force=force)})")
    return 0


def cmd_demo(args) -> int:
    from rfsim.engine.runner import default_out, run_experiment

    args.set, args.seeds, args.root_seed, args.quick = [], None, None, False
    exp = _load(args, experiments_dir() / f"{DEMO}.toml")
    t0 = time.time()
    print(f"rfsim demo: {exp.description}")
    res = run_experiment(exp, out=args.out or default_out(exp, name="demo"),
                         progress=not args.quiet, chunk_size=args.chunk,
                         interrupt=args.checkpoint)
    return _report(res, t0)


def cmd_check(args) -> int:
    from rfsim.engine.suite import run_suite, suite_experiments, suite_plans

    folder = Path(args.dir) if args.dir else experiments_dir()
    plans = suite_plans(suite_experiments(folder, args.only, args.full), chunk_size=args.chunk)
    failures = 0
    for v in run_suite(plans, Path(args.out_root), full=args.full, perturb=args.perturb,
                       progress=not args.quiet, chunk_size=args.chunk,
                       interrupt=args.checkpoint):
        failures += not v.passed
        print(v.line(), flush=True)
    print(f"{'all claims PASS' if not failures else f'{failures} claim(s) FAIL'}")
    return 1 if failures else 0


def cmd_plot(args) -> int:
    from rfsim.plot import plot_run

    print(f"figure: {plot_run(args.run_dir)}")
    return 0


def cmd_merge(args) -> int:
    from rfsim.engine.runner import merge_runs

    t0 = time.time()
    return _report(merge_runs(args.run_dirs, args.out, plot=not args.no_plot), t0)


def cmd_info(args) -> int:
    import dataclasses

    import jax

    from rfsim.engine import provenance
    from rfsim.checks import KINDS
    from rfsim.models import available, get_model

    for k, v in provenance.versions().items():
        print(f"{k:>16}: {v}")
    for k, v in provenance.runtime().items():
        print(f"{k:>16}: {v}")
    print(f"{'jax backend':>16}: {jax.default_backend()}")
    print("models:")
    for name in available():
        m = get_model(name)
        fields = ", ".join(
            f.name + ("" if f.default is dataclasses.MISSING else f"={f.default!r}")
            for f in dataclasses.fields(m.config)
        )
        print(f"  {name}: {m.description}\n    params: {fields}\n    metrics: "
              f"{', '.join(m.metrics)}")
    print(f"check kinds: {', '.join(sorted(KINDS))}")
    print(f"experiments: {experiments_dir()}")
    return 0


def _common(p, *, runs=True):
    p.add_argument("--float32", action="store_true",
                   help="float32 (with highest matmul precision) instead of float64")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if runs:
        p.add_argument("--chunk", type=int, default=8, help="seeds per compiled call (memory)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rfsim", description="Simulate learning-theory models next to their "
                     "closed-form predictions.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run an experiment TOML into a run directory")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--set", action="append", metavar="K=V",
                   help="override a parameter (a list value makes it a grid axis)")
    p.add_argument("--seeds", type=int, help="seeds per grid point")
    p.add_argument("--root-seed", type=int, help="root PRNG seed")
    p.add_argument("--out", help="run directory (default runs/<experiment name>)")
    p.add_argument("--shard", help="run shard i of N (0-based), e.g. 0/4")
    p.add_argument("--quick", action="store_true", help="apply the experiment's [quick] table")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--force", action="store_true",
                   help="let this experiment take over a run directory whose points it all "
                   "contains (a grown grid); never removes a result")
    p.add_argument("--dry-run", action="store_true",
                   help="validate, size and check the run directory; compute and write nothing")
    _common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the headline experiment shipped with rfsim")
    p.add_argument("--out", help="run directory (default runs/demo)")
    _common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check", help="run every experiment with a [check] table; PASS/FAIL")
    p.add_argument("--full", action="store_true", help="full seeds and grids (default: quick)")
    p.add_argument("--dir", help="experiments folder (default: the shipped experiments)")
    p.add_argument("--only", nargs="+", help="experiment names containing any of these")
    p.add_argument("--out-root", default="runs/check", help="where run directories go")
    p.add_argument("--perturb", type=float, default=1.0,
                   help="multiply every prediction by this factor (shows the checks can fail)")
    _common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plot", help="redraw a run directory's figure from summary.csv")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_plot, float32=False)

    p = sub.add_parser("merge", help="join shard run directories")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", required=True, help="merged run directory")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.set_defaults(func=cmd_merge, float32=False)

    p = sub.add_parser("info", help="versions, devices, models, check kinds")
    p.set_defaults(func=cmd_info, float32=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The console script.  Ctrl-C / SIGTERM are deferred to checkpoints between compiled
    calls (rfsim.engine.interrupt) for the whole command; as the console script the handlers stay
    until the process exits, so a late signal never turns into a traceback at shutdown."""
    try:
        term_grace_s()
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if __name__ == "__main__" or _is_console_script():
        checkpoint = Checkpoint()
        install(checkpoint, (signal.SIGINT, signal.SIGTERM))
        return _finish(_main(argv, checkpoint), checkpoint)
    with deferred_signals() as checkpoint:  # called from Python (tests): restore handlers
        return _finish(_main(argv, checkpoint), checkpoint)


def _is_console_script() -> bool:
    return Path(sys.argv[0]).name == "rfsim"


def _finish(code: int, checkpoint) -> int:
    if checkpoint.pending and code not in (130, 143):
        code = _interrupted(Interrupted(checkpoint.signum))
    return code


def _interrupted(e: Interrupted) -> int:
    sys.stderr.write(f"interrupted ({e}): finished grid points are saved; rerun the same "
                     "command to resume\n")
    return e.exit_code


def _main(argv, checkpoint) -> int:
    try:
        from rfsim.engine.ownership import describe_os_error
    except Interrupted as e:
        return _interrupted(e)
    try:
        args = build_parser().parse_args(argv)
        args.checkpoint = checkpoint
        _setup_precision(args.float32)
        return args.func(args)
    except Interrupted as e:
        return _interrupted(e)
    except KeyboardInterrupt:  # a signal before the handler was installed
        return _interrupted(Interrupted(2))
    except (ValueError, FileNotFoundError, tomllib.TOMLDecodeError) as e:
        sys.stderr.write(f"error: {_one_line(e)}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"error: {describe_os_error(e, getattr(e, 'filename', '') or '')}\n")
        return 2
    except RuntimeError as e:  # XLA's out-of-memory (the estimate missed); other bugs surface
        if "RESOURCE_EXHAUSTED" not in str(e) and "out of memory" not in str(e).lower():
            raise
        sys.stderr.write("error: out of memory: reduce the sizes, the seeds per call (--chunk) "
                         "or the grid; finished points are saved\n")
        return 2
    except MemoryError:
        sys.stderr.write("error: out of memory: reduce the sizes, the seeds (--seeds) or the "
                         "seeds per call (--chunk)\n")
        return 2


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split("\n")[0].split()) if str(e) else type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())
