"""PRNG keys derived from content, never from positions in a grid.

The key of (grid point, seed) is::

    root  = fold_in(key(root_seed mod 2^32), root_seed // 2^32)
    group = fold_in(fold_in(root, h0), h1)        # (h0, h1): 64 bits of sha256(statics)
    key   = fold_in(group, seed)

where ``statics`` is the canonical JSON of the point's *static* field values (sizes,
activation, ...: the fields that define the compiled program).  Consequences:

* growing, reordering, sharding, resuming or merging a grid never changes a point's draws,
  so a grown grid equals a fresh run of the grown grid;
* distinct static groups get distinct keys (up to a 2^-64 hash collision);
* points that differ only in continuous parameters (ridge, noise, ...) share draws: common
  random numbers, which is what lets one factorization per seed serve every ridge;
* the model's name is not hashed: two families whose static fields coincide see the same
  draws (common random numbers across models).

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
import numpy as np

KEY_VERSION = 2  # bumped whenever the scheme changes: point ids include it
KEY_SCHEME = ("fold_in(fold_in(fold_in(fold_in(key(root_seed mod 2^32), root_seed // 2^32), "
              "h0), h1), seed); (h0, h1) = first 8 bytes of sha256 of the canonical JSON of "
              "the point's static field values")
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


def static_digest(statics: Mapping[str, Any]) -> tuple[int, int]:
    """Two 32-bit words of sha256 of the canonical static values (the group's key words)."""
    h = hashlib.sha256(canonical(statics).encode()).digest()
    return int.from_bytes(h[:4], "big"), int.from_bytes(h[4:8], "big")


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


STATE_WORD = 0xFFFFFFFF  # seeds are < MAX_SEEDS, so the state key never equals a seed key
STATE_KEY_SCHEME = "fold_in(group key, 2^32 - 1)"


def state_key(root_seed: int, digest: tuple[int, int]) -> jax.Array:
    """The key a family's ``init(key, cfg)`` receives for one static group."""
    return jax.random.fold_in(group_key(root_seed, digest), STATE_WORD)


def group_key(root_seed: int, digest: tuple[int, int]) -> jax.Array:
    """The key shared by every point of one static group (fold in the seed to use it)."""
    return jax.random.fold_in(jax.random.fold_in(root_key(root_seed), digest[0]), digest[1])
