"""The check suite behind ``rfsim check``: every experiment with claims, run and judged.

Each experiment runs (quick mode unless ``full``) into a directory named by its content
(``<name>[-quick]-<identity hash>``), so an edited experiment never meets old results and
nothing is overwritten; finished points are reused on the next call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rfsim.check import Verdict, evaluate, perturb_theory
from rfsim.engine.experiment import Experiment, load_experiment, quick
from rfsim.engine.runner import identity_hash, run_experiment


def suite_experiments(folder: Path, only: list[str] | None = None,
                      full: bool = False) -> list[Experiment]:
    """The experiments of ``folder`` that make claims, all validated before any runs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--dir {folder} is not a directory")
    files = sorted(folder.glob("*.toml"))
    if only:
        files = [f for f in files if any(o in f.stem for o in only)]
    exps = []
    for f in files:
        try:
            exps.append(load_experiment(f))
        except ValueError as e:
            raise ValueError(f"{f}: {e}") from None
    exps = [e if full else quick(e) for e in exps if e.checks]
    if not exps:
        raise ValueError(f"no experiment with a [check] table in {folder}")
    return exps


def run_suite(exps: list[Experiment], out_root: Path, *, full: bool = False,
              perturb: float = 1.0, progress: bool = False, chunk_size: int = 8,
              interrupt: Callable[[], None] | None = None) -> Iterator[Verdict]:
    """Run each experiment and yield its verdicts as they come (``perturb`` multiplies every
    prediction first: the suite's twin, showing that its claims can fail)."""
    for exp in exps:
        out = Path(out_root) / f"{exp.name}{'' if full else '-quick'}-{identity_hash(exp)}"
        res = run_experiment(exp, out=out, progress=progress, plot=False,
                             chunk_size=chunk_size, interrupt=interrupt)
        rows = res.summary if perturb == 1.0 else perturb_theory(res.summary, perturb)
        for i, spec in enumerate(exp.checks):
            yield evaluate(rows, spec, default_name=f"{exp.name}#{i + 1}")
