"""One way to run a background thread: a body called again and again until ``stop()``, an
interruptible wait between calls, a clean join, and errors that are logged and counted instead
of ending the thread silently.

Components keep their own public ``start``/``stop``/``health``; this only replaces the
scaffolding each of them used to repeat (a Thread, a stop Event, a wake Event, a try/except
around each iteration, a join with a timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import exception_text

log = logging.getLogger(__name__)

Interval = float | Callable[[], float] | None
RETRY_S = 1.0   # the wait after an ``interval_s`` callable failed


class BackgroundLoop:
    """Calls ``body()`` on a daemon thread named ``name`` until :meth:`stop`.

    Between two calls the loop waits ``interval_s`` seconds or until :meth:`wake`, whichever
    comes first. ``interval_s`` may be a callable, asked before every wait (a delay that depends
    on the time of day, or on an attribute a test shortens); ``None`` waits for a wake only. A body
    that has more work calls ``wake()`` itself: its next call follows at once. ``wait_first`` waits
    once before the first call too. What ``body`` returns is ignored.

    An exception from ``body`` (or from an ``interval_s`` callable) is counted in ``errors``, kept
    in ``last_error`` and logged by ``on_error(exc)`` (called inside the ``except`` block, so
    ``log.exception`` shows the traceback) or, without one, here; the loop carries on."""

    def __init__(self, name: str, body: Callable[[], object], *, interval_s: Interval,
                 wait_first: bool = False, on_error: Callable[[Exception], None] | None = None) -> None:
        self.name = name
        self.interval_s = interval_s
        self._body = body
        self._wait_first = wait_first
        self._on_error = on_error
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.iterations = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    # ---- control -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread; does nothing while it runs. A stopped loop may be started again."""
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._wake.clear()
            self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """End the current wait now; a wake during a call (also by the body) skips the next wait."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the loop to end, wake it and join it for up to ``timeout`` seconds. A call in
        progress is never interrupted. True once the thread has ended (or never started); False,
        with a warning, while it still runs. Safe to call twice, and before ``start()``."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("thread %s did not end within %g s", self.name, timeout)
            return False
        return True

    def sleep(self, seconds: float) -> bool:
        """For the body: wait up to ``seconds``, ending early on ``stop()``; True when stopping."""
        return self._stop.wait(seconds)

    # ---- state -----------------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        """``start()`` was called (the thread may have ended since)."""
        return self._thread is not None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        """The thread runs and was not asked to stop."""
        return self.is_alive and not self.stopping

    def health(self) -> dict:
        return {"running": self.running, "iterations": self.iterations, "errors": self.errors,
                "last_error": self.last_error, "last_error_at": self.last_error_at}

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """The loop itself: ``start()`` runs it on the thread; a foreground command may call it
        directly (it returns after ``stop()``, e.g. from a signal handler)."""
        wait = self._wait_first
        while not self._stop.is_set():
            if wait:
                self._wake.wait(self._next_wait())
                self._wake.clear()
                if self._stop.is_set():
                    break
            wait = True
            try:
                self._body()
            except Exception as exc:  # one bad iteration must not end the thread
                self._failed(exc)
            self.iterations += 1

    def _next_wait(self) -> float | None:
        interval = self.interval_s
        if not callable(interval):
            return interval
        try:
            return interval()
        except Exception as exc:
            self._failed(exc)
            return RETRY_S

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error, self.last_error_at = exception_text(exc), time.time()
        if self._on_error is None:
            log.exception("%s: background iteration failed", self.name)
            return
        try:
            self._on_error(exc)
        except Exception:  # a failing error handler must not end the thread either
            log.exception("%s: error handler failed", self.name)
