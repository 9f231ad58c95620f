"""Run directories: atomic writes, content-addressed point records, CSV tables.

Layout of a run directory ``DIR``::

    DIR/points/<id>.json   one record per finished grid point (the resume state)
    DIR/sim.csv            one row per (grid point, seed)
    DIR/summary.csv        one row per (grid point, metric)
    DIR/meta.json          provenance
    DIR/config.toml        the experiment file, verbatim

A point's ``id`` hashes everything that determines its numbers (model, all
parameter values, seeds, root seed, float width), so a rerun -- after a crash,
or with a grid that grew -- recomputes only the points that are missing.
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

SUMMARY_STATS = ("metric", "mean", "std", "sem", "n_seeds", "theory", "rel_err", "z")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temp file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def format_value(v) -> str:
    """CSV cell: exact round-trip floats, blank for missing/NaN, ``inf`` kept for theory."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return ""
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


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


def to_float(cell: str) -> float:
    return float(cell) if cell not in ("", None) else math.nan


def point_id(model: str, values: dict, seeds: int, root_seed: int, x64: bool) -> str:
    blob = json.dumps(
        {"model": model, "values": {k: _jsonable(v) for k, v in values.items()},
         "seeds": seeds, "root_seed": root_seed, "x64": x64},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    if callable(v):
        return getattr(v, "__name__", repr(v))
    return v


class RunDir:
    """A run directory; point records are written atomically as groups finish."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.points_dir = self.path / "points"

    def has_point(self, pid: str) -> bool:
        return (self.points_dir / f"{pid}.json").is_file()

    def read_point(self, pid: str) -> dict:
        return json.loads((self.points_dir / f"{pid}.json").read_text())

    def write_point(self, pid: str, record: dict) -> None:
        atomic_write(self.points_dir / f"{pid}.json", json.dumps(record))

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=_jsonable) + "\n")

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text)

    def file(self, name: str) -> Path:
        return self.path / name


def point_record(index: int, values: dict, sim: dict[str, np.ndarray],
                 theory: dict[str, float]) -> dict:
    """JSON record of one finished point; non-finite simulation values become null."""

    def clean(arr):
        return [float(x) if math.isfinite(x) else None for x in np.asarray(arr, float)]

    return {
        "index": index,
        "values": {k: _jsonable(v) for k, v in values.items()},
        "sim": {k: clean(v) for k, v in sim.items()},
        "theory": {k: float(v) for k, v in theory.items()},
    }


def summarize(values: list[float | None], theory: float | None) -> dict[str, Any]:
    """mean, std (ddof 1), sem, n_seeds over the finite values; rel_err, z against theory."""
    x = np.array([v for v in values if v is not None], float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
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
                 records: list[dict]) -> None:
    """sim.csv and summary.csv from point records, in grid order."""
    records = sorted(records, key=lambda r: r["index"])
    sim_rows, summary_rows = [], []
    for rec in records:
        params = [rec["values"][c] for c in columns]
        n_seeds = len(next(iter(rec["sim"].values())))
        for s in range(n_seeds):
            sim_rows.append(params + [s] + [rec["sim"][m][s] for m in metrics])
        for m in metrics:
            stats = summarize(rec["sim"][m], rec["theory"].get(m))
            summary_rows.append(params + [m] + [stats[k] for k in SUMMARY_STATS[1:]])
    write_csv(run.file("sim.csv"), columns + ["seed", *metrics], sim_rows)
    write_csv(run.file("summary.csv"), columns + list(SUMMARY_STATS), summary_rows)
