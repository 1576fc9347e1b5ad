"""Analysis on other machines through Dask distributed, behind the executor interface
(``execution/protocol.py``), so the scheduler, the job queue and the writer do not change: the
database stays the queue and the single source of truth.

* **Capacity follows the cluster**: the sum of the running workers' threads (one per worker
  process) minus the files in flight, refreshed every second from the Dask scheduler; workers
  may join and leave at any time.
* **Files**: the daemon reads the file and ships its bytes with the task, up to
  ``dask_max_ship_mb`` (bigger files are analysed locally); a path under an
  ``analysis.dask_path_map`` prefix is sent as the worker's own path instead. Results are the
  local results plus ``worker.host``/``worker.address``.
* **Faults**: a worker that dies mid-file makes Dask run the file elsewhere; each start is
  reported (event ``playlistgen-start``), so the executor knows where a file runs, since when
  (the per-file timeout counts from there: on timeout the file fails and that worker is
  restarted through its nanny), and how many workers it has killed — after
  ``dask_max_attempts`` it fails with that reason (Dask's ``KilledWorker`` says the same when
  our embedded scheduler runs). A file whose worker was not at fault (scheduler lost, worker
  refused) is handed back for re-queueing, and so is a file no worker started within
  ``start_timeout_s``: every submitted file ends in exactly one outcome in bounded time.
* **Scheduler unreachable**: health says so and, with ``dask_fallback: local``, files go to a
  local :class:`AnalysisExecutor` (started on demand, stopped when the scheduler is back and it is
  idle); with ``wait`` capacity is 0 until it returns. The connection is watched by a thread that
  reconnects and registers the worker plugin again (a restarted scheduler forgets it).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...analysis.result import AnalysisResult
from ...library.paths import map_prefix
from ...loops import BackgroundLoop
from ...storage.jobs import ANALYZE
from ..local import AnalysisExecutor
from ..protocol import Outcome, wait_for_outcomes
from ..worker import one_line
from .config import TlsFiles, default_listen, tls_files
from .connection import WATCH_INTERVAL_S, SchedulerConnection
from .health import ExecutorViews
from .payload import MalformedResult, decode, event

log = logging.getLogger(__name__)

TICK_S = 0.1
FETCH_TIMEOUT_S = 5.0   # a result comes back in milliseconds; waiting longer would stall poll()
MB = 1024 * 1024


@dataclass
class _Task:
    file_id: int
    path: str
    future: Any
    shipped: int = 0
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None      # monotonic, when the last start was reported
    address: str | None = None
    host: str | None = None
    attempts: int = 0                    # starts seen; attempts - 1 workers died on it
    rerun: bool = False                  # its result was not fetched in time (see _fetch)
    killers: list[str] = field(default_factory=list)


class DaskAnalysisExecutor(SchedulerConnection, ExecutorViews):
    kind = "dask"

    def __init__(self, spec: Any, *, versions: dict[str, str], scheduler: str, listen: str, tls: TlsFiles,
                 path_map: dict[str, str], max_ship_mb: int, max_attempts: int, fallback: str,
                 timeout_s: float, local_factory: Callable[[], AnalysisExecutor], models_dir: str,
                 local_workers: int = 1, start_timeout_s: float | None = None,
                 on_capacity: Callable[[], None] | None = None) -> None:
        self.spec, self.versions, self.tls = spec, versions, tls
        self.scheduler_address, self.listen = scheduler, listen
        self.path_map = dict(sorted(path_map.items(), key=lambda kv: -len(kv[0])))  # longest prefix first
        self.max_ship_bytes, self.max_attempts, self.fallback = max_ship_mb * MB, max_attempts, fallback
        self.timeout_s, self.models_dir, self._local_factory = timeout_s, models_dir, local_factory
        self.start_timeout_s = start_timeout_s   # unstarted this long: handed back (default in start())
        self.local_workers = local_workers
        self.max_memory_mb = self.max_tasks_per_child = None
        self._lock = threading.RLock()
        self._done: queue.Queue = queue.Queue()
        self._events: queue.Queue = queue.Queue()
        self._state = "new"
        self._client: Any = None
        self._embedded: Any = None
        self._guarded = False
        self._scheduler_id: str | None = None
        self._reannounced_at = 0.0                 # monotonic time of the last re-registration for silent workers
        self._connected, self._conn_error, self._conn_changed = False, None, time.time()
        self._tasks: dict[str, _Task] = {}
        self._by_file: dict[int, str] = {}
        self._backlog: deque[tuple[int, str, str]] = deque()   # (file_id, path, task)
        self._local: AnalysisExecutor | None = None
        self._ready: list[Outcome] = []
        self._workers: dict[str, dict] = {}        # address → {host, pid, name, nthreads, ...}
        self._stats: dict[str, Counter] = {}       # address → tasks, failures
        self._refused: dict[str, dict] = {}
        self._not_ready: Counter[int] = Counter()  # file_id → worker-side refusals seen
        self._counts: Counter[str] = Counter()
        self._restarts: Counter[str] = Counter()
        self._last_error: dict | None = None
        self._seq = itertools.count(1)
        self._attempted = threading.Event()   # set once the first connection attempt has finished
        self._watch = BackgroundLoop("dask-watch", self._watch_once, interval_s=WATCH_INTERVAL_S)
        self._plugin: Any = None
        self.on_capacity = on_capacity   # called when workers join (the scheduler's wake)

    @classmethod
    def from_settings(cls, settings: Any, spec: Any, analyzer_version: str, *,
                      on_capacity: Callable[[], None] | None = None) -> DaskAnalysisExecutor:
        from .... import __version__

        a = settings.analysis
        versions = {"playlistgen": __version__, "analyzer": analyzer_version}
        tls = tls_files(a)

        def local() -> AnalysisExecutor:
            return AnalysisExecutor.from_settings(settings, spec, kind="process")

        return cls(spec, versions=versions, scheduler=a.dask_scheduler, listen=a.dask_listen or default_listen(tls),
                   tls=tls, path_map=a.dask_path_map, max_ship_mb=a.dask_max_ship_mb,
                   max_attempts=a.dask_max_attempts, fallback=a.dask_fallback, timeout_s=a.timeout_s,
                   local_factory=local, models_dir=spec.models_dir, local_workers=settings.effective_workers(),
                   on_capacity=on_capacity)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        from .worker import READY_WAIT_S, AnalyzerPlugin, ModelBundle

        with self._lock:
            if self._state != "new":
                return
            self._state = "running"
        if self.start_timeout_s is None:   # a file ahead of it timing out + a new worker loading its analyzer
            self.start_timeout_s = self.timeout_s + READY_WAIT_S
        self._plugin = AnalyzerPlugin(self.spec, self.versions, ModelBundle.from_dir(self.models_dir))
        if self.tls.configured:   # from now on nothing a worker sends is unpickled here (guard.py)
            from . import guard

            guard.install(guard.daemon_trust(self.tls, embedded=not self.scheduler_address))
            self._guarded = True
        if not self.scheduler_address:
            from .scheduler import EmbeddedScheduler

            self._embedded = EmbeddedScheduler(self.listen, self.tls, max_attempts=self.max_attempts)
            try:
                self.scheduler_address = self._embedded.start()
            except Exception:
                self._unguard()
                raise
        # The watcher connects (at once) and reconnects: registering the plugin waits for every
        # worker to load its models, and `serve` must answer /health meanwhile.
        self._watch.start()

    def close(self, grace_s: float = 8.0) -> list[tuple[int, str]]:
        with self._lock:
            if self._state in ("closing", "closed"):
                return []
            self._state = "closing"
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self._tasks or self._local_busy()):
            self._collect(min(TICK_S, max(deadline - time.monotonic(), 0)))
        with self._lock:
            unfinished = [(t.file_id, t.path) for t in self._tasks.values()] + [b[:2] for b in self._backlog]
            futures = [t.future for t in self._tasks.values()]
            self._tasks.clear(), self._by_file.clear(), self._backlog.clear()
            local, self._local = self._local, None
            client, self._client = self._client, None
        if local is not None:
            unfinished += local.close(grace_s=0)
            self._ready += local.poll(0)
        if client is not None:
            try:
                if futures:
                    client.cancel(futures)
                client.close(timeout=5)
            except Exception:   # the scheduler may already be gone
                log.debug("closing the Dask client", exc_info=True)
        self._watch.stop(5)   # it does nothing more once the state is no longer "running"
        if self._embedded is not None:
            self._embedded.stop()
        self._unguard()
        with self._lock:
            self._state = "closed"
            self._counts["requeued"] += len(unfinished)
        return unfinished

    def _unguard(self) -> None:
        if self._guarded:
            from . import guard

            guard.uninstall()
            self._guarded = False

    # ------------------------------------------------------------------ the interface

    @property
    def workers(self) -> int:
        """Analysis slots on the cluster now (one per remote worker process)."""
        with self._lock:
            return self._remote_slots()

    @property
    def capacity(self) -> int:
        with self._lock:
            if self._state != "running" or not self._attempted.is_set():   # connecting: no local detour
                return 0
            if self._connected:
                free = self._remote_slots() - len(self._tasks)
            elif self.fallback == "local":   # started by the first submit, not by asking
                free = self._local.capacity if self._local is not None else self.local_workers
            else:
                free = 0
            return max(0, free - len(self._backlog))

    def submit(self, file_id: int, path: str, task: str = ANALYZE) -> None:
        with self._lock:
            if self._state != "running":
                raise RuntimeError(f"analysis executor is {self._state}: cannot submit {path}")
            if not self._connected:
                return self._submit_local(file_id, path, task)
            read_path = map_prefix(path, self.path_map)
            data = None
            if read_path is None:
                try:
                    size = os.path.getsize(path)
                    if size > self.max_ship_bytes:
                        self._counts["too_big_for_shipping"] += 1
                        return self._submit_local(file_id, path, task)
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError as exc:
                    self._ready.append(Outcome(file_id, path, None, f"cannot read file: {exc.strerror or exc}"))
                    self._counts["failed"] += 1
                    return None
            try:
                self._submit_remote(file_id, path, data, read_path, task)
            except Exception as exc:   # the scheduler went away between capacity and submit
                log.warning("Dask submit of %s failed: %s", path, one_line(exc))
                if self.fallback == "local":
                    self._submit_local(file_id, path, task)
                else:
                    self._ready.append(Outcome(file_id, path, None, "Dask scheduler unreachable", requeue=True))
                    self._counts["requeued"] += 1

    def poll(self, timeout: float) -> list[Outcome]:
        return wait_for_outcomes(timeout, TICK_S, self._take_ready, self._collect)

    def _take_ready(self) -> list[Outcome] | None:
        self._collect(0)
        with self._lock:
            if self._ready or self._state == "closed":
                out, self._ready = self._ready, []
                return out
        return None

    # ------------------------------------------------------------------ remote

    def _submit_remote(self, file_id: int, path: str, data: bytes | None, read_path: str | None,
                       task: str = ANALYZE) -> None:
        from .worker import analyse_file

        key = f"playlistgen-analyse-{file_id}-{next(self._seq)}"
        future = self._client.submit(analyse_file, file_id, path, data, read_path, task, key=key, pure=False)
        task = _Task(file_id, path, future, shipped=len(data) if data is not None else 0)
        self._tasks[key], self._by_file[file_id] = task, key
        self._counts["bytes_shipped"] += task.shipped
        self._counts["files_shipped" if data is not None else "files_path_mapped"] += 1
        future.add_done_callback(lambda f, k=key: self._done.put(k))

    def _remote_slots(self) -> int:
        return sum(w.get("nthreads", 1) for addr, w in self._workers.items()
                   if w.get("running") and addr not in self._refused)

    def _collect(self, wait_s: float) -> None:
        """Gather finished remote futures, worker events, local outcomes and timeouts into
        ``_ready``. Results are fetched outside the lock; the client's event loop never takes it."""
        try:
            keys = [self._done.get(timeout=wait_s)] if wait_s > 0 else []
        except queue.Empty:
            keys = []
        while True:
            try:
                keys.append(self._done.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            self._apply_events()
            tasks = [t for t in (self._pop(k) for k in keys) if t is not None]
        fetched = [(task, *self._fetch(task.future)) for task in tasks]
        with self._lock:
            for task, kind, value in fetched:
                self._finish(task, kind, value)
            self._check_timeouts()
            self._drain_local()

    def _pop(self, key: str) -> _Task | None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._by_file.pop(task.file_id, None)
        return task

    @staticmethod
    def _fetch(future: Any) -> tuple[str, Any]:
        if future.status == "cancelled":
            return "cancelled", None
        if future.status == "error":   # the exception is here already
            return "error", future.exception(timeout=FETCH_TIMEOUT_S)
        try:   # finished, or lost with its worker and being run again ("lost"/"pending")
            return "result", future.result(timeout=FETCH_TIMEOUT_S)
        except Exception as exc:
            if future.status == "error":   # that re-run failed
                return "error", future.exception(timeout=FETCH_TIMEOUT_S)
            if isinstance(exc, TimeoutError):   # still running again, or its worker is slow to answer
                return "rerun", None
            return "lost", exc   # could not fetch it from the worker: not the file's fault

    def _finish(self, task: _Task, kind: str, value: Any) -> None:
        if kind == "rerun":   # back in flight, so poll() never waits for it; the start deadline bounds it
            task.started_at = task.address = task.host = None
            task.submitted_at, task.attempts, task.rerun = time.monotonic(), len(task.killers), True
            self._tasks[task.future.key], self._by_file[task.file_id] = task, task.future.key
            return None
        if kind == "cancelled":
            return self._requeue(task, "the Dask scheduler connection was lost")
        if kind == "lost":
            return self._requeue(task, f"result lost: {one_line(value)}")
        if kind == "result":   # worker.analyse_file's JSON (payload.py)
            try:
                got = decode(value)
            except MalformedResult as exc:
                who = task.host or task.address or "?"
                log.warning("%s: malformed result from Dask worker %s: %s", task.path, who, exc)
                return self._outcome(task, None, f"malformed result from Dask worker {who}: {exc}")
            if got.not_ready is not None:
                return self._not_ready_again(task, got.not_ready)
            stats = self._stats.setdefault(got.worker.address or "?", Counter())
            stats["tasks"] += 1
            if got.error is not None:
                stats["failed"] += 1
            self._not_ready.pop(task.file_id, None)
            return self._outcome(task, got.result if got.error is None else None, got.error)
        exc = value
        if type(exc).__name__ == "KilledWorker":
            return self._outcome(task, None, self._killed_reason(task))
        if isinstance(exc, (OSError, MemoryError)):
            return self._not_ready_again(task, one_line(exc))
        self._outcome(task, None, f"{type(exc).__name__}: {one_line(exc)}")

    def _not_ready_again(self, task: _Task, why: str) -> None:
        """A worker could not analyse at all (not the file's fault): re-queue, up to max_attempts."""
        self._not_ready[task.file_id] += 1
        if self._not_ready[task.file_id] >= self.max_attempts:
            return self._outcome(task, None, f"Dask workers could not analyse it: {why}")
        return self._requeue(task, why)

    def _killed_reason(self, task: _Task) -> str:
        hosts = ", ".join(dict.fromkeys(task.killers)) or "unknown hosts"
        return f"analysis killed {max(len(task.killers), self.max_attempts)} Dask worker(s) ({hosts})"

    def _outcome(self, task: _Task, result: AnalysisResult | None, error: str | None) -> None:
        self._ready.append(Outcome(task.file_id, task.path, result, error))
        self._counts["failed" if error else "succeeded"] += 1
        if error:
            self._last_error = {"error": error, "path": task.path, "at": time.time()}

    def _requeue(self, task: _Task, why: str) -> None:
        log.info("re-queueing %s: %s", task.path, why)
        self._ready.append(Outcome(task.file_id, task.path, None, why, requeue=True))
        self._counts["requeued"] += 1

    def _on_event(self, topic: str, event: Any) -> None:
        """Client event-loop thread: only queue it (never take the lock there)."""
        self._events.put((topic, event[1] if isinstance(event, tuple) else event))

    def _apply_events(self) -> None:
        from .worker import TOPIC_READY, TOPIC_REFUSED, TOPIC_START

        while True:
            try:
                topic, msg = self._events.get_nowait()
            except queue.Empty:
                return
            handler, required = {TOPIC_START: (self._on_start, ("file_id", "address")),
                                 TOPIC_READY: (self._on_ready, ("address",)),
                                 TOPIC_REFUSED: (self._on_refused, ("address",))}[topic]
            clean = event(msg, required)   # a worker may send anything: keep what fits
            if clean is None:
                log.warning("ignored a malformed %s event from a Dask worker: %.200r", topic, msg)
            else:
                handler(clean)

    def _on_start(self, msg: dict) -> None:
        """A worker started a file."""
        key = self._by_file.get(msg.get("file_id"))
        task = self._tasks.get(key) if key else None
        if task is None:
            return
        if task.address is not None:   # the previous worker died mid-file
            task.killers.append(task.host or task.address)
            self._restarts["crash"] += 1
            self._stats.setdefault(task.address, Counter())["crashed"] += 1
        task.attempts += 1
        task.started_at, task.address, task.host = time.monotonic(), msg.get("address"), msg.get("host")
        if task.attempts > self.max_attempts:   # an external scheduler may allow more retries
            self._pop(key)
            self._outcome(task, None, self._killed_reason(task))
            self._release(task.future, task.address)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for key, task in list(self._tasks.items()):
            if task.rerun and task.future.status not in ("lost", "pending"):   # fetch it again
                task.rerun = False
                self._done.put(key)
            if task.started_at is not None and now - task.started_at > self.timeout_s:
                self._pop(key)
                log.warning("%s: timed out after %g s on %s", task.path, self.timeout_s, task.host)
                self._outcome(task, None, f"timed out after {self.timeout_s:g} s")
                self._restarts["timeout"] += 1
                self._release(task.future, task.address)
            elif task.started_at is None and now - task.submitted_at > (self.start_timeout_s or self.timeout_s):
                # No worker started it (e.g. its worker's only thread is taken by a task that was
                # cancelled while running): hand it back, and restart the worker that holds it.
                self._pop(key)
                self._requeue(task, f"no Dask worker started it within {self.start_timeout_s:g} s")
                self._release(task.future, None)

    # ------------------------------------------------------------------ local

    def _ensure_local(self) -> AnalysisExecutor:
        if self._local is None:
            log.info("starting local analysis workers (%s)", "scheduler unreachable" if not self._connected
                     else "file too big to ship")
            self._local = self._local_factory()
            self._local.start()
        return self._local

    def _submit_local(self, file_id: int, path: str, task: str = ANALYZE) -> None:
        local = self._ensure_local()
        if local.capacity > 0:
            local.submit(file_id, path, task)
            self._counts["files_local"] += 1
        else:
            self._backlog.append((file_id, path, task))

    def _drain_local(self) -> None:
        if self._local is None:
            return
        for outcome in self._local.poll(0):
            if outcome.result is not None and outcome.result.worker is not None:
                outcome.result.worker.host = socket.gethostname()
            self._counts["requeued" if outcome.requeue else "failed" if outcome.error else "succeeded"] += 1
            self._ready.append(outcome)
        while self._backlog and self._local.capacity > 0:
            file_id, path, task = self._backlog.popleft()
            self._local.submit(file_id, path, task)
            self._counts["files_local"] += 1
        if self._connected and not self._backlog and not self._local_busy() and self._state == "running":
            log.info("Dask scheduler reachable: stopping the local analysis workers")
            local, self._local = self._local, None
            local.close(grace_s=0)

    def _local_busy(self) -> bool:
        return self._local is not None and self._local.health()["in_flight"] > 0

    def _on_ready(self, msg: dict) -> None:
        self._refused.pop(msg["address"], None)
        self._workers.setdefault(msg["address"], {"since": time.time()}).update(
            host=msg.get("host"), pid=msg.get("pid"), name=msg.get("name"), nthreads=msg.get("nthreads", 1))

    def _on_refused(self, msg: dict) -> None:
        log.error("Dask worker %s (%s) refused: %s", msg.get("address"), msg.get("host"), msg.get("reason"))
        self._refused[msg["address"]] = {**msg, "at": time.time()}
        self._last_error = {"error": msg.get("reason"), "path": None, "at": time.time()}
