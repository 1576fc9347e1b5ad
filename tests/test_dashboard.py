"""A real `playlistgen serve` with a few analysed files: every performance endpoint shows the work
that was done, and the dashboard renders it in a real headless Chromium (Debian's `chromium`,
installed by `make test`): no console errors, charts drawn with the live numbers, and a playlist
built through the builder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Daemon
from tests.helpers import make_song, wait_for

SONGS = ["Nova Quartet - Blue Hour", "Nova Quartet - Night Train", "Ada Lane - Paper Boats",
         "Ada Lane - Lantern", "Kite Club - Runway", "Mira Sol - Low Tide"]
ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast", "PLAYLISTGEN_ANALYSIS__WORKERS": "2",
       "PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S": "0", "PLAYLISTGEN_LIBRARY__WATCH": "false"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("dashboard")
    for i, name in enumerate(SONGS):
        make_song(root / "library" / f"{name}.wav", 40 + i * 5, seconds=6.0)
    daemon = Daemon(root, env=ENV)
    try:
        daemon.wait_ready()
        wait_for(lambda: requests.get(daemon.url + "/api/v1/library/status", timeout=5).json()["counts"]["done"]
                 == len(SONGS), 90, "all songs analysed")
        yield daemon
    finally:
        daemon.stop()


def get(daemon: Daemon, path: str, status: int = 200) -> dict:
    r = requests.get(daemon.url + path, timeout=10)
    assert r.status_code == status, r.text
    return r.json()


def test_performance_endpoints_show_the_work_done(served: Daemon) -> None:
    n = len(SONGS)
    m = get(served, "/api/v1/performance/metrics")
    assert m["counters"]["files_analysed"] == n and m["counters"]["files_failed"] == 0
    assert m["counters"]["bytes_decoded"] > n * 6 * 22050
    assert m["counters"]["audio_seconds"] == pytest.approx(n * 6, 0.05)
    for stage in ("decode", "dsp", "analysis"):
        assert m["operations"][stage]["count"] == n and m["operations"][stage]["p95_s"] > 0
    assert m["operations"]["reconcile"]["count"] >= 1 and m["operations"]["db_write_batch"]["count"] >= 1
    assert sum(p["analysed"] for p in m["throughput"]["points"]) == n
    assert m["realtime_factor"]["fast"]["files"] == n and m["realtime_factor"]["fast"]["realtime_factor"] > 1
    assert m["gauges"]["workers_alive"] == 2 and m["gauges"]["queue_depth"] == 0

    health = get(served, "/api/v1/performance/async-processor/health")
    assert health["ready"] and health["executor"]["alive"] == 2 and health["queue"]["pending"] == 0
    assert sum(w["tasks_done"] for w in health["executor"]["workers"]) == n
    assert all(w["age_s"] is not None and w["pid"] for w in health["executor"]["workers"])

    usage = get(served, "/api/v1/performance/resource-usage")
    names = [p["name"] for p in usage["processes"]]
    assert names == ["daemon", "worker-0", "worker-1"] and all(p["rss_mb"] > 20 for p in usage["processes"])
    assert usage["open_files"]["daemon"] is not None and usage["totals"]["processes"] == 3

    pool = get(served, "/api/v1/performance/database/pool")
    assert pool["writer"]["jobs"] >= n and pool["checkouts"] > 0

    report = get(served, "/api/v1/performance/optimization-report")
    assert report["summary"]["realtime_factor"]["fast"] > 1 and report["summary"]["pending"] == 0
    assert next(c for c in report["checks"] if c["area"] == "analysis speed")["status"] == "ok"

    text = requests.get(served.url + "/metrics", timeout=10).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("playlistgen_files_analysed_total", ())] == n
    assert samples[("playlistgen_workers_alive", ())] == 2
    assert samples[("playlistgen_operation_seconds_count", (("operation", "decode"),))] == n
    assert len([k for k in samples if k[0] == "playlistgen_rss_bytes"]) == 3


class _Dom(HTMLParser):
    """Just enough of the rendered DOM: elements by id (attributes + text) and counted tags."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self.stack: list[dict] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        node = {"tag": tag, "attrs": dict(attrs), "text": "", "children": 0}
        if self.stack:
            self.stack[-1]["children"] += 1
        if node["attrs"].get("id"):
            self.by_id[node["attrs"]["id"]] = node
        for parent in self.stack:
            key = f"{parent['attrs'].get('id')}>{tag}"
            self.counts[key] = self.counts.get(key, 0) + 1
        if tag not in ("br", "img", "input", "meta", "link", "hr"):   # HTML void elements have no end tag
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if any(n["tag"] == tag for n in self.stack):
            while self.stack.pop()["tag"] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for node in self.stack:
            node["text"] += data


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: `make test` installs it "
                    "(apt-get install chromium); run `make browser` to install it now")
def test_dashboard_renders_live_numbers_in_chromium(served: Daemon, tmp_path: Path) -> None:
    # the hash asks the builder to search "nova", take the first match as seed and build a radio
    url = served.url + "/dashboard#seed=nova&strategy=radio&size=5&build=1"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], "the page logged to the console:\n" + "\n".join(console)
    dom = _Dom()
    dom.feed(proc.stdout)
    node = dom.by_id
    assert node["errors"]["text"].strip() == ""
    status = get(served, "/api/v1/library/status")
    assert node["stat-done"]["text"] == str(status["counts"]["done"]) == str(len(SONGS))
    assert node["stat-total"]["text"] == str(len(SONGS)) and node["stat-failed"]["text"] == "0"
    assert node["progress-bar"]["attrs"]["data-progress"] == "1.0000"
    assert node["health"]["text"] == "ok"
    # charts drawn with data
    assert dom.counts.get("chart-throughput>rect", 0) >= 1
    assert dom.counts.get("chart-bpm>rect", 0) >= 1
    assert dom.counts.get("chart-keys>path", 0) == 24
    svg_totals = re.findall(r'<svg[^>]*data-total="(\d+)"', proc.stdout)
    assert str(len(SONGS)) in svg_totals      # throughput bars, BPM histogram and the wheel count every song
    # processes and pool from the live endpoints
    assert dom.counts.get("proc-rows>tr", 0) == 3
    assert node["pool-max"]["text"] == "8"
    assert node["cache-hit-rate"]["text"].endswith("%")
    assert dom.counts.get("advice>li", 0) >= 4
    # the builder: a seed was found, a playlist built, and the M3U8 download is ready
    assert dom.counts.get("seeds>span", 0) == 1 and "Nova Quartet" in node["seeds"]["text"]
    built = int(node["playlist"]["attrs"]["data-count"])
    assert 2 <= built <= 5 and "Nova Quartet" in node["playlist"]["text"]
    request = json.loads(node["download"]["attrs"]["data-request"])
    assert request["strategy"] == "radio" and len(request["seeds"]) == 1
    m3u8 = requests.post(served.url + "/api/v1/playlists?format=m3u8", json=request, timeout=10)
    assert m3u8.status_code == 200 and m3u8.text.startswith("#EXTM3U") and m3u8.text.count(".wav") == built


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: `make test` installs it "
                    "(apt-get install chromium); run `make browser` to install it now")
def test_builder_durations_round_before_splitting_minutes(tmp_path: Path) -> None:
    """The builder's m:ss, run by Chromium as the page has it: 179.99 s is 3:00, not 2:60."""
    source = (Path(__file__).resolve().parents[1] / "playlistgen/api/static/builder.js").read_text()
    mmss = re.search(r"^\s*const mmss = .*$", source, re.M)
    assert mmss, "builder.js no longer defines mmss"
    page = tmp_path / "mmss.html"
    page.write_text(f"<html><body><p id='out'></p><script>{mmss.group(0)}\n"
                    "document.getElementById('out').textContent = "
                    "[179.99, 59.6, 60, 61.4, 3599.7, 0, null].map(mmss).join('|');</script></body></html>")
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<p id=\"out\">3:00|1:00|1:00|1:01|60:00||</p>" in proc.stdout
