"""The files table as a job queue: claim pending files, record results and failures.

Every state change is one writer job, so a crash at any moment leaves each file either still
pending/analysing (re-queued at start-up) or done with its whole result — never half of one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import apsw

from . import files
from .db import Database
from .records import METADATA, SCALAR_FEATURES, VECTOR_FEATURES, to_blob, to_half_blob

if TYPE_CHECKING:
    from ..analysis.result import AnalysisResult

log = logging.getLogger(__name__)


# What a job computes (the worker protocol: execution/worker.run_analyzer): the whole analysis
# of a file, or only the spread an older analysis lacks (core/library/upgrade.py).
ANALYZE, SPREAD = "analyze", "spread"


@dataclass(frozen=True)
class Job:
    """One unit of work for the executor. ``file_id`` is its key there: a file's id, or for an
    upgrade (``task`` SPREAD) the negated features row id, so the two never collide."""

    file_id: int
    path: str
    fingerprint: str
    task: str = ANALYZE


class JobQueue:
    def __init__(self, db: Database, analyzer_version: str) -> None:
        self.db = db
        self.analyzer_version = analyzer_version

    def requeue_in_flight(self) -> int:
        """At start-up: files left 'analysing' by a crash go back to pending (not counted as an attempt)."""
        return self.db.write(files.requeue_in_flight)

    def claim(self, limit: int) -> list[Job]:
        """Mark up to ``limit`` pending files 'analysing' and return them, oldest first."""
        if limit <= 0:
            return []
        rows = self.db.write(lambda c: files.claim_pending(c, limit))
        return [Job(*row) for row in sorted(rows)]

    def pending_count(self) -> int:
        return self.db.query("SELECT count(*) FROM files WHERE status = 'pending'")[0][0]

    def requeue(self, file_ids: list[int]) -> None:
        """Put files back without blame (shutdown, another file broke the pool)."""
        if file_ids:
            self.db.write(lambda c: files.requeue(c, file_ids))

    def fail(self, job: Job, reason: str):  # type: ignore[no-untyped-def]
        """Record the failure; returns the writer's future (the caller retries a refused write)."""
        reason = " ".join(str(reason).split())[:500]  # one line, bounded
        return self.db.submit(lambda c: files.mark_failed(c, job.file_id, job.fingerprint, reason))

    def complete(self, job: Job, result: AnalysisResult):  # type: ignore[no-untyped-def]
        """Store the result (track, features, tags) and mark the file done, in one transaction."""
        return self.db.submit(lambda c: self.store_result(c, job, result))

    def store_result(self, conn: apsw.Connection, job: Job, result: AnalysisResult) -> None:
        """Store a result inside the caller's writer transaction (analysis and `import` alike)."""
        meta = result.metadata or {}
        meta_values = [meta.get(k) for k in METADATA]
        track_id = conn.execute(
            "INSERT INTO tracks(fingerprint, artist, album, title, genre, year, track_number, duration_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(fingerprint) DO UPDATE SET artist = excluded.artist, "
            "album = excluded.album, title = excluded.title, genre = excluded.genre, year = excluded.year, "
            "track_number = excluded.track_number, duration_s = excluded.duration_s, "
            "updated_at = unixepoch('subsec') RETURNING id",
            (job.fingerprint, *meta_values, result.duration_s)).fetchall()[0][0]
        conn.execute("UPDATE tracks SET musicbrainz_trackid = ? WHERE id = ?",  # media-server link (0005)
                     (meta.get("musicbrainz_trackid"), track_id))
        if result.audio_fingerprint:   # retagging keeps the analysis (0006, core/library/retag.py)
            conn.execute("UPDATE tracks SET audio_fingerprint = ? WHERE id = ?",
                         (result.audio_fingerprint, track_id))
        columns = ["track_id", "analyzer_version", "preset", *SCALAR_FEATURES, *VECTOR_FEATURES, "cpu_s",
                   "embedding_spread", "embedding_patches", "embedding_mtt", "spread_error"]
        version = self.analyzer_version if result.analyzer_version is None else result.analyzer_version
        values = [track_id, version, "" if result.preset is None else result.preset]
        values += [getattr(result, k) for k in SCALAR_FEATURES]
        values += [to_blob(getattr(result, k)) for k in VECTOR_FEATURES]
        values += [result.cpu_s, to_half_blob(result.embedding_spread), result.embedding_patches,
                   to_blob(result.embedding_mtt), None]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
        conn.execute(f"INSERT INTO features({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                     f"ON CONFLICT(track_id, analyzer_version) DO UPDATE SET {updates}", values)
        conn.execute("DELETE FROM tags WHERE track_id = ?", (track_id,))
        for source, labels in (result.tags or {}).items():
            if labels:
                conn.executemany("INSERT INTO tags(track_id, source, label, probability) VALUES (?, ?, ?, ?)",
                                 [(track_id, source, label, float(p)) for label, p in labels.items()])
        files.mark_done(conn, job.file_id, job.fingerprint, track_id)

    def failures(self, limit: int = 100, offset: int = 0) -> list[dict]:
        return failed_files(self.db, limit, offset)


def failed_files(db: Database, limit: int = 100, offset: int = 0) -> list[dict]:
    """Files that could not be analysed, newest failure first, with the reason."""
    rows = db.query("SELECT id, path, error, attempts, updated_at FROM files WHERE status = 'failed' "
                    "ORDER BY updated_at DESC LIMIT ? OFFSET ?", (limit, offset))
    return [{"id": r[0], "path": r[1], "reason": r[2], "attempts": r[3], "failed_at": r[4]} for r in rows]
