"""Ctrl-C and SIGTERM that stop a run cleanly, between compiled calls.

Why not the default ``KeyboardInterrupt``: it is raised wherever the main thread happens to
be -- often while it waits on an XLA computation that the runtime's worker threads are still
executing.  The interpreter then finalizes (module teardown, atexit) under those running
threads, which crashed with SIGSEGV (exit 139) in about half of the trials.  Here the signal
only sets a flag; the sweep calls :meth:`Checkpoint.check` between compiled calls, when
nothing is in flight, and :class:`Interrupted` unwinds from there: the point records already
written stay, the group in progress is dropped, the exit code is 128 + signal (130, 143).
A second signal exits at once (``os._exit``, skipping finalization, so still no crash).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Raised at a checkpoint after SIGINT/SIGTERM; ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class Checkpoint:
    """Callable: raises :class:`Interrupted` if a deferred signal has arrived.

    While ``deferring`` is false (validation, planning: no XLA computation in flight) a
    signal raises at once; while it is true (compute) it waits for the next checkpoint.
    """

    def __init__(self, deferring: bool = False):
        self.signum: int | None = None
        self.deferring = deferring

    def __call__(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    @property
    def pending(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def deferred(self):
        """Defer signals within the block (compute); a signal that arrived is raised at the
        block's checkpoints, or at its end."""
        before, self.deferring = self.deferring, True
        try:
            yield self
        finally:
            self.deferring = before


def install(checkpoint: Checkpoint, signals) -> dict:
    """Make ``signals`` set ``checkpoint`` (a second one exits at once); returns the
    previous handlers.  Main thread only."""

    def handler(signum, frame):
        if checkpoint.signum is not None:
            os.write(2, b"interrupted again: exiting now (finished points are saved)\n")
            os._exit(128 + signum)
        checkpoint.signum = signum
        if not checkpoint.deferring:
            raise Interrupted(signum)

    return {s: signal.signal(s, handler) for s in signals}


@contextlib.contextmanager
def deferred_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the signals set a flag instead of raising; yields the checkpoint.

    Outside the main thread (where handlers cannot be installed) the block runs with the
    default behaviour and a checkpoint that never fires.
    """
    checkpoint = Checkpoint(deferring=True)
    if threading.current_thread() is not threading.main_thread():
        yield checkpoint
        return
    previous = install(checkpoint, signals)
    try:
        yield checkpoint
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
