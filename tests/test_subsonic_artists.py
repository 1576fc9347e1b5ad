"""Sonic similar artists through the /rest proxy in front of a real supysonic (issue 23), on a
library of real music: "Copy Band" and "Echo Crew" hold the same real recordings (Echo Crew's
re-encoded from Copy Band's as Ogg Vorbis), "Far Cry" holds other real music. Symfonium-style
``getArtistInfo2``/``getArtistInfo`` calls, artist ``getSimilarSongs2`` and the AudioMuse plugin's
``/api/similar_artists`` all have to put Echo Crew first for Copy Band — a similarity that came
from the sound, since nothing else links those two names."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mutagen
import pytest
import requests
import soundfile as sf

from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.core.integrations.mediaserver.link import link
from playlistgen.core.storage.db import Database
from tests.audio_fixtures import write
from tests.conftest import run_cli
from tests.subsonic_server import SupysonicUnavailable, ensure_venv, start_server
from tests.test_subsonic_proxy import make_settings, serve_app

REAL = Path(__file__).resolve().parents[1] / ".cache" / "real-audio" / "xmoto"
NS = "{http://subsonic.org/restapi}"
SECONDS = 30
# (source file, start s, artist, album, title, format)
SONGS = [("foxrun.ogg", 10, "Copy Band", "Originals", "Fox", "flac"),
         ("legolodio.ogg", 10, "Copy Band", "Originals", "Lego", "flac"),
         ("foxrun.ogg", 10, "Echo Crew", "Covers", "Fox Again", "ogg"),
         ("legolodio.ogg", 10, "Echo Crew", "Covers", "Lego Again", "ogg"),
         ("batcave.ogg", 40, "Far Cry", "Elsewhere", "Cave", "flac"),
         ("menu.ogg", 30, "Far Cry", "Elsewhere", "Menu", "flac")]


@dataclass
class Server:
    url: str              # playlistgen (the proxy)
    direct: str           # supysonic
    auth: dict
    artists: dict         # artist name → supysonic artist id
    songs: dict           # title → supysonic song id
    db: Database

    def rest(self, method: str, fmt: str | None = "json", direct: bool = False, **params: object) -> requests.Response:
        query = {**self.auth, **params}
        if fmt:
            query["f"] = fmt
        return requests.get(f"{self.direct if direct else self.url}/rest/{method}", params=query, timeout=60)


def build_library(root: Path) -> None:
    for source, start, artist, album, title, fmt in SONGS:
        audio, sr = sf.read(str(REAL / source), start=start * 44100, frames=SECONDS * 44100, always_2d=True)
        assert sr == 44100
        path = root / artist / album / f"{title}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, audio, sr)
        tags = mutagen.File(path, easy=True)
        tags["artist"], tags["album"], tags["title"] = artist, album, title
        tags.save()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (REAL / "foxrun.ogg").is_file():
        pytest.skip("NO REAL AUDIO: .cache/real-audio is missing (make realaudio)")
    try:
        venv = ensure_venv()
    except SupysonicUnavailable as exc:
        pytest.skip(f"NO REAL SUBSONIC SERVER: {exc}")
    root = tmp_path_factory.mktemp("artists")
    build_library(root / "library")
    db_path = root / "playlistgen.db"
    proc = run_cli("scan", str(root / "library"), "--preset", "fast", "--workers", "1",
                   env={"PLAYLISTGEN_DATABASE__PATH": str(db_path)}, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    supysonic = start_server(venv, root / "server", root / "library")
    try:
        settings = make_settings(supysonic, root, db_path)
        db = Database(db_path, pool_min=1, pool_max=4)
        client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
        report = link(db, client, settings.library.paths, {})
        assert report.unmatched == 0, report.to_dict()
        url, app = serve_app(settings, db)
        songs = list(client.iter_songs())
        try:
            yield Server(url, supysonic.url, {"u": supysonic.user, "p": supysonic.password, "v": "1.16.1",
                                              "c": "tests"},
                         {s["artist"]: s["artistId"] for s in songs}, {s["title"]: s["id"] for s in songs}, db)
        finally:
            app.stop()
    finally:
        supysonic.stop()


def body(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text[:300]
    return response.json()["subsonic-response"]


def test_supysonic_has_no_artist_info_so_the_answer_is_ours_alone(server: Server) -> None:
    theirs = server.rest("getArtistInfo2", direct=True, id=server.artists["Copy Band"])
    assert theirs.json()["subsonic-response"]["error"]["message"] == "Unknown method"
    info = body(server.rest("getArtistInfo2", id=server.artists["Copy Band"], count=5))["artistInfo2"]
    assert info["similarArtist"][0] == {"id": server.artists["Echo Crew"], "name": "Echo Crew", "albumCount": 1}


def test_the_near_copy_artist_ranks_first_both_ways_and_the_artist_is_never_its_own_match(server: Server) -> None:
    for asked, first in (("Copy Band", "Echo Crew"), ("Echo Crew", "Copy Band")):
        similar = body(server.rest("getArtistInfo2", id=server.artists[asked]))["artistInfo2"]["similarArtist"]
        assert [a["name"] for a in similar] == [first, "Far Cry"]
    api = requests.get(f"{server.url}/api/v1/artists/copy band/similar", timeout=30).json()
    assert api["artist"]["tracks"] == 2 and [a["name"] for a in api["similar"]] == ["Echo Crew", "Far Cry"]
    assert api["similar"][0]["similarity"] > 0.9 > api["similar"][1]["similarity"]
    by_id = requests.get(f"{server.url}/api/v1/artists/{server.artists['Copy Band']}/similar",
                         params={"server_only": "true"}, timeout=30).json()
    assert by_id["similar"][0]["server_id"] == server.artists["Echo Crew"]


def test_get_artist_info_in_json_xml_and_jsonp(server: Server) -> None:
    some = server.artists["Far Cry"]
    v1 = body(server.rest("getArtistInfo", id=some))["artistInfo"]["similarArtist"]
    assert {a["name"] for a in v1} == {"Copy Band", "Echo Crew"} and all(set(a) == {"id", "name"} for a in v1)
    xml = server.rest("getArtistInfo2.view", fmt=None, id=some)
    root = ET.fromstring(xml.content)
    assert root.get("status") == "ok" and "xml" in xml.headers["Content-Type"]
    entries = root.find(f"{NS}artistInfo2").findall(f"{NS}similarArtist")
    assert {e.get("id") for e in entries} == {server.artists["Copy Band"], server.artists["Echo Crew"]}
    assert all(e.get("albumCount") == "1" for e in entries)
    jsonp = server.rest("getArtistInfo2", fmt="jsonp", callback="cb", id=some).text
    assert jsonp.startswith("cb(") and json.loads(jsonp[3:-2])["subsonic-response"]["artistInfo2"]["similarArtist"]


def test_unknown_artist_id_is_error_70_and_a_missing_id_error_10(server: Server) -> None:
    for method in ("getArtistInfo", "getArtistInfo2"):
        error = server.rest(method, id="no-such-artist").json()["subsonic-response"]
        assert error["status"] == "failed" and error["error"]["code"] == 70, error
        xml = ET.fromstring(server.rest(method, fmt=None, id="no-such-artist").content)
        assert xml.find(f"{NS}error").get("code") == "70"
        assert server.rest(method).json()["subsonic-response"]["error"]["code"] == 10
    refused = server.rest("getArtistInfo2", id=server.artists["Copy Band"], u="alice", p="wrong").json()
    assert refused["subsonic-response"]["status"] == "failed"     # the server's verdict on the credentials


def test_similar_songs_of_an_artist_id_is_an_artist_radio(server: Server) -> None:
    songs = body(server.rest("getSimilarSongs2", id=server.artists["Copy Band"], count=4))["similarSongs2"]["song"]
    artists = [s["artist"] for s in songs]
    assert set(artists) <= {"Copy Band", "Echo Crew", "Far Cry"} and "Copy Band" in artists, artists
    assert all(s["id"] in server.songs.values() for s in songs)
    v1 = body(server.rest("getSimilarSongs", id=server.artists["Far Cry"], count=2))["similarSongs"]["song"]
    assert len(v1) == 2


# --- the Navidrome AudioMuse-AI plugin -------------------------------------------------------------
# SimilarArtistsResponse of audiomuse_api.go (NeptuneHub/AudioMuse-AI-NV-plugin, commit c2450d70):
# a JSON array of {artist string, artist_id string, component_matches []{artist1_representative_songs
# []{item_id, title string}, artist2_representative_songs [...]}}. decode() checks what Go's
# json.Unmarshal into that struct needs: the array, each known field of its type (unknown fields
# are ignored by Go, so they are allowed here).

def _strings(obj: dict, *names: str) -> None:
    for name in names:
        assert name not in obj or isinstance(obj[name], str), (name, obj)


def decode(payload: object) -> list[dict]:
    assert isinstance(payload, list), payload
    for artist in payload:
        assert isinstance(artist, dict)
        _strings(artist, "artist", "artist_id")
        matches = artist.get("component_matches")
        assert matches is None or isinstance(matches, list)
        for match in matches or []:
            for key in ("artist1_representative_songs", "artist2_representative_songs"):
                songs = match.get(key)
                assert songs is None or isinstance(songs, list)
                for song in songs or []:
                    assert isinstance(song, dict)
                    _strings(song, "item_id", "title")
    return payload  # type: ignore[return-value]


def test_plugin_similar_artists_shape_and_order(server: Server) -> None:
    plain = decode(requests.get(f"{server.url}/api/similar_artists", timeout=30, params={
        "artist": server.artists["Copy Band"], "n": 10, "include_component_matches": "false"}).json())
    assert [a["artist"] for a in plain] == ["Echo Crew", "Far Cry"]
    assert plain[0]["artist_id"] == server.artists["Echo Crew"]
    radio = decode(requests.get(f"{server.url}/api/similar_artists", timeout=30, params={
        "artist": server.artists["Copy Band"], "n": 1, "include_component_matches": "true"}).json())
    assert len(radio) == 1
    match = radio[0]["component_matches"][0]
    assert {s["title"] for s in match["artist1_representative_songs"]} == {"Fox", "Lego"}
    assert {s["title"] for s in match["artist2_representative_songs"]} == {"Fox Again", "Lego Again"}
    assert all(s["item_id"] == server.songs[s["title"]] for s in match["artist2_representative_songs"])
    by_name = decode(requests.get(f"{server.url}/api/similar_artists", params={"artist": "echo crew"},
                                  timeout=30).json())
    assert by_name[0]["artist"] == "Copy Band"
    unknown = requests.get(f"{server.url}/api/similar_artists", params={"artist": "Copy Bnd"}, timeout=30)
    assert unknown.status_code == 404 and "Copy Band" in unknown.json()["error"]["did_you_mean"]
