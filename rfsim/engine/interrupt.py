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

Signals that reach a running computation.  Python runs signal handlers only in the main
thread, between bytecodes: while the main thread waits for a compiled call (or for XLA to
compile one) no handler runs, so the second Ctrl-C and the SIGTERM deadline could wait for
hours.  :func:`install` therefore also points Python's wakeup fd at a pipe read by a
watcher thread: the C-level handler writes each signal's number there at once, whatever the
main thread is doing.  The watcher exits the process (``os._exit(128 + signal)``) on a
second signal, and ``TERM_GRACE_S`` seconds after a SIGTERM if the run has not stopped by
then (Slurm sends SIGKILL some time after SIGTERM).  Finished points are on disk already
(each record is written atomically as its group finishes), so a rerun resumes.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time


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
        self.watcher: _Watcher | None = None

    def __call__(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    @property
    def pending(self) -> bool:
        return self.signum is not None


TERM_GRACE_S = 20.0  # after SIGTERM, the run has this long to reach a checkpoint
_EXITING = threading.Lock()  # the handler and the watcher may both decide to exit


def term_grace_s() -> float:
    """``TERM_GRACE_S``, or the environment's ``RFSIM_TERM_GRACE_S`` (seconds, > 0)."""
    text = os.environ.get("RFSIM_TERM_GRACE_S")
    if text is None:
        return TERM_GRACE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ValueError(f"RFSIM_TERM_GRACE_S must be a number of seconds > 0, got {text!r}")
    return value


def _exit_now(signum: int, why: str) -> None:
    if not _EXITING.acquire(blocking=False):
        while True:  # the other thread is writing its line and exiting
            time.sleep(1.0)
    os.write(2, f"interrupted ({signal.Signals(signum).name}): {why}; finished grid points "
                "are saved; rerun the same command to resume\n".encode())
    os._exit(128 + signum)


class _Watcher:
    """Reads the signal numbers Python's C-level handler writes to the wakeup fd, so that a
    second signal, or a SIGTERM's deadline, ends the process even while the main thread
    is blocked in a compiled call."""

    def __init__(self, signals, grace_s: float):
        self.signals = {int(s) for s in signals}
        self.grace_s = grace_s
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._watch, name="rfsim-signals", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        first, deadline = None, None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.read_fd], [], [], timeout)
            if not ready:  # SIGTERM's grace period is over
                _exit_now(first, f"no checkpoint within {self.grace_s:g} s, exiting now")
            try:
                data = os.read(self.read_fd, 64)
            except OSError:
                return
            if not data:  # closed: uninstalled
                return
            for signum in data:
                if signum not in self.signals:
                    continue
                if first is not None:
                    _exit_now(signum, "again, exiting now")
                first = signum
                if signum == signal.SIGTERM:
                    deadline = time.monotonic() + self.grace_s

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)  # the watcher reads EOF and returns
        self.thread.join(timeout=1.0)
        os.close(self.read_fd)


def install(checkpoint: Checkpoint, signals, *, grace_s: float | None = None) -> dict:
    """Make ``signals`` set ``checkpoint``; a second one exits at once, and a SIGTERM
    exits after ``grace_s`` (default :func:`term_grace_s`) if no checkpoint stopped the run
    first -- even while the main thread waits on XLA.  Returns the previous handlers.
    Main thread only."""

    def handler(signum, frame):
        if checkpoint.signum is not None:
            _exit_now(signum, "again, exiting now")
        checkpoint.signum = signum

    _INSTALLED.append(checkpoint)
    previous = {s: signal.signal(s, handler) for s in signals}
    checkpoint.watcher = _Watcher(signals, term_grace_s() if grace_s is None else grace_s)
    return previous


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
        checkpoint.watcher.close()
        for s, h in previous.items():
            signal.signal(s, h)
