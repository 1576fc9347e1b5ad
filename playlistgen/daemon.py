"""The analysis pipeline of a running daemon: the job queue, the configured executor, the
scheduler, and the library service (library thread + watcher) that feeds the queue.

Built by ``playlistgen.app`` (`serve` starts it; `scan` drives its scheduler in the foreground)
and handed to the HTTP app through Services.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .config import Settings
from .core.execution.factory import build_executor
from .core.execution.scheduler import OutcomeListener, Scheduler
from .core.library.reconcile import Library
from .core.library.service import LibraryService
from .core.library.upgrade import SpreadUpgrades
from .core.storage.db import Database
from .core.storage.jobs import JobQueue
from .errors import DatabaseError

log = logging.getLogger(__name__)
# Daemon.status() reuses a snapshot this old, unless a file started or finished since: under load
# /health, /api/v1/library/status, the performance routes and /metrics build a few a second (locks,
# a count query, /proc reads) instead of one per request, and a poller that sees a file done never
# sees it in flight.
STATUS_MAX_AGE_S = 1.0


@dataclass(frozen=True)
class DaemonStatus:
    """One snapshot of the running daemon: what /health, /api/v1/library/status, the
    performance routes and /metrics show. Taken by :meth:`Daemon.status` (the executor's health
    is computed once per snapshot, however many gauges read it)."""

    taken_at: float          # time.monotonic()
    library: dict            # LibraryService.health(): watcher, current scan, unavailable roots
    analysis: dict           # Scheduler.health(): in flight, rates, unsaved results
    executor: dict           # the executor's health: workers (local or remote), restarts, state
    pending: int             # files waiting for analysis
    last_scan: dict | None   # the last finished reconcile
    progress: tuple = ()     # Daemon._progress() when taken

    @property
    def queue(self) -> dict:
        """The analysis queue in one dict (async-processor health, the dashboard)."""
        a = self.analysis
        return {"pending": self.pending, "in_flight": a["in_flight"], "files_per_min": a["files_per_min"],
                "analysed": a["analysed"], "failed": a["failed"], "requeued": a["requeued"],
                "library_requests": self.library["queue"]}


class Daemon:
    """The analysis pipeline `serve` runs: the library service feeds the job queue, the scheduler
    moves its files through the configured executor. ``outcome_listeners`` hear every outcome
    (the tag writer); ``check_models`` is the builder's job (``playlistgen.app``)."""

    def __init__(self, settings: Settings, db: Database, metrics=None,  # type: ignore[no-untyped-def]
                 outcome_listeners: Sequence[OutcomeListener] = (), keep_other_folders: bool = False,
                 upgrade: bool = True) -> None:
        """``upgrade``: complete older analyses in the background with the workers new files leave
        free (core/library/upgrade.py); `scan` builds the daemon without and asks with --upgrade."""
        from .core.analysis.factory import analyzer_spec, analyzer_version

        version = analyzer_version(settings)
        self.settings = settings
        self.db = db
        self.queue = JobQueue(db, version)
        # on_capacity: workers that join (Dask) wake the scheduler instead of waiting for its poll
        self.executor = build_executor(settings, analyzer_spec(settings), version,
                                       on_capacity=self._wake_scheduler)
        self.upgrades = SpreadUpgrades(db, settings.analysis.preset)
        self.scheduler = Scheduler(self.queue, self.executor, metrics=metrics,
                                   outcome_listeners=outcome_listeners,
                                   upgrades=self.upgrades if upgrade else None)
        self.library = Library(db, settings.library, version, on_queued=self.scheduler.wake,
                               keep_other_folders=keep_other_folders)
        self.library_service = LibraryService(self.library, settings, metrics=metrics)
        self._status: DaemonStatus | None = None
        self._status_lock = threading.Lock()

    def _wake_scheduler(self) -> None:
        self.scheduler.wake()

    def start(self) -> None:
        try:
            requeued = self.queue.requeue_in_flight()
        except DatabaseError as exc:  # e.g. disk full: start anyway, degraded; the scheduler retries
            log.error("cannot re-queue the files left in flight: %s", exc.one_line())
            self.scheduler.requeue_at_start = True
            requeued = 0
        if requeued:
            log.info("re-queued %d file(s) left in flight by the last run", requeued)
        self.executor.start()
        self.scheduler.start()
        self.library_service.start()

    def stop(self, grace_s: float = 6.0) -> None:
        self.library_service.stop()
        self.scheduler.stop(grace_s)

    def _progress(self) -> tuple:
        """Changes whenever a file starts or finishes (cheap: no lock, no query)."""
        stats = self.scheduler.stats
        return stats.analysed, stats.failed, stats.requeued, len(self.scheduler.in_flight)

    def status(self, max_age_s: float = STATUS_MAX_AGE_S) -> DaemonStatus:
        """A snapshot of the daemon; one younger than ``max_age_s`` is reused while no file started
        or finished since (a /metrics scrape reads a dozen gauges from one snapshot)."""
        with self._status_lock:
            cached, progress = self._status, self._progress()
            if cached is not None and time.monotonic() - cached.taken_at <= max_age_s \
                    and cached.progress == progress:
                return cached
            report = self.library.last_report
            self._status = DaemonStatus(taken_at=time.monotonic(), library=self.library_service.health(),
                                        analysis=self.scheduler.health(), executor=self.executor.health(),
                                        pending=self.queue.pending_count(),
                                        last_scan=report.to_dict() if report else None, progress=progress)
            return self._status

