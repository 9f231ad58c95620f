"""Run an experiment into a run directory (the engine behind ``rfsim run``).

Python use::

    import jax; jax.config.update("jax_enable_x64", True)
    import rfsim
    res = rfsim.run_experiment("experiments/linear_ridge_double_descent.toml",
                               out="runs/dd", seeds=16)
    for row in res.summary:            # dicts as in summary.csv
        print(row["n"], row["ridge"], row["metric"], row["mean"], row["theory"])
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax

from rfsim import provenance
from rfsim.check import Verdict, evaluate
from rfsim.config import field_names
from rfsim.experiment import Experiment, load_experiment
from rfsim.io import RunDir, atomic_write, point_id, point_record, read_csv, write_tables
from rfsim.models import get_model
from rfsim.sweep import plan, run_points, shard_points

KEY_SCHEME = "fold_in(fold_in(key(root_seed), static_group_index), seed)"


@dataclasses.dataclass
class RunResult:
    path: Path
    summary: list[dict]  # rows of summary.csv
    computed: int  # grid points simulated in this call
    reused: int  # grid points found finished in the run directory
    nonfinite: list[dict]  # {index, params, metric, seeds} where a simulation was not finite
    verdicts: list[Verdict]
    figure: Path | None = None


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


def run_experiment(
    experiment: Experiment | str | Path,
    *,
    out: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    chunk_size: int = 8,
    progress: bool = False,
    plot: bool = True,
    on_group_done=None,
    compute: bool = True,
    x64: bool | None = None,
    replace: bool = False,
) -> RunResult:
    """Simulate + predict every grid point of ``experiment`` and write the run directory.

    Points already finished in ``out`` (same model, values, seeds, root seed and float
    width) are reused, not recomputed.  ``on_group_done(results)`` is called after each
    group's records are safely on disk.
    """
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    model = get_model(exp.model)
    points = shard_points(plan(exp, model), shard)  # validates every config first
    run = RunDir(out or Path("runs") / exp.name)
    if not replace:
        _refuse_other_experiment(run, exp)
    x64 = _x64() if x64 is None else x64
    ids = {p.index: point_id(model.name, p.values, exp.seeds, exp.root_seed, x64) for p in points}
    todo = [p for p in points if not run.has_point(ids[p.index])]
    start = time.time()

    def save(group_results):
        for r in group_results:
            record = point_record(r.point.index, r.point.values, r.sim, r.theory)
            run.write_point(ids[r.point.index], record)
        if on_group_done is not None:
            on_group_done(group_results)

    if todo and not compute:
        raise ValueError(
            f"{len(todo)} of {len(points)} grid points have no result in {run.path}; "
            "run the missing shard(s) first"
        )
    if todo:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_text("config.toml", exp.source or "")
        run_points(model, todo, seeds=exp.seeds, root_seed=exp.root_seed,
                   chunk_size=chunk_size, progress=progress, on_group_done=save)
    records = [run.read_point(ids[p.index]) for p in points]
    columns = list(field_names(model.config))
    write_tables(run, columns, model.metrics, records)
    nonfinite = _nonfinite(records, columns)
    summary = read_csv(run.file("summary.csv"))
    verdicts = [evaluate(summary, spec, default_name=f"{exp.name}#{i + 1}")
                for i, spec in enumerate(exp.checks)] if shard == (0, 1) else []
    meta = {
        "experiment": exp.to_dict(),
        "command_line": provenance.command_line(),
        "root_seed": exp.root_seed,
        "seeds": exp.seeds,
        "key_scheme": KEY_SCHEME,
        "shard": f"{shard[0]}/{shard[1]}",
        "grid_points": len(points),
        "computed_points": len(todo),
        "reused_points": len(points) - len(todo),
        "chunk_size": chunk_size,
        "nonfinite": nonfinite,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "versions": provenance.versions(),
        **provenance.runtime(),
        "git": provenance.git_state(),
        "utc_time": provenance.utc_now(),
        "wall_time_s": round(time.time() - start, 3),
    }
    if not run.file("config.toml").exists():
        run.write_text("config.toml", exp.source or "")
    run.write_json("meta.json", meta)
    figure = None
    if plot and exp.plot is not None:
        from rfsim.plot import plot_run

        figure = plot_run(run.path)
    return RunResult(run.path, summary, len(todo), len(points) - len(todo), nonfinite,
                     verdicts, figure)


def _refuse_other_experiment(run: RunDir, exp: Experiment) -> None:
    """Never overwrite the tables of a different experiment (its point records would stay,
    but its summary.csv would silently change meaning)."""
    meta = run.file("meta.json")
    if not meta.is_file():
        return
    old = json.loads(meta.read_text()).get("experiment")
    new = json.loads(json.dumps(exp.to_dict(), default=str))
    if old is not None and old != new:
        raise ValueError(
            f"{run.path} holds the results of a different experiment (see its config.toml "
            "and meta.json); choose another --out, or pass --force to rewrite its tables "
            "(finished grid points are kept and reused)"
        )


def _nonfinite(records: list[dict], columns: list[str]) -> list[dict]:
    bad = []
    for rec in records:
        for metric, values in rec["sim"].items():
            seeds = [i for i, v in enumerate(values) if v is None]
            if seeds:
                bad.append({"index": rec["index"], "metric": metric, "seeds": seeds,
                            "params": {c: rec["values"][c] for c in columns}})
    return bad


def describe_nonfinite(bad: list[dict], limit: int = 5) -> str:
    lines = [f"{sum(len(b['seeds']) for b in bad)} non-finite simulation result(s) were left "
             "blank in sim.csv and excluded from summary.csv:"]
    for b in bad[:limit]:
        params = ", ".join(f"{k}={v}" for k, v in b["params"].items())
        lines.append(f"  {b['metric']} at grid point {b['index']} ({params}), seeds {b['seeds']}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (see meta.json 'nonfinite')")
    return "\n".join(lines)


def merge_runs(dirs: list[str | Path], out: str | Path, *, plot: bool = True) -> RunResult:
    """Join shard directories of one experiment into ``out`` (no simulation is rerun)."""
    metas = []
    for d in dirs:
        meta_path = Path(d) / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"{d} is not a run directory (no meta.json)")
        metas.append(json.loads(meta_path.read_text()))
    first = metas[0]
    for d, m in zip(dirs[1:], metas[1:]):
        if m["experiment"] != first["experiment"] or m["x64"] != first["x64"]:
            raise ValueError(f"{d} holds a different experiment (or float width) than {dirs[0]}")
    fields = dict(first["experiment"])
    fields["checks"] = tuple(fields.get("checks", ()))
    exp = Experiment(**fields, source=(Path(dirs[0]) / "config.toml").read_text())
    target = RunDir(out)
    target.points_dir.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        for f in (Path(d) / "points").glob("*.json"):
            if not target.has_point(f.stem):
                atomic_write(target.points_dir / f.name, f.read_bytes())
    return run_experiment(exp, out=out, compute=False, x64=first["x64"], plot=plot,
                          replace=True)
