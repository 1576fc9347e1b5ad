"""Assembles the running daemon: database, library reconcile, watcher, scheduler, executor.

Built by `playlistgen serve` (the entry point) and handed to the HTTP app through Services.
One "library" thread applies every change to the files table — start-up reconcile, watcher
events, API-triggered and periodic rescans — so they never race each other.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from .config import Settings
from .core.db import Database
from .core.jobs import JobQueue
from .core.library import Library
from .core.scheduler import Scheduler
from .errors import AnalysisError

log = logging.getLogger(__name__)


def analyzer_version(settings: Settings) -> str:
    """The version stored with each result: backend name + analyzer version (as the analyzers report it)."""
    from .core.analysis.version import ANALYZER_VERSION  # no analysis-stack import

    return f"{resolved_backend(settings)}-{ANALYZER_VERSION}"


def resolved_backend(settings: Settings) -> str:
    if settings.analysis.backend != "auto":
        return settings.analysis.backend
    import importlib.util

    return "essentia" if importlib.util.find_spec("essentia") else "librosa"


def check_models(settings: Settings) -> None:
    """Refuse to start an ML preset whose models are missing — never invent values."""
    preset = settings.analysis.preset
    if preset == "fast":
        return
    if resolved_backend(settings) == "librosa":
        raise AnalysisError(f"preset '{preset}' needs the Essentia backend for its ML models, "
                            "but the backend is librosa", hint="use --preset fast, or install essentia-tensorflow")
    from .core.analysis.models import require_model

    models_dir = Path(settings.analysis.models_dir)
    require_model(models_dir, "msd_musicnn")
    if preset == "accurate":
        require_model(models_dir, "mtt_musicnn")


def analyzer_spec(settings: Settings):  # type: ignore[no-untyped-def]
    from .core.executor import AnalyzerSpec

    return AnalyzerSpec(factory="playlistgen.core.analysis.factory:create_analyzer",
                        backend=resolved_backend(settings), preset=settings.analysis.preset,
                        models_dir=str(Path(settings.analysis.models_dir).resolve()))


class LibraryService:
    """Owns the library thread and the watcher; everything else only asks it for work."""

    def __init__(self, library: Library, settings: Settings, metrics=None) -> None:  # type: ignore[no-untyped-def]
        self.library = library
        self.metrics = metrics
        self.settings = settings
        self._requests: queue.Queue = queue.Queue(maxsize=256)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="library", daemon=True)
        self.watcher = None
        self.last_error: str | None = None

    def start(self) -> None:
        self.request_scan("startup")
        self._thread.start()
        if self.settings.library.watch:
            self._start_watcher()

    def _start_watcher(self) -> None:
        from .core.watcher import LibraryWatcher

        lib = self.settings.library
        self.watcher = LibraryWatcher(lib.paths, extensions=lib.extensions, ignore=lib.ignore,
                                      polling=lib.polling, settle_seconds=lib.settle_seconds,
                                      on_changes=self._on_changes)
        try:
            self.watcher.start()
        except Exception as exc:  # the periodic reconcile still catches changes
            self.last_error = f"watcher failed: {exc}"
            log.error("%s — relying on periodic reconcile (library.rescan_interval_s)", self.last_error)
            self.watcher = None

    def request_scan(self, trigger: str = "api") -> bool:
        """Queue a full reconcile; False if one is already waiting."""
        try:
            self._requests.put_nowait(("scan", trigger))
            return True
        except queue.Full:
            return False

    def _on_changes(self, changes: list) -> None:
        # only enqueue; blocking here applies backpressure to the watcher's debounce thread
        self._requests.put(("changes", changes))

    def _loop(self) -> None:
        interval = self.settings.library.rescan_interval_s
        next_periodic = time.monotonic() + interval if interval else None
        while not self._stop.is_set():
            timeout = max(next_periodic - time.monotonic(), 0) if next_periodic else 1.0
            try:
                kind, payload = self._requests.get(timeout=min(timeout, 1.0))
            except queue.Empty:
                if next_periodic and time.monotonic() >= next_periodic:
                    kind, payload = "scan", "periodic"
                else:
                    continue
            try:
                if kind == "scan":
                    report = self.library.reconcile(trigger=payload)
                    if self.metrics is not None:
                        self.metrics.observe("reconcile", report.seconds, trigger=payload, files=report.seen)
                    if interval:
                        next_periodic = time.monotonic() + interval
                elif kind == "changes":
                    self._apply(payload)
            except Exception as exc:  # logged, shown in status; the next scan retries
                self.last_error = f"{kind}: {exc}"
                log.exception("library update failed")

    def _apply(self, changes: list) -> None:
        changed, deleted = [], []
        for change in changes:
            if change.kind == "rescan":
                self.library.reconcile(trigger="watcher-overflow")
                return
            if change.kind == "changed":
                changed.append(change.path)
            elif change.kind == "deleted":
                deleted.append(change.path)
            elif change.kind == "moved":
                deleted.append(change.path)
                if change.dest:
                    changed.append(change.dest)
        self.library.apply_paths(changed=changed, deleted=deleted)

    def stop(self) -> None:
        self._stop.set()
        if self.watcher:
            self.watcher.stop()
        if self._thread.ident is not None:  # started
            self._thread.join(10)

    def health(self) -> dict:
        watcher = self.watcher.health() if self.watcher else {"ready": not self.settings.library.watch,
                                                               "mode": "off"}
        return {"ready": self._thread.is_alive() or not self._thread.ident, "watcher": watcher,
                "scan": self.library.current, "last_error": self.last_error,
                "queue": self._requests.qsize()}


class Daemon:
    """Everything `serve` runs besides the HTTP server."""

    def __init__(self, settings: Settings, db: Database, metrics=None) -> None:  # type: ignore[no-untyped-def]
        from .core.executor import AnalysisExecutor

        check_models(settings)
        version = analyzer_version(settings)
        self.settings = settings
        self.db = db
        self.queue = JobQueue(db, version)
        self.executor = AnalysisExecutor(analyzer_spec(settings), kind=settings.analysis.executor,
                                         workers=settings.effective_workers(), timeout_s=settings.analysis.timeout_s,
                                         max_memory_mb=settings.analysis.max_memory_mb,
                                         max_tasks_per_child=settings.analysis.max_tasks_per_child)
        self.scheduler = Scheduler(self.queue, self.executor, metrics=metrics)
        self.library = Library(db, settings.library, version, on_queued=self.scheduler.wake)
        self.library_service = LibraryService(self.library, settings, metrics=metrics)

    def start(self) -> None:
        requeued = self.queue.requeue_in_flight()
        if requeued:
            log.info("re-queued %d file(s) left in flight by the last run", requeued)
        self.executor.start()
        self.scheduler.start()
        self.library_service.start()

    def stop(self, grace_s: float = 6.0) -> None:
        self.library_service.stop()
        self.scheduler.stop(grace_s)

    def health(self) -> dict:
        return {"ready": True, "library": self.library_service.health(), "analysis": self.scheduler.health()}

