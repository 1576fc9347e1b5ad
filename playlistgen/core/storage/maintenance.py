"""Database maintenance behind `playlistgen db`: init, check, online backup, vacuum, stats.
Each works on its own connection so it is safe while the daemon runs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import apsw

from ...errors import DatabaseDamagedError, DatabaseError
from .db import connect
from .migrate import current_version, latest_version, migrate

log = logging.getLogger(__name__)


def init_database(path: str | Path, busy_timeout_ms: int = 5000) -> tuple[int, list[int]]:
    """Create or upgrade the database. Returns (version now, versions applied)."""
    path = Path(path)
    if not path.parent.exists():
        raise DatabaseError(f"database folder '{path.parent}' does not exist",
                            hint="create it or set database.path", path=str(path))
    conn = connect(path, busy_timeout_ms=busy_timeout_ms)
    try:
        applied = migrate(conn)
        return current_version(conn), applied
    finally:
        conn.close()


def _open_existing(path: str | Path, busy_timeout_ms: int) -> apsw.Connection:
    if not Path(path).is_file():
        raise DatabaseError(f"database '{path}' does not exist",
                            hint="run `playlistgen db init` or check database.path", path=str(path))
    return connect(path, busy_timeout_ms=busy_timeout_ms)


def check_database(path: str | Path, busy_timeout_ms: int = 5000) -> list[str]:
    """integrity_check + foreign_key_check + schema version. Returns problems (empty = clean)."""
    try:
        conn = _open_existing(path, busy_timeout_ms)
    except DatabaseDamagedError as exc:
        return [exc.message]
    try:
        problems = []
        try:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            return [f"integrity: {exc}"]
        if integrity != ["ok"]:
            problems += [f"integrity: {line}" for line in integrity]
        for table, rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {table} row {rowid} points at a missing {parent} row")
        version, newest = current_version(conn), latest_version()
        if version != newest:
            problems.append(f"schema version {version}, expected {newest}: run `playlistgen db init`")
        return problems
    finally:
        conn.close()


def backup_database(path: str | Path, dest: str | Path, busy_timeout_ms: int = 5000,
                    progress: Callable[[int, int], None] | None = None) -> int:
    """SQLite's online backup into ``dest`` (a consistent snapshot even while the daemon writes).
    Written to a temporary name and renamed, so ``dest`` is never half a database."""
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"playlistgen-{time.strftime('%Y%m%d-%H%M%S')}.db"
    if not dest.parent.exists():
        raise DatabaseError(f"backup folder '{dest.parent}' does not exist", path=str(dest))
    source = _open_existing(path, busy_timeout_ms)
    tmp = dest.with_name(dest.name + ".partial")
    target = apsw.Connection(str(tmp))
    try:
        with target.backup("main", source, "main") as job:
            while not job.done:
                job.step(256)
                if progress:
                    progress(job.pagecount - job.remaining, job.pagecount)
        target.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    finally:
        target.close()
        source.close()
    os.replace(tmp, dest)
    return dest.stat().st_size


def vacuum_database(path: str | Path, busy_timeout_ms: int = 5000) -> tuple[int, int]:
    """VACUUM + optimize. Returns (bytes before, bytes after)."""
    before = Path(path).stat().st_size if Path(path).exists() else 0
    conn = _open_existing(path, busy_timeout_ms)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA optimize")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return before, Path(path).stat().st_size


def database_stats(path: str | Path, busy_timeout_ms: int = 5000) -> dict:
    """Row counts and on-disk size per table (dbstat), file sizes, file status counts."""
    conn = _open_existing(path, busy_timeout_ms)
    try:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'tracks_fts_%' ORDER BY name")]
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        table_rows = []
        for name in tables:
            count = conn.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
            table_rows.append({"table": name, "rows": count, "bytes": sizes.get(name, 0)})
        status = dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
        wal = Path(str(path) + "-wal")
        return {
            "path": str(path),
            "schema_version": current_version(conn),
            "file_bytes": Path(path).stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            "tables": table_rows,
            "files_by_status": status,
        }
    finally:
        conn.close()
