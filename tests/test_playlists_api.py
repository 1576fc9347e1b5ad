"""The playlist and track API through Flask's test client, on a real SQLite library written with
realistic synthetic analysis results."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from playlistgen.app import App
from playlistgen.config import Settings
from tests.conftest import library_settings

XSPF = "{http://xspf.org/ns/0/}"
TRACK_FIELDS = {"id", "path", "artist", "album", "title", "duration_s", "bpm", "key", "scale", "camelot", "energy",
                "tags"}


def make_client(populated_library: tuple, **api: object):  # type: ignore[no-untyped-def]
    db, _, root = populated_library
    settings = library_settings(root)
    for key, value in api.items():
        setattr(settings.api, key, value)
    return App.for_api(settings, db).api.test_client()


@pytest.fixture
def client(populated_library: tuple):  # type: ignore[no-untyped-def]
    return make_client(populated_library)


def test_search_uses_fts_and_filters(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    r = client.get("/api/v1/tracks?q=teardr")
    assert r.status_code == 200 and float(r.headers["X-Process-Time"]) > 0
    body = r.get_json()
    assert body["total"] == 1 and body["tracks"][0]["id"] == facts["Teardrop"]
    assert TRACK_FIELDS <= set(body["tracks"][0])
    assert client.get("/api/v1/tracks?q=joga").get_json()["tracks"][0]["artist"] == "Björk"  # diacritics folded
    assert client.get("/api/v1/tracks?q=vanished").get_json()["total"] == 0  # its file is missing
    rows = client.get("/api/v1/tracks?bpm_min=120&bpm_max=140&limit=500").get_json()["tracks"]
    assert rows and all(120 <= t["bpm"] <= 140 for t in rows)
    rows = client.get("/api/v1/tracks?key=8A&limit=500").get_json()["tracks"]
    assert rows and all(t["camelot"] == "8A" for t in rows)
    chill = client.get("/api/v1/tracks?tag=chill&limit=5").get_json()
    assert chill["total"] > 0 and len(chill["tracks"]) == 5
    page = client.get("/api/v1/tracks?artist=daft&limit=1&offset=1").get_json()
    assert page["total"] == 2 and len(page["tracks"]) == 1
    bad = client.get("/api/v1/tracks?tag=chil")
    assert bad.status_code == 400 and "chill" in bad.get_json()["error"]["did_you_mean"]
    assert client.get("/api/v1/tracks?limit=0").status_code == 400
    assert client.get('/api/v1/tracks?q="AND OR NOT(').status_code == 200  # FTS syntax is neutralised


def test_track_detail_similar_and_failed_route(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    detail = client.get(f"/api/v1/tracks/{facts['Teardrop']}").get_json()
    assert detail["artist"] == "Massive Attack" and len(detail["features"]["embedding"]) == 200
    assert detail["all_tags"]["msd"] and detail["files"][0]["path"].endswith("Teardrop.flac")
    missing = client.get(f"/api/v1/tracks/{facts['Vanished Song']}")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "track_not_found"
    assert client.get("/api/v1/tracks/failed").status_code == 200  # not shadowed by /tracks/<id>
    similar = client.get(f"/api/v1/tracks/{facts['Teardrop']}/similar?n=5").get_json()
    ids = [t["id"] for t in similar["similar"]]
    assert len(ids) == 5 and facts["Teardrop"] not in ids
    assert [t["distance"] for t in similar["similar"]] == sorted(t["distance"] for t in similar["similar"])
    # count= as /artists/<name>/similar spells it (it was ignored: 20 answers)
    counted = client.get(f"/api/v1/tracks/{facts['Teardrop']}/similar?count=7").get_json()["similar"]
    assert [t["id"] for t in counted][:5] == ids and len(counted) == 7
    assert client.get("/api/v1/tracks/99999999999999999999999").status_code == 404


def test_track_detail_through_the_feature_cache(populated_library) -> None:  # type: ignore[no-untyped-def]
    from playlistgen.core.storage.cache import FeatureCache

    db, facts, root = populated_library
    settings = Settings()
    app = App.for_api(settings, db, cache=FeatureCache(8, 60))
    client = app.api.test_client()
    plain = make_client(populated_library).get(f"/api/v1/tracks/{facts['Jóga']}").get_json()
    for _ in range(2):  # a miss, then a hit
        cached = client.get(f"/api/v1/tracks/{facts['Jóga']}").get_json()
        assert cached["features"] == plain["features"] and cached["all_tags"] == plain["all_tags"]
    assert app.services.cache.stats()["hits"] >= 1


def test_radio_by_name_and_did_you_mean(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    r = client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": ["Massive Attack - Teardrop"],
                                               "size": 12})
    assert r.status_code == 200
    body = r.get_json()
    assert body["playlist"]["strategy"] == "radio" and len(body["tracks"]) == 12
    assert body["tracks"][0]["id"] == facts["Teardrop"]
    assert all(TRACK_FIELDS <= set(t) for t in body["tracks"])
    unknown = client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": ["Masive Atack - Teardrop"]})
    assert unknown.status_code == 404
    error = unknown.get_json()["error"]
    assert "did you mean" in error["hint"] and error["did_you_mean"][0]["id"] == facts["Teardrop"]
    typo = client.post("/api/v1/playlists", json={"strategy": "radoi", "seeds": [1]})
    assert typo.status_code == 400 and "radio" in typo.get_json()["error"]["did_you_mean"]
    field = client.post("/api/v1/playlists", json={"strategy": "mood", "tag": ["chill"]})
    assert field.status_code == 400 and "tags" in field.get_json()["error"]["did_you_mean"]
    assert client.post("/api/v1/playlists", data="nope").status_code == 400
    gone = client.post("/api/v1/playlists", json={"strategy": "radio", "seeds": [facts["Vanished Song"]]})
    assert gone.status_code == 404


def test_missing_files_are_never_returned(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    body = client.post("/api/v1/playlists", json={"strategy": "all", "diversity": False}).get_json()
    ids = {t["id"] for t in body["tracks"]}
    assert facts["Vanished Song"] not in ids and len(ids) == 184


def test_every_strategy_over_http(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    listing = client.get("/api/v1/playlists/strategies").get_json()["strategies"]
    names = {s["name"] for s in listing}
    assert {"radio", "path", "mood", "filter", "harmonic", "clusters"} <= names
    requests = [
        {"strategy": "path", "seeds": [facts["Teardrop"], facts["One More Time"]], "size": 8},
        {"strategy": "mood", "tags": ["chill"], "min_probability": 0.3},
        {"strategy": "filter", "filters": {"bpm": [100, 140], "energy": [0.6, 1], "tags": ["dance"]}},
        {"strategy": "harmonic", "seeds": [facts["Teardrop"]], "size": 10},
        {"strategy": "clusters", "params": {"k": 5}, "random_seed": 1},
        {"strategy": "tag_based", "field": "genre", "value": "jazz"},
        {"strategy": "time_based", "time_of_day": "morning"}, {"strategy": "mixed", "tags": ["party"]},
        {"strategy": "feature_group", "tempo": "fast"}, {"strategy": "kmeans"}, {"strategy": "random"},
        {"strategy": "similarity", "seeds": [facts["Jóga"]]},
    ]
    for req in requests:
        r = client.post("/api/v1/playlists", json=req)
        assert r.status_code == 200, (req, r.get_json())
        assert r.get_json()["tracks"], req
    clusters = client.post("/api/v1/playlists", json=requests[4]).get_json()["playlist"]["clusters"]
    assert any(re.match(r"^Chill · .*\d+ BPM$", c["name"]) for c in clusters)


def test_m3u8_and_xspf_formats(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, _ = populated_library
    req = {"strategy": "radio", "seeds": [facts["Jóga"]], "size": 6}
    m3u = client.post("/api/v1/playlists?format=m3u8", json=req)
    assert m3u.status_code == 200 and m3u.mimetype == "audio/x-mpegurl"
    lines = m3u.get_data(as_text=True).splitlines()
    assert lines[0] == "#EXTM3U"
    assert re.fullmatch(r"#EXTINF:\d+,Björk - Jóga", lines[2])
    assert lines[3].startswith("/") and lines[3].endswith("Jóga.flac")
    assert sum(line.startswith("#EXTINF:") for line in lines) == 6
    xspf = client.post("/api/v1/playlists?format=xspf", json=req)
    root = ET.fromstring(xspf.get_data())
    assert root.tag == f"{XSPF}playlist" and root.get("version") == "1"
    tracks = root.findall(f"{XSPF}trackList/{XSPF}track")
    assert len(tracks) == 6 and tracks[0].find(f"{XSPF}location").text.startswith("file:///")
    assert tracks[0].find(f"{XSPF}creator").text == "Björk"
    bad = client.post("/api/v1/playlists?format=m3u", json=req)
    assert bad.status_code == 400 and "m3u8" in bad.get_json()["error"]["did_you_mean"]


def test_save_writes_the_file_and_lists_it(client, populated_library) -> None:  # type: ignore[no-untyped-def]
    _, facts, root = populated_library
    req = {"strategy": "radio", "seeds": [facts["Teardrop"]], "size": 5, "save": True, "name": "Late/Night: Mix"}
    r = client.post("/api/v1/playlists", json=req)
    assert r.status_code == 201
    meta = r.get_json()["playlist"]
    path = Path(meta["file"])
    assert path.parent == (root / "playlists").resolve() and path.name == "Late_Night_ Mix.m3u8"
    text = path.read_text(encoding="utf-8")
    # relative_paths auto: output_dir is not inside the library, so absolute paths
    assert text.startswith("#EXTM3U\n") and f"\n{root / 'library'}/" in text
    assert not list(path.parent.glob(".*.tmp"))
    again = client.post("/api/v1/playlists", json=req).get_json()["playlist"]
    assert again["file"] != meta["file"] and Path(again["file"]).is_file()  # never overwritten
    listed = client.get("/api/v1/playlists").get_json()["playlists"]
    assert {meta["id"], again["id"]} <= {p["id"] for p in listed}
    saved = client.get(f"/api/v1/playlists/{meta['id']}").get_json()
    assert [t["id"] for t in saved["tracks"]] == [t["id"] for t in r.get_json()["tracks"]]
    m3u8 = client.get(f"/api/v1/playlists/{meta['id']}.m3u8")
    assert m3u8.status_code == 200 and m3u8.get_data(as_text=True).startswith("#EXTM3U")
    assert client.get(f"/api/v1/playlists/{meta['id']}.xspf").status_code == 200
    assert client.get("/api/v1/playlists/999999").status_code == 404


def test_openapi_documents_every_route(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path in ("/health", "/api/v1/library/status", "/api/v1/library/scan", "/api/v1/tracks/failed",
                 "/api/v1/library/upload", "/api/v1/tracks", "/api/v1/tracks/{track_id}",
                 "/api/v1/tracks/{track_id}/similar", "/api/v1/playlists", "/api/v1/playlists/{playlist_id}",
                 "/api/v1/playlists/{playlist_id}.m3u8", "/api/v1/playlists/strategies", "/api/v1/openapi.json"):
        assert path in paths, path
    rules = {re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", r.rule) for r in client.application.url_map.iter_rules()
             if not r.endpoint.endswith("static")}
    assert rules <= set(paths)
    assert "post" in paths["/api/v1/playlists"] and "get" in paths["/api/v1/playlists"]


def test_openapi_guided_fuzz_finds_no_server_error(client) -> None:  # type: ignore[no-untyped-def]
    """A small property-style run: every documented GET with odd parameter values never answers 500."""
    spec = client.get("/api/v1/openapi.json").get_json()
    odd = ["", "0", "-1", "abc", "1e309", "NaN", "9" * 30, "%00", "'", "ü", "1.5"]
    for path, ops in spec["paths"].items():
        if "get" not in ops or path in ("/dashboard", "/metrics") or path.startswith("/api/v1/performance"):
            continue
        for value in odd:
            url = re.sub(r"\{\w+\}", value or "1", path)
            query = "&".join(f"{p['name']}={value}" for p in ops["get"]["parameters"] if p["in"] == "query")
            r = client.get(f"{url}?{query}")
            assert r.status_code < 500, (url, query, r.get_data(as_text=True)[:300])
    bodies = [{}, [], {"strategy": 1}, {"strategy": "radio", "seeds": [None]}, {"strategy": "path", "seeds": [1, 1]},
              {"strategy": "filter", "filters": {"bpm": "fast"}}, {"strategy": "filter", "filters": {"key": "H#"}},
              {"strategy": "radio", "seeds": [1], "size": 10**12}, {"strategy": "mood", "tags": [1]},
              {"strategy": "clusters", "k": "many"}, {"strategy": "all", "diversity": {"artist_gap": -1}},
              {"strategy": "random", "duration_min": 0}, {"strategy": "mixed", "weights": [1, "a", 2]},
              {"strategy": "radio", "seeds": [10**30]}, {"strategy": "radio", "seeds": ["9" * 30]},
              {"strategy": "filter", "filters": {"year": [2000, 1990]}}, {"strategy": "radio", "params": []}]
    for body in bodies:
        r = client.post("/api/v1/playlists", json=body)
        assert 400 <= r.status_code < 500, (body, r.get_json())
        assert set(r.get_json()["error"]) >= {"code", "message", "hint"}


def test_api_key_protects_everything_but_health(populated_library) -> None:  # type: ignore[no-untyped-def]
    client = make_client(populated_library, key="s3cret")
    assert client.get("/health").status_code in (200, 503)
    denied = client.get("/api/v1/tracks")
    assert denied.status_code == 401 and denied.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/tracks", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/api/v1/library/upload").status_code == 401
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/api/v1/tracks", headers={"X-API-Key": "s3cret"}).status_code == 200


@pytest.mark.skipif(shutil.which("mpv") is None, reason="mpv is not installed")
def test_m3u8_opens_in_mpv(tmp_path: Path) -> None:
    """A real player's playlist parser reads the saved M3U8: relative paths, unicode, spaces."""
    import numpy as np
    import soundfile as sf

    from playlistgen.core.playlists.export import to_m3u8

    (tmp_path / "music").mkdir()
    tracks = []
    for i, name in enumerate(("Björk - Jóga.wav", "two words.wav")):
        path = tmp_path / "music" / name
        sf.write(path, np.zeros(2205, dtype=np.float32), 22050)
        tracks.append({"id": i, "path": str(path), "artist": "A", "title": name, "duration_s": 0.1})
    playlist = tmp_path / "playlists" / "mix.m3u8"
    playlist.parent.mkdir()
    playlist.write_text(to_m3u8(tracks, relative_to=playlist.parent), encoding="utf-8")
    run = subprocess.run(["mpv", "--no-config", "--vo=null", "--ao=null", "--msg-level=all=info", str(playlist)],
                         capture_output=True, text=True, timeout=60)
    played = [line for line in run.stdout.splitlines() if line.startswith("Playing:")]
    assert run.returncode == 0 and len(played) == 2 and "Jóga" in played[0], run.stdout + run.stderr
