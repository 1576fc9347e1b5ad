"""The library service: one "library" thread applies every change to the files table — start-up
reconcile, watcher events, API-triggered and periodic rescans — so they never race each other; the
watcher (when library.watch) only queues its changes here."""

from __future__ import annotations

import logging
import queue
import time

from ...config import Settings
from ...errors import DatabaseError
from ..loops import BackgroundLoop
from .reconcile import Library

log = logging.getLogger(__name__)
# how soon a reconcile is tried again after a refused write or while a library root is unavailable
RETRY_S = 30.0


class LibraryService:
    """Owns the library thread and the watcher; everything else only asks it for work."""

    def __init__(self, library: Library, settings: Settings, metrics=None) -> None:  # type: ignore[no-untyped-def]
        self.library = library
        self.metrics = metrics
        self.settings = settings
        self._requests: queue.Queue = queue.Queue(maxsize=256)
        # the body blocks on the request queue (up to 1 s), so the loop itself never waits
        self._thread = BackgroundLoop("library", self._next, interval_s=0)
        self.watcher = None
        self.last_error: str | None = None
        self.storage_error: str | None = None   # the last reconcile could not be written
        interval = self._interval = settings.library.rescan_interval_s
        self.retry_s = min(RETRY_S, interval) if interval else RETRY_S
        self._next_periodic: float | None = None
        self._retry_at: float | None = None   # an unavailable root or a refused write: scan again soon

    def start(self) -> None:
        self.request_scan("startup")
        self._next_periodic = time.monotonic() + self._interval if self._interval else None
        self._thread.start()
        if self.settings.library.watch:
            self._start_watcher()

    def _start_watcher(self) -> None:
        from .watcher import LibraryWatcher

        lib = self.settings.library
        self.watcher = LibraryWatcher(lib.paths, extensions=lib.extensions, ignore=lib.ignore,
                                      polling=lib.polling, settle_seconds=lib.settle_seconds,
                                      on_changes=self._on_changes)
        try:
            self.watcher.start()
        except Exception as exc:  # the periodic reconcile still catches changes
            self.last_error = f"watcher failed: {exc}"
            log.error("%s — relying on periodic reconcile (library.rescan_interval_s)", self.last_error)
            self.watcher = None

    def request_scan(self, trigger: str = "api") -> bool:
        """Queue a full reconcile; False if one is already waiting."""
        try:
            self._requests.put_nowait(("scan", trigger))
            return True
        except queue.Full:
            return False

    def _on_changes(self, changes: list) -> None:
        # only enqueue; blocking here applies backpressure to the watcher's debounce thread
        self._requests.put(("changes", changes))

    def _next(self) -> None:
        """One turn of the library thread: the next request, or the periodic / retry scan when due."""
        due = min((t for t in (self._next_periodic, self._retry_at) if t is not None), default=None)
        timeout = max(due - time.monotonic(), 0) if due is not None else 1.0
        try:
            kind, payload = self._requests.get(timeout=min(timeout, 1.0))
        except queue.Empty:
            if due is None or time.monotonic() < due:
                return
            kind, payload = "scan", "retry" if due == self._retry_at else "periodic"
        try:
            if kind == "scan":
                report = self.library.reconcile(trigger=payload)
                if self.metrics is not None:
                    self.metrics.observe("reconcile", report.seconds, trigger=payload, files=report.seen)
                if self._interval:
                    self._next_periodic = time.monotonic() + self._interval
                self._retry_at = time.monotonic() + self.retry_s if self.library.unavailable else None
                self.storage_error = None
            elif kind == "changes":
                self._apply(payload)
        except DatabaseError as exc:  # disk full, read-only: one line, retried by itself
            self.last_error = self.storage_error = f"{kind}: {exc.one_line()}"
            log.error("library update failed: %s (retrying in %.0f s)", self.last_error, self.retry_s)
            self._retry_at = time.monotonic() + self.retry_s
        except Exception as exc:  # logged, shown in status; the next scan retries
            self.last_error = f"{kind}: {exc}"
            log.exception("library update failed")

    def _apply(self, changes: list) -> None:
        changed, deleted = [], []
        for change in changes:
            if change.kind == "rescan":
                self.library.reconcile(trigger="watcher-overflow")
                return
            if change.kind == "changed":
                changed.append(change.path)
            elif change.kind == "deleted":
                deleted.append(change.path)
            elif change.kind == "moved":
                deleted.append(change.path)
                if change.dest:
                    changed.append(change.dest)
        self.library.apply_paths(changed=changed, deleted=deleted)
        if self.library.needs_scan:  # a root itself went or came: only a full reconcile can tell
            self.library.needs_scan = False
            self.request_scan("root-changed")

    def stop(self) -> None:
        self._thread.stop(10)   # before the watcher, as before: no change is applied once stop() began
        if self.watcher:
            self.watcher.stop()

    def health(self) -> dict:
        watcher = self.watcher.health() if self.watcher else {"ready": not self.settings.library.watch,
                                                               "mode": "off"}
        unavailable = dict(self.library.unavailable)
        return {"ready": self._thread.is_alive or not self._thread.started, "watcher": watcher,
                "degraded": bool(unavailable) or self.storage_error is not None,
                "unavailable_roots": unavailable, "storage_error": self.storage_error, "scan": self.library.current,
                "last_error": self.last_error, "queue": self._requests.qsize()}
