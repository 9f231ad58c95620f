"""The data key (issue 13, item 5): families with different model sizes and the same data
fields, in one experiment, train on byte-identical data; a data field that differs changes
the draws; a model-only field that differs keeps the data and changes the model's draws.

Two toy families draw their data through :mod:`rfsim.data` from ``keys.data`` in the same
order and report a data-only metric (``data_sum``: the sum of the inputs and the labels, a
float64 scalar, so equal text in sim.csv is equal bits) and a model-only one
(``model_draw``: one N(0, 1) number from ``keys.model``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfsim import data
from rfsim.config import (data_fields, data_static_fields, model_config, model_static_fields,
                          param, static, static_fields)
from rfsim.engine.experiment import from_dict
from rfsim.engine.io import read_csv
from rfsim.engine.keys import SeedKeys, group_digests, group_keys, seed_keys, state_keys
from rfsim.engine.runner import run_experiment
from rfsim.engine.sweep import plan
from rfsim.models import register


@model_config
class FeaturesConfig:
    n: int = static(8, data=True, doc="samples")
    d: int = static(3, data=True, doc="input dimension")
    tag: int = static(0, data=True, doc="a data field that does not change any shape")
    N: int = static(5, doc="features: a model size")
    variant: int = static(0, doc="a model field that does not change any shape")
    noise: float = param(0.5, data=True)


@model_config
class NetworkConfig:
    n: int = static(8, data=True)
    d: int = static(3, data=True)
    tag: int = static(0, data=True)
    width: int = static(7, doc="hidden width: a model size")
    noise: float = param(0.5, data=True)


def _training_set(keys: SeedKeys, cfg):
    """Inputs on the sphere, then labels: the same calls, in the same order, in both."""
    x = data.sphere_inputs(jax.random.fold_in(keys.data, 0), cfg.n, cfg.d)
    y = x[:, 0] + data.label_noise(jax.random.fold_in(keys.data, 1), cfg.n, cfg.noise)
    return x, y


def _features_simulate(keys, cfg, state):
    x, y = _training_set(keys, cfg)
    w = jax.random.normal(keys.model, (cfg.N, cfg.d), x.dtype)  # the family's own draws
    fit = jnp.tanh(x @ w.T).mean()
    return {"data_sum": x.sum() + y.sum(), "model_draw": jax.random.normal(keys.model, (), x.dtype),
            "fit": fit}


def _network_simulate(keys, cfg, state):
    x, y = _training_set(keys, cfg)
    h = jnp.tanh(x @ jax.random.normal(keys.model, (cfg.d, cfg.width), x.dtype))
    return {"data_sum": x.sum() + y.sum(), "model_draw": jax.random.normal(keys.model, (), x.dtype),
            "fit": h.mean()}


@pytest.fixture
def toys(registry):
    register("toy-features", FeaturesConfig, _features_simulate,
             metrics={"data_sum": None, "model_draw": None, "fit": None})
    register("toy-network", NetworkConfig, _network_simulate,
             metrics={"data_sum": None, "model_draw": None, "fit": None})


def _run(tmp_path, name, raw):
    res = run_experiment(from_dict(raw, name=name), out=tmp_path / name, plot=False)
    assert res.path.is_dir()
    return read_csv(tmp_path / name / "sim.csv")


def test_families_of_different_sizes_see_byte_identical_data(tmp_path, toys):
    sim = _run(tmp_path, "both", {
        "models": ["toy-features", "toy-network"], "seeds": 4,
        "grid": {"tag": [0, 1]}, "params": {"d": 3, "n": 6, "noise": 0.5},
        "per_model": {"toy-features": {"N": 40}, "toy-network": {"width": 3}}})
    rows = {(r["model"], r["n"], r["tag"], r["seed"]): r for r in sim}
    assert len(rows) == len(sim) == 2 * 2 * 4
    for tag in ("0", "1"):
        for seed in "0123":
            a = rows["toy-features", "6", tag, seed]
            b = rows["toy-network", "6", tag, seed]
            assert a["data_sum"] == b["data_sum"]  # the same bits (float64 repr)
            assert a["model_draw"] != b["model_draw"]  # model statics differ
            assert a["fit"] != b["fit"]
    # a data field that differs (tag: no shape changes) gives other draws, for every seed
    for model in ("toy-features", "toy-network"):
        for seed in "0123":
            assert rows[model, "6", "0", seed]["data_sum"] != rows[model, "6", "1", seed][
                "data_sum"]
    # and the seeds differ from each other
    assert len({rows["toy-features", "6", "0", s]["data_sum"] for s in "0123"}) == 4


def test_a_model_field_keeps_the_data_and_changes_the_model_draws(tmp_path, toys):
    sim = _run(tmp_path, "one", {"model": "toy-features", "seeds": 3,
                                 "grid": {"variant": [0, 1], "N": [5, 11]}})
    by = {(r["variant"], r["N"], r["seed"]): r for r in sim}
    for seed in "012":
        sums = {by[v, N, seed]["data_sum"] for v in "01" for N in ("5", "11")}
        assert len(sums) == 1  # four model configurations, one training set
        draws = {by[v, N, seed]["model_draw"] for v in "01" for N in ("5", "11")}
        assert len(draws) == 4  # each model configuration its own model key


def test_the_keys_follow_the_rule(toys):
    """The numbers in sim.csv are the rule's: recompute one seed by hand."""
    from rfsim.models import get_model

    model = get_model("toy-features")
    (point,) = plan(model, [{"n": 6, "d": 3, "tag": 1, "N": 40, "variant": 2}])
    want = group_digests({"n": 6, "d": 3, "tag": 1}, {"N": 40, "variant": 2})
    assert point.group == want
    (other,) = plan(get_model("toy-network"), [{"n": 6, "d": 3, "tag": 1, "width": 3}])
    assert other.group.data == point.group.data and other.group.model != point.group.model
    keys = seed_keys(group_keys(0, point.group), 3)
    out = _features_simulate(keys, point.cfg, None)
    x = data.sphere_inputs(jax.random.fold_in(keys.data, 0), 6, 3)
    assert float(out["data_sum"]) == float(
        x.sum() + (x[:, 0] + data.label_noise(jax.random.fold_in(keys.data, 1), 6, 0.5)).sum())
    # init's keys are the group's with 2^32 - 1 folded in: never a seed's
    init = state_keys(0, point.group)
    kd = jax.random.key_data
    assert not np.array_equal(kd(init.data), kd(keys.data))
    assert not np.array_equal(kd(init.model), kd(keys.model))


def test_data_and_model_digests_are_domain_separated():
    """Equal canonical JSON never gives equal words: a family with no data statics and one
    with no model statics do not share a key by accident."""
    g = group_digests({}, {})
    assert g.data != g.model
    same = {"n": 4}
    g = group_digests(same, same)
    assert g.data != g.model
    root = group_keys(0, g)
    assert not np.array_equal(jax.random.key_data(root.data), jax.random.key_data(root.model))


def test_the_marks_and_the_unmarked_default():
    assert data_fields(FeaturesConfig) == ("n", "d", "tag", "noise")
    assert data_static_fields(FeaturesConfig) == ("n", "d", "tag")
    assert model_static_fields(FeaturesConfig) == ("N", "variant")

    @model_config
    class Unmarked:
        n: int = static(3)
        N: int = static(4)
        ridge: float = param(0.0)

    assert data_static_fields(Unmarked) == static_fields(Unmarked) == ("n", "N")
    assert model_static_fields(Unmarked) == ()
    with pytest.raises(ValueError, match="data must be True or False, got 'yes'"):
        static(1, data="yes")


def test_an_earlier_shaped_family_gets_the_data_key(registry):
    """simulate(key, cfg) is adapted: its one key is keys.data (so the data rule holds)."""
    model = register("toy-legacy", NetworkConfig,
                     lambda key, cfg: {"v": jax.random.normal(key, ())}, lambda cfg: {"v": 0.0},
                     metrics=("v",))
    assert model.legacy and model.init(None, NetworkConfig()) is None
    keys = SeedKeys(jax.random.key(1), jax.random.key(2))
    cfg = NetworkConfig()
    assert float(model.simulate(keys, cfg, None)["v"]) == float(
        jax.random.normal(jax.random.key(1), ()))
    assert model.predict(cfg, None) == {"v": 0.0}


def test_every_family_splits_its_statics_into_data_and_model_fields():
    """For every registered family: data and model statics partition the statics (so the
    key pair identifies the static group), in declaration order."""
    from rfsim.models import available, get_model

    for name in available():
        cfg = get_model(name).config
        data_part, model_part = data_static_fields(cfg), model_static_fields(cfg)
        assert not set(data_part) & set(model_part), name
        assert sorted(data_part + model_part) == sorted(static_fields(cfg)), name
        assert set(data_part) <= set(static_fields(cfg)), name
