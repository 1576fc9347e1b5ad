"""The scheduler: pulls pending files from the database queue into the analysis executor and
hands outcomes to the writer. In-flight work is bounded by the executor's capacity, so a
100k-file library never sits in memory — it waits in the files table."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .jobs import Job, JobQueue

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


class Scheduler:
    def __init__(self, queue: JobQueue, executor, *, idle_wait_s: float = 5.0,  # type: ignore[no-untyped-def]
                 metrics=None) -> None:
        self.metrics = metrics  # core.metrics.Metrics or None
        self.queue = queue
        self.executor = executor
        self.stats = RunStats()
        self.in_flight: dict[int, Job] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_wait_s = idle_wait_s
        self.on_outcome: Callable[[Job, dict | None, str | None], None] | None = None

    def wake(self) -> None:
        """Called when new files were queued."""
        self._wake.set()

    def step(self, poll_s: float = 0.2) -> bool:
        """Fill the executor, collect finished work. Returns False when there was nothing to do."""
        claimed = []
        if not self._stopping.is_set():
            claimed = self.queue.claim(self.executor.capacity)
            for job in claimed:
                self.in_flight[job.file_id] = job
                self.executor.submit(job.file_id, job.path)
        if not self.in_flight:
            return bool(claimed)
        for outcome in self.executor.poll(poll_s):
            job = self.in_flight.pop(outcome.file_id, None)
            if job is None:
                continue
            self._record(job, outcome)
        return True

    def _record(self, job: Job, outcome) -> None:  # type: ignore[no-untyped-def]
        if outcome.requeue:
            self.queue.requeue([job.file_id])
            self.stats.requeued += 1
            return
        self.stats.completions.append(time.time())
        if outcome.error:
            log.warning("failed: %s: %s", job.path, outcome.error)
            self.queue.fail(job, outcome.error)
            self.stats.failed += 1
        else:
            self.queue.complete(job, outcome.result)
            self.stats.analysed += 1
            self.stats.audio_s += outcome.result.get("duration_s") or 0.0
            self.stats.cpu_s += outcome.result.get("cpu_s") or 0.0
        if self.metrics is not None:
            self.metrics.record_analysis(outcome.result, outcome.error, bytes_read=_size(job.path))
        if self.on_outcome:
            self.on_outcome(job, outcome.result, outcome.error)

    def run_until_idle(self, progress: Callable[[RunStats], None] | None = None) -> RunStats:
        """Analyse everything pending, in the caller's thread (used by `playlistgen scan`)."""
        while self.step() and not self._stopping.is_set():
            if progress:
                progress(self.stats)
        if progress:
            progress(self.stats)
        self.queue.db.writer.flush()
        return self.stats

    # ---- background mode (the daemon) -----------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.step()
            except Exception:  # keep the daemon alive; the error is logged and retried
                log.exception("scheduler step failed")
                busy = False
            if not busy:
                self._wake.wait(self._idle_wait_s)
                self._wake.clear()

    def stop(self, grace_s: float = 8.0) -> None:
        """Stop taking work, let in-flight files finish within ``grace_s``, re-queue the rest."""
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(grace_s + 5)
        deadline = time.monotonic() + grace_s
        while self.in_flight and time.monotonic() < deadline:
            for outcome in self.executor.poll(min(0.2, max(deadline - time.monotonic(), 0))):
                job = self.in_flight.pop(outcome.file_id, None)
                if job:
                    self._record(job, outcome)
        self.executor.close(grace_s=0)
        if self.in_flight:
            log.info("re-queueing %d unfinished file(s)", len(self.in_flight))
            self.queue.requeue(list(self.in_flight))
            self.in_flight.clear()

    def health(self) -> dict:
        return {"ready": not self._stopping.is_set(), "in_flight": len(self.in_flight),
                **self.stats.to_dict()}
