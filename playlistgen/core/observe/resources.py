"""Resource usage of the daemon and its analysis workers (psutil): CPU, RSS, threads, open files,
free disk for the database and each library folder."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from cachetools import TTLCache

log = logging.getLogger(__name__)
MB = 2**20
GB = 2**30
# /metrics and /api/v1/performance/metrics reuse the process list this long: each listing reads
# several /proc files per process, a quarter of the server's time under bench/load_compare.py.
PROCESSES_TTL_S = 1.0


class ResourceMonitor:
    """Keeps the psutil.Process objects and the last CPU reading per pid, so CPU percentages are
    measured between two calls (the first call reports the average since the process started)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, tuple[float, float, float]] = {}  # pid → (create_time, cpu_s, wall)
        self._procs: dict[int, psutil.Process] = {}
        # id(daemon) → its latest process list without CPU figures
        self._recent: TTLCache = TTLCache(maxsize=4, ttl=PROCESSES_TTL_S, timer=time.monotonic)

    def process(self, pid: int) -> psutil.Process:
        """A psutil handle for ``pid``, kept between calls (building one reads /proc)."""
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():  # is_running also catches a reused pid
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def cpu_percent(self, proc: psutil.Process) -> float:
        """CPU use since the previous call for this pid (100 = one full core)."""
        times = proc.cpu_times()
        cpu_s = times.user + times.system
        now = time.time()
        created = proc.create_time()
        with self._lock:
            last = self._last.get(proc.pid)
            self._last[proc.pid] = (created, cpu_s, now)
        if last is None or last[0] != created or now - last[2] < 0.05:
            span = max(now - created, 1e-3)
            return round(cpu_s / span * 100, 1)
        return round((cpu_s - last[1]) / (now - last[2]) * 100, 1)

    def describe(self, pid: int, name: str, *, cpu: bool = True, slot: int | None = None) -> dict | None:
        try:
            proc = self.process(pid)
            with proc.oneshot():
                info: dict[str, Any] = {"name": name, "pid": pid, "slot": slot,
                                        "rss_mb": round(proc.memory_info().rss / MB, 1),
                                        "threads": proc.num_threads()}
                if cpu:
                    info["cpu_percent"] = self.cpu_percent(proc)
                    info["open_files"] = _count(proc.open_files)
                    info["fds"] = _count(proc.num_fds)
            return info
        except psutil.Error:   # the worker exited between listing and reading it
            return None

    def processes(self, daemon: Any = None, *, cpu: bool = False) -> list[dict]:
        """The daemon (this process) and each analysis worker process, with RSS (and CPU). Without
        ``cpu`` a list up to PROCESSES_TTL_S old is reused; with it (CPU use between two calls) never."""
        if cpu:
            return self._processes(daemon, cpu=True)
        with self._lock:
            recent = self._recent.get(id(daemon))
        if recent is None:
            recent = self._processes(daemon, cpu=False)
            with self._lock:
                self._recent[id(daemon)] = recent
        return [dict(p) for p in recent]   # copies: callers may add to them

    def _processes(self, daemon: Any, *, cpu: bool) -> list[dict]:
        out = [self.describe(os.getpid(), "daemon", cpu=cpu)]
        executor = daemon.executor if daemon is not None else None
        for pid, slot in executor.worker_processes() if executor is not None else []:
            out.append(self.describe(pid, f"worker-{slot}", cpu=cpu, slot=slot))
        with self._lock:  # forget pids that are gone
            alive = {p["pid"] for p in out if p}
            for pid in [p for p in self._procs if p not in alive]:
                self._procs.pop(pid, None)
                self._last.pop(pid, None)
        remote = executor.remote_processes() if executor is not None else []  # other machines
        return [p for p in out if p] + remote

    def usage(self, settings: Any, db_path: Path, daemon: Any = None) -> dict:
        """Everything /api/v1/performance/resource-usage shows."""
        procs = self.processes(daemon, cpu=True)
        vm = psutil.virtual_memory()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        disks = [disk_entry("database", db_path.parent, size_paths=[db_path, Path(f"{db_path}-wal")])]
        disks += [disk_entry("library", Path(p)) for p in settings.library.paths]
        return {
            "time": time.time(),
            "system": {"cpu_count": psutil.cpu_count(), "cpu_percent": psutil.cpu_percent(interval=None),
                       "load_avg": [round(x, 2) for x in os.getloadavg()],
                       "memory_total_mb": round(vm.total / MB), "memory_available_mb": round(vm.available / MB),
                       "memory_percent": vm.percent},
            "processes": procs,
            "totals": {"rss_mb": round(sum(p["rss_mb"] for p in procs if not p.get("remote")), 1),
                       "cpu_percent": round(sum(p.get("cpu_percent") or 0 for p in procs if not p.get("remote")), 1),
                       "processes": sum(1 for p in procs if not p.get("remote"))},
            "disk": disks,
            "open_files": {"daemon": procs[0].get("open_files") if procs else None,
                           "daemon_fds": procs[0].get("fds") if procs else None,
                           "limit_soft": soft, "limit_hard": hard},
        }


def _count(fn: Any) -> int | None:
    try:
        value = fn()
    except (psutil.Error, OSError):
        return None
    return value if isinstance(value, int) else len(value)


def disk_entry(what: str, path: Path, size_paths: list[Path] | None = None) -> dict:
    entry: dict[str, Any] = {"what": what, "path": str(path)}
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        entry["error"] = exc.strerror or str(exc)
        return entry
    entry.update(free_gb=round(usage.free / GB, 2), total_gb=round(usage.total / GB, 2),
                 used_percent=round((usage.total - usage.free) / usage.total * 100, 1) if usage.total else None)
    if size_paths:
        entry["files_mb"] = round(sum(p.stat().st_size for p in size_paths if p.exists()) / MB, 2)
    return entry
