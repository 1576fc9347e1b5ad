"""Operator endpoints: /api/v1/performance/* and Prometheus /metrics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from ..core.observe.advisor import Inputs, build_report
from ..errors import PlaylistgenError
from .context import current_services

bp = Blueprint("performance", __name__)
PREFIX = "/api/v1/performance"
UTILISATION_WINDOW_S = 300.0


class UnavailableError(PlaylistgenError):
    code = "unavailable"
    status = 503


def _services():  # type: ignore[no-untyped-def]
    return current_services()


def _metrics():  # type: ignore[no-untyped-def]
    metrics = getattr(_services(), "metrics", None)
    if metrics is None:
        raise UnavailableError("metrics are not collected in this process",
                               hint="build Services with metrics=Metrics(...) (playlistgen serve does)")
    return metrics


def _cache():  # type: ignore[no-untyped-def]
    cache = getattr(_services(), "cache", None)
    if cache is None:
        raise UnavailableError("this process has no feature cache",
                               hint="build Services with cache=FeatureCache(...) (playlistgen serve does)")
    return cache


def utilisation(metrics, executor_health: dict | None) -> float | None:  # type: ignore[no-untyped-def]
    """Fraction of worker time spent analysing over the last few minutes (finished files only)."""
    if not executor_health or not executor_health["size"]:
        return None
    window = min(UTILISATION_WINDOW_S, max(time.time() - metrics.started_at, 1.0))
    busy = metrics.busy_seconds("analysis", time.time() - window)
    return round(min(busy / (executor_health["size"] * window), 1.0), 4)


@bp.get(f"{PREFIX}/metrics")
def metrics_json():  # type: ignore[no-untyped-def]
    metrics = _metrics()
    body = metrics.snapshot()
    daemon = _services().daemon
    body["memory"]["processes"] = metrics.resources.processes(daemon)
    return jsonify(body)


@bp.get("/metrics")
def prometheus():  # type: ignore[no-untyped-def]
    from prometheus_client.exposition import choose_encoder

    # text format by default; OpenMetrics for scrapers that ask for it in Accept
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(_metrics().registry()))
    response.headers["Content-Type"] = content_type
    return response


@bp.get(f"{PREFIX}/cache/stats")
def cache_stats():  # type: ignore[no-untyped-def]
    return jsonify(_cache().stats())


@bp.delete(f"{PREFIX}/cache")
def cache_clear():  # type: ignore[no-untyped-def]
    cache = _cache()
    cleared = cache.clear()
    return jsonify({**cleared, "stats": cache.stats()})


@bp.get(f"{PREFIX}/resource-usage")
def resource_usage():  # type: ignore[no-untyped-def]
    services = _services()
    return jsonify(_metrics().resources.usage(services.settings, services.db.path, services.daemon))


@bp.get(f"{PREFIX}/database/pool")
def database_pool():  # type: ignore[no-untyped-def]
    db = _services().db
    stats = db.pool_stats()
    stats["wait_ratio"] = round(stats["waits"] / stats["checkouts"], 4) if stats["checkouts"] else 0.0
    stats["utilisation"] = round(stats["in_use"] / stats["pool_max"], 4) if stats["pool_max"] else 0.0
    writer = stats["writer"]
    writer["avg_batch_jobs"] = round(writer["jobs"] / writer["batches"], 2) if writer["batches"] else None
    writer["avg_commit_ms"] = round(writer["commit_s"] / writer["batches"] * 1000, 3) if writer["batches"] else None
    stats["path"] = str(db.path)
    return jsonify(stats)


@bp.get(f"{PREFIX}/async-processor/health")
def async_health():  # type: ignore[no-untyped-def]
    daemon = _services().daemon
    if daemon is None:
        raise UnavailableError("the analysis daemon is not running in this process",
                               hint="start it with `playlistgen serve`")
    snapshot = daemon.status()
    executor = snapshot.executor
    metrics = getattr(_services(), "metrics", None)
    body = {"ready": executor["state"] == "running" and not executor["fatal_error"],
            "executor": executor, "queue": snapshot.queue,
            "utilisation": utilisation(metrics, executor) if metrics else None}
    return jsonify(body), 200 if body["ready"] else 503


@bp.get(f"{PREFIX}/optimization-report")
def optimization_report():  # type: ignore[no-untyped-def]
    services = _services()
    metrics = _metrics()
    daemon = services.daemon
    usage = metrics.resources.usage(services.settings, services.db.path, daemon)
    snapshot = daemon.status() if daemon is not None else None
    executor = snapshot.executor if snapshot is not None else None
    cache = getattr(services, "cache", None)
    inputs = Inputs(settings=services.settings, cache=cache.stats() if cache is not None else None,
                    pool=services.db.pool_stats(), timers=metrics.timers("op"), http=metrics.timers("http"),
                    realtime=metrics.realtime_factor(), executor=executor,
                    pending=snapshot.pending if snapshot is not None else None,
                    utilisation=utilisation(metrics, executor), system=usage["system"],
                    processes=usage["processes"])
    return jsonify(build_report(inputs))
