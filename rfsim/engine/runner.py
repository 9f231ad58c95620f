"""Run an experiment into a run directory (the engine behind ``rfsim run``).

Python use::

    import jax; jax.config.update("jax_enable_x64", True)
    import rfsim
    res = rfsim.run_experiment("experiments/linear_ridge_double_descent.toml",
                               out="runs/dd", seeds=16)
    for row in res.summary:            # dicts as in summary.csv (text)
        print(row["n"], row["ridge"], row["metric"], row["mean"], row["theory"])
    res.table                          # the same rows typed (numbers): what checks read
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import signal
import time
from pathlib import Path

import jax
import numpy as np

from rfsim.engine import provenance
from rfsim.checks import Check, Verdict
from rfsim.config import param_fields
from rfsim.engine.experiment import (Experiment, experiment_checks, experiment_columns,
                                     load_experiment, planned_points)
from rfsim.engine.interrupt import deferred_signals, poll
from rfsim.engine.io import (FORMAT, RunDir, RunDirError, atomic_write, point_id, point_record,
                      write_tables)
from rfsim.engine.table import SummaryTable
from rfsim.engine.keys import KEY_SCHEME, STATE_KEY_SCHEME, state_key
from rfsim.models import Model
from rfsim.engine.ownership import Owner, claim, identity, read_owner
from rfsim.engine.resources import (MAX_TABLE_ROWS, available_memory, require_fits,
                             seed_bytes)
from rfsim.engine.sweep import Point, check_shard, group_points, run_points, shard_points


@dataclasses.dataclass
class RunResult:
    path: Path
    table: SummaryTable  # summary.csv, typed (numbers)
    computed: int  # grid points simulated in this call
    reused: int  # grid points found finished in the run directory
    nonfinite: list[dict]  # {index, params, metric, seeds} where a simulation was not finite
    verdicts: list[Verdict]
    figure: Path | None = None
    grid_points: int = 0  # points of the full grid (this shard's: computed + reused)
    chunk_size: int = 0  # seeds per compiled call actually used (may shrink to fit memory)

    @property
    def summary(self) -> list[dict[str, str]]:
        """The rows of summary.csv as text (dicts of strings, as the file reads)."""
        return self.table.text_rows()


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything decided before compute: the points, their ids, the owner record."""

    exp: Experiment
    parts: list[tuple[Model, list[Point]]]  # each family with this shard's points
    ids: dict[tuple[str, int], str]  # (family, grid index) -> point id
    owner: Owner
    chunk_size: int
    total: int  # points in the full grid (all families)
    memory: int = 0  # estimated peak bytes of the largest static group's seed (0: unknown)
    checks: tuple[Check, ...] = ()  # the experiment's [[check]] tables, validated
    shard: tuple[int, int] = (0, 1)  # which part of the grid ``parts`` holds

    @property
    def identity_hash(self) -> str:
        """A short hash of the experiment's identity (names `rfsim check` run directories)."""
        text = json.dumps(self.owner.identity, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def model(self) -> Model:
        return self.parts[0][0]

    @property
    def points(self) -> list[Point]:
        return [p for _, pts in self.parts for p in pts]


def prepare(exp: Experiment, *, shard: tuple[int, int] = (0, 1), chunk_size: int = 8,
            x64: bool | None = None) -> Plan:
    """Validate everything and size the run, without computing or writing anything.

    This is where an experiment is validated, once: its structure and checks
    (:func:`~rfsim.engine.experiment.check_structure`), every config
    (:func:`~rfsim.engine.experiment.planned_points`, kept if the experiment was
    validated on loading) and its checks and plot against the planned grid."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    x64 = _x64() if x64 is None else x64
    parts, ids, values, total, memory = [], {}, {}, 0, 0
    planned = planned_points(exp)  # validates every config (once per experiment)
    for model, everything in planned:
        name = model.name
        total += len(everything)
        for p in everything:
            poll()
            ids[name, p.index] = point_id(name, p.values, exp.seeds, exp.root_seed, x64)
        values[name] = [p.values for p in everything]
        points = shard_points(everything, shard)
        chunk_size, need = _fit_memory(model, points, chunk_size, x64)
        memory = max(memory, need)
        parts.append((model, points))
    require_table_rows(exp.seeds, planned)
    names = exp.model_names
    from rfsim.engine.planned import validate_planned  # checks and plot against the full grid
    validate_planned(exp, planned)  # the full grid of every family, as Points
    ident = identity(names[0] if not exp.models else list(names),
                     values[names[0]] if not exp.models else values,
                     seeds=exp.seeds, root_seed=exp.root_seed, x64=x64)
    owner = Owner(ident, tuple(ids.values()), exp.to_dict())
    return Plan(exp, parts, ids, owner, chunk_size, total, memory, experiment_checks(exp),
                shard)


def table_rows(seeds: int, planned: list[tuple[Model, list[Point]]]) -> int:
    """Rows of sim.csv: per (point, seed) one row for the scalar metrics (if any) and one
    per coordinate of each axis that has metrics (coordinates from the plan, computed
    once per static group)."""
    rows = 0
    for model, points in planned:
        scalar = any(m not in model.axes for m in model.metrics)
        per_group: dict = {}
        for p in points:
            if p.group not in per_group:
                per_group[p.group] = int(scalar) + sum(
                    len(p.coords[a]) for a in model.axis_names)
            rows += per_group[p.group]
    return rows * seeds


def require_table_rows(seeds: int, planned: list[tuple[Model, list[Point]]]) -> None:
    """Refuse a run whose sim.csv would exceed ``MAX_TABLE_ROWS`` (axis rows counted)."""
    rows = table_rows(seeds, planned)
    if rows > MAX_TABLE_ROWS:
        raise ValueError(
            f"the run would write {rows:,} rows of sim.csv (grid points x seeds x axis "
            f"coordinates); at most {MAX_TABLE_ROWS:,} are allowed: use fewer seeds, grid "
            "points or coordinates along the axis")


def _fit_memory(model: Model, points: list[Point], chunk_size: int,
                x64: bool) -> tuple[int, int]:
    """Refuse a static group whose working set for one seed does not fit in memory.  Seeds
    run as a loop inside a compiled call, so the chunk size does not multiply the working
    set (only the outputs) and is returned unchanged, with the largest group's estimate
    in bytes (:func:`rfsim.engine.resources.seed_bytes`)."""
    if model.memory is None or not points:
        return chunk_size, 0
    available, where = available_memory()
    itemsize = 8 if x64 else 4
    need = 0
    for pts in group_points(points).values():
        p = pts[0]
        statics = ", ".join(f"{k}={v}" for k, v in p.values.items()
                            if k not in _dynamic(model))
        peak = int(model.memory(p.cfg))
        require_fits(peak, itemsize, available, where, f"({statics})")
        need = max(need, seed_bytes(peak, itemsize))
    return chunk_size, need


def _dynamic(model: Model) -> set[str]:
    return set(param_fields(model.config))


def identity_hash(exp: Experiment, x64: bool | None = None) -> str:
    """A short hash of the experiment's identity (names `rfsim check` run directories)."""
    return prepare(exp, x64=x64).identity_hash


def default_out(exp: Experiment, *, quick: bool = False, shard: tuple[int, int] = (0, 1),
                identity: str | None = None, root: str | Path = "runs",
                name: str | None = None) -> Path:
    """The run directory's name when none is given, the one rule for every command:
    ``<root>/<name>[-quick][-shard<i>of<N>][-<identity hash>]``, ``name`` being the
    experiment's (``rfsim demo``: "demo"); ``rfsim check`` adds the identity, so an edited
    experiment never meets old results."""
    name = ((name or exp.name) + ("-quick" if quick else "")
            + (f"-shard{shard[0]}of{shard[1]}" if shard[1] > 1 else "")
            + (f"-{identity}" if identity else ""))
    return Path(root) / name


def run_experiment(
    experiment: Experiment | str | Path | Plan,
    *,
    out: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    chunk_size: int = 8,
    progress: bool = False,
    plot: bool = True,
    on_group_done=None,
    compute: bool = True,
    x64: bool | None = None,
    force: bool = False,
    interrupt=None,
) -> RunResult:
    """Simulate + predict every grid point of ``experiment`` and write the run directory.

    Everything is validated and sized before anything is computed or written (or was: a
    :class:`Plan` from :func:`prepare` is run as it is, for the whole grid or its
    ``shard``).  The run
    directory is claimed for this experiment (:mod:`rfsim.engine.ownership`: a directory holding
    anything else is refused; ``force`` lets a grown grid take over the directory, adding
    points, never removing any).  Points already finished there (same model, values, seeds,
    root seed, float width) are reused, not recomputed.  ``on_group_done(results)`` is called
    after each group's records are safely on disk.  ``interrupt()`` is called between
    compiled calls and may raise to stop (by default Ctrl-C is deferred to those points, so
    it never lands inside an XLA computation; it then raises ``KeyboardInterrupt``).
    """
    if isinstance(experiment, (str, Path)):
        experiment = load_experiment(experiment, validate=False)  # validated in prepare
    if isinstance(experiment, Plan):
        job = experiment
    elif isinstance(experiment, Experiment):
        job = prepare(experiment, shard=check_shard(shard), chunk_size=chunk_size, x64=x64)
    else:
        raise ValueError(f"experiment must be an Experiment or a TOML path, got "
                         f"{type(experiment).__name__}")
    exp = job.exp
    if out is not None and str(out) == "":
        raise ValueError("out must name a directory, got ''")
    run = RunDir(out or default_out(exp))
    with contextlib.ExitStack() as stack:
        if interrupt is None:
            interrupt = stack.enter_context(deferred_signals((signal.SIGINT,)))
        lock = claim(run.path, job.owner, force=force)
        stack.callback(lock.release)
        return _run(job, run, job.shard, progress, plot, on_group_done, compute, interrupt)


def _run(job: Plan, run: RunDir, shard, progress, plot, on_group_done, compute,
         interrupt) -> RunResult:
    exp = job.exp
    start = time.time()
    several = bool(exp.models)
    records: dict[tuple[str, int], dict] = {}
    todo: list[tuple[Model, list[Point]]] = []
    for model, points in job.parts:
        for p in points:
            pid = job.ids[model.name, p.index]
            if run.has_point(pid):
                records[model.name, p.index] = run.read_point(
                    pid, values=p.values, seeds=exp.seeds, metrics=model.metrics)
        todo.append((model, [p for p in points if (model.name, p.index) not in records]))
    n_todo = sum(len(pts) for _, pts in todo)
    n_points = len(job.points)
    if n_todo and not compute:
        raise ValueError(
            f"{n_todo} of {n_points} grid points have no result in {run.path}; "
            "run the missing shard(s) first")
    run.write_text("config.toml", exp.source or "")
    for model, points in todo:
        if not points:
            continue

        def save(group_results, model=model):
            for r in group_results:
                record = point_record(r.point.index, r.point.values, r.sim, r.theory,
                                      r.coords, model.axes, model.name if several else None)
                run.write_point(job.ids[model.name, r.point.index], record)
                records[model.name, r.point.index] = record
            interrupt()  # a deferred Ctrl-C stops here, with this group safely on disk
            if on_group_done is not None:
                on_group_done(group_results)

        run_points(model, points, seeds=exp.seeds, root_seed=exp.root_seed,
                   chunk_size=job.chunk_size, progress=progress, on_group_done=save,
                   interrupt=interrupt)
    columns, _, metrics = experiment_columns(exp)
    ordered, order_points = [], []
    for model, points in job.parts:
        for p in points:
            rec = records[model.name, p.index]
            if several:
                rec = {**rec, "values": {"model": model.name, **rec["values"]}}
            ordered.append(rec)
            order_points.append(p)
    table = write_tables(run, columns, metrics, ordered)
    nonfinite = _nonfinite(ordered, order_points, columns)
    verdicts = [check.evaluate(table, default_name=f"{exp.name}#{i + 1}")
                for i, check in enumerate(job.checks)] if shard == (0, 1) and table else []
    model, points, todo_count = job.model, job.points, n_todo
    meta = {
        "format": FORMAT,
        "experiment": exp.to_dict(),
        "command_line": provenance.command_line(),
        "root_seed": exp.root_seed,
        "seeds": exp.seeds,
        "key_scheme": KEY_SCHEME,
        **{k: v for model_, pts in job.parts
           for k, v in _state_keys(model_, pts, exp.root_seed).items()},
        "shard": f"{shard[0]}/{shard[1]}",
        "grid_points": len(points),
        "grid_points_total": job.total,
        "computed_points": todo_count,
        "reused_points": len(points) - todo_count,
        "chunk_size": job.chunk_size,
        "nonfinite": nonfinite,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "versions": provenance.versions(),
        **provenance.runtime(),
        "git": provenance.git_state(),
        "utc_time": provenance.utc_now(),
        "wall_time_s": round(time.time() - start, 3),
    }
    run.write_json("meta.json", meta)
    figure = None
    if plot and exp.plot is not None and table:
        from rfsim.plot import plot_run

        figure = plot_run(run.path)
    interrupt()
    return RunResult(run.path, table, todo_count, len(points) - todo_count, nonfinite,
                     verdicts, figure, job.total, job.chunk_size)


def _state_keys(model: Model, points: list[Point], root_seed: int) -> dict:
    """The key each static group's frozen state was drawn from (families with init)."""
    if not model.stateful:
        return {}
    from rfsim.config import static_fields

    seen, keys = set(), []
    for p in points:
        if p.group not in seen:
            seen.add(p.group)
            data = jax.random.key_data(state_key(root_seed, p.group))
            keys.append({"statics": {k: p.values[k] for k in static_fields(model.config)},
                         "key_data": [int(x) for x in data.ravel()]})
    return {"state_key_scheme": STATE_KEY_SCHEME, "state_keys": keys}


def _nonfinite(records: list[dict], points: list[Point], columns: list[str]) -> list[dict]:
    """Simulations that were not finite, and predictions that are NaN (an infinite
    prediction, e.g. ridgeless risk at n = d, is a value; NaN never is)."""
    bad = []
    for rec, p in zip(records, points):
        params = {c: rec["values"].get(c) for c in columns}
        for metric, values in rec["sim"].items():
            seeds = [i for i, v in enumerate(values)
                     if v is None or (isinstance(v, list) and None in v)]
            if seeds:
                bad.append({"index": p.index, "metric": metric, "seeds": seeds,
                            "params": params})
        for metric, value in rec["theory"].items():
            if np.isnan(np.asarray(value, float)).any():
                bad.append({"index": p.index, "metric": metric, "seeds": [],
                            "prediction": True, "params": params})
    return bad


def describe_nonfinite(bad: list[dict], limit: int = 5) -> str:
    sims = sum(len(b["seeds"]) for b in bad)
    preds = sum(bool(b.get("prediction")) for b in bad)
    what = [f"{sims} non-finite simulation result(s) were left blank in sim.csv and "
            "excluded from summary.csv"] if sims else []
    what += [f"{preds} prediction(s) are NaN (blank theory in summary.csv)"] if preds else []
    lines = ["; ".join(what) + ":"]
    for b in bad[:limit]:
        params = ", ".join(f"{k}={v}" for k, v in b["params"].items())
        where = "prediction" if b.get("prediction") else f"seeds {b['seeds']}"
        lines.append(f"  {b['metric']} at grid point {b['index']} ({params}), {where}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (see meta.json 'nonfinite')")
    return "\n".join(lines)


def _experiment_from_record(record: dict, where: Path) -> Experiment:
    """The Experiment stored in a directory's experiment.json, or a one-line error."""
    from rfsim.engine.experiment import validate_experiment

    fields = dict(record)
    fields["checks"] = tuple(fields.get("checks", ()))
    fields["models"] = tuple(fields.get("models", ()))
    try:
        source = (where / "config.toml").read_text()
    except OSError:
        source = ""
    try:
        exp = Experiment(**fields, source=source)
        validate_experiment(exp)
    except (TypeError, ValueError) as e:
        raise RunDirError(f"{where / 'experiment.json'} is not as rfsim wrote it ({e}): rerun "
                          "that shard into a new directory") from None
    return exp


def merge_runs(dirs: list[str | Path], out: str | Path, *, plot: bool = True) -> RunResult:
    """Join shard directories of one experiment into ``out`` (no simulation is rerun).

    Every directory must be owned by the same experiment (same identity: the first
    difference is named otherwise); ``out`` follows the run-directory rule (new, empty, or
    owned by that experiment).  Empty shards are accepted.
    """
    if not dirs:
        raise ValueError("merge needs at least one run directory")
    owners = []
    for d in dirs:
        if not Path(d).is_dir():
            raise RunDirError(f"{d} is not a directory")
        owner = read_owner(Path(d))
        if owner is None:
            raise RunDirError(f"{d} is not a run directory of this rfsim (no experiment.json)")
        owners.append(owner)
    first = owners[0]
    for d, o in zip(dirs[1:], owners[1:]):
        if o.identity != first.identity:
            from rfsim.engine.ownership import first_difference

            diff = first_difference(first.identity, o.identity).replace(
                "in the directory", f"in {dirs[0]}").replace("in this experiment", f"in {d}")
            raise RunDirError(f"{d} holds a different experiment than {dirs[0]} ({diff})")
    exp = _experiment_from_record(first.experiment, Path(dirs[0]))
    x64 = first.identity.get("float") == "float64"
    job = prepare(exp, x64=x64)
    if job.owner.identity != first.identity:
        raise RunDirError(f"{Path(dirs[0]) / 'experiment.json'} is not as rfsim wrote it (its "
                          "experiment does not match its identity): rerun that shard into a "
                          "new directory")
    # every point must be found, readable and right in some shard before anything is written
    sources: dict[str, Path] = {}
    target = RunDir(out)
    for model, points in job.parts:
        for p in points:
            pid = job.ids[model.name, p.index]
            if target.has_point(pid):
                target.read_point(pid, values=p.values, seeds=exp.seeds, metrics=model.metrics)
                continue
            for d in dirs:
                shard = RunDir(d)
                if shard.has_point(pid):
                    shard.read_point(pid, values=p.values, seeds=exp.seeds,
                                     metrics=model.metrics)  # names the shard's file if bad
                    sources[pid] = shard.points_dir / f"{pid}.json"
                    break
    missing = len(job.owner.points) - len(sources) - sum(
        target.has_point(pid) for pid in job.owner.points)
    if missing > 0:
        raise ValueError(f"{missing} of {job.total} grid points have no result in "
                         f"{', '.join(str(d) for d in dirs)}: run the missing shard(s) first")
    lock = claim(target.path, job.owner)
    try:
        for pid, f in sources.items():
            if not target.has_point(pid):
                atomic_write(target.points_dir / f.name, f.read_bytes())
        return run_experiment(job, out=out, compute=False, plot=plot)
    finally:
        lock.release()
