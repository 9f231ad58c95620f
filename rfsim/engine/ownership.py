"""Who a run directory belongs to, and the one rule that keeps results from being lost.

``DIR/experiment.json`` is written before anything else and names the experiment that owns
the directory by its *identity*: model, fixed parameters, grid, seeds, root seed and float
width -- its content, not its file name, comments, checks or plot.  The rule, the same for
``rfsim run``, ``rfsim demo`` and ``rfsim merge``:

* a new or empty directory is claimed;
* a directory owned by the same experiment is resumed (finished points are reused);
* anything else is refused before compute: a directory holding files rfsim did not write,
  one owned by a different experiment (the message names the first difference), one written
  by an older rfsim, one in use by a running rfsim of a different experiment;
* ``--force`` only ever adds points: it lets an experiment that contains every point already
  in the directory (a grown grid) take it over; it never deletes or replaces a result.
"""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path
from typing import Any

from rfsim.engine.io import FORMAT, RunDirError, atomic_write
from rfsim.engine.keys import KEY_VERSION, plain
from rfsim.engine.lock import LOCK_NAME, RunLock

IDENTITY_FILE = "experiment.json"


@dataclasses.dataclass(frozen=True)
class Owner:
    """The parsed ``experiment.json``."""

    identity: dict
    points: tuple[str, ...]
    experiment: dict


def identity(model, values, *, seeds: int, root_seed: int, x64: bool) -> dict[str, Any]:
    """What makes two experiments the same: their content, not their file or comments.

    ``values`` are the resolved config values of every grid point (defaults included), so
    a parameter written out at its default, a single-valued grid axis, or a reordered grid
    is the same experiment.  Each field maps to its value, or to the sorted list of the
    values it takes when it varies (the grid is a cartesian product, so these sets
    determine it).  Several families: ``model`` is their list and ``values`` a dict
    family -> that family's point values.
    """
    if isinstance(values, dict):
        parameters = {m: _fields(v) for m, v in values.items()}
    else:
        parameters = _fields(values)
    return {"model": model, "seeds": seeds, "root_seed": root_seed,
            "float": "float64" if x64 else "float32", "keys": KEY_VERSION,
            "parameters": parameters}


def _fields(values: list[dict]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in (values[0] if values else {}):
        seen = {json.dumps(plain(v[name], field=name)): plain(v[name], field=name)
                for v in values}
        taken = [seen[k] for k in sorted(seen, key=_order)]
        fields[name] = taken[0] if len(taken) == 1 else taken
    return fields


def _order(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """The first place two identities differ, in words (``None`` if they are equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{where}.{k}" if where and where != "parameters" else k
            if k not in new:
                return f"{sub} = {_show(old[k])} in the directory, absent in this experiment"
            if k not in old:
                return f"{sub} = {_show(new[k])} in this experiment, absent in the directory"
            diff = first_difference(old[k], new[k], sub)
            if diff:
                return diff
        return None
    if old != new:
        return f"{where} = {_show(old)} in the directory, {_show(new)} in this experiment"
    return None


def _show(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


def read_owner(path: Path) -> Owner | None:
    """The owner recorded in ``path/experiment.json`` (None if there is none)."""
    file = Path(path) / IDENTITY_FILE
    if not file.exists():
        return None
    fix = (f"{file} is not as rfsim wrote it ({{}}); the directory's owner is unknown: choose "
           f"another --out, or delete {path} to start over")
    try:
        raw = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(fix.format(getattr(e, "strerror", None) or
                                     str(e).split("\n")[0])) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("identity"), dict) \
            or not isinstance(raw.get("points"), list) \
            or not isinstance(raw.get("experiment"), dict):
        raise RunDirError(fix.format("expected a table with identity, points and experiment"))
    if raw.get("format") != FORMAT:
        raise RunDirError(fix.format(f"run-directory format {raw.get('format')!r}, this rfsim "
                                     f"reads format {FORMAT}"))
    return Owner(raw["identity"], tuple(str(p) for p in raw["points"]), raw["experiment"])


def write_owner(path: Path, owner: Owner) -> None:
    atomic_write(Path(path) / IDENTITY_FILE, json.dumps({
        "format": FORMAT, "identity": owner.identity, "points": list(owner.points),
        "experiment": owner.experiment}, indent=1, default=str) + "\n")


def _is_scratch(name: str) -> bool:
    return name == LOCK_NAME or (name.startswith(".") and name.endswith(".tmp"))


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if not _is_scratch(p.name))


def check_target(path: Path) -> None:
    """Refuse a path that cannot be a run directory, before anything is written."""
    path = Path(path)
    try:
        if path.is_symlink() and not path.exists():
            raise RunDirError(f"{path} is a symbolic link to nothing: choose another --out")
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path} is a file, not a directory: choose a directory for --out")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise RunDirError(f"{parent} is a file, so {path} cannot be created: "
                                      "choose another --out")
                break
    except OSError as e:
        raise RunDirError(describe_os_error(e, path)) from None


def describe_os_error(e: OSError, path: Path | str) -> str:
    """One line naming the path and the fix."""
    where = e.filename or path
    if e.errno == errno.ENAMETOOLONG:
        return f"{where}: file name too long: choose a shorter --out"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {where} ({e.strerror.lower()}): choose a writable --out"
    if e.errno == errno.ENOSPC:
        return f"no space left on the device holding {where}: free space, then rerun to resume"
    if e.errno == errno.ENOTDIR:
        return f"{where}: a part of the path is a file, not a directory: choose another --out"
    return f"{where}: {e.strerror or e}"


def _refuse_foreign(path: Path, owner: Owner | None) -> None:
    """Refuse a non-empty directory that no rfsim experiment owns."""
    if owner is not None or not path.is_dir():
        return
    names = _listing(path)
    if not names:
        return
    if _is_format_1(path):
        raise RunDirError(
            f"{path} was written by an older rfsim (run-directory format 1, keys from grid "
            "positions) and cannot be resumed by this version: choose another --out, or "
            f"delete {path} to recompute it")
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise RunDirError(f"{path} already holds files that rfsim did not write ({shown}): "
                      "choose a new or empty directory for --out")


def _is_format_1(path: Path) -> bool:
    """A run directory of rfsim before format 2: meta.json with its key scheme and version."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(meta, dict) and "key_scheme" in meta and "format" not in meta
            and isinstance(meta.get("versions"), dict) and "rfsim" in meta["versions"])


def _admit(path: Path, owner: Owner | None, new: Owner, force: bool) -> Owner:
    """The owner to record, or a refusal naming the first difference and the way out."""
    _refuse_foreign(path, owner)
    if owner is None or owner.identity == new.identity:
        return new
    old_keys = owner.identity.get("keys", "2 or earlier")  # recorded since version 3
    if old_keys != new.identity["keys"]:  # the same experiment may be there, other draws
        raise RunDirError(
            f"{path} was written with key scheme version {old_keys} and this rfsim draws with "
            f"version {new.identity['keys']} (README, 'Keys'), so none of its points can be "
            f"reused: choose another --out, or delete {path} to recompute it")
    diff = first_difference(owner.identity, new.identity)
    if not force:
        raise RunDirError(
            f"{path} holds the results of a different experiment ({diff}): choose another "
            "--out, or pass --force to add this experiment's points to it (allowed when it "
            "contains every point already there, e.g. a grown grid)")
    missing = set(owner.points) - set(new.points)
    if missing:
        raise RunDirError(
            f"--force only adds points, but this experiment lacks {len(missing)} of the "
            f"{len(owner.points)} grid points in {path} ({diff}): choose another --out")
    return new


def inspect(path: Path, new: Owner, *, force: bool = False) -> str:
    """What :func:`claim` would do with ``path``, in words; raises its refusals. Writes
    nothing (``rfsim run --dry-run``)."""
    path = Path(path)
    check_target(path)
    try:
        owner = read_owner(path)
        _admit(path, owner, new, force)
    except OSError as e:
        raise RunDirError(describe_os_error(e, path)) from None
    if owner is None:
        return "new" if not path.exists() else "empty: will be claimed"
    done = sum((path / "points" / f"{pid}.json").is_file() for pid in new.points)
    return f"owned by this experiment: {done} of {len(new.points)} points finished"


def claim(path: Path, new: Owner, *, force: bool = False) -> RunLock:
    """Take ``path`` for the experiment ``new`` (see the module docstring); returns the held
    lock, to be released when the run ends."""
    path = Path(path)
    check_target(path)
    try:
        _refuse_foreign(path, read_owner(path))  # before writing anything (the lock file)
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(path).open()
    except OSError as e:
        raise RunDirError(describe_os_error(e, path)) from None
    try:
        if lock.try_exclusive():
            owner = read_owner(path)
            admitted = _admit(path, owner, new, force)
            if owner is None or owner.identity != admitted.identity:
                write_owner(path, admitted)  # the same experiment never rewrites it
            lock.shared()
        else:
            lock.shared()
            owner = read_owner(path)
            if owner is None or owner.identity != new.identity:
                diff = first_difference(owner.identity, new.identity) if owner else "none"
                raise RunDirError(
                    f"{path} is in use by another running rfsim of a different experiment "
                    f"({diff}): wait for it to finish, or choose another --out")
    except OSError as e:
        lock.release()
        raise RunDirError(describe_os_error(e, path)) from None
    except BaseException:
        lock.release()
        raise
    return lock
