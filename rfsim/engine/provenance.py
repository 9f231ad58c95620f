"""What meta.json records about the software, the machine and the code version."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

import jax

PACKAGES = ("jax", "jaxlib", "numpy", "scipy", "optax", "flax", "rfsim")


def versions() -> dict[str, str | None]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict[str, object]:
    """Commit of the rfsim source tree (and whether it has uncommitted changes)."""
    root = Path(__file__).resolve().parents[1]  # the rfsim package
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def runtime() -> dict[str, object]:
    return {
        "x64": bool(jax.config.jax_enable_x64),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
        "prng_impl": str(jax.config.jax_default_prng_impl),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def command_line() -> list[str]:
    return list(sys.argv)
