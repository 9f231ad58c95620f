"""The grid x seed engine.

* Grid points sharing their static fields (sizes, activation) form a *group*: one
  compilation, one jitted call per chunk of seeds.
* Keys come from content (:mod:`rfsim.engine.keys`): root seed, a hash of the point's
  data statics (the data key) and of its other statics (the model key), the seed -- never a
  position in the grid -- so results do not depend on chunking, sharding, resuming or
  growing the grid, and the points of a group see the same training sets (common random
  numbers across ridge, noise, ...; and across families and model sizes sharing their data
  fields).  This refines ARCHITECTURE.md's
  ``grid_index``: keying by the full grid point would give every ridge its own data and
  forbid the shared factorization.
* Within a compiled call the seeds and the points are loops (``lax.map``), not vmaps: XLA's
  batched kernels round differently for different batch sizes (a vmapped mat-vec becomes a
  mat-mat), which made a grown grid, a shard or another ``chunk_size`` differ from a fresh
  full run in the last digit; a loop runs the same body for every (seed, point) whatever
  its neighbours, so results are bitwise reproducible.  XLA hoists what does not depend on
  the swept values (the data, a factorization) out of the points loop, so 20 ridges still
  cost about one eigendecomposition per seed.  A loop of one iteration is inlined and fused
  differently, so a lone point or seed is padded to two.
* The contract has one shape: ``init(keys, cfg)`` once per group (its keys:
  :func:`~rfsim.engine.keys.state_keys`), ``simulate(keys, cfg, state)`` per (seed, point),
  ``predict(cfg, state)`` per point.  Coordinates of the metrics' axes are computed once per
  group, in :func:`plan` (``Point.coords``, shared by the group's points).
* ``chunk_size`` seeds per compiled call (a progress bar counts calls).
* ``interrupt()`` is called between compiled calls (never during one): the CLI's deferred
  Ctrl-C / SIGTERM raise there, so no XLA computation is in flight when the process exits.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rfsim.config import (as_dict, data_static_fields, make_config, model_static_fields,
                          param_fields, static_fields, unbatched_fields)
from rfsim.engine.interrupt import poll
from rfsim.engine.keys import Group, canonical, group_digests, group_keys, seed_keys, state_keys
from rfsim.models import Model


@dataclasses.dataclass(frozen=True)
class Point:
    """One grid point: its position in the full grid, all config values, its static group
    (:class:`~rfsim.engine.keys.Group`: the key words of its data statics and of its model
    statics), its config, and the coordinates of its family's axes (``{axis: 1-D array}``,
    computed once per group by :func:`plan`; ``{}`` for a family without axes)."""

    index: int
    values: dict[str, Any]
    group: Group
    cfg: Any = dataclasses.field(compare=False, repr=False)
    coords: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, compare=False,
                                                      repr=False)


@dataclasses.dataclass
class PointResult:
    point: Point
    sim: dict[str, np.ndarray]  # metric -> (seeds,) or (seeds, coords) values (nan/inf kept)
    theory: dict[str, np.ndarray]  # metric -> prediction (absent when the model has none)
    coords: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # axis -> coords


def plan(model: Model, grid: Iterable[dict[str, Any]]) -> list[Point]:
    """Every grid point (``grid``: each point's values, in grid order), validated, with its
    static group and the group's coordinates (computed once per group).  The engine knows
    configs, not the experiment file format."""
    statics = static_fields(model.config)
    data, rest = data_static_fields(model.config), model_static_fields(model.config)
    groups: dict[str, tuple[Group, dict]] = {}
    points = []
    for i, values in enumerate(grid):
        poll()
        cfg = make_config(model, values)
        full = as_dict(cfg)
        text = canonical({k: full[k] for k in statics})  # refuses callables and arrays
        if text not in groups:
            group = group_digests({k: full[k] for k in data}, {k: full[k] for k in rest})
            groups[text] = group, coordinates(model, cfg)
        group, coords = groups[text]
        points.append(Point(i, full, group, cfg, coords))
    return points


def coordinates(model: Model, cfg) -> dict[str, np.ndarray]:
    """``model.coords(cfg)`` checked: one 1-D array per axis of the family's metrics."""
    if model.coords is None:
        return {}
    coords = {a: np.asarray(c) for a, c in model.coords(cfg).items()}
    for a in model.axis_names:
        if a not in coords or coords[a].ndim != 1:
            got = "nothing" if a not in coords else f"shape {coords[a].shape}"
            raise ValueError(f"model {model.name!r}: coords(cfg) must give axis {a!r} as a "
                             f"1-D array, got {got}")
    return coords


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` with 0 <= i < N (0-based, like SLURM_ARRAY_TASK_ID)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(t) for t in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard must be i/N with 0 <= i < N, got {text!r}")
    return i, n


def check_shard(shard) -> tuple[int, int]:
    """A ``(i, N)`` pair of integers with 0 <= i < N, or ValueError."""
    ok = (isinstance(shard, tuple) and len(shard) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
          and shard[1] >= 1 and 0 <= shard[0] < shard[1])
    if not ok:
        raise ValueError(f"shard must be a pair (i, N) of integers with 0 <= i < N, got "
                         f"{shard!r}")
    return shard


def shard_points(points: list[Point], shard: tuple[int, int]) -> list[Point]:
    """Round-robin over grid points: deterministic, balanced across static groups."""
    i, n = shard
    return [p for p in points if p.index % n == i]


def _with_params(cfg, values: dict):
    """A copy of ``cfg`` with some dynamic leaves replaced (no validation: may be tracers)."""
    leaves, treedef = jax.tree_util.tree_flatten(cfg)
    names = param_fields(cfg)
    return jax.tree_util.tree_unflatten(
        treedef, [values.get(k, leaf) for k, leaf in zip(names, leaves)]
    )


@functools.cache
def _simulator(model: Model) -> Callable:
    """jit(loop_seeds(loop_points(simulate))); static fields retrace via the pytree aux.

    Seeds are a loop too: a vmap over them made the numbers depend (in the last digit) on
    how many seeds shared a compiled call, i.e. on ``--chunk`` and on the memory-fitted chunk
    of the machine.  With loops every (seed, point) runs the same body.

    ``fixed`` holds the ``batch=False`` parameters (scalars: loop-invariant, so what depends
    on them is hoisted), ``dyn`` every other parameter as a (points,) array.
    """

    def points(group, seed, cfg, fixed, dyn, state):
        keys = seed_keys(group, seed)

        def one(row):
            return model.simulate(keys, _with_params(cfg, {**fixed, **row}), state)

        return jax.lax.map(one, dyn)

    def seeds_loop(group, seeds, cfg, fixed, dyn, state):
        return jax.lax.map(lambda seed: points(group, seed, cfg, fixed, dyn, state), seeds)

    return jax.jit(seeds_loop)


@functools.cache
def _predictor(model: Model) -> Callable:
    def one(cfg, state):
        return model.predict(cfg, state)

    def points(cfg, fixed, dyn, state):
        return jax.lax.map(lambda row: one(_with_params(cfg, {**fixed, **row}), state), dyn)

    if model.predict_jit:
        return jax.jit(points)

    def on_host(cfg, fixed, dyn, state):
        """predict_jit=False: one call per point with the point's own (concrete) config."""
        n = len(dyn["_point"])
        scalars = {k: np.asarray(v).item() for k, v in fixed.items()}
        outs = [one(_with_params(cfg, {**scalars, **{k: np.asarray(v)[j].item()
                                                     for k, v in dyn.items()}}), state)
                for j in range(n)]
        return {k: np.stack([np.asarray(o[k]) for o in outs]) for k in outs[0]} if outs else {}

    return on_host


MIN_LOOP = 2  # a one-iteration loop is inlined and rounds differently: pad to two


def _padded(pts: list[Point]) -> list[Point]:
    return pts + [pts[-1]] * max(0, MIN_LOOP - len(pts))


def _subgroups(model: Model, pts: list[Point]) -> list[list[Point]]:
    """Points of a static group split by their ``batch=False`` parameter values."""
    names = unbatched_fields(model.config)
    subs: dict[tuple, list[Point]] = {}
    for p in pts:
        subs.setdefault(tuple(repr(p.values[k]) for k in names), []).append(p)
    return list(subs.values())


def _param_arrays(model: Model, block: list[Point]) -> tuple[dict, dict]:
    """(fixed scalars, (points,) arrays) of every parameter of a block of points."""
    dtype = jnp.result_type(float)
    fixed_names = unbatched_fields(model.config)
    fixed = {k: jnp.asarray(block[0].values[k], dtype=dtype) for k in fixed_names}
    dyn = {k: jnp.asarray([p.values[k] for p in block], dtype=dtype)
           for k in param_fields(model.config) if k not in fixed_names}
    dyn["_point"] = jnp.arange(len(block))  # the loop has a length even with no params
    return fixed, dyn


def _chunks(n_seeds: int, chunk_size: int) -> list[np.ndarray]:
    idx = np.arange(n_seeds)
    return [idx[i : i + chunk_size] for i in range(0, n_seeds, chunk_size)]


def group_points(points: Iterable[Point]) -> dict[Group, list[Point]]:
    groups: dict[Group, list[Point]] = {}
    for p in points:
        groups.setdefault(p.group, []).append(p)
    return groups


def run_points(
    model: Model,
    points: list[Point],
    *,
    seeds: int,
    root_seed: int = 0,
    chunk_size: int = 8,
    progress: bool = False,
    on_group_done: Callable[[list[PointResult]], None] | None = None,
    interrupt: Callable[[], None] | None = None,
) -> list[PointResult]:
    """Simulate every point for seeds 0..seeds-1 and evaluate the prediction.

    ``on_group_done`` receives each finished group's results (the run directory
    writes them atomically, which is what makes a killed run resumable).
    ``interrupt()`` runs before each compiled call and may raise to stop cleanly.
    """
    interrupt = interrupt or (lambda: None)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    groups = group_points(points)
    chunks = _chunks(seeds, chunk_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(chunks) * sum(len(_subgroups(model, pts)) for pts in groups.values())
        bar = tqdm(total=total, unit="chunk", desc=model.name, leave=False)
    results = []
    try:
        for g, pts in groups.items():
            cfg = pts[0].cfg
            sim = _simulator(model)
            keys = group_keys(root_seed, g)
            state = model.init(state_keys(root_seed, g), cfg)
            coords = pts[0].coords
            by_point = {}
            for sub in _subgroups(model, pts):
                for r in _run_block(model, sim, keys, cfg, state, _padded(sub), chunks,
                                    chunk_size, interrupt, bar, coords):
                    r.coords = coords
                    by_point.setdefault(id(r.point), r)  # padding repeats a point
            group_results = [by_point[id(p)] for p in pts]
            if on_group_done is not None:
                on_group_done(group_results)
            results.extend(group_results)
    finally:
        if bar is not None:
            bar.close()
    return results


def _run_block(model, sim, keys, cfg, state, block, chunks, chunk_size, interrupt, bar, coords):
    """Results of one block of points (padding included) over all seeds.

    The prediction comes first: it is cheap, and a prediction that cannot be formed then
    stops the run before the simulation is spent, not after it (which lost it)."""
    fixed, dyn = _param_arrays(model, block)
    theory = {}
    if model.predict is not None:
        interrupt()
        try:
            pred = _predictor(model)(cfg, fixed, dyn, state)
        except (ArithmeticError, FloatingPointError) as e:  # overflow, division by zero
            statics = ", ".join(f"{k}={block[0].values[k]}" for k in static_fields(cfg))
            raise ValueError(f"model {model.name!r}: the prediction cannot be computed for "
                             f"({statics}): {type(e).__name__}: {e}; nothing was simulated "
                             "for these points") from None
        theory = {k: np.asarray(v) for k, v in pred.items()}
        if model.predicts is not None and set(theory) != set(model.predicts):
            raise RuntimeError(f"model {model.name!r}: predict returned {sorted(theory)}, "
                               f"it declares predicts={sorted(model.predicts)}")
    outs = []
    for chunk in chunks:
        interrupt()
        padded = np.pad(chunk, (0, max(chunk_size, MIN_LOOP) - len(chunk)), mode="edge")
        out = sim(keys, jnp.asarray(padded, dtype=jnp.uint32), cfg, fixed, dyn, state)
        outs.append({k: np.asarray(v)[: len(chunk)] for k, v in out.items()})
        if bar is not None:
            bar.update(1)
    merged = {k: np.concatenate([o[k] for o in outs], axis=0) for k in outs[0]}
    _check_metric_shapes(model, merged, coords)
    return [PointResult(p, {k: merged[k][:, j] for k in model.metrics},
                        {k: np.asarray(v[j], float) for k, v in theory.items()})
            for j, p in enumerate(block)]


def _check_metric_shapes(model: Model, out: dict, coords: dict) -> None:
    if set(out) != set(model.metrics):
        raise RuntimeError(
            f"model {model.name!r}: simulate returned metrics {sorted(out)}, "
            f"registered {sorted(model.metrics)}"
        )
    for k, v in out.items():
        want = () if k not in model.axes else (len(coords[model.axes[k]]),)
        if v.shape[2:] != want:
            what = "a scalar" if not want else f"an array of shape {want} (axis " \
                f"{model.axes[k]!r})"
            raise RuntimeError(f"model {model.name!r}: metric {k!r} must be {what} per seed, "
                               f"got shape {v.shape[2:]}")
