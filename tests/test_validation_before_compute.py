"""Everything is validated before compute: check and plot specs, TOML structure, integer
ranges, family-specific combinations, grid and memory size.  Each bad input is one line on
stderr, exit 2, and nothing is created or written."""

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfsim.cli import main

BASE = """model = "linear-ridge"
seeds = 3
{top}
[params]
d = 8
noise = 0.5
[grid]
n = [4, 12]
ridge = [0.0, 0.1]
{tables}
"""


def _refused(tmp_path, capsys, text, *extra):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()
    return err


CHECK = '[[check]]\nmetric = "excess_risk"\n'


@pytest.mark.parametrize("table,message", [
    ('kind = "bogus"', "check kind must be one of"),
    ("kind = 3", "check kind must be one of"),
    ('max_abs_z = "4"', "max_abs_z must be a finite number, got '4'"),
    ("max_abs_z = -1", "max_abs_z must be >= 0, got -1"),
    ("max_abs_z = nan", "max_abs_z must be a finite number, got nan"),
    ("rel_tol = true", "rel_tol must be a finite number, got True"),
    ('direction = "up"', "key 'direction' does not apply to kind 'statistical'"),
    ('kind = "monotone"', "a monotone check needs `x"),
    ('kind = "monotone"\nx = "d"', "x must be a grid axis (n, ridge), got 'd'"),
    ('kind = "monotone"\nx = "n"\ndirection = "up"', "direction must be 'nonincreasing'"),
    ('kind = "threshold"\nx = "n"', "a threshold check needs `below` or `above`"),
    ('kind = "threshold"\nx = "n"\nbelow = "low"', "below must be a finite number"),
    ('kind = "monotone"\nx = "n"\nargmin_of = "nope"', "check argmin_of must be one of"),
    ('kind = "monotone"\nx = "n"\nvalue = "median"', "value must be 'mean' or 'theory'"),
    ("where = 3", "where must be a table"),
    ("where = { n = 999 }", "where n = 999 matches no grid point (n takes 4, 12)"),
    ("where = { m = 4 }", "where names 'm', which is not a parameter"),
    ("name = 5", "name must be a string, got 5"),
    ('metric = "excess_rsik"', "did you mean 'excess_risk'?"),
])
def test_bad_check_tables(tmp_path, capsys, table, message):
    tables = CHECK.replace('metric = "excess_risk"\n', "") if "metric" in table else CHECK
    err = _refused(tmp_path, capsys, BASE.format(top="", tables=tables + table + "\n"))
    assert message in err, err


@pytest.mark.parametrize("table,message", [
    ('logx = "yes"', "plot logx must be true or false"),
    ('series = "n"', "plot series must be a list of parameter names"),
    ('legend = "nowhere"', "plot legend must be one of"),
    ("title = 3", "plot title must be a string"),
    ('x = "m"', "plot x must be a parameter"),
])
def test_bad_plot_tables(tmp_path, capsys, table, message):
    assert message in _refused(tmp_path, capsys, BASE.format(top="", tables="[plot]\n" + table))


@pytest.mark.parametrize("top,tables,message", [
    ("check = [1, 2]", "", "each [[check]] must be a table, got 1"),
    ("check = 3", "", "check must be a table or a list of tables"),
    ("description = 5", "", "description must be a string"),
    ("", "[quick]\nparams = 3", "[quick] params must be a table, got 3"),
    ("", "[quick]\nseeds = 0", "[quick]: seeds must be an integer >= 1, got 0"),
    ("", "[quick]\nbogus = 1", "unknown key 'bogus' in [quick]"),
    ("", "[quick.grid]\nn = []", "[quick]: grid axis n must be a non-empty list"),
    ("", "[quick]\ncheck = [1]", "each [[check]] must be a table, got 1"),
    ("seeds = 10000000", "", "seeds must be an integer <= 1000000"),
    ("root_seed = -1", "", "root_seed must be an integer in [0, 9223372036854775807]"),
])
def test_malformed_structure(tmp_path, capsys, top, tables, message):
    text = BASE.format(top=top, tables=tables)
    if top.startswith("seeds"):
        text = text.replace("seeds = 3\n", "", 1)
    assert message in _refused(tmp_path, capsys, text)


@pytest.mark.parametrize("extra,message", [
    (["--root-seed", str(2**63)], "root_seed must be an integer in [0, 9223372036854775807]"),
    (["--set", "n=100000000000000000000"], "n must be an integer <= 2147483647"),
    (["--set", "n=[4, 4]"], "grid axis n lists 4 twice"),
    (["--chunk", "0"], "chunk_size must be an integer >= 1, got 0"),
    (["--set", "n=1000000000", "--set", "d=1000000"], "does not fit in memory"),
    (["--set", "n=[1,2,3,4,5,6,7,8,9,10]", "--set", "d=[1,2,3,4,5,6,7,8,9,10]",
      "--set", "ridge=" + str([i / 1e4 for i in range(10000)]),
      "--set", "noise=" + str([i / 1e3 for i in range(100)])], "the grid has 100,000,000 points"),
])
def test_integer_ranges_grid_size_and_memory(tmp_path, capsys, extra, message):
    err = _refused(tmp_path, capsys, BASE.format(top="", tables=""), *extra)
    assert message in err, err


def test_memory_refusal_states_the_estimate(tmp_path, capsys):
    err = _refused(tmp_path, capsys, BASE.format(top="", tables=""), "--set", "n=1000000000",
                   "--set", "d=1000000")
    assert "working set is about" in err and "available" in err


def test_family_specific_combination_is_refused_before_compute(tmp_path, capsys):
    text = ('model = "rf-ridge"\nseeds = 2\n[params]\nd = 8\nN = 8\nn = 8\n'
            'activation = "linear"\n')
    assert "is linear (mu_star = 0)" in _refused(tmp_path, capsys, text)


def test_dry_run_sizes_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text(BASE.format(top="", tables=CHECK))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "4 grid points (4 in the full grid) in 2 compiled group(s)" in out
    assert not (tmp_path / "out").exists()


# --- fuzz: any TOML structure is either accepted or refused in one line ---------------------

scalars = st.one_of(st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.sampled_from(["relu", "n", "excess_risk", "", "x"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["n", "d", "ridge", "metric", "kind", "x", "seeds", "params", "grid", "where"]),
        inner, max_size=3)), max_leaves=6)
tops = st.dictionaries(
    st.sampled_from(["model", "seeds", "root_seed", "description", "params", "grid", "check",
                     "plot", "quick", "bogus"]), values, max_size=6)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else
                                     "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=tops, model=st.sampled_from([None, "linear-ridge", "rf-ridge", "nope"]))
def test_fuzzed_experiment_structure_is_accepted_or_one_line(tmp_path, capsys, raw, model):
    if model is not None:
        raw = {**raw, "model": model}
    text = "\n".join(f"{k} = {_toml_value(v)}" for k, v in raw.items()) + "\n"
    tomllib.loads(text)  # the generator writes valid TOML; the structure is what is fuzzed
    path = tmp_path / "f.toml"
    path.write_text(text)
    code = main(["run", str(path), "--out", str(tmp_path / "never"), "--dry-run"])
    captured = capsys.readouterr()
    assert code in (0, 2), captured
    if code == 2:
        assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert not (tmp_path / "never").exists()


# --- validated once: counted ------------------------------------------------------------------

COUNTED = BASE.format(top="", tables=CHECK + '[[check]]\nkind = "monotone"\nmetric = '
                      '"excess_risk"\nx = "n"\nrel_tol = 1.0\n[quick]\nseeds = 2\n')


def _count(monkeypatch):
    """Counters of the validation work: configs constructed, checks parsed, planned-grid
    validations, check evaluations (each wrapped where the engine calls it)."""
    import rfsim.checks.base as base
    import rfsim.engine.runner as runner
    import rfsim.engine.sweep as sweep

    counts = {"configs": 0, "parsed": 0, "planned": 0, "evaluated": 0}

    def counting(key, fn):
        def wrapped(*a, **k):
            counts[key] += 1
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(sweep, "make_config", counting("configs", sweep.make_config))
    monkeypatch.setattr(base, "parse", counting("parsed", base.parse))
    import rfsim.checks as checks

    monkeypatch.setattr(checks, "parse", base.parse)
    import rfsim.engine.planned as planned

    monkeypatch.setattr(planned, "validate_planned",
                        counting("planned", planned.validate_planned))
    monkeypatch.setattr(base.Check, "evaluate", counting("evaluated", base.Check.evaluate))
    assert runner.prepare  # the engine's planning is what calls them
    _forget(monkeypatch)
    return counts


def _forget(monkeypatch):
    """Empty the experiment layer's memos (validation results kept by content)."""
    import collections

    import rfsim.engine.experiment as experiment

    for name in ("_structures", "_plans", "_parsed"):
        monkeypatch.setattr(experiment, name, collections.OrderedDict())


def test_a_quick_run_validates_once_and_check_evaluates_each_claim_once(tmp_path, capsys,
                                                                          monkeypatch):
    """`rfsim run --quick`: every grid point's config constructed once (was 5 times: load,
    its [quick] variant, --set, --quick, planning), each check parsed and evaluated once,
    the planned grid validated once; `rfsim check`: the same (each claim was evaluated
    twice, the experiment planned twice)."""
    counts = _count(monkeypatch)
    path = tmp_path / "e.toml"
    path.write_text(COUNTED)
    assert main(["run", str(path), "--quick", "--out", str(tmp_path / "r"), "--quiet",
                 "--no-plot"]) == 0, capsys.readouterr().err
    assert counts == {"configs": 4, "parsed": 2, "planned": 1, "evaluated": 2}, counts
    (tmp_path / "exps").mkdir()
    (tmp_path / "exps" / "e.toml").write_text(COUNTED.replace("seeds = 2", "seeds = 3"))
    counts.update(dict.fromkeys(counts, 0))
    _forget(monkeypatch)
    assert main(["check", "--dir", str(tmp_path / "exps"), "--out-root", str(tmp_path / "c"),
                 "--quiet"]) == 0, capsys.readouterr()
    assert counts == {"configs": 4, "parsed": 2, "planned": 1, "evaluated": 2}, counts
    assert [p.name for p in (tmp_path / "c").iterdir()][0].startswith("e-quick-")
