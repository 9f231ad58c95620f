"""Run directories that never lose, mix or silently corrupt results (issue 6).

Keys from content, the ownership rule (run, demo, merge), --force only adds points,
corrupted records and files, OS errors as one line, permissions that follow the umask.
"""

import json
import os
import stat

import jax
import jax.numpy as jnp
import pytest

from rfsim.cli import main
from rfsim.engine.keys import group_key, group_keys, static_digest
from rfsim.engine.lock import RunLock
from rfsim.engine.ownership import IDENTITY_FILE

BASE = """
model = "linear-ridge"
seeds = 4
[params]
d = 8
noise = 0.5
[grid]
n = {n}
ridge = {ridge}
[[check]]
metric = "excess_risk"
max_abs_z = 6.0
rel_tol = 0.5
"""


def _toml(tmp_path, name="e.toml", n="[12]", ridge="[0.1]", extra=""):
    path = tmp_path / name
    path.write_text(BASE.format(n=n, ridge=ridge) + extra)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv] + ["--quiet"] * (argv[0] in ("run", "demo")))
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- keys from content -------------------------------------------------------------------


def test_static_groups_never_share_a_key_and_continuous_values_do():
    a = static_digest({"n": 10, "d": 8})
    assert a == static_digest({"d": 8, "n": 10})  # order-free
    assert a != static_digest({"n": 30, "d": 8})
    k = jax.random.key_data
    assert (k(group_key(0, a)) != k(group_key(0, static_digest({"n": 30, "d": 8})))).any()
    # root seeds that agree modulo 2^32 do not collide (jax.random.key alone truncates them)
    assert (k(group_key(1, a)) != k(group_key(1 + 2**32, a))).any()
    draw = [jax.random.normal(group_key(r, a), ()) for r in (0, 0, 1)]
    assert draw[0] == draw[1] != draw[2]


def test_grown_grid_equals_a_fresh_run_of_the_grown_grid_exactly(tmp_path, capsys):
    small = _toml(tmp_path, "small.toml", n="[12]", ridge="[0.1]")
    grown = _toml(tmp_path, "grown.toml", n="[4, 12]", ridge="[0.0, 0.1, 1.0]")
    code, _, err = _run(capsys, "run", small, "--out", tmp_path / "d", "--no-plot")
    assert code == 0, err
    code, stdout, _ = _run(capsys, "run", grown, "--out", tmp_path / "d", "--no-plot", "--force")
    assert code == 0 and "5 computed, 1 reused" in stdout
    _run(capsys, "run", grown, "--out", tmp_path / "fresh", "--no-plot")
    for name in ("sim.csv", "summary.csv"):  # byte-identical, not merely close
        assert (tmp_path / "d" / name).read_text() == (tmp_path / "fresh" / name).read_text()
    rows = [r.split(",") for r in (tmp_path / "d" / "sim.csv").read_text().splitlines()[1:]]
    first = {(r[0], r[-4]): r[-1] for r in rows if r[2] == "0.0"}  # (n, seed) -> train_mse
    assert first[("4", "0")] != first[("12", "0")]  # n = 4 and n = 12 draw different data


def test_reordered_grid_renamed_file_and_comments_are_the_same_experiment(tmp_path, capsys):
    a = _toml(tmp_path, "a.toml", n="[4, 12]")
    b = tmp_path / "renamed.toml"
    b.write_text("# a comment\n" + a.read_text().replace("[4, 12]", "[12, 4]")
                 .replace("noise = 0.5", "noise = 0.5  # label noise\nsignal = 1.0"))
    _run(capsys, "run", a, "--out", tmp_path / "d", "--no-plot")
    code, stdout, err = _run(capsys, "run", b, "--out", tmp_path / "d", "--no-plot")
    assert code == 0 and "0 computed, 2 reused" in stdout, err


# --- the ownership rule ------------------------------------------------------------------


def test_a_different_experiment_is_refused_naming_the_first_difference(tmp_path, capsys):
    path = _toml(tmp_path)
    out = tmp_path / "d"
    _run(capsys, "run", path, "--out", out, "--no-plot")
    before = {f: (out / f).read_bytes() for f in ("summary.csv", "sim.csv", "config.toml",
                                                   IDENTITY_FILE)}
    code, _, err = _run(capsys, "run", path, "--out", out, "--set", "noise=0.1")
    assert code == 2 and "noise = 0.5 in the directory, 0.1 in this experiment" in _one_error(err)
    # --force only adds points: a changed fixed parameter replaces every point, so refused
    code, _, err = _run(capsys, "run", path, "--out", out, "--set", "noise=0.1", "--force")
    assert code == 2 and "--force only adds points" in _one_error(err)
    code, _, err = _run(capsys, "run", path, "--out", out, "--seeds", "5")
    assert code == 2 and "seeds = 4 in the directory, 5 in this experiment" in err
    assert {f: (out / f).read_bytes() for f in before} == before


def test_an_ordinary_folder_is_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("config.toml", "summary.csv", "sim.csv"):
        (folder / name).write_text(f"my own {name}\n")
    for argv in (["run", _toml(tmp_path), "--out", folder], ["demo", "--out", folder]):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and "already holds files that rfsim did not write" in _one_error(err)
    for name in ("config.toml", "summary.csv", "sim.csv"):
        assert (folder / name).read_text() == f"my own {name}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["config.toml", "sim.csv", "summary.csv"]


def test_merge_into_another_experiments_directory_is_refused(tmp_path, capsys):
    path = _toml(tmp_path, n="[4, 12]")
    for i in range(2):
        _run(capsys, "run", path, "--out", tmp_path / f"s{i}", "--shard", f"{i}/2", "--no-plot")
    other = tmp_path / "other"
    _run(capsys, "run", path, "--out", other, "--set", "noise=0.1", "--no-plot")
    before = (other / "summary.csv").read_bytes()
    code, _, err = _run(capsys, "merge", tmp_path / "s0", tmp_path / "s1", "--out", other)
    assert code == 2 and "holds the results of a different experiment" in _one_error(err)
    assert (other / "summary.csv").read_bytes() == before
    code, _, err = _run(capsys, "merge", tmp_path / "s0", other, "--out", tmp_path / "m")
    assert code == 2 and "holds a different experiment than" in _one_error(err)


def test_shards_merge_to_exactly_the_full_run_and_empty_shards_are_accepted(tmp_path, capsys):
    path = _toml(tmp_path, n="[4, 12]", ridge="[0.0, 0.1]")  # 4 points
    _run(capsys, "run", path, "--out", tmp_path / "full", "--no-plot")
    for i in range(6):  # shards 4 and 5 get no points
        code, stdout, err = _run(capsys, "run", path, "--out", tmp_path / f"s{i}", "--shard",
                                 f"{i}/6", "--no-plot")
        assert code == 0, err
        assert ("has no grid points" in stdout) == (i >= 4)
    code, _, err = _run(capsys, "merge", *[tmp_path / f"s{i}" for i in range(6)], "--out",
                        tmp_path / "m", "--no-plot")
    assert code == 0, err
    for name in ("sim.csv", "summary.csv"):
        assert (tmp_path / "m" / name).read_text() == (tmp_path / "full" / name).read_text()


def test_an_older_run_directory_is_refused_with_the_fix(tmp_path, capsys):
    old = tmp_path / "old"
    (old / "points").mkdir(parents=True)
    (old / "meta.json").write_text(json.dumps({  # what format 1 wrote (abridged)
        "experiment": {"model": "linear-ridge"}, "key_scheme": "fold_in(...)",
        "versions": {"rfsim": "0.1.0"}}))
    code, _, err = _run(capsys, "run", _toml(tmp_path), "--out", old)
    assert code == 2 and "older rfsim" in _one_error(err) and "delete" in err
    # a user's own folder that happens to hold a meta.json is not called rfsim's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "meta.json").write_text('{"mine": 1}')
    code, _, err = _run(capsys, "run", _toml(tmp_path), "--out", mine)
    assert code == 2 and "did not write (meta.json)" in _one_error(err) and "delete" not in err


def test_a_directory_of_an_older_key_scheme_is_refused_with_the_fix(tmp_path, capsys):
    """The same experiment written under key scheme 2 (one key per seed from every static)
    cannot be resumed under 3 (data and model keys): refused, nothing rewritten."""
    from rfsim.engine.keys import KEY_VERSION

    out = tmp_path / "run"
    assert _run(capsys, "run", _toml(tmp_path), "--out", out)[0] == 0
    record = json.loads((out / IDENTITY_FILE).read_text())
    del record["identity"]["keys"]  # as version 2 wrote it: no version in the identity
    (out / IDENTITY_FILE).write_text(json.dumps(record))
    before = sorted(p.name for p in (out / "points").iterdir())
    code, _, err = _run(capsys, "run", _toml(tmp_path), "--out", out)
    assert code == 2 and "key scheme version 2 or earlier" in _one_error(err)
    assert f"version {KEY_VERSION}" in err and "delete" in err
    assert sorted(p.name for p in (out / "points").iterdir()) == before


def test_a_running_experiment_keeps_its_directory(tmp_path, capsys):
    """While one run holds the lock, a different experiment is refused and the same one
    joins (its writes are atomic and identical)."""
    path = _toml(tmp_path)
    out = tmp_path / "d"
    _run(capsys, "run", path, "--out", out, "--no-plot")
    with RunLock(out) as lock:
        lock.shared()  # what a running `rfsim run` holds
        code, _, err = _run(capsys, "run", path, "--out", out, "--set", "n=[4, 12]", "--force")
        assert code == 2 and "in use by another running rfsim" in _one_error(err)
        code, stdout, _ = _run(capsys, "run", path, "--out", out, "--no-plot")
        assert code == 0 and "1 reused" in stdout


# --- corrupted files and OS errors -------------------------------------------------------


def _point_file(out):
    (record,) = (out / "points").glob("*.json")
    return record


@pytest.mark.parametrize("damage,why", [
    (lambda text: text[: len(text) // 2], "Unterminated|Expecting|delimiter"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "sim"}),
     "no 'sim' entry"),
    (lambda text: json.dumps({**json.loads(text), "seeds": 3}), "3 seeds recorded, 4 expected"),
    (lambda text: "[]", "not a JSON object"),
])
def test_a_corrupted_point_record_names_the_file_and_the_fix(tmp_path, capsys, damage, why):
    import re

    path = _toml(tmp_path)
    out = tmp_path / "d"
    _run(capsys, "run", path, "--out", out, "--no-plot")
    record = _point_file(out)
    record.write_text(damage(record.read_text()))
    before = (out / "summary.csv").read_bytes()
    code, _, err = _run(capsys, "run", path, "--out", out, "--no-plot")
    assert code == 2 and f"points/{record.name} is unreadable" in _one_error(err)
    assert "delete it to recompute that point" in err and re.search(why, err)
    assert (out / "summary.csv").read_bytes() == before
    record.unlink()
    code, stdout, _ = _run(capsys, "run", path, "--out", out, "--no-plot")
    assert code == 0 and "1 computed" in stdout


def test_damaged_meta_summary_and_identity_are_one_line(tmp_path, capsys):
    path = _toml(tmp_path)
    out = tmp_path / "d"
    _run(capsys, "run", path, "--out", out, "--no-plot")
    (out / "meta.json").write_text("[]")
    code, _, err = _run(capsys, "plot", out)
    assert code == 2 and "meta.json is not as rfsim wrote it" in _one_error(err)
    code, _, _ = _run(capsys, "run", path, "--out", out, "--no-plot")  # rewrites it
    assert code == 0 and json.loads((out / "meta.json").read_text())["format"] == 2
    (out / "summary.csv").write_text("")
    code, _, err = _run(capsys, "plot", out)
    assert code == 2 and "summary.csv is not as rfsim wrote it" in _one_error(err)
    (out / IDENTITY_FILE).write_text("{")
    code, _, err = _run(capsys, "run", path, "--out", out)
    assert code == 2 and "experiment.json is not as rfsim wrote it" in _one_error(err)


def test_out_that_cannot_be_a_run_directory_is_one_line(tmp_path, capsys):
    path = _toml(tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    cases = [
        (a_file, "is a file, not a directory"),
        (a_file / "sub", "is a file, so"),
        (tmp_path / ("x" * 300), "file name too long"),
    ]
    for out, message in cases:
        code, _, err = _run(capsys, "run", path, "--out", out)
        assert code == 2 and message in _one_error(err), err
    assert a_file.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_directory_is_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = _run(capsys, "run", _toml(tmp_path), "--out", ro / "run")
    assert code == 2 and "cannot write to" in _one_error(err)


def test_permission_errors_are_described_with_the_path(tmp_path, capsys, monkeypatch):
    """Root bypasses permissions, so the OS refusal is injected where the run creates its
    directory; the message must name the path and the fix."""
    import errno
    import pathlib

    def refuse(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    code, _, err = _run(capsys, "run", _toml(tmp_path), "--out", tmp_path / "new")
    assert code == 2 and "cannot write to" in _one_error(err) and "writable --out" in err


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_files_are_as_readable_as_the_umask_allows(tmp_path, capsys, umask, mode):
    old = os.umask(umask)
    try:
        _run(capsys, "run", _toml(tmp_path), "--out", tmp_path / "d", "--no-plot")
    finally:
        os.umask(old)
    for name in ("sim.csv", "summary.csv", "meta.json", "config.toml", IDENTITY_FILE):
        assert stat.S_IMODE((tmp_path / "d" / name).stat().st_mode) == mode, name
    assert stat.S_IMODE(_point_file(tmp_path / "d").stat().st_mode) == mode


@pytest.mark.skipif(jax.default_backend() != "cpu",
                    reason="the HLO check reads the CPU LAPACK eigh custom call (syevd)")
def test_engine_factorizes_once_per_seed_for_every_ridge():
    """Points are a loop (bitwise reproducible); XLA hoists the loop-invariant data and its
    eigendecomposition out of it, so the compiled program has one eigh per seed batch,
    outside the loop over ridges.  spectrum_decay (batch=False) is a loop-invariant scalar."""
    import re

    from rfsim.engine.experiment import from_dict, grid_points
    from rfsim.models import get_model
    from rfsim.engine.sweep import _padded, _param_arrays, _simulator, plan

    model = get_model("linear-ridge")
    exp = from_dict({"model": "linear-ridge", "seeds": 2, "params": {"d": 6, "n": 9},
                     "grid": {"ridge": [0.0, 0.1, 1.0]}})
    points = plan(model, grid_points(exp))
    fixed, dyn = _param_arrays(model, _padded(points))
    args = (group_keys(0, points[0].group), jnp.arange(2, dtype=jnp.uint32), points[0].cfg,
            fixed, dyn, None)
    hlo = _simulator(model).lower(*args).compile().as_text()
    computations = re.split(r"\n(?=\S)", hlo)
    with_eigh = [c for c in computations if "syevd" in c]
    assert len(with_eigh) == 1, [c.splitlines()[0] for c in with_eigh]
    (call,) = [line for line in with_eigh[0].splitlines() if "syevd" in line]
    assert "f64[6,6]" in call and "f64[2,6,6]" not in call  # one seed's d x d Gram matrix
    # the loop over the three ridges sits beside the eigh (in the seed's loop body), so the
    # factorization runs once per seed and the ridges reuse it
    assert " while(" in with_eigh[0]


def test_chunk_size_does_not_change_a_single_digit(tmp_path, capsys):
    path = _toml(tmp_path, n="[4, 12]", ridge="[0.0, 0.1]")
    for chunk in ("1", "3", "8"):
        code, _, err = _run(capsys, "run", path, "--out", tmp_path / chunk, "--chunk", chunk,
                            "--no-plot")
        assert code == 0, err
    text = (tmp_path / "8" / "sim.csv").read_text()
    assert (tmp_path / "1" / "sim.csv").read_text() == text
    assert (tmp_path / "3" / "sim.csv").read_text() == text


def test_an_edited_record_is_detected(tmp_path, capsys):
    path = _toml(tmp_path)
    out = tmp_path / "d"
    _run(capsys, "run", path, "--out", out, "--no-plot")
    record = _point_file(out)
    rec = json.loads(record.read_text())
    rec["sim"]["excess_risk"][0] = 999.0  # plausible JSON, wrong number
    record.write_text(json.dumps(rec))
    code, _, err = _run(capsys, "run", path, "--out", out, "--no-plot")
    assert code == 2 and "checksum does not match" in _one_error(err)


def test_merge_with_a_missing_shard_writes_nothing(tmp_path, capsys):
    path = _toml(tmp_path, n="[4, 12]")
    _run(capsys, "run", path, "--out", tmp_path / "s0", "--shard", "0/2", "--no-plot")
    code, _, err = _run(capsys, "merge", tmp_path / "s0", "--out", tmp_path / "m")
    assert code == 2 and "have no result" in _one_error(err)
    assert not (tmp_path / "m").exists()


def test_equal_grid_values_and_odd_outs_are_refused(tmp_path, capsys):
    path = _toml(tmp_path)
    for extra, message in ((["--set", "noise=[1, 1.0]"], "grid axis noise lists 1.0 twice"),
                           (["--set", "ridge=[0.0, -0.0]"], "lists -0.0 twice"),
                           (["--out", ""], "--out must name a directory")):
        code, _, err = _run(capsys, "run", path, *(extra if "--out" in extra else
                                                   [*extra, "--out", tmp_path / "o"]))
        assert code == 2 and message in _one_error(err), err
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    code, _, err = _run(capsys, "run", path, "--out", link)
    assert code == 2 and "symbolic link to nothing" in _one_error(err)
