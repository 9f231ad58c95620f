"""The check suite behind ``rfsim check``: every experiment with claims, run and judged.

Each experiment runs (quick mode unless ``full``) into a directory named by its content
(``<name>[-quick]-<identity hash>``, :func:`rfsim.engine.runner.default_out`), so an edited
experiment never meets old results and nothing is overwritten; finished points are reused
on the next call.  Every experiment is validated once, before any runs (its plan is what
runs), and every claim is evaluated once: the run's verdicts are the suite's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rfsim.checks import Verdict, perturb_theory
from rfsim.engine.experiment import Experiment, load_experiment, quick
from rfsim.engine.runner import Plan, default_out, prepare, run_experiment


def suite_experiments(folder: Path, only: list[str] | None = None,
                      full: bool = False) -> list[Experiment]:
    """The experiments of ``folder`` that make claims (quick variants unless ``full``);
    their structure is checked here, the rest in :func:`suite_plans`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--dir {folder} is not a directory")
    files = sorted(folder.glob("*.toml"))
    if only:
        files = [f for f in files if any(o in f.stem for o in only)]
    exps = []
    for f in files:
        try:
            exp = load_experiment(f, validate=False)
            if exp.checks:
                exps.append(exp if full else quick(exp, validate=False))
        except ValueError as e:
            raise ValueError(f"{f}: {e}") from None
    if not exps:
        raise ValueError(f"no experiment with a [check] table in {folder}")
    return exps


def suite_plans(exps: list[Experiment], *, chunk_size: int = 8) -> list[Plan]:
    """Every experiment validated and planned (once each), before any runs."""
    plans = []
    for exp in exps:
        try:
            plans.append(prepare(exp, chunk_size=chunk_size))
        except ValueError as e:
            raise ValueError(f"{exp.name}: {e}") from None
    return plans


def run_suite(exps: list[Experiment | Plan], out_root: Path, *, full: bool = False,
              perturb: float = 1.0, progress: bool = False, chunk_size: int = 8,
              interrupt: Callable[[], None] | None = None) -> Iterator[Verdict]:
    """Run each experiment and yield its verdicts as they come (``perturb`` multiplies every
    prediction first: the suite's twin, showing that its claims can fail)."""
    plans = [e if isinstance(e, Plan) else None for e in exps]
    if None in plans:
        plans = suite_plans([e.exp if isinstance(e, Plan) else e for e in exps],
                            chunk_size=chunk_size)
    for job in plans:
        exp = job.exp
        out = default_out(exp, quick=not full, identity=job.identity_hash, root=out_root)
        res = run_experiment(job, out=out, progress=progress, plot=False,
                             interrupt=interrupt)
        if perturb == 1.0:
            yield from res.verdicts
            continue
        table = perturb_theory(res.table, perturb)
        for i, check in enumerate(job.checks):
            yield check.evaluate(table, default_name=f"{exp.name}#{i + 1}")
