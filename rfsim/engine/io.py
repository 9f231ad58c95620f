"""Run directories: atomic writes, content-addressed point records, CSV tables.

Layout of a run directory ``DIR``::

    DIR/experiment.json    whose directory this is: the experiment's identity (written first)
    DIR/points/<id>.json   one record per finished grid point (the resume state)
    DIR/sim.csv            one row per (grid point, seed)
    DIR/summary.csv        one row per (grid point, metric)
    DIR/meta.json          provenance
    DIR/config.toml        the experiment file, verbatim
    DIR/.rfsim.lock        held (flock) while a run uses the directory

A point's ``id`` hashes everything that determines its numbers (model, all
parameter values, seeds, root seed, float width, key scheme), so a rerun -- after a
crash, or with a grid that grew -- recomputes only the points that are missing.
Files are written atomically (temp file + rename) with the permissions the umask allows.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rfsim.engine.keys import KEY_VERSION, plain
from rfsim.engine.table import (SUMMARY_STATS, SummaryTable, format_value,  # noqa: F401
                                to_float)

FORMAT = 2  # run-directory format; 1 = position-based keys, no experiment.json


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temp file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; keep what the umask allows
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([format_value(v) for v in row])
    atomic_write(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def point_id(model: str, values: dict, seeds: int, root_seed: int, x64: bool) -> str:
    """Content address of a point's results; refuses values that are not plain data."""
    blob = json.dumps(
        {"model": model, "values": {k: plain(v, field=k) for k, v in values.items()},
         "seeds": seeds, "root_seed": root_seed, "x64": x64, "keys": KEY_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


class RunDirError(ValueError):
    """A run directory (or a file in it) is not as rfsim wrote it; the message says the fix."""


class RunDir:
    """A run directory; point records are written atomically as groups finish."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.points_dir = self.path / "points"

    def has_point(self, pid: str) -> bool:
        return (self.points_dir / f"{pid}.json").is_file()

    def read_point(self, pid: str, *, values: dict, seeds: int, metrics) -> dict:
        """The record of point ``pid``, checked against what it must hold."""
        path = self.points_dir / f"{pid}.json"
        fix = f"{path} is unreadable ({{}}): delete it to recompute that point"
        try:
            rec = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunDirError(fix.format(_short(e))) from None
        problem = _record_problem(rec, values, seeds, metrics)
        if problem:
            raise RunDirError(fix.format(problem))
        return rec

    def write_point(self, pid: str, record: dict) -> None:
        atomic_write(self.points_dir / f"{pid}.json", json.dumps(record))

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=_jsonable) + "\n")

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text)

    def file(self, name: str) -> Path:
        return self.path / name


def _short(e: Exception) -> str:
    return (e.strerror or str(e)) if isinstance(e, OSError) else str(e).split("\n")[0]


def _record_problem(rec, values: dict, seeds: int, metrics) -> str:
    """Why ``rec`` is not the record of a point with these values and seeds ('' if it is)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    for key in ("index", "values", "seeds", "sim", "theory"):
        if key not in rec:
            return f"no {key!r} entry"
    if isinstance(rec["seeds"], bool) or not isinstance(rec["seeds"], int) \
            or rec["seeds"] != seeds:
        return f"{rec['seeds']!r} seeds recorded, {seeds} expected"
    if rec.get("checksum") != record_checksum(rec):
        return "its checksum does not match its contents (edited or damaged)"
    if rec["values"] != {k: plain(v, field=k) for k, v in values.items()}:
        return "its parameter values differ from the point's"
    sim, theory = rec["sim"], rec["theory"]
    if not isinstance(sim, dict) or set(sim) != set(metrics):
        return f"metrics {sorted(sim) if isinstance(sim, dict) else sim!r}, expected " \
               f"{sorted(metrics)}"
    coords = rec.get("coords", {})
    if not isinstance(coords, dict) or not all(
            isinstance(c, list) and all(_is_number(x) for x in c) for c in coords.values()):
        return "its coords entry is not a table of coordinate lists"
    axes = rec.get("axes", {})
    if not isinstance(axes, dict) or any(a not in coords for a in axes.values()):
        return "its axes entry names coordinates it does not hold"
    for m, col in sim.items():
        size = len(coords[axes[m]]) if m in axes else None
        if not isinstance(col, list) or len(col) != seeds or not all(
                _cell_ok(v, size) for v in col):
            shape = f"{seeds} numbers" if size is None else f"{seeds} lists of {size} numbers"
            return f"metric {m!r} does not hold {shape}"
    if not isinstance(theory, dict) or not all(
            _cell_ok(v, len(coords[axes[m]]) if m in axes else None, finite=False)
            for m, v in theory.items()):
        return "its theory entry is not a table of numbers"
    return ""


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell_ok(v, size: int | None, finite: bool = True) -> bool:
    """A record cell: a number (or null) for a scalar metric, a list of ``size`` of them for
    a metric along an axis."""
    if size is None:
        return (v is None and finite) or (_is_number(v) and (math.isfinite(v) or not finite))
    return isinstance(v, list) and len(v) == size and all(_cell_ok(x, None, finite) for x in v)


def point_record(index: int, values: dict, sim: dict[str, np.ndarray], theory: dict,
                 coords: dict[str, np.ndarray] | None = None,
                 axes: dict[str, str] | None = None, model: str | None = None) -> dict:
    """JSON record of one finished point; non-finite simulation values become null.

    ``sim[m]`` has shape ``(seeds,)`` for a scalar metric, ``(seeds, len(coords[a]))`` for
    a metric along axis ``a = axes[m]``; ``theory[m]`` is a number or a list along the axis.
    A non-finite *prediction* (e.g. +inf at an interpolation threshold) is kept: JSON
    writes it as Infinity/NaN, and the tables show it (``inf``) or leave it blank (NaN).
    """

    def clean(arr):
        arr = np.asarray(arr, float)
        if arr.ndim > 1:
            return [clean(row) for row in arr]
        return [float(x) if math.isfinite(x) else None for x in arr]

    sims = {k: clean(v) for k, v in sim.items()}
    record = {
        "format": FORMAT,
        "index": index,
        "values": {k: plain(v, field=k) for k, v in values.items()},
        "seeds": len(next(iter(sims.values()))) if sims else 0,
        "sim": sims,
        "theory": {k: (np.asarray(v, float).tolist()) for k, v in theory.items()},
    }
    if axes:
        record["axes"] = dict(axes)
        record["coords"] = {a: np.asarray(c, float).tolist() for a, c in coords.items()}
    if model is not None:
        record["model"] = model
    record["checksum"] = record_checksum(record)
    return record


def record_checksum(record: dict) -> str:
    """sha256 of a record's contents (all but the checksum): an edited record is detected."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def summarize(values: list[float | None], theory: float | None) -> dict[str, Any]:
    """mean, std (ddof 1), sem, n_seeds over the finite values; rel_err, z against theory."""
    x = np.array([v for v in values if v is not None], float)
    n = len(x)
    scale = float(np.abs(x).max()) if n else 0.0
    scale = scale if 0 < scale < math.inf else 1.0  # rescaled: no overflow near 1e300
    mean = float((x / scale).mean() * scale) if n else math.nan
    std = float((x / scale).std(ddof=1) * scale) if n > 1 else math.nan
    sem = std / math.sqrt(n) if n > 1 else math.nan
    row = {"mean": mean, "std": std, "sem": sem, "n_seeds": n, "theory": theory,
           "rel_err": None, "z": None}
    if theory is not None and math.isfinite(theory) and n:
        diff = mean - theory
        row["rel_err"] = diff / abs(theory) if theory != 0 else None  # undefined at theory 0
        if sem > 0:
            row["z"] = diff / sem
        elif n > 1:
            row["z"] = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return row


def write_tables(run: RunDir, columns: list[str], metrics: tuple[str, ...],
                 records: list[dict]) -> SummaryTable:
    """sim.csv and summary.csv from point records (in the order given: the grid's order);
    returns the summary table (typed; summary.csv is its text).

    Metrics along an axis (a record's ``axes``) get one row per coordinate, with the axis
    as a column (blank on the rows of scalar metrics); scalar-only tables have no axis
    columns at all.  ``metrics`` is the union over the experiment's families: a record
    fills only the metrics its family has (``rec["sim"]``), the others stay blank in
    sim.csv and get no summary row.
    """
    axis_cols = list(dict.fromkeys(a for rec in records for a in rec.get("axes", {}).values()))
    sim_rows, summary_rows = [], []
    for rec in records:
        params = [rec["values"].get(c) for c in columns]
        axes, coords = rec.get("axes", {}), rec.get("coords", {})
        own = [m for m in metrics if m in rec["sim"]]  # this family's metrics
        scalars = [m for m in own if m not in axes]
        along = {a: [m for m in own if axes.get(m) == a] for a in axis_cols}
        blank_axes = [None] * len(axis_cols)
        for s in range(rec["seeds"]):
            if scalars:
                sim_rows.append(params + blank_axes + [s] + [
                    rec["sim"][m][s] if m in scalars else None for m in metrics])
            for i, a in enumerate(axis_cols):
                for j, c in enumerate(coords.get(a, []) if along[a] else []):
                    where = blank_axes[:i] + [c] + blank_axes[i + 1:]
                    sim_rows.append(params + where + [s] + [
                        rec["sim"][m][s][j] if m in along[a] else None for m in metrics])
        for m in own:
            theory = rec["theory"].get(m)
            if m not in axes:
                stats = summarize(rec["sim"][m], theory)
                summary_rows.append(params + blank_axes + [m] +
                                    [stats[k] for k in SUMMARY_STATS[1:]])
                continue
            i = axis_cols.index(axes[m])
            for j, c in enumerate(coords[axes[m]]):
                stats = summarize([seed[j] for seed in rec["sim"][m]],
                                  None if theory is None else theory[j])
                where = blank_axes[:i] + [c] + blank_axes[i + 1:]
                summary_rows.append(params + where + [m] +
                                    [stats[k] for k in SUMMARY_STATS[1:]])
    table = SummaryTable.from_values(columns + axis_cols + list(SUMMARY_STATS), summary_rows)
    write_csv(run.file("sim.csv"), columns + axis_cols + ["seed", *metrics], sim_rows)
    write_csv(run.file("summary.csv"), list(table.header), table.cells())
    return table


def read_table(path: Path) -> SummaryTable:
    """summary.csv as a typed table, or a one-line error saying how to regenerate it."""
    return SummaryTable.from_rows(read_summary(path), strict=True)


def read_summary(path: Path) -> list[dict[str, str]]:
    """summary.csv as rows of text, or a one-line error saying how to regenerate it."""
    path = Path(path)
    fix = (f"{path} is not as rfsim wrote it ({{}}): rerun the same `rfsim run` (finished "
           "points are reused) to rewrite it")
    try:
        rows = read_csv(path)
    except FileNotFoundError:
        raise RunDirError(f"{path.parent} has no summary.csv: run the experiment first") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunDirError(fix.format(_short(e))) from None
    if not rows:
        try:
            header = path.read_text().splitlines()[:1]
        except OSError:
            header = []
        if header and all(k in header[0].split(",") for k in SUMMARY_STATS):
            raise RunDirError(f"{path.parent} has no grid points (an empty shard): nothing "
                              "to plot; merge the shards and plot the merged directory")
        raise RunDirError(fix.format("no rows"))
    missing = [k for k in SUMMARY_STATS if k not in rows[0]]
    if missing:
        raise RunDirError(fix.format(f"no column {missing[0]!r}"))
    if any(None in r or None in r.values() for r in rows):
        raise RunDirError(fix.format("rows of unequal length"))
    for r in rows:
        for k in ("mean", "std", "sem", "theory", "rel_err", "z"):
            try:
                to_float(r[k])
            except ValueError:
                raise RunDirError(fix.format(f"{k} = {r[k]!r} is not a number")) from None
    return rows


def read_meta(run_dir: Path) -> dict:
    """meta.json as rfsim wrote it, or a one-line error."""
    path = Path(run_dir) / "meta.json"
    fix = (f"{path} is not as rfsim wrote it ({{}}): rerun the same `rfsim run` (finished "
           "points are reused) to rewrite it")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{run_dir} is not a run directory (no meta.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(fix.format(_short(e))) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("experiment"), dict):
        raise RunDirError(fix.format("expected a table with an 'experiment' entry"))
    return meta
