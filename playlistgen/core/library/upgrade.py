"""Upgrade older analyses without a stop (issue 22, point 4): tracks analysed before the spread
existed (an ML preset, ``embedding`` set, ``embedding_spread`` NULL) get only what they lack.

The scheduler asks :meth:`SpreadUpgrades.claim` for jobs when the pending files left workers
free, so new and changed files always go first; a job (task SPREAD) decodes the file once at
16 kHz and runs MusiCNN only (``PipelineAnalyzer.analyze_spread``), and :meth:`complete` writes
the spread, the patch count and the MTT embedding into the *existing* features row — no other
column changes, and the old embedding keeps answering until then. A row that was re-analysed
meanwhile is left alone (it has its own spread). A file that cannot be upgraded (vanished, no
longer decodes) gets ``spread_error`` with the reason and is not tried again by the daemon;
``scan --upgrade`` retries those once (:meth:`retry_failed`).

What is claimed is held in memory only: a crash loses nothing but the jobs in flight, which the
next claim finds again. Rows of another preset than the configured one are not upgraded (the
running analyzer has that preset's models and patch plan only).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..analysis.presets import get_preset
from ..analysis.result import AnalysisResult
from ..storage.db import Database
from ..storage.files import live
from ..storage.jobs import SPREAD, Job
from ..storage.records import to_blob, to_half_blob

log = logging.getLogger(__name__)

# the rows to upgrade: a live track's newest features row of this preset with an embedding and no
# spread (the partial index features_spread_missing holds exactly the NULL-spread ML rows)
_MISSING = ("f.embedding_spread IS NULL AND f.embedding IS NOT NULL AND f.preset = ? "
            "AND f.id = (SELECT max(x.id) FROM features x WHERE x.track_id = f.track_id)")
_LIVE_PATH = f"(SELECT fl.path FROM files fl WHERE fl.track_id = f.track_id AND {live('fl')} ORDER BY fl.id LIMIT 1)"


class SpreadUpgrades:
    """The upgrade's job source and writer for one preset (built by the daemon and by `scan`)."""

    def __init__(self, db: Database, preset: str) -> None:
        self.db = db
        self.preset = preset
        self.enabled = get_preset(preset).uses_ml
        self.upgraded = 0          # rows upgraded by this process
        self.failed = 0            # rows that failed in this process
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()   # features row ids claimed and not yet written

    # ---- the scheduler's side ----------------------------------------------------------------
    def claim(self, limit: int) -> list[Job]:
        """Up to ``limit`` rows to upgrade (oldest first) that are not in flight, as SPREAD jobs."""
        if not self.enabled or limit <= 0:
            return []
        with self._lock:
            busy = set(self._in_flight)
        rows = self.db.query(
            f"SELECT f.id, {_LIVE_PATH} AS path, t.fingerprint FROM features f JOIN tracks t ON t.id = f.track_id "
            f"WHERE {_MISSING} AND f.spread_error IS NULL AND path IS NOT NULL ORDER BY f.id LIMIT ?",
            (self.preset, limit + len(busy)))
        jobs = [Job(-row_id, path, fingerprint, SPREAD) for row_id, path, fingerprint in rows
                if row_id not in busy][:limit]
        with self._lock:
            self._in_flight.update(-job.file_id for job in jobs)
        return jobs

    def complete(self, job: Job, result: AnalysisResult) -> Any:
        """Write the spread into the row (writer thread); returns the writer's future."""
        if result.embedding_spread is None or result.embedding_patches is None:
            return self.fail(job, "the analyzer returned no spread")
        row_id = -job.file_id

        def write(conn: Any) -> None:
            conn.execute("UPDATE features SET embedding_spread = ?, embedding_patches = ?, embedding_mtt = ?, "
                         "spread_error = NULL WHERE id = ? AND embedding_spread IS NULL",
                         (to_half_blob(result.embedding_spread), result.embedding_patches,
                          to_blob(result.embedding_mtt), row_id))

        future = self.db.submit(write)
        future.add_done_callback(lambda f: self._written(row_id, f, upgraded=True))
        return future

    def fail(self, job: Job, reason: str) -> Any:
        """Record why the row cannot be upgraded (writer thread): not tried again by the daemon."""
        row_id = -job.file_id
        reason = " ".join(str(reason).split())[:500]
        log.warning("cannot upgrade %s: %s", job.path, reason)
        future = self.db.submit(lambda c: c.execute(
            "UPDATE features SET spread_error = ? WHERE id = ? AND embedding_spread IS NULL", (reason, row_id)))
        future.add_done_callback(lambda f: self._written(row_id, f, upgraded=False))
        return future

    def release(self, job: Job) -> None:
        """Forget a job that did not finish (shutdown, a worker lost): the next claim finds it again."""
        with self._lock:
            self._in_flight.discard(-job.file_id)

    def _written(self, row_id: int, future: Any, *, upgraded: bool) -> None:
        # released only once written, so the next claim cannot pick the row again meanwhile
        with self._lock:
            self._in_flight.discard(row_id)
            if future.exception() is None:
                if upgraded:
                    self.upgraded += 1
                else:
                    self.failed += 1

    # ---- progress and the foreground run -------------------------------------------------------
    def counts(self) -> dict:
        """{"todo", "failed"} rows in the database, "upgraded" and "failed_now" by this process,
        and "in_flight"; all 0 for a DSP-only preset."""
        if not self.enabled:
            return {"todo": 0, "failed": 0, "upgraded": 0, "failed_now": 0, "in_flight": 0}
        todo, failed = self.db.query(
            "SELECT count(*) FILTER (WHERE f.spread_error IS NULL), count(*) FILTER (WHERE f.spread_error IS NOT NULL) "
            f"FROM features f WHERE {_MISSING} AND EXISTS (SELECT 1 FROM files fl WHERE fl.track_id = f.track_id "
            f"AND {live('fl')})", (self.preset,))[0]
        with self._lock:
            return {"todo": todo, "failed": failed, "upgraded": self.upgraded, "failed_now": self.failed,
                    "in_flight": len(self._in_flight)}

    def retry_failed(self) -> int:
        """Clear the recorded failures of this preset's rows (`scan --upgrade`); returns how many."""
        if not self.enabled:
            return 0
        return self.db.write(lambda c: c.execute(
            f"UPDATE features AS f SET spread_error = NULL WHERE {_MISSING} AND f.spread_error IS NOT NULL "
            "RETURNING id", (self.preset,)).fetchall().__len__())

    def failures(self, limit: int = 10) -> list[tuple[str | None, str]]:
        """(a current path or None, reason) of rows whose upgrade failed, newest row first."""
        return self.db.query(
            f"SELECT {_LIVE_PATH}, f.spread_error FROM features f WHERE {_MISSING} AND f.spread_error IS NOT NULL "
            "ORDER BY f.id DESC LIMIT ?", (self.preset, limit))
