"""Property-based: any parameter dict either builds a config or raises a ValueError that
names the offending field — never another exception, never a silent bad config."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rfsim.config import field_names
from rfsim.engine.experiment import from_dict, make_config
from rfsim.models import available, get_model

VALUES = st.one_of(
    st.integers(-5, 500), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=6), st.sampled_from(["relu", "erf", "tanh", "rleu"]), st.none(),
)


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from([m for m in available() if m != "nan-toy"]), data=st.data())
def test_configs_validate_or_name_the_field(model, data):
    m = get_model(model)
    names = field_names(m.config)
    chosen = data.draw(st.lists(st.sampled_from(names + ("bogus",)), unique=True, max_size=5))
    values = {k: data.draw(VALUES) for k in chosen}
    try:
        cfg = make_config(m, values)
    except ValueError as e:
        msg = str(e)
        assert msg.startswith(tuple(values)) or msg.startswith(
            ("unknown parameter 'bogus'", "missing required", "activation must be one of")), msg
        return
    for k in values:  # accepted values are sane numbers or names
        got = getattr(cfg, k)
        assert not isinstance(got, bool) and got is not None
        if isinstance(got, float):
            assert math.isfinite(got)


@settings(max_examples=60, deadline=None)
@given(seeds=st.one_of(st.integers(-3, 3), st.floats(), st.text(max_size=3)),
       grid=st.one_of(st.just({"n": []}), st.just({"n": 5}), st.just({"n": [4, 8]})))
def test_experiment_structure_errors_are_value_errors(seeds, grid):
    raw = {"model": "linear-ridge", "seeds": seeds, "params": {"d": 4}, "grid": grid}
    try:
        exp = from_dict(raw)
    except ValueError as e:
        assert "seeds" in str(e) or "grid axis n" in str(e), str(e)
        return
    assert isinstance(exp.seeds, int) and exp.seeds >= 1 and grid == {"n": [4, 8]}
