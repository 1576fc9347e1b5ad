"""Measurements of a running daemon: timers, counters, gauges, per-minute throughput.

One :class:`Metrics` is built in the entry point and passed down (the scheduler records each
analysis outcome, the HTTP app times each route, the writer reports each batch). Numbers owned by
other components — cache hits, pool waits, worker restarts, queue depth — are not copied here:
they are registered as *probes* (small callables) and read live when someone asks, so the JSON
endpoints and the Prometheus scrape can never disagree with the component itself.

Timers keep lifetime ``count``/``total_s`` plus a bounded window of the latest samples; ``avg``,
``min``, ``max``, ``p50`` and ``p95`` describe that window (recent behaviour, bounded memory).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .memtrace import MemoryTracer
from .resources import ResourceMonitor

if TYPE_CHECKING:
    from ..analysis.result import AnalysisResult

log = logging.getLogger(__name__)

WINDOW = 1024                 # samples kept per timer
THROUGHPUT_BUCKET_S = 60      # one throughput bar per minute ...
THROUGHPUT_BUCKETS = 60       # ... for the last hour

Probe = Callable[[], Any]     # returns a number, or {label tuple: number} for labelled probes


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) of already sorted values, linear interpolation between the two
    nearest ranks (numpy's default method)."""
    if not sorted_values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    frac = pos - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass
class Timer:
    """Durations of one operation: lifetime totals plus a window of the latest (time, seconds)."""

    window: int = WINDOW
    count: int = 0
    total_s: float = 0.0
    samples: deque = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.samples = deque(maxlen=self.window)

    def observe(self, seconds: float, now: float) -> None:
        self.count += 1
        self.total_s += seconds
        self.samples.append((now, seconds))

    def sum_since(self, since: float) -> float:
        """Seconds spent in samples recorded at or after ``since`` (for utilisation)."""
        return sum(v for t, v in self.samples if t >= since)

    def snapshot(self) -> dict:
        values = sorted(v for _, v in self.samples)
        n = len(values)
        out = {"count": self.count, "total_s": round(self.total_s, 6), "window": n,
               "avg_s": None, "min_s": None, "max_s": None, "p50_s": None, "p95_s": None,
               "last_s": round(self.samples[-1][1], 6) if n else None}
        if n:
            out.update(avg_s=round(sum(values) / n, 6), min_s=round(values[0], 6), max_s=round(values[-1], 6),
                       p50_s=round(percentile(values, 50), 6), p95_s=round(percentile(values, 95), 6))
        return out

    def quantiles(self) -> dict[float, float]:
        values = sorted(v for _, v in self.samples)
        return {q: percentile(values, q * 100) for q in (0.5, 0.95)} if values else {}

    def copy(self) -> Timer:
        """A frozen copy, to read outside the lock that guards ``observe`` (iterating the live
        deque while another thread appends raises "deque mutated during iteration")."""
        twin = Timer(self.window, self.count, self.total_s)
        twin.samples.extend(self.samples)
        return twin


@dataclass
class _Probe:
    name: str
    help: str
    fn: Probe
    kind: str                 # "gauge" | "counter"
    labels: tuple[str, ...] = ()


class Metrics:
    """See the module docstring. Thread-safe: every mutation takes one lock, briefly."""

    def __init__(self, *, slow_ms: float = 1000.0, window: int = WINDOW, tracemalloc: bool = False,
                 bucket_s: int = THROUGHPUT_BUCKET_S, buckets: int = THROUGHPUT_BUCKETS,
                 clock: Callable[[], float] = time.time) -> None:
        self.slow_ms = slow_ms
        self.window = window
        self.clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self._timers: dict[tuple[str, str], Timer] = {}        # (group, name) → Timer
        self._counters: Counter[str] = Counter()
        self._presets: dict[str, Counter[str]] = {}            # preset → audio_s, wall_s, cpu_s, files
        self._bucket_s, self._buckets = bucket_s, buckets
        self._throughput: dict[int, Counter[str]] = {}
        self._probes: list[_Probe] = []
        self.memtrace = MemoryTracer() if tracemalloc else None
        self.resources = ResourceMonitor()
        self._registry = None

    @classmethod
    def from_settings(cls, settings: Any) -> Metrics:
        return cls(slow_ms=settings.api.slow_request_ms, tracemalloc=settings.logging.tracemalloc)

    # ---- recording ------------------------------------------------------------------------
    def observe(self, name: str, seconds: float, *, group: str = "op", log_slow: bool = True,
                **params: Any) -> None:
        """Record one duration. Operations slower than api.slow_request_ms are logged with params."""
        now = self.clock()
        with self._lock:
            timer = self._timers.get((group, name))
            if timer is None:
                timer = self._timers[(group, name)] = Timer(self.window)
            timer.observe(seconds, now)
        if log_slow and self.slow_ms and seconds * 1000 > self.slow_ms:
            log.warning("slow %s %s: %.0f ms %s", group, name, seconds * 1000, params or "")

    @contextmanager
    def time(self, name: str, **params: Any) -> Iterator[None]:
        """``with metrics.time("playlist_build", strategy=s):`` — times the block, even if it raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, time.perf_counter() - started, **params)

    def inc(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def observe_http(self, method: str, rule: str, status: int, seconds: float) -> None:
        # keyed by the URL rule, not the path, so /tracks/1 and /tracks/2 share one timer
        self.observe(f"{method} {rule}", seconds, group="http", log_slow=False)
        self.inc(f"http_{status // 100}xx")

    def record_analysis(self, result: AnalysisResult | None, error: str | None, *,
                        bytes_read: int | None = None) -> None:
        """One finished file (called by the scheduler). Stage timings travel back with the result."""
        now = self.clock()
        bucket = int(now // self._bucket_s)
        with self._lock:
            slot = self._throughput.setdefault(bucket, Counter())
            if len(self._throughput) > self._buckets:
                for old in sorted(self._throughput)[: len(self._throughput) - self._buckets]:
                    del self._throughput[old]
            if error is not None or result is None:
                self._counters["files_failed"] += 1
                slot["failed"] += 1
                return
            duration = float(result.duration_s or 0.0)
            wall = float(result.wall_s or 0.0)
            self._counters["files_analysed"] += 1
            self._counters["audio_seconds"] += duration
            if bytes_read:
                self._counters["bytes_decoded"] += bytes_read
            slot["analysed"] += 1
            slot["audio_s"] += duration
            preset = self._presets.setdefault(str(result.preset or "unknown"), Counter())
            preset["files"] += 1
            preset["audio_s"] += duration
            preset["wall_s"] += wall
            preset["cpu_s"] += float(result.cpu_s or (result.worker.cpu_s if result.worker else None) or 0.0)
        if result.timings is not None:
            t = result.timings
            for stage, seconds in (("decode", t.decode_s), ("dsp", t.dsp_s), ("ml", t.ml_s)):
                if seconds is not None:
                    self.observe(stage, float(seconds), log_slow=False)
        if wall:
            self.observe("analysis", wall, log_slow=False)

    # ---- probes: live numbers owned by other components ------------------------------------
    def add_gauge(self, name: str, help: str, fn: Probe, labels: tuple[str, ...] = ()) -> None:
        self._probes.append(_Probe(name, help, fn, "gauge", labels))

    def add_counter(self, name: str, help: str, fn: Probe, labels: tuple[str, ...] = ()) -> None:
        self._probes.append(_Probe(name, help, fn, "counter", labels))

    def read_probes(self) -> list[tuple[_Probe, Any]]:
        out = []
        for probe in list(self._probes):
            try:
                out.append((probe, probe.fn()))
            except Exception as exc:  # a probe must never break a scrape or the dashboard
                log.debug("probe %s failed: %s", probe.name, exc)
        return out

    # ---- reading --------------------------------------------------------------------------
    def timers(self, group: str | None = None) -> dict[str, dict]:
        # copies under the lock, the sorting outside it: every HTTP request's observe() waits for this lock
        with self._lock:
            items = [(name, t.copy()) for (g, name), t in sorted(self._timers.items()) if group is None or g == group]
        return {name: t.snapshot() for name, t in items}

    def timer_items(self) -> list[tuple[str, str, Timer]]:
        """Copies taken under the lock: the caller (a Prometheus scrape) reads them without it."""
        with self._lock:
            return [(g, n, t.copy()) for (g, n), t in sorted(self._timers.items())]

    def busy_seconds(self, name: str, since: float) -> float:
        with self._lock:
            timer = self._timers.get(("op", name))
            return timer.sum_since(since) if timer else 0.0

    def counters(self, probes: list | None = None) -> dict[str, float]:
        with self._lock:
            own = dict(self._counters)
        for key in ("files_analysed", "files_failed", "bytes_decoded", "audio_seconds"):
            own.setdefault(key, 0)
        for probe, value in self.read_probes() if probes is None else probes:
            if probe.kind == "counter" and not probe.labels:
                own[probe.name] = value
        return own

    def gauges(self, probes: list | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for probe, value in self.read_probes() if probes is None else probes:
            if probe.kind != "gauge":
                continue
            if probe.labels:
                out[probe.name] = [dict(zip(probe.labels, key, strict=True), value=v) for key, v in value.items()]
            else:
                out[probe.name] = value
        return out

    def realtime_factor(self) -> dict[str, dict]:
        """Per preset: seconds of audio analysed per wall second of one worker, and CPU cost."""
        with self._lock:
            presets = {k: dict(v) for k, v in self._presets.items()}
        out = {}
        for name, p in presets.items():
            out[name] = {"files": int(p["files"]), "audio_s": round(p["audio_s"], 1),
                         "wall_s": round(p["wall_s"], 2),
                         "realtime_factor": round(p["audio_s"] / p["wall_s"], 1) if p["wall_s"] else None,
                         "cpu_s_per_audio_min": round(p["cpu_s"] / (p["audio_s"] / 60), 3) if p["audio_s"] else None}
        return out

    def throughput(self) -> dict:
        """Files finished per bucket for the last hour, oldest first, empty buckets included."""
        now_bucket = int(self.clock() // self._bucket_s)
        with self._lock:
            data = {k: dict(v) for k, v in self._throughput.items()}
        points = []
        for b in range(now_bucket - self._buckets + 1, now_bucket + 1):
            slot = data.get(b, {})
            points.append({"t": b * self._bucket_s, "analysed": int(slot.get("analysed", 0)),
                           "failed": int(slot.get("failed", 0)), "audio_s": round(slot.get("audio_s", 0.0), 1)})
        return {"bucket_s": self._bucket_s, "points": points}

    def snapshot(self) -> dict:
        """Everything, for /api/v1/performance/metrics."""
        probes = self.read_probes()   # once: some probes ask other components for their health
        return {
            "uptime_s": round(self.clock() - self.started_at, 3),
            "window": self.window,
            "operations": self.timers("op"),
            "http": self.timers("http"),
            "counters": self.counters(probes),
            "gauges": self.gauges(probes),
            "realtime_factor": self.realtime_factor(),
            "throughput": self.throughput(),
            "memory": self.memory(),
        }

    def memory(self) -> dict:
        proc = self.resources.process(os.getpid())
        info = proc.memory_info()
        out: dict[str, Any] = {"pid": proc.pid, "rss_mb": round(info.rss / 2**20, 1),
                               "vms_mb": round(info.vms / 2**20, 1)}
        out["tracemalloc"] = self.memtrace.report() if self.memtrace else {"enabled": False,
                                                                           "hint": "set logging.tracemalloc: true"}
        return out

    def observe_write_batch(self, jobs: int, seconds: float) -> None:
        """The database writer's hook (``Database(on_batch=...)``): one committed batch."""
        self.observe("db_write_batch", seconds, jobs=jobs)

    # ---- Prometheus -----------------------------------------------------------------------
    def registry(self):  # type: ignore[no-untyped-def]
        """A private CollectorRegistry whose collector reads this object on every scrape."""
        if self._registry is None:
            from .prometheus import build_registry

            self._registry = build_registry(self)
        return self._registry


def register_probes(metrics: Metrics, *, db: Any = None, daemon: Any = None, cache: Any = None) -> None:
    """Wire the live numbers of the storage layer, the daemon and the cache into ``metrics``."""
    if db is not None:
        metrics.add_counter("busy_retries", "SQLite busy errors retried (readers and writer)",
                            lambda: db.readers.snapshot()["busy_retries"] + db.writer.stats["busy_retries"])
        metrics.add_gauge("db_pool_in_use", "Read connections checked out", lambda: db.readers.snapshot()["in_use"])
        metrics.add_gauge("db_pool_open", "Read connections open", lambda: db.readers.snapshot()["opened"])
        metrics.add_counter("db_pool_waits", "Checkouts that had to wait for a connection",
                            lambda: db.readers.snapshot()["waits"])
        metrics.add_gauge("db_writer_queue", "Writes waiting for the writer thread", lambda: db.writer.queue_depth)
    if cache is not None:
        for name in ("hits", "misses", "evictions", "expirations"):
            metrics.add_counter(f"cache_{name}", f"Feature cache {name}", lambda n=name: cache.stats()[n])
        metrics.add_gauge("cache_bytes", "Compressed bytes held by the feature cache",
                          lambda: cache.stats()["size_bytes"])
        metrics.add_gauge("cache_entries", "Entries in the feature cache", lambda: cache.stats()["entries"])
    if daemon is not None:
        executor = daemon.executor

        def snapshot():  # type: ignore[no-untyped-def]
            return daemon.status()  # reused for up to a second: one snapshot for every gauge of a scrape

        executor.add_probes(metrics, lambda: snapshot().executor)  # e.g. Dask: remote workers, bytes shipped

        def queue_depth() -> int:  # both numbers from one snapshot: a file may start between two reads
            status = snapshot()
            return status.pending + status.analysis["in_flight"]

        metrics.add_gauge("queue_depth", "Files waiting for analysis or in flight", queue_depth)
        metrics.add_gauge("workers_alive", "Analysis workers alive", lambda: snapshot().executor["alive"])
        metrics.add_gauge("workers_busy", "Analysis workers running a file", lambda: snapshot().executor["in_flight"])
        metrics.add_counter("worker_restarts", "Analysis workers replaced (crash, memory, max_tasks, timeout)",
                            lambda: snapshot().executor["restarts"]["total"])
    metrics.add_gauge("rss_bytes", "Resident memory per process", lambda: {
        (p["name"], str(p["pid"])): (p["rss_mb"] or 0) * 2**20 for p in metrics.resources.processes(daemon)},
        labels=("process", "pid"))
