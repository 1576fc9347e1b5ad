"""The scheduler: pulls pending files from the database queue into the analysis executor and
hands outcomes to the writer. In-flight work is bounded by the executor's capacity, so a
100k-file library never sits in memory — it waits in the files table.

With ``upgrades`` (core/library/upgrade.py) it fills the workers the pending files leave free
with upgrade jobs (task SPREAD: the MusiCNN part an older analysis lacks), so new and changed
files always go first and an upgrade waits at most for one file; their outcomes go back to
``upgrades``, not to the job queue, the run statistics or the outcome listeners."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ...errors import DatabaseError
from ..analysis.result import AnalysisResult
from ..library.upgrade import SpreadUpgrades
from ..loops import BackgroundLoop
from ..storage.db import WriteFailedError
from ..storage.jobs import SPREAD, Job, JobQueue

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    started_at: float = field(default_factory=time.time)
    analysed: int = 0
    failed: int = 0
    requeued: int = 0
    audio_s: float = 0.0
    cpu_s: float = 0.0
    completions: deque = field(default_factory=lambda: deque(maxlen=10000))

    def per_minute(self, window_s: float = 300.0) -> float:
        """Files finished per minute over the last ``window_s`` (or since start if shorter)."""
        now = time.time()
        recent = [t for t in self.completions if now - t <= window_s]
        span = min(window_s, max(now - self.started_at, 1e-6))
        return len(recent) / span * 60.0

    def to_dict(self) -> dict:
        return {"analysed": self.analysed, "failed": self.failed, "requeued": self.requeued,
                "audio_s": round(self.audio_s, 1), "cpu_s": round(self.cpu_s, 2),
                "cpu_s_per_audio_min": round(self.cpu_s / (self.audio_s / 60), 3) if self.audio_s else None,
                "files_per_min": round(self.per_minute(), 2)}


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


OutcomeListener = Callable[[Job, AnalysisResult | None, str | None], None]


class Scheduler:
    def __init__(self, queue: JobQueue, executor, *, idle_wait_s: float = 5.0,  # type: ignore[no-untyped-def]
                 metrics=None, outcome_listeners: Sequence[OutcomeListener] = (),
                 upgrades: SpreadUpgrades | None = None) -> None:
        """``outcome_listeners`` are called with (job, result, error) after each recorded outcome
        (e.g. the tag writer); each must return quickly. ``upgrades``: older analyses to complete
        with the workers pending files leave free (None: none)."""
        self.upgrades = upgrades
        self.metrics = metrics  # core.metrics.Metrics or None
        self.queue = queue
        self.executor = executor
        self.stats = RunStats()
        self.in_flight: dict[int, Job] = {}
        self._stopping = threading.Event()   # also ends the foreground run_until_idle
        self._idle_wait_s = idle_wait_s
        self._loop = BackgroundLoop("scheduler", self._step_once, interval_s=lambda: self._idle_wait_s,
                                    on_error=lambda exc: log.exception("scheduler step failed"))
        self._listeners = tuple(outcome_listeners)
        # Outcomes whose write the storage refused (disk full...): kept here and written again
        # when writes work; no new file is claimed meanwhile. The rows stay 'analysing', so a
        # restart re-queues them if the process ends first.
        self._unsaved: dict[int, tuple[Job, object]] = {}
        self._store_errors: list[tuple[Job, object, BaseException]] = []
        self._unsaved_lock = threading.Lock()
        self._unsaved_since: float | None = None
        self._next_store_retry = 0.0
        self.store_retry_s = 2.0
        self.last_store_error: str | None = None
        self.requeue_at_start = False   # set when the start-up re-queue could not be written

    def wake(self) -> None:
        """Called when new files were queued."""
        self._loop.wake()

    def step(self, poll_s: float = 0.2) -> bool:
        """Fill the executor, collect finished work. Returns False when there was nothing to do."""
        claimed = []
        if not self._stopping.is_set() and self._writes_ok():
            try:
                claimed = self.queue.claim(self.executor.capacity)
            except WriteFailedError as exc:  # the writer logs it and reports it in /health
                self.last_store_error = exc.message
            if self.upgrades is not None and len(claimed) < self.executor.capacity:
                try:   # only when the queue is drained: new and changed files go first
                    claimed += self.upgrades.claim(self.executor.capacity - len(claimed))
                except DatabaseError as exc:
                    self.last_store_error = exc.message
            for job in claimed:
                self.in_flight[job.file_id] = job
                self.executor.submit(job.file_id, job.path, job.task)
        if not self.in_flight:
            return bool(claimed)
        for outcome in self.executor.poll(poll_s):
            job = self.in_flight.pop(outcome.file_id, None)
            if job is None:
                continue
            self._record(job, outcome)
        return True

    def _record(self, job: Job, outcome) -> None:  # type: ignore[no-untyped-def]
        if job.task == SPREAD:
            self._record_upgrade(job, outcome)
            return
        if outcome.requeue:
            self.queue.requeue([job.file_id])
            self.stats.requeued += 1
            return
        self.stats.completions.append(time.time())
        if outcome.error:
            log.warning("failed: %s: %s", job.path, outcome.error)
            self._store(job, outcome)
            self.stats.failed += 1
        else:
            self._store(job, outcome)
            self.stats.analysed += 1
            self.stats.audio_s += outcome.result.duration_s or 0.0
            self.stats.cpu_s += outcome.result.cpu_s or 0.0
        if self.metrics is not None:
            self.metrics.record_analysis(outcome.result, outcome.error, bytes_read=_size(job.path))
        for listener in self._listeners:
            listener(job, outcome.result, outcome.error)

    def _record_upgrade(self, job: Job, outcome) -> None:  # type: ignore[no-untyped-def]
        assert self.upgrades is not None
        if outcome.requeue:
            self.upgrades.release(job)
        elif outcome.error:
            self.upgrades.fail(job, outcome.error)
        else:
            self.upgrades.complete(job, outcome.result)

    # ---- storing outcomes, and what to do when the storage refuses --------------------------
    def _store(self, job: Job, outcome) -> None:  # type: ignore[no-untyped-def]
        future = self.queue.fail(job, outcome.error) if outcome.error else self.queue.complete(job, outcome.result)
        # runs in the writer thread: only note the outcome, the scheduler thread acts on it
        future.add_done_callback(lambda f: self._stored(job, outcome, f))

    def _stored(self, job: Job, outcome, future) -> None:  # type: ignore[no-untyped-def]
        exc = future.exception()
        with self._unsaved_lock:
            if exc is None:
                self._unsaved.pop(job.file_id, None)
            elif isinstance(exc, WriteFailedError):
                self._unsaved[job.file_id] = (job, outcome)
                self.last_store_error = exc.message
            else:
                self._unsaved.pop(job.file_id, None)
                self._store_errors.append((job, outcome, exc))
            if not self._unsaved:
                self._unsaved_since = None
            elif self._unsaved_since is None:
                self._unsaved_since = time.monotonic()

    def _writes_ok(self) -> bool:
        """Retry refused writes (with backoff); True when nothing is waiting to be written."""
        with self._unsaved_lock:
            errors, self._store_errors = self._store_errors, []
            waiting = list(self._unsaved.values())
        for job, outcome, exc in errors:
            # this result cannot be stored (a value the schema refuses): the file fails with why
            log.error("cannot store the result for %s: %s", job.path, exc)
            if not outcome.error:
                self._store(job, replace(outcome, result=None,
                                         error=f"result could not be stored: {exc}"))
        if self.requeue_at_start:
            try:
                count = self.queue.requeue_in_flight()
            except DatabaseError as exc:
                self.last_store_error = exc.message
                return False
            self.requeue_at_start = False
            log.info("re-queued %d file(s) left in flight by the last run", count)
        if not waiting:
            return True
        now = time.monotonic()
        if now >= self._next_store_retry:
            self._next_store_retry = now + self.store_retry_s
            for job, outcome in waiting:
                self._store(job, outcome)
        return False

    def unsaved_count(self) -> int:
        with self._unsaved_lock:
            return len(self._unsaved)

    def run_until_idle(self, progress: Callable[[RunStats], None] | None = None,
                       give_up_after_s: float = 60.0) -> RunStats:
        """Analyse everything pending, in the caller's thread (used by `playlistgen scan`).
        Raises WriteFailedError when results could not be written for ``give_up_after_s``."""
        while (self.step() or self.unsaved_count()) and not self._stopping.is_set():
            since = self._unsaved_since
            if since is not None and time.monotonic() - since > give_up_after_s:
                raise WriteFailedError(f"results of {self.unsaved_count()} file(s) could not be written for "
                                       f"{give_up_after_s:.0f} s: {self.last_store_error}",
                                       hint="free space on the database's filesystem and run scan again")
            if not self.in_flight:
                time.sleep(0.2)
            if progress:
                progress(self.stats)
        if progress:
            progress(self.stats)
        self.queue.db.writer.flush()
        return self.stats

    # ---- background mode (the daemon) -----------------------------------------------------
    def start(self) -> None:
        self._loop.start()

    def _step_once(self) -> None:
        if self.step():   # busy: the next step follows at once; idle: wait for a wake or idle_wait_s
            self._loop.wake()

    def stop(self, grace_s: float = 8.0) -> None:
        """Stop taking work, let in-flight files finish within ``grace_s``, re-queue the rest."""
        self._stopping.set()
        self._loop.stop(grace_s + 5)
        deadline = time.monotonic() + grace_s
        while self.in_flight and time.monotonic() < deadline:
            for outcome in self.executor.poll(min(0.2, max(deadline - time.monotonic(), 0))):
                job = self.in_flight.pop(outcome.file_id, None)
                if job:
                    self._record(job, outcome)
        self.executor.close(grace_s=0)
        files = [file_id for file_id, job in self.in_flight.items() if job.task != SPREAD]
        if files:
            log.info("re-queueing %d unfinished file(s)", len(files))
            self.queue.requeue(files)
        for job in self.in_flight.values():
            if job.task == SPREAD and self.upgrades is not None:
                self.upgrades.release(job)
        self.in_flight.clear()

    def health(self) -> dict:
        unsaved = self.unsaved_count()
        return {"ready": not self._stopping.is_set(), "in_flight": len(self.in_flight),
                "degraded": bool(unsaved) or self.requeue_at_start, "unsaved_results": unsaved,
                "last_store_error": self.last_store_error if unsaved or self.requeue_at_start else None,
                **self.stats.to_dict(), "upgrade": self.upgrade_progress()}

    def upgrade_progress(self) -> dict | None:
        """The background upgrade's counts (SpreadUpgrades.counts), None without one or when the
        database cannot be read right now."""
        if self.upgrades is None:
            return None
        try:
            return self.upgrades.counts()
        except DatabaseError:
            return None
