"""PRNG keys derived from content, never from positions in a grid.

Each (grid point, seed) gets two keys, :class:`SeedKeys` ``(data, model)``::

    root  = fold_in(key(root_seed mod 2^32), root_seed // 2^32)
    D     = fold_in(fold_in(root, d0), d1)   # (d0, d1): 64 bits of sha256("data:"  + data statics)
    M     = fold_in(fold_in(root, m0), m1)   # (m0, m1): 64 bits of sha256("model:" + model statics)
    keys  = SeedKeys(fold_in(D, seed), fold_in(M, seed))

where "data statics" is the canonical JSON (names and values) of the static fields the
family marks ``static(..., data=True)`` (n, d, the input distribution, the target: every
static when it marks no field) and "model statics" that of its other static fields
(feature count, width, activation).  The prefixes keep the two digests apart: equal JSON
never gives equal keys.  A family's ``init`` receives the group's keys with ``2^32 - 1``
folded in instead of a seed (:func:`state_keys`).  Consequences:

* growing, reordering, sharding, resuming or merging a grid never changes a point's draws,
  so a grown grid equals a fresh run of the grown grid;
* distinct static groups get distinct key pairs (up to a 2^-64 hash collision);
* points that differ only in continuous parameters (ridge, noise, ...) share draws: common
  random numbers, which is what lets one factorization per seed serve every ridge;
* the model's name is not hashed, and the data key sees only the data fields: two families
  (or two model sizes of one family) whose data fields coincide draw the same data from
  ``keys.data`` -- byte-identical if they draw it the same way (through :mod:`rfsim.data`,
  in a fixed order) -- while their model draws follow ``keys.model``.

``root_seed`` may be any integer in ``[0, 2^63)``: both halves enter the key, so seeds that
agree modulo 2^32 do not collide (``jax.random.key`` alone truncates them without x64).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

KEY_VERSION = 3  # bumped whenever the scheme changes: point ids include it
KEY_SCHEME = ("SeedKeys(data=fold_in(G(d0, d1), seed), model=fold_in(G(m0, m1), seed)); "
              "G(h0, h1) = fold_in(fold_in(fold_in(key(root_seed mod 2^32), root_seed // 2^32), "
              "h0), h1); (d0, d1) = first 8 bytes of sha256(\"data:\" + the canonical JSON of "
              "the point's data-marked static fields, every static if none is marked); "
              "(m0, m1) = first 8 bytes of sha256(\"model:\" + the canonical JSON of its other "
              "static fields)")
MAX_ROOT_SEED = 2**63 - 1


class SeedKeys(NamedTuple):
    """The two keys a family receives (a pytree: passes through jit, vmap and lax.map).

    ``data``: draw the inputs, the targets and the label noise from it (through
    :mod:`rfsim.data`, split by purpose with ``fold_in``); it hashes only the data-marked
    statics, so families sharing those fields see the same data.  ``model``: draw the
    model's randomness from it (random features, initial weights, a frozen network).
    """

    data: jax.Array
    model: jax.Array
MAX_SEEDS = 1_000_000


def plain(value: Any, *, field: str = "value") -> Any:
    """``value`` as canonical JSON data (numbers, strings, bools, lists), or ``ValueError``.

    Callables and arrays are refused: their identity cannot be written down, so two
    different ones could share a key or a point record.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{field} must be finite, got {value}")
        return value + 0.0  # -0.0 and 0.0 are the same value (and the same point)
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, field=f"{field}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{field} must be plain data (a number, a string, a list of them) to "
                     f"identify a run, got {type(value).__name__} {value!r}; use a registered "
                     "name (e.g. activation = \"relu\")")


def canonical(values: Mapping[str, Any]) -> str:
    """Stable JSON of a field -> value mapping (sorted keys, no whitespace)."""
    return json.dumps({k: plain(v, field=k) for k, v in values.items()}, sort_keys=True,
                      separators=(",", ":"))


def static_digest(statics: Mapping[str, Any], *, domain: str = "") -> tuple[int, int]:
    """Two 32-bit words of sha256(``domain`` + the canonical static values): key words."""
    h = hashlib.sha256((domain + canonical(statics)).encode()).digest()
    return int.from_bytes(h[:4], "big"), int.from_bytes(h[4:8], "big")


class Group(NamedTuple):
    """A static group's identity: the key words of its data statics and of its model statics
    (every point with the same static values has the same pair)."""

    data: tuple[int, int]
    model: tuple[int, int]


def group_digests(data_statics: Mapping[str, Any], model_statics: Mapping[str, Any]) -> Group:
    """The :class:`Group` of a point whose statics split into data and model fields."""
    return Group(static_digest(data_statics, domain="data:"),
                 static_digest(model_statics, domain="model:"))


def check_root_seed(root_seed: Any) -> int:
    if isinstance(root_seed, bool) or not isinstance(root_seed, (int, np.integer)) \
            or not 0 <= root_seed <= MAX_ROOT_SEED:
        raise ValueError(f"root_seed must be an integer in [0, {MAX_ROOT_SEED}], got "
                         f"{root_seed!r}")
    return int(root_seed)


def root_key(root_seed: int) -> jax.Array:
    root_seed = check_root_seed(root_seed)
    lo, hi = root_seed & 0xFFFFFFFF, root_seed >> 32
    return jax.random.fold_in(jax.random.key(lo), hi)


STATE_WORD = 0xFFFFFFFF  # seeds are < MAX_SEEDS, so the state keys never equal seed keys
STATE_KEY_SCHEME = ("SeedKeys(fold_in(data group key, 2^32 - 1), "
                    "fold_in(model group key, 2^32 - 1))")


def _word_key(root_seed: int, digest: tuple[int, int]) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(root_key(root_seed), digest[0]), digest[1])


def group_keys(root_seed: int, group: Group) -> SeedKeys:
    """The keys shared by every point of one static group (fold in the seed to use them)."""
    return SeedKeys(_word_key(root_seed, group.data), _word_key(root_seed, group.model))


def seed_keys(group: SeedKeys, seed) -> SeedKeys:
    """One seed's keys from its group's (``seed`` may be traced)."""
    return SeedKeys(jax.random.fold_in(group.data, seed), jax.random.fold_in(group.model, seed))


def state_keys(root_seed: int, group: Group) -> SeedKeys:
    """The keys a family's ``init(keys, cfg)`` receives for one static group."""
    g = group_keys(root_seed, group)
    return SeedKeys(jax.random.fold_in(g.data, STATE_WORD), jax.random.fold_in(g.model, STATE_WORD))


def group_key(root_seed: int, digest: tuple[int, int]) -> jax.Array:
    """One key from a digest ``(h0, h1)`` (a :class:`Group`'s pair: :func:`group_keys`)."""
    return _word_key(root_seed, digest)


def state_key(root_seed: int, group: Group) -> jax.Array:
    """The group's state keys stacked as one ``(2,)`` key array ``[data, model]`` (for the
    record in meta.json: ``jax.random.key_data`` of it); ``init`` gets :func:`state_keys`."""
    return jnp.stack(state_keys(root_seed, group))
