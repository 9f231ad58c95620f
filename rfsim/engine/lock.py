"""An advisory lock on a run directory (``DIR/.rfsim.lock``, POSIX ``flock``).

A run holds the lock *shared* for its whole duration and takes it *exclusive* only to
claim the directory (check or write ``experiment.json``).  So runs of the same experiment
proceed side by side (their writes are atomic and identical), while a run that finds the
lock held by someone else may only join when the directory already names its experiment.
The kernel drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = ".rfsim.lock"


class RunLock:
    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def open(self) -> RunLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        return self

    def try_exclusive(self) -> bool:
        """Take the lock exclusively if nobody holds it; never waits."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def shared(self) -> None:
        """Hold the lock shared (waits only for a claim in progress, which is short)."""
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.release()
