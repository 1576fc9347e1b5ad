"""API conformance and robustness (issue 10: defects 5, 9-API, 11, 12) through the real Flask app
on a real SQLite library, plus the metrics and logging pieces they depend on."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest

from playlistgen.app import App
from playlistgen.core.observe.metrics import Metrics
from playlistgen.core.playlists.export import MEDIA_TYPES
from playlistgen.core.playlists.registry import STRATEGIES
from playlistgen.core.playlists.service import REQUEST_KEYS
from playlistgen.core.storage.db import Database
from playlistgen.logs import RepeatFilter
from tests.conftest import library_settings
from tests.playlist_fixtures import populate


def _client(root: Path, db: Database):  # type: ignore[no-untyped-def]
    return App.for_api(library_settings(root), db).api.test_client()


@pytest.fixture(scope="module")
def library(populated_library) -> tuple:  # type: ignore[no-untyped-def]
    """(test client, facts) over the shared synthetic library."""
    db, facts, root = populated_library
    return _client(root, db), facts


@pytest.fixture(scope="module")
def fast_library(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Every track analysed with preset fast: no ML tags at all."""
    root = tmp_path_factory.mktemp("fast")
    (root / "library").mkdir()
    db = Database(root / "test.db", pool_min=1, pool_max=2)
    populate(db, root / "library", artists=4, per_artist=2, fast_share=1.0)
    db.write(lambda c: c.execute("DELETE FROM tags"))  # populate's named extra tracks are 'balanced'
    yield _client(root, db)
    db.close()


def test_405_carries_allow_and_a_json_error(library) -> None:  # type: ignore[no-untyped-def]
    client, _ = library
    r = client.delete("/api/v1/tracks")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "HEAD"}
    assert r.get_json()["error"]["code"] == "method_not_allowed"


def test_openapi_dashboard_is_open_and_media_types_are_what_the_server_sends(library) -> None:  # type: ignore[no-untyped-def]
    client, facts = library
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "security" not in paths["/dashboard"]["get"]   # keyless (with a key: test_openapi_schemathesis)
    assert "401" not in paths["/dashboard"]["get"]["responses"]
    saved = client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": [facts["Teardrop"]], "size": 5,
                                                    "save": True}).get_json()["playlist"]["id"]
    by_format = paths["/api/v1/playlists/{playlist_id}"]["get"]["responses"]["200"]["content"]
    for fmt in ("m3u8", "xspf"):
        sent = client.get(f"/api/v1/playlists/{saved}.{fmt}").headers["Content-Type"].split(";")[0]
        assert sent == MEDIA_TYPES[fmt].split(";")[0]
        assert sent in paths[f"/api/v1/playlists/{{playlist_id}}.{fmt}"]["get"]["responses"]["200"]["content"]
        assert client.get(f"/api/v1/playlists/{saved}?format={fmt}").headers["Content-Type"].startswith(sent)
        assert sent in by_format
        post_media = paths["/api/v1/playlists"]["post"]["responses"]["201"]["content"]
        assert sent in post_media


def test_openapi_body_allows_exactly_the_top_level_fields_the_server_takes(library) -> None:  # type: ignore[no-untyped-def]
    client, facts = library
    schema = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/playlists"]["post"]["requestBody"][
        "content"]["application/json"]["schema"]
    branches = {b["properties"]["strategy"]["const"]: b for b in schema["oneOf"]}
    assert set(branches) == set(STRATEGIES)
    all_params = {p.name for s in STRATEGIES.values() for p in s.params}
    seeds = [facts["Teardrop"], facts["Jóga"]]
    for name, strategy in STRATEGIES.items():
        branch = branches[name]
        own = {p.name for p in strategy.params}
        assert branch["additionalProperties"] is False
        assert set(branch["properties"]) == set(REQUEST_KEYS) | own, name
        assert set(branch["properties"]["params"]["properties"]) == own
        body = {"strategy": name, "seeds": seeds[:strategy.min_seeds]}
        for foreign in sorted(all_params - own - set(REQUEST_KEYS))[:4]:
            r = client.post("/api/v1/playlists", json={**body, foreign: None})
            assert r.status_code == 400 and "unknown request field" in r.get_json()["error"]["message"], \
                (name, foreign)
        for param in strategy.params:  # null means the default: allowed by the spec, accepted by the server
            r = client.post("/api/v1/playlists", json={**body, param.name: None, "size": 3})
            assert r.status_code < 500, (name, param.name, r.get_json())
            assert "unknown" not in r.get_json().get("error", {}).get("message", ""), (name, param.name)


def test_strategy_of_the_wrong_type_says_so(library) -> None:  # type: ignore[no-untyped-def]
    client, _ = library
    wrong = client.post("/api/v1/playlists", json={"strategy": 5}).get_json()["error"]
    assert "'strategy' must be a string" in wrong["message"] and "required" not in wrong["message"]
    assert "'strategy' is required" in client.post("/api/v1/playlists", json={}).get_json()["error"]["message"]


def test_a_tag_in_a_library_without_tags_gets_a_useful_hint(fast_library) -> None:  # type: ignore[no-untyped-def]
    for r in (fast_library.get("/api/v1/tracks?tag=chill"),
              fast_library.post("/api/v1/playlists", json={"strategy": "mood", "tags": ["chill"]}),
              fast_library.post("/api/v1/playlists", json={"strategy": "filter", "filters": {"tags": "chill"}})):
        error = r.get_json()["error"]
        assert r.status_code == 400, error
        assert "valid names" not in error["hint"] and "preset" in error["hint"], error


def test_an_unknown_tag_never_gets_an_empty_hint(library) -> None:  # type: ignore[no-untyped-def]
    client, _ = library
    for r in (client.get("/api/v1/tracks?tag=qqqxxzz"),
              client.post("/api/v1/playlists", json={"strategy": "mood", "tags": ["qqqxxzz"]})):
        error = r.get_json()["error"]
        assert r.status_code == 400 and error["hint"].strip() and error["hint"] != "valid names: ", error


def test_mood_takes_its_tags_from_filters_too(library) -> None:  # type: ignore[no-untyped-def]
    client, _ = library

    def ids(body: dict) -> list[int]:
        r = client.post("/api/v1/playlists", json={"strategy": "mood", "size": 10, "random_seed": 1, **body})
        assert r.status_code == 200, r.get_json()
        return [t["id"] for t in r.get_json()["tracks"]]

    by_param = ids({"tags": ["chill"]})
    assert by_param and ids({"filters": {"tags": ["chill"]}}) == by_param
    assert ids({"filters": {"tags": "chill"}}) == by_param
    assert ids({"filters": {"tags": ["jazz", "chill"]}, "match": "any"}) == ids({"tags": ["jazz", "chill"],
                                                                                   "match": "any"})


def test_a_seed_that_uniquely_prefixes_one_track_resolves(library) -> None:  # type: ignore[no-untyped-def]
    client, facts = library

    def seed(text: str):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": [text], "size": 3})

    r = seed("Massive Attack - Tear")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["tracks"][0]["id"] == facts["Teardrop"]
    assert seed("massive attack - teardr").get_json()["tracks"][0]["id"] == facts["Teardrop"]
    ambiguous = seed("Daft Punk - One More")  # "One More Time" and "One More Time (Live)"
    assert ambiguous.status_code == 404 and len(ambiguous.get_json()["error"]["did_you_mean"]) >= 2
    assert seed("Massive Attack - Zzz").status_code == 404


def test_deeply_nested_json_is_a_400(library) -> None:  # type: ignore[no-untyped-def]
    client, _ = library
    for text in ("[" * 200_000, '{"strategy": "radio", "filters": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001):
        r = client.post("/api/v1/playlists", data=text, content_type="application/json")
        assert r.status_code == 400, r.get_data(as_text=True)[:300]
        assert r.get_json()["error"]["code"] == "bad_request"


def test_metrics_scrape_while_timers_are_written() -> None:
    """Defect 5: a Prometheus scrape iterated a timer's live deque while request threads appended
    to it ("deque mutated during iteration", a 500 on /metrics)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within seconds
    metrics = Metrics(window=1024)
    stop = threading.Event()

    def hammer(route: str) -> None:
        i = 0
        while not stop.is_set():
            metrics.observe_http("GET", route, 200, 0.001 * (i % 50))
            i += 1

    threads = [threading.Thread(target=hammer, args=(f"/r{i}",), daemon=True) for i in range(3)]
    errors: list[Exception] = []
    try:
        for t in threads:
            t.start()
        registry = metrics.registry()
        for _ in range(400):
            try:
                text = generate_latest(registry).decode()
            except RuntimeError as exc:  # before the fix: "deque mutated during iteration"
                errors.append(exc)
        assert 'route="/r0"' in text
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(old)
    assert not errors, f"{len(errors)} scrapes failed: {errors[0]}"


def test_repeated_warnings_are_rate_limited_with_a_count() -> None:
    now = [0.0]
    flt = RepeatFilter(interval_s=10, clock=lambda: now[0])
    logger = logging.getLogger("waitress.queue")

    def record(msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
        return logger.makeRecord(logger.name, level, __file__, 1, msg, args, None)

    passed = []
    for i in range(6500):  # the flood of the issue: 6,500 lines in 30 s
        now[0] = i * 30 / 6500
        rec = record("Task queue depth is %d", i)
        if flt.filter(rec):
            passed.append(rec.getMessage())
    assert 3 <= len(passed) <= 4, passed
    assert passed[0] == "Task queue depth is 0"
    counted = sum(int(m.split("[")[1].split()[0]) for m in passed[1:])
    assert "more like this in the last 10 s" in passed[1] and counted + len(passed) > 4000  # the last 10 s pend
    assert flt.filter(record("another warning"))          # a different message is not held back
    assert flt.filter(record("Task queue depth is %d", 1, level=logging.INFO))  # INFO is never limited
