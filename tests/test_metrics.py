"""Metrics: percentile math, bounded timers, analysis outcomes, throughput buckets, probes,
Prometheus exposition (parsed back with prometheus_client's own parser), tracemalloc."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.observe import resources
from playlistgen.core.observe.metrics import Metrics, Timer, percentile
from tests.feature_data import fake_result


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("n", [1, 2, 5, 10, 101, 1000])
def test_percentile_matches_numpy_linear(n: int) -> None:
    values = sorted(np.random.default_rng(n).exponential(size=n).tolist())
    for q in (0, 5, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_timer_window_is_bounded_but_totals_are_lifetime() -> None:
    timer = Timer(window=100)
    for i in range(1, 1001):
        timer.observe(i / 1000, now=float(i))
    snap = timer.snapshot()
    assert snap["count"] == 1000 and snap["window"] == 100
    assert snap["total_s"] == pytest.approx(sum(i / 1000 for i in range(1, 1001)))
    # window = the last 100 samples: 0.901 .. 1.000
    assert snap["min_s"] == pytest.approx(0.901) and snap["max_s"] == pytest.approx(1.0)
    assert snap["p50_s"] == pytest.approx(float(np.percentile(np.arange(901, 1001) / 1000, 50)))
    assert snap["p95_s"] == pytest.approx(float(np.percentile(np.arange(901, 1001) / 1000, 95)))
    assert snap["avg_s"] == pytest.approx(0.9505)
    assert timer.sum_since(991.0) == pytest.approx(sum(i / 1000 for i in range(991, 1001)))


def test_record_analysis_counts_stages_presets_and_throughput() -> None:
    clock = Clock()
    m = Metrics(clock=clock, bucket_s=60, buckets=5)
    for i in range(3):
        m.record_analysis(AnalysisResult.from_dict(fake_result(i, preset="fast")), None, bytes_read=1000)
    clock.t += 60
    m.record_analysis(None, "decode error after 1.0 s")
    counters = m.counters()
    assert counters["files_analysed"] == 3 and counters["files_failed"] == 1
    assert counters["bytes_decoded"] == 3000
    assert counters["audio_seconds"] == pytest.approx(sum(fake_result(i)["duration_s"] for i in range(3)))
    ops = m.timers("op")
    assert {"decode", "dsp", "ml", "analysis"} <= set(ops)
    assert ops["decode"]["count"] == 3 and ops["decode"]["p50_s"] == pytest.approx(0.05)
    rtf = m.realtime_factor()["fast"]
    assert rtf["files"] == 3 and rtf["realtime_factor"] == pytest.approx(counters["audio_seconds"] / 2.1, rel=1e-2)
    points = m.throughput()["points"]
    assert len(points) == 5
    assert [p["analysed"] for p in points[-2:]] == [3, 0] and points[-1]["failed"] == 1
    clock.t += 60 * 10  # old buckets fall out of the window
    assert sum(p["analysed"] + p["failed"] for p in m.throughput()["points"]) == 0


def test_slow_operations_are_logged_with_their_parameters(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(slow_ms=100)
    with caplog.at_level(logging.WARNING, logger="playlistgen.core.observe.metrics"):
        m.observe("playlist_build", 0.05, strategy="radio")
        m.observe("playlist_build", 0.25, strategy="path", seeds=2)
        m.observe("analysis", 30.0, log_slow=False)
    slow = [r.getMessage() for r in caplog.records]
    assert len(slow) == 1 and "playlist_build" in slow[0] and "'strategy': 'path'" in slow[0]
    with m.time("reconcile", trigger="test"):
        pass
    assert m.timers("op")["reconcile"]["count"] == 1


def test_probes_and_prometheus_exposition_parse() -> None:
    m = Metrics()
    waiting = {"n": 7}
    m.add_gauge("queue_depth", "files waiting", lambda: waiting["n"])
    m.add_counter("cache_hits", "hits", lambda: 41)
    m.add_gauge("rss_bytes", "rss", lambda: {("daemon", "1"): 100.0, ("worker-0", "2"): 50.0},
                labels=("process", "pid"))
    m.add_gauge("broken", "raises", lambda: 1 / 0)  # a failing probe must not break the scrape
    m.record_analysis(AnalysisResult.from_dict(fake_result(1)), None, bytes_read=10)
    m.observe_http("GET", "/api/v1/tracks/<int:track_id>", 200, 0.01)
    m.observe_http("GET", "/api/v1/tracks/<int:track_id>", 404, 0.03)
    text = generate_latest(m.registry()).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("playlistgen_files_analysed_total", ())] == 1
    assert samples[("playlistgen_queue_depth", ())] == 7
    assert samples[("playlistgen_cache_hits_total", ())] == 41
    assert samples[("playlistgen_rss_bytes", (("pid", "2"), ("process", "worker-0")))] == 50.0
    route = (("method", "GET"), ("route", "/api/v1/tracks/<int:track_id>"))
    assert samples[("playlistgen_http_request_seconds_count", route)] == 2
    assert samples[("playlistgen_http_request_seconds_sum", route)] == pytest.approx(0.04)
    assert samples[("playlistgen_http_request_seconds", (*route[:1], ("quantile", "0.5"), route[1]))] \
        == pytest.approx(0.02)
    assert samples[("playlistgen_operation_seconds_count", (("operation", "decode"),))] == 1
    assert samples[("playlistgen_http_responses_total", (("status", "4xx"),))] == 1
    assert families["playlistgen_realtime_factor"].samples[0].labels == {"preset": "balanced"}
    assert "playlistgen_process_resident_memory_bytes" in samples.__repr__()
    assert "broken" not in text
    waiting["n"] = 3  # live: the next scrape reads the new value
    assert "playlistgen_queue_depth 3.0" in generate_latest(m.registry()).decode()


def test_tracemalloc_reports_growth() -> None:
    m = Metrics(tracemalloc=True)
    assert m.memory()["tracemalloc"]["enabled"] is False  # built, not started: the entry point starts it
    m.memtrace.start()
    try:
        hog = [bytearray(1024) for _ in range(2000)]  # ~2 MB allocated on one line
        report = m.memory()["tracemalloc"]
        assert report["enabled"] and report["current_mb"] > 1.5
        assert any("test_metrics.py" in g["where"] and g["size_diff_kb"] > 1500 for g in report["growth_since_start"])
        del hog
    finally:
        m.memtrace.stop()
    assert Metrics().memory()["tracemalloc"]["enabled"] is False


def test_process_list_without_cpu_is_reused_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics and /api/v1/performance/metrics read /proc at most once per PROCESSES_TTL_S; the
    CPU figures (measured between two calls) are never reused."""
    monkeypatch.setattr(resources, "PROCESSES_TTL_S", 0.2)
    monitor = resources.ResourceMonitor()
    reads: list[bool] = []
    real = monitor.describe
    monkeypatch.setattr(monitor, "describe", lambda *a, **k: reads.append(k.get("cpu", True)) or real(*a, **k))
    first = monitor.processes()
    first[0]["rss_mb"] = -1.0   # a caller's change stays its own
    second = monitor.processes()
    assert reads == [False] and second[0]["pid"] == os.getpid() and second[0]["rss_mb"] > 0
    monitor.processes(cpu=True)
    monitor.processes(cpu=True)
    assert reads == [False, True, True]
    time.sleep(0.3)
    assert monitor.processes()[0]["name"] == "daemon" and reads == [False, True, True, False]
