"""Watch the music folders: watchdog events → a bounded, debounced set of LibraryChange batches.

The watchdog callback only records an event in a dict keyed by path (no I/O). One debounce
thread wakes every 0.25 s and hands everything that is due to ``on_changes`` in one call:

* ``changed``  — created/rewritten file, emitted once it has not changed (size, mtime_ns, re-stat)
  for ``settle_seconds``; a rename from a temporary name (``x.mp3.part`` → ``x.mp3``) is a change.
* ``deleted``  — a file *or a folder* (a folder moved out of the library only reports itself):
  the receiver marks ``path`` and everything under ``path/`` missing.
* ``moved``    — ``path`` → ``dest``, a file *or a folder*. A folder move is one change with the
  folder paths (the per-file events watchdog adds are folded into it); the receiver expands it.
* ``rescan``   — ``path`` is a library root: more than ``max_pending`` paths were waiting, so
  individual events were dropped (backpressure without unbounded memory), or the root itself
  vanished (unmounted share); reconcile it fully.

Deletions and moves go out after a short debounce, in event order. ``on_changes`` may block:
that is the backpressure (the dict fills up, then one ``rescan`` replaces it). Pending changes
are dropped by ``stop()``; the start-up reconcile finds them next time. ``settle_seconds`` below
0.5 s is raised to 0.5 s.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watchdog import events as ev
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ...errors import PlaylistgenError
from ..loops import BackgroundLoop
from .paths import hidden_or_temp, ignored, is_candidate, norm_exts

log = logging.getLogger(__name__)

_TICK = 0.25            # debounce thread period
_DEBOUNCE = 0.5         # quiet time before a deletion or move is emitted
_RESCAN_MAX_WAIT = 30.0  # emit an overflow rescan even if the burst has not calmed down
_DIR_MOVE_MEMORY = 10.0  # seconds a folder move absorbs the per-file moves under it
_RECENT_MAX = 4096      # remembered (size, mtime_ns) of emitted changes: late duplicates are dropped
_NATIVE_EVENTS = [ev.FileCreatedEvent, ev.FileClosedEvent, ev.FileDeletedEvent, ev.FileMovedEvent,
                  ev.DirDeletedEvent, ev.DirMovedEvent]  # IN_CLOSE_WRITE, not one IN_MODIFY per write()
_POLLING_EVENTS = [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileDeletedEvent, ev.FileMovedEvent,
                   ev.DirDeletedEvent, ev.DirMovedEvent]


@dataclass(frozen=True)
class LibraryChange:
    kind: str  # "changed" | "deleted" | "moved" | "rescan"
    path: str
    dest: str | None = None


@dataclass
class _Pending:
    kind: str
    path: str
    dest: str | None
    seq: int
    last_seen: float
    is_dir: bool = False
    sig: tuple[int, int] | None = None
    quiet_since: float = 0.0
    looked_at: float = 0.0


class _Handler(ev.FileSystemEventHandler):
    def __init__(self, watcher: LibraryWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: ev.FileSystemEvent) -> None:
        try:
            self._watcher._on_event(event)
        except Exception:  # never let one odd event stop the observer thread
            log.exception("watcher: cannot record %r", event)


class LibraryWatcher:
    """Native (inotify) or polling observer plus one debounce thread. See the module docstring."""

    def __init__(self, paths: Sequence[str], *, extensions: Sequence[str], ignore: Sequence[str], polling: bool,
                 settle_seconds: float, on_changes: Callable[[list[LibraryChange]], None],
                 max_pending: int = 10000, poll_interval: float = 5.0) -> None:
        self.roots = sorted({os.path.abspath(p) for p in paths}, key=len, reverse=True)
        self._exts = norm_exts(extensions)
        self._ignore = list(ignore)
        self.polling = polling
        self.settle = max(float(settle_seconds), _DEBOUNCE)
        self._on_changes = on_changes
        self._max_pending = max(1, max_pending)
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._rescan: dict[str, list[float]] = {}  # root -> [first, last] time of dropped events
        self._dir_moves: deque[tuple[str, str, float]] = deque(maxlen=64)
        self._recent: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._seq = self._events = self._dropped = self._rescans = 0
        self._last_event_at: float | None = None
        self._observer: BaseObserver | None = None
        self._debounce = BackgroundLoop("watcher-debounce", self._flush, interval_s=_TICK, wait_first=True,
                                        on_error=_log_flush_error)
        self._stopped = False

    # ---- lifecycle ----------------------------------------------------------------------
    def _make_observer(self) -> BaseObserver:
        return PollingObserver(timeout=self._poll_interval) if self.polling else Observer()

    def start(self) -> None:
        observer = self._make_observer()
        handler = _Handler(self)
        for root in self.roots:
            observer.schedule(handler, root, recursive=True,
                              event_filter=_POLLING_EVENTS if self.polling else _NATIVE_EVENTS)
        try:
            observer.start()
        except OSError as exc:
            observer.stop()
            raise _start_error(exc, self.roots) from exc
        self._observer = observer
        self._debounce.start()
        log.info("watching %s (%s, settle %.1f s)", ", ".join(self.roots), self.mode, self.settle)

    def stop(self, timeout: float = 5) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._debounce.stop(timeout)  # first: no batch goes out once stop() has begun
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)

    @property
    def mode(self) -> str:
        return "polling" if self.polling else "native"

    def health(self) -> dict:
        obs = self._observer
        ready = (obs is not None and not self._stopped and obs.is_alive()
                 and all(e.is_alive() for e in obs.emitters))
        with self._lock:
            return {"ready": bool(ready), "mode": self.mode, "paths": list(self.roots),
                    "last_event_at": self._last_event_at, "events": self._events, "pending": len(self._pending),
                    "dropped_to_rescan": self._dropped, "rescans": self._rescans}

    # ---- watchdog callback: record only, no I/O -------------------------------------------
    def _on_event(self, event: ev.FileSystemEvent) -> None:
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path or b"")
        with self._lock:
            if event.event_type == ev.EVENT_TYPE_MOVED:
                self._on_move(src, dest, event.is_directory)
            elif event.event_type == ev.EVENT_TYPE_DELETED:
                self._on_delete(src, event.is_directory)
            elif not event.is_directory and self._wanted(src):
                self._put("changed", src)

    def _root_of(self, path: str) -> str:
        return next((r for r in self.roots if path == r or path.startswith(r + os.sep)), self.roots[0])

    def _wanted(self, path: str, folder: bool = False) -> bool:
        root = self._root_of(path)
        if folder:
            return not hidden_or_temp(path, root) and not ignored(path, self._ignore, folder=True)
        return is_candidate(path, self._exts, self._ignore, root=root)

    def _on_delete(self, path: str, is_dir: bool) -> None:
        if path in self.roots:
            log.warning("library folder %s disappeared: asking for a rescan", path)
            self._rescan.setdefault(path, [time.monotonic()] * 2)
        elif self._wanted(path, folder=is_dir):
            self._put("deleted", path, is_dir=is_dir)

    def _on_move(self, src: str, dest: str, is_dir: bool) -> None:
        src_ok, dest_ok = self._wanted(src, is_dir), self._wanted(dest, is_dir)
        if is_dir:  # otherwise the per-file events watchdog sends for its content do the work
            if src_ok and dest_ok and not self._folded(src, dest):
                self._dir_moves.append((src, dest, time.monotonic()))
                self._put("moved", src, dest, is_dir=True)
        elif src_ok and dest_ok:
            held = self._pending.get(("p", src))
            if held is not None and held.kind == "changed":  # not settled yet: settle under the new name
                del self._pending[("p", src)]
                self._put("changed", dest)
            if not self._folded(src, dest):
                self._put("moved", src, dest)
        elif dest_ok:
            self._put("changed", dest)  # renamed from a temporary or hidden name
        elif src_ok:
            self._put("deleted", src)  # renamed to an ignored name

    def _folded(self, src: str, dest: str) -> bool:
        """True if a recent folder move already covers this file move."""
        cutoff = time.monotonic() - _DIR_MOVE_MEMORY
        return any(t >= cutoff and src.startswith(s + os.sep) and dest.startswith(d + os.sep)
                   and src[len(s):] == dest[len(d):] for s, d, t in self._dir_moves)

    def _put(self, kind: str, path: str, dest: str | None = None, *, is_dir: bool = False) -> None:
        now = time.monotonic()
        self._events += 1
        self._last_event_at = time.time()
        root = self._root_of(path)
        key = ("m" if kind == "moved" else "p", path)
        if root in self._rescan or (key not in self._pending and len(self._pending) >= self._max_pending):
            self._overflow(root, now)
            return
        self._seq += 1
        entry = self._pending.get(key)
        if entry is None or entry.kind != kind:
            self._pending[key] = _Pending(kind, path, dest, self._seq, now, is_dir)
        else:
            entry.dest, entry.seq, entry.last_seen = dest, self._seq, now

    def _overflow(self, root: str, now: float) -> None:
        self._dropped += 1
        if root in self._rescan:
            self._rescan[root][1] = now
            return
        log.warning("more than %d changes waiting: dropping them for a full rescan of %s", self._max_pending, root)
        self._rescan[root] = [now, now]
        for key in [k for k, e in self._pending.items() if self._root_of(e.path) == root]:
            del self._pending[key]

    # ---- debounce thread ------------------------------------------------------------------
    def _flush(self) -> None:
        batch = self._tick()
        if batch:
            self._on_changes(batch)

    def _tick(self) -> list[LibraryChange]:
        now = time.monotonic()
        with self._lock:
            due = [e for e in self._pending.values()
                   if e.kind == "changed" and now - max(e.last_seen, e.quiet_since) >= self.settle]
        looks = {id(e): _stat(e.path) for e in due}  # the only I/O, outside the lock; `due` keeps ids unique
        with self._lock:
            ready: list[LibraryChange] = []
            for key, entry in sorted(self._pending.items(), key=lambda item: item[1].seq):
                verdict = self._verdict(entry, looks, now)
                if verdict != "wait":
                    del self._pending[key]
                if verdict == "emit":
                    ready.append(LibraryChange(entry.kind, entry.path, entry.dest))
                    if entry.kind != "changed":
                        self._forget(entry.path, entry.is_dir)
            return ready + self._due_rescans(now)

    def _verdict(self, entry: _Pending, looks: dict[int, os.stat_result | None | OSError], now: float) -> str:
        """"emit", "wait" or "drop" (folded into a folder move, not a file, or already reported)."""
        if entry.kind != "changed":
            if now - entry.last_seen < _DEBOUNCE:
                return "wait"
            folded = entry.kind == "moved" and self._folded(entry.path, entry.dest or "")
            return "drop" if folded else "emit"
        look = looks.get(id(entry), False)
        if look is False or now - entry.last_seen < self.settle:
            return "wait"  # not looked at this tick, or a new event came in meanwhile
        if look is None:
            entry.kind = "deleted"  # vanished before it settled
            return "emit"
        if isinstance(look, OSError):
            return "emit"  # unreadable: the analysis records why
        if not stat.S_ISREG(look.st_mode):
            return "drop"
        sig = (look.st_size, look.st_mtime_ns)
        if sig != entry.sig:  # last changed at its mtime (or later than the previous look, if clocks lie)
            mtime = now - max(0.0, time.time() - look.st_mtime_ns / 1e9)
            entry.quiet_since = max(entry.last_seen, mtime, entry.looked_at)
            entry.sig = sig
        entry.looked_at = now
        if now - entry.quiet_since < self.settle:
            return "wait"
        if self._recent.get(entry.path) == sig:
            return "drop"  # a late event for a change already reported (polling reports lag)
        self._recent[entry.path] = sig
        self._recent.move_to_end(entry.path)
        if len(self._recent) > _RECENT_MAX:
            self._recent.popitem(last=False)
        return "emit"

    def _forget(self, path: str, is_dir: bool) -> None:
        """A path that is gone may come back identical (cp -p): that must be reported again."""
        self._recent.pop(path, None)
        if is_dir:
            for known in [p for p in self._recent if p.startswith(path + os.sep)]:
                del self._recent[known]

    def _due_rescans(self, now: float) -> list[LibraryChange]:
        due = [r for r, (first, last) in self._rescan.items()
               if now - last >= self.settle or now - first >= _RESCAN_MAX_WAIT]
        for root in due:
            del self._rescan[root]
            self._rescans += 1
        return [LibraryChange("rescan", root) for root in due]


def _log_flush_error(exc: Exception) -> None:
    # the loop keeps watching; the periodic reconcile repairs what is lost
    log.exception("watcher: handling changes failed")


def _stat(path: str) -> os.stat_result | None | OSError:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc


def _start_error(exc: OSError, roots: Sequence[str]) -> PlaylistgenError:
    where = ", ".join(roots)
    hint = {errno.ENOSPC: "raise fs.inotify.max_user_watches (sysctl fs.inotify.max_user_watches=524288) "
                          "or set library.polling: true",
            errno.EMFILE: "raise fs.inotify.max_user_instances or set library.polling: true",
            }.get(exc.errno or 0, "check that the library folders exist and are readable")
    return PlaylistgenError(f"cannot watch {where}: {exc.strerror or exc}", hint=hint, path=where)
