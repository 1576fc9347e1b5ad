"""The /rest proxy, the AudioMuse-compatible routes, for_you after scrobbles and a scheduled mix,
against a real supysonic (own virtualenv, loopback) and the real app served by waitress."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from playlistgen.app import App
from playlistgen.config import Settings
from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.core.integrations.mediaserver.link import link
from playlistgen.core.integrations.mediaserver.service import hook_playlists
from playlistgen.core.storage.db import Database
from playlistgen.services import Services

NS = "{http://subsonic.org/restapi}"


@dataclass
class Proxy:
    url: str
    db: Database
    settings: Settings
    services: Services
    server_url: str
    auth: dict
    songs: dict  # relative path → server song id

    def rest(self, method: str, *, direct: bool = False, fmt: str | None = "json", auth: dict | None = None,
             **params: object) -> requests.Response:
        base = self.server_url if direct else self.url
        query = {**(self.auth if auth is None else auth), **params}
        if fmt:
            query["f"] = fmt
        return requests.get(f"{base}/rest/{method}", params=query, timeout=30)


def serve_app(settings: Settings, db: Database) -> tuple[str, App]:
    """The API's parts as serve builds them, served by waitress on a free loopback port."""
    settings.api.port = 0
    app = App.for_api(settings, db, http=True)
    app.start()
    return f"http://127.0.0.1:{app.http.port}", app


def copy_db(source: Path, dest: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(str(source) + suffix).exists():
            shutil.copy(str(source) + suffix, str(dest) + suffix)
    return dest


def make_settings(supysonic, root: Path, db_path: Path, **playlists: object) -> Settings:  # type: ignore[no-untyped-def]
    settings = Settings()
    settings.library.paths = [str(supysonic.library)]
    settings.database.path = str(db_path)
    settings.playlists.output_dir = str(root / "playlists")
    (root / "playlists").mkdir(exist_ok=True)
    settings.mediaserver.url = supysonic.url
    settings.mediaserver.user = supysonic.user
    settings.mediaserver.password = supysonic.password
    settings.mediaserver.proxy = True
    for key, value in playlists.items():
        setattr(settings.playlists, key, value)
    return settings


@pytest.fixture(scope="module")
def proxy(supysonic, supysonic_db, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("proxy")
    db_path = copy_db(supysonic_db, root / "playlistgen.db")
    settings = make_settings(supysonic, root, db_path, schedule=[
        {"name": "Daily mix 1", "strategy": "for_you", "at": "07:00", "size": 3}])
    db = Database(db_path, pool_min=1, pool_max=4)
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    report = link(db, client, settings.library.paths, {})
    assert report.unmatched == 0, report.to_dict()
    url, app = serve_app(settings, db)
    services = app.services
    hook_playlists(services.playlists, db, settings)  # push saved playlists, as serve does
    songs = {s["path"]: s["id"] for s in client.iter_songs()}
    auth = {"u": supysonic.user, "p": supysonic.password, "v": "1.12.0", "c": "tests"}
    yield Proxy(url, db, settings, services, supysonic.url, auth, songs)
    app.stop()   # the server, then the database


def body(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text[:300]
    return response.json()["subsonic-response"]


# --- transparent proxy ----------------------------------------------------------------------------

def test_ping_and_get_artists_are_the_servers_answers(proxy: Proxy) -> None:
    assert body(proxy.rest("ping"))["status"] == "ok"
    ours, theirs = proxy.rest("getArtists"), proxy.rest("getArtists", direct=True)
    assert ours.json() == theirs.json() and ours.headers["Content-Type"] == theirs.headers["Content-Type"]
    names = {a["name"] for i in body(ours)["artists"]["index"] for a in i["artist"]}
    assert {"Alpha Band", "Beta Trio", "Gamma", "Delta"} <= names
    xml = proxy.rest("getArtists.view", fmt=None)  # XML when f is absent
    assert xml.status_code == 200 and xml.content == proxy.rest("getArtists.view", direct=True, fmt=None).content
    assert ET.fromstring(xml.content).get("status") == "ok"
    form = requests.post(f"{proxy.url}/rest/ping.view", data={**proxy.auth, "f": "json"}, timeout=10)
    assert form.json()["subsonic-response"]["status"] == "ok"  # a POST form body is forwarded too
    # a Subsonic web player served from another origin: its requests carry their own credentials
    web = requests.post(f"{proxy.url}/rest/ping.view", data={**proxy.auth, "f": "json"},
                        headers={"Origin": "https://player.example"}, timeout=10)
    assert web.status_code == 200 and web.json()["subsonic-response"]["status"] == "ok"
    api = requests.post(f"{proxy.url}/api/v1/library/scan", headers={"Origin": "https://player.example"}, timeout=10)
    assert api.status_code == 403  # ... while playlistgen's own API still refuses cross-site writes


def test_stream_bytes_equal_the_file_and_range_requests_pass(proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]
    rel = "Alpha Band/First Light/01 Morning.flac"
    data = (Path(supysonic.library) / rel).read_bytes()
    song = proxy.songs[rel]
    whole = proxy.rest("stream", fmt=None, id=song)
    assert whole.status_code == 200 and whole.content == data
    part = requests.get(f"{proxy.url}/rest/stream", params={**proxy.auth, "id": song},
                        headers={"Range": "bytes=100-1123"}, timeout=10)
    assert part.status_code == 206 and part.content == data[100:1124]
    assert part.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
    download = proxy.rest("download", fmt=None, id=song)
    assert download.content == data


def _error_of(response: requests.Response, fmt: str | None) -> dict:
    """code and message of a Subsonic error answer in any format."""
    if fmt is None or fmt == "xml":
        error = ET.fromstring(response.content).find(f"{NS}error")
        return {"code": int(error.get("code")), "message": error.get("message")}
    text = response.text.strip()
    if fmt == "jsonp":
        assert text.startswith("cb(") and text.rstrip(";").endswith(")"), text[:200]
        text = text.rstrip(";")[3:-1]
    return json.loads(text)["subsonic-response"]["error"]


def test_wrong_credentials_get_the_servers_error_40(proxy: Proxy) -> None:
    wrong = {**proxy.auth, "p": "not the password"}
    song = proxy.songs["Beta Trio/Nocturnes/01 Dusk.ogg"]
    theirs = proxy.rest("ping", direct=True, auth=wrong, fmt="json")
    expected = theirs.json()["subsonic-response"]["error"]
    assert expected["code"] == 40
    for method in ("getSimilarSongs2", "getSonicSimilarTracks", "ping"):
        for fmt in ("json", None, "jsonp"):
            extra = {"callback": "cb"} if fmt == "jsonp" else {}
            ours = proxy.rest(method, auth=wrong, fmt=fmt, id=song, **extra)
            assert ours.status_code == theirs.status_code, (method, fmt)
            # the server's error in the client's format (our answers are checked in JSON, then rendered)
            assert _error_of(ours, fmt) == {"code": 40, "message": expected["message"]}, (method, fmt)
            if method == "ping":   # forwarded: the server's bytes
                assert ours.content == proxy.rest("ping", direct=True, auth=wrong, fmt=fmt, **extra).content


def test_jsonp_clients_with_new_credentials_get_our_answers(proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]
    song = proxy.songs["Beta Trio/Nocturnes/01 Dusk.ogg"]
    fresh = {**proxy.auth, "p": "enc:" + supysonic.password.encode().hex()}   # not in the credential cache
    answer = proxy.rest("getSonicSimilarTracks", auth=fresh, fmt="jsonp", callback="cb", id=song, count=2)
    assert answer.status_code == 200 and answer.text.startswith("cb(")
    matches = json.loads(answer.text.strip().rstrip(";")[3:-1])["subsonic-response"]["sonicMatch"]
    assert len(matches) == 2 and all(m["entry"]["id"] in proxy.songs.values() for m in matches)


# --- sonic similarity -----------------------------------------------------------------------------

def test_similar_songs_answered_with_server_ids(proxy: Proxy) -> None:
    song = proxy.songs["Alpha Band/First Light/01 Morning.flac"]
    for method, key in (("getSimilarSongs2", "similarSongs2"), ("getSimilarSongs", "similarSongs")):
        answer = body(proxy.rest(method, id=song, count=3))
        assert answer["status"] == "ok" and answer["openSubsonic"] is True
        ids = [s["id"] for s in answer[key]["song"]]
        assert 1 <= len(ids) <= 3 and song not in ids and set(ids) <= set(proxy.songs.values())
        assert all(s["title"] and not s["isDir"] for s in answer[key]["song"])
    xml = ET.fromstring(proxy.rest("getSimilarSongs2", fmt="xml", id=song, count=2).content)
    assert xml.get("status") == "ok" and len(xml.find(f"{NS}similarSongs2").findall(f"{NS}song")) == 2
    # an artist id seeds the radio with that artist's songs
    artist = body(proxy.rest("getSong", id=song))["song"]["artistId"]
    by_artist = body(proxy.rest("getSimilarSongs2", id=artist, count=4))["similarSongs2"]["song"]
    assert by_artist and all(s["id"] in proxy.songs.values() for s in by_artist)


def test_sonic_similar_tracks(proxy: Proxy) -> None:
    song = proxy.songs["Beta Trio/Nocturnes/01 Dusk.ogg"]
    matches = body(proxy.rest("getSonicSimilarTracks", id=song, count=4))["sonicMatch"]
    assert len(matches) == 4
    sims = [m["similarity"] for m in matches]
    assert all(0.0 <= s <= 1.0 for s in sims) and sims == sorted(sims, reverse=True)
    assert {m["entry"]["id"] for m in matches} <= set(proxy.songs.values()) - {song}
    xml = ET.fromstring(proxy.rest("getSonicSimilarTracks", fmt=None, id=song, count=2).content)
    found = xml.findall(f"{NS}sonicMatch")
    assert len(found) == 2 and all(0 <= float(m.get("similarity")) <= 1 for m in found)
    assert all(m.find(f"{NS}entry").get("id") in proxy.songs.values() for m in found)
    missing = body(proxy.rest("getSonicSimilarTracks", id="no-such-song"))
    assert missing["status"] == "failed" and missing["error"]["code"] == 70
    assert body(proxy.rest("getSonicSimilarTracks"))["error"]["code"] == 10


PERSONAL = ("starred", "userRating")


def test_sonic_answers_are_the_asking_users_view(proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]
    """alice (the linked user) starred and rated a song; bob sees neither, and never a song the
    server does not show him."""
    seed = proxy.songs["Beta Trio/Nocturnes/01 Dusk.ogg"]
    starred = proxy.songs["Alpha Band/First Light/01 Morning.flac"]
    hidden_twin = proxy.songs["Delta/Live/01 Encore.flac"]
    bob = {"u": "bob-proxy", "p": "bob pass", "v": "1.12.0", "c": "tests"}
    if "bob-proxy" not in supysonic._cli("user", "list"):
        supysonic._cli("user", "add", "bob-proxy", "-p", "bob pass")
    alice = SubsonicClient(proxy.server_url, supysonic.user, supysonic.password)
    track = proxy.db.query("SELECT track_id FROM mediaserver_songs WHERE server_id = ?", (hidden_twin,))[0][0]
    gone = "00000000-0000-4000-8000-00000000dead"   # a song of Encore's track the server does not show
    try:
        alice.call("star", id=starred)
        alice.call("setRating", id=starred, rating=4)
        link(proxy.db, alice, proxy.settings.library.paths, {})   # the stored entries are alice's view
        proxy.db.write(lambda c: c.execute(
            "INSERT INTO mediaserver_songs(server_id, track_id, method, path, title, seen_at, play_count, child) "
            "VALUES (?, ?, 'path', 'x/gone.flac', 'Gone', 0, 1000, ?)",
            (gone, track, json.dumps({"id": gone, "isDir": False, "title": "Gone", "starred": "2020-01-01"}))))
        for method, params in (("getSonicSimilarTracks", {"id": seed, "count": 5}),
                               ("getSimilarSongs2", {"id": seed, "count": 5}),
                               ("findSonicPath", {"startSongId": seed, "endSongId": starred, "count": 4})):
            answer = body(proxy.rest(method, auth=bob, **params))
            entries = [m["entry"] for m in answer["sonicMatch"]] if "sonicMatch" in answer \
                else answer["similarSongs2"]["song"]
            ids = [e["id"] for e in entries]
            assert entries and not [e for e in entries for k in PERSONAL if k in e], (method, entries)  # not alice's
            assert gone not in ids and set(ids) <= set(proxy.songs.values()), (method, ids)   # only what bob sees
        mine = body(proxy.rest("getSonicSimilarTracks", id=seed, count=5))["sonicMatch"]
        assert [m["entry"] for m in mine if m["entry"]["id"] == starred][0]["userRating"] == 4   # alice's own
    finally:
        proxy.db.write(lambda c: c.execute("DELETE FROM mediaserver_songs WHERE server_id = ?", (gone,)))
        alice.call("unstar", id=starred)
        alice.call("setRating", id=starred, rating=0)
        link(proxy.db, alice, proxy.settings.library.paths, {})


def test_find_sonic_path_starts_and_ends_with_the_given_songs(proxy: Proxy) -> None:
    start = proxy.songs["Alpha Band/First Light/01 Morning.flac"]
    end = proxy.songs["Beta Trio/Nocturnes/02 Midnight.ogg"]
    matches = body(proxy.rest("findSonicPath", startSongId=start, endSongId=end, count=4))["sonicMatch"]
    ids = [m["entry"]["id"] for m in matches]
    assert ids[0] == start and ids[-1] == end and 2 <= len(ids) <= 4 and len(set(ids)) == len(ids)
    sims = [m["similarity"] for m in matches]
    assert sims[0] == 1.0 and all(0.0 <= s <= 1.0 for s in sims)


def test_open_subsonic_extensions_without_credentials(proxy: Proxy) -> None:
    answer = requests.get(f"{proxy.url}/rest/getOpenSubsonicExtensions", params={"f": "json"}, timeout=10)
    extensions = body(answer)["openSubsonicExtensions"]
    assert {"name": "sonicSimilarity", "versions": [1]} in extensions
    xml = ET.fromstring(requests.get(f"{proxy.url}/rest/getOpenSubsonicExtensions.view", timeout=10).content)
    assert [e.get("name") for e in xml.findall(f"{NS}openSubsonicExtensions")][-2:] == [
        "sonicSimilarity", "playbackReport"]


# --- AudioMuse-AI-compatible routes -----------------------------------------------------------------

def test_audiomuse_similar_tracks_and_find_path(proxy: Proxy) -> None:
    song = proxy.songs["Delta/Live/01 Encore.flac"]
    r = requests.get(f"{proxy.url}/api/similar_tracks", params={"item_id": song, "n": 3,
                                                               "eliminate_duplicates": "true"}, timeout=10)
    assert r.status_code == 200
    items = r.json()
    assert isinstance(items, list) and 1 <= len(items) <= 3
    for item in items:
        assert set(item) == {"item_id", "title", "author", "album", "distance"}
        assert item["item_id"] in proxy.songs.values() and item["item_id"] != song
        assert 0.0 <= item["distance"] <= 1.0
    end = proxy.songs["Gamma/Singles/Gamma - Ünïcode Sóng.flac"]
    r = requests.get(f"{proxy.url}/api/find_path", params={"start_song_id": song, "end_song_id": end,
                                                          "max_steps": 4}, timeout=10)
    path = r.json()["path"]
    assert r.status_code == 200 and path[0]["item_id"] == song and path[-1]["item_id"] == end
    assert path[0]["distance"] == 0.0 and r.json()["total_distance"] > 0
    assert requests.get(f"{proxy.url}/api/similar_tracks", params={"item_id": "nope"}, timeout=10).status_code == 404
    same = requests.get(f"{proxy.url}/api/find_path", params={"start_song_id": song, "end_song_id": song}, timeout=10)
    assert same.status_code == 400


def test_audiomuse_bearer_token_is_the_api_key(proxy: Proxy) -> None:
    settings = make_settings_like(proxy, key="k3y-for-plugin")
    url, app = serve_app(settings, proxy.db)
    try:
        song = proxy.songs["Delta/Live/01 Encore.flac"]
        params = {"item_id": song, "n": 2}
        assert requests.get(f"{url}/api/similar_tracks", params=params, timeout=10).status_code == 401
        ok = requests.get(f"{url}/api/similar_tracks", params=params, timeout=10,
                          headers={"Authorization": "Bearer k3y-for-plugin"})
        assert ok.status_code == 200 and len(ok.json()) == 2
        wrong = requests.get(f"{url}/api/similar_tracks", params=params, timeout=10,
                             headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # Subsonic apps cannot send the key: /rest is authorised by the media server itself
        assert requests.get(f"{url}/rest/ping", params={**proxy.auth, "f": "json"}, timeout=10).status_code == 200
    finally:
        app.http.stop()   # only the server: the database is the proxy fixture's


def make_settings_like(proxy: Proxy, **api: object) -> Settings:
    settings = Settings()
    for section in ("library", "database", "playlists", "mediaserver"):
        setattr(settings, section, getattr(proxy.settings, section))
    for key, value in api.items():
        setattr(settings.api, key, value)
    return settings


# --- listening history: scrobbles, for_you, scheduled mixes -----------------------------------------

def _plays(proxy: Proxy, server_id: str) -> tuple[int, float | None]:
    return tuple(proxy.db.query("SELECT play_count, last_played FROM mediaserver_songs WHERE server_id = ?",
                                (server_id,))[0])


def test_scrobbles_feed_for_you_and_the_daily_mix_is_refreshed_in_place(proxy: Proxy) -> None:
    played = proxy.songs["Alpha Band/First Light/02 Noon.flac"]
    before = _plays(proxy, played)[0]
    answer = body(proxy.rest("scrobble", id=played, submission="true"))
    assert answer["status"] == "ok"
    count, last = _plays(proxy, played)
    assert count == before + 1 and last is not None
    now_playing = proxy.rest("scrobble", id=played, submission="false")
    assert body(now_playing)["status"] == "ok" and _plays(proxy, played)[0] == count  # not a play
    wrong = proxy.rest("scrobble", auth={**proxy.auth, "p": "wrong"}, id=played)
    assert body(wrong)["error"]["code"] == 40 and _plays(proxy, played)[0] == count

    r = requests.post(f"{proxy.url}/api/v1/playlists", json={"strategy": "for_you", "size": 3, "random_seed": 1},
                      timeout=30)
    assert r.status_code == 200, r.text
    mix = r.json()
    played_track = proxy.db.query("SELECT track_id FROM mediaserver_songs WHERE server_id = ?", (played,))[0][0]
    info = mix["playlist"]["for_you"]
    assert played_track in info["seeds"]["recent"] and info["excluded_recently_played"] >= 1
    assert played_track not in [t["id"] for t in mix["tracks"]] and mix["tracks"]
    assert not any("no listening history" in n for n in mix["playlist"]["notes"])

    first = requests.post(f"{proxy.url}/api/v1/playlists/schedule/run", timeout=60).json()["mixes"][0]
    assert first["ok"] and not first["refreshed"], first
    second = requests.post(f"{proxy.url}/api/v1/playlists/schedule/run", json={"names": ["Daily mix 1"]},
                           timeout=60).json()["mixes"][0]
    assert second["ok"] and second["refreshed"] and second["playlist_id"] == first["playlist_id"]
    assert proxy.db.query("SELECT count(*) FROM playlists WHERE name = 'Daily mix 1'")[0][0] == 1
    m3u8 = Path(second["file"])
    assert m3u8.is_file() and len(list(m3u8.parent.glob("Daily mix 1*.m3u8"))) == 1
    client = SubsonicClient(proxy.server_url, proxy.settings.mediaserver.user, proxy.settings.mediaserver.password)
    on_server = [p for p in client.get_playlists() if p["name"] == "Daily mix 1"]
    assert len(on_server) == 1  # pushed, then refreshed in place: never a second copy
    entries = client.call("getPlaylist", id=on_server[0]["id"])["playlist"].get("entry") or []
    saved = proxy.db.query("SELECT track_id FROM playlist_items WHERE playlist_id = ? ORDER BY position",
                           (second["playlist_id"],))
    server_tracks = [proxy.db.query("SELECT track_id FROM mediaserver_songs WHERE server_id = ?", (e["id"],))[0][0]
                     for e in entries]
    assert server_tracks == [r[0] for r in saved]
    listed = requests.get(f"{proxy.url}/api/v1/playlists/schedule", timeout=10).json()["mixes"]
    assert listed[0]["playlist_id"] == first["playlist_id"] and listed[0]["generated_at"]
    unknown = requests.post(f"{proxy.url}/api/v1/playlists/schedule/run", json={"names": ["Daily mix 9"]}, timeout=10)
    assert unknown.status_code == 400 and "Daily mix 1" in json.dumps(unknown.json())
