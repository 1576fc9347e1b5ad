"""The optimization report: recommendations computed from live numbers.

Pure functions over plain dicts (cache stats, pool stats, timers, executor health, system
numbers), so every rule can be tested by forcing the numbers. Each recommendation names the
config key to change, its current value, a suggested value, and the measurements behind it; each
area also gets a ``check`` line that says what was measured even when nothing needs changing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

MIN_CACHE_LOOKUPS = 50        # below this a hit rate means nothing
LOW_HIT_RATE = 0.80
MIN_CHECKOUTS = 20
HIGH_WAIT_RATIO = 0.05
HIGH_UTILISATION = 0.85
CPU_HEADROOM_PERCENT = 60.0
MEMORY_NEAR_LIMIT = 0.90      # worker RSS above this fraction of analysis.max_memory_mb
LONG_QUEUE_H = 24.0
WRITER_BACKLOG = 256
MB = 1024 * 1024


@dataclass
class Inputs:
    settings: Any
    cache: dict | None = None                 # FeatureCache.stats()
    pool: dict | None = None                  # Database.pool_stats()
    timers: dict = field(default_factory=dict)        # Metrics.timers("op")
    http: dict = field(default_factory=dict)          # Metrics.timers("http")
    realtime: dict = field(default_factory=dict)      # Metrics.realtime_factor()
    executor: dict | None = None              # AnalysisExecutor.health()
    pending: int | None = None                # files waiting for analysis
    utilisation: float | None = None          # busy fraction of the workers, recent window
    system: dict = field(default_factory=dict)        # cpu_count, cpu_percent, memory_*_mb
    processes: list = field(default_factory=list)     # ResourceMonitor.processes()


@dataclass
class Report:
    recommendations: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)

    def recommend(self, key: str, current: Any, suggested: Any, severity: str, reason: str, **evidence: Any) -> None:
        self.recommendations.append({"config_key": key, "current": current, "suggested": suggested,
                                     "severity": severity, "reason": reason, "evidence": evidence})

    def check(self, area: str, status: str, detail: str) -> None:
        self.checks.append({"area": area, "status": status, "detail": detail})


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def check_cache(r: Report, s: Any, cache: dict | None) -> None:
    if cache is None:
        r.check("cache", "unavailable", "no feature cache in this process")
        return
    lookups, hit_rate = cache["lookups"], cache["hit_rate"]
    if not cache["enabled"]:
        if lookups >= MIN_CACHE_LOOKUPS:
            r.recommend("cache.size_mb", s.cache.size_mb, 64, "warning",
                        f"the feature cache is off (size_mb 0) and served {lookups} reads from the database",
                        lookups=lookups)
        r.check("cache", "off", f"cache.size_mb is 0; {lookups} lookups went to the database")
        return
    if lookups < MIN_CACHE_LOOKUPS:
        r.check("cache", "insufficient_data", f"{lookups} lookups so far (need {MIN_CACHE_LOOKUPS} to judge)")
        return
    detail = (f"hit rate {_pct(hit_rate)} over {lookups} lookups; {cache['entries']} entries, "
              f"{cache['size_bytes'] / MB:.2f} of {cache['max_bytes'] / MB:.2f} MB; "
              f"{cache['evictions']} evicted, {cache['expirations']} expired")
    if hit_rate >= LOW_HIT_RATE or not (cache["evictions"] or cache["expirations"]):
        # nothing was evicted or expired: the misses are first reads, which no setting avoids
        r.check("cache", "ok", detail + ("" if hit_rate >= LOW_HIT_RATE else " (misses are first reads)"))
        return
    r.check("cache", "warning", detail)
    full = cache["fill_ratio"] >= 0.9 or cache["evictions"] > 0
    if full and cache["evictions"] >= cache["expirations"]:
        # the entries displaced plus the ones held approximate the working set
        entry = cache["avg_entry_bytes"] or (cache["size_bytes"] / max(cache["entries"], 1))
        needed_mb = entry * (cache["entries"] + cache["evictions"]) * 1.25 / MB
        suggested = max(s.cache.size_mb * 2, math.ceil(needed_mb))
        r.recommend("cache.size_mb", s.cache.size_mb, suggested, "warning",
                    f"hit rate is {_pct(hit_rate)} and {cache['evictions']} entries were evicted because the "
                    f"cache is full ({cache['size_bytes'] / MB:.2f} of {cache['max_bytes'] / MB:.2f} MB); "
                    f"the working set seen so far needs about {needed_mb:.1f} MB",
                    hit_rate=hit_rate, evictions=cache["evictions"], fill_ratio=cache["fill_ratio"])
        if cache["compression"] == "none":
            r.recommend("cache.compression", "none", "lz4", "info",
                        f"entries are stored uncompressed; compression would fit more of the "
                        f"{cache['entries'] + cache['evictions']} entries in the same {s.cache.size_mb} MB")
    elif cache["expirations"] > 0:
        r.recommend("cache.ttl_s", s.cache.ttl_s, s.cache.ttl_s * 4, "info",
                    f"hit rate is {_pct(hit_rate)} and {cache['expirations']} entries expired (ttl "
                    f"{s.cache.ttl_s} s) while only {cache['evictions']} were evicted for space",
                    hit_rate=hit_rate, expirations=cache["expirations"])


def check_pool(r: Report, s: Any, pool: dict | None) -> dict:
    if pool is None:
        return {}
    checkouts, waits = pool["checkouts"], pool["waits"]
    ratio = waits / checkouts if checkouts else 0.0
    summary = {"pool_wait_ratio": round(ratio, 4), "avg_wait_ms": round(pool.get("avg_wait_ms", 0.0), 2)}
    detail = (f"{waits} of {checkouts} checkouts waited ({_pct(ratio)}), avg wait {summary['avg_wait_ms']} ms, "
              f"{pool['in_use']} of {pool['pool_max']} in use, {pool['timeouts']} timeouts")
    if pool["timeouts"] or (checkouts >= MIN_CHECKOUTS and ratio > HIGH_WAIT_RATIO):
        suggested = min(256, max(pool["pool_max"] + 2, math.ceil(pool["pool_max"] * 1.5)))
        r.recommend("database.pool_max", s.database.pool_max, suggested,
                    "critical" if pool["timeouts"] else "warning",
                    f"{_pct(ratio)} of {checkouts} read checkouts waited for a free connection "
                    f"(avg {summary['avg_wait_ms']} ms) and {pool['timeouts']} timed out",
                    wait_ratio=round(ratio, 4), timeouts=pool["timeouts"])
        r.check("database pool", "warning", detail)
    else:
        r.check("database pool", "ok" if checkouts >= MIN_CHECKOUTS else "insufficient_data", detail)
    writer = pool.get("writer") or {}
    busy = pool.get("busy_retries", 0) + writer.get("busy_retries", 0)
    if busy:
        r.recommend("database.busy_timeout_ms", s.database.busy_timeout_ms, s.database.busy_timeout_ms * 2,
                    "warning", f"{busy} SQLite busy errors escaped the {s.database.busy_timeout_ms} ms busy timeout "
                    "and had to be retried", busy_retries=busy)
    if writer.get("queue_depth", 0) >= WRITER_BACKLOG:
        r.recommend("database.batch_size", s.database.batch_size, min(10000, s.database.batch_size * 2), "info",
                    f"{writer['queue_depth']} writes are waiting for the writer thread; larger batches mean "
                    f"fewer commits ({writer.get('batches', 0)} batches for {writer.get('jobs', 0)} jobs so far)",
                    queue_depth=writer["queue_depth"])
    return summary


def check_workers(r: Report, s: Any, i: Inputs) -> None:
    ex, pending, util = i.executor, i.pending or 0, i.utilisation
    if ex is None:
        r.check("analysis workers", "unavailable", "no analysis daemon in this process")
        return
    cores = i.system.get("cpu_count") or 1
    cpu = i.system.get("cpu_percent")
    workers = ex["size"]
    detail = (f"{ex['alive']} of {workers} workers alive, utilisation "
              f"{_pct(util) if util is not None else 'unknown'}, {pending} files waiting, "
              f"system CPU {cpu if cpu is not None else '?'}% on {cores} cores")
    status = "ok"
    room = workers < cores and (cpu or 0) < CPU_HEADROOM_PERCENT
    if pending and util is not None and util >= HIGH_UTILISATION and room:
        status = "warning"
        r.recommend("analysis.workers", s.analysis.workers, min(cores, workers + max(1, (cores - workers) // 2)),
                    "info", f"{pending} files are waiting, the {workers} workers are busy {_pct(util)} of the time "
                    f"and the machine's CPU is only {cpu}% used ({cores} cores)",
                    utilisation=util, cpu_percent=cpu, pending=pending)
    if cpu is not None and cpu >= 95 and workers > cores:
        status = "warning"
        r.recommend("analysis.workers", s.analysis.workers, cores, "warning",
                    f"{workers} workers share {cores} cores and CPU is at {cpu}%: extra workers only add "
                    "memory and context switches", cpu_percent=cpu)
    restarts = ex.get("restarts") or {}
    if restarts.get("timeout"):
        status = "warning"
        r.recommend("analysis.timeout_s", s.analysis.timeout_s, s.analysis.timeout_s * 2, "info",
                    f"{restarts['timeout']} files hit the {s.analysis.timeout_s:g} s time limit (long files on a "
                    "slow machine need more)", timeouts=restarts["timeout"])
    r.check("analysis workers", status, detail)


def check_speed(r: Report, s: Any, i: Inputs) -> None:
    preset = s.analysis.preset
    info = i.realtime.get(preset) or {}
    rtf, pending = info.get("realtime_factor"), i.pending or 0
    workers = (i.executor or {}).get("size") or 1
    if not rtf or not info.get("files"):
        r.check("analysis speed", "insufficient_data", f"no file analysed with preset {preset} yet")
        return
    wall_per_file = info["wall_s"] / info["files"]
    hours_left = pending * wall_per_file / workers / 3600
    detail = (f"preset {preset}: {rtf}x realtime per worker, {wall_per_file:.2f} s per file, "
              f"{info['cpu_s_per_audio_min']} CPU s per audio minute; {pending} files ≈ {hours_left:.1f} h "
              f"with {workers} workers")
    if hours_left > LONG_QUEUE_H and preset != "fast":
        r.recommend("analysis.preset", preset, "fast", "info",
                    f"the {pending} waiting files need about {hours_left:.0f} h at {rtf}x realtime per worker; "
                    "preset fast skips the ML models (no tags/embedding) to finish sooner",
                    realtime_factor=rtf, hours_left=round(hours_left, 1))
        r.check("analysis speed", "warning", detail)
    else:
        r.check("analysis speed", "ok", detail)


def check_memory(r: Report, s: Any, i: Inputs) -> dict:
    limit = s.analysis.max_memory_mb
    total, available = i.system.get("memory_total_mb"), i.system.get("memory_available_mb")
    workers = [p for p in i.processes if p.get("name", "").startswith("worker")]
    max_rss = max((p["rss_mb"] for p in workers), default=None)
    summary = {"memory_available_mb": available, "worker_max_rss_mb": max_rss,
               "worker_headroom_mb": round(limit - max_rss, 1) if max_rss is not None else None}
    memory_restarts = ((i.executor or {}).get("restarts") or {}).get("memory", 0)
    count = (i.executor or {}).get("size") or len(workers)
    detail = (f"largest worker {max_rss if max_rss is not None else '?'} MB of the {limit} MB limit, "
              f"{memory_restarts} memory restarts, {available if available is not None else '?'} MB of "
              f"{total if total is not None else '?'} MB free")
    status = "ok"
    if total and count * limit > total:
        status = "warning"
        r.recommend("analysis.max_memory_mb", limit, max(64, int(total * 0.8 / count)), "warning",
                    f"{count} workers × {limit} MB limit = {count * limit} MB, more than the machine's {total} MB: "
                    "the limit cannot protect the system", total_mb=total, workers=count)
    if (max_rss is not None and max_rss > MEMORY_NEAR_LIMIT * limit) or memory_restarts:
        status = "warning"
        wanted = math.ceil(max(max_rss or limit, limit) * 1.3)
        extra = (wanted - limit) * count
        if available is None or available > extra * 1.5:
            r.recommend("analysis.max_memory_mb", limit, wanted, "warning",
                        f"workers reach {max_rss} MB of the {limit} MB limit ({memory_restarts} replaced for memory); "
                        f"{available} MB free covers {count} workers at {wanted} MB",
                        worker_max_rss_mb=max_rss, memory_restarts=memory_restarts)
        else:
            r.recommend("analysis.workers", s.analysis.workers, max(1, count - 1), "warning",
                        f"workers reach {max_rss} MB of the {limit} MB limit and only {available} MB is free: "
                        "fewer workers leave room for each", worker_max_rss_mb=max_rss)
    if total and available is not None and available < 0.1 * total:
        status = "warning"
        r.recommend("analysis.workers", s.analysis.workers, max(1, count - 1), "critical",
                    f"only {available} MB of {total} MB is free", memory_available_mb=available)
    r.check("memory", status, detail)
    return summary


def slowest(timers: dict, http: dict, n: int = 5) -> list[dict]:
    rows = [{"name": name, "kind": kind, "p95_s": t["p95_s"], "avg_s": t["avg_s"], "count": t["count"]}
            for kind, group in (("operation", timers), ("http", http)) for name, t in group.items()
            if t.get("p95_s") is not None]
    return sorted(rows, key=lambda x: x["p95_s"], reverse=True)[:n]


def build_report(i: Inputs) -> dict:
    s = i.settings
    r = Report()
    check_cache(r, s, i.cache)
    pool_summary = check_pool(r, s, i.pool)
    check_workers(r, s, i)
    check_speed(r, s, i)
    memory_summary = check_memory(r, s, i)
    order = {"critical": 0, "warning": 1, "info": 2}
    recs = sorted(r.recommendations, key=lambda x: order[x["severity"]])
    return {
        "generated_at": time.time(),
        "summary": {
            "cache_hit_rate": (i.cache or {}).get("hit_rate"),
            **pool_summary,
            "worker_utilisation": round(i.utilisation, 4) if i.utilisation is not None else None,
            "pending": i.pending,
            "realtime_factor": {k: v["realtime_factor"] for k, v in i.realtime.items()},
            **memory_summary,
            "slowest_operations": slowest(i.timers, i.http),
        },
        "recommendations": recs,
        "checks": r.checks,
    }
