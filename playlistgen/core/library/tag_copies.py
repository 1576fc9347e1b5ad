"""The tag writer's temporary copies: their name, the lock a writer holds on one while it works,
and the removal of copies a killed writer left behind (kill -9, a power cut).

A copy is ``.<stem>.playlistgen-<8 random characters><ext>`` next to the file being written:
hidden, so the library never takes it for music. The writer holds an exclusive ``flock`` on its
copy from creation to swap; the kernel drops it when the writer dies, however it dies. A copy
is removed as a leftover only when its name is ours, it is a regular file, nobody holds its lock
and it has not changed for :data:`STALE_AFTER_S` (which also covers the moment between the
copy's creation and its lock). Where the filesystem cannot lock, only a copy a day old goes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import stat
import tempfile
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

MARKER = ".playlistgen-"
# tempfile.mkstemp's names: 8 characters from [a-z0-9_]
_NAME = re.compile(r"\..+\.playlistgen-[a-z0-9_]{8}(\.[^./]*)?")
STALE_AFTER_S = 60.0
STALE_WITHOUT_LOCKS_S = 24 * 3600.0


class Terminated(KeyboardInterrupt):
    """SIGTERM as an exception, like Ctrl+C's KeyboardInterrupt: the writer's ``finally`` removes
    the copy on the way out (a plain SIGTERM would end the process with the copy left behind)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def interrupt_on_sigterm() -> Any:
    """From now on SIGTERM raises :class:`Terminated` in the main thread; the previous handler."""
    return signal.signal(signal.SIGTERM, _raise_terminated)


def is_copy_name(name: str) -> bool:
    """True for a name the tag writer gives its temporary copies."""
    return _NAME.fullmatch(name) is not None


def create_locked(path: str) -> tuple[int, str]:
    """A new empty copy for ``path`` in its folder, locked: (descriptor, copy path). The caller
    closes the descriptor (which drops the lock) once the copy is swapped in or removed."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem[:40]}{MARKER}", suffix=ext, dir=folder or ".")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:   # a filesystem without locks: the age rule alone protects the copy
        pass
    except BaseException:   # Ctrl+C or SIGTERM right here: the caller never learns the name
        os.unlink(tmp)
        os.close(fd)
        raise
    return fd, tmp


def _remove_if_stale(path: str, now: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:   # gone meanwhile, or a symbolic link (never ours)
        return False
    try:
        st = os.fstat(fd)
        age = now - st.st_mtime
        if not stat.S_ISREG(st.st_mode) or age < STALE_AFTER_S:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False   # a writer is working on it
        except OSError:
            if age < STALE_WITHOUT_LOCKS_S:
                return False
        current = os.lstat(path)
        if (current.st_dev, current.st_ino) != (st.st_dev, st.st_ino):
            return False   # the name was reused meanwhile
        os.unlink(path)
        return True
    except OSError as exc:
        log.warning("cannot remove the leftover temporary copy %s: %s", path, exc.strerror or exc)
        return False
    finally:
        os.close(fd)


def remove_stale(paths: Iterable[str], now: float | None = None) -> list[str]:
    """Remove the leftover copies among ``paths`` (names already known to be ours); those removed."""
    now = time.time() if now is None else now
    removed = [p for p in paths if is_copy_name(os.path.basename(p)) and _remove_if_stale(p, now)]
    for path in removed:
        log.info("removed a temporary copy left by an interrupted tag write: %s", path)
    return removed


def remove_stale_copies(folder: str) -> list[str]:
    """Remove the leftover copies directly in ``folder``; the paths removed."""
    try:
        with os.scandir(folder) as it:
            names = [e.path for e in it if is_copy_name(e.name)]
    except OSError:
        return []
    return remove_stale(names)
