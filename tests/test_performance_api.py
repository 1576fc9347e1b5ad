"""/api/v1/performance/*, /metrics and /api/v1/library/overview on create_app with a real
Database (no daemon), and the optimization report reacting to forced conditions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from playlistgen.config import Settings
from playlistgen.core.observe.advisor import Inputs, build_report
from playlistgen.core.observe.metrics import Metrics, register_probes
from playlistgen.core.storage.cache import FeatureCache
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.records import get_track_features
from tests.feature_data import populate

N_TRACKS = 40


@pytest.fixture
def env(tmp_path: Path, make_app) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    settings = Settings()
    settings.library.paths = [str(tmp_path)]
    metrics = Metrics.from_settings(settings)
    db = Database(tmp_path / "perf.db", pool_min=1, pool_max=4, on_batch=metrics.observe_write_batch)
    cache = FeatureCache.from_settings(settings)
    register_probes(metrics, db=db, cache=cache)
    ids = populate(db, N_TRACKS)
    app = make_app(settings, db, metrics=metrics, cache=cache)
    yield {"client": app.api.test_client(), "db": db, "ids": ids, "cache": cache, "settings": settings,
           "metrics": metrics, "services": app.services}
    db.close()


def get(client, url: str, status: int = 200) -> dict:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    r = client.get(url)
    elapsed = time.perf_counter() - started
    assert r.status_code == status, r.data
    # the server's own timing of this request: positive and within what the client measured
    assert 0 < float(r.headers["X-Process-Time"]) <= elapsed
    return r.get_json()


def test_endpoint_shapes_and_values_change_after_work(env: dict) -> None:
    client, db, ids, cache = env["client"], env["db"], env["ids"], env["cache"]
    stats = get(client, "/api/v1/performance/cache/stats")
    assert stats["lookups"] == 0 and stats["compression"] == "lz4" and stats["max_bytes"] == 64 * 2**20
    pool = get(client, "/api/v1/performance/database/pool")
    assert {"in_use", "idle", "waits", "wait_ratio", "busy_retries", "pool_max", "writer"} <= set(pool)
    assert pool["writer"]["jobs"] >= N_TRACKS and pool["writer"]["avg_batch_jobs"] >= 1
    usage = get(client, "/api/v1/performance/resource-usage")
    assert usage["processes"][0]["name"] == "daemon" and usage["processes"][0]["rss_mb"] > 10
    assert {d["what"] for d in usage["disk"]} == {"database", "library"} and usage["disk"][0]["free_gb"] > 0
    assert usage["open_files"]["limit_soft"] > 0 and usage["system"]["cpu_count"] >= 1
    get(client, "/api/v1/performance/async-processor/health", 503)   # no daemon in this process

    # work: feature reads through the cache, twice for the same tracks
    for tid in ids[:10] * 2:
        get_track_features(db, cache, tid)
    stats = get(client, "/api/v1/performance/cache/stats")
    assert (stats["hits"], stats["misses"], stats["entries"]) == (10, 10, 10) and stats["hit_rate"] == 0.5
    assert get(client, "/api/v1/performance/database/pool")["checkouts"] > pool["checkouts"]

    metrics = get(client, "/api/v1/performance/metrics")
    assert {"operations", "http", "counters", "gauges", "memory", "throughput", "realtime_factor"} <= set(metrics)
    route = metrics["http"]["GET /api/v1/performance/cache/stats"]
    assert route["count"] == 2 and {"avg_s", "min_s", "max_s", "p50_s", "p95_s"} <= set(route)
    assert metrics["operations"]["db_write_batch"]["count"] >= 1
    assert metrics["counters"]["cache_hits"] == 10 and metrics["gauges"]["cache_entries"] == 10
    assert metrics["memory"]["rss_mb"] > 10 and metrics["memory"]["processes"][0]["name"] == "daemon"

    cleared = client.delete("/api/v1/performance/cache").get_json()
    assert cleared["cleared_entries"] == 10 and cleared["stats"]["entries"] == 0


def test_prometheus_metrics_parse(env: dict) -> None:
    client = env["client"]
    for tid in env["ids"][:5]:
        get_track_features(env["db"], env["cache"], tid)
    get(client, "/api/v1/library/overview")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    samples = {s.name: s for f in text_string_to_metric_families(r.data.decode()) for s in f.samples}
    assert samples["playlistgen_cache_misses_total"].value == 6     # 5 tracks + the overview
    assert samples["playlistgen_cache_entries"].value == 6
    assert samples["playlistgen_db_pool_open"].value >= 1
    assert samples["playlistgen_process_resident_memory_bytes"].value > 0
    assert "playlistgen_http_request_seconds_count" in samples
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text") and om.data.endswith(b"# EOF\n")


def test_library_overview(env: dict) -> None:
    body = get(env["client"], "/api/v1/library/overview")
    assert get(env["client"], "/api/v1/library/overview") == body
    assert env["cache"].stats()["hits"] == 1        # the second ask came from the cache
    populate(env["db"], 1, start=N_TRACKS)           # a new track changes the key: recomputed
    assert get(env["client"], "/api/v1/library/overview")["tracks"] == N_TRACKS + 1
    assert env["cache"].stats()["misses"] == 2
    assert body["tracks"] == N_TRACKS and body["tracks_with_tags"] == N_TRACKS
    assert sum(b["count"] for b in body["bpm_histogram"]["bins"]) == N_TRACKS
    assert len(body["keys"]) == 24 and sum(k["count"] for k in body["keys"]) == N_TRACKS
    by_code = {k["camelot"]: k for k in body["keys"]}
    assert by_code["8A"]["key"] == "A" and by_code["8B"]["key"] == "C" and by_code["8A"]["count"] == 7
    assert body["top_tags"] and sum(t["tracks"] for t in body["top_tags"]) <= N_TRACKS * 3
    assert sum(b["count"] for b in body["energy_histogram"]) == N_TRACKS
    assert {g["genre"] for g in body["genres"]} == {"jazz", "rock", "ambient"}


def recommended(report: dict) -> dict[str, dict]:
    return {r["config_key"]: r for r in report["recommendations"]}


def test_report_names_cache_size_when_the_cache_is_too_small(env: dict) -> None:
    client, db, ids = env["client"], env["db"], env["ids"]
    env["cache"].clear()
    small = FeatureCache(0, 3600, "lz4", max_bytes=8 * 1024)   # holds ~3 of the 40 records
    env["services"].cache = small
    for _ in range(3):
        for tid in ids:
            get_track_features(db, small, tid)
    report = get(client, "/api/v1/performance/optimization-report")
    rec = recommended(report)["cache.size_mb"]
    assert rec["current"] == env["settings"].cache.size_mb and rec["suggested"] > rec["current"]
    assert "evicted" in rec["reason"] and f"{report['summary']['cache_hit_rate']:.0%}"[:-1] in rec["reason"]
    assert report["summary"]["cache_hit_rate"] < 0.2

    big = FeatureCache(64, 3600, "lz4")                       # now the working set fits
    env["services"].cache = big
    for _ in range(3):
        for tid in ids:
            get_track_features(db, big, tid)
    report = get(client, "/api/v1/performance/optimization-report")
    assert "cache.size_mb" not in recommended(report)
    assert next(c for c in report["checks"] if c["area"] == "cache")["status"] == "ok"
    assert report["summary"]["cache_hit_rate"] == pytest.approx(2 / 3, abs=1e-3)


def test_report_names_pool_max_when_readers_wait(tmp_path: Path, make_app) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    settings.library.paths = [str(tmp_path)]
    settings.database.pool_max = 1
    db = Database(tmp_path / "pool.db", pool_min=1, pool_max=1)
    try:
        app = make_app(settings, db, metrics=Metrics()).api
        hold = threading.Event()

        def holder() -> None:
            with db.readers.connection():
                hold.wait(5)

        def reader() -> None:
            db.query("SELECT 1")

        for _ in range(4):   # each round: one thread holds the only connection, three wait for it
            threads = [threading.Thread(target=holder)] + [threading.Thread(target=reader) for _ in range(3)]
            threads[0].start()
            time.sleep(0.02)
            for t in threads[1:]:
                t.start()
            time.sleep(0.05)
            hold.set()
            for t in threads:
                t.join()
            hold.clear()
        for _ in range(10):
            db.query("SELECT 1")
        report = app.test_client().get("/api/v1/performance/optimization-report").get_json()
        rec = recommended(report)["database.pool_max"]
        assert rec["current"] == 1 and rec["suggested"] >= 3 and rec["severity"] == "warning"
        assert report["summary"]["pool_wait_ratio"] > 0.05
    finally:
        db.close()


def forced(settings: Settings, **kw: object) -> dict:
    base = {"settings": settings, "system": {"cpu_count": 8, "cpu_percent": 20.0, "memory_total_mb": 16000,
                                             "memory_available_mb": 12000}}
    return build_report(Inputs(**{**base, **kw}))  # type: ignore[arg-type]


def executor(size: int = 2, **restarts: int) -> dict:
    return {"size": size, "alive": size, "restarts": {"total": sum(restarts.values()), **restarts}}


def test_report_rules_react_to_forced_numbers() -> None:
    s = Settings()
    s.analysis.workers, s.analysis.max_memory_mb = 2, 1000
    calm = forced(s, executor=executor(), pending=0, utilisation=0.1,
                  processes=[{"name": "worker-0", "rss_mb": 300.0}])
    assert calm["recommendations"] == []
    assert {c["area"] for c in calm["checks"]} >= {"cache", "analysis workers", "memory", "analysis speed"}

    busy = forced(s, executor=executor(), pending=5000, utilisation=0.97)
    rec = recommended(busy)["analysis.workers"]
    assert rec["current"] == 2 and 2 < rec["suggested"] <= 8 and "5000 files" in rec["reason"]

    hot = forced(s, executor=executor(memory=3), processes=[{"name": "worker-0", "rss_mb": 960.0}])
    rec = recommended(hot)["analysis.max_memory_mb"]
    assert rec["suggested"] > 1000 and "960.0 MB" in rec["reason"] and "3 replaced" in rec["reason"]
    tight = forced(s, executor=executor(), processes=[{"name": "worker-0", "rss_mb": 990.0}],
                   system={"cpu_count": 2, "memory_total_mb": 4000, "memory_available_mb": 300})
    assert recommended(tight)["analysis.workers"]["suggested"] == 1

    s.analysis.max_memory_mb = 4000
    overcommit = forced(s, executor=executor(size=8))
    assert recommended(overcommit)["analysis.max_memory_mb"]["suggested"] == 1600

    s.analysis.max_memory_mb = 1000
    slow = forced(s, executor=executor(), pending=100_000,
                  realtime={"balanced": {"files": 10, "audio_s": 2400, "wall_s": 60.0, "realtime_factor": 40.0,
                                         "cpu_s_per_audio_min": 1.4}})
    rec = recommended(slow)["analysis.preset"]
    assert rec["suggested"] == "fast" and "100000 waiting files" in rec["reason"]

    pool = {"checkouts": 100, "waits": 2, "in_use": 0, "pool_max": 8, "timeouts": 0, "busy_retries": 3,
            "avg_wait_ms": 1.0, "writer": {"busy_retries": 1, "queue_depth": 900, "jobs": 10, "batches": 2}}
    recs = recommended(forced(s, pool=pool))
    assert "database.pool_max" not in recs and recs["database.busy_timeout_ms"]["evidence"]["busy_retries"] == 4
    assert recs["database.batch_size"]["suggested"] == 128


def test_dashboard_page_is_served_without_the_key_but_holds_no_data(tmp_path: Path, make_app) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    settings.library.paths = [str(tmp_path / "secret-music")]
    settings.api.key = "s3cret"
    db = Database(tmp_path / "key.db")
    try:
        client = make_app(settings, db, metrics=Metrics()).api.test_client()
        page = client.get("/dashboard")
        assert page.status_code == 200 and b"secret-music" not in page.data and b"keyform" in page.data
        for asset in ("dashboard.js", "builder.js", "charts.js", "dashboard.css"):
            assert client.get(f"/dashboard/static/{asset}").status_code == 200
        for traversal in ("/dashboard/static/../../health", "/dashboard/static/..%2f..%2fconfig.py",
                          "/dashboard/static/%2e%2e/templates/dashboard.html", "/dashboard/static/..%2f__init__.py"):
            r = client.get(traversal)
            assert r.status_code == 404 and b"import" not in r.data and b"<html" not in r.data, traversal
        assert client.get("/api/v1/performance/metrics").status_code == 401
        assert client.get("/api/v1/library/overview").status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/v1/performance/metrics", headers={"X-API-Key": "s3cret"}).status_code == 200
    finally:
        db.close()
