"""What the Dask executor shows: its health dict (the same keys as the local executor's, plus a
``dask`` section), one entry per remote worker (host, pid, tasks, RSS, current file, failures),
and the Prometheus probes for them and for the bytes shipped. :class:`ExecutorViews` is the
executor's side of the protocol for all of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .executor import DaskAnalysisExecutor


def remote_workers(ex: DaskAnalysisExecutor) -> list[dict]:
    """Call with ``ex._lock`` held."""
    now, mono = time.time(), time.monotonic()
    current = {t.address: t for t in ex._tasks.values() if t.address and t.started_at is not None}
    out = []
    for addr, w in sorted(ex._workers.items()):
        stats = ex._stats.get(addr, {})
        task = current.get(addr)
        out.append({
            "slot": addr, "address": addr, "name": w.get("name"), "host": w.get("host"), "pid": w.get("pid"),
            "remote": True, "alive": bool(w.get("running")), "refused": addr in ex._refused,
            "age_s": round(now - w["since"], 1) if w.get("since") else None,
            "tasks_done": stats.get("tasks", 0), "failures": stats.get("failed", 0) + stats.get("crashed", 0),
            "busy": task is not None, "rss_mb": w.get("rss_mb"),
            "current": {"file_id": task.file_id, "path": task.path,
                        "running_s": round(mono - task.started_at, 1)} if task else None,
        })
    return out


def executor_health(ex: DaskAnalysisExecutor) -> dict:
    """Call with ``ex._lock`` held."""
    workers = remote_workers(ex)
    local = ex._local.health() if ex._local is not None else None
    mode = "remote" if ex._connected else ("local-fallback" if ex.fallback == "local" else "waiting")
    state = ex._state
    if state == "running" and not ex._connected and ex.fallback == "wait":
        state = "waiting"
    for w in (local or {}).get("workers", []):
        workers.append({**w, "host": "local", "remote": False})
    counts = ex._counts
    return {
        "kind": "dask", "start_method": None, "state": state,
        "size": ex._remote_slots() + (local["size"] if local else 0),
        "alive": sum(1 for w in workers if w["alive"] and not w.get("refused")),
        "in_flight": len(ex._tasks) + len(ex._backlog) + (local["in_flight"] if local else 0),
        "capacity": ex.capacity, "succeeded": counts["succeeded"], "failed": counts["failed"],
        "requeued": counts["requeued"],
        "restarts": {"total": sum(ex._restarts.values()), **ex._restarts},
        "last_error": ex._last_error, "fatal_error": None, "timeout_s": ex.timeout_s,
        "max_memory_mb": None, "max_tasks_per_child": None, "workers": workers,
        "dask": {
            "scheduler": ex.scheduler_address, "embedded": ex._embedded is not None,
            "connected": ex._connected, "mode": mode, "error": None if ex._connected else ex._conn_error,
            "since": ex._conn_changed, "tls": ex.tls.configured, "fallback": ex.fallback,
            "workers": sum(1 for w in workers if w.get("remote")), "threads": ex._remote_slots(),
            "bytes_shipped": counts["bytes_shipped"], "files_shipped": counts["files_shipped"],
            "files_path_mapped": counts["files_path_mapped"], "files_local": counts["files_local"],
            "too_big_for_shipping": counts["too_big_for_shipping"],
            "max_ship_mb": ex.max_ship_bytes // (1024 * 1024), "max_attempts": ex.max_attempts,
            "refused": list(ex._refused.values()), "local": local,
        },
    }


def processes(ex: Any) -> list[dict]:
    """Remote workers as rows of the dashboard's processes panel (RSS from Dask's heartbeat)."""
    rows = []
    for w in ex.health()["workers"]:
        if w.get("remote") and w["alive"]:
            rows.append({"name": f"dask {w['name'] or w['address']}", "pid": w["pid"], "slot": None,
                         "host": w["host"], "rss_mb": w["rss_mb"] or 0.0, "cpu_percent": None, "remote": True,
                         "tasks_done": w["tasks_done"], "failures": w["failures"],
                         "current": (w["current"] or {}).get("path")})
    return rows


def register_probes(metrics: Any, health: Callable[[], dict]) -> None:
    """Prometheus: bytes shipped, files by route, and per remote worker tasks/failures/RSS/busy;
    ``health`` returns the executor's health (a snapshot shared by one scrape)."""
    def dask() -> dict:
        return health()["dask"]

    metrics.add_counter("dask_bytes_shipped", "Bytes of audio files shipped to Dask workers",
                        lambda: dask()["bytes_shipped"])
    metrics.add_counter("dask_files", "Files sent to Dask (shipped or path-mapped) or analysed locally",
                        lambda: {(k,): dask()[f"files_{k}"] for k in ("shipped", "path_mapped", "local")},
                        labels=("route",))
    metrics.add_gauge("dask_connected", "1 when the Dask scheduler is reachable", lambda: int(dask()["connected"]))

    def per_worker(field: str) -> Any:
        return lambda: {(w["host"] or "?", str(w["pid"]), w["address"]): float(w[field] or 0)
                        for w in health()["workers"] if w.get("remote")}

    labels = ("host", "pid", "address")
    metrics.add_counter("dask_worker_tasks", "Files analysed per remote worker", per_worker("tasks_done"),
                        labels=labels)
    metrics.add_counter("dask_worker_failures", "Failed or crashed files per remote worker",
                        per_worker("failures"), labels=labels)
    metrics.add_gauge("dask_worker_rss_bytes", "Resident memory per remote worker (MB from Dask's heartbeat)",
                      lambda: {k: v * 2**20 for k, v in per_worker("rss_mb")().items()}, labels=labels)
    metrics.add_gauge("dask_worker_busy", "1 while a remote worker analyses a file", per_worker("busy"),
                      labels=labels)


class ExecutorViews:
    """The executor protocol's views of :class:`~.executor.DaskAnalysisExecutor` (a mixin: its
    state lives there)."""

    _lock: Any
    _local: Any

    def health(self) -> dict:
        with self._lock:
            self._apply_events()   # type: ignore[attr-defined]
            return executor_health(self)   # type: ignore[arg-type]

    def worker_processes(self) -> list[tuple[int, int]]:
        """The local fallback's worker processes, while it runs."""
        local = self._local
        return local.worker_processes() if local is not None else []

    def remote_processes(self) -> list[dict]:
        return processes(self)

    def add_probes(self, metrics: Any, health: Callable[[], dict]) -> None:
        register_probes(metrics, health)
