"""Prometheus exposition of :class:`~playlistgen.core.observe.metrics.Metrics`.

A private ``CollectorRegistry`` (never the global default one, so two apps in one process — tests —
do not collide) with one custom collector that reads the live numbers on every scrape. The text
format itself is written by ``prometheus_client``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .metrics import Metrics

PREFIX = "playlistgen"


def _name(raw: str) -> str:
    return f"{PREFIX}_" + re.sub(r"[^a-zA-Z0-9_]", "_", raw)


def _summary(name: str, doc: str, label_names: list[str], rows: list) -> Metric:
    """A summary family: windowed p50/p95 as quantile samples, lifetime _count and _sum."""
    family = Metric(name, doc, "summary")
    for labels, timer in rows:
        base = dict(zip(label_names, labels, strict=True))
        for q, value in timer.quantiles().items():
            family.add_sample(name, {**base, "quantile": str(q)}, value)
        family.add_sample(name + "_count", base, timer.count)
        family.add_sample(name + "_sum", base, timer.total_s)
    return family


class MetricsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        ops, http = [], []
        for group, name, timer in self.metrics.timer_items():
            if group == "http":
                method, _, route = name.partition(" ")
                http.append(((method, route), timer))
            else:
                ops.append(((name,), timer))
        yield _summary(_name("operation_seconds"), "Duration of internal operations (decode, dsp, ml, "
                       "analysis, db_write_batch, reconcile, playlist_build...)", ["operation"], ops)
        yield _summary(_name("http_request_seconds"), "HTTP request duration per route", ["method", "route"], http)

        probes = self.metrics.read_probes()   # once per scrape
        counters = self.metrics.counters(probes)
        for key, doc in (("files_analysed", "Files analysed successfully"), ("files_failed", "Files that failed"),
                         ("bytes_decoded", "Bytes of audio files read by the decoder"),
                         ("audio_seconds", "Seconds of audio analysed")):
            yield CounterMetricFamily(_name(key), doc, value=counters.get(key, 0))
        status = CounterMetricFamily(_name("http_responses"), "HTTP responses by status class", labels=["status"])
        for key, value in sorted(counters.items()):
            if key.startswith("http_") and key.endswith("xx"):
                status.add_metric([key[5:]], value)
        yield status

        rtf = GaugeMetricFamily(_name("realtime_factor"), "Seconds of audio analysed per worker wall second",
                                labels=["preset"])
        for preset, info in self.metrics.realtime_factor().items():
            if info["realtime_factor"] is not None:
                rtf.add_metric([preset], info["realtime_factor"])
        yield rtf

        for probe, value in probes:
            cls = CounterMetricFamily if probe.kind == "counter" else GaugeMetricFamily
            if probe.labels:
                family = cls(_name(probe.name), probe.help, labels=list(probe.labels))
                for labels, v in value.items():
                    family.add_metric(list(labels), float(v))
            else:
                family = cls(_name(probe.name), probe.help, value=float(value))
            yield family


def build_registry(metrics: Metrics) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics))
    ProcessCollector(namespace=PREFIX, registry=registry)   # CPU, RSS, fds of the daemon process
    return registry
