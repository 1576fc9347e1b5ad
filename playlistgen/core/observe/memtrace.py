"""Optional tracemalloc snapshots for hunting memory growth in the daemon (off by default:
tracing every allocation costs CPU and memory). Enabled by ``logging.tracemalloc: true``."""

from __future__ import annotations

import logging
import threading
import tracemalloc

log = logging.getLogger(__name__)


class MemoryTracer:
    """Starts tracing on :meth:`start`; each :meth:`report` compares a new snapshot with the one taken
    at start, so the top lines are where memory *grew* while the daemon ran."""

    def __init__(self, frames: int = 5, top: int = 10) -> None:
        self.frames = frames
        self.top = top
        self._baseline: tracemalloc.Snapshot | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
        self._baseline = self._snapshot()
        log.info("tracemalloc on (%d frames): /api/v1/performance/metrics shows allocation growth", self.frames)

    def stop(self) -> None:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        self._baseline = None

    @staticmethod
    def _snapshot() -> tracemalloc.Snapshot:
        # our own frames and import machinery would otherwise dominate the top list
        return tracemalloc.take_snapshot().filter_traces((
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        ))

    def report(self) -> dict:
        if not tracemalloc.is_tracing() or self._baseline is None:
            return {"enabled": False, "hint": "tracemalloc is not running"}
        with self._lock:
            current, peak = tracemalloc.get_traced_memory()
            snap = self._snapshot()
            growth = snap.compare_to(self._baseline, "lineno")[: self.top]
            biggest = snap.statistics("lineno")[: self.top]
        return {
            "enabled": True, "current_mb": round(current / 2**20, 2), "peak_mb": round(peak / 2**20, 2),
            "growth_since_start": [{"where": str(s.traceback[0]), "size_kb": round(s.size / 1024, 1),
                                    "size_diff_kb": round(s.size_diff / 1024, 1), "count_diff": s.count_diff}
                                   for s in growth],
            "largest": [{"where": str(s.traceback[0]), "size_kb": round(s.size / 1024, 1), "count": s.count}
                        for s in biggest],
        }
