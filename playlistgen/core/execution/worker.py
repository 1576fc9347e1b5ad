"""The worker side of local analysis (runs inside each worker process or thread): build the
analyzer once, analyse one file at a time and report when it started, and which decoder is
running, through a shared status array (shared memory: it survives the worker's crash).
``run_analyzer`` is shared with the Dask worker."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from ...errors import AnalysisError
from ..analysis.factory import AnalyzerSpec
from ..analysis.result import AnalysisResult, WorkerStats
from ..audio.policy import DECODERS, decoder_policy
from ..storage.jobs import ANALYZE, SPREAD

log = logging.getLogger(__name__)

PID, SEQ, STARTED, BORN, DECODER = range(5)   # fields of the status array a worker shares with the parent
STATUS_FIELDS = 5
MB = 1024 * 1024


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_analyzer(analyzer: Any, path: str, task: str = ANALYZE) -> tuple[AnalysisResult | None, str | None]:
    """Run one job in a worker (local or Dask): (result, None) or (None, a one-line reason).
    ``task`` says what it computes: ANALYZE the whole analysis, SPREAD only the MusiCNN part an
    older analysis lacks (``analyzer.analyze_spread``). An analyzer bug fails this file, not the
    worker."""
    try:
        if task == ANALYZE:
            result = analyzer.analyze(path)
        elif task == SPREAD:
            result = analyzer.analyze_spread(path)
        else:
            return None, f"unknown task {task!r}"
    except AnalysisError as exc:
        return None, one_line(exc)
    except Exception as exc:
        log.warning("unexpected error analysing %s", path, exc_info=True)
        return None, f"{type(exc).__name__}: {one_line(exc)}"
    if not isinstance(result, AnalysisResult):
        return None, f"analyzer returned {type(result).__name__}, not an AnalysisResult"
    return result, None


def load_factory(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_LOCAL = threading.local()   # the analyzer of this worker process (or thread)


WORKER_NICENESS = 5


def exit_with_parent(interval_s: float = 1.0) -> None:
    """If the daemon dies without closing the pool (kill -9, a second Ctrl+C), its workers
    would idle forever holding their models: watch the parent and leave when it is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_init(spec: AnalyzerSpec, status: Any, kind: str) -> None:
    if kind == "process":
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C is for the parent; it stops us
        # Analysis is background work: a lower priority keeps the HTTP API and the writer
        # responsive while every core decodes (also during the workers' heavy start-up).
        os.nice(WORKER_NICENESS)
        exit_with_parent()
    status[PID], status[BORN] = os.getpid(), time.monotonic()
    _LOCAL.status, _LOCAL.analyzer, _LOCAL.init_error = status, None, None
    _LOCAL.cpu_clock = time.process_time if kind == "process" else time.thread_time
    try:
        _LOCAL.analyzer = load_factory(spec.factory)(spec.backend, spec.preset, Path(spec.models_dir))
    except Exception as exc:   # reported to the parent, which decides what to do
        log.warning("analyzer could not start", exc_info=True)
        _LOCAL.init_error = f"analyzer could not start: {one_line(exc)}"


def ping() -> str | None:
    return _LOCAL.init_error


def decoder_name(code: float) -> str | None:
    """The decoder a status array's DECODER field names (0: none was running)."""
    index = int(code) - 1
    return DECODERS[index] if 0 <= index < len(DECODERS) else None


def analyze(seq: int, path: str, skip_decoders: tuple[str, ...] = (), task: str = ANALYZE) -> dict:
    """One file: ``{"result", "error", "worker"}`` (the result carries the worker's stats too),
    or ``{"init_error"}`` when the analyzer could not start. ``skip_decoders``: decoders that
    crashed on this file before, left out of the chain."""
    status = _LOCAL.status
    status[DECODER] = 0
    status[SEQ], status[STARTED] = seq, time.monotonic()
    if _LOCAL.init_error:
        return {"init_error": _LOCAL.init_error}

    def running(name: str | None) -> None:   # written before the decoder runs: a crash leaves it
        status[DECODER] = DECODERS.index(name) + 1 if name in DECODERS else 0

    wall0, cpu0 = time.perf_counter(), _LOCAL.cpu_clock()
    with decoder_policy(skip_decoders, on_decoder=running):
        result, error = run_analyzer(_LOCAL.analyzer, path, task)
    worker = WorkerStats(pid=os.getpid(), rss_mb=rss_mb(os.getpid()), wall_s=round(time.perf_counter() - wall0, 3),
                         cpu_s=round(_LOCAL.cpu_clock() - cpu0, 3))
    if result is not None:
        result.worker = worker
    return {"result": result, "error": error, "worker": worker}


def rss_mb(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).memory_info().rss / MB, 1)
    except psutil.Error:
        return None
