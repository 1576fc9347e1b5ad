"""The files table's one owner: every statement that writes it, and what "a live file" means.

The files table is the job queue (DESIGN §2): the library (reconcile, retag, import) and the
job queue (claim, results, failures, re-queue) change rows only through these functions, each
run inside the caller's writer transaction (``conn``), so a state change is never split.
``tests/test_files_owner.py`` checks that no other module writes the table.

A file is *live* when it is present and analysed (status 'done'): its track is playable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the analyzer reads the field names in records, which imports this module
    import apsw

    from .db import Database


def live(alias: str = "") -> str:
    """SQL condition: the files row (``alias``, if the query names one) is live."""
    column = f"{alias}.status" if alias else "status"
    return f"{column} = 'done'"


# (path, track id) of every live file
LIVE_FILES = f"SELECT path, track_id FROM files WHERE {live()} AND track_id IS NOT NULL"


def live_files(db: Database, paths: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(path, track id) of every live file, or of those among ``paths``."""
    if paths is None:
        return db.query(LIVE_FILES)
    # json_each: any number of paths (a long MPD queue), not SQLite's limit on parameters
    return db.query(f"{LIVE_FILES} AND path IN (SELECT value FROM json_each(?))", (json.dumps(list(paths)),))


# ----------------------------------------------------------------------------- library (reconcile, retag, import)

def upsert_unreadable(conn: apsw.Connection, rows: Iterable[tuple[str, int, int, str]]) -> None:
    """(path, size, mtime_ns, reason) that could not be read: failed with the reason, looked at
    again on each reconcile."""
    conn.executemany(
        "INSERT INTO files(path, size, mtime_ns, status, error) VALUES (?, ?, ?, 'failed', ?) "
        "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
        "status = 'failed', error = excluded.error, updated_at = unixepoch('subsec')", rows)


def mark_missing(conn: apsw.Connection, paths: Iterable[str]) -> None:
    conn.executemany("UPDATE files SET status = 'missing', updated_at = unixepoch('subsec') WHERE path = ?",
                     [(p,) for p in paths])


def keep_analysis(conn: apsw.Connection, file_id: int, size: int, mtime_ns: int) -> None:
    """Touched, or back unchanged: the row is live again with its analysis."""
    conn.execute("UPDATE files SET size = ?, mtime_ns = ?, status = 'done', error = NULL, "
                 "updated_at = unixepoch('subsec') WHERE id = ?", (size, mtime_ns, file_id))


def update_stat(conn: apsw.Connection, file_id: int, size: int, mtime_ns: int) -> None:
    """A failed file touched without a content change: only its stat (retried when it changes)."""
    conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))


def move(conn: apsw.Connection, file_id: int, path: str, mtime_ns: int) -> None:
    """The row (and its analysis) follows its file to ``path``; a missing row comes back."""
    conn.execute("UPDATE files SET path = ?, mtime_ns = ?, status = CASE WHEN status = 'missing' "
                 "THEN (CASE WHEN track_id IS NULL THEN 'pending' ELSE 'done' END) ELSE status END, "
                 "updated_at = unixepoch('subsec') WHERE id = ?", (path, mtime_ns, file_id))


def insert(conn: apsw.Connection, path: str, size: int, mtime_ns: int, fingerprint: str,
           track_id: int | None) -> None:
    """A new file: linked (done) when its content is an analysed track, else pending."""
    status = "done" if track_id is not None else "pending"
    conn.execute("INSERT INTO files(path, size, mtime_ns, fingerprint, status, track_id) VALUES (?, ?, ?, ?, ?, ?)",
                 (path, size, mtime_ns, fingerprint, status, track_id))


def link(conn: apsw.Connection, file_id: int, size: int, mtime_ns: int, fingerprint: str, track_id: int) -> None:
    """A changed file whose content is an analysed track (a copy, or a retag): done, linked to it."""
    conn.execute("UPDATE files SET size = ?, mtime_ns = ?, fingerprint = ?, status = 'done', "
                 "track_id = ?, error = NULL, updated_at = unixepoch('subsec') WHERE id = ?",
                 (size, mtime_ns, fingerprint, track_id, file_id))


def queue_changed(conn: apsw.Connection, file_id: int, size: int, mtime_ns: int, fingerprint: str) -> None:
    """A changed file with new content: pending, its attempts reset."""
    conn.execute("UPDATE files SET size = ?, mtime_ns = ?, fingerprint = ?, status = 'pending', "
                 "track_id = NULL, error = NULL, attempts = 0, updated_at = unixepoch('subsec') WHERE id = ?",
                 (size, mtime_ns, fingerprint, file_id))


def claim_for_import(conn: apsw.Connection, file_id: int, fingerprint: str) -> bool:
    """Take a pending file for an imported result; False if it was linked or changed meanwhile."""
    return bool(conn.execute("UPDATE files SET status = 'analysing' WHERE id = ? AND status = 'pending' "
                             "AND fingerprint = ? RETURNING id", (file_id, fingerprint)).fetchall())


# ----------------------------------------------------------------------------- the job queue

def requeue_in_flight(conn: apsw.Connection) -> int:
    """Files left 'analysing' by a crash go back to pending (not counted as an attempt)."""
    return len(conn.execute("UPDATE files SET status = 'pending', attempts = max(attempts - 1, 0) "
                            "WHERE status = 'analysing' RETURNING id").fetchall())


def claim_pending(conn: apsw.Connection, limit: int) -> list[tuple[int, str, str]]:
    """Mark up to ``limit`` pending files 'analysing'; (id, path, fingerprint) of each.

    One file per fingerprint, and none whose content is already being analysed: a copy waits and
    is then linked to the first one's result instead of being analysed again."""
    return conn.execute(
        "UPDATE files SET status = 'analysing', attempts = attempts + 1, updated_at = unixepoch('subsec') "
        "WHERE id IN (SELECT min(id) FROM files WHERE status = 'pending' AND fingerprint NOT IN "
        "(SELECT fingerprint FROM files WHERE status = 'analysing' AND fingerprint IS NOT NULL) "
        "GROUP BY fingerprint ORDER BY 1 LIMIT ?) "
        "RETURNING id, path, fingerprint", (limit,)).fetchall()


def requeue(conn: apsw.Connection, file_ids: Iterable[int]) -> None:
    """Files in flight go back to pending without blame (shutdown, another file broke the pool)."""
    conn.executemany("UPDATE files SET status = 'pending', attempts = max(attempts - 1, 0) "
                     "WHERE id = ? AND status = 'analysing'", [(i,) for i in file_ids])


def mark_failed(conn: apsw.Connection, file_id: int, fingerprint: str, reason: str) -> None:
    conn.execute("UPDATE files SET status = 'failed', error = ?, updated_at = unixepoch('subsec') "
                 "WHERE id = ? AND status = 'analysing'", (reason, file_id))
    # copies of the same bytes waiting in the queue would fail the same way
    conn.execute("UPDATE files SET status = 'failed', error = ?, updated_at = unixepoch('subsec') "
                 "WHERE fingerprint = ? AND status = 'pending'", (reason, fingerprint))


def mark_done(conn: apsw.Connection, file_id: int, fingerprint: str, track_id: int) -> None:
    # Only a file still waiting for this very content is marked done; if it changed while being
    # analysed, reconcile has queued it again and the newer analysis will land later.
    conn.execute("UPDATE files SET status = 'done', track_id = ?, error = NULL, "
                 "analysed_at = unixepoch('subsec'), updated_at = unixepoch('subsec') "
                 "WHERE id = ? AND status = 'analysing' AND fingerprint = ?",
                 (track_id, file_id, fingerprint))
    # copies of the same content queued meanwhile need no analysis of their own
    conn.execute("UPDATE files SET status = 'done', track_id = ?, error = NULL, analysed_at = unixepoch('subsec') "
                 "WHERE fingerprint = ? AND status = 'pending'", (track_id, fingerprint))

