"""How much memory a run may use, and whether a static group fits in it (checked before
any compute).

Each family may declare ``memory(cfg) -> int``: the floats of one seed's peak working set
(every array live at the peak: inputs, features, a Gram matrix, a factorization's output
and workspace, XLA temporaries), measured against the real peak in
``tests/test_memory_estimates.py`` (within 2x).  Seeds run one after another inside a
compiled call, so when one seed does not fit the run is refused, with the estimate in the
message, before anything is computed.
"""

from __future__ import annotations

from pathlib import Path

MAX_GRID_POINTS = 100_000  # validating a point takes ~1 ms: 10^5 points ~ 2 min
MAX_TABLE_ROWS = 100_000_000  # grid points x seeds (rows of sim.csv)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
        return None if text == "max" else int(text)
    except (OSError, ValueError, IndexError):
        return None


def host_memory() -> int | None:
    """Bytes the process may still allocate: MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int(
        "/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        avail = limit - used if avail is None else min(avail, limit - used)
    return avail


def available_memory() -> tuple[int | None, str]:
    """(bytes, where) for the default JAX device: accelerator memory, else host memory."""
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0), str(device)
    return host_memory(), "host memory"


def human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1024 or unit == "PB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} PB"


def seed_bytes(peak_floats: int, itemsize: int) -> int:
    """Estimated peak bytes of one seed: its working set of ``peak_floats`` floats."""
    return peak_floats * itemsize


def require_fits(peak_floats: int, itemsize: int, available: int | None, where: str,
                 label: str) -> None:
    """Refuse (ValueError, with the estimate) a grid point whose seed does not fit."""
    per_seed = seed_bytes(peak_floats, itemsize)
    if available is None or per_seed <= available:
        return
    raise ValueError(
        f"grid point {label} does not fit in memory: one seed's working set is about "
        f"{peak_floats:,} floats ({human(per_seed)}), but {human(available)} of {where} is "
        "available: reduce the sizes")
