"""Issue 21.11: a server song whose library file is not analysed yet is "not analysed yet" (not
"no library file with that path"), and `serve` links it as soon as that file's analysis lands —
told by the scheduler's outcome — without waiting for the next whole re-link. Against a real
supysonic of its own (this test adds a song to its library) and a real daemon."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers import ENV, wait_for
from tests.subsonic_server import running_server
from tests.tagged_library import make_song, set_tags

LATE = "Epsilon/Late Album/01 Late Song.flac"


@pytest.fixture
def own_server(tmp_path):  # type: ignore[no-untyped-def]
    with running_server(tmp_path) as server:
        yield server


def test_a_song_not_analysed_yet_says_so_and_links_when_its_analysis_lands(  # type: ignore[no-untyped-def]
        daemon_factory, own_server, tmp_path) -> None:
    n = len(own_server.songs)
    env = {**ENV, "PLAYLISTGEN_ANALYSIS__WORKERS": "1", "PLAYLISTGEN_LIBRARY__WATCH": "false",
           "PLAYLISTGEN_MEDIASERVER__URL": own_server.url, "PLAYLISTGEN_MEDIASERVER__USER": own_server.user,
           "PLAYLISTGEN_MEDIASERVER__PASSWORD": own_server.password}
    daemon = daemon_factory("--library", str(own_server.library), "--db", str(tmp_path / "pg.db"), env=env)
    daemon.wait_ready(60)

    def get(route: str) -> dict:
        return requests.get(daemon.url + route, timeout=10).json()

    wait_for(lambda: get("/api/v1/library/status")["counts"]["done"] == n, 180, "the library to be analysed")
    wait_for(lambda: get("/api/v1/mediaserver/status")["last_link"]["at"], 60, "the link at start")
    first = requests.post(daemon.url + "/api/v1/mediaserver/link?wait=true", timeout=60).json()["linked"]
    assert first["linked"] == n and first["unmatched"] == 0, first

    # a new song: the server has scanned it, playlistgen (no watcher) has not even seen the file
    set_tags(make_song(own_server.library / LATE, 7, seconds=8.0), artist="Epsilon", album="Late Album",
             title="Late Song")
    own_server.rescan()
    report = requests.post(daemon.url + "/api/v1/mediaserver/link?wait=true", timeout=60).json()["linked"]
    assert (report["songs"], report["linked"], report["unmatched"]) == (n + 1, n, 1), report
    status = get("/api/v1/mediaserver/status")
    assert [(u["path"], u["reason"]) for u in status["unmatched"]["first"]] == [(LATE, "not analysed yet")]
    assert report["not_analysed_yet"] == 1 and status["unmatched"]["not_analysed_yet"] == 1

    # its analysis lands: the song is linked by its path, and no whole re-link was needed for that
    # (one comes at the earliest 10 s after the library stops changing)
    scan_at = time.time()
    assert requests.post(daemon.url + "/api/v1/library/scan", timeout=10).status_code in (200, 202)
    status = wait_for(lambda: (s := get("/api/v1/mediaserver/status"))["linked"]["total"] == n + 1
                      and not s["linking"] and s, 60, "the late song to be linked")
    assert status["linked"]["by_method"]["path"] == n + 1
    assert status["unmatched"] == {"count": 0, "not_analysed_yet": 0, "first": []}
    assert status["last_link"]["at"] < scan_at, "linked by a whole re-link, not when its analysis landed"
    assert get("/api/v1/library/status")["counts"]["done"] == n + 1
    assert daemon.stop() == 0
