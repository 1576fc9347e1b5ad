"""Analysis worker pool: models loaded once per worker, per-file timeouts, memory and task-count
recycling, and native crashes (segfault, abort) that fail only their own file.

* **One single-worker pool per slot.** Each of ``workers`` slots owns a
  ``concurrent.futures.ProcessPoolExecutor(max_workers=1)`` (``spawn``; the initializer builds the
  analyzer from a picklable :class:`AnalyzerSpec`) and runs at most one file, so we always know
  which file a worker runs: a crash breaks only that slot's pool and fails only that file
  (``worker crashed (SIGSEGV)``), with no re-runs of innocent files; a timeout kills one worker.
* **A decoder crash is not the file's verdict.** The worker writes which decoder is running
  into the shared array; a file whose worker crashed inside a decoder is submitted again at
  once to the slot's fresh worker, told to skip that decoder, and only a second crash fails it
  (``worker crashed (SIGSEGV) in decoder essentia; retried with audioread: crashed (SIGSEGV)``).
  The decoders that crashed come back in ``Outcome.crashed_decoders`` (and in the result's
  ``source``). A crash outside the decoders fails the file at once.
* **Started, not submitted.** A worker writes its pid, the task number and the start time into a
  small shared array when a file starts. Timeouts exclude start-up and model loading, and a
  worker that dies *before* starting a file (broken installation) does not blame the file: it is
  re-queued, and after ``MAX_STARTUP_FAILURES`` in a row the executor stops taking work and
  reports ``fatal_error`` in :meth:`AnalysisExecutor.health`.
* **Recycling is done here, not by the pool's ``max_tasks_per_child``** (which replaces workers
  invisibly and has had hang bugs in 3.11): after a file, a worker that reported an RSS above
  ``max_memory_mb`` or has done ``max_tasks_per_child`` files is idle, so it is shut down
  gracefully and replaced; the reason is counted. A worker passing ``HARD_MEMORY_FACTOR`` × the
  limit *during* a file is killed and the file failed.
* **Threads** (``kind="thread"``): the same slots with one-thread pools, one analyzer per thread.
  A thread cannot be killed: on timeout the file is failed and the slot gets a fresh thread while
  the old one runs on and its result is dropped. No crash isolation, no memory guard (RSS is the
  daemon's): for tests and I/O-bound set-ups only.

Nothing heavy is imported here; the analyzer (and Essentia) is imported inside the workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ..analysis.factory import AnalyzerSpec
from ..analysis.result import AnalysisResult
from ..storage.jobs import ANALYZE
from .protocol import Outcome, wait_for_outcomes
from .worker import (
    BORN,
    DECODER,
    PID,
    SEQ,
    STARTED,
    STATUS_FIELDS,
    analyze,
    decoder_name,
    one_line,
    ping,
    rss_mb,
    worker_init,
)

log = logging.getLogger(__name__)

START_METHOD = "spawn"
STARTUP_TIMEOUT_S = 120.0      # a worker must start (import + load models) within this
MAX_STARTUP_FAILURES = 3       # consecutive start-up failures before the executor gives up
HARD_MEMORY_FACTOR = 2.0       # kill a worker mid-file above this multiple of max_memory_mb
TICK_S = 0.25                  # how often timeouts and memory are checked while waiting
EXTERNAL_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})



@dataclass
class _Slot:
    index: int
    pool: Executor | None = None
    status: Any = None
    warm: Future | None = None       # the start-up ping
    future: Future | None = None     # the file in flight
    file_id: int = 0
    path: str = ""
    seq: int = 0
    submitted_at: float = 0.0
    tasks: int = 0                   # files done by the current worker
    crashed: tuple[str, ...] = ()    # decoders that crashed on this file: skipped by its retry
    crash_note: str = ""             # why the file is being retried
    task: str = ANALYZE              # what the job computes (storage.jobs ANALYZE or SPREAD)

    def started(self) -> bool:
        return self.future is not None and int(self.status[SEQ]) == self.seq


def _processes(pool: Executor | None) -> list:
    # ProcessPoolExecutor keeps its processes in the private `_processes`; we read it only for
    # exit codes, liveness and killing, and degrade gracefully if it ever disappears.
    return list((getattr(pool, "_processes", None) or {}).values())




def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown cause"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class AnalysisExecutor:
    """Runs ``analyzer.analyze(path)`` for submitted files; see the module docstring."""

    @classmethod
    def from_settings(cls, settings: Any, spec: AnalyzerSpec, *, kind: str | None = None,
                      on_capacity: Callable[[], None] | None = None) -> AnalysisExecutor:
        """The executor the analysis.* settings describe (``kind`` overrides analysis.executor)."""
        a = settings.analysis
        return cls(spec, kind=kind or a.executor, workers=settings.effective_workers(), timeout_s=a.timeout_s,
                   max_memory_mb=a.max_memory_mb, max_tasks_per_child=a.max_tasks_per_child,
                   on_capacity=on_capacity)

    def __init__(self, spec: AnalyzerSpec, *, kind: str = "process", workers: int, timeout_s: float,
                 max_memory_mb: int, max_tasks_per_child: int,
                 on_capacity: Callable[[], None] | None = None) -> None:
        if kind not in ("process", "thread"):
            raise ValueError(f"executor kind must be 'process' or 'thread', not {kind!r}")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.spec, self.kind, self.workers = spec, kind, workers
        self.timeout_s, self.max_memory_mb, self.max_tasks_per_child = timeout_s, max_memory_mb, max_tasks_per_child
        # the protocol's hook; never needed here: local capacity only grows when a file finishes,
        # which poll() reports to the scheduler anyway
        self.on_capacity = on_capacity
        self._lock, self._wakeup = threading.RLock(), threading.Event()
        self._slots: list[_Slot] = []
        self._ready: list[Outcome] = []
        self._state = "new"              # new → running → closing → closed
        self._seq = self._startup_failures = 0
        self._fatal: str | None = None
        self._last_error: dict | None = None
        self._restarts: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()

    def __enter__(self) -> AnalysisExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public interface

    def start(self) -> None:
        with self._lock:
            if self._state != "new":
                return
            self._state = "running"
            self._slots = [_Slot(i) for i in range(self.workers)]
            for slot in self._slots:
                self._launch(slot)

    @property
    def capacity(self) -> int:
        with self._lock:
            if self._state != "running" or self._fatal:
                return 0
            return sum(1 for s in self._slots if s.pool is not None and s.future is None)

    def submit(self, file_id: int, path: str, task: str = ANALYZE) -> None:
        """Start a job on a file now (``task``: storage.jobs ANALYZE or SPREAD); raises
        RuntimeError when ``capacity`` is 0."""
        with self._lock:
            if self._state != "running":
                raise RuntimeError(f"analysis executor is {self._state}: cannot submit {path}")
            slot = next((s for s in self._slots if s.pool is not None and s.future is None), None)
            if slot is None or self._fatal:
                raise RuntimeError("no free analysis worker: check capacity before submitting")
            slot.crashed, slot.crash_note, slot.task = (), "", task
            self._run(slot, file_id, path)
        self._wakeup.set()

    def _run(self, slot: _Slot, file_id: int, path: str) -> None:
        self._seq += 1
        slot.file_id, slot.path, slot.seq, slot.submitted_at = file_id, path, self._seq, time.monotonic()
        try:
            slot.future = slot.pool.submit(analyze, slot.seq, path, slot.crashed, slot.task)
        except (BrokenProcessPool, RuntimeError) as exc:   # its worker died while idle
            slot.future = Future()
            slot.future.set_exception(BrokenProcessPool(str(exc)))

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes completed since the last call; waits up to ``timeout`` s for at least one."""
        return wait_for_outcomes(timeout, TICK_S, self._take_ready, self._wait_busy)

    def _take_ready(self) -> list[Outcome] | None:
        with self._lock:
            self._reap()
            if self._ready or self._state == "closed":
                out, self._ready = self._ready, []
                return out
        return None

    def close(self, grace_s: float = 8.0) -> list[tuple[int, str]]:
        """Stop taking work, let in-flight files finish for up to ``grace_s`` s, stop the workers
        and return the unfinished ``(file_id, path)`` to re-queue. Outcomes that finished during
        the grace period stay available to :meth:`poll`. A second call returns ``[]``."""
        with self._lock:
            if self._state in ("closing", "closed"):
                return []
            self._state = "closing"
        deadline = time.monotonic() + grace_s
        while (remaining := deadline - time.monotonic()) > 0:
            with self._lock:
                self._reap()
                if not any(s.future for s in self._slots):
                    break
            self._wait_busy(min(remaining, TICK_S))
        with self._lock:
            unfinished = [(s.file_id, s.path) for s in self._slots if s.future is not None]
            procs = [p for s in self._slots for p in _processes(s.pool)]
            for slot in self._slots:
                self._retire(slot, None, kill=True)
            self._state = "closed"
            self._counts["requeued"] += len(unfinished)
        for proc in procs:
            proc.join(timeout=2)
        self._wakeup.set()
        if unfinished:
            log.info("analysis stopped with %d unfinished files to re-queue", len(unfinished))
        return unfinished

    def wait_for_capacity(self, timeout: float) -> bool:
        """True once a file may be submitted; False after ``timeout``, or at once when the
        executor failed or is closed (no capacity will come)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.capacity:
                    return True
                if self._state != "running" or self._fatal:
                    return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wait_busy(min(remaining, TICK_S))

    def worker_processes(self) -> list[tuple[int, int]]:
        """(pid, slot) of each live worker process; none for threads (they are this process)."""
        if self.kind != "process":
            return []
        out = []
        with self._lock:
            for slot in self._slots:
                alive = [p for p in _processes(slot.pool) if p.is_alive()]
                if alive:   # one process per slot's pool
                    out.append((alive[0].pid, slot.index))
        return out

    def remote_processes(self) -> list[dict]:
        return []   # every worker runs on this machine

    def add_probes(self, metrics: Any, health: Callable[[], dict]) -> None:
        """Nothing beyond the probes every executor has (workers alive/busy, restarts)."""

    def health(self) -> dict:
        with self._lock:
            now = time.monotonic()
            workers = [self._slot_health(s, now) for s in self._slots]
            return {
                "kind": self.kind, "start_method": START_METHOD if self.kind == "process" else None,
                "state": "failed" if self._fatal else self._state, "size": self.workers,
                "alive": sum(1 for w in workers if w["alive"]),
                "in_flight": sum(1 for s in self._slots if s.future is not None),
                "capacity": self.capacity, "succeeded": self._counts["succeeded"],
                "failed": self._counts["failed"], "requeued": self._counts["requeued"],
                "retried": self._counts["retried"],
                "restarts": {"total": sum(self._restarts.values()), **self._restarts},
                "last_error": self._last_error, "fatal_error": self._fatal,
                "timeout_s": self.timeout_s, "max_memory_mb": self.max_memory_mb,
                "max_tasks_per_child": self.max_tasks_per_child, "workers": workers,
            }

    # -- slots

    def _launch(self, slot: _Slot) -> None:
        if self.kind == "process":
            ctx = multiprocessing.get_context(START_METHOD)
            slot.status = ctx.RawArray("d", STATUS_FIELDS)
            slot.pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=worker_init,
                                            initargs=(self.spec, slot.status, self.kind))
        else:
            slot.status = [0.0] * STATUS_FIELDS
            slot.pool = ThreadPoolExecutor(1, thread_name_prefix=f"analysis-{slot.index}",
                                           initializer=worker_init, initargs=(self.spec, slot.status, self.kind))
        slot.tasks, slot.future = 0, None
        slot.warm = slot.pool.submit(ping)   # start the worker and load the models now

    def _retire(self, slot: _Slot, reason: str | None, *, kill: bool) -> None:
        """Stop the slot's worker (killing it if asked) and, unless stopping, start a new one."""
        if slot.pool is not None:
            if kill:
                for proc in _processes(slot.pool):
                    proc.kill()
            slot.pool.shutdown(wait=False, cancel_futures=True)
        slot.pool, slot.future, slot.warm = None, None, None
        if reason:
            self._restarts[reason] += 1
            log.info("analysis worker %d replaced (%s)", slot.index, reason)
        if self._state == "running" and not self._fatal:
            self._launch(slot)

    def _wait_busy(self, timeout: float) -> None:
        with self._lock:
            futures = [s.future for s in self._slots if s.future is not None]
        if futures:
            wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        else:
            self._wakeup.wait(timeout)
            self._wakeup.clear()

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.pool is None:
                continue
            if slot.future is None:
                self._check_idle(slot)
            elif slot.future.done():
                self._finish(slot)
            elif slot.started() and now - slot.status[STARTED] > self.timeout_s:
                self._fail_and_kill(slot, f"timed out after {self.timeout_s:g} s", "timeout")
            elif not slot.started() and now - slot.submitted_at > STARTUP_TIMEOUT_S:
                self._startup_failed(slot, f"worker did not start within {STARTUP_TIMEOUT_S:g} s")
            else:
                self._check_memory(slot)

    def _check_idle(self, slot: _Slot) -> None:
        """Notice a worker that failed to start, or that died while idle (e.g. killed from outside)."""
        if slot.warm is None:
            procs = _processes(slot.pool)
            if procs and not any(p.is_alive() for p in procs):
                self._retire(slot, "died_idle", kill=False)
            return
        if not slot.warm.done() or slot.warm.cancelled():
            return
        warm, slot.warm = slot.warm, None
        exc = warm.exception()
        if isinstance(exc, BrokenProcessPool):
            error = f"worker died while starting ({_describe_exit(self._exit_code(slot))})"
        else:
            error = one_line(exc) if exc else warm.result()
        if error:
            self._startup_failed(slot, error)
        else:
            self._startup_failures = 0

    def _finish(self, slot: _Slot) -> None:
        try:
            payload = slot.future.result()
        except BrokenProcessPool:
            return self._crashed(slot)
        except Exception as exc:   # e.g. a result that cannot be pickled: the file fails
            return self._done(slot, error=f"{type(exc).__name__}: {one_line(exc)}")
        if "init_error" in payload:
            return self._startup_failed(slot, payload["init_error"])
        self._startup_failures = 0
        slot.tasks += 1
        result, error, worker = payload["result"], payload["error"], payload["worker"]   # see worker.analyze
        self._done(slot, result=None if error else result, error=error)
        if self.kind == "process" and (worker.rss_mb or 0) > self.max_memory_mb:
            self._retire(slot, "memory", kill=False)
        elif slot.tasks >= self.max_tasks_per_child:
            self._retire(slot, "max_tasks", kill=False)

    def _crashed(self, slot: _Slot) -> None:
        code = self._exit_code(slot)
        cause = _describe_exit(code)
        if not slot.started():
            return self._startup_failed(slot, f"worker died while starting ({cause})")
        if code is not None and code < 0 and -code in EXTERNAL_SIGNALS:
            self._done(slot, error=f"worker was stopped from outside ({cause})", requeue=True)
            return self._retire(slot, "stopped", kill=False)
        decoder = decoder_name(slot.status[DECODER])
        if slot.crashed:   # the retry crashed too: now it is the file's verdict
            where = f"with {decoder}" if decoder else f"without {', '.join(slot.crashed)}"
            self._done(slot, error=f"{slot.crash_note}; retried {where}: crashed ({cause})",
                       crashed=slot.crashed + ((decoder,) if decoder else ()))
        elif decoder:
            slot.crashed, slot.crash_note = (decoder,), f"worker crashed ({cause}) in decoder {decoder}"
            log.warning("%s: %s; retrying once without it in a fresh worker", slot.path, slot.crash_note)
        else:
            self._done(slot, error=f"worker crashed ({cause})")
        retry = slot.future is not None
        file_id, path = slot.file_id, slot.path
        self._retire(slot, "crash", kill=False)
        if not retry:
            return
        if slot.pool is None:   # closing (or failed): no fresh worker will come; not the file's fault
            self._done(slot, error=slot.crash_note, requeue=True)
            return
        self._counts["retried"] += 1
        self._run(slot, file_id, path)

    def _fail_and_kill(self, slot: _Slot, error: str, reason: str) -> None:
        log.warning("%s: %s", slot.path, error)
        self._done(slot, error=error)
        self._retire(slot, reason, kill=True)

    def _startup_failed(self, slot: _Slot, error: str) -> None:
        self._startup_failures += 1
        self._last_error = {"error": error, "path": None, "at": time.time()}
        if self._startup_failures >= MAX_STARTUP_FAILURES and not self._fatal:
            self._fatal = f"analysis workers cannot start: {error}"
            log.error("%s — fix the installation and restart", self._fatal)
        if slot.future is not None:
            self._done(slot, error=error, requeue=True)
        self._retire(slot, "startup", kill=True)

    def _check_memory(self, slot: _Slot) -> None:
        if self.kind != "process" or not slot.started():
            return
        hard = self.max_memory_mb * HARD_MEMORY_FACTOR
        if (rss_mb(int(slot.status[PID])) or 0) > hard:
            self._fail_and_kill(slot, f"worker memory passed {hard:g} MB (limit {self.max_memory_mb} MB)", "memory")

    def _done(self, slot: _Slot, *, result: AnalysisResult | None = None, error: str | None = None,
              requeue: bool = False, crashed: tuple[str, ...] | None = None) -> None:
        if crashed is None:   # a retried file's ordinary outcome still says what crashed before
            crashed = slot.crashed
            if error and crashed and not requeue:
                error = f"{slot.crash_note}; retried without {', '.join(crashed)}: {error}"
            if result is not None and crashed and isinstance(result.source, dict):
                result.source["crashed_decoders"] = list(crashed)
        self._ready.append(Outcome(slot.file_id, slot.path, result, error, requeue, crashed))
        slot.future, slot.crashed, slot.crash_note = None, (), ""
        self._counts["requeued" if requeue else "failed" if error else "succeeded"] += 1
        if error:
            self._last_error = {"error": error, "path": slot.path, "at": time.time()}

    @staticmethod
    def _exit_code(slot: _Slot) -> int | None:
        # Its pipe closes a moment before it can be reaped, and the pool's thread may be reaping
        # it at the same time (then our waitpid fails): retry briefly.
        deadline = time.monotonic() + 1.0
        for proc in _processes(slot.pool):
            while proc.exitcode is None and time.monotonic() < deadline:
                proc.join(0.02)
            if proc.exitcode is not None:
                return proc.exitcode
        return None

    def _slot_health(self, slot: _Slot, now: float) -> dict:
        status = slot.status or [0.0] * STATUS_FIELDS
        procs = [p for p in _processes(slot.pool) if p.is_alive()]
        pid = procs[0].pid if procs else int(status[PID]) or None
        alive = bool(procs) if self.kind == "process" else slot.pool is not None and pid is not None
        info = {"slot": slot.index, "pid": pid if alive else None, "alive": alive,
                "age_s": round(now - status[BORN], 1) if alive and status[BORN] else None,
                "tasks_done": slot.tasks, "busy": slot.future is not None, "rss_mb": None, "current": None}
        if alive and self.kind == "process":
            info["rss_mb"] = rss_mb(pid)
        if slot.future is not None:
            running = round(now - status[STARTED], 1) if slot.started() else None
            info["current"] = {"file_id": slot.file_id, "path": slot.path, "running_s": running}
        return info
