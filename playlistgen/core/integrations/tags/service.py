"""`library.write_tags: true`: `serve` writes each new analysis into the file's tags.

The scheduler hands every successful result to :meth:`TagWriterService.on_outcome` (non-blocking;
a bounded queue). A thread waits until the result is committed (so the retag the write causes is
recognised by its audio fingerprint and keeps the analysis), then runs the safe write of
`core.tagwriter` in a one-process spawn pool: decoding for verification may load Essentia (m4a),
which the serve process itself must never import.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ....config import Settings
from ...analysis.result import AnalysisResult
from ...loops import BackgroundLoop
from ...storage.db import Database
from ...storage.files import live

log = logging.getLogger(__name__)

QUEUE_SIZE = 10000
COMMIT_WAIT_S = 30.0


_busy = False   # in the writer process: a write is under way


def _write(path: str, result: AnalysisResult, threshold: float, roots: list[str]) -> tuple[str, str | None]:
    from .writer import write_tags

    global _busy
    _busy = True
    try:
        outcome = write_tags(path, result.to_dict(), threshold=threshold,   # the record the writer reads
                             library_roots=roots)
    finally:
        _busy = False
    return outcome.status, outcome.reason


def _on_sigterm(signum: int, frame: Any) -> None:
    from ...library.tag_copies import Terminated

    if _busy:
        raise Terminated   # the write's ``finally`` removes its copy; serve reports the file
    raise SystemExit(0)    # idle: end quietly


def _init_writer_process() -> None:
    """SIGTERM to the whole service (systemd stops the control group) would otherwise end the
    writer process on the spot, its temporary copy left behind."""
    signal.signal(signal.SIGTERM, _on_sigterm)


class TagWriterService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.threshold = settings.playlists.tag_min_probability
        self.roots = list(settings.library.paths)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        # the body blocks on the queue (up to 0.5 s), so the loop itself never waits
        self._loop = BackgroundLoop("tagwriter", self._write_next, interval_s=0)
        self._pool: ProcessPoolExecutor | None = None
        self.counts: dict[str, int] = {}

    def on_outcome(self, job: Any, result: AnalysisResult | None, error: str | None) -> None:
        if result is None or error:
            return
        try:
            self._queue.put_nowait((job.path, result))
        except queue.Full:
            self.counts["dropped"] = self.counts.get("dropped", 0) + 1
            log.warning("tag writing is behind; %s left for `playlistgen tags write`", job.path)

    def start(self) -> None:
        self._loop.start()

    def _committed(self, path: str) -> bool:
        deadline = time.monotonic() + COMMIT_WAIT_S
        while not self._loop.stopping and time.monotonic() < deadline:
            if self.db.query(f"SELECT 1 FROM files WHERE path = ? AND {live()}", (path,)):
                return True
            self._loop.sleep(0.1)
        return False

    def _write_next(self) -> None:
        try:
            path, result = self._queue.get(timeout=0.5)
        except queue.Empty:
            return
        if not self._committed(path):
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_writer_process)
        try:
            status, reason = self._pool.submit(_write, path, result, self.threshold, self.roots).result()
        except (Exception, KeyboardInterrupt) as exc:   # a crashed or terminated writer process: the next
            # file gets a new one (KeyboardInterrupt: copies.Terminated, raised there and sent here)
            status, reason = "failed", str(exc) or f"the writer process stopped ({type(exc).__name__})"
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.counts[status] = self.counts.get(status, 0) + 1
        if status in ("failed", "skipped"):
            log.warning("tags not written to %s: %s", path, reason)

    def stop(self) -> None:
        self._loop.stop(30)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def health(self) -> dict:
        return {"ready": True, "queued": self._queue.qsize(), **self.counts}
