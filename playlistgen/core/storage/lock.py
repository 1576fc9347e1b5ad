"""One writing process per database: an exclusive ``flock`` on ``<database>.lock`` holding the pid.

`serve`, `scan`, `db init` and `db vacuum` take it before they open the database; a second one
on the same file stops with one line naming the first one's pid instead of re-queueing its
in-flight files. The kernel drops the lock when the holder dies (kill -9 included), so a stale
lock file never blocks anyone; the file itself is left in place (deleting it would race).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from ...errors import DatabaseError
from .db import check_writable

log = logging.getLogger(__name__)


def lock_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


class DatabaseLock:
    """Held for the life of a process that writes the database. Use as a context manager or
    call acquire()/release()."""

    def __init__(self, db_path: str | Path, purpose: str = "serve") -> None:
        self.db_path = Path(db_path)
        self.path = lock_path(db_path)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> DatabaseLock:
        check_writable(self.db_path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DatabaseError(f"cannot create the lock file '{self.path}': {exc.strerror}",
                                hint="make the database folder writable, or set database.path",
                                path=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DatabaseError(f"database '{self.db_path}' is in use by another playlistgen ({holder})",
                                hint="stop that process first, or use another --db",
                                path=str(self.db_path)) from None
        try:  # the pid is for the message only: a full disk must not stop the start
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {self.purpose}\n".encode())
        except OSError as exc:
            log.warning("cannot write the pid into %s: %s", self.path, exc.strerror)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        text = []
    if not text:
        return "pid unknown"
    return f"pid {text[0]}" + (f", `{text[1]}`" if len(text) > 1 else "")
