"""Ctrl-C and SIGTERM that stop a run cleanly, between compiled calls.

Why not the default ``KeyboardInterrupt``: it is raised wherever the main thread happens to
be -- often while it waits on an XLA computation that the runtime's worker threads are still
executing.  The interpreter then finalizes (module teardown, atexit) under those running
threads, which crashed with SIGSEGV (exit 139) in about half of the trials.  Here the signal
only sets a flag; the sweep calls the checkpoint between compiled calls (and :func:`poll` runs in
long validation loops), when
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


_INSTALLED: list = []  # the checkpoint the process's handlers set (signals are global)


def poll() -> None:
    """Raise :class:`Interrupted` if a signal has arrived: for long pure-Python loops
    (validating or planning a large grid) that have no checkpoint passed to them."""
    if _INSTALLED:
        _INSTALLED[-1]()


class Checkpoint:
    """Callable: raises :class:`Interrupted` if a deferred signal has arrived.

    Signals never raise where they land (that crashed XLA at exit, and printed tracebacks
    from places that cannot propagate an exception); they are raised at checkpoints: the
    engine's, between compiled calls, and :func:`poll` in long validation loops.
    """

    def __init__(self):
        self.signum: int | None = None

    def __call__(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    @property
    def pending(self) -> bool:
        return self.signum is not None


def install(checkpoint: Checkpoint, signals) -> dict:
    """Make ``signals`` set ``checkpoint`` (a second one exits at once); returns the
    previous handlers.  Main thread only."""

    def handler(signum, frame):
        if checkpoint.signum is not None:
            os.write(2, b"interrupted again: exiting now (finished points are saved)\n")
            os._exit(128 + signum)
        checkpoint.signum = signum

    _INSTALLED.append(checkpoint)
    return {s: signal.signal(s, handler) for s in signals}


@contextlib.contextmanager
def deferred_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the signals set a flag instead of raising; yields the checkpoint.

    Outside the main thread (where handlers cannot be installed) the block runs with the
    default behaviour and a checkpoint that never fires.
    """
    checkpoint = Checkpoint()
    if threading.current_thread() is not threading.main_thread():
        yield checkpoint
        return
    previous = install(checkpoint, signals)
    try:
        yield checkpoint
    finally:
        _INSTALLED.remove(checkpoint)
        for s, h in previous.items():
            signal.signal(s, h)
