"""Shared test helpers: fixed keys, a per-dtype tolerance table, an agreement assertion
that goes through the same code as `rfsim check`, and config parameter replacement."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from rfsim.checks import Statistical
from rfsim.engine.table import SummaryTable

#: round-off tolerances for exact comparisons, by dtype (relative)
TOL = {np.dtype("float64"): 1e-10, np.dtype("float32"): 2e-4}


def tol(x) -> float:
    """The exact-comparison tolerance for the dtype of ``x``."""
    return TOL[np.asarray(x).dtype]


def keys(n: int, seed: int = 0) -> jax.Array:
    """``n`` fixed, independent keys (a test's seeds)."""
    return jax.random.split(jax.random.key(seed), n)


def agree(samples, theory, *, max_abs_z: float = 4.0, rel_tol: float = 0.0,
          label: str = "value") -> str:
    """Assert that seed ``samples`` (axis 0) agree with ``theory`` the way a shipped
    statistical check decides it (mean within max_abs_z sem + rel_tol |theory|); returns
    the verdict's figure."""
    samples = np.asarray(samples, float)
    theory = np.broadcast_to(np.asarray(theory, float), samples.shape[1:])
    mean = samples.mean(0)
    sem = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    table = SummaryTable.from_rows(
        {"metric": label, "point": i, "mean": float(m), "sem": float(s), "theory": float(t)}
        for i, (m, s, t) in enumerate(zip(mean.ravel(), sem.ravel(), theory.ravel())))
    check = Statistical(metric=label, max_abs_z=max_abs_z, rel_tol=rel_tol)
    passed, figure = check.judge(table)
    assert passed, figure
    return figure


def replace(cfg, **values):
    """A copy of a config with some fields replaced (validated again)."""
    return dataclasses.replace(cfg, **values)


def run_cli(capsys, *argv):
    """``rfsim`` with ``argv`` (paths allowed) in this process: (exit code, stdout, stderr)."""
    from rfsim.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err
