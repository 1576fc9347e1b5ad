"""Artist similarity from the music (issue 23): profiles, ranking, the artist_radio strategy, the
/api/v1/artists route and the CLI — over the catalog (synthetic arrays where the right answer is
known) and a real SQLite library (``populated_library``: 30 artists in 5 styles)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from playlistgen.app import App
from playlistgen.core.playlists.artists.profiles import build_profiles
from playlistgen.core.playlists.artists.similar import UnknownArtistError, rank, resolve, scores
from playlistgen.core.playlists.diversity import gaps_respected
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
from tests.conftest import library_settings, run_cli
from tests.test_playlist_strategies import synthetic


def _clustered(artists: list[str], centre_of: list[int], seed: int = 0, spread: float = 0.3):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (max(centre_of) + 1, 200))
    emb = np.array([centres[c] + rng.normal(0, spread, 200) for c in centre_of], dtype=np.float32)
    return synthetic(len(artists), embedding=emb, artists=artists, seed=seed)


def test_name_variants_are_one_artist_and_never_their_own_match() -> None:
    names = ["The Foo", "foo feat. Bar", "FOO", "Föo (ft. Baz)", "Qux", "Qux", "Zed", "Zed"]
    cat = _clustered(names, [0, 0, 0, 0, 1, 1, 0, 0])
    prof = build_profiles(cat)
    code = resolve(prof, "foo")
    assert prof.tracks[code] == 4 and prof.names[code] in {"The Foo", "foo feat. Bar", "FOO", "Föo (ft. Baz)"}
    assert resolve(prof, "the FOO featuring Someone") == code
    found = rank(prof, *scores(cat, prof, code), 10)
    assert [s.name for s in found] == ["Zed", "Qux"]      # Zed shares Foo's sound; no Foo variant is listed
    with pytest.raises(UnknownArtistError) as err:
        resolve(prof, "Quxx")
    assert err.value.status == 404 and err.value.candidates == ["Qux"]


def test_trimmed_profile_ignores_a_few_odd_tracks() -> None:
    # "Main" has 8 tracks of one sound and 2 far off (a remix, an intro); "Twin" sounds like the 8
    names = ["Main"] * 10 + ["Twin"] * 6 + ["Odd"] * 6
    centres = [0] * 8 + [2, 2] + [0] * 6 + [2] * 6
    cat = _clustered(names, centres, seed=3, spread=0.2)
    prof = build_profiles(cat)
    main = resolve(prof, "Main")
    assert prof.used[main] == 8 and prof.tracks[main] == 10     # the two farthest left out
    block = cat.slices["embedding"]
    typical = cat.X[:8, block].mean(axis=0)
    assert np.linalg.norm(prof.X[main, block] - typical) < 1e-4 < np.linalg.norm(cat.X[:10, block].mean(axis=0)
                                                                                 - typical)
    found = rank(prof, *scores(cat, prof, main), 2)
    assert [s.name for s in found] == ["Twin", "Odd"] and found[0].similarity > 0.5 > found[1].similarity


def test_an_artist_with_one_track_is_handicapped_and_says_so() -> None:
    names = ["Seed"] * 5 + ["Many"] * 8 + ["Once"] + ["Far"] * 4
    cat = _clustered(names, [0] * 5 + [0] * 8 + [0] + [1] * 4, seed=5, spread=0.25)
    prof = build_profiles(cat)
    found = {s.name: s for s in rank(prof, *scores(cat, prof, resolve(prof, "Seed")), 5)}
    assert found["Once"].confidence == pytest.approx(1 / 3, abs=1e-3) and found["Many"].confidence == 0.8
    assert found["Once"].score < found["Once"].similarity and found["Many"].score > found["Far"].score


@pytest.fixture(scope="module")
def library(populated_library):  # type: ignore[no-untyped-def]
    db, facts, root = populated_library
    settings = library_settings(root)
    app = App.for_api(settings, db)
    yield app, settings, facts, root
    # the module's database is closed by populated_library


def _style(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def test_similar_artists_of_a_real_library_share_its_style(library) -> None:  # type: ignore[no-untyped-def]
    app, *_ = library
    client = app.api.test_client()
    body = client.get("/api/v1/artists/artist 03 HOUSE/similar?count=5").get_json()
    assert body["artist"]["name"] == "Artist 03 House" and body["artist"]["tracks"] == 6
    assert [_style(a["name"]) for a in body["similar"][:5]] == ["House"] * 5, body["similar"]
    assert all(set(a) >= {"name", "tracks", "score", "similarity", "confidence"} for a in body["similar"])
    assert body["notes"] and "confidence" in body["notes"][0]
    few = client.get("/api/v1/artists/Massive Attack/similar?count=3").get_json()
    assert any("only 1 analysed track" in note for note in few["notes"])
    slash = client.get("/api/v1/artists/AC/DC/similar")
    assert slash.status_code == 404 and slash.get_json()["error"]["code"] == "artist_not_found"
    typo = client.get("/api/v1/artists/Artist 03 Hous/similar").get_json()["error"]
    assert "Artist 03 House" in typo["did_you_mean"] and "did you mean" in typo["hint"]
    assert client.get("/api/v1/artists/Artist 03 House/similar?server_only=true").status_code == 400  # no link
    assert client.get("/api/v1/artists/Artist 03 House/similar?count=0").status_code == 400
    spec = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "server_only" in str(spec["/api/v1/artists/{artist}/similar"]) and "/api/similar_artists" in spec


def test_artist_radio_plays_the_artist_and_its_sound_alikes(library) -> None:  # type: ignore[no-untyped-def]
    app, settings, facts, _ = library
    service: PlaylistService = app.services.playlists
    result = service.generate(PlaylistRequest.parse({"strategy": "artist_radio", "artist": "artist 00 chill",
                                                     "size": 15}, settings))
    artists = [t["artist"] for t in result["tracks"]]
    assert len(artists) == 15 and "Artist 00 Chill" in artists
    assert sum(_style(a) == "Chill" for a in artists) >= 12, artists
    assert gaps_respected(artists, settings.playlists.artist_gap)
    meta = result["playlist"]
    assert meta["name"] == "Artist radio · Artist 00 Chill"
    assert any(n.startswith("artist_radio: Artist 00 Chill with Artist") for n in meta["notes"])
    assert meta["similar_artists"][0]["name"].endswith("Chill")
    seeded = service.generate(PlaylistRequest.parse({"strategy": "artist_radio", "seeds": [facts["Teardrop"]],
                                                     "size": 6}, settings))
    assert seeded["tracks"][0]["id"] == facts["Teardrop"]
    assert any("Massive Attack has only 1 analysed track" in n for n in seeded["playlist"]["notes"])
    client = app.api.test_client()
    missing = client.post("/api/v1/playlists", json={"strategy": "artist_radio"})
    assert missing.status_code == 400 and "needs an artist" in missing.get_json()["error"]["message"]
    unknown = client.post("/api/v1/playlists", json={"strategy": "artist_radio", "artist": "Daft Pank"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["did_you_mean"][0] == "Daft Punk"


def test_cli_artist_radio(library) -> None:  # type: ignore[no-untyped-def]
    _app, _settings, _facts, root = library
    proc = run_cli("playlist", "artist_radio", "--artist", "Artist 02 Jazz", "--size", "6", "--db",
                   str(root / "test.db"), cwd=root)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["playlist"]["strategy"] == "artist_radio" and len(out["tracks"]) == 6
    assert sum(_style(t["artist"]) == "Jazz" for t in out["tracks"]) >= 5
    typo = run_cli("playlist", "artist_radio", "--artist", "Artist 02 Jaz", "--db", str(root / "test.db"), cwd=root)
    assert typo.returncode != 0 and "did you mean 'Artist 02 Jazz'" in typo.stderr
