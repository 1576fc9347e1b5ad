"""SQLite storage: one ``connect()`` with every pragma, one writer thread that batches writes
into ``BEGIN IMMEDIATE`` transactions, and a bounded pool of read connections with stats.

SQLite allows a single writer even in WAL mode, so all writes go through the writer thread;
readers never block it and it never blocks them.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import apsw
import apsw.bestpractice

from ...errors import DatabaseDamagedError, DatabaseError, exception_text
from ..folders import ownership_fix
from .migrate import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")
WriteFn = Callable[[apsw.Connection], Any]

_BUSY_RETRIES = 8


# Errors that mean "the storage refuses writes" (disk full, I/O error, read-only file or mount):
# they fail the whole batch, are counted in the writer's health and retried later, never
# blamed on the file whose result was being stored.
STORAGE_ERRORS = (apsw.FullError, apsw.IOError, apsw.ReadOnlyError, apsw.CantOpenError)
READ_ONLY_HINT = ("(SQLite also writes '-wal' and '-shm' files beside it), or set database.path / --db to a "
                  "writable place")


def read_only_error(path: str | Path, why: str) -> DatabaseError:
    # the folder's owner is the usual fix (a root-owned Docker bind mount as /data)
    return DatabaseError(f"database '{path}' is read-only ({why})",
                         hint=f"{ownership_fix(Path(path).parent)} {READ_ONLY_HINT}", path=str(path))


def check_writable(path: str | Path) -> None:
    """Refuse a database this process cannot write, naming the file and the fix (as root a
    chmod does not bite, but a read-only mount does: os.access reports both)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise DatabaseError(f"database folder '{folder}' does not exist",
                            hint="create it or set database.path", path=str(path))
    if path.exists() and not os.access(path, os.W_OK):
        raise read_only_error(path, "the file is not writable")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise read_only_error(path, f"its folder '{folder}' is not writable")


def connect(path: str | Path, *, busy_timeout_ms: int = 5000, readonly: bool = False) -> apsw.Connection:
    """Open a connection with every pragma the project relies on.

    apsw's bestpractice helpers give WAL, foreign keys, no double-quoted string literals and the
    optimizer; we add synchronous=NORMAL (safe in WAL: a power cut can lose the last commits but
    never corrupts) and our own busy timeout.
    """
    try:
        conn = apsw.Connection(str(path))
    except apsw.CantOpenError as exc:
        raise DatabaseError(f"cannot open database '{path}': {exc}",
                            hint="check that the folder exists and is writable", path=str(path)) from None
    try:
        conn.set_busy_timeout(busy_timeout_ms)
        apsw.bestpractice.connection_wal(conn)
        apsw.bestpractice.connection_enable_foreign_keys(conn)
        apsw.bestpractice.connection_dqs(conn)
        apsw.bestpractice.connection_recursive_triggers(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
    except apsw.ReadOnlyError:
        conn.close()
        raise read_only_error(path, "SQLite refused to write it") from None
    except STORAGE_ERRORS as exc:  # e.g. no room for its -wal/-shm files
        conn.close()
        raise DatabaseError(f"cannot open database '{path}': {exc} (is its disk full?)",
                            hint="free space on its filesystem, or set database.path elsewhere",
                            path=str(path)) from None
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        conn.close()
        raise DatabaseDamagedError(f"database '{path}' is damaged or not a database: {exc}",
                            hint="restore a backup (`playlistgen db backup` makes them)", path=str(path)) from None
    return conn


def with_busy_retry(fn: Callable[[], T], on_retry: Callable[[], None] | None = None,
                    retries: int = _BUSY_RETRIES, base_delay_s: float = 0.01) -> T:
    """Run ``fn``; if a BusyError escapes SQLite's busy timeout, retry with exponential backoff."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except apsw.BusyError:
            if attempt == retries:
                raise
            if on_retry:
                on_retry()
            time.sleep(base_delay_s * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@dataclass
class _WriteJob:
    fn: WriteFn
    future: Future = field(default_factory=Future)


class Writer:
    """The single writer thread. ``submit(fn)`` queues ``fn(conn)``; the thread runs queued jobs in
    batches of up to ``batch_size`` inside one ``BEGIN IMMEDIATE`` transaction. Each job runs in its
    own savepoint so one failing job fails alone; its future gets the exception, the rest commit.
    The queue is bounded, so producers block (backpressure) instead of filling memory."""

    def __init__(self, conn: apsw.Connection, *, batch_size: int = 64, queue_size: int = 1024,
                 path: str | Path = "", on_batch: Callable[[int, float], None] | None = None) -> None:
        self._conn = conn
        self._path = str(path)
        # health: a batch the storage refused (disk full, I/O error) makes the writer degraded
        # until a later batch commits
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._batch_size = batch_size
        self._queue: queue.Queue[_WriteJob | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self.stats = {"jobs": 0, "failed_jobs": 0, "batches": 0, "busy_retries": 0, "commit_s": 0.0}
        self.on_batch = on_batch   # (jobs, seconds) after each commit: the metrics' hook
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: WriteFn, timeout: float | None = None) -> Future:
        """Queue a write; the returned future resolves to fn's result after its batch commits."""
        with self._lock:
            if self._closed:
                raise DatabaseError("the database writer is closed", hint="this is a shutdown race; retry")
        job = _WriteJob(fn)
        self._queue.put(job, timeout=timeout)
        return job.future

    def write(self, fn: WriteFn, timeout: float | None = None) -> Any:
        """Submit and wait for the commit."""
        return self.submit(fn).result(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is committed."""
        self.write(lambda conn: None, timeout)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _take_batch(self) -> tuple[list[_WriteJob], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        stop = False
        while len(batch) < self._batch_size:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            batch.append(job)
        return batch, stop

    def _run(self) -> None:
        while True:
            batch, stop = self._take_batch()
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_WriteJob]) -> None:
        started = time.perf_counter()
        results: list[tuple[_WriteJob, Any, BaseException | None]] = []

        def run_batch() -> None:
            results.clear()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for job in batch:
                    try:
                        with self._conn:  # a savepoint: this job's changes roll back alone
                            results.append((job, job.fn(self._conn), None))
                    except (apsw.BusyError, *STORAGE_ERRORS):
                        raise  # not this job's fault: the whole batch fails (and is retried)
                    except Exception as exc:  # the job's own error goes to its future
                        results.append((job, None, exc))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

        try:
            with_busy_retry(run_batch, on_retry=self._count_busy)
        except Exception as exc:
            self.consecutive_failures += 1
            self.last_error, self.last_error_at = exception_text(exc), time.time()
            if self.consecutive_failures == 1 or self.consecutive_failures % 100 == 0:
                log.error("cannot write to the database %s: %s (%d batch(es) failed in a row; "
                          "retried when more work comes)", self._path, self.last_error, self.consecutive_failures)
            for job in batch:
                job.future.set_exception(WriteFailedError(
                    f"cannot write to the database: {self.last_error}",
                    hint="free space on its filesystem or make it writable; playlistgen retries by itself",
                    path=self._path or None))
            self.stats["failed_jobs"] += len(batch)
            return
        if self.consecutive_failures:
            log.info("database writes work again after %d failed batch(es)", self.consecutive_failures)
            self.consecutive_failures = 0
        self.stats["batches"] += 1
        elapsed = time.perf_counter() - started
        self.stats["commit_s"] += elapsed
        for job, value, error in results:
            self.stats["jobs"] += 1
            if error is None:
                job.future.set_result(value)
            else:
                self.stats["failed_jobs"] += 1
                job.future.set_exception(error)
        if self.on_batch is not None:  # metrics hook, set by the entry point; never fails a write
            try:
                self.on_batch(len(batch), elapsed)
            except Exception:
                log.exception("write batch hook failed")

    def _count_busy(self) -> None:
        self.stats["busy_retries"] += 1

    def health(self) -> dict:
        """ready: the thread runs; degraded: the last batch(es) could not be written."""
        return {"ready": self._thread.is_alive(), "degraded": self.consecutive_failures > 0,
                "consecutive_failures": self.consecutive_failures, "last_error": self.last_error,
                "last_error_at": self.last_error_at, "queue_depth": self.queue_depth}


class WriteFailedError(DatabaseError):
    """The storage refused a whole batch (disk full, I/O error, read-only): retry later."""

    code = "database_write_failed"
    status = 507


@dataclass
class PoolStats:
    opened: int = 0
    in_use: int = 0
    idle: int = 0
    checkouts: int = 0
    waits: int = 0
    wait_s: float = 0.0
    busy_retries: int = 0
    timeouts: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ReaderPool:
    """A bounded pool of read-only connections: ``pool_min`` opened up front, at most ``pool_max``.
    A checkout that finds none idle and the pool full waits (counted in ``waits``/``wait_s``)."""

    def __init__(self, path: str | Path, *, pool_min: int, pool_max: int, busy_timeout_ms: int,
                 checkout_timeout_s: float = 30.0) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._max = pool_max
        self._min = pool_min
        self._timeout = checkout_timeout_s
        self._idle: list[apsw.Connection] = []
        self._cond = threading.Condition()
        self._closed = False
        self.stats = PoolStats()
        for _ in range(pool_min):
            self._idle.append(self._open())
        self.stats.idle = len(self._idle)

    def _open(self) -> apsw.Connection:
        conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms, readonly=True)
        self.stats.opened += 1
        return conn

    @contextmanager
    def connection(self) -> Iterator[apsw.Connection]:
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(conn)`` on a pooled connection, retrying a busy error with backoff."""
        with self.connection() as conn:
            return with_busy_retry(lambda: fn(conn), on_retry=self._count_busy)

    def _count_busy(self) -> None:
        with self._cond:
            self.stats.busy_retries += 1

    def _checkout(self) -> apsw.Connection:
        with self._cond:
            if self._closed:
                raise DatabaseError("the database reader pool is closed")
            self.stats.checkouts += 1
            waited_from = None
            while not self._idle and self.stats.opened >= self._max:
                if waited_from is None:
                    waited_from = time.perf_counter()
                    self.stats.waits += 1
                remaining = self._timeout - (time.perf_counter() - waited_from)
                if remaining <= 0 or not self._cond.wait(remaining):
                    if not self._idle and self.stats.opened >= self._max:
                        self.stats.timeouts += 1
                        raise DatabaseError(
                            f"no free database connection after {self._timeout:.0f} s "
                            f"(all {self._max} in use)", hint="raise database.pool_max")
                if self._closed:
                    raise DatabaseError("the database reader pool is closed")
            if waited_from is not None:
                self.stats.wait_s += time.perf_counter() - waited_from
            if self._idle:
                conn = self._idle.pop()
            else:
                conn = self._open()
            self.stats.in_use += 1
            self.stats.idle = len(self._idle)
            return conn

    def _checkin(self, conn: apsw.Connection) -> None:
        with self._cond:
            self.stats.in_use -= 1
            if self._closed:
                conn.close()
                self.stats.opened -= 1
            else:
                self._idle.append(conn)
            self.stats.idle = len(self._idle)
            self._cond.notify()

    def snapshot(self) -> dict:
        with self._cond:
            data = self.stats.to_dict()
        data.update(pool_min=self._min, pool_max=self._max,
                    avg_wait_ms=(data["wait_s"] / data["waits"] * 1000) if data["waits"] else 0.0)
        return data

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for conn in self._idle:
                conn.close()
            self.stats.opened -= len(self._idle)
            self._idle.clear()
            self.stats.idle = 0
            self._cond.notify_all()


class Database:
    """The storage layer the rest of the program gets: migrations applied, a writer, a reader pool."""

    def __init__(self, path: str | Path, *, pool_min: int = 1, pool_max: int = 8,
                 busy_timeout_ms: int = 5000, batch_size: int = 64,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self._write_conn = connect(self.path, busy_timeout_ms=busy_timeout_ms)
        try:
            migrate(self._write_conn)
        except BaseException:
            self._write_conn.close()
            raise
        self.writer = Writer(self._write_conn, batch_size=batch_size, path=self.path, on_batch=on_batch)
        self.readers = ReaderPool(self.path, pool_min=pool_min, pool_max=pool_max,
                                  busy_timeout_ms=busy_timeout_ms)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Any, *, on_batch: Callable[[int, float], None] | None = None) -> Database:
        db = settings.database
        return cls(db.path, pool_min=db.pool_min, pool_max=db.pool_max,
                   busy_timeout_ms=db.busy_timeout_ms, batch_size=db.batch_size, on_batch=on_batch)

    def write(self, fn: WriteFn, timeout: float | None = None) -> Any:
        return self.writer.write(fn, timeout)

    def submit(self, fn: WriteFn) -> Future:
        return self.writer.submit(fn)

    def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        return self.readers.read(fn)

    def query(self, sql: str, params: Any = ()) -> list[tuple]:
        return self.read(lambda conn: conn.execute(sql, params).fetchall())

    def ready(self) -> bool:
        try:
            return self.query("SELECT 1") == [(1,)]
        except Exception:  # readiness probe: any failure means not ready
            return False

    def health(self) -> dict:
        """For /health: readable (a SELECT works) and the writer's state (degraded while the
        storage refuses writes)."""
        return {"ready": self.ready(), "path": str(self.path), "writer": self.writer.health()}

    def pool_stats(self) -> dict:
        data = self.readers.snapshot()
        data["writer"] = dict(self.writer.stats, queue_depth=self.writer.queue_depth)
        return data

    def close(self) -> None:
        """Flush and stop the writer, close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        self.readers.close()
        try:
            self._write_conn.execute("PRAGMA optimize")
        except apsw.Error:
            pass
        self._write_conn.close()
