"""Skips and plays through the /rest proxy (issue 23.2), against the real supysonic: a client's
"now playing" soon followed by another song is a skip of the first for the user it authenticated
as, a submission is a play, and another user's skips are stored under their name and never shape
the linked user's getSimilarSongs2."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.core.integrations.mediaserver.link import link
from playlistgen.core.storage.db import Database
from tests.test_subsonic_proxy import Proxy, body, copy_db, make_settings, serve_app

SEED = "Alpha Band/First Light/01 Morning.flac"
OTHER_USER = {"u": "carol-feedback", "p": "carol pass", "v": "1.12.0", "c": "tests"}


@pytest.fixture(scope="module")
def proxy(supysonic, supysonic_db, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("feedback-proxy")
    db_path = copy_db(supysonic_db, root / "playlistgen.db")
    settings = make_settings(supysonic, root, db_path)
    settings.playlists.artist_gap = settings.playlists.album_gap = 0   # 6 songs: let every one be offered
    db = Database(db_path, pool_min=1, pool_max=4)
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    assert link(db, client, settings.library.paths, {}).unmatched == 0
    if OTHER_USER["u"] not in supysonic._cli("user", "list"):
        supysonic._cli("user", "add", OTHER_USER["u"], "-p", OTHER_USER["p"])
    url, app = serve_app(settings, db)
    songs = {s["path"]: s["id"] for s in client.iter_songs()}
    auth = {"u": supysonic.user, "p": supysonic.password, "v": "1.12.0", "c": "tests"}
    yield Proxy(url, db, settings, app.services, supysonic.url, auth, songs)
    app.stop()


def listening_events(proxy: Proxy) -> list[tuple]:
    return proxy.db.query("SELECT s.server_id, e.kind, e.source, e.user, e.position_s FROM listening_events e "
                          "JOIN mediaserver_songs s ON s.track_id = e.track_id ORDER BY e.id")


def similar_ids(proxy: Proxy, auth: dict | None = None) -> list[str]:
    answer = body(proxy.rest("getSimilarSongs2", auth=auth, id=proxy.songs[SEED], count=5))
    return [s["id"] for s in answer["similarSongs2"]["song"]]


def test_now_playing_replaced_early_is_a_skip_and_a_submission_a_play(proxy: Proxy) -> None:
    before = similar_ids(proxy)
    a, b = before[0], before[1]
    assert body(proxy.rest("scrobble", id=a, submission="false"))["status"] == "ok"
    time.sleep(1.0)
    assert body(proxy.rest("scrobble", id=b, submission="false"))["status"] == "ok"
    skips = [e for e in listening_events(proxy) if e[1] == "skip"]
    assert [e[:4] for e in skips] == [(a, "skip", "subsonic", None)]       # the linked user: stored as NULL
    assert 1.0 <= skips[0][4] < 4.0   # the 8-second song was left after about a second (its first half)
    assert a not in similar_ids(proxy) and b in similar_ids(proxy)              # the linked user's radio listens

    assert body(proxy.rest("scrobble", id=b, submission="true"))["status"] == "ok"
    assert listening_events(proxy)[-1][:4] == (b, "play", "subsonic", None)
    # a later full play of the skipped song cancels its skip
    assert body(proxy.rest("scrobble", id=a, submission="true"))["status"] == "ok"
    assert a in similar_ids(proxy)


def test_another_user_is_stored_by_name_and_leaves_the_linked_radio_alone(proxy: Proxy) -> None:
    mine = similar_ids(proxy)
    theirs = similar_ids(proxy, OTHER_USER)
    c, d = theirs[0], theirs[1]
    body(proxy.rest("scrobble", auth=OTHER_USER, id=c, submission="false"))
    body(proxy.rest("scrobble", auth=OTHER_USER, id=d, submission="false"))
    assert listening_events(proxy)[-1][:4] == (c, "skip", "subsonic", OTHER_USER["u"])
    assert similar_ids(proxy) == mine
    assert c not in similar_ids(proxy, OTHER_USER)
    # a refused scrobble (wrong password) teaches nothing
    count = len(listening_events(proxy))
    wrong = {**OTHER_USER, "p": "wrong"}
    body(proxy.rest("scrobble", auth=wrong, id=c, submission="false"))
    body(proxy.rest("scrobble", auth=wrong, id=d, submission="false"))
    assert len(listening_events(proxy)) == count
