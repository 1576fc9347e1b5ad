"""OpenSubsonic ``playbackReport`` through the /rest proxy (issue 23.2).

Against the real supysonic (0.7.9 does not offer the extension, so the proxy answers the reports
itself, after the server accepted the credentials): a song stopped early is a skip for the user
who reported it, one heard past ``feedback.play_fraction`` a play, a switch to another song ends
the previous one at its estimated position, and ``getSimilarSongs2`` then leaves the skipped song
out. The songs are 8 s long, so "early" is before 4 s (half the song: ``FeedbackRules``).

Forwarding is tested against a stand-in (tests/hostile_upstream.py): no real server that the
tests can run offers ``playbackReport``, and the proxy must forward the call to one that does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.core.integrations.mediaserver.link import link
from playlistgen.core.storage.db import Database
from tests.hostile_upstream import HostileUpstream
from tests.test_subsonic_feedback import SEED, listening_events, similar_ids
from tests.test_subsonic_proxy import Proxy, body, copy_db, make_settings, serve_app

OTHER_USER = {"u": "dave-playback", "p": "dave pass", "v": "1.16.1", "c": "tests"}


def _proxy(supysonic, supysonic_db, root: Path, upstream_url: str | None = None) -> tuple[Proxy, object]:  # type: ignore[no-untyped-def]
    db_path = copy_db(supysonic_db, root / "playlistgen.db")
    settings = make_settings(supysonic, root, db_path)
    settings.playlists.artist_gap = settings.playlists.album_gap = 0   # 6 songs: let every one be offered
    db = Database(db_path, pool_min=1, pool_max=4)
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    assert link(db, client, settings.library.paths, {}).unmatched == 0
    if upstream_url is not None:
        settings.mediaserver.url = upstream_url   # the songs linked from supysonic, the calls to the stand-in
    url, app = serve_app(settings, db)
    songs = {s["path"]: s["id"] for s in client.iter_songs()}
    auth = {"u": supysonic.user, "p": supysonic.password, "v": "1.16.1", "c": "tests"}
    return Proxy(url, db, settings, app.services, upstream_url or supysonic.url, auth, songs), app


@pytest.fixture(scope="module")
def proxy(supysonic, supysonic_db, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    if OTHER_USER["u"] not in supysonic._cli("user", "list"):
        supysonic._cli("user", "add", OTHER_USER["u"], "-p", OTHER_USER["p"])
    p, app = _proxy(supysonic, supysonic_db, tmp_path_factory.mktemp("playback-proxy"))
    yield p
    app.stop()   # type: ignore[attr-defined]


def _report(proxy: Proxy, media: str, state: str, position_ms: int, *, auth: dict | None = None,
            **extra: object) -> dict:
    return body(proxy.rest("reportPlayback", auth=auth, mediaId=media, mediaType="song", positionMs=position_ms,
                           state=state, **extra))


def test_our_extensions_list_playback_report(proxy: Proxy) -> None:
    extensions = {e["name"]: e["versions"] for e in body(proxy.rest("getOpenSubsonicExtensions"))
                  ["openSubsonicExtensions"]}
    assert extensions["playbackReport"] == [1] and extensions["sonicSimilarity"] == [1]


def test_stopped_early_is_a_skip_past_ninety_percent_a_play(proxy: Proxy) -> None:
    before = similar_ids(proxy)
    a, b, c = before[0], before[1], before[2]
    for state, position in (("starting", 0), ("playing", 0), ("paused", 1500), ("playing", 1500)):
        assert _report(proxy, a, state, position)["status"] == "ok"
    assert listening_events(proxy) == []                      # still playing: nothing said yet
    assert _report(proxy, a, "stopped", 2000)["status"] == "ok"
    assert listening_events(proxy) == [(a, "skip", "playback_report", None, 2.0)]   # the linked user: stored as NULL
    assert a not in similar_ids(proxy) and b in similar_ids(proxy)

    _report(proxy, b, "starting", 0)
    _report(proxy, b, "playing", 7500)              # 94 % of the 8-second song
    _report(proxy, b, "stopped", 7600)
    assert listening_events(proxy)[1:] == [(b, "play", "playback_report", None, 7.5)]   # once, when it passed 90 %

    # a switch to another song without a "stopped" ends the previous one where it was (paused: no clock)
    _report(proxy, c, "starting", 0)
    _report(proxy, c, "paused", 1000)
    _report(proxy, b, "starting", 0)
    assert listening_events(proxy)[-1] == (c, "skip", "playback_report", None, 1.0)
    assert c not in similar_ids(proxy)
    _report(proxy, b, "stopped", 7900)             # heard to its end again: a play (no session left open)
    assert listening_events(proxy)[-1] == (b, "play", "playback_report", None, 7.9)


def test_other_users_ignore_scrobble_and_refused_reports(proxy: Proxy) -> None:
    mine = similar_ids(proxy)
    d = next(s for s in proxy.songs.values() if s in similar_ids(proxy, OTHER_USER))
    _report(proxy, d, "starting", 0, auth=OTHER_USER)
    _report(proxy, d, "stopped", 500, auth=OTHER_USER)
    assert listening_events(proxy)[-1][:4] == (d, "skip", "playback_report", OTHER_USER["u"])
    assert similar_ids(proxy) == mine and d not in similar_ids(proxy, OTHER_USER)

    count = len(listening_events(proxy))
    e = next(s for s in proxy.songs.values() if s != d)
    _report(proxy, e, "starting", 0, ignoreScrobble="true")   # the client asks for no side effects
    _report(proxy, e, "stopped", 500, ignoreScrobble="true")
    refused = proxy.rest("reportPlayback", auth={**OTHER_USER, "p": "wrong"}, mediaId=e, mediaType="song",
                         positionMs=0, state="stopped").json()["subsonic-response"]
    assert refused["status"] == "failed" and refused["error"]["code"] == 40
    podcast = body(proxy.rest("reportPlayback", mediaId="pod-1", mediaType="podcast", positionMs=0, state="stopped"))
    unknown = _report(proxy, "no-such-song", "stopped", 100)
    assert podcast["status"] == unknown["status"] == "ok"
    assert len(listening_events(proxy)) == count

    missing = proxy.rest("reportPlayback", mediaId=e, mediaType="song", state="playing").json()["subsonic-response"]
    assert missing["error"]["code"] == 10 and "positionMs" in missing["error"]["message"]
    bad = proxy.rest("reportPlayback", mediaId=e, mediaType="song", positionMs=0, state="rewinding")
    assert "state" in bad.json()["subsonic-response"]["error"]["message"]


def test_a_reporting_client_s_now_playing_scrobbles_are_not_counted_twice(proxy: Proxy) -> None:
    """The linked user reported playback above: their "now playing" scrobbles are left to the reports."""
    count = len(listening_events(proxy))
    a, b = list(proxy.songs.values())[:2]
    assert body(proxy.rest("scrobble", id=a, submission="false"))["status"] == "ok"
    assert body(proxy.rest("scrobble", id=b, submission="false"))["status"] == "ok"
    assert len(listening_events(proxy)) == count


@pytest.fixture
def standin() -> Iterator[HostileUpstream]:
    server = HostileUpstream(extensions=["playbackReport", "theirs"]).start()
    yield server
    server.stop()


def test_a_server_that_offers_playback_report_gets_the_calls(supysonic, supysonic_db, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             standin: HostileUpstream) -> None:
    proxy, app = _proxy(supysonic, supysonic_db, tmp_path, standin.url)
    try:
        a = proxy.songs[SEED]
        for state, position in (("starting", 0), ("playing", 0), ("stopped", 1200)):
            assert _report(proxy, a, state, position)["type"] == "standin"   # the server's own answer
        seen = standin.calls("reportPlayback")
        assert [(s.query["mediaId"], s.query["state"], s.query["positionMs"]) for s in seen] == [
            (a, "starting", "0"), (a, "playing", "0"), (a, "stopped", "1200")]
        assert all(s.query["u"] == proxy.auth["u"] for s in seen)
        assert len(standin.calls("getOpenSubsonicExtensions")) == 1          # asked once, then cached
        assert listening_events(proxy) == [(a, "skip", "playback_report", None, 1.2)]   # and it is still feedback

        # the server refuses: its error goes back, nothing is learned
        refused = requests.get(f"{proxy.url}/rest/reportPlayback", timeout=30, params={
            **proxy.auth, "p": "wrong", "f": "json", "mediaId": a, "mediaType": "song", "positionMs": 0,
            "state": "stopped"}).json()["subsonic-response"]
        assert refused["error"]["code"] == 40 and len(listening_events(proxy)) == 1
        names = [e["name"] for e in body(proxy.rest("getOpenSubsonicExtensions"))["openSubsonicExtensions"]]
        assert sorted(names) == ["playbackReport", "sonicSimilarity", "theirs"]
    finally:
        app.stop()   # type: ignore[attr-defined]
